"""Small pure functions: word counting, minutes, design tokens."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from pubkit.config import builtin_styles
from pubkit.errors import ConfigError
from pubkit.metrics import count_words, reading_minutes
from pubkit.theme import load_theme


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", 0),
        ("one two  three\nfour", 4),
        ("a — b – c", 3),  # dashes are not words
        ("state-of-the-art, don’t", 2),
        ("3.5K words", 2),
        ("日本語の文章", 6),  # unspaced scripts: a word per character
        ("Hello 世界", 3),
    ],
)
def test_count_words(text: str, expected: int) -> None:
    assert count_words(text) == expected


def test_reading_minutes() -> None:
    assert reading_minutes(2829, 238) == 12
    assert reading_minutes(238, 238) == 1
    assert reading_minutes(239, 238) == 2
    assert reading_minutes(0, 238) == 1
    assert reading_minutes(5000, 238, override=7) == 7


def test_tokens_drive_every_edition(tmp_path: Path) -> None:
    theme_dir = tmp_path / "styles"
    theme_dir.mkdir()
    tokens = (builtin_styles() / "tokens.yaml").read_text()
    (theme_dir / "tokens.yaml").write_text(tokens.replace('accent: "#1d5b8c"', 'accent: "#aa0000"'))
    theme = load_theme(theme_dir)
    for edition, sheets in (("pdf", ("base.css", "pdf.css")), ("epub", ("base.css", "epub.css"))):
        css = theme.stylesheet(sheets, edition, "A4", font_url=lambda face: face.path.name)
        assert css.count("#aa0000") >= 3  # module line, list markers, links
        assert "var(" not in css


def test_unknown_token_in_a_stylesheet_names_file_and_line(tmp_path: Path) -> None:
    theme_dir = tmp_path / "styles"
    theme_dir.mkdir()
    shutil.copy(builtin_styles() / "tokens.yaml", theme_dir)
    (theme_dir / "epub.css").write_text("body {\n  color: var(--color-nope);\n}\n")
    theme = load_theme(theme_dir)
    with pytest.raises(ConfigError) as raised:
        theme.stylesheet(("epub.css",), "epub", "A4", font_url=str)
    (problem,) = raised.value.diagnostics
    assert problem.line == 2 and "var(--color-nope): no such design token" in problem.message
