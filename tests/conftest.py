"""Shared fixtures: real builds of the seed course and of the small sample project."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

import pytest

from pubkit.build import BuildResult, build

REPO = Path(__file__).resolve().parents[1]
# Every build here checks its EPUBs in a JVM of the test process's own (or, for the CLI,
# of its own process), not the daemon an author's builds share: no JVM outlives the tests.
# tests/test_epub.py starts a daemon on purpose, and stops it.
os.environ["PUBKIT_EPUBCHECK_DAEMON"] = "0"
# Formulas drawn by the tests are kept in a folder of the session's, not the user's cache.
os.environ["PUBKIT_CACHE"] = tempfile.mkdtemp(prefix="pubkit-test-cache-")
PROJECTS = Path(__file__).resolve().parent / "projects"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
SEED_ID = "09-the-human-craft/50-career-growth-for-product-managers"
TYPO_ID = "02-elements/01-every-element"


@pytest.fixture(scope="session")
def browser() -> Iterator[object]:
    """Debian's chromium, driven by Playwright: what the preview and e-books are read in."""
    if CHROMIUM is None:
        pytest.skip("chromium is not installed (.ci/run installs it from Debian)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, headless=True)
        yield launched
        launched.close()


@pytest.fixture(scope="session")
def seed_build(tmp_path_factory: pytest.TempPathFactory) -> tuple[BuildResult, Path]:
    """The repository's own course, every edition, built once for the whole session."""
    out = tmp_path_factory.mktemp("seed-build")
    result = build(REPO, out=out, force=True)
    assert result.ok, [str(d) for d in result.diagnostics]
    return result, out


@pytest.fixture(scope="session")
def basic_build(tmp_path_factory: pytest.TempPathFactory) -> tuple[BuildResult, Path]:
    project = tmp_path_factory.mktemp("basic") / "basic"
    shutil.copytree(PROJECTS / "basic", project)
    result = build(project, force=True)
    assert result.ok, [str(d) for d in result.diagnostics]
    return result, project / "build"


@pytest.fixture(scope="session")
def typography_build(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Every element pubkit sets (notes, tables, figures) and a German lesson."""
    return _clean_build(tmp_path_factory, "typography")


@pytest.fixture(scope="session")
def scripts_build(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Lessons in Arabic (right to left), Hindi, and English quoting many scripts."""
    return _clean_build(tmp_path_factory, "scripts")


@pytest.fixture(scope="session")
def blocks_build(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Every kind of course block, in English, German and Arabic, in every edition."""
    return _clean_build(tmp_path_factory, "blocks")


@pytest.fixture(scope="session")
def technical_build(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A technical lesson: math, code in three languages, figures, tables, citations."""
    return _clean_build(tmp_path_factory, "technical")


def _clean_build(tmp_path_factory: pytest.TempPathFactory, name: str) -> Path:
    """A copy of sample project ``name`` built whole, without a single warning."""
    project = tmp_path_factory.mktemp(name) / name
    shutil.copytree(PROJECTS / name, project)
    result = build(project, force=True)
    assert result.ok, [str(d) for d in result.diagnostics]
    assert not result.diagnostics, [str(d) for d in result.diagnostics]
    return project / "build"


def run_pubkit(
    *args: str,
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
    python: Sequence[str] = (),
) -> subprocess.CompletedProcess[str]:
    """The real ``pubkit`` command, as a user runs it (in environment ``env``, Python
    given the options ``python``); its output, not raised on failure."""
    return subprocess.run(
        [sys.executable, *python, "-m", "pubkit", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )


def make_project(root: Path, lessons: dict[str, str], module: str | None = None) -> Path:
    """Write a one-module project: ``lessons`` maps file names to their text."""
    folder = root / "manuscript" / "01-module"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "module.yaml").write_text(module or "number: 1\ntitle: Module One\n")
    for name, text in lessons.items():
        (folder / name).write_text(text, encoding="utf-8")
    return root


def lesson_text(number: int, title: str = "A Lesson", body: str = "Some words here.\n") -> str:
    return f"---\nlesson: {number}\ntitle: {title}\n---\n\n{body}"
