"""Broken and hostile manuscripts (tests/corpus): a clear error or warning at the right
line, nothing leaked, nothing run, the rest of the course built."""

from __future__ import annotations

import shutil
import zipfile
from pathlib import Path
from typing import Any

import pytest
import yaml
from pypdf import PdfReader

from conftest import lesson_text, run_pubkit
from pubkit.build import BuildResult, build

CORPUS = Path(__file__).resolve().parent / "corpus"
EXPECTED: dict[str, dict[str, Any]] = yaml.safe_load((CORPUS / "expected.yaml").read_text())
MODULE = "01-corpus"


def corpus_project(root: Path) -> Path:
    """Every corpus file in one module, next to one good lesson."""
    folder = root / "manuscript" / MODULE
    folder.mkdir(parents=True)
    (folder / "module.yaml").write_text("number: 1\ntitle: Corpus\n")
    for name in EXPECTED:
        shutil.copy(CORPUS / name, folder / name)
    (folder / "99-good.md").write_text(lesson_text(99, "Good", "## Part\n\nFine words.\n"))
    return root


@pytest.fixture(scope="module")
def corpus_build(tmp_path_factory: pytest.TempPathFactory) -> tuple[BuildResult, Path]:
    root = corpus_project(tmp_path_factory.mktemp("corpus"))
    return build(root, formats=["pdf", "epub"], force=True), root


def test_the_corpus_and_its_expectations_match() -> None:
    assert sorted(EXPECTED) == sorted(p.name for p in CORPUS.glob("*.md"))


@pytest.mark.parametrize("name", EXPECTED)
def test_each_manuscript_gets_its_outcome(
    corpus_build: tuple[BuildResult, Path], name: str
) -> None:
    result, root = corpus_build
    expected = EXPECTED[name]
    mine = [d for d in result.diagnostics if d.path and d.path.name == name]
    built = {r.lesson.path.name for r in result.built}
    errors = [d for d in mine if d.is_error]
    warnings = [d for d in mine if not d.is_error]
    if "error" in expected:
        assert name not in built and any(p.name == name for p in result.failed)
        assert errors, mine
        assert expected["error"] in errors[0].message, errors[0]
        assert errors[0].line == expected["line"]
        assert not list(root.glob(f"build/*/{MODULE}/{Path(name).stem}.*"))
    else:
        assert name in built and not errors, mine
        if "warning" in expected:
            assert any(
                expected["warning"] in w.message and w.line == expected["line"] for w in warnings
            ), [str(w) for w in warnings]


def test_the_command_reports_every_failure_once_without_a_traceback(tmp_path: Path) -> None:
    root = corpus_project(tmp_path)
    run = run_pubkit("build", "--format", "pdf", cwd=root)
    failures = [n for n, e in EXPECTED.items() if "error" in e]
    assert run.returncode == 1
    assert "Traceback" not in run.stdout + run.stderr
    assert f"{len(EXPECTED) + 1 - len(failures)} built, {len(failures)} failed:" in run.stderr
    listed = [line.strip() for line in run.stderr.splitlines() if line.startswith("  ")]
    assert sorted(listed) == sorted(f"manuscript/{MODULE}/{n}" for n in failures)


def test_strict_makes_every_warning_fail_its_lesson(tmp_path: Path) -> None:
    root = corpus_project(tmp_path)
    result = build(root, formats=["pdf"], force=True, strict=True)
    failed = {p.name for p in result.failed}
    for name, expected in EXPECTED.items():
        assert (name in failed) == ("error" in expected or "warning" in expected), name
    assert "99-good.md" not in failed
    assert all(d.is_error for d in result.diagnostics)


def test_hostile_markup_is_not_carried_into_any_edition(
    corpus_build: tuple[BuildResult, Path],
) -> None:
    _, root = corpus_build
    for name in ("24-script", "25-event-handler", "26-javascript-link", "27-iframe-form"):
        with zipfile.ZipFile(root / f"build/epub/{MODULE}/{name}.epub") as epub:
            chapter = epub.read("EPUB/text/ch001.xhtml").decode()
        pdf = (root / f"build/pdf/{MODULE}/{name}.pdf").read_bytes()
        for trace in ("<script", "onmouseover", "onclick", "javascript:", "<iframe", "<form"):
            assert trace not in chapter, (name, trace)
        assert b"javascript" not in pdf.lower() and b"/JS" not in pdf
    assert "owned" not in chapter  # the script's text went with it


def test_template_syntax_and_markup_in_metadata_stay_literal(
    corpus_build: tuple[BuildResult, Path],
) -> None:
    _, root = corpus_build
    text = PdfReader(root / f"build/pdf/{MODULE}/28-template-syntax.pdf").pages[0].extract_text()
    assert "{{ 7*7 }} and {% raw %}" in text and "49" not in text
    assert "<b>bold?</b> {{ config }}" in text
    assert "Text with {{ 7*7 }} in it." in text


def test_a_title_shaped_like_a_path_writes_nothing_outside_the_output(
    corpus_build: tuple[BuildResult, Path],
) -> None:
    _, root = corpus_build
    assert (root / f"build/pdf/{MODULE}/31-path-title.pdf").is_file()
    assert not list(Path("/tmp").glob("pubkit-escape*"))
    outside = {p for p in root.rglob("*") if p.is_file()} - set(root.glob("build/**/*"))
    assert all(p.is_relative_to(root / "manuscript") for p in outside), outside


def test_check_reports_the_same_faults_without_building(tmp_path: Path) -> None:
    root = corpus_project(tmp_path)
    run = run_pubkit("check", cwd=root)
    assert run.returncode == 1
    assert "Traceback" not in run.stdout + run.stderr
    for name, expected in EXPECTED.items():
        if "error" not in expected and "warning" not in expected:
            continue
        kind = "error" if "error" in expected else "warning"
        line = f":{expected['line']}" if expected["line"] else ""
        prefix = f"manuscript/{MODULE}/{name}{line}: {kind}: "
        assert any(
            row.startswith(prefix) and expected[kind] in row for row in run.stderr.splitlines()
        ), (name, run.stderr)
    assert not (root / "build").exists()
