"""Turn lessons' laid-out pages into their module's collected PDF, without laying them out
again.

A lesson's worker lays its pages out once, for its own PDF, and writes them a second time
as its module's book sets them (:func:`book_pages`): its identifiers carry the lesson's
anchor, its links lead to their place in the book, and its page numbers are left out
(they are the book's, known only once every lesson of the module is set). The module's
title page and contents, the "front", are laid out on their own, with the page each
lesson opens on; and a blank page for each page of the book, in the same page groups as
the lessons' own, showing only its numbers (:func:`number_pages`), which the next build
keeps while no page count changes. :func:`assemble` then puts each lesson's pages after
the front, under their numbers, and joins what makes the PDF tagged and navigable: the
structure tree (each lesson an article of the book's document), the named destinations,
the links, the outline (the lessons' bookmarks under the module's).

A margin box "numbers pages" when its content uses the ``page`` or ``pages`` counter; the
book takes such boxes from the blank pages and every other margin box (running heads) from
the lesson's own pages, whatever the theme puts where.

pikepdf (qpdf) is imported where it is used: 65 ms that only a build collecting a module
pays.
"""

from __future__ import annotations

import copy
import io
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from weasyprint import Document
from weasyprint.formatting_structure import boxes

_PAGE_COUNTERS = frozenset({"page", "pages"})


def numbers_pages(box: Any) -> bool:
    """Whether ``box`` is a margin box whose content uses the page counters."""
    return isinstance(box, boxes.MarginBox) and any(
        kind in ("counter()", "counters()") and value[0] in _PAGE_COUNTERS
        for kind, value in box.style["content"] or ()
        if isinstance(value, tuple)
    )


def book_pages(document: Document, prefix: str, href: Callable[[Any], str | None]) -> Document:
    """``document``'s pages as its module's book sets them: without the margin boxes that
    number pages, every anchor and link to one with ``prefix``, and each link ``href``
    gives another target (called with the link's element; None keeps the link) led there.
    The layout is shared with ``document``, which is left as it is."""
    pages = []
    for page in document.pages:
        book_page = _keeping(page, lambda box: not numbers_pages(box))
        book_page.anchors = {prefix + name: place for name, place in page.anchors.items()}
        book_page.links = [_book_link(link, prefix, href) for link in page.links]
        pages.append(book_page)
    return document.copy(pages)


def _book_link(
    link: tuple[Any, ...], prefix: str, href: Callable[[Any], str | None]
) -> tuple[Any, ...]:
    kind, target, rectangle, box = link
    if kind == "internal":
        return (kind, prefix + target, rectangle, box)
    if kind == "external" and (place := href(box.element)) is not None:
        return (kind, place, rectangle, box)
    return link


def number_pages(document: Document) -> Document:
    """``document``'s pages showing only the margin boxes that number pages."""
    pages = []
    for page in document.pages:
        numbered = _keeping(page, numbers_pages)
        numbered.links, numbered.bookmarks = [], []
        pages.append(numbered)
    return document.copy(pages)


def _keeping(page: Any, keep: Callable[[Any], bool]) -> Any:
    """A copy of laid-out ``page`` with only the boxes ``keep`` takes of those it holds
    (the root element's, the footnotes', the margin boxes), shared with ``page``."""
    kept = copy.copy(page)
    box = page._page_box
    kept._page_box = box.copy_with_children([child for child in box.children if keep(child)])
    return kept


def assemble(front: bytes, numbers: bytes, lessons: Sequence[bytes]) -> bytes:
    """The book: ``front`` (its title page and contents, a tagged PDF), then each lesson's
    pages (PDFs of :func:`book_pages`), each under its page of ``numbers`` (a PDF of
    :func:`number_pages`, a page for each page of the book)."""
    import pikepdf

    book = pikepdf.open(io.BytesIO(front))
    numbered = pikepdf.open(io.BytesIO(numbers))
    sources = [pikepdf.open(io.BytesIO(lesson)) for lesson in lessons]
    kept = {page.obj.objgen for page in book.pages}
    for source in sources:
        for page in source.pages:
            index = len(book.pages)
            form = book.copy_foreign(numbered.pages[index].as_form_xobject())
            book.pages.append(page)
            _draw_over(book, book.pages[index], _artifact(form), pikepdf.Name(f"/Numbers{index}"))
    assert len(book.pages) == len(numbered.pages), "the numbered pages are the book's"
    _join_structure(book, sources, kept)
    _join_destinations(book, numbered, sources)
    _join_outlines(book, sources)
    out = io.BytesIO()
    # The structure tree's thousands of small objects in compressed object streams: a
    # 60-page book of 1.10 MB is then 0.66 MB, and written in a third of the time.
    book.save(out, deterministic_id=True, object_stream_mode=pikepdf.ObjectStreamMode.generate)
    return out.getvalue()


def _draw_over(book: Any, page: Any, form: Any, name: Any) -> None:
    """Draw ``form`` over ``page``, under ``name``, a name no other page uses (a lesson's
    pages share one resource dictionary; pikepdf's own overlay picks random names, and
    so other bytes at each build)."""
    import pikepdf

    page.add_resource(form, pikepdf.Name.XObject, name)
    page.contents_add(pikepdf.Stream(book, b"q\n"), prepend=True)
    page.contents_add(pikepdf.Stream(book, b"\nQ\n" + name.unparse() + b" Do\n"))


def _artifact(form: Any) -> Any:
    """``form`` (a numbered page's drawing, untagged) marked as one artifact: page
    furniture, not the book's content."""
    form.write(b"/Artifact BMC\n" + form.read_bytes() + b"\nEMC\n")
    return form


def _copied(book: Any, value: Any) -> Any:
    """``value``, of another PDF, as ``book`` holds it: indirect objects copied (a page
    already copied is that copy), direct arrays and dictionaries rebuilt around them."""
    import pikepdf

    if isinstance(value, pikepdf.Object) and value.is_indirect:
        return book.copy_foreign(value)
    if isinstance(value, pikepdf.Array):
        return pikepdf.Array([_copied(book, item) for item in value])
    if isinstance(value, pikepdf.Dictionary):
        return pikepdf.Dictionary({key: _copied(book, item) for key, item in value.items()})
    return value


def _numbers(tree: Any) -> dict[int, Any]:
    """A number tree's entries (WeasyPrint writes one flat ``Nums``)."""
    found: dict[int, Any] = {}
    if "/Nums" in tree:
        nums = list(tree.Nums)
        found.update((int(key), value) for key, value in zip(nums[::2], nums[1::2], strict=True))
    for kid in tree.get("/Kids", ()):
        found.update(_numbers(kid))
    return found


def _join_structure(book: Any, sources: Sequence[Any], kept: set[tuple[int, int]]) -> None:
    """One structure tree: the front's document, with each lesson's document after it as
    an article (in the lesson's language); one parent tree, numbered anew, the front's
    pages and links first, then each lesson's."""
    import pikepdf

    root = book.Root.StructTreeRoot
    document = root.K[0]
    front_parents = _numbers(root.ParentTree)
    kids = list(document.K)
    parents: list[Any] = []  # the new parent tree's values, by key

    def renumber(holder: Any, key_name: str, value: Any) -> None:
        holder[key_name] = len(parents)
        parents.append(value)

    for page in book.pages:
        if page.obj.objgen in kept:
            old = page.obj.get("/StructParents")
            if old is not None:
                renumber(page.obj, "/StructParents", front_parents[int(old)])
            for annotation in page.obj.get("/Annots", ()):
                if "/StructParent" in annotation:
                    renumber(
                        annotation, "/StructParent", front_parents[int(annotation.StructParent)]
                    )
    for source in sources:
        source_root = source.Root.StructTreeRoot
        lesson = source_root.K[0]
        del lesson["/P"]  # its own tree's root, which the book does not take
        # Copied whole, in one call: the values are the book's elements already.
        source_parents = _numbers(book.copy_foreign(source.make_indirect(source_root.ParentTree)))
        article = book.copy_foreign(lesson)
        article.S = pikepdf.Name.Art
        article.P = document
        if "/Lang" in source.Root:
            article.Lang = source.Root.Lang
        kids.append(article)
        for page in source.pages:
            placed = book.copy_foreign(page.obj)
            old = page.obj.get("/StructParents")
            if old is not None:
                renumber(placed, "/StructParents", source_parents[int(old)])
            for annotation in placed.get("/Annots", ()):
                if "/StructParent" in annotation:
                    value = source_parents[int(annotation.StructParent)]
                    renumber(annotation, "/StructParent", value)
    document.K = pikepdf.Array(kids)
    nums: list[Any] = []
    for key, value in enumerate(parents):
        nums += [key, value]
    root.ParentTree = book.make_indirect(pikepdf.Dictionary(Nums=pikepdf.Array(nums)))
    root.ParentTreeNextKey = len(parents)


def _destinations(pdf: Any) -> Iterator[tuple[str, Any]]:
    names = pdf.Root.get("/Names", {}).get("/Dests")
    if names is None:
        return
    yield from _name_entries(names)


def _name_entries(tree: Any) -> Iterator[tuple[str, Any]]:
    if "/Names" in tree:
        entries = list(tree.Names)
        for key, value in zip(entries[::2], entries[1::2], strict=True):
            yield str(key), value
    for kid in tree.get("/Kids", ()):
        yield from _name_entries(kid)


def _join_destinations(book: Any, numbered: Any, sources: Sequence[Any]) -> None:
    """One name tree of destinations: the front's, each lesson's anchor (on the numbered
    page it opens on: the book's page of the same index) and every lesson's own (named
    as the book names them already)."""
    import pikepdf

    named = dict(_destinations(book))
    index_of = {page.obj.objgen: index for index, page in enumerate(numbered.pages)}
    for name, destination in _destinations(numbered):
        page = book.pages[index_of[destination[0].objgen]].obj
        named.setdefault(name, pikepdf.Array([page, *list(destination)[1:]]))
    for source in sources:
        if (dests := source.Root.get("/Names", {}).get("/Dests")) is not None:
            # Copied whole, in one call: their pages are the book's already.
            for name, destination in _name_entries(book.copy_foreign(source.make_indirect(dests))):
                named.setdefault(name, destination)
    entries: list[Any] = []
    for name in sorted(named):
        entries += [pikepdf.String(name), named[name]]
    if "/Names" not in book.Root:
        book.Root.Names = pikepdf.Dictionary()
    book.Root.Names.Dests = book.make_indirect(pikepdf.Dictionary(Names=pikepdf.Array(entries)))


def _join_outlines(book: Any, sources: Sequence[Any]) -> None:
    """The book's outline: its own top entries (the module's title), each lesson's
    entries one level under the last of them."""
    import pikepdf

    def copied(item: Any) -> Any:
        entry = pikepdf.OutlineItem(item.title, destination=_copied(book, item.destination))
        entry.is_closed = item.is_closed
        entry.children.extend(copied(child) for child in item.children)
        return entry

    with book.open_outline() as outline:
        under = outline.root[-1].children if outline.root else outline.root
        for source in sources:
            with source.open_outline() as lesson:
                under.extend(copied(item) for item in lesson.root)
