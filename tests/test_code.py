"""Highlighted code: fenced code with a language coloured token by token from the design
tokens in the PDF and the EPUB, ink for a grey-scale printer on the handout, a program's
output set apart, and the code's words unchanged."""

from __future__ import annotations

import re
import zipfile
from pathlib import Path

import pypdf
import pytest

from conftest import lesson_text, make_project
from pdfinfo import count_colour, count_coloured, render
from pubkit.build import BuildResult, build

BODY = '''## A loop

```python
def area(r: float) -> float:
    """The area of a circle."""
    return 3.14159 * r ** 2  # close enough
```

It prints:

```output
12.56636
```

```no-such-language
kept as it is
```
'''
KEYWORD = (0x7A, 0x3E, 0x9D)  # color.code-keyword


@pytest.fixture(scope="module")
def code_build(tmp_path_factory: pytest.TempPathFactory) -> tuple[BuildResult, Path]:
    root = make_project(
        tmp_path_factory.mktemp("code"), {"01-code.md": lesson_text(1, "Code", BODY)}
    )
    result = build(root, force=True)
    assert result.ok and not result.diagnostics, [str(d) for d in result.diagnostics]
    return result, root / "build"


def test_code_keeps_its_words_in_every_edition(code_build: tuple[BuildResult, Path]) -> None:
    result, out = code_build
    for edition in ("pdf", "handout"):
        pdf = pypdf.PdfReader(out / f"{edition}/01-module/01-code.pdf")
        text = " ".join(" ".join(page.extract_text() for page in pdf.pages).split())
        assert "def area(r: float) -> float:" in text
        assert "return 3.14159 * r ** 2 # close enough" in text
        assert "12.56636" in text and "kept as it is" in text
    # The words a reader counts are the code's, as written.
    assert result.built[0].entry["words"] > 20


def test_the_pdf_colours_keywords_and_the_handout_prints_them_in_ink(
    code_build: tuple[BuildResult, Path],
) -> None:
    _, out = code_build
    pdf = render(out / "pdf/01-module/01-code.pdf", 0, scale=2)
    handout = render(out / "handout/01-module/01-code.pdf", 0, scale=2)
    assert count_colour(pdf, KEYWORD, tolerance=40) > 50
    assert count_colour(handout, KEYWORD, tolerance=40) == 0
    assert count_coloured(handout) < count_coloured(pdf) / 10


def test_the_epub_carries_the_highlighting_in_its_stylesheet(
    code_build: tuple[BuildResult, Path],
) -> None:
    _, out = code_build
    with zipfile.ZipFile(out / "epub/01-module/01-code.epub") as epub:
        chapter = epub.read("EPUB/text/ch001.xhtml").decode("utf-8")
        sheets = [epub.read(n).decode() for n in epub.namelist() if n.endswith(".css")]
    assert '<pre class="code highlighted language-python"><code><span class="k">def</span>' in (
        chapter
    )
    assert '<pre class="code output language-output"><code>12.56636</code></pre>' in chapter
    assert "kept as it is" in chapter and "no-such-language" in chapter
    assert "style=" not in re.sub(r"<img[^>]*>", "", chapter)  # no inline colours
    assert sum('pre.code span[class^="k"]' in sheet for sheet in sheets) == 1
