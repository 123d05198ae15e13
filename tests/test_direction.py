"""Right-to-left lessons: Arabic, Persian, Urdu and Hebrew set right to left in every
edition, and a run in another direction isolated inside a lesson."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest

from conftest import lesson_text, make_project
from pdfinfo import fonts, text_span
from pubkit.build import build
from pubkit.course.validate import run_epubcheck
from pubkit.sources.config import text_direction

ARABIC = """## Python

البرمجة هي كتابة تعليمات للحاسوب بلغة يفهمها.[^1]

- النقطة الأولى
- النقطة الثانية

اقتباس: [the quick brown fox]{lang=en}.

```
print("مرحبا")
```

[^1]: حاشية قصيرة.

::: takeaways
## الخلاصة

- البرمجة مهارة يمكن تعلمها.
:::
"""


@pytest.mark.parametrize(
    ("tag", "direction"),
    [
        ("ar", "rtl"),
        ("ar-EG", "rtl"),
        ("fa", "rtl"),
        ("ur-PK", "rtl"),
        ("he", "rtl"),
        ("yi", "rtl"),
        ("pa-Arab", "rtl"),
        ("ku-Latn", "ltr"),
        ("az-Arab-IR", "rtl"),
        ("en", "ltr"),
        ("hi", "ltr"),
        ("zh-Hant", "ltr"),
    ],
)
def test_direction_comes_from_the_language_tag(tag: str, direction: str) -> None:
    assert text_direction(tag) == direction


def _root_tag(xhtml: str) -> str:
    start = xhtml.index("<html")
    return xhtml[start : xhtml.index(">", start)]


@pytest.fixture(scope="module")
def arabic(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("arabic")
    make_project(root, {"01-l.md": lesson_text(1, "مقدمة في البرمجة", ARABIC)})
    (root / "pubkit.yaml").write_text("course:\n  title: دورة\n  language: ar\n")
    result = build(root)
    assert result.ok and not result.diagnostics, [str(d) for d in result.diagnostics]
    return root / "build"


def test_a_right_to_left_lesson_is_set_from_the_right(arabic: Path, tmp_path: Path) -> None:
    english = make_project(tmp_path, {"01-l.md": lesson_text(1, "Intro", "## Python\n\nText.\n")})
    assert build(english, formats=["pdf"]).ok
    for edition in ("pdf", "handout"):
        left, right, width = text_span(arabic / f"{edition}/01-module/01-l.pdf", 0, "Python")
        assert left > width / 2, edition  # the heading starts at the right margin
    left, right, width = text_span(english / "build/pdf/01-module/01-l.pdf", 0, "Python")
    assert right < width / 2
    assert "Noto-Naskh-Arabic" in fonts(arabic / "pdf/01-module/01-l.pdf")


def test_the_header_speaks_the_lessons_language(arabic: Path) -> None:
    with zipfile.ZipFile(arabic / "epub/01-module/01-l.epub") as epub:
        chapter = epub.read("EPUB/text/ch001.xhtml").decode()
    assert "الدرس" in chapter and "كلمات" in chapter  # "Lesson", "words"
    assert "Lesson" not in chapter


def test_the_epub_reads_right_to_left(arabic: Path) -> None:
    for path in (arabic / "epub/01-module/01-l.epub", arabic / "collections/01-module.epub"):
        with zipfile.ZipFile(path) as epub:
            names = epub.namelist()
            package = epub.read(next(n for n in names if n.endswith(".opf"))).decode()
            chapters = [epub.read(n).decode() for n in names if n.endswith(".xhtml")]
        assert 'page-progression-direction="rtl"' in package
        assert all('dir="rtl"' in _root_tag(c) for c in chapters), path
        assert not run_epubcheck(path), path
    with zipfile.ZipFile(arabic / "epub/01-module/01-l.epub") as epub:
        chapter = epub.read("EPUB/text/ch001.xhtml").decode()
    assert 'lang="en" dir="ltr"' in chapter  # the English quotation, isolated
    assert '<pre dir="ltr">' in chapter  # program code reads left to right


def test_a_right_to_left_quotation_in_an_english_lesson_is_isolated(tmp_path: Path) -> None:
    body = "He said [שלום עולם]{lang=he} and left.\n"
    root = make_project(tmp_path, {"01-l.md": lesson_text(1, "Mixed", body)})
    assert build(root, formats=["pdf", "epub"]).ok
    with zipfile.ZipFile(root / "build/epub/01-module/01-l.epub") as epub:
        chapter = epub.read("EPUB/text/ch001.xhtml").decode()
    assert 'lang="he" dir="rtl"' in chapter
    assert 'dir="rtl"' not in _root_tag(chapter)  # the lesson itself stays ltr
    assert "Noto-Serif-Hebrew" in fonts(root / "build/pdf/01-module/01-l.pdf")
