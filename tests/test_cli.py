"""The real ``pubkit`` command: exit codes, error format, and a course that half-fails."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from conftest import lesson_text, make_project, run_pubkit
from pubkit import stamps
from pubkit.build import build


def test_build_reports_a_broken_lesson_and_builds_the_rest(tmp_path: Path) -> None:
    make_project(
        tmp_path,
        {
            "01-good.md": lesson_text(1, "Good", "## Part\n\nFine words.\n"),
            "02-bad.md": "---\nlesson: two\ntitle: Bad\n---\n\nText.\n",
        },
    )
    done = run_pubkit("build", "--format", "pdf,epub", cwd=tmp_path)
    assert done.returncode == 1
    assert "manuscript/01-module/02-bad.md:2: error: lesson: expected a whole number" in done.stderr
    assert "1 built, 1 failed" in done.stderr
    again = run_pubkit("build", "--format", "pdf,epub", cwd=tmp_path)
    assert "0 built, 1 up to date, 1 failed:" in again.stderr  # built means set this time
    assert "Traceback" not in done.stderr + done.stdout
    manifest = json.loads((tmp_path / "build/manifest.json").read_text())
    (entry,) = manifest["lessons"]
    assert entry["id"] == "01-module/01-good"
    assert set(entry["editions"]) == {"pdf", "epub"}
    assert (tmp_path / "build/pdf/01-module/01-good.pdf").is_file()
    assert not (tmp_path / "build/handout").exists()
    assert not list(tmp_path.glob("build/**/*.tmp"))


def test_up_to_date_lessons_are_skipped_and_force_rebuilds(tmp_path: Path) -> None:
    make_project(tmp_path, {"01.md": lesson_text(1)})
    assert run_pubkit("build", "-f", "pdf", cwd=tmp_path).returncode == 0
    pdf = tmp_path / "build/pdf/01-module/01.pdf"
    before = pdf.stat().st_mtime_ns
    again = run_pubkit("build", "-f", "pdf", cwd=tmp_path)
    assert "up to date: 01-module/01" in again.stdout
    assert pdf.stat().st_mtime_ns == before
    forced = run_pubkit("build", "-f", "pdf", "--force", cwd=tmp_path)
    assert "built: 01-module/01" in forced.stdout
    assert pdf.stat().st_mtime_ns != before


def test_bad_config_exits_2_naming_the_key(tmp_path: Path) -> None:
    make_project(tmp_path, {"01.md": lesson_text(1)})
    (tmp_path / "pubkit.yaml").write_text("pdf:\n  paper: A5\n")
    done = run_pubkit("build", cwd=tmp_path)
    assert done.returncode == 2
    assert (
        done.stderr.strip() == "pubkit.yaml:2: error: pdf.paper: expected one of A4, Letter; got A5"
    )
    assert not (tmp_path / "build").exists()


def test_unknown_format_is_a_usage_error(tmp_path: Path) -> None:
    done = run_pubkit("build", "--format", "mobi", cwd=tmp_path)
    assert done.returncode == 2
    assert "unknown edition mobi; choose from pdf, handout, epub, instructor" in done.stderr


def test_check_validates_without_building(tmp_path: Path) -> None:
    make_project(tmp_path, {"01.md": lesson_text(1), "02.md": "---\ntitle: x\n---\n\ny\n"})
    done = run_pubkit("check", cwd=tmp_path)
    assert done.returncode == 1
    assert "02.md:2: error: missing required field 'lesson'" in done.stderr
    assert "1 valid, 1 with errors" in done.stderr
    assert not (tmp_path / "build").exists()


def test_a_build_that_changed_nothing_does_not_set_the_downloads_page(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pubkit.course import downloads

    make_project(tmp_path, {"01.md": lesson_text(1)})
    assert build(tmp_path, formats=["pdf"]).ok
    set_pages = []
    render_index = downloads.render_index
    monkeypatch.setattr(
        downloads, "render_index", lambda *args: set_pages.append(1) or render_index(*args)
    )
    assert build(tmp_path, formats=["pdf"]).ok
    assert not set_pages  # nothing changed
    (tmp_path / "build/index.html").unlink()
    assert build(tmp_path, formats=["pdf"]).ok
    assert set_pages and (tmp_path / "build/index.html").is_file()  # a file gone: set again
    (tmp_path / "manuscript/01-module/01.md").write_text(lesson_text(1, "Renamed"))
    assert build(tmp_path, formats=["pdf"]).ok
    assert len(set_pages) == 2 and "Renamed" in (tmp_path / "build/index.html").read_text()


def _age(root: Path) -> None:
    """Date every file and folder of the project an hour back: a course edited earlier."""
    past = time.time() - 3600
    for path in [*root.rglob("*"), root]:
        os.utime(path, (past, past))


def _pubkit_timed(*args: str, cwd: Path, cache: Path | None = None) -> tuple[str, set[str]]:
    """``pubkit`` run as a user runs it: what it printed, and the modules it imported."""
    env = {**os.environ, **({"PUBKIT_CACHE": str(cache)} if cache else {})}
    done = run_pubkit(*args, cwd=cwd, env=env, python=("-X", "importtime"))
    assert done.returncode == 0, done.stderr
    imported = {line.split("|")[-1].strip() for line in done.stderr.splitlines() if "|" in line}
    return done.stdout, imported


def test_a_build_with_nothing_to_do_is_answered_from_stamps_until_anything_changes(
    tmp_path: Path,
) -> None:
    make_project(tmp_path, {"01.md": lesson_text(1), "02.md": lesson_text(2, "Two")})
    (tmp_path / "pubkit.yaml").write_text("course:\n  title: Stamped\n  colour: blue\n")
    _age(tmp_path)
    request = stamps.request_key(tmp_path, (), ("pdf",), None, {}, False, True)
    assert run_pubkit("build", "-f", "pdf", cwd=tmp_path).returncode == 0
    assert stamps.unchanged(request) is not None

    # Printed as the whole build prints it (the unknown key's warning too), and nothing
    # of the build loaded: pubkit.yaml, front matter and theme unread.
    answered, imported = _pubkit_timed("build", "-f", "pdf", cwd=tmp_path)
    whole, _ = _pubkit_timed("build", "-f", "pdf", cwd=tmp_path, cache=tmp_path / "elsewhere")
    assert answered == whole
    assert "up to date: 01-module/02" in answered
    assert "pubkit.build" not in imported and "yaml" not in imported
    assert "pubkit.stamps" in imported

    def built(*args: str) -> str:
        return _pubkit_timed("build", "-f", "pdf", *args, cwd=tmp_path)[0]

    lessons = tmp_path / "manuscript" / "01-module"
    with (lessons / "02.md").open("a") as file:
        file.write("One more sentence.\n")
    assert "built: 01-module/02" in built()
    _age(tmp_path)
    built()  # the edit recorded
    (lessons / "03.md").write_text(lesson_text(3, "Three"))
    assert "built: 01-module/03" in built()
    _age(tmp_path)
    built()
    (tmp_path / "build/pdf/01-module/01.pdf").unlink()
    assert "built: 01-module/01" in built()
    _age(tmp_path)
    built()
    assert stamps.unchanged(request) is not None
    assert "built: 01-module/01" in built("--no-validate")  # another request: not answered

    # A build that fails keeps no stamps: the next one looks at everything again.
    (lessons / "03.md").write_text("---\nlesson: three\n---\n")
    _age(tmp_path)
    assert run_pubkit("build", "-f", "pdf", cwd=tmp_path).returncode == 1
    assert stamps.unchanged(request) is None


def test_stamps_are_not_kept_for_a_file_changed_as_the_build_read_it(tmp_path: Path) -> None:
    report = stamps.Report(ticks=(), lessons=0, notes=(), manifest=tmp_path / "manifest.json")
    lesson = tmp_path / "lesson.md"
    lesson.write_text("words")
    key = "racy-test"
    kept = {"read": [lesson], "searched": [], "written": tmp_path / "out"}
    assert not stamps.record(key, report, **kept, started_ns=time.time_ns())
    assert stamps.unchanged(key) is None
    assert stamps.record(key, report, **kept, started_ns=time.time_ns() + stamps.RACY_NS)
    assert stamps.unchanged(key) == report
    lesson.write_text("other")
    assert stamps.unchanged(key) is None


def test_stamps_follow_a_module_folder_that_is_a_link(tmp_path: Path) -> None:
    report = stamps.Report(ticks=(), lessons=0, notes=(), manifest=tmp_path / "manifest.json")
    elsewhere = tmp_path / "shared" / "01-module"
    elsewhere.mkdir(parents=True)
    (elsewhere / "01.md").write_text("words")
    manuscript = tmp_path / "manuscript"
    manuscript.mkdir()
    (manuscript / "01-module").symlink_to(elsewhere)
    (manuscript / "loop").symlink_to(manuscript)  # walked once, not forever
    kept = {"read": [], "searched": [manuscript], "written": tmp_path / "out"}
    assert stamps.record("linked", report, **kept, started_ns=time.time_ns() + stamps.RACY_NS)
    assert stamps.unchanged("linked") == report
    (elsewhere / "01.md").write_text("more words")
    assert stamps.unchanged("linked") is None
