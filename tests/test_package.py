"""pubkit as a user installs it: a wheel built from this checkout, installed alone into a
fresh virtual environment, run in folders that hold nothing of pubkit's."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

from conftest import REPO, SEED_ID
from epubinfo import package
from pdfinfo import fonts
from pubkit.errors import ConfigError
from pubkit.scaffold import course_title, new_course
from pubkit.sources.config import OPTIONS

EDITIONS = ("pdf", "handout", "epub")


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh virtual environment holding pubkit's wheel and nothing else of pubkit's: its
    dependencies are borrowed from the test's environment (no network), pubkit is not."""
    base = tmp_path_factory.mktemp("installed")
    dist = base / "dist"
    checkout = base / "checkout"  # a copy, so that building leaves nothing in the repository
    shutil.copytree(
        REPO,
        checkout,
        # Without the CJK fonts that make installs from npm: a wheel of pubkit alone.
        ignore=shutil.ignore_patterns(
            ".venv", "build", ".git", "*.egg-info", "__pycache__", "node_modules", "cjk"
        ),
        symlinks=True,
    )
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "--quiet"]
    subprocess.run(
        [*pip, "wheel", "--no-deps", "--no-build-isolation", "-w", dist, checkout],
        check=True,
        timeout=300,
    )
    (wheel,) = dist.glob("pubkit-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
    assert {"pubkit/theme/tokens.yaml", "pubkit/theme/fonts/OFL.txt"} <= names
    assert "pubkit/document/pandoc_server.lua" in names

    venv = base / "venv"
    subprocess.run([sys.executable, "-m", "venv", venv], check=True, timeout=300)
    python = str(venv / "bin" / "python")
    subprocess.run(  # with the new environment's own pip, which sees only it
        [python, "-m", "pip", "--quiet", "install", "--no-deps", "--no-index", str(wheel)],
        check=True,
        timeout=300,
    )
    where = [python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"]
    site = Path(subprocess.run(where, capture_output=True, text=True, check=True).stdout.strip())
    # The dependencies, from this environment's site-packages: a path line in a .pth file
    # adds the folder but runs none of its own .pth files (pubkit's editable install).
    borrowed = sysconfig.get_path("purelib")
    (site / "borrowed-dependencies.pth").write_text(borrowed + "\n")
    return venv


def _run(venv: Path, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in {"PYTHONPATH", "VIRTUAL_ENV"}}
    return subprocess.run(
        [str(venv / "bin" / "pubkit"), *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )


def _assert_built(out: Path, lesson_id: str) -> None:
    for edition in EDITIONS:
        suffix = ".epub" if edition == "epub" else ".pdf"
        path = out / edition / f"{lesson_id}{suffix}"
        assert path.is_file() and path.stat().st_size > 1000, path
    for edition in ("pdf", "handout"):
        used = fonts(out / edition / f"{lesson_id}.pdf")
        assert used and all(used.values()), used  # every font embedded
        assert all(name.startswith("Noto") for name in used), used  # the bundled ones
    epub = out / "epub" / f"{lesson_id}.epub"
    with zipfile.ZipFile(epub) as archive:
        embedded = [n for n in archive.namelist() if n.endswith(".ttf")]
    assert embedded and all("Noto" in Path(n).name for n in embedded), embedded
    assert package(epub).find(".//{*}metadata") is not None
    assert (out / "index.html").is_file()


def test_the_installed_package_is_the_wheel_not_the_checkout(installed: Path) -> None:
    where = subprocess.run(
        [str(installed / "bin" / "python"), "-c", "import pubkit; print(pubkit.__file__)"],
        capture_output=True,
        text=True,
        check=True,
        cwd=installed,
    ).stdout.strip()
    assert Path(where).is_relative_to(installed), where


def test_a_bare_folder_with_only_a_manuscript_builds_every_edition(
    installed: Path, tmp_path: Path
) -> None:
    shutil.copytree(REPO / "manuscript", tmp_path / "manuscript")
    done = _run(installed, "build", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "1 built, 0 failed" in done.stdout
    _assert_built(tmp_path / "build", SEED_ID)
    assert (tmp_path / "build/collections/09-the-human-craft.pdf").is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["build", "manuscript"]


def test_pubkit_new_scaffolds_a_course_that_builds_at_once(installed: Path, tmp_path: Path) -> None:
    made = _run(installed, "new", "intro-to-statistics", cwd=tmp_path)
    assert made.returncode == 0, made.stderr
    course = tmp_path / "intro-to-statistics"
    config = (course / "pubkit.yaml").read_text()
    assert 'title: "Intro To Statistics"' in config
    for option in OPTIONS:  # every setting is there, explained
        assert re.search(rf"^[ #]*{option.key.split('.')[-1]}: .* # ", config, re.M), option.key
    assert (course / "styles/custom.css").read_text().startswith("/*")
    done = _run(installed, "build", cwd=course)
    assert done.returncode == 0, done.stderr
    assert not done.stderr.strip(), done.stderr  # no warning about the scaffold itself
    _assert_built(course / "build", "01-getting-started/01-welcome")

    again = _run(installed, "new", "intro-to-statistics", cwd=tmp_path)
    assert again.returncode == 2
    assert "intro-to-statistics/pubkit.yaml: error: already exists" in again.stderr


def test_new_refuses_to_overwrite_and_writes_nothing(tmp_path: Path) -> None:
    (tmp_path / "course/styles").mkdir(parents=True)
    (tmp_path / "course/styles/custom.css").write_text("h1 { color: red; }\n")
    with pytest.raises(ConfigError) as caught:
        new_course(tmp_path / "course")
    assert [d.path for d in caught.value.diagnostics] == [tmp_path / "course/styles/custom.css"]
    assert sorted(p.name for p in (tmp_path / "course").rglob("*")) == ["custom.css", "styles"]
    assert (tmp_path / "course/styles/custom.css").read_text() == "h1 { color: red; }\n"


def test_new_writes_into_an_existing_folder_beside_other_files(tmp_path: Path) -> None:
    (tmp_path / "README.md").write_text("mine\n")
    written = new_course(tmp_path)
    assert tmp_path / "pubkit.yaml" in written and tmp_path / ".gitignore" in written
    assert (tmp_path / "README.md").read_text() == "mine\n"


@pytest.mark.parametrize(
    ("folder", "title"),
    [("intro-to-statistics", "Intro To Statistics"), ("ml_101", "Ml 101"), ("École", "École")],
)
def test_the_course_title_comes_from_the_folder_name(folder: str, title: str) -> None:
    assert course_title(Path(folder)) == title
