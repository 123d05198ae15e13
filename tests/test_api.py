"""The library API as the CLI and other programs call it, and the faults found reading it:
--strict honoured by every check, each check reading the course once, outcomes kept with
their own lessons, keyword settings, and a Python workaround applied only where needed."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from conftest import lesson_text, make_project, run_pubkit
from pubkit import check as check_module
from pubkit.build import build
from pubkit.cli import main
from pubkit.course import workers
from pubkit.editions import EDITIONS, PAGES


def test_check_layout_honours_strict(tmp_path: Path) -> None:
    text = lesson_text(1, "L", "Words.\n").replace("title: L\n", "title: L\ntitel: typo\n")
    root = make_project(tmp_path, {"01-l.md": text})
    relaxed = run_pubkit("check", "--layout", cwd=root)
    assert relaxed.returncode == 0, relaxed.stderr
    assert "01-l.md:4: warning: unknown field 'titel'" in relaxed.stderr
    strict = run_pubkit("check", "--layout", "--strict", cwd=root)
    assert strict.returncode == 1, strict.stderr
    assert "01-l.md:4: error: unknown field 'titel'" in strict.stderr
    assert "0 valid, 1 with errors" in strict.stderr


def test_check_layout_strict_fails_a_lesson_on_its_markdown_warnings(tmp_path: Path) -> None:
    root = make_project(tmp_path, {"01-l.md": lesson_text(1, "L", "## A\n\n#### Skipped\n")})
    strict = run_pubkit("check", "--layout", "--strict", cwd=root)
    assert strict.returncode == 1
    assert "01-l.md:8: error: heading “Skipped” is level 4 under a level 2" in strict.stderr


def test_check_epub_reads_the_course_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = make_project(tmp_path, {"01-l.md": lesson_text(1, "L")})
    assert build(root, formats=["epub"]).ok
    calls: list[Path] = []
    real = check_module.collect

    def counting(config, targets=()):  # type: ignore[no-untyped-def]
        calls.append(config.root)
        return real(config, targets)

    monkeypatch.setattr(check_module, "collect", counting)
    done = CliRunner().invoke(main, ["check", "--epub", "-C", str(root)])
    assert done.exit_code == 0, done.output
    assert "1 lesson valid, EPUBs clean" in done.output
    assert calls == [root.resolve()]


def test_build_takes_its_settings_by_keyword(tmp_path: Path) -> None:
    root = make_project(tmp_path, {"01-l.md": lesson_text(1, "L")})
    with pytest.raises(TypeError):
        build(root, (), ["pdf"])  # type: ignore[misc]


def test_each_outcome_reaches_its_own_lesson_whatever_order_they_come_in(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    words = {n: " ".join(["word"] * (10 * n)) + ".\n" for n in (1, 2, 3)}
    root = make_project(
        tmp_path, {f"0{n}-l.md": lesson_text(n, f"Lesson {n}", words[n]) for n in words}
    )
    from pubkit.course import lessons  # the build imports it where it sets lessons

    real = lessons.set_lessons
    monkeypatch.setattr(lessons, "set_lessons", lambda *a, **k: reversed(list(real(*a, **k))))
    result = build(root, formats=["pdf"], jobs=1)
    assert result.ok
    assert [r.lesson.number for r in result.built] == [1, 2, 3]  # in course order
    for built in result.built:
        assert built.entry["title"] == f"Lesson {built.lesson.number}"
        assert built.entry["words"] == 10 * built.lesson.number


def test_one_edition_sets_the_pages_and_it_is_paged() -> None:
    assert [e.name for e in EDITIONS.values() if e.sets_pages] == [PAGES.name]
    assert PAGES.paged


@pytest.mark.parametrize(
    ("version", "implementation", "churns"),
    [
        ((3, 11, 7), "cpython", True),
        ((3, 12, 1), "cpython", True),
        ((3, 13, 0), "cpython", False),
        ((3, 14, 0), "cpython", False),
        ((3, 11, 7), "pypy", False),
    ],
)
def test_the_roomy_frame_stack_is_only_for_pythons_that_need_it(
    version: tuple[int, ...], implementation: str, churns: bool
) -> None:
    assert workers.frame_blocks_churn(version, implementation) is churns


def test_this_python_gets_the_roomy_frame_stack_exactly_when_it_churns() -> None:
    roomy = workers._on_roomy_stack.__code__.co_stacksize == workers._ROOMY_FRAME
    assert roomy is workers.frame_blocks_churn()
