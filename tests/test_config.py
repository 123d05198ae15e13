"""pubkit.yaml: defaults, typed values, and every error collected with its line."""

from __future__ import annotations

from pathlib import Path

import pytest

from pubkit.errors import ConfigError
from pubkit.sources.config import Config, load_config


def test_no_config_file_means_defaults(tmp_path: Path) -> None:
    config, warnings = load_config(tmp_path)
    assert warnings == []
    assert (config.paper, config.language, config.words_per_minute) == ("A4", "en", None)
    assert config.editions == ("pdf", "handout", "epub", "instructor")
    assert config.manuscript_dir == tmp_path.resolve() / "manuscript"
    assert (config.styles_dir / "tokens.yaml").is_file()  # pubkit's own theme


def test_values_are_read(tmp_path: Path) -> None:
    (tmp_path / "pubkit.yaml").write_text(
        "course:\n  title: Course\n  language: de-AT\nreading:\n  words_per_minute: 200\n"
        "pdf:\n  paper: letter\neditions: epub\n"
    )
    config, _ = load_config(tmp_path)
    assert isinstance(config, Config)
    assert (config.title, config.language, config.words_per_minute) == ("Course", "de-AT", 200)
    assert config.paper == "Letter"
    assert config.editions == ("epub",)


def test_every_error_is_collected_with_its_line(tmp_path: Path) -> None:
    (tmp_path / "pubkit.yaml").write_text(
        "course:\n  title: x\n  language: 'english please'\n"
        "reading:\n  words_per_minute: fast\npdf:\n  paper: A5\neditions: [pdf, mobi]\n"
    )
    with pytest.raises(ConfigError) as raised:
        load_config(tmp_path)
    found = [(d.path.name if d.path else None, d.line, d.message) for d in raised.value.diagnostics]
    assert raised.value.exit_code == 2
    assert found == [
        (
            "pubkit.yaml",
            3,
            "course.language: expected a language tag such as en, en-GB or"
            " pt-BR; got english please",
        ),
        (
            "pubkit.yaml",
            5,
            "reading.words_per_minute: expected a whole number from 50 to 2000; got fast",
        ),
        ("pubkit.yaml", 7, "pdf.paper: expected one of A4, Letter; got A5"),
        (
            "pubkit.yaml",
            8,
            "editions: expected editions from pdf, handout, epub, instructor; got ['pdf', 'mobi']",
        ),
    ]


def test_unknown_key_warns_with_suggestion(tmp_path: Path) -> None:
    (tmp_path / "pubkit.yaml").write_text("course:\n  titel: x\n")
    _, warnings = load_config(tmp_path)
    (warning,) = warnings
    assert warning.line == 2
    assert "course.titel: unknown setting; did you mean 'course.title'?" in warning.message


def test_a_setting_in_the_wrong_section_warns_with_where_it_goes(tmp_path: Path) -> None:
    (tmp_path / "pubkit.yaml").write_text("title: x\npdf:\n  bleed: 3mm\nzzz: 1\n")
    _, warnings = load_config(tmp_path)
    assert [(w.line, w.message) for w in warnings] == [
        (1, "title: unknown setting; did you mean 'course.title'?"),
        (3, "pdf.bleed: unknown setting; did you mean 'handout.bleed'?"),
        (4, "zzz: unknown setting"),
    ]


def test_yaml_syntax_error_is_a_config_error(tmp_path: Path) -> None:
    (tmp_path / "pubkit.yaml").write_text("course: [\n")
    with pytest.raises(ConfigError) as raised:
        load_config(tmp_path)
    assert "YAML syntax" in str(raised.value)


@pytest.mark.parametrize(
    ("written", "read"),
    [
        ("https://courses.example.org/pm", "https://courses.example.org/pm/"),
        ("http://example.org/", "http://example.org/"),
    ],
)
def test_the_course_address_is_a_folder(tmp_path: Path, written: str, read: str) -> None:
    (tmp_path / "pubkit.yaml").write_text(f"course:\n  url: {written}\n")
    config, _ = load_config(tmp_path)
    assert config.url == read


@pytest.mark.parametrize(
    "written", ["courses.example.org", "ftp://example.org/", "https://x.org/?a=1", "/local/"]
)
def test_a_course_address_that_is_not_a_web_folder_is_an_error(
    tmp_path: Path, written: str
) -> None:
    (tmp_path / "pubkit.yaml").write_text(f"course:\n  title: T\n  url: '{written}'\n")
    with pytest.raises(ConfigError) as raised:
        load_config(tmp_path)
    (problem,) = raised.value.diagnostics
    assert problem.line == 3
    assert problem.message.startswith("course.url: expected the web address the course is")
