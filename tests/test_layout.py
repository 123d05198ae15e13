"""The typographic self-check: clean on our own lessons, and each fault found in its fixture."""

from __future__ import annotations

import io
import re
import shutil
from pathlib import Path

import pytest
from pypdf import PdfReader

from conftest import PROJECTS, REPO, run_pubkit
from pubkit.build import build
from pubkit.check import check, check_layout

FAULTS = PROJECTS / "layout-faults"
FOLDER = FAULTS / "manuscript" / "01-faults"


def test_seed_lesson_comes_out_clean() -> None:
    checked = check(REPO)
    diagnostics, findings = check_layout(checked)
    assert len(checked.manuscripts.lessons) == 1
    assert not checked.diagnostics
    assert not diagnostics
    assert findings == []


def test_sample_projects_come_out_clean() -> None:
    for name in ("basic", "typography"):
        diagnostics, findings = check_layout(check(PROJECTS / name))
        assert not [d for d in diagnostics if d.is_error]
        assert findings == [], name


@pytest.fixture(scope="module")
def findings() -> dict[str, list[tuple[int | None, str]]]:
    diagnostics, found = check_layout(check(FAULTS))
    assert not diagnostics
    by_file: dict[str, list[tuple[int | None, str]]] = {}
    for finding in found:
        assert finding.path is not None and not finding.is_error
        by_file.setdefault(finding.path.name, []).append((finding.line, finding.message))
    return by_file


@pytest.mark.parametrize(
    ("lesson", "line", "message"),
    [
        ("01-overflow.md", 9, "pdf page 1: line runs 36.7 mm into the margin"),
        ("02-stranded.md", 21, "pdf page 1: heading “The heading left behind” stands alone"),
        ("03-split.md", 20, "pdf page 1: takeaways box split across pages 1–2 although it fits"),
        ("04-empty.md", 22, "pdf page 2: page is 11% full because of a forced page break"),
    ],
)
def test_each_fault_is_reported_once_at_its_line(
    findings: dict[str, list[tuple[int | None, str]]], lesson: str, line: int, message: str
) -> None:
    ((found_line, found_message),) = findings[lesson]
    assert found_line == line
    assert found_message.startswith(message)
    source = (FOLDER / lesson).read_text().splitlines()[line - 1]
    assert source.strip(), "the reported line holds the fault"


def test_a_box_longer_than_a_page_flows_on_under_a_continued_label(
    findings: dict[str, list[tuple[int | None, str]]], tmp_path: Path
) -> None:
    assert "05-long-box.md" not in findings  # set as it should be: nothing to report
    project = tmp_path / "faults"
    shutil.copytree(FAULTS, project)
    assert build(project, targets=[project / "manuscript/01-faults/05-long-box.md"]).ok
    pdf = project / "build/pdf/01-faults/05-long-box.pdf"
    pages = [page.extract_text() for page in PdfReader(pdf).pages]
    assert len(pages) == 2
    # It starts under the text on page 1, rather than leaving page 1 empty ...
    assert "Point 1:" in pages[0] and "KEY TAKEAWAYS (CONTINUED)" not in pages[0]
    # ... and page 2 opens with its heading and "(continued)", then the next point.
    last_on_first = max(int(n) for n in re.findall(r"Point (\d+):", pages[0]))
    assert "KEY TAKEAWAYS (CONTINUED)" in pages[1]
    assert pages[1].index("(CONTINUED)") < pages[1].index(f"Point {last_on_first + 1}:")
    for point in range(1, 25):
        assert sum(f"Point {point}:" in page for page in pages) == 1


def test_build_warns_of_the_same_findings(tmp_path: Path) -> None:
    project = tmp_path / "faults"
    shutil.copytree(FAULTS, project)
    result = build(project, targets=[project / "manuscript/01-faults/02-stranded.md"])
    assert result.ok
    (finding,) = [d for d in result.diagnostics if "stands alone" in d.message]
    assert finding.line == 21 and not finding.is_error


def test_check_layout_command_exits_1_and_lists_findings() -> None:
    run = run_pubkit("check", "--layout", "-C", str(FAULTS))
    assert run.returncode == 1
    assert run.stderr.count("warning: pdf page") == 4
    assert "5 lessons: 4 findings" in run.stderr
    assert "Traceback" not in run.stderr


@pytest.mark.parametrize(
    ("body", "several", "layouts"),
    [
        ("A single short paragraph.\n", False, 1),  # guessed "1 page", rightly
        ("Words and more words. " * 2500 + "\n", True, 1),  # number guessed wrong: counted
        ("```\n" + "x\n" * 400 + "```\n", True, 2),  # guessed "1 page", wrongly: set again
    ],
)
def test_the_page_count_is_printed_by_the_layout_engine_in_one_layout(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, body: str, several: bool, layouts: int
) -> None:
    """WeasyPrint prints the header's "N pages" itself (counter(pages)), so the count is
    true after one layout; a second is needed only when the guess chose the wrong noun."""
    from weasyprint import HTML

    from conftest import lesson_text, make_project
    from pubkit.document.markdown import convert
    from pubkit.document.metrics import Figures, count_words
    from pubkit.document.render import RenderJob
    from pubkit.editions import EDITIONS
    from pubkit.engines.pdf import WORDS_PER_PAGE, render_paged
    from pubkit.sources.theme import load_theme

    root = make_project(tmp_path, {"01-l.md": lesson_text(1, "L", body)})
    checked = check(root)
    config, (lesson,) = checked.config, checked.manuscripts.lessons
    document = convert(lesson, root)
    figures = Figures(count_words(document.text), 1)
    calls: list[int] = []
    render = HTML.render
    monkeypatch.setattr(HTML, "render", lambda *a, **k: calls.append(1) or render(*a, **k))
    theme = load_theme(config.styles_dir)
    for name in ("pdf", "handout"):
        calls.clear()
        job = RenderJob(lesson, document, figures, config, theme, EDITIONS[name])
        rendered = render_paged(job)
        assert rendered.pages is not None
        first = " ".join(PdfReader(io.BytesIO(rendered.data)).pages[0].extract_text().split())
        assert (rendered.pages > 1) == several
        noun = "page" if rendered.pages == 1 else "pages"
        assert f"{rendered.pages} {noun} ·" in first, first[:300]
        assert len(calls) == layouts, (name, rendered.pages, figures.words / WORDS_PER_PAGE)
