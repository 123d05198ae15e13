"""TeX math: typeset in the PDFs (drawn on the text's baseline, the TeX as alternate text),
MathML with ``alttext`` in the EPUB, prices kept as prices, and TeX that cannot be set an
error at its line."""

from __future__ import annotations

import contextlib
import json
import re
import subprocess
import sys
import zipfile
from collections import deque
from pathlib import Path

import pypdf
import pytest

from conftest import lesson_text, make_project
from pdfinfo import alternate_texts, page_texts
from pubkit.build import BuildResult, build
from pubkit.document.ast import walk
from pubkit.document.markdown import convert
from pubkit.document.math import drawn, formula_url
from pubkit.engines.fetcher import ProjectFetcher
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

    texes = [(rf"\frac{{x^{n}}}{{\sqrt{{{n}}}}} + \alpha", n % 2 == 0) for n in range(6)]
    page = "".join(drawn(*f).img("f", False, formula_url(*f)) for f in texes * 2)  # twice each

    def pdf() -> bytes:
        html = HTML(string=f"<p>{page}</p>", url_fetcher=ProjectFetcher([tmp_path]))
        data: bytes = html.write_pdf(pdf_identifier=b"x" * 16)
        return data

    svgpaths.install()
    kept = pdf()
    weasy_svg.TAGS["path"] = svgpaths._draw_path
    try:
        own = pdf()
    finally:
        svgpaths.install()
    assert kept == own


#: Paths as ziafont writes them, each with a twist WeasyPrint's reading must agree on.
SIMPLE_PATHS = (
    "M 1 2 L 3 4 Q 5 6 7 8 C 1 2 3 4 5 6 Z M 9 9 L 10 10 Z",
    "M 0.5 -1.25 L 2 -3.5 Z Z M 1 1 Z L 4 4",  # closed twice; a bare move closed
    "L 1 1 Q 2 2 3 3 Z",  # no opening move
    "M 1 1 M 2 2 L 3 3 C 4 4 5 5 6 6 M 7 7 Q 1 2 3 4 Z ",
    "",
)
#: Paths only WeasyPrint's own reading takes.
OTHER_PATHS = ("M 1 2 L 3", "M1,2 l 3 4 h 5 v 6 z", "M 1e1 2 L 3 4", "M 1 2 L - 4")


class _Node(dict[str, str]):
    """What WeasyPrint's path drawing reads of an SVG node."""

    def __init__(self, d: str) -> None:
        super().__init__(d=d)
        self.attrib = dict(self)
        self.vertices: deque[object] = deque()


class _Drawing:
    """What WeasyPrint's path drawing reads of the SVG it draws in."""

    def __init__(self) -> None:
        from pydyf import Stream

        self.stream = Stream()

    def point(self, x: str, y: str, font_size: float) -> tuple[float, float]:
        from weasyprint.svg.utils import size

        return size(x, font_size, 100), size(y, font_size, 100)


@pytest.mark.parametrize("d", SIMPLE_PATHS + OTHER_PATHS)
def test_paths_are_read_as_weasyprint_reads_them(d: str) -> None:
    """pubkit.engines.svgpaths reads a path written as ziafont writes glyphs itself,
    writing the very operators WeasyPrint's reading writes; any other is left to it."""
    from weasyprint.svg.utils import PointError

    from pubkit.engines import svgpaths

    own, fast = _Drawing(), _Drawing()
    with contextlib.suppress(PointError):  # as WeasyPrint's drawing of a node does
        svgpaths._draw_path(own, _Node(d), 12.0)
    read = svgpaths._simple_path(fast.stream, _Node(d))
    assert read == (d in SIMPLE_PATHS)
    if read:
        assert fast.stream.stream == own.stream.stream


def test_formulas_are_drawn_as_ziamath_draws_them() -> None:
    """pubkit.document.mathsvg's shortcuts in ziamath (rows measured only when something
    in them stretches, styles copied shallow) draw what ziamath itself draws, for every
    kind of formula: stretchy fences, matrices, roots, accents, colours, nested rows."""
    formulas = [
        r"\left( \frac{a}{b} \right)^{2} + \left\{ x \middle| x > \frac{1}{2} \right\}",
        r"\begin{pmatrix} 1 & \frac{1}{2} \\ 3 & \left( 4 \right) \end{pmatrix}",
        r"\sqrt[3]{x^2+\sqrt{y}} \cdot \frac{1}{1+\frac{1}{1+x}}",
        r"\color{red}{x} + \overline{abc} \underbrace{x+y}_{n} \hat{x}\vec{v}",
        r"\begin{cases} 1 & x>0 \\ 0 & \text{else}\end{cases}",
        r"\sum_{i=1}^{n} i^2 = \frac{n(n+1)(2n+1)}{6}, \int_0^\infty e^{-x^2}\,dx",
        r"|x| + \|y\| + \left| \frac{a}{b} \right| \lfloor x \rfloor \langle \psi | \phi \rangle",
        r"\left. \frac{df}{dx} \right|_{x=0} \xrightarrow{f} \binom{n}{k}",
    ]
    script = """
import json, sys
import ziafont
from xml.etree import ElementTree
from ziamath.zmath import Math
from pubkit.document import mathsvg
from pubkit.document.math import mathml
ziafont.config.svg2 = False
ziafont.config.precision = mathsvg.PRECISION
drawn = []
for tex in json.load(sys.stdin):
    for display in (True, False):
        drawing = Math(mathml(tex, display), size=mathsvg.DRAWN_AT, margin=0).svgxml()
        mathsvg._merge_glyphs(drawing)
        drawn.append(ElementTree.tostring(drawing, encoding="unicode"))
print(json.dumps(drawn))
"""
    done = subprocess.run(  # ziamath as it is, in a process pubkit has not sped up
        [sys.executable, "-c", script],
        input=json.dumps(formulas),
        capture_output=True,
        text=True,
        check=True,
    )
    from pubkit.document import mathsvg
    from pubkit.document.math import mathml

    ours = [mathsvg.draw(mathml(tex, display)) for tex in formulas for display in (True, False)]
    assert ours == json.loads(done.stdout)


def test_a_formula_is_one_path_of_glyphs() -> None:
    """Glyphs of one colour are one path in the formula's coordinates; rules stay
    rectangles; nothing is a <use> of a <symbol>, which WeasyPrint draws slowly."""
    from pubkit.document import mathsvg
    from pubkit.document.math import mathml

    svg = mathsvg.draw(mathml(r"\frac{a+b}{\sqrt{c}} = x", True))
    assert svg.count("<path ") == 1
    assert svg.count("<rect ") == 2  # the fraction's bar and the root's
    assert "<use" not in svg and "<symbol" not in svg


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


@pytest.mark.parametrize(
    ("tex", "rows"),
    [
        (r"\begin{aligned} a &= b + c \\ &= d \end{aligned}", 2),
        (r"\begin{alignedat}{2} a &= b & c &= d \end{alignedat}", 1),
        (r"\begin{eqnarray} a &=& b \end{eqnarray}", 1),
        (r"\begin{gathered} a \\ b \end{gathered}", 2),
        (r"f = \left\{ \begin{aligned} x &, a \\ y &, b \end{aligned} \right.", 2),
    ],
)
def test_amsmath_environments_latex2mathml_lacks_are_set_as_ones_it_has(
    tex: str, rows: int
) -> None:
    """``aligned`` and its kin (everyday in Markdown math) become well-formed MathML
    tables, drawn for the PDFs row under row; latex2mathml alone let their ``&`` through
    raw, which no XML reader takes."""
    import xml.etree.ElementTree as ET

    from pubkit.document.math import mathml

    converted = ET.fromstring(mathml(tex, True))
    found = [e for e in converted.iter() if e.tag.endswith("}mtr")]
    assert len(found) == rows
    assert drawn(tex, True).height > 0.7 * rows  # ems: rows one under another


def test_a_formula_in_a_heading_reads_as_its_tex_in_the_contents(tmp_path: Path) -> None:
    """The EPUB's contents and the PDF's bookmarks are text: a heading's formula is its
    TeX there (MathML in the navigation document failed EPUBCheck), and an unknown TeX
    environment is an error at its line."""
    body = "## The ratio $\\frac{a}{b}$\n\nText.\n"
    root = make_project(tmp_path, {"01-h.md": lesson_text(1, "Heading", body)})
    result = build(root)
    assert result.ok and not result.diagnostics, [str(d) for d in result.diagnostics]
    with zipfile.ZipFile(root / "build/epub/01-module/01-h.epub") as epub:
        nav = epub.read("EPUB/nav.xhtml").decode("utf-8")
    assert "The ratio <span>\\frac{a}{b}</span>" in nav and "<math" not in nav
    outline = pypdf.PdfReader(root / "build/pdf/01-module/01-h.pdf").outline
    assert outline[1][0]["/Title"] == "The ratio \\frac{a}{b}"
    (root / "manuscript/01-module/01-h.md").write_text(
        lesson_text(1, "Heading", "Text.\n\n$$\\begin{tabular} a \\end{tabular}$$\n")
    )
    failed = build(root, formats=["pdf"])
    assert [(d.line, d.message) for d in failed.diagnostics if d.is_error] == [
        (8, "math “\\begin{tabular} a \\end{tabular}”: unknown TeX environment tabular")
    ]


def test_a_blocks_title_sets_its_formulas(tmp_path: Path) -> None:
    """``title="Compute $x^2$"`` on a block: the formula is set as every formula is (no
    TeX in the PDF's text, MathML in the EPUB), a price in a title stays a price."""
    body = (
        '::: {.exercise title="Compute $x^2$ for \\$5"}\nWork it out.\n:::\n\n'
        '::: {.callout-note title="Costs $10 and $20"}\nPrices.\n:::\n'
    )
    root = make_project(tmp_path, {"01-t.md": lesson_text(1, "Titles", body)})
    result = build(root)
    assert result.ok and not result.diagnostics, [str(d) for d in result.diagnostics]
    text = " ".join(" ".join(page_texts(root / "build/pdf/01-module/01-t.pdf")).split())
    assert "for $5" in text.replace("FOR", "for") and "x^2" not in text
    assert "$10 and $20".upper() in text.upper()
    assert "x^2" in alternate_texts(root / "build/pdf/01-module/01-t.pdf")
    with zipfile.ZipFile(root / "build/epub/01-module/01-t.epub") as epub:
        chapter = epub.read("EPUB/text/ch001.xhtml").decode("utf-8")
    assert 'alttext="x^2"' in chapter and "$x^2$" not in chapter


def test_a_formula_in_a_title_is_said_once_at_its_line(tmp_path: Path) -> None:
    """A title is plain text, printed as written: TeX in it gets a warning at its line
    (once, not once per edition); a price in a title none."""
    root = make_project(
        tmp_path,
        {
            "01-t.md": lesson_text(1, "Solving $x^2 = 2$"),
            "02-p.md": lesson_text(2, "Costs $5 and $6"),
        },
    )
    result = build(root)
    assert result.ok
    said = [(d.path.name, d.line, d.message) for d in result.diagnostics]
    assert said == [
        (
            "01-t.md",
            3,
            "title: “$x^2 = 2$” is TeX math, which a title prints as written (it is plain text: "
            "write the formula in words, or in Unicode such as x²)",
        )
    ]


def test_the_epubs_formulas_are_centred_in_the_pdfs_math_font(
    math_build: tuple[BuildResult, Path], tmp_path: Path, browser: object
) -> None:
    """The EPUB's MathML is set in a subset of STIX Two Math (the font the PDFs' formulas
    are drawn with, with its MATH table: a display ∑ takes its large form), embedded only
    in a book with formulas; in a browser a display formula is centred in the column, a
    numbered one centred with its number at the right."""
    from fontTools.ttLib import TTFont

    root = make_project(
        tmp_path,
        {
            "01-sums.md": lesson_text(
                1, "Sums", "Gauss:\n\n$$\\sum_{i=1}^{n} i = \\frac{n(n+1)}{2}$$ {#eq-gauss}\n"
            ),
            "02-prose.md": lesson_text(2, "Prose", "Words alone, no formula.\n"),
        },
    )
    result = build(root, force=True)
    assert result.ok and not result.diagnostics, [str(d) for d in result.diagnostics]
    with zipfile.ZipFile(root / "build/epub/01-module/02-prose.epub") as prose:
        assert not [n for n in prose.namelist() if "STIX" in n]
    with zipfile.ZipFile(root / "build/epub/01-module/01-sums.epub") as epub:
        epub.extractall(tmp_path / "sums")
    font = TTFont(tmp_path / "sums/EPUB/fonts/STIXTwoMath-Regular.ttf")
    cmap = font.getBestCmap()
    assert "MATH" in font and ord("∑") in cmap
    assert ord("𝑛") in cmap and ord("𝑖") in cmap  # the italic forms a reader sets <mi> in
    assert len(cmap) < 300  # a subset, not the 1.5 MB font
    stylesheet = (tmp_path / "sums/EPUB/styles/stylesheet1.css").read_text(encoding="utf-8")
    assert re.search(r'math \{\s*font-family: "STIX Two Math"', stylesheet)

    chapter = (tmp_path / "sums/EPUB/text/ch001.xhtml").as_uri()
    page = browser.new_page(viewport={"width": 800, "height": 900})  # type: ignore[attr-defined]
    try:
        page.goto(chapter)
        page.wait_for_load_state("load")
        column = page.locator(".equation").bounding_box()
        formula = page.locator(".equation math").bounding_box()
        number = page.locator(".equation-number").bounding_box()
        sigma = page.locator(".equation mo", has_text="∑").bounding_box()
        equals = page.locator(".equation mo", has_text="=").first.bounding_box()
        used = page.evaluate("document.fonts.check('16px \"STIX Two Math\"')")
    finally:
        page.close()
    cell_width = column["width"] - number["width"]
    centre = formula["x"] + formula["width"] / 2 - column["x"]
    assert abs(centre - cell_width / 2) < 0.05 * cell_width, (column, formula, number)
    assert abs(number["x"] + number["width"] - (column["x"] + column["width"])) < 2
    assert sigma["height"] > 1.6 * equals["height"]  # the display form of the sum
    assert used
