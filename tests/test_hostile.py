"""Hostile projects: nothing outside the project is read, nothing is fetched from the
network, an interrupted build loses nothing, and the same sources give the same bytes."""

from __future__ import annotations

import io
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from pypdf import PdfReader

from conftest import PROJECTS, lesson_text, make_project, run_pubkit
from pubkit.build import build
from pubkit.course import lessons as lessons_module
from pubkit.course import workers
from pubkit.document import markdown as markdown_module
from pubkit.document import pandoc as pandoc_module
from pubkit.document.markdown import READER
from pubkit.engines.fetcher import ProjectFetcher
from pubkit.errors import LessonError

FIGURE = PROJECTS / "typography/manuscript/02-elements/figures/bars.png"


def figure_lesson(number: int, source: str) -> str:
    return lesson_text(number, f"Figure {number}", f"Words.\n\n![A figure]({source})\n")


@pytest.mark.parametrize(
    ("make", "why"),
    [
        (lambda p: p.symlink_to("/etc/passwd"), "outside the project folder"),
        (lambda p: p.symlink_to("/dev/zero"), "outside the project folder"),
        (lambda p: os.mkfifo(p), "not a regular file"),  # reading it would hang the build
    ],
    ids=["symlink-out", "symlink-device", "fifo"],
)
def test_a_figure_that_is_not_a_project_file_is_refused(tmp_path: Path, make, why: str) -> None:  # type: ignore[no-untyped-def]
    root = make_project(
        tmp_path, {"01-bad.md": figure_lesson(1, "figures/x.png"), "02-ok.md": lesson_text(2)}
    )
    figures = root / "manuscript/01-module/figures"
    figures.mkdir()
    make(figures / "x.png")
    result = build(root, formats=["pdf"], force=True)
    assert [p.name for p in result.failed] == ["01-bad.md"]
    (problem,) = [d for d in result.diagnostics if d.is_error]
    assert problem.line == 8 and f"'figures/x.png': {why}" in problem.message
    assert [r.lesson.path.name for r in result.built] == ["02-ok.md"]


SVG = '<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink">{}</svg>'


@pytest.mark.parametrize(
    ("inside", "why"),
    [
        ("<script>alert(1)</script>", "an SVG with <script>"),
        ('<rect width="5" height="5" onclick="steal()"/>', "event handler (onclick)"),
        ("<foreignObject><p>HTML</p></foreignObject>", "an SVG with <foreignObject>"),
        ('<image href="https://example.org/x.png"/>', "refers to 'https://example.org/x.png'"),
        ('<use xlink:href="/etc/passwd#x"/>', "refers to '/etc/passwd#x'"),
        ("<style>rect { fill: url(https://example.org/p.svg#g) }</style>", "style sheet fetches"),
        ('<rect style="fill: url(other.svg#g)"/>', "whose style fetches a file"),
        ("<rect", "not well-formed SVG"),
    ],
    ids=["script", "handler", "foreign", "remote-image", "local-use", "css", "style", "broken"],
)
def test_an_svg_figure_that_runs_or_fetches_something_is_refused(
    tmp_path: Path, inside: str, why: str
) -> None:
    root = make_project(
        tmp_path, {"01-bad.md": figure_lesson(1, "bad.svg"), "02-ok.md": lesson_text(2)}
    )
    (root / "manuscript/01-module/bad.svg").write_text(SVG.format(inside), encoding="utf-8")
    result = build(root, force=True)
    assert [p.name for p in result.failed] == ["01-bad.md"]
    (problem,) = [d for d in result.diagnostics if d.is_error]
    assert problem.line == 8 and "'bad.svg': " in problem.message, problem
    assert why in problem.message, problem
    assert not (root / "build/epub/01-module/01-bad.epub").exists()


def test_an_svg_with_entities_is_refused_before_it_is_expanded(tmp_path: Path) -> None:
    laughs = '<!DOCTYPE svg [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;">]>'
    root = make_project(tmp_path, {"01-bad.md": figure_lesson(1, "bad.svg")})
    svg = laughs + SVG.format("<text>&b;</text>")
    (root / "manuscript/01-module/bad.svg").write_text(svg, encoding="utf-8")
    result = build(root, force=True)
    (problem,) = result.diagnostics
    assert "DOCTYPE or entities" in problem.message and not result.ok


def test_a_safe_svg_figure_is_set_in_every_edition(tmp_path: Path) -> None:
    gradient = (
        '<defs><linearGradient id="g"><stop offset="0" stop-color="#1a5490"/></linearGradient>'
        '</defs><rect width="80" height="40" style="fill: url(#g)"/><use href="#g"/>'
    )
    root = make_project(tmp_path, {"01-ok.md": figure_lesson(1, "ok.svg")})
    (root / "manuscript/01-module/ok.svg").write_text(SVG.format(gradient), encoding="utf-8")
    result = build(root, force=True)  # the EPUB through EPUBCheck, too
    assert result.ok and not result.diagnostics, [str(d) for d in result.diagnostics]
    for edition in ("pdf/01-module/01-ok.pdf", "handout/01-module/01-ok.pdf"):
        assert PdfReader(root / "build" / edition).pages[0].get("/Resources")


def test_a_footnote_that_calls_itself_is_an_error_at_its_line(tmp_path: Path) -> None:
    # pandoc's reader would expand the note into itself until it ran out of memory.
    looping = "Words[^a].\n\n[^a]: See also[^b].\n\n[^b]: And back[^a].\n"
    root = make_project(
        tmp_path, {"01-loop.md": lesson_text(1, "Loop", looping), "02-ok.md": lesson_text(2)}
    )
    result = build(root, formats=["pdf"], force=True)
    assert [p.name for p in result.failed] == ["01-loop.md"]
    messages = sorted((d.line, d.message) for d in result.diagnostics)
    assert messages == [
        (8, "footnote [^a] refers to itself in its text"),
        (10, "footnote [^b] refers to itself in its text"),
    ]
    assert [r.lesson.path.name for r in result.built] == ["02-ok.md"]


def test_the_fetcher_reads_regular_project_files_only(tmp_path: Path) -> None:
    project = tmp_path / "project"
    project.mkdir()
    shutil.copy(FIGURE, project / "ok.png")
    (project / "out.png").symlink_to("/etc/passwd")
    fetcher = ProjectFetcher([project], project=project)
    assert fetcher.fetch((project / "ok.png").as_uri())  # a regular file inside is served
    assert fetcher.fetch("file:///pubkit-project/ok.png")  # and under its fixed URL
    for url in (
        "file:///etc/passwd",
        (project / "out.png").as_uri(),
        "file:///pubkit-project/../etc/passwd",
        "file:///dev/zero",
        "http://127.0.0.1:9/x.png",
        "ftp://example.com/x",
    ):
        with pytest.raises(ValueError):
            fetcher.fetch(url)
    assert len(fetcher.refused) == 6


class Listener:
    """A loopback server that records every connection made to it."""

    def __init__(self) -> None:
        self.server = socket.socket()
        self.server.bind(("127.0.0.1", 0))
        self.server.listen()
        self.server.settimeout(0.2)
        self.address = f"http://127.0.0.1:{self.server.getsockname()[1]}"
        self.arrived: list[object] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._listen)

    def _listen(self) -> None:
        while not self._stop.is_set():
            try:
                self.arrived.append(self.server.accept())
            except TimeoutError:
                continue

    def __enter__(self) -> Listener:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        time.sleep(0.5)  # time for a late connection to show
        self._stop.set()
        self._thread.join()
        self.server.close()


def test_no_connection_is_made_for_a_manuscript_that_points_at_the_network(
    tmp_path: Path,
) -> None:
    with Listener() as listener:
        at = listener.address
        root = make_project(
            tmp_path,
            {
                "01-links.md": lesson_text(1, "Links", f"A [link]({at}/page) and a bare {at}/b.\n"),
                "02-image.md": figure_lesson(2, f"{at}/image.png"),
                "03-raw.md": lesson_text(3, "Raw", f'Text.\n\n<img src="{at}/raw.png" alt="r">\n'),
                "04-style.md": lesson_text(
                    4, "Style", f"<style>@import url({at}/s.css);</style>\n"
                ),
                "05-attribute.md": lesson_text(
                    5, "Attribute", f'[x]{{style="background: url({at}/bg.png)"}}\n'
                ),
            },
        )
        result = build(root, force=True)
    assert listener.arrived == []
    built = {r.lesson.path.name for r in result.built}
    assert built == {"01-links.md", "05-attribute.md"}  # links are written, never fetched
    assert {p.name for p in result.failed} == {"02-image.md", "03-raw.md", "04-style.md"}
    page = PdfReader(root / "build/pdf/01-module/01-links.pdf").pages[0]
    uris = [a.get_object()["/A"].get("/URI") for a in page.get("/Annots", [])]
    assert f"{at}/page" in uris  # the link is there, for the reader to follow


def test_a_theme_that_loads_from_the_network_stops_the_build_first(tmp_path: Path) -> None:
    with Listener() as listener:
        root = make_project(tmp_path, {"01-a.md": lesson_text(1)})
        (root / "styles").mkdir()
        (root / "styles/custom.css").write_text(
            f"@import url({listener.address}/theme.css);\n"
            f"body {{ background: url('{listener.address}/bg.png') }}\n"
            "h1 { background: url(../../etc/passwd) }\n"
        )
        run = run_pubkit("build", cwd=root)
    assert listener.arrived == []
    assert run.returncode == 2
    lines = run.stderr.splitlines()
    assert lines[0].startswith("styles/custom.css:1: error: 'http://127.0.0.1:")
    assert (
        lines[1].startswith("styles/custom.css:2: error:") and "never from the network" in lines[1]
    )
    assert lines[2] == "styles/custom.css:3: error: '../../etc/passwd': outside the theme folder"
    assert not (root / "build/pdf").exists()


def _copy(source: Path, target: Path) -> Path:
    shutil.copytree(source, target)
    return target


def _outputs(out: Path) -> dict[str, bytes]:
    """Every published file: editions, collections, thumbnails, the downloads page and its
    fonts (not the build record, whose keys include the project's folder)."""
    return {
        p.relative_to(out).as_posix(): p.read_bytes()
        for p in sorted(out.rglob("*"))
        if p.is_file() and p.suffix != ".json" and ".pubkit" not in p.parts
    }


def test_two_builds_in_different_folders_are_byte_identical(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1767225600")  # 2026-01-01
    first = _copy(PROJECTS / "typography", tmp_path / "one/typography")
    second = _copy(PROJECTS / "typography", tmp_path / "somewhere/else/entirely")
    assert build(first, force=True).ok and build(second, force=True).ok
    a, b = _outputs(first / "build"), _outputs(second / "build")
    published = {name.split("/")[0] for name in a}
    assert published == {
        "pdf",
        "handout",
        "epub",
        "instructor",
        "collections",
        "thumbnails",
        "assets",
        "index.html",
    }
    assert len(a) == 23 and a.keys() == b.keys()
    assert [name for name in a if a[name] != b[name]] == []
    reader = PdfReader(first / "build/pdf/02-elements/01-every-element.pdf")
    assert (
        str(first) not in str(reader.trailer)
        and str(first).encode() not in a["pdf/02-elements/01-every-element.pdf"]
    )


def test_a_date_in_pubkit_yaml_also_gives_the_same_bytes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SOURCE_DATE_EPOCH", raising=False)
    folders = []
    for name in ("a", "b"):
        root = _copy(PROJECTS / "basic", tmp_path / name)
        config = root / "pubkit.yaml"
        config.write_text(config.read_text().replace("course:\n", "course:\n  date: 2026-11-24\n"))
        assert build(root, formats=["epub", "pdf"], force=True).ok
        folders.append(_outputs(root / "build"))
        time.sleep(1.1)  # a clock-stamped output would differ
    assert folders[0] == folders[1]
    assert {"collections/01-getting-started.epub", "index.html"} <= folders[0].keys()


def test_a_lesson_that_breaks_keeps_its_previous_outputs(tmp_path: Path) -> None:
    root = make_project(tmp_path, {"01-a.md": lesson_text(1, "A", "## Part\n\nWords.\n")})
    assert build(root, formats=["pdf"]).ok
    pdf = root / "build/pdf/01-module/01-a.pdf"
    before = pdf.read_bytes()
    (root / "manuscript/01-module/01-a.md").write_text("---\nlesson: one\ntitle: A\n---\n\nx\n")
    result = build(root, formats=["pdf"])
    assert not result.ok
    assert pdf.read_bytes() == before


def test_an_interrupted_build_leaves_outputs_whole_and_the_next_recovers(tmp_path: Path) -> None:
    lessons = {f"{n:02d}-l.md": lesson_text(n, f"Lesson {n}", "Words. " * 400) for n in range(1, 7)}
    root = make_project(tmp_path, lessons)
    assert build(root, formats=["pdf"]).ok
    before = _outputs(root / "build")
    for path in (root / "manuscript/01-module").glob("*.md"):
        path.write_text(path.read_text() + "\nA new closing line.\n")
    command = [sys.executable, "-m", "pubkit", "build", "--format", "pdf"]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    run = subprocess.Popen(
        command, cwd=root, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    assert run.stdout is not None
    first = run.stdout.readline()  # one lesson rewritten, the next one under way
    assert b"[1/7] built" in first  # six lessons and the module's collection
    run.send_signal(signal.SIGINT)
    _, stderr = run.communicate(timeout=120)
    assert run.returncode == 130, stderr
    assert b"Traceback" not in stderr
    after = _outputs(root / "build")
    assert after.keys() == before.keys()
    for name, data in after.items():  # each file is the old one or the new one, never half
        if name.endswith(".pdf"):
            assert len(PdfReader(io.BytesIO(data)).pages) >= 1
    assert not list(root.rglob("*.tmp"))
    assert build(root, formats=["pdf"]).ok
    assert all(b"A new closing line" not in d for d in before.values())


def test_pandoc_runs_under_a_memory_bound(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    greedy = "*a* " * 50000  # 200 kB of emphasis: pandoc holds about 100 MB of it
    source = tmp_path / "01-l.md"
    assert pandoc_module.parse(greedy, READER, source=source).wait().startswith(b"{")
    monkeypatch.setattr(pandoc_module, "MEMORY_LIMIT_BYTES", 64 << 20)
    root = make_project(tmp_path, {"01-l.md": lesson_text(1, "L", greedy)})
    started = time.monotonic()
    result = build(root, formats=["pdf"], force=True)
    (problem,) = [d for d in result.diagnostics if d.is_error]
    assert (
        problem.message == "pandoc failed: the manuscript needs more memory than pandoc is allowed"
    )
    assert time.monotonic() - started < 30  # stopped by the bound, not by a time limit
    # The session pandoc stopped in is replaced: the next conversion is served.
    assert pandoc_module.parse("Fine.", READER, source=source).wait().startswith(b"{")


def test_pandoc_sessions_are_kept_bounded_in_time_and_replaced(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = tmp_path / "01-l.md"
    first = pandoc_module.parse("One.", READER, source=source)
    second = pandoc_module.parse("Two.", READER, source=source)
    assert first.session is second.session  # one pandoc serves one conversion after another
    assert b"Two" in second.wait() and b"One" in first.wait()
    kept = first.session.process
    monkeypatch.setattr(pandoc_module, "TIMEOUT_SECONDS", 0.05)
    slow = pandoc_module.parse("*a* " * 200000, READER, source=source)
    with pytest.raises(LessonError) as raised:
        slow.wait()
    assert (
        str(raised.value) == f"{source}: error: pandoc took longer than 0.05 s; conversion stopped"
    )
    assert kept.poll() is not None  # that pandoc was stopped
    monkeypatch.setattr(pandoc_module, "TIMEOUT_SECONDS", 60)
    after = pandoc_module.parse("Three.", READER, source=source)
    assert after.session.process is not kept and b"Three" in after.wait()


def test_a_workers_pandoc_ends_with_it(tmp_path: Path) -> None:
    def pandoc_of(_item: int) -> int:
        conversion = pandoc_module.parse("Words.", READER, source=tmp_path / "a.md")
        conversion.wait()
        return conversion.session.process.pid

    ((_, pid),) = list(workers.render_isolated([1], pandoc_of, jobs=1, where=lambda _: tmp_path))
    assert isinstance(pid, int)
    deadline = time.monotonic() + 10
    while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not Path(f"/proc/{pid}").exists()  # reaped by its worker, not left behind


def test_manuscripts_are_read_only_from_inside_the_project(tmp_path: Path) -> None:
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (outside / "02-secret.md").write_text(lesson_text(2, "Secret"))
    root = make_project(tmp_path / "project", {"01-ok.md": lesson_text(1)})
    (root / "manuscript/01-module/02-secret.md").symlink_to(outside / "02-secret.md")
    (root / "manuscript/01-module/03-huge.md").write_text(lesson_text(3, "Huge", "x" * (5 << 20)))
    result = build(root, formats=["pdf"], force=True)
    assert [r.lesson.path.name for r in result.built] == ["01-ok.md"]
    messages = sorted(str(d).split(": ", 1)[1] for d in result.diagnostics)
    assert messages == [
        "error: larger than 4 MiB: too large for one lesson",
        "error: links to a file outside the project; not read",
    ]


def test_no_file_is_attached_to_the_pdf(tmp_path: Path) -> None:
    body = (
        'See <a rel="attachment" href="notes.txt">the notes</a>, '
        "[the same notes](notes.txt){rel=attachment} and the raw link below.\n\n"
        '<link rel="attachment" href="notes.txt">\n'
    )
    root = make_project(tmp_path, {"01-a.md": lesson_text(1, "Attached", body)})
    (root / "manuscript/01-module/notes.txt").write_text("private notes\n")
    result = build(root, formats=["pdf"], force=True)
    assert result.ok
    removed = [str(d) for d in result.diagnostics if "removed" in d.message]
    assert len(removed) == 3, removed
    reader = PdfReader(root / "build/pdf/01-module/01-a.pdf")
    assert "/EmbeddedFiles" not in str(reader.trailer["/Root"].get("/Names", {}))
    annotations = [a.get_object() for a in reader.pages[0].get("/Annots", [])]
    assert not [a for a in annotations if a.get("/Subtype") == "/FileAttachment"]
    assert b"private notes" not in (root / "build/pdf/01-module/01-a.pdf").read_bytes()


@pytest.mark.parametrize(
    ("fault", "message"),
    [
        # a layout that never ends, as far as the build can tell
        (lambda: time.sleep(30), "took longer than 3 s to set; stopped"),
        (lambda: bytearray(3 << 30), "setting this lesson needs more than the 1024 MB it may use"),
        (
            lambda: os.kill(os.getpid(), signal.SIGSEGV),
            "setting this lesson crashed an engine (SIGSEGV)",
        ),
        (lambda: os._exit(3), "setting this lesson stopped unexpectedly (exit status 3)"),
    ],
    ids=["hang", "memory", "crash", "exit"],
)
def test_a_lesson_that_hangs_exhausts_memory_or_crashes_fails_alone(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    fault,
    message: str,  # type: ignore[no-untyped-def]
) -> None:
    root = make_project(
        tmp_path, {f"0{n}-l.md": lesson_text(n, f"Lesson {n}", "Words.\n") for n in (1, 2, 3)}
    )
    real = lessons_module._render_editions

    def faulty_second(lesson, *args):  # type: ignore[no-untyped-def]
        if lesson.number == 2:
            fault()  # as an engine would, set off by this manuscript
        return real(lesson, *args)

    monkeypatch.setattr(lessons_module, "_render_editions", faulty_second)
    monkeypatch.setattr(workers, "MEMORY_LIMIT_BYTES", 1 << 30)
    monkeypatch.setattr(workers, "TIMEOUT_SECONDS", 3.0)
    started = time.monotonic()
    result = build(root, formats=["pdf"], force=True, jobs=2)
    assert time.monotonic() - started < 25
    assert [p.name for p in result.failed] == ["02-l.md"]
    (problem,) = [d for d in result.diagnostics if d.is_error]
    assert problem.message == message
    assert [r.lesson.number for r in result.built] == [1, 3]


def test_parallel_and_serial_builds_give_the_same_bytes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1767225600")
    outputs = []
    for jobs in (1, 3):
        root = _copy(PROJECTS / "typography", tmp_path / f"jobs-{jobs}")
        assert build(root, force=True, jobs=jobs).ok
        outputs.append(_outputs(root / "build"))
    assert outputs[0] == outputs[1]


def test_a_lesson_set_alone_fails_whole_when_its_handout_fails(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With cores to spare, the handout is set beside the lesson in a worker of its own
    (one process per part: the pids differ); a crash there fails the lesson, whole."""
    root = make_project(tmp_path, {"01-l.md": lesson_text(1, "L", "Words.\n")})
    real = lessons_module._render_aside

    def crashing_handout(lesson, config, theme, name, date, course):  # type: ignore[no-untyped-def]
        os.kill(os.getpid(), signal.SIGSEGV)

    pids = tmp_path / "pids"
    pids.mkdir()

    def noting_handout(lesson, config, theme, name, date, course):  # type: ignore[no-untyped-def]
        (pids / f"{name}-{os.getpid()}").touch()
        return real(lesson, config, theme, name, date, course)

    real_editions = lessons_module._render_editions

    def noting_editions(lesson, config, theme, names, date, course):  # type: ignore[no-untyped-def]
        (pids / f"{'+'.join(names)}-{os.getpid()}").touch()
        return real_editions(lesson, config, theme, names, date, course)

    monkeypatch.setattr(lessons_module, "_render_editions", noting_editions)
    monkeypatch.setattr(lessons_module, "_render_aside", noting_handout)
    assert build(root, jobs=2).ok
    parts = dict(path.name.rsplit("-", 1) for path in pids.iterdir())
    assert set(parts) == {"pdf+epub", "handout", "instructor"}
    assert parts["pdf+epub"] not in (parts["handout"], parts["instructor"])  # set beside it
    assert (root / "build/handout/01-module/01-l.pdf").is_file()

    monkeypatch.setattr(lessons_module, "_render_aside", crashing_handout)
    before = _outputs(root / "build")
    (root / "manuscript/01-module/01-l.md").write_text(lesson_text(1, "L", "Other words.\n"))
    result = build(root, jobs=2)
    assert [p.name for p in result.failed] == ["01-l.md"]
    (problem,) = [d for d in result.diagnostics if d.is_error]
    assert problem.message == "setting this lesson crashed an engine (SIGSEGV)"
    assert _outputs(root / "build") == before  # nothing of the half-set lesson written


def test_a_lesson_set_alone_is_converted_once_before_the_workers_fork(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With cores to spare, the build converts the lesson while WeasyPrint loads, and both
    of its workers take that; a lesson larger than the build process should hold is
    converted by its workers, as is one whose conversion failed unexpectedly there."""
    root = make_project(tmp_path, {"01-l.md": lesson_text(1, "L", "Words.\n")})
    calls = tmp_path / "calls"
    real = markdown_module.read

    def noting(lesson, root, *given):  # type: ignore[no-untyped-def]
        (calls / f"{os.getpid()}-{time.monotonic_ns()}").touch()
        return real(lesson, root, *given)

    def readers() -> list[str]:
        found = sorted(path.name.split("-")[0] for path in calls.iterdir())
        shutil.rmtree(calls)
        calls.mkdir()
        return found

    calls.mkdir()
    monkeypatch.setattr(markdown_module, "read", noting)
    assert build(root, jobs=2, force=True).ok
    assert readers() == [str(os.getpid())]
    monkeypatch.setattr(markdown_module, "CONVERT_AHEAD_BYTES", 0)
    assert build(root, jobs=2, force=True).ok
    found = readers()
    assert len(set(found)) == 2 and str(os.getpid()) not in found

    def failing(lesson, root, *given):  # type: ignore[no-untyped-def]
        raise RuntimeError("a fault")

    monkeypatch.setattr(markdown_module, "CONVERT_AHEAD_BYTES", 4 << 20)
    monkeypatch.setattr(markdown_module, "read", failing)
    result = build(root, jobs=2, force=True)
    (problem,) = {d.message for d in result.diagnostics if d.is_error}
    assert problem == "internal error (RuntimeError: a fault); this is a bug in pubkit"
