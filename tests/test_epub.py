"""The EPUB as e-readers and their makers' checkers see it: EPUBCheck, Ace, Calibre,
the page list against the PDF, the cover, accessibility metadata read off the content."""

from __future__ import annotations

import hashlib
import importlib.util
import io
import json
import os
import shutil
import signal
import socket
import subprocess
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from xml.etree import ElementTree as ET

import pytest
from PIL import Image

from conftest import PROJECTS, REPO, SEED_ID, TYPO_ID, make_project, run_pubkit
from epubinfo import (
    EPUB_TYPE,
    NCX,
    XHTML,
    documents,
    meta,
    package,
    read,
    text_after_markers,
    words,
)
from pdfinfo import page_texts
from pubkit.build import BuildResult, build
from pubkit.course.validate import run_epubcheck
from pubkit.document.markdown import outline
from pubkit.engines import a11y
from pubkit.errors import ConfigError
from pubkit.sources.config import builtin_styles


@pytest.fixture(scope="module")
def faults_build(tmp_path_factory: pytest.TempPathFactory) -> tuple[BuildResult, Path]:
    """The faults project built without EPUBCheck (``--no-validate``), so that its
    invalid EPUB is written for ``check --epub`` to read."""
    project = tmp_path_factory.mktemp("epub-faults") / "epub-faults"
    shutil.copytree(PROJECTS / "epub-faults", project)
    return build(project, force=True, validate=False), project


def every_epub(seed: Path, *others: Path) -> list[Path]:
    """Every lesson's EPUB and every module's collected EPUB of the builds."""
    found = [seed / f"epub/{SEED_ID}.epub"]
    found += [epub for other in others for epub in sorted(other.glob("epub/*/*.epub"))]
    found += [epub for out in (seed, *others) for epub in sorted(out.glob("collections/*.epub"))]
    assert found[0].is_file(), found
    for out in (seed, *others):  # a lesson's EPUB and a collection from every build
        assert len([p for p in found if p.is_relative_to(out)]) >= 2, (out, found)
    return found


# --- validity -----------------------------------------------------------------------


def test_every_epub_passes_epubcheck_with_no_message(
    seed_build: tuple[BuildResult, Path],
    typography_build: Path,
    blocks_build: Path,
    technical_build: Path,
) -> None:
    for epub in every_epub(seed_build[1], typography_build, blocks_build, technical_build):
        assert [(m.code, m.locations, m.text) for m in run_epubcheck(epub)] == [], epub.name


def test_check_epub_names_the_manuscript_line_behind_a_message(
    faults_build: tuple[BuildResult, Path],
) -> None:
    _, project = faults_build
    run = run_pubkit("check", "--epub", cwd=project)
    assert run.returncode == 1
    assert "Traceback" not in run.stderr
    lines = [line for line in run.stderr.splitlines() if "EPUBCheck" in line and "error" in line]
    # The only EPUBCheck error, in the lesson's EPUB and in its module's collected one:
    # a JPEG saved as .png, at the line of the image (its file is not what the author wrote).
    assert len(lines) == 2, run.stderr
    assert lines[0].startswith(
        "manuscript/01-links/01-dangling.md:22: error: epub: EPUBCheck OPF-029"
    )
    assert lines[1].startswith(
        "manuscript/01-links/01-dangling.md:22: error: collections/01-links.epub: EPUBCheck OPF-029"
    )
    assert "EPUB/media/file0.png" in lines[0]  # what EPUBCheck read, for the curious
    # The dangling section link is pubkit's own warning, and the link is gone.
    assert not any("RSC-012" in line for line in run.stderr.splitlines()), run.stderr


def test_build_writes_no_epub_that_epubcheck_rejects(tmp_path: Path) -> None:
    project = tmp_path / "epub-faults"
    shutil.copytree(PROJECTS / "epub-faults", project)
    lesson = project / "manuscript/01-links/01-dangling.md"
    epub = project / "build/epub/01-links/01-dangling.epub"
    written = lesson.read_text(encoding="utf-8")
    # First without the mislabelled photo: valid, and built.
    lesson.write_text(written.split("## A photo")[0], encoding="utf-8")
    first = run_pubkit("build", "--quiet", cwd=project)
    assert first.returncode == 0, first.stderr
    good = epub.read_bytes()
    books = sorted((project / "build/collections").glob("01-links.*"))
    assert [p.suffix for p in books] == [".epub", ".pdf"]
    kept_books = [p.read_bytes() for p in books]
    # Then with it: EPUBCheck rejects the EPUB, so the lesson fails and keeps its last
    # good outputs; the progress and the summary say so, never "built". Its module's
    # books, set while the lesson's EPUB was checked, are not written: the last good
    # ones stay.
    lesson.write_text(written, encoding="utf-8")
    second = run_pubkit("build", cwd=project)
    assert second.returncode == 1, second.stderr
    assert "failed: 01-links/01-dangling" in second.stdout + second.stderr
    assert "built: 01-links/01-dangling" not in second.stdout + second.stderr
    assert "01-dangling.md:22: error: epub: EPUBCheck OPF-029" in second.stderr
    assert "0 built, 1 up to date, 1 failed" in second.stderr, second.stderr
    assert epub.read_bytes() == good
    assert "kept: collections/01-links" in second.stdout + second.stderr
    assert [p.read_bytes() for p in books] == kept_books
    assert "Traceback" not in second.stderr
    # The downloads manifest still offers the last good EPUB.
    listing = json.loads((project / "build/manifest.json").read_text(encoding="utf-8"))
    (entry,) = [e for e in listing["lessons"] if e["id"] == "01-links/01-dangling"]
    assert entry["editions"]["epub"]["sha256"] == hashlib.sha256(good).hexdigest()
    # --no-validate writes it (a draft), and a validating build then checks it again.
    draft = run_pubkit("build", "--quiet", "--no-validate", cwd=project)
    assert draft.returncode == 0, draft.stderr
    assert epub.read_bytes() != good
    again = run_pubkit("build", "--quiet", cwd=project)
    assert again.returncode == 1 and "OPF-029" in again.stderr, again.stderr


def test_builds_share_an_epubcheck_daemon_that_ends_when_idle(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An author's builds (the CLI, one after another) check their EPUBs in one daemon:
    the second build finds the first one's, which listens on loopback for its owner only
    and exits once idle."""
    runtime = tmp_path / "runtime"
    runtime.mkdir(mode=0o700)
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(runtime))
    monkeypatch.setenv("PUBKIT_EPUBCHECK_DAEMON", "1")
    project = tmp_path / "epub-faults"
    shutil.copytree(PROJECTS / "epub-faults", project)
    try:
        first = run_pubkit("build", "--quiet", cwd=project)
        assert first.returncode == 1 and "OPF-029" in first.stderr, first.stderr
        (place,) = (runtime / "pubkit").glob("epubcheck-*.port")
        assert place.stat().st_mode & 0o777 == 0o600
        port, _token, pid = place.read_text().split()
        # The daemon outlived the build, and the next build uses it: same file, same JVM.
        os.kill(int(pid), 0)
        second = run_pubkit("build", "--quiet", "--force", cwd=project)
        assert second.returncode == 1 and "OPF-029" in second.stderr, second.stderr
        assert place.read_text().split() == [port, _token, pid]
        # A connection without the token is refused an answer.
        with socket.create_connection(("127.0.0.1", int(port)), timeout=5) as stranger:
            stranger.sendall(b"not the token\n/etc/passwd\t/tmp/x.json\n")
            stranger.settimeout(5)
            assert stranger.recv(100) == b""
    finally:
        for found in (runtime / "pubkit").glob("epubcheck-*.port"):
            os.kill(int(found.read_text().split()[2]), signal.SIGTERM)


def test_check_epub_is_clean_on_the_seed(seed_build: tuple[BuildResult, Path]) -> None:
    run = run_pubkit("check", "--epub", "--out", str(seed_build[1]), cwd=REPO)
    assert run.returncode == 0, run.stderr
    assert "1 lesson valid, EPUBs clean" in run.stdout


def _ace_checker() -> Any:
    """``tools/ace_check.py``, the script behind ``make a11y``."""
    spec = importlib.util.spec_from_file_location("ace_check", REPO / "tools/ace_check.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


ACE_CHECK = _ace_checker()


@pytest.mark.skipif(
    not (ACE_CHECK.ACE.exists() and ACE_CHECK.CHROMIUM.exists()),
    reason="Ace by DAISY is not installed: `make a11y` installs it (.ci/run does)",
)
def test_ace_by_daisy_finds_no_violation(
    seed_build: tuple[BuildResult, Path],
    typography_build: Path,
    scripts_build: Path,
    blocks_build: Path,
    technical_build: Path,
) -> None:
    # The scripts sample: right to left, Indic scripts, Japanese; every course block; math.
    others = (typography_build, scripts_build, blocks_build, technical_build)
    for epub in every_epub(seed_build[1], *others):
        assert ACE_CHECK.violations(epub) == [], epub.name


# --- accessibility metadata ----------------------------------------------------------


def test_accessibility_metadata_is_read_off_the_content(
    seed_build: tuple[BuildResult, Path], typography_build: Path
) -> None:
    seed = seed_build[1] / f"epub/{SEED_ID}.epub"
    figures = typography_build / f"epub/{TYPO_ID}.epub"
    # The seed is text only: no image claims.
    assert meta(seed, "schema:accessMode") == ["textual"]
    assert meta(seed, "schema:accessModeSufficient") == ["textual"]
    assert "alternativeText" not in meta(seed, "schema:accessibilityFeature")
    # A lesson with a described figure: visual content, and its alternative claimed.
    assert meta(figures, "schema:accessMode") == ["textual", "visual"]
    assert "alternativeText" in meta(figures, "schema:accessibilityFeature")
    assert meta(figures, "schema:accessModeSufficient") == ["textual", "textual,visual"]
    for epub in (seed, figures):
        features = meta(epub, "schema:accessibilityFeature")
        for feature in ("structuralNavigation", "tableOfContents", "readingOrder"):
            assert feature in features
        assert "printPageNumbers" in features and "pageBreakMarkers" in features
        assert meta(epub, "schema:accessibilityHazard") == ["none"]
        assert meta(epub, "dcterms:conformsTo") == ["EPUB Accessibility 1.1 - WCAG 2.2 Level AA"]
        assert meta(epub, "a11y:certifiedBy")
        assert meta(epub, "pageBreakSource")
        (summary,) = meta(epub, "schema:accessibilitySummary")
        assert "page list" in summary and "WCAG 2.2 Level AA" in summary


def test_an_undescribed_image_withdraws_the_claims_it_breaks(
    faults_build: tuple[BuildResult, Path],
) -> None:
    result, project = faults_build
    epub = project / "build/epub/01-links/02-undescribed.epub"
    features = meta(epub, "schema:accessibilityFeature")
    assert "alternativeText" not in features
    assert meta(epub, "schema:accessModeSufficient") == ["textual,visual"]
    assert meta(epub, "dcterms:conformsTo") == [] and meta(epub, "a11y:certifiedBy") == []
    (summary,) = meta(epub, "schema:accessibilitySummary")
    assert "no text alternative" in summary and "no WCAG conformance claim" in summary
    messages = [str(d) for d in result.diagnostics]
    assert any(
        "01-links/02-undescribed.md:12: warning: image “figures/chart.png”" in m for m in messages
    ), messages
    assert any("epub: no WCAG conformance claimed" in m for m in messages)


def test_assessment_claims_only_what_it_finds() -> None:
    def chapter(body: str, lang: str | None = "en") -> ET.Element:
        declared = f' lang="{lang}"' if lang else ""
        return ET.fromstring(
            f'<html xmlns="http://www.w3.org/1999/xhtml"{declared}><body>{body}</body></html>'
        )

    plain = a11y.assess([chapter("<h1>T</h1><p>Words.</p>")], 0, {})
    assert plain.features == (
        "structuralNavigation",
        "tableOfContents",
        "readingOrder",
        "displayTransformability",
    )
    assert plain.conforms and plain.hazards == ("none",)
    maths = a11y.assess(
        [chapter('<h1>T</h1><math xmlns="http://www.w3.org/1998/Math/MathML"><mi>x</mi></math>')],
        3,
        {},
    )
    assert "MathML" in maths.features and "printPageNumbers" in maths.features
    skipped = a11y.assess(
        [chapter("<h1>T</h1><h3>Deep</h3><table><tr><td>1</td></tr></table>")], 0, {}
    )
    assert not skipped.conforms
    assert any("level 3 after level 1" in p for p in skipped.problems)
    assert any("1 table without header cells" in p for p in skipped.problems)
    assert not a11y.assess([chapter("<p>x</p>", lang=None)], 0, {}).conforms
    frames = [Image.new("RGB", (4, 4), c) for c in ("red", "blue")]
    gif = io.BytesIO()
    frames[0].save(gif, "GIF", save_all=True, append_images=frames[1:])
    animated = a11y.assess([chapter("<h1>T</h1>")], 0, {"EPUB/media/a.gif": gif.getvalue()})
    assert animated.hazards == ("unknown",) and not animated.conforms


def test_headings_are_set_in_order_without_skipped_levels() -> None:
    def heading(level: int, text: str) -> dict[str, object]:
        return {"t": "Header", "c": [level, ["", [], []], [{"t": "Str", "c": text}]]}

    blocks = [heading(1, "Top"), heading(3, "Deep"), heading(4, "Deeper"), heading(2, "Next")]
    skips = outline(blocks)
    # "#" is the top of the body, so "##" under it is a subsection.
    assert [b["c"][0] for b in blocks] == [2, 3, 4, 3]  # type: ignore[index]
    assert skips == [("Deep", 1, 3, 3)]


def test_every_document_declares_its_language_and_the_takeaways_are_labelled(
    typography_build: Path,
) -> None:
    for epub in typography_build.glob("epub/*/*.epub"):
        language = package(epub).get("{http://www.w3.org/XML/1998/namespace}lang")
        assert language in ("en", "de")
        for name, root in documents(epub).items():
            assert root.get("lang") == language, name
            assert root.get("{http://www.w3.org/XML/1998/namespace}lang") == language, name
            for aside in root.iter(f"{XHTML}aside"):
                if "takeaways" in (aside.get("class") or ""):
                    label = aside.get("aria-labelledby")
                    assert label and any(e.get("id") == label for e in aside.iter())


def test_notes_open_with_their_number_linked_back_to_the_call(typography_build: Path) -> None:
    chapter = documents(typography_build / f"epub/{TYPO_ID}.epub")["EPUB/text/ch001.xhtml"]
    calls = {a.get("id"): a for a in chapter.iter(f"{XHTML}a") if a.get("role") == "doc-noteref"}
    notes = [n for n in chapter.iter(f"{XHTML}aside") if n.get("role") == "doc-footnote"]
    assert len(notes) == len(calls) == 2
    for note in notes:
        back = next(a for a in note.iter(f"{XHTML}a") if a.get("role") == "doc-backlink")
        call = calls[back.get("href", "").removeprefix("#")]
        assert back.text == "".join(call.itertext()).strip()
        assert call.get("href") == f"#{note.get('id')}"


# --- in step with print --------------------------------------------------------------


@pytest.mark.parametrize("which", ["seed", "typography"])
def test_page_list_markers_stand_where_the_pdf_pages_begin(
    which: str, seed_build: tuple[BuildResult, Path], typography_build: Path
) -> None:
    out, lesson = (seed_build[1], SEED_ID) if which == "seed" else (typography_build, TYPO_ID)
    epub, pdf = out / f"epub/{lesson}.epub", out / f"pdf/{lesson}.pdf"
    pages = page_texts(pdf)
    chapter = documents(epub)["EPUB/text/ch001.xhtml"]
    after = text_after_markers(chapter)
    nav = documents(epub)["EPUB/nav.xhtml"]
    page_list = next(
        n
        for n in nav.iter(f"{XHTML}nav")
        if n.get("{http://www.idpf.org/2007/ops}type") == "page-list"
    )
    labels = [a.text for a in page_list.iter(f"{XHTML}a")]
    assert labels == [str(n) for n in range(1, len(pages) + 1)]
    assert list(after) == labels
    for number, text in enumerate(pages, start=1):
        opening = words(text)[:40]
        following = words(after[str(number)])
        # The page may open on the second half of a hyphenated word; the marker stands
        # before the whole word, so the PDF's opening comes within its first letters.
        assert 0 <= following.find(opening) < 15, (number, text[:60], after[str(number)][:60])
    # Every link of the page list reaches a marker in the chapter.
    ids = {e.get("id") for e in chapter.iter()}
    for link in page_list.iter(f"{XHTML}a"):
        assert link.get("href", "").split("#")[1] in ids


def test_same_reading_figures_and_header_as_the_pdf(seed_build: tuple[BuildResult, Path]) -> None:
    result, out = seed_build
    entry = result.built[0].entry
    chapter = read(out / f"epub/{SEED_ID}.epub", "EPUB/text/ch001.xhtml").decode()
    pdf_first = page_texts(out / f"pdf/{SEED_ID}.pdf")[0]
    for figure in (f"{entry['pages']} pages", "2,829 words", "12 min read"):
        assert figure in chapter and figure in pdf_first


# --- what e-reader libraries show ----------------------------------------------------


def test_cover_is_rendered_from_the_header_and_declared(
    seed_build: tuple[BuildResult, Path],
) -> None:
    epub = seed_build[1] / f"epub/{SEED_ID}.epub"
    items = list(package(epub).iter("{http://www.idpf.org/2007/opf}item"))
    (cover,) = [i for i in items if "cover-image" in (i.get("properties") or "")]
    assert cover.get("media-type") == "image/png"
    image = Image.open(io.BytesIO(read(epub, "EPUB/" + cover.get("href", "")))).convert("RGB")
    width, height = image.size
    assert width >= 1400 and abs(height / width - 297 / 210) < 0.01  # the paper's shape
    colours = image.getcolors(maxcolors=1 << 24) or []
    accent = sum(
        n for n, (r, g, b) in colours if abs(r - 0x1D) + abs(g - 0x5B) + abs(b - 0x8C) < 30
    )
    dark = sum(n for n, pixel in colours if max(pixel) < 80)
    assert accent > width * height * 0.02  # the accent band and module line
    assert dark > width * height * 0.005  # the title, set in large type
    page = documents(epub)["EPUB/text/cover.xhtml"]
    (img,) = page.iter(f"{XHTML}img")
    assert img.get("alt") == (
        "Module 9: The Human Craft. Lesson 50: Career Growth for Product Managers"
    )


def test_package_metadata_for_libraries(
    seed_build: tuple[BuildResult, Path], tmp_path: Path
) -> None:
    epub = seed_build[1] / f"epub/{SEED_ID}.epub"
    assert meta(epub, "dc:title") == ["Career Growth for Product Managers"]
    assert meta(epub, "dc:creator") == ["pubkit sample course"]
    assert meta(epub, "dc:publisher") == ["pubkit sample course"]
    assert meta(epub, "dc:language") == ["en"]
    assert meta(epub, "dc:subject")[:2] == ["product management", "career growth"]
    assert meta(epub, "dc:description")[0].startswith("How PM careers actually progress")
    assert len(meta(epub, "dcterms:modified")) == 1
    assert meta(epub, "belongs-to-collection") == ["Module 9: The Human Craft"]
    assert meta(epub, "group-position") == ["50"]
    assert meta(epub, "collection-type") == ["series"]
    # The identifier is the same on a rebuild, in another folder.
    (identifier,) = meta(epub, "dc:identifier")
    again = build(REPO, out=tmp_path, formats=["epub"], force=True)
    assert again.ok
    assert meta(tmp_path / f"epub/{SEED_ID}.epub", "dc:identifier") == [identifier]
    assert identifier.startswith("urn:uuid:")


def test_series_name_follows_the_setting(tmp_path: Path) -> None:
    project = tmp_path / "basic"
    shutil.copytree(PROJECTS / "basic", project)
    config = project / "pubkit.yaml"
    config.write_text(config.read_text() + 'epub:\n  series: "{title} (Part {number})"\n')
    result = build(project, formats=["epub"], force=True)
    assert result.ok
    epub = project / "build/epub/01-getting-started/01-first-steps.epub"
    assert meta(epub, "belongs-to-collection") == ["Getting Started (Part 1)"]
    assert meta(epub, "group-position") == ["1"]
    config.write_text(config.read_text().replace("{title} (Part {number})", "{chapter}"))
    with pytest.raises(ConfigError) as raised:
        build(project, formats=["epub"])
    assert "epub.series: expected a name with {module}, {number} and {title}" in str(
        raised.value.diagnostics[0]
    )


@pytest.mark.skipif(
    shutil.which("ebook-meta") is None,
    reason="Calibre's ebook-meta is not installed (.ci/run installs Debian's calibre)",
)
def test_calibre_reads_title_author_series_and_index(
    seed_build: tuple[BuildResult, Path], tmp_path: Path
) -> None:
    epub = seed_build[1] / f"epub/{SEED_ID}.epub"
    cover = tmp_path / "cover.png"
    run = subprocess.run(
        ["ebook-meta", str(epub), f"--get-cover={cover}"],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    fields = {
        key.strip(): value.strip()
        for key, _, value in (line.partition(":") for line in run.stdout.splitlines())
    }
    assert fields["Title"] == "Career Growth for Product Managers"
    assert fields["Author(s)"] == "pubkit sample course"
    assert fields["Series"] == "Module 9: The Human Craft #50"
    assert fields["Languages"] == "eng"
    assert Image.open(cover).size[0] >= 1400  # Calibre finds the declared cover


def test_fonts_are_subset_and_the_css_falls_back_to_generic_families(
    seed_build: tuple[BuildResult, Path],
) -> None:
    epub = seed_build[1] / f"epub/{SEED_ID}.epub"
    fonts = builtin_styles() / "fonts"
    with zipfile.ZipFile(epub) as archive:
        embedded = {
            Path(n).name: archive.getinfo(n).file_size
            for n in archive.namelist()
            if n.endswith(".ttf")
        }
        css = archive.read("EPUB/styles/stylesheet1.css").decode()
    assert embedded
    for name, size in embedded.items():
        assert size < (fonts / name).stat().st_size / 4, name
    assert '"Noto Serif", serif' in css and '"Noto Sans", sans-serif' in css
    assert epub.stat().st_size < 600_000


def _long_lesson() -> str:
    """A lesson whose pages open in every way: mid-paragraph, on a heading, inside a table
    whose header row repeats, on a figure, in a code block, with footnotes about."""
    sentence = "Sentence {n} of part {part} keeps the reader moving through the argument."
    parts = ["---\nlesson: 1\ntitle: A Long Lesson\n---\n"]
    for part in range(1, 5):
        words = " ".join(sentence.format(n=n, part=part) for n in range(1, 40))
        rows = "\n".join(f"| Row {row} of part {part} | {row * part} |" for row in range(1, 31))
        code = "\n".join(
            f"step_{part}_{line} = run(part={part}, line={line})" for line in range(30)
        )
        parts += [
            f"## Part {part}\n",
            f"{words}[^note{part}]\n",
            f"{words * (3 if part == 2 else 0)}\n",  # one paragraph over several pages
            f"[^note{part}]: A note for part {part}, set at the foot of its page.\n",
            f"| Item | Value |\n|------|------:|\n{rows}\n",
            f"![Bars for part {part}.](figures/bars.png)\n",
            f"```\n{code}\n```\n",
        ]
    return "\n".join(parts)


def test_page_list_follows_tables_figures_and_notes_across_pages(tmp_path: Path) -> None:
    project = make_project(tmp_path, {"01-long.md": _long_lesson()})
    figures = project / "manuscript/01-module/figures"
    figures.mkdir()
    shutil.copy(PROJECTS / "typography/manuscript/02-elements/figures/bars.png", figures)
    result = build(project, formats=["pdf", "epub"], force=True)
    assert result.ok, [str(d) for d in result.diagnostics]
    assert not [d for d in result.diagnostics if "page list" in str(d)]
    out = project / "build"
    pages = page_texts(out / "pdf/01-module/01-long.pdf")
    assert len(pages) >= 8
    after = text_after_markers(
        documents(out / "epub/01-module/01-long.epub")["EPUB/text/ch001.xhtml"]
    )
    assert list(after) == [str(n) for n in range(1, len(pages) + 1)]
    repeated_header = words("Item Value")
    for number, text in enumerate(pages, start=1):
        opening = words(text)
        if number > 1 and opening.startswith(repeated_header):  # the table's header, set again
            opening = opening[len(repeated_header) :]
        assert 0 <= words(after[str(number)]).find(opening[:40]) < 15, (number, text[:80])
    # Markers inside table cells and before figures keep the chapter valid.
    assert run_epubcheck(out / "epub/01-module/01-long.epub") == []


def test_a_section_named_like_pubkits_own_parts_keeps_ids_unique(tmp_path: Path) -> None:
    """A heading "Lesson Title" would be called "lesson-title", as pubkit's title is."""
    body = (
        "## Lesson Title\n\nBack to [the section](#lesson-title).\n\n## Lesson Title 1\n\nMore.\n"
    )
    project = make_project(tmp_path, {"01-a.md": f"---\nlesson: 1\ntitle: A\n---\n\n{body}"})
    result = build(project, formats=["pdf", "epub"])
    assert result.ok, [str(d) for d in result.diagnostics]
    epub = project / "build/epub/01-module/01-a.epub"
    assert run_epubcheck(epub) == []
    chapter = documents(epub)["EPUB/text/ch001.xhtml"]
    ids = [e.get("id") for e in chapter.iter() if e.get("id")]
    assert len(ids) == len(set(ids)) and "lesson-title" in ids
    (link,) = (a for a in chapter.iter(f"{XHTML}a") if a.text == "the section")
    target = link.get("href", "").split("#")[1]
    (section,) = (e for e in chapter.iter() if e.get("id") == target)
    assert "".join(section.itertext()).strip().startswith("Lesson Title\n")


def test_raw_html_named_like_pubkits_own_parts_is_renamed_with_its_links(tmp_path: Path) -> None:
    """The same for an id written in raw HTML, and a raw link to it."""
    body = (
        '<span id="lesson-title">Marked</span> and <a id="lesson-title-1"></a>taken.\n\n'
        '<a href="#lesson-title">Raw link</a>, [Markdown link](#lesson-title).\n'
    )
    project = make_project(tmp_path, {"01-a.md": f"---\nlesson: 1\ntitle: A\n---\n\n{body}"})
    assert build(project, formats=["epub"]).ok
    epub = project / "build/epub/01-module/01-a.epub"
    assert run_epubcheck(epub) == []
    chapter = documents(epub)["EPUB/text/ch001.xhtml"]
    ids = [e.get("id") for e in chapter.iter() if e.get("id")]
    assert len(ids) == len(set(ids)) and "lesson-title-2" in ids
    (marked,) = (e for e in chapter.iter() if e.text == "Marked")
    assert marked.get("id") == "lesson-title-2"
    links = [a for a in chapter.iter(f"{XHTML}a") if a.text in ("Raw link", "Markdown link")]
    assert [a.get("href", "").partition("#")[2] for a in links] == ["lesson-title-2"] * 2


def _contents(epub: Path) -> tuple[list[tuple[int, str, str]], list[tuple[int, str, str]]]:
    """The EPUB's contents as (depth, href, label) in reading order: from nav.xhtml, and
    from toc.ncx."""
    nav = documents(epub)["EPUB/nav.xhtml"]
    (toc,) = (n for n in nav.iter(f"{XHTML}nav") if n.get(EPUB_TYPE) == "toc")

    def items(listing: ET.Element, depth: int) -> Iterator[tuple[int, str, str]]:
        for item in listing.findall(f"{XHTML}li"):
            link = item.find(f"{XHTML}a")
            assert link is not None and link.find(f".//{XHTML}a") is None  # no link in a link
            yield depth, link.get("href", ""), " ".join("".join(link.itertext()).split())
            for inner in item.findall(f"{XHTML}ol"):
                yield from items(inner, depth + 1)

    listing = toc.find(f"{XHTML}ol")
    assert listing is not None
    ncx = ET.fromstring(read(epub, "EPUB/toc.ncx"))

    def points(parent: ET.Element, depth: int) -> Iterator[tuple[int, str, str]]:
        for point in parent.findall(f"{NCX}navPoint"):
            content, label = point.find(f"{NCX}content"), point.find(f"{NCX}navLabel/{NCX}text")
            assert content is not None and label is not None
            yield depth, content.get("src", ""), label.text or ""
            yield from points(point, depth + 1)

    nav_map = ncx.find(f"{NCX}navMap")
    assert nav_map is not None
    return list(items(listing, 1)), list(points(nav_map, 1))


def test_contents_list_lessons_and_their_sections_three_levels_deep(tmp_path: Path) -> None:
    """pubkit writes the contents itself (nav.xhtml, and toc.ncx for older readers):
    lesson, sections, subsections, each entry a link to its place, headings' emphasis and
    code kept, their links and note calls left out; ``unlisted`` headings and deeper ones
    are not listed."""
    body = (
        "## The *first* part[^n]\n\nText.\n\n"
        "### With [a link](https://example.org) and `code`\n\nText.\n\n"
        "#### Too deep\n\nText.\n\n"
        "## Hidden {.unlisted}\n\nText.\n\n### Under the hidden one\n\nText.\n\n"
        "> ## Quoted\n>\n> Text.\n\n"
        "## Key takeaways\n\n- One.\n\n[^n]: A note.\n"
    )
    project = make_project(
        tmp_path,
        {
            "01-a.md": f"---\nlesson: 1\ntitle: Alpha\n---\n\n{body}",
            "02-b.md": "---\nlesson: 2\ntitle: Beta\n---\n\n## Only part\n\nText.\n",
        },
    )
    result = build(project)
    assert result.ok, [str(d) for d in result.diagnostics]
    lesson = project / "build/epub/01-module/01-a.epub"
    collected = project / "build/collections/01-module.epub"
    for epub in (lesson, collected):
        assert run_epubcheck(epub) == [], epub.name

    alpha = [
        (1, "Alpha"),
        (2, "The first part"),
        (3, "With a link and code"),
        (2, "Under the hidden one"),
        (2, "Key takeaways"),
    ]
    nav, ncx = _contents(lesson)
    assert [(depth, label) for depth, _, label in nav] == alpha
    assert ncx == nav  # the same entries, as plain text
    assert ET.fromstring(read(lesson, "EPUB/toc.ncx")).find(
        f"{NCX}head/{NCX}meta[@name='dtb:depth']"
    ).get("content") == "3"  # fmt: skip
    chapters = documents(lesson)
    for _, href, label in nav:
        name, _, target = href.partition("#")
        assert any(e.get("id") == target for e in chapters["EPUB/" + name].iter()), label
    toc = ET.tostring(chapters["EPUB/nav.xhtml"], encoding="unicode")
    assert "<html:em>first</html:em>" in toc and "<html:code>code</html:code>" in toc
    assert "doc-noteref" not in toc and "example.org" not in toc

    nav, ncx = _contents(collected)
    assert [(depth, label) for depth, _, label in nav] == [*alpha, (1, "Beta"), (2, "Only part")]
    assert ncx == nav
    assert [href.partition("#")[0] for _, href, _ in nav] == ["text/ch001.xhtml"] * 5 + [
        "text/ch002.xhtml"
    ] * 2
