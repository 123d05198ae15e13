"""A technical lesson read back in every edition (tests/projects/technical): math, numbered
equations, code in three languages with numbered and wrapped lines and an output block,
a numbered figure and table, cross-references of every kind, citations in several forms."""

from __future__ import annotations

import re
import shutil
import zipfile
from pathlib import Path

from conftest import PROJECTS, run_pubkit
from pdfinfo import alternate_texts, page_texts

LESSON = "01-numerics/01-summing"


def _text(pdf: Path) -> str:
    return " ".join(" ".join(page_texts(pdf)).split())


def test_no_tex_is_left_and_every_reference_reads(technical_build: Path) -> None:
    for edition in ("pdf", "handout"):
        text = _text(technical_build / edition / f"{LESSON}.pdf")
        for tex in ("\\pi", "\\sum", "\\frac", "\\(", "\\[", "$A", "$n", "\\varepsilon"):
            assert tex not in text, (edition, tex)
        assert "$22,000 and $34,000, or $5" in text
        for reference in ("Equation 1", "Figure 1", "Table 1", "Three languages has the code"):
            assert reference in text, (edition, reference)
        assert "Figure 1: Bars of partial sums" in text and "(1)" in text
        assert "(Goldberg 1991, 8)" in text and "Goldberg (1991)" in text
        assert "(see Knuth 1997; 1991)" in text
        references = text[text.index("References") :]
        assert "Goldberg, David. 1991" in references and "Knuth, Donald E. 1997" in references


def test_code_lines_are_numbered_and_wrap_in_print(technical_build: Path) -> None:
    text = _text(technical_build / "pdf" / f"{LESSON}.pdf")
    assert re.search(r"1 def total\(values\): 2 \"\"\"Add the values", text)
    assert "6 return result" in text and "5050" in text
    with zipfile.ZipFile(technical_build / "epub" / f"{LESSON}.epub") as epub:
        chapter = epub.read("EPUB/text/ch001.xhtml").decode("utf-8")
    assert '<span class="ln" aria-hidden="true">1</span><span class="k">def</span>' in chapter
    assert '<pre class="code highlighted language-javascript">' in chapter
    assert '<pre class="code output language-output"><code>5050</code></pre>' in chapter


def test_formulas_are_described_in_the_pdf_and_mathml_in_the_epub(technical_build: Path) -> None:
    alternatives = alternate_texts(technical_build / "pdf" / f"{LESSON}.pdf")
    assert "A equals pi r squared" in alternatives  # the author's description
    assert r"\sum_{i=1}^{n} i = \frac{n(n+1)}{2}" in alternatives  # else the TeX
    with zipfile.ZipFile(technical_build / "epub" / f"{LESSON}.epub") as epub:
        chapter = epub.read("EPUB/text/ch001.xhtml").decode("utf-8")
        package = epub.read("EPUB/content.opf").decode("utf-8")
    assert chapter.count(" alttext=") == 7  # every formula, MathML with its alternative
    assert 'alttext="A equals pi r squared" class="described"' in chapter
    assert 'alttext="n \\ge 1"' in chapter  # \( … \), as written
    assert ">MathML<" in package


def test_a_quiet_build_says_nothing(tmp_path: Path) -> None:
    """No engine's own log line reaches the terminal (WeasyPrint warned about the EPUB's
    MathML rule, ``display: block math``, when it was in the stylesheet the PDFs share)."""
    project = tmp_path / "technical"
    shutil.copytree(PROJECTS / "technical", project)
    done = run_pubkit("build", "--quiet", "--format", "pdf", cwd=project)
    assert done.returncode == 0, done.stderr
    assert (done.stdout, done.stderr) == ("", "")


def test_a_stylesheet_rule_the_engine_ignores_is_a_warning(tmp_path: Path) -> None:
    """A publisher's rule WeasyPrint cannot use is told with the lesson, not lost."""
    project = tmp_path / "technical"
    shutil.copytree(PROJECTS / "technical", project)
    (project / "styles").mkdir(exist_ok=True)
    (project / "styles/custom.css").write_text("p { colr: red; }\n", encoding="utf-8")
    done = run_pubkit("build", "--quiet", "--format", "pdf", cwd=project)
    assert done.returncode == 0, done.stderr
    assert "01-summing.md: warning: the PDF engine says: stylesheet: Ignored `colr: red`" in (
        done.stderr
    ), done.stderr
    assert "WARNING:" not in done.stderr
