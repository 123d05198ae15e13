"""Broken manuscripts: each fault is reported as path:line: error: message."""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import lesson_text, make_project
from pubkit.config import load_config
from pubkit.manuscript import collect

GOOD = lesson_text(1)

# (file text, expected message fragment, expected line)
CASES = {
    "empty": ("", "empty file", 1),
    "no-front-matter": ("# Title\n\ntext\n", "missing front matter", 1),
    "unclosed-front-matter": ("---\nlesson: 1\ntitle: x\n\ntext\n", "never closed", 1),
    "yaml-syntax": ("---\nlesson: 1\ntitle: [unclosed\n---\ntext\n", "YAML syntax", 4),
    "missing-title": ("---\nlesson: 1\n---\n\ntext\n", "missing required field 'title'", 2),
    "wrong-type": ("---\nlesson: fifty\ntitle: x\n---\n\ntext\n", "lesson: expected a whole", 2),
    "bool-lesson": ("---\nlesson: true\ntitle: x\n---\n\ntext\n", "lesson: expected a whole", 2),
    "bad-date": ("---\nlesson: 1\ntitle: x\ndate: soon\n---\n\ntext\n", "date: expected", 4),
    "python-tag": (
        "---\nlesson: 1\ntitle: !!python/object/apply:os.system [echo hi]\n---\n\ntext\n",
        "YAML tag 'tag:yaml.org,2002:python/object/apply:os.system' is not allowed",
        3,
    ),
    "unclosed-takeaways": (
        "---\nlesson: 1\ntitle: x\n---\n\nText.\n\n::: takeaways\n## Key\n\n- a\n",
        "'::: takeaways' block is never closed",
        8,
    ),
    "no-body": ("---\nlesson: 1\ntitle: x\n---\n", "no text after its front matter", 5),
}


@pytest.mark.parametrize("name", CASES)
def test_broken_lesson_is_reported_at_its_line(tmp_path: Path, name: str) -> None:
    text, fragment, line = CASES[name]
    root = make_project(tmp_path, {"01-good.md": GOOD, "02-broken.md": text})
    config, _ = load_config(root)
    found = collect(config)
    assert [lesson.title for lesson in found.lessons] == ["A Lesson"]  # the rest still builds
    assert [p.name for p in found.failed] == ["02-broken.md"]
    errors = [d for d in found.diagnostics if d.is_error]
    assert len(errors) == 1, errors
    assert fragment in errors[0].message
    assert errors[0].line == line
    assert str(errors[0]).endswith(f"02-broken.md:{line}: error: {errors[0].message}")


def test_not_utf8_names_the_byte(tmp_path: Path) -> None:
    root = make_project(tmp_path, {"01-good.md": GOOD})
    (root / "manuscript/01-module/02-latin1.md").write_bytes(
        b"---\nlesson: 2\ntitle: caf\xe9\n---\n\ntext\n"
    )
    config, _ = load_config(root)
    (problem,) = collect(config).diagnostics
    assert problem.line == 3
    assert "not UTF-8: byte 0xe9 at offset 24" in problem.message


def test_unknown_field_is_a_warning_with_a_suggestion(tmp_path: Path) -> None:
    root = make_project(tmp_path, {"01.md": "---\nlesson: 1\ntitle: x\nsubtitel: y\n---\n\nt\n"})
    config, _ = load_config(root)
    found = collect(config)
    assert len(found.lessons) == 1
    (problem,) = found.diagnostics
    assert not problem.is_error
    assert problem.line == 4
    assert "did you mean 'subtitle'?" in problem.message


def test_duplicate_lesson_numbers(tmp_path: Path) -> None:
    root = make_project(tmp_path, {"01-a.md": lesson_text(1), "02-b.md": lesson_text(1)})
    config, _ = load_config(root)
    found = collect(config)
    assert len(found.lessons) == 1
    (problem,) = found.diagnostics
    assert problem.path and problem.path.name == "02-b.md" and problem.line == 2
    assert "already used by 01-a.md" in problem.message


def test_module_folder_without_module_yaml(tmp_path: Path) -> None:
    root = make_project(tmp_path, {"01.md": GOOD})
    orphan = root / "manuscript/02-orphan"
    orphan.mkdir()
    (orphan / "01.md").write_text(GOOD)
    config, _ = load_config(root)
    found = collect(config)
    assert len(found.lessons) == 1
    assert any("has no module.yaml" in d.message for d in found.diagnostics)


def test_alias_bomb_is_bounded(tmp_path: Path) -> None:
    bomb = "---\nlesson: 1\ntitle: x\na: &a [x, x, x, x, x, x, x, x, x]\n"
    for level in "bcdefgh":
        previous = chr(ord(level) - 1)
        bomb += (
            f"{level}: &{level} [*{previous}, *{previous}, *{previous}, *{previous}, *{previous}]\n"
        )
    bomb += "---\n\ntext\n"
    root = make_project(tmp_path, {"01.md": bomb})
    config, _ = load_config(root)
    (problem,) = collect(config).diagnostics
    assert "YAML too large" in problem.message
