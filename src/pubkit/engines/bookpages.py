"""Turn lessons' laid-out pages into their module's collected PDF, without laying them out
again.

A lesson's worker lays its pages out once and writes its own PDF, with the drawing of the
margin boxes that number its pages in content streams of their own; from that PDF, qpdf
makes the pages as its module's book sets them (:func:`book_pages`): those streams left
out (the numbers are the book's, known only once every lesson of the module is set), its
named destinations under the lesson's anchor, its links led to their place in the book.
Nothing is drawn or compressed twice.
The module's title page and contents, the "front", are laid out on their own, with the
page each lesson opens on; and a blank page for each page of the book, in the same page
groups as the lessons' own, showing only its numbers (:func:`number_pages`), which the
next build keeps while no page count changes. :func:`assemble` then puts each lesson's
pages after the front, under their numbers, and joins what makes the PDF tagged and
navigable: the structure tree (each lesson an article of the book's document), the named
destinations, the links, the outline (the lessons' bookmarks under the module's).

A margin box "numbers pages" when its content uses the ``page`` or ``pages`` counter; the
book takes such boxes from the blank pages and every other margin box (running heads) from
the lesson's own pages, whatever the theme puts where.

pikepdf (qpdf) is imported where it is used: 65 ms that only a build collecting a module
pays.
"""

from __future__ import annotations

import copy
import io
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

from weasyprint import Document
from weasyprint.formatting_structure import boxes

from pubkit.engines.weasy import APART, lead

_PAGE_COUNTERS = frozenset({"page", "pages"})
#: CSS's sixteen page-margin boxes.
_MARGIN_BOXES = tuple(
    f"{side}-{place}"
    for side, places in (
        ("top", ("left-corner", "left", "center", "right", "right-corner")),
        ("bottom", ("left-corner", "left", "center", "right", "right-corner")),
        ("left", ("top", "middle", "bottom")),
        ("right", ("top", "middle", "bottom")),
    )
    for place in places
)


def numbers_pages(box: Any) -> bool:
    """Whether ``box`` is a margin box whose content uses the page counters."""
    return isinstance(box, boxes.MarginBox) and any(
        kind in ("counter()", "counters()") and value[0] in _PAGE_COUNTERS
        for kind, value in box.style["content"] or ()
        if isinstance(value, tuple)
    )


def book_pages(lesson: bytes, prefix: str, relinked: Mapping[tuple[str, str, str], str]) -> bytes:
    """The pages of ``lesson`` (a PDF written with its page-number boxes' drawing set
    apart, see :func:`pubkit.engines.weasy.write_pdf`) as its module's book sets them:
    without those boxes' drawing; every named destination, and every link to one, under
    ``prefix``; each link to another file or URI that ``relinked`` knows (by
    :func:`written_link`) led to the written target it gives. Nothing is laid out or
    drawn again: qpdf edits the lesson's own PDF."""
    import pikepdf

    pdf = pikepdf.open(io.BytesIO(lesson))
    names = pdf.Root.Names.Dests
    entries = [(prefix + name, place) for name, place in _name_entries(names)]
    for key in ("/Kids", "/Limits"):
        if key in names:
            del names[key]
    names.Names = pikepdf.Array([item for name, place in entries for item in (name, place)])
    for page in pdf.pages:
        _cut_apart(page)
        for annotation in page.get("/Annots", ()):
            if annotation.get("/Subtype") == "/Link":
                _relink(annotation, prefix, relinked)
    out = io.BytesIO()
    pdf.save(out, deterministic_id=True)
    return out.getvalue()


def _cut_apart(page: Any) -> None:
    """``page`` without the streams of its drawing set apart (marked
    :data:`~pubkit.engines.weasy.APART`)."""
    import pikepdf

    contents = page.obj.Contents
    if isinstance(contents, pikepdf.Array):
        marked = pikepdf.Name("/" + APART)
        page.obj.Contents = pikepdf.Array([s for s in contents if marked not in s.stream_dict])


def _relink(annotation: Any, prefix: str, relinked: Mapping[tuple[str, str, str], str]) -> None:
    """A lesson's link annotation as the book's: to its named destination under
    ``prefix``, or to where ``relinked`` leads it."""
    import pikepdf

    if isinstance(annotation.get("/Dest"), pikepdf.String):
        name = prefix + str(annotation.Dest)
        annotation.Dest = pikepdf.String(name)
        if "/Contents" in annotation:
            annotation.Contents = pikepdf.String(name)
        return
    action = annotation.get("/A")
    if action is None:
        return
    if action.get("/S") == "/GoToR":
        section = action.D
        key = ("file", str(action.F), str(section) if isinstance(section, pikepdf.String) else "")
    elif action.get("/S") == "/URI":
        key = ("uri", str(action.URI), "")
    else:
        return
    if (target := relinked.get(key)) is None:
        return
    led = lead(target)
    for entry in ("/URI", "/F", "/D", "/NewWindow"):
        if entry in action:
            del action[entry]
    if led is None:
        action.S, action.URI = pikepdf.Name.URI, pikepdf.String(target)
        return
    kind, place, section = led
    if kind == "dest":
        del annotation["/A"]
        annotation.Dest = pikepdf.String(place)
    else:
        action.S, action.F = pikepdf.Name.GoToR, pikepdf.String(place)
        action.D = pikepdf.String(section) if section else pikepdf.Array([0, pikepdf.Name.Fit])
        action.NewWindow = False
    if "/Contents" in annotation:
        annotation.Contents = pikepdf.String(place)


def written_link(uri: str) -> tuple[str, str, str]:
    """The key :func:`book_pages` knows a lesson's link by, from the URI it was written
    with."""
    led = lead(uri)
    return led if led is not None and led[0] == "file" else ("uri", uri, "")


def numbers_only(css: str) -> str:
    """Rules that leave out of a layout the page-margin boxes of every page edge where no
    rule of ``css`` gives a box the page counters (or a ``var()``, which might): laid out
    for :func:`number_pages`, which keeps only the boxes that number pages, the pages are
    set without the running heads it would drop, most of their time."""
    import tinycss2

    numbering: set[str] = set()

    def look(rules: Sequence[Any], margin: str | None) -> None:
        for rule in rules:
            if rule.type == "at-rule" and rule.content is not None:
                keyword = rule.lower_at_keyword
                inner = tinycss2.parse_blocks_contents(rule.content, True, True)
                look(inner, keyword if keyword in _MARGIN_BOXES else margin)
            elif rule.type == "qualified-rule":  # inside @media or @supports
                look(tinycss2.parse_blocks_contents(rule.content, True, True), margin)
            elif (
                rule.type == "declaration"
                and margin
                and rule.lower_name == "content"
                and any(_counts_pages(token) for token in rule.value)
            ):
                numbering.add(margin)

    look(tinycss2.parse_stylesheet(css, True, True), None)
    # A box's width may depend on its neighbours on the same edge: an edge keeps them all
    # if one numbers pages.
    kept = {_edge(name) for name in numbering}
    return "".join(
        f"@page{{@{name}{{content:none!important}}}}"
        for name in _MARGIN_BOXES
        if _edge(name) not in kept
    )


def _edge(box: str) -> str:
    """The page edge whose boxes share its length (a corner is one of its own)."""
    return box if box.endswith("corner") else box.split("-")[0]


def _counts_pages(token: Any) -> bool:
    """Whether a ``content`` value's ``token`` may use the page counters."""
    if token.type != "function":
        return False
    name = token.lower_name
    if name == "var":
        return True
    arguments = [t for t in token.arguments if t.type == "ident"]
    return (
        name in ("counter", "counters")
        and bool(arguments)
        and (arguments[0].lower_value in _PAGE_COUNTERS)
    )


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
