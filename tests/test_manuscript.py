"""Broken manuscripts beyond single files (tests/corpus has those): warnings with
suggestions, duplicate numbers, module folders, YAML bombs."""

from __future__ import annotations

from pathlib import Path

from conftest import lesson_text, make_project
from pubkit.sources.config import load_config
from pubkit.sources.manuscript import collect

GOOD = lesson_text(1)


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


def test_module_yaml_syntax_error_has_line_and_column(tmp_path: Path) -> None:
    root = make_project(tmp_path, {"01-a.md": GOOD}, module="number: 1\ntitle: [Open\n")
    other = root / "manuscript/02-fine"
    other.mkdir()
    (other / "module.yaml").write_text("number: 2\ntitle: Fine\n")
    (other / "01-b.md").write_text(lesson_text(1))
    config, _ = load_config(root)
    found = collect(config)
    assert [lesson.module.number for lesson in found.lessons] == [2]  # the rest still builds
    (problem,) = [d for d in found.diagnostics if d.is_error]
    assert problem.path is not None and problem.path.name == "module.yaml"
    assert problem.line == 3 and "YAML syntax" in problem.message and "column" in problem.message
