"""Links as authors write them: between lessons, to sections, out of the course; ids that
collide; images described by their ``alt`` attribute. Read off the real outputs: the PDFs'
link annotations and named destinations, the EPUBs' hrefs followed to their targets."""

from __future__ import annotations

import posixpath
import re
import shutil
import zipfile
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import pypdf
import pytest

from conftest import PROJECTS, make_project
from pdfinfo import alternate_texts
from pubkit.build import BuildResult, build

URL = "https://courses.example.org/linked/"
START = "01-basics/01-start"


def _built(root: Path, url: str | None) -> tuple[BuildResult, Path]:
    project = root / "links"
    shutil.copytree(PROJECTS / "links", project)
    if url:
        config = project / "pubkit.yaml"
        config.write_text(
            config.read_text(encoding="utf-8").replace(
                "language: en", f"language: en\n  url: {url}"
            ),
            encoding="utf-8",
        )
    result = build(project, force=True)
    assert result.ok, [str(d) for d in result.diagnostics]
    return result, project / "build"


@pytest.fixture(scope="module")
def offline(tmp_path_factory: pytest.TempPathFactory) -> tuple[BuildResult, Path]:
    """The links sample without a public address."""
    return _built(tmp_path_factory.mktemp("links-offline"), None)


@pytest.fixture(scope="module")
def online(tmp_path_factory: pytest.TempPathFactory) -> tuple[BuildResult, Path]:
    """The links sample with ``course.url``."""
    return _built(tmp_path_factory.mktemp("links-online"), URL)


# --- reading the outputs ---------------------------------------------------------------


def said(result: BuildResult, project: Path) -> list[str]:
    """The build's messages, with paths relative to the project, as the CLI prints them
    from inside it."""
    return [str(d).replace(f"{project}/", "") for d in result.diagnostics]


def pdf_links(path: Path) -> list[dict[str, Any]]:
    """Every link annotation of a PDF: {"dest": name} inside it, {"file", "dest"} for a
    go-to into another PDF, {"uri"} for an address."""
    found = []
    for page in pypdf.PdfReader(path).pages:
        for annotation in page.get("/Annots") or []:
            annotation = annotation.get_object()
            if annotation.get("/Subtype") != "/Link":
                continue
            if "/Dest" in annotation:
                found.append({"dest": str(annotation["/Dest"])})
                continue
            action = annotation["/A"]
            if action["/S"] == "/GoToR":
                destination = action["/D"]
                name = str(destination) if isinstance(destination, str) else None
                found.append({"file": str(action["/F"]), "dest": name})
            else:
                found.append({"uri": str(action["/URI"])})
    return found


def named_destinations(path: Path) -> set[str]:
    return set(pypdf.PdfReader(path).named_destinations)


def epub_links(path: Path) -> list[tuple[str, str, str]]:
    """Every ``<a href>`` of an EPUB's chapters: (chapter, href, link text)."""
    found = []
    with zipfile.ZipFile(path) as archive:
        for name in archive.namelist():
            if name.startswith("EPUB/text/") and name.endswith(".xhtml"):
                text = archive.read(name).decode("utf-8")
                for href, words in re.findall(r'<a href="([^"]*)"[^>]*>(.*?)</a>', text):
                    found.append((name, href, words))
    return found


def epub_ids(path: Path) -> dict[str, set[str]]:
    with zipfile.ZipFile(path) as archive:
        return {
            name: set(re.findall(r'\sid="([^"]*)"', archive.read(name).decode("utf-8")))
            for name in archive.namelist()
            if name.endswith(".xhtml")
        }


def follow(epub: Path, chapter: str, href: str) -> tuple[str, str] | None:
    """Where a link inside the EPUB lands: (file, id), or None for an address outside."""
    parts = urlsplit(href)
    if parts.scheme:
        return None
    if not parts.path:  # within the chapter
        return chapter, unquote(parts.fragment)
    target = posixpath.normpath(posixpath.join(posixpath.dirname(chapter), unquote(parts.path)))
    return target, unquote(parts.fragment)


def chapter_text(epub: Path, chapter: str = "EPUB/text/ch001.xhtml") -> str:
    with zipfile.ZipFile(epub) as archive:
        return archive.read(chapter).decode("utf-8")


# --- without course.url ----------------------------------------------------------------


def test_lesson_pdfs_link_to_the_pdfs_beside_them_at_their_sections(
    offline: tuple[BuildResult, Path],
) -> None:
    _, out = offline
    here = out / f"pdf/{START}.pdf"
    links = pdf_links(here)
    files = [link for link in links if "file" in link]
    assert files == [
        {"file": "../01-basics/02-next.pdf", "dest": None},
        {"file": "../01-basics/02-next.pdf", "dest": "second-section"},
        {"file": "../02-advanced/01-deep.pdf", "dest": None},
        {"file": "../02-advanced/01-deep.pdf", "dest": "proofs"},
    ]
    for link in files:  # every go-to lands on a PDF that is there, at a named destination
        target = (here.parent / link["file"]).resolve()
        assert target.is_file(), link
        if link["dest"]:
            assert link["dest"] in named_destinations(target), link
    # The handout links the same way, to the handouts beside it.
    handout = out / f"handout/{START}.pdf"
    assert [link for link in pdf_links(handout) if "file" in link] == files
    for link in files:
        assert (handout.parent / link["file"]).resolve().is_file()
    # Inside the lesson, and out to the web; nothing to a manuscript.
    assert {"dest": "where-to-go-next"} in links and {"dest": "note"} in links
    assert {"uri": "https://www.w3.org/"} in links
    assert {"uri": "mailto:team@example.org"} in links
    assert not any(".md" in str(link) for link in links)
    for link in links:
        if "dest" in link and "file" not in link:
            assert link["dest"] in named_destinations(here)


def test_without_an_address_a_lesson_epub_names_the_lesson_instead_of_a_dead_link(
    offline: tuple[BuildResult, Path],
) -> None:
    _, out = offline
    epub = out / f"epub/{START}.epub"
    text = chapter_text(epub)
    assert "the next lesson (Lesson 2: The Next Step)" in text
    assert "its proofs (Module 2, Lesson 1: Going Deep)" in text
    # Links that leave the course are kept as words, unlinked.
    assert "<span>about the course</span>" in text
    for chapter, href, _ in epub_links(epub):
        landing = follow(epub, chapter, href)
        if landing is None:
            assert href.startswith(("https://", "mailto:")), href
            continue
        assert landing[1] in epub_ids(epub)[landing[0]], href


def test_a_module_collection_links_to_its_own_lessons_inside_the_book(
    offline: tuple[BuildResult, Path],
) -> None:
    _, out = offline
    pdf = out / "collections/01-basics.pdf"
    links = pdf_links(pdf)
    assert {"dest": "lesson-2"} in links and {"dest": "lesson-2-second-section"} in links
    assert {"dest": "lesson-1-where-to-go-next"} in links  # lesson 2 back to lesson 1
    destinations = named_destinations(pdf)
    for link in links:
        if "file" not in link and "dest" in link:
            assert link["dest"] in destinations, link
    # Across modules: into the other module's collected PDF beside it.
    other = [link for link in links if "file" in link]
    assert other == [
        {"file": "02-advanced.pdf", "dest": "lesson-1"},
        {"file": "02-advanced.pdf", "dest": "lesson-1-proofs"},
    ]
    assert all(
        link["dest"] in named_destinations(out / "collections/02-advanced.pdf") for link in other
    )
    # The collected EPUB: chapters lead into each other.
    epub = out / "collections/01-basics.epub"
    hrefs = {href: words for _, href, words in epub_links(epub)}
    assert hrefs["ch002.xhtml#lesson-2-second-section"] == "its second section"
    assert hrefs["ch002.xhtml#lesson-2-lesson-title"] == "the next lesson"
    ids = epub_ids(epub)
    for chapter, href, _ in epub_links(epub):
        if (landing := follow(epub, chapter, href)) is not None:
            assert landing[1] in ids[landing[0]], href


def test_colliding_ids_are_renamed_with_a_warning_at_their_line(
    offline: tuple[BuildResult, Path],
) -> None:
    result, out = offline
    messages = said(result, out.parent)
    assert (
        "manuscript/01-basics/01-start.md:21: warning: identifier “note” is given twice; "
        "the second is renamed “note-1” (links to #note lead to the first)"
    ) in messages
    assert any(
        m.startswith("manuscript/01-basics/02-next.md:14: warning: identifier “solution”")
        for m in messages
    ), messages
    text = chapter_text(out / f"epub/{START}.epub")
    assert text.count('id="note"') == 1 and 'id="note-1"' in text
    # Every message once: no "pdf:" and "handout:" copies.
    assert len(messages) == len(set(messages))
    assert not any(": pdf: " in m or ": handout: " in m for m in messages), messages


def test_links_out_of_a_course_without_an_address_are_warned_once_at_their_line(
    offline: tuple[BuildResult, Path],
) -> None:
    result, out = offline
    outside = [m for m in said(result, out.parent) if "leads outside the course" in m]
    assert [m.split(": warning:")[0] for m in outside] == [
        "manuscript/01-basics/01-start.md:13",
        "manuscript/01-basics/01-start.md:13",
    ]
    assert "“/about/”" in outside[0] and "“../../glossary/terms.html#assign”" in outside[1]


def test_described_images_are_described_in_every_edition(
    offline: tuple[BuildResult, Path],
) -> None:
    result, out = offline
    # The alt attribute is the description; the caption stays the visible caption.
    assert not any("no description" in d.message for d in result.diagnostics)
    text = chapter_text(out / f"epub/{START}.epub")
    assert 'alt="A line graph of monthly sales, rising from 10 in January to 90 in May."' in text
    assert "<figcaption>Monthly sales rise through the year.</figcaption>" in text
    assert 'alt="Two colour swatches: blue and amber." title="Swatches"' in text
    assert 'style="width:60.0%"' in text
    # The tagged PDF carries both descriptions as the figures' alternate text.
    alts = alternate_texts(out / f"pdf/{START}.pdf")
    assert "A line graph of monthly sales, rising from 10 in January to 90 in May." in alts
    assert "Two colour swatches: blue and amber." in alts


# --- with course.url ---------------------------------------------------------------------


def test_with_an_address_every_edition_links_out_absolutely(
    online: tuple[BuildResult, Path],
) -> None:
    result, out = online
    assert not any("leads outside" in d.message for d in result.diagnostics)
    links = pdf_links(out / f"pdf/{START}.pdf")
    uris = [link["uri"] for link in links if "uri" in link]
    assert uris == [
        f"{URL}pdf/01-basics/02-next.pdf",
        f"{URL}pdf/01-basics/02-next.pdf#second-section",
        f"{URL}pdf/02-advanced/01-deep.pdf",
        f"{URL}pdf/02-advanced/01-deep.pdf#proofs",
        "https://www.w3.org/",
        "mailto:team@example.org",
        "https://courses.example.org/about/",
        "https://courses.example.org/glossary/terms.html#assign",
    ]
    assert not any("file" in link for link in links)
    epub = out / f"epub/{START}.epub"
    hrefs = [href for _, href, _ in epub_links(epub)]
    assert f"{URL}pdf/01-basics/02-next.pdf#second-section" in hrefs
    assert "https://courses.example.org/about/" in hrefs
    # Across modules, the collections lead to the other module's collected PDF online.
    collected = pdf_links(out / "collections/02-advanced.pdf")
    assert {"uri": f"{URL}collections/01-basics.pdf#lesson-2-first-section"} in collected
    collected_epub = out / "collections/01-basics.epub"
    assert f"{URL}pdf/02-advanced/01-deep.pdf#proofs" in [
        href for _, href, _ in epub_links(collected_epub)
    ]


# --- faults ------------------------------------------------------------------------------


LESSON = """---
lesson: {n}
title: Lesson {n}
---

## Only section

{body}
"""


def test_a_link_to_a_missing_lesson_or_section_fails_its_lesson_at_its_line(
    tmp_path: Path,
) -> None:
    project = make_project(
        tmp_path,
        {
            "01-one.md": LESSON.format(n=1, body="Go [on](02-two.md#only-section)."),
            "02-two.md": LESSON.format(
                n=2,
                body="See [gone](03-gone.md) and\n[nowhere](01-one.md#nowhere), [here](#nothing).",
            ),
        },
    )
    result = build(project, force=True)
    messages = said(result, project)
    assert result.failed == (project / "manuscript/01-module/02-two.md",)
    assert [r.lesson.id for r in result.built] == ["01-module/01-one"]
    assert (
        "manuscript/01-module/02-two.md:8: error: link to “03-gone.md”: no such lesson in "
        "this course"
    ) in messages
    assert (
        "manuscript/01-module/02-two.md:9: error: link to “01-one.md#nowhere”: lesson 1 "
        "“Lesson 1” has no section “#nowhere”"
    ) in messages
    assert not (project / "build/epub/01-module/02-two.epub").exists()


def test_a_link_to_a_missing_section_of_the_lesson_itself_is_a_warning(tmp_path: Path) -> None:
    project = make_project(
        tmp_path, {"01-one.md": LESSON.format(n=1, body="See\n[nothing](#nothing) here.")}
    )
    result = build(project, force=True)
    assert result.ok
    (message,) = said(result, project)
    assert message == (
        "manuscript/01-module/01-one.md:9: warning: link to “#nothing”: this lesson has no "
        "such section"
    )
    strict = build(project, force=True, strict=True)
    assert not strict.ok


def test_an_edit_rebuilds_a_lesson_linking_to_it_only_when_its_sections_change(
    tmp_path: Path,
) -> None:
    """A link to a section takes its identifiers from the lesson it leads to, nothing
    else: prose edited there leaves the linking lesson as it was; a section renamed away
    fails it at its line."""
    project = make_project(
        tmp_path,
        {
            "01-one.md": LESSON.format(n=1, body="Go [on](02-two.md#only-section)."),
            "02-two.md": LESSON.format(n=2, body="Some words."),
        },
    )
    assert build(project).ok
    two = project / "manuscript/01-module/02-two.md"

    two.write_text(two.read_text(encoding="utf-8") + "\nMore words, a new paragraph.\n")
    again = build(project)
    assert again.ok
    assert {r.lesson.id: r.skipped for r in again.built} == {
        "01-module/01-one": True,
        "01-module/02-two": False,
    }

    two.write_text(two.read_text(encoding="utf-8").replace("## Only section", "## Renamed"))
    renamed = build(project)
    assert renamed.failed == (project / "manuscript/01-module/01-one.md",)
    assert (
        "manuscript/01-module/01-one.md:8: error: link to “02-two.md#only-section”: lesson 2 "
        "“Lesson 2” has no section “#only-section”"
    ) in said(renamed, project)
