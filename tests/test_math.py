"""TeX math: typeset in the PDFs (drawn on the text's baseline, the TeX as alternate text),
MathML with ``alttext`` in the EPUB, prices kept as prices, and TeX that cannot be set an
error at its line."""

from __future__ import annotations

import re
import zipfile
from pathlib import Path

import pypdf
import pytest

from conftest import lesson_text, make_project
from pdfinfo import alternate_texts
from pubkit.build import BuildResult, build
from pubkit.document.ast import walk
from pubkit.document.markdown import convert
from pubkit.document.math import drawn
from pubkit.sources.config import load_config
from pubkit.sources.manuscript import collect

BODY = r"""## Area

The area is $A = \pi r^2$, and prices stay prices: $22,000 and $34,000, or \$5.
A sum:

$$\sum_{i=1}^{n} i = \frac{n(n+1)}{2}$$

and a root $\sqrt{x^2 + y^2}$ inline.
"""


@pytest.fixture(scope="module")
def math_build(tmp_path_factory: pytest.TempPathFactory) -> tuple[BuildResult, Path]:
    root = make_project(
        tmp_path_factory.mktemp("math"), {"01-circle.md": lesson_text(1, "Circle", BODY)}
    )
    result = build(root, force=True)  # every edition, the EPUB through EPUBCheck
    assert result.ok and not result.diagnostics, [str(d) for d in result.diagnostics]
    return result, root / "build"


def test_the_pdfs_typeset_math_and_keep_prices(math_build: tuple[BuildResult, Path]) -> None:
    _, out = math_build
    for edition in ("pdf", "handout"):
        pdf = out / f"{edition}/01-module/01-circle.pdf"
        text = " ".join(page.extract_text() for page in pypdf.PdfReader(pdf).pages)
        assert "$22,000 and $34,000, or $5" in " ".join(text.split())
        assert "\\pi" not in text and "\\frac" not in text and "$A" not in text
    # The tagged PDF (the pdf edition: the handout is for print) describes each formula.
    alts = alternate_texts(out / "pdf/01-module/01-circle.pdf")
    assert r"A = \pi r^2" in alts, alts
    assert r"\sum_{i=1}^{n} i = \frac{n(n+1)}{2}" in alts


def test_the_epub_holds_mathml_with_its_tex(math_build: tuple[BuildResult, Path]) -> None:
    _, out = math_build
    with zipfile.ZipFile(out / "epub/01-module/01-circle.epub") as epub:
        chapter = epub.read("EPUB/text/ch001.xhtml").decode("utf-8")
        package = epub.read("EPUB/content.opf").decode("utf-8")
    formulas = re.findall(r'<m:math alttext="([^"]*)" display="(\w+)"', chapter)
    assert formulas == [
        (r"A = \pi r^2", "inline"),
        (r"\sum_{i=1}^{n} i = \frac{n(n+1)}{2}", "block"),
        (r"\sqrt{x^2 + y^2}", "inline"),
    ]
    assert "$22,000 and $34,000, or $5" in chapter
    assert 'properties="mathml"' in package
    assert '<meta property="schema:accessibilityFeature">MathML</meta>' in package


def test_inline_math_sits_on_the_baseline_at_the_texts_size() -> None:
    plain = drawn("x", False)
    assert 0.3 < plain.height < 0.8 and plain.depth < 0.05  # an x: no descent
    deep = drawn("y_i^2", False)
    assert deep.depth > 0.1  # a subscript reaches below the baseline
    assert drawn(r"\frac{a}{b}", True).height > plain.height * 2


def test_tex_that_cannot_be_set_is_an_error_at_its_line(tmp_path: Path) -> None:
    bad = "Fine $x$.\n\nUnknown $\\foo{x}$ here.\n\nBroken $\\frac{a}{b$ there.\n"
    root = make_project(
        tmp_path, {"01-bad.md": lesson_text(1, "Bad", bad), "02-ok.md": lesson_text(2, "Ok", BODY)}
    )
    result = build(root, formats=["pdf"], force=True)
    assert [p.name for p in result.failed] == ["01-bad.md"]
    assert [r.lesson.path.name for r in result.built] == ["02-ok.md"]
    found = sorted((d.line, d.message) for d in result.diagnostics)
    assert found == [
        (8, "math “\\foo{x}”: unknown TeX command \\foo"),
        (
            10,
            "“$\\frac{a}{b$” looks like TeX math but is not read as math: its braces do not "
            "balance (a dollar sign before a price is written \\$)",
        ),
    ]


def test_dollar_amounts_stay_text(tmp_path: Path) -> None:
    prices = (
        "Salaries rose from $85,000 to $120,000, a $35k raise; the fee is $5 or $ 10,\n"
        "between $5 and $10 a month, US$20, and 5$ in some countries.\n"
    )
    root = make_project(tmp_path, {"01-prices.md": lesson_text(1, "Prices", prices)})
    config, _ = load_config(root)
    (lesson,) = collect(config).lessons
    document = convert(lesson, root)
    assert not [node for node in walk(document.ast["blocks"]) if node["t"] == "Math"]
    assert " ".join(document.text.split()) == " ".join(prices.split())


DESCRIBED = r"""Inline \( E = mc^2 \) in LaTeX's delimiters, an escaped \[bracket\] as text.

\[
  \int_0^1 x \, dx = \frac{1}{2}
\]

Described: $A = \pi r^2${alt="A equals pi r squared"}, and a numbered one:

$$a^2 + b^2 = c^2$${#eq-pythagoras alt="a squared plus b squared equals c squared"}

By @eq-pythagoras. In code, `\(x\)` stays code.
"""


@pytest.fixture(scope="module")
def described_build(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = make_project(
        tmp_path_factory.mktemp("described"), {"01-d.md": lesson_text(1, "D", DESCRIBED)}
    )
    result = build(root, force=True)
    assert result.ok and not result.diagnostics, [str(d) for d in result.diagnostics]
    return root / "build"


def test_latex_delimiters_are_math_outside_code(described_build: Path) -> None:
    text = " ".join(
        page.extract_text()
        for page in pypdf.PdfReader(described_build / "pdf/01-module/01-d.pdf").pages
    )
    assert "mc^2" not in text and "\\int" not in text and "\\( E" not in text
    assert "[bracket]" in text and "(1)" in text and "Equation 1" in text
    assert "\\(x\\)" in text  # the code span, as written


def test_an_authors_description_is_the_formulas_alternative(described_build: Path) -> None:
    alts = alternate_texts(described_build / "pdf/01-module/01-d.pdf")
    assert "A equals pi r squared" in alts and r"A = \pi r^2" not in alts
    assert "a squared plus b squared equals c squared" in alts
    assert "E = mc^2" in alts  # undescribed: its TeX
    with zipfile.ZipFile(described_build / "epub/01-module/01-d.epub") as epub:
        chapter = epub.read("EPUB/text/ch001.xhtml").decode("utf-8")
        package = epub.read("EPUB/content.opf").decode("utf-8")
    assert 'alttext="A equals pi r squared" class="described"' in chapter
    assert 'alt="' not in re.sub(r"<img[^>]*>", "", chapter)  # no stray alt on a span
    assert ">MathML<" in package
    assert ">describedMath<" not in package  # two formulas are not described


def test_described_math_is_claimed_when_every_formula_is(tmp_path: Path) -> None:
    body = 'Only $x + 1${alt="x plus one"} here.\n'
    root = make_project(tmp_path, {"01-d.md": lesson_text(1, "D", body)})
    assert build(root, formats=["epub"]).ok
    with zipfile.ZipFile(root / "build/epub/01-module/01-d.epub") as epub:
        package = epub.read("EPUB/content.opf").decode("utf-8")
    assert ">describedMath<" in package


def test_formula_paths_are_drawn_as_weasyprint_draws_them(tmp_path: Path) -> None:
    """The kept path operators (pubkit.engines.svgpaths) give the very bytes WeasyPrint's
    own drawing gives."""
    from weasyprint import HTML
    from weasyprint import svg as weasy_svg

    from pubkit.engines import svgpaths

    formulas = [drawn(rf"\frac{{x^{n}}}{{\sqrt{{{n}}}}} + \alpha", n % 2 == 0) for n in range(6)]
    page = "".join(f.img("f", False) for f in formulas * 2)  # each drawn twice

    def pdf() -> bytes:
        data: bytes = HTML(string=f"<p>{page}</p>").write_pdf(pdf_identifier=b"x" * 16)
        return data

    svgpaths.install()
    kept = pdf()
    weasy_svg.TAGS["path"] = svgpaths._draw_path
    try:
        own = pdf()
    finally:
        svgpaths.install()
    assert kept == own


def test_drawn_formulas_are_kept_for_later_builds(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pubkit.document import math

    monkeypatch.setenv("PUBKIT_CACHE", str(tmp_path))
    tex = r"\int_0^{42} t \, dt"
    first = math.drawn.__wrapped__(tex, True)  # drawn, and kept on disk
    (kept,) = (tmp_path / "formulas").rglob("*.json")
    assert math.drawn.__wrapped__(tex, True) == first  # read back
    kept.write_text("{damaged")
    assert math.drawn.__wrapped__(tex, True) == first  # drawn again
    monkeypatch.setenv("PUBKIT_CACHE", "")
    assert math.formula_cache() is None
