"""Numbered figures, tables and equations, and references to them (``@fig-chart``): the
captions and the links read back from the PDF and the EPUB, and a reference to nothing
an error at its line."""

from __future__ import annotations

import re
import zipfile
from pathlib import Path

import pypdf
import pytest

from conftest import PROJECTS, lesson_text, make_project
from pdfinfo import page_texts
from pubkit.build import BuildResult, build
from pubkit.errors import ConfigError

FIGURE = PROJECTS / "links/manuscript/01-basics/fig/swatch.png"
BODY = r"""## Results {#sec-results}

As @fig-swatch shows, and [@tbl-sales] lists, the sum is @eq-sum
(see the section @sec-results; write to ops@sec-team.org).

![Two colours side by side.](swatch.png){#fig-swatch}

::: {#tbl-sales}
| Quarter | Sales |
|---------|------:|
| Q1      |    10 |

Sales by quarter.
:::

$$\sum_{i=1}^{n} i = \frac{n(n+1)}{2}$$ {#eq-sum}

![A second figure.](swatch.png){#fig-second}

And @fig-second comes second.

| Year | Price |
|------|------:|
| 2024 |     3 |

: Prices by year, as @tbl-sales has them {#tbl-prices}

[Compare @tbl-prices.]{.aside}
"""


@pytest.fixture(scope="module")
def numbered(tmp_path_factory: pytest.TempPathFactory) -> tuple[BuildResult, Path]:
    root = make_project(tmp_path_factory.mktemp("xref"), {"01-x.md": lesson_text(1, "X", BODY)})
    (root / "manuscript/01-module/swatch.png").write_bytes(FIGURE.read_bytes())
    result = build(root, force=True)
    assert result.ok and not result.diagnostics, [str(d) for d in result.diagnostics]
    return result, root / "build"


def test_references_read_as_numbered_links_in_the_pdf(numbered: tuple[BuildResult, Path]) -> None:
    _, out = numbered
    pdf = out / "pdf/01-module/01-x.pdf"
    reader = pypdf.PdfReader(pdf)
    text = " ".join(" ".join(page.extract_text() for page in reader.pages).split())
    assert "As Figure 1 shows, and Table 1 lists, the sum is Equation 1" in text
    assert "(see the section Results; write to ops@sec-team.org)" in text
    assert "Figure 1: Two colours side by side." in text
    assert "Table 1: Sales by quarter." in text
    assert "Figure 2: A second figure." in text and "And Figure 2 comes second." in text
    assert "(1)" in text  # the equation's number
    # pandoc's (and Quarto's) caption after a table; a reference in a caption, in a span
    assert "Table 2: Prices by year, as Table 1 has them" in text
    assert "Compare Table 2." in text
    destinations = set(reader.named_destinations)
    links = [
        str(annotation.get_object()["/Dest"])
        for page in reader.pages
        for annotation in page.get("/Annots") or []
        if "/Dest" in annotation.get_object()
    ]
    labels = {"fig-swatch", "tbl-sales", "eq-sum", "sec-results", "fig-second", "tbl-prices"}
    assert labels <= set(links)
    assert set(links) <= destinations


def test_the_epub_links_references_to_their_labels(numbered: tuple[BuildResult, Path]) -> None:
    _, out = numbered
    with zipfile.ZipFile(out / "epub/01-module/01-x.epub") as epub:
        chapter = epub.read("EPUB/text/ch001.xhtml").decode("utf-8")
    links = dict(
        re.findall(
            r'<a href="(?:ch001.xhtml)?#([^"]+)" class="cross-reference">([^<]+)</a>', chapter
        )
    )
    assert links == {
        "fig-swatch": "Figure 1",
        "tbl-sales": "Table 1",
        "eq-sum": "Equation 1",
        "sec-results": "Results",
        "fig-second": "Figure 2",
        "tbl-prices": "Table 2",
    }
    for name in links:
        assert f'id="{name}"' in chapter
    assert "<caption>Table 1: Sales by quarter.</caption>" in chapter


def _first_page(tmp_path: Path, name: str, lesson: str) -> tuple[Path, str]:
    """The course of lesson ``name``, built with the figure it shows, and the text of the
    first page of its PDF."""
    root = make_project(tmp_path, {f"{name}.md": lesson})
    (root / "manuscript/01-module/swatch.png").write_bytes(FIGURE.read_bytes())
    result = build(root, formats=["pdf"], force=True)
    assert result.ok, [str(d) for d in result.diagnostics]
    reader = pypdf.PdfReader(root / f"build/pdf/01-module/{name}.pdf")
    return root, " ".join(reader.pages[0].extract_text().split())


def test_the_words_follow_the_lessons_language(tmp_path: Path) -> None:
    text = "Siehe @fig-a.\n\n![Ein Bild.](swatch.png){#fig-a}\n"
    front = "---\nlesson: 1\ntitle: Bild\nlanguage: de\n---\n\n"
    _, text = _first_page(tmp_path, "01-de", front + text)
    assert "Siehe Abbildung 1." in text and "Abbildung 1: Ein Bild." in text


def test_a_reference_to_no_label_and_a_label_given_twice_are_errors(tmp_path: Path) -> None:
    bad = "See @fig-missing here.\n\n![A.](swatch.png){#fig-a}\n\n![B.](swatch.png){#fig-a}\n"
    root = make_project(
        tmp_path, {"01-bad.md": lesson_text(1, "Bad", bad), "02-ok.md": lesson_text(2)}
    )
    (root / "manuscript/01-module/swatch.png").write_bytes(FIGURE.read_bytes())
    result = build(root, formats=["pdf"], force=True)
    assert [p.name for p in result.failed] == ["01-bad.md"]
    found = [(d.line, d.message) for d in result.diagnostics if d.is_error]
    assert (6, "reference to “fig-missing”: no such label in this lesson") in found
    assert any(message == "label “fig-a” is given twice" for _, message in found), found


def test_a_russian_lesson_reads_in_russian(tmp_path: Path) -> None:
    text = "См. @fig-a и формулу @eq-e.\n\n![Брусок.](swatch.png){#fig-a}\n\n$$E = mc^2$$ {#eq-e}\n"
    front = "---\nlesson: 1\ntitle: Энергия\nlanguage: ru\n---\n\n"
    _, text = _first_page(tmp_path, "01-ru", front + text)
    # Counts that read right for any number, without Russian's three plural forms.
    assert "МОДУЛЬ 1" in text.upper() and "УРОК 1" in text.upper()
    assert "1 стр." in text and "слов:" in text and "мин чтения" in text
    assert "См. Рисунок 1 и формулу Формула 1." in text and "Рисунок 1: Брусок." in text


def test_the_theme_numbers_by_lesson_in_every_edition_and_the_collection(tmp_path: Path) -> None:
    """A theme's numbering.yaml: "{lesson}.{n}" in the lesson's editions and its module's
    collection, where it tells one lesson's Figure 1 from the next one's."""
    second = "See @fig-a and @tbl-b.\n\n![A.](swatch.png){#fig-a}\n\n" + (
        "| x |\n|---|\n| 1 |\n\n: B. {#tbl-b}\n\n$$x = 1$$ {#eq-c}\n\nBy @eq-c.\n"
    )
    root = make_project(
        tmp_path, {"01-a.md": lesson_text(3, "A", BODY), "02-b.md": lesson_text(4, "B", second)}
    )
    (root / "manuscript/01-module/swatch.png").write_bytes(FIGURE.read_bytes())
    (root / "styles").mkdir()
    (root / "styles/numbering.yaml").write_text(
        'figure: "{lesson}.{n}"\nequation: "{lesson}-{n}"\n'
    )
    result = build(root, force=True)
    assert result.ok, [str(d) for d in result.diagnostics]
    text = " ".join(" ".join(page_texts(root / "build/pdf/01-module/02-b.pdf")).split())
    assert "See Figure 4.1 and Table 1." in text  # tables as pubkit numbers them
    assert "Figure 4.1: A." in text and "(4-1)" in text and "By Equation 4-1." in text
    book = " ".join(" ".join(page_texts(root / "build/collections/01-module.pdf")).split())
    assert "Figure 3.1: Two colours side by side." in book and "Figure 3.2: A second" in book
    assert "Figure 4.1: A." in book
    with zipfile.ZipFile(root / "build/epub/01-module/02-b.epub") as epub:
        chapter = epub.read("EPUB/text/ch001.xhtml").decode("utf-8")
    assert ">Figure 4.1</a>" in chapter


def test_a_bad_numbering_is_an_error_at_its_line(tmp_path: Path) -> None:
    root = make_project(tmp_path, {"01-a.md": lesson_text(1)})
    (root / "styles").mkdir()
    (root / "styles/numbering.yaml").write_text(
        'figure: "{n}"\nfigures: "{n}"\ntable: "{chapter}"\n'
    )
    with pytest.raises(ConfigError) as caught:
        build(root)
    found = [(d.path.name, d.line, d.message) for d in caught.value.diagnostics]
    unknown = (
        "unknown kind 'figures' (did you mean 'figure'?); numbered are figure, table, equation"
    )
    assert found[0] == ("numbering.yaml", 2, unknown)
    assert found[1][1] == 3 and found[1][2].startswith("table: expected a pattern with {n}")
    assert len(found) == 2
    # a fault of the theme's blocks.yaml is reported with them, not instead
    (root / "styles/blocks.yaml").write_text("exercise:\n  role: boxx\n")
    with pytest.raises(ConfigError) as caught:
        build(root)
    files = [d.path.name for d in caught.value.diagnostics]
    assert files.count("numbering.yaml") == 2 and "blocks.yaml" in files


def test_a_korean_particle_written_onto_a_reference_stays_text(tmp_path: Path) -> None:
    """Korean and Japanese write particles onto a word (``@fig-a처럼``, "like Figure 1"):
    the reference is the label it begins with, the particle follows it as text; a label
    that does not exist is still an error, named as written."""
    text = (
        "@fig-a처럼 보입니다. @eq-e은 공식입니다. [@fig-a]를 보세요.\n\n"
        "![막대.](swatch.png){#fig-a}\n\n$$E = mc^2$$ {#eq-e}\n"
    )
    front = "---\nlesson: 1\ntitle: 에너지\nlanguage: ko\n---\n\n"
    root, page = _first_page(tmp_path, "01-ko", front + text)
    assert "그림 1처럼 보입니다." in page and "식 1은 공식입니다." in page, page
    assert "그림 1를 보세요." in page, page
    (root / "manuscript/01-module/01-ko.md").write_text(front + "@fig-b처럼 없습니다.\n")
    failed = build(root, formats=["pdf"], force=True)
    found = [d.message for d in failed.diagnostics if d.is_error]
    assert "reference to “fig-b처럼”: no such label in this lesson" in found, found


CROSSREF = r"""## Method {#sec:method}

As @fig:swatch shows, and [@tbl:sales] lists, the sum is @eq:sum (see @sec:method).
At the end of a sentence, @fig:swatch: a colon after it stays text.

![Two colours.](swatch.png){#fig:swatch}

| Quarter | Sales |
|---------|------:|
| Q1      |    10 |

: Sales by quarter {#tbl:sales}

$$\sum_{i=1}^{n} i = \frac{n(n+1)}{2}$$ {#eq:sum}
"""


def test_pandoc_crossrefs_spelling_reads_the_same(tmp_path: Path) -> None:
    """A lesson written for pandoc-crossref (``{#fig:swatch}``, ``@fig:swatch``) numbers
    and links as Quarto's spelling does, in the PDF and in an EPUB that EPUBCheck takes
    (every build checks it); its labels keep their names as written."""
    root = make_project(tmp_path, {"01-x.md": lesson_text(1, "X", CROSSREF)})
    (root / "manuscript/01-module/swatch.png").write_bytes(FIGURE.read_bytes())
    result = build(root, formats=["pdf", "epub"], force=True)
    assert result.ok and not result.diagnostics, [str(d) for d in result.diagnostics]
    reader = pypdf.PdfReader(root / "build/pdf/01-module/01-x.pdf")
    text = " ".join(" ".join(page.extract_text() for page in reader.pages).split())
    assert "As Figure 1 shows, and Table 1 lists, the sum is Equation 1 (see Method)." in text
    assert "At the end of a sentence, Figure 1: a colon after it stays text." in text
    assert "Figure 1: Two colours." in text and "Table 1: Sales by quarter" in text
    links = {
        str(annotation.get_object()["/Dest"])
        for page in reader.pages
        for annotation in page.get("/Annots") or []
        if "/Dest" in annotation.get_object()
    }
    assert {"fig:swatch", "tbl:sales", "eq:sum", "sec:method"} <= links
    assert links <= set(reader.named_destinations)
    with zipfile.ZipFile(root / "build/epub/01-module/01-x.epub") as epub:
        chapter = epub.read("EPUB/text/ch001.xhtml").decode("utf-8")
    found = re.findall(r'<a href="(?:ch001.xhtml)?#([^"]+)" class="cross-reference">', chapter)
    assert set(found) == {"fig:swatch", "tbl:sales", "eq:sum", "sec:method"}
    assert all(f'id="{name}"' in chapter for name in found)
