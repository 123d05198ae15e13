"""A module's collected PDF is assembled from its lessons' laid-out pages
(pubkit.engines.bookpages): after an edit it is the same book, page for page and link for
link, as one built from scratch, and a whole tagged PDF, every reference landing."""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Any

import pikepdf
import pytest

from conftest import PROJECTS
from epubinfo import documents
from pdfinfo import page_texts
from pubkit.build import build
from pubkit.course.modulebook import CHAPTERS, PARTS
from pubkit.engines.epub import kept_chapters

XHTML = "{http://www.w3.org/1999/xhtml}"
EPUB = "{http://www.idpf.org/2007/ops}"
#: Enough words to push the lesson onto more pages, and every later lesson further on.
LONGER = "\n\n" + "A sentence that makes the first lesson longer. " * 400 + "\n"


def _named(pdf: pikepdf.Pdf) -> dict[str, int]:
    """Every named destination: the index of its page (which must be in the book)."""
    pages = {page.obj.objgen: index for index, page in enumerate(pdf.pages)}
    names = list(pdf.Root.Names.Dests.Names)
    assert "/Kids" not in pdf.Root.Names.Dests
    found = {}
    for name, destination in zip(names[::2], names[1::2], strict=True):
        found[str(name)] = pages[destination[0].objgen]
    assert list(found) == sorted(found)  # a name tree is sorted
    return found


def _links(pdf: pikepdf.Pdf, named: dict[str, int]) -> list[tuple[Any, ...]]:
    """Each link: its page, its place on it, and where it leads (an internal one, to
    the page its destination is on)."""
    found: list[tuple[Any, ...]] = []
    for index, page in enumerate(pdf.pages):
        for annotation in page.obj.get("/Annots", ()):
            rect = tuple(round(float(v), 1) for v in annotation.Rect)
            if "/Dest" in annotation:
                name = str(annotation.Dest)
                found.append((index, rect, "page", name, named[name]))
            elif annotation.A.S == "/GoToR":
                found.append((index, rect, "file", str(annotation.A.F), str(annotation.A.D)))
            else:
                found.append((index, rect, "uri", str(annotation.A.URI)))
    return found


def _outline(pdf: pikepdf.Pdf) -> list[tuple[int, str, int]]:
    pages = {page.obj.objgen: index for index, page in enumerate(pdf.pages)}
    found: list[tuple[int, str, int]] = []

    def walk(items: Any, depth: int) -> None:
        for item in items:
            found.append((depth, item.title, pages[item.destination[0].objgen]))
            walk(item.children, depth + 1)

    with pdf.open_outline() as outline:
        walk(outline.root, 0)
    return found


def _page_list(epub: Path) -> list[tuple[str, str]]:
    for name, root in documents(epub).items():
        if name.endswith("nav.xhtml"):
            for nav in root.iter(f"{XHTML}nav"):
                if nav.get(f"{EPUB}type") == "page-list":
                    return [(a.text or "", a.get("href", "")) for a in nav.iter(f"{XHTML}a")]
    raise AssertionError("no page list")


def book_facts(out: Path, module: str) -> dict[str, Any]:
    path = out / f"collections/{module}.pdf"
    with pikepdf.open(path) as pdf:
        named = _named(pdf)
        return {
            "pages": page_texts(path),
            "named": named,
            "links": _links(pdf, named),
            "outline": _outline(pdf),
            "page list": _page_list(out / f"collections/{module}.epub"),
        }


def assert_tagged_whole(path: Path) -> None:
    """Every marked content of every page belongs to an element of the one structure
    tree; every link annotation to an element that names it; every page an element
    names is one of the book's."""
    with pikepdf.open(path) as pdf:
        root = pdf.Root.StructTreeRoot
        assert pdf.Root.MarkInfo.Marked
        nums = list(root.ParentTree.Nums)
        parents = {int(k): v for k, v in zip(nums[::2], nums[1::2], strict=True)}
        assert int(root.ParentTreeNextKey) == max(parents) + 1
        pages = {page.obj.objgen for page in pdf.pages}

        def in_tree(element: Any) -> bool:
            seen = 0
            while element.get("/Type") != "/StructTreeRoot":
                assert "/Pg" not in element or element.Pg.objgen in pages
                element, seen = element.P, seen + 1
                assert seen < 200
            return element.objgen == root.objgen

        keys = set()
        for page in pdf.pages:
            key = int(page.obj.StructParents)
            keys.add(key)
            marked = [
                int(operands[1].MCID)
                for operands, operator in pikepdf.parse_content_stream(page)
                if str(operator) == "BDC"
                and isinstance(operands[1], pikepdf.Dictionary)
                and "/MCID" in operands[1]
            ]
            assert marked, "a page with no tagged content"
            for mcid in marked:
                assert in_tree(parents[key][mcid])
            for annotation in page.obj.get("/Annots", ()):
                element = parents[int(annotation.StructParent)]
                keys.add(int(annotation.StructParent))
                assert in_tree(element)
                assert any(
                    isinstance(kid, pikepdf.Dictionary)
                    and kid.get("/Type") == "/OBJR"
                    and kid.Obj.objgen == annotation.objgen
                    for kid in element.K
                )
        assert len(keys) == len(pages) + sum(len(p.obj.get("/Annots", ())) for p in pdf.pages)
        lessons = [kid for kid in root.K[0].K if kid.S == "/Art"]
        assert lessons and all("/Lang" in lesson for lesson in lessons)


def test_a_book_assembled_after_an_edit_is_the_book_built_from_scratch(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first lesson grows by pages: every later page, folio, contents entry, link,
    bookmark and page-list entry moves with it, as in a book built whole."""
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1780000000")  # one date on both EPUBs
    edited = tmp_path / "edited"
    shutil.copytree(PROJECTS / "links", edited)
    assert build(edited, jobs=2).ok
    before = book_facts(edited / "build", "01-basics")
    lesson = edited / "manuscript/01-basics/01-start.md"
    lesson.write_text(lesson.read_text() + LONGER)
    result = build(edited, jobs=2)
    assert result.ok
    rebuilt = [r.lesson.id for r in result.built if not r.skipped]
    assert "01-basics/01-start" in rebuilt and len(rebuilt) < len(result.built)

    scratch = tmp_path / "scratch"
    shutil.copytree(edited, scratch)
    shutil.rmtree(scratch / "build")
    assert build(scratch, jobs=1).ok

    for module in ("01-basics", "02-advanced"):
        assembled = book_facts(edited / "build", module)
        assert assembled == book_facts(scratch / "build", module), module
        assert_tagged_whole(edited / "build" / f"collections/{module}.pdf")
    after = book_facts(edited / "build", "01-basics")
    assert len(after["pages"]) > len(before["pages"]) + 1  # the edit moved the second lesson
    # Each page numbered as the book's: "n / total", the lessons' pages too.
    total = len(after["pages"])
    for number, text in enumerate(after["pages"][2:], 3):  # title and contents: none
        assert text.rstrip().endswith(f"{number} / {total}"), (number, text[-40:])
    # The contents list each lesson at the page it opens on, and lead there.
    contents = " ".join(after["pages"][1].split())
    second = int(re.search(r"The Next Step[ .]*(\d+)", contents)[1])  # type: ignore[index]
    assert "The Next Step" in after["pages"][second - 1].split("\n", 3)[2]
    assert after["named"]["lesson-2"] == second - 1
    # The first lesson's link to the second lesson's section lands on that page.
    to_second = [link for link in after["links"] if link[3] == "lesson-2-second-section"]
    assert to_second and all(link[4] == second - 1 for link in to_second)
    # A link into the other module's book names a destination that book has.
    other = book_facts(edited / "build", "02-advanced")["named"]
    files = [link for link in after["links"] if link[2] == "file"]
    assert files and all(link[3] == "02-advanced.pdf" and link[4] in other for link in files)
    # The page list follows the book's pages: the second lesson's first entry is its page.
    assert str(second) in [label for label, _ in after["page list"]]

    # An edit that moves no page: the book's front, its numbered pages and the EPUB's
    # cover are taken again, as they were (none is laid out again); of the EPUB's
    # chapters, only the edited lesson's is new.
    kept = edited / f"build/.pubkit/collections/01-basics.{CHAPTERS}"
    parts = [edited / f"build/.pubkit/collections/01-basics.{name}" for name in PARTS]
    laid_out = [part.stat().st_mtime_ns for part in parts if part != kept]
    chapters = kept_chapters(kept.read_bytes())
    lesson.write_text(lesson.read_text().replace("longer.", "longer!", 1))
    assert build(edited, jobs=2).ok
    assert [part.stat().st_mtime_ns for part in parts if part != kept] == laid_out
    now = kept_chapters(kept.read_bytes())
    assert len(now) == len(chapters) > 1 and len(now.keys() - chapters.keys()) == 1
    shutil.rmtree(scratch)
    shutil.copytree(edited, scratch)
    shutil.rmtree(scratch / "build")
    assert build(scratch, jobs=1).ok
    assert book_facts(edited / "build", "01-basics") == book_facts(scratch / "build", "01-basics")
    assert "longer!" in book_facts(edited / "build", "01-basics")["pages"][2]
    for suffix in (".pdf", ".epub"):  # the parts taken again are the parts made anew
        collected = f"build/collections/01-basics{suffix}"
        assert (edited / collected).read_bytes() == (scratch / collected).read_bytes()


def test_a_lessons_pages_in_the_book_are_its_own_pdfs_pages(tmp_path: Path) -> None:
    """Drawn from the same layout: the same text on each page but the folio, the
    same pictures (a page rendered: nothing differs outside the folio's band)."""
    import pypdfium2 as pdfium
    from PIL import ImageChops

    root = tmp_path / "links"
    shutil.copytree(PROJECTS / "links", root)
    assert build(root, formats=["pdf"]).ok
    book = pdfium.PdfDocument(root / "build/collections/01-basics.pdf")
    own = pdfium.PdfDocument(root / "build/pdf/01-basics/01-start.pdf")
    mine, theirs = own[0].render(scale=1).to_pil(), book[2].render(scale=1).to_pil()
    assert mine.size == theirs.size
    height = mine.size[1]
    band = (0, 0, mine.size[0], int(height * 0.9))  # above the folio
    difference = ImageChops.difference(mine.convert("RGB"), theirs.convert("RGB"))
    assert difference.crop(band).getbbox() is None
    assert difference.getbbox() is not None  # "1 / 1" against "3 / 4"


def test_the_book_keeps_each_lessons_language_and_reads_as_one_document(tmp_path: Path) -> None:
    root = tmp_path / "scripts"
    shutil.copytree(PROJECTS / "scripts", root)
    assert build(root, formats=["pdf"]).ok
    books = sorted((root / "build/collections").glob("*.pdf"))
    assert books
    for path in books:
        assert_tagged_whole(path)
        with pikepdf.open(path) as pdf:
            languages = [str(kid.Lang) for kid in pdf.Root.StructTreeRoot.K[0].K if kid.S == "/Art"]
        assert len(set(languages)) > 1, languages


def test_unused_frame_pages_leave_nothing_behind(tmp_path: Path) -> None:
    """The blank pages the lessons take are gone from the file, not merely unlisted."""
    root = tmp_path / "links"
    shutil.copytree(PROJECTS / "links", root)
    assert build(root, formats=["pdf"]).ok
    with pikepdf.open(root / "build/collections/01-basics.pdf") as pdf:
        listed = {page.obj.objgen for page in pdf.pages}
        every_page = {
            obj.objgen
            for obj in pdf.objects
            if isinstance(obj, pikepdf.Dictionary) and obj.get("/Type") == "/Page"
        }
        assert every_page == listed


def test_a_lessons_book_ids_stay_out_of_its_other_editions(tmp_path: Path) -> None:
    """A worker keeps a lesson's document and may set another edition of it after the
    module's fragment: renaming the fragment's ids under the lesson's anchor leaves the
    document as it was (it once gave a handout set after it the book's ids)."""
    import json

    from conftest import lesson_text, make_project
    from pubkit.check import check
    from pubkit.course import lessons
    from pubkit.document import markdown
    from pubkit.sources.theme import load_theme

    body = '## Part\n\nSee [the part](#part).\n\n<div id="box">A box.</div>\n'
    root = make_project(tmp_path, {"01-a.md": lesson_text(1, "A", body)})
    checked = check(root)
    config = checked.config
    theme = load_theme(config.styles_dir)
    (lesson,) = checked.manuscripts.lessons

    def reading(lesson: Any) -> Any:
        return lessons._reading(lesson, config, theme)

    markdown.read_ahead([lesson], config.root, None, reading)()  # kept, as in a worker
    outcome = lessons._render_editions(lesson, config, theme, ("pdf",), None, None)
    book = json.dumps(outcome.fragment.blocks)
    assert "lesson-1-part" in book and "lesson-1-box" in book
    again = json.dumps(markdown.convert(lesson, config.root, None, reading(lesson)).ast)
    assert "lesson-1-" not in again
    assert '"part"' in again and '\\"box\\"' in again


def test_a_failed_lesson_leaves_its_modules_last_good_book_whole(tmp_path: Path) -> None:
    """A lesson that fails keeps its module's book as it was, whole and navigable; once
    mended, the book assembled is the one a build from scratch makes."""
    root = tmp_path / "links"
    shutil.copytree(PROJECTS / "links", root)
    assert build(root, jobs=2).ok
    book = root / "build/collections/01-basics.pdf"
    good = book.read_bytes()
    lesson = root / "manuscript/01-basics/02-next.md"
    text = lesson.read_text()
    lesson.write_text(text + "\n![A missing picture](nowhere.png)\n\n" + LONGER)
    assert not build(root, jobs=2).ok
    assert book.read_bytes() == good
    assert_tagged_whole(book)
    lesson.write_text(text + "\n" + LONGER)
    assert build(root, jobs=2).ok
    scratch = tmp_path / "scratch"
    shutil.copytree(root, scratch)
    shutil.rmtree(scratch / "build")
    assert build(scratch, jobs=1).ok
    assert book_facts(root / "build", "01-basics") == book_facts(scratch / "build", "01-basics")
    assert book.read_bytes() != good


def test_a_lessons_book_pages_are_its_own_pdf_less_its_page_numbers(tmp_path: Path) -> None:
    """The fragment's pages are made from the lesson's own PDF by qpdf: the same words on
    each page but the folio's, every destination and internal link under the lesson's
    anchor, links to lessons led into the book, the folio's stream left out."""
    root = tmp_path / "links"
    shutil.copytree(PROJECTS / "links", root)
    assert build(root, formats=["pdf"]).ok
    own_pdf = root / "build/pdf/01-basics/01-start.pdf"
    fragment = next((root / "build/.pubkit/fragments").rglob("01-start.pdf"))
    own, book = page_texts(own_pdf), page_texts(fragment)
    assert len(own) == len(book)
    for mine, theirs in zip(own, book, strict=True):
        folio = [line for line in mine.splitlines() if re.fullmatch(r"\d+ / \d+", line.strip())]
        assert len(folio) == 1, mine  # the lesson's own "1 / 1" …
        assert theirs.split() == mine.replace(folio[0], "").split()  # … alone is cut
    with pikepdf.open(own_pdf) as mine, pikepdf.open(fragment) as theirs:
        names = list(_named(mine))
        assert names and list(_named(theirs)) == [f"lesson-1-{name}" for name in names]
        for page in mine.pages:  # the folio's drawing is a stream of its own …
            apart = [s for s in page.obj.Contents if "/PubkitApart" in s.stream_dict]
            assert len(apart) == 1 and b"TJ" in apart[0].read_bytes()
        led = set()
        for page in theirs.pages:  # … which the book's page leaves out
            assert all("/PubkitApart" not in s.stream_dict for s in page.obj.Contents)
            for link in page.get("/Annots", ()):
                if "/Dest" in link:
                    led.add(("page", str(link.Dest)))
                elif link.A.S == "/GoToR":
                    led.add(("file", f"{link.A.F}#{link.A.D}"))
    assert {
        ("page", "lesson-1-where-to-go-next"),  # its own section
        ("page", "lesson-2-second-section"),  # a lesson of its module
        ("file", "02-advanced.pdf#lesson-1-proofs"),  # another module's book
    } <= led, led


def test_the_numbered_pages_are_laid_out_with_only_the_edges_that_number_pages() -> None:
    """The book's numbered pages are laid out without the margin boxes of a page edge where
    no box uses the page counters (running heads, which the book takes from the lessons'
    own pages), and with every box of an edge where one may: their widths are shared."""
    from pubkit.engines.bookpages import numbers_only

    rules = numbers_only(
        "@page { @top-left { content: string(lesson-title) }"
        " @bottom-center { content: counter(page) ' / ' counter(pages) } }"
        "@media print { @page :left { @right-top { content: counters(pages, '.') } } }"
        "@page :first { @left-middle { content: var(--folio) } }"
        "@page { @top-left-corner { content: 'x' } }"
    )
    left_out = set(re.findall(r"@([a-z-]+)\{content:none!important\}", rules))
    assert {"top-left", "top-center", "top-right", "top-left-corner"} <= left_out
    assert not left_out & {"bottom-left", "bottom-center", "right-top", "right-bottom"}
    assert not left_out & {"left-top", "left-middle"}  # var() may number pages
    assert numbers_only("@page { @bottom-center { content: counter(section) } }").count("@") == 32
