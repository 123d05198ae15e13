"""``pubkit preview``, run as an author runs it: the real command serving a copy of a
sample course, a real browser (Debian's chromium, driven by Playwright) watching it while
the test edits, breaks and mends a manuscript on disk, and the server's refusals."""

from __future__ import annotations

import http.client
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from pubkit.preview.web import host_check

PROJECTS = Path(__file__).resolve().parent / "projects"
LONG_ID = "01-getting-started/03-long-read"
ADDED = "A sentence the author added while the preview watched."
PARAGRAPH = (
    "Every paragraph of this lesson is here to fill its pages, so that the reader has "
    "somewhere to scroll to and from: the preview must keep them where they were. "
)


def long_lesson(extra: str = "") -> str:
    body = "\n\n".join(f"{n}. {PARAGRAPH * 3}" for n in range(1, 31))
    return (
        "---\nlesson: 3\ntitle: A Long Read\n---\n\n## Pages to scroll\n\n"
        f"{body}\n\n{extra}\n\n::: takeaways\n## Key Takeaways\n\n- Scrolling stays.\n:::\n"
    )


@dataclass
class Preview:
    process: subprocess.Popen[str]
    url: str
    host: str
    port: int
    project: Path
    tmp: Path
    lines: list[str]

    def wait_for(self, text: str, timeout: float = 60, after: int = 0) -> None:
        """Until a line printed after the first ``after`` holds ``text``."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if any(text in line for line in self.lines[after:]):
                return
            time.sleep(0.1)
        raise AssertionError(f"{text!r} never printed; output: {self.lines}")

    def idle(self, timeout: float = 60) -> None:
        """Until no build is under way (nor due: a save is heard within a second)."""
        deadline = time.monotonic() + timeout
        quiet_since = time.monotonic()
        while time.monotonic() - quiet_since < 1.0:
            assert time.monotonic() < deadline, "the preview never went idle"
            if json.loads(self.request("/api/state")[2])["busy"]:
                quiet_since = time.monotonic()
            time.sleep(0.1)

    def request(
        self, path: str, host: str | None = None, method: str = "GET"
    ) -> tuple[int, dict[str, str], bytes]:
        connection = http.client.HTTPConnection(self.host, self.port, timeout=30)
        connection.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
        connection.putheader("Host", f"{self.host}:{self.port}" if host is None else host)
        connection.endheaders()
        response = connection.getresponse()
        body = response.read()
        connection.close()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, body


@pytest.fixture(scope="module")
def preview(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Preview]:
    """``pubkit preview --no-browser --port 0`` on a copy of the basic course with a
    lesson long enough to scroll; its temporary files in a folder of its own."""
    project = tmp_path_factory.mktemp("preview") / "course"
    shutil.copytree(PROJECTS / "basic", project)
    (project / "manuscript/01-getting-started/03-long-read.md").write_text(long_lesson())
    tmp = tmp_path_factory.mktemp("preview-tmp")
    env = {**os.environ, "TMPDIR": str(tmp), "PYTHONUNBUFFERED": "1"}
    command = [sys.executable, "-m", "pubkit", "preview", "--no-browser", "--port", "0"]
    process = subprocess.Popen(
        command, cwd=project, env=env, text=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    lines: list[str] = []

    def read() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            lines.append(line.rstrip("\n"))

    threading.Thread(target=read, daemon=True).start()
    deadline = time.monotonic() + 60
    while not any("preview: http://" in line for line in lines):
        assert process.poll() is None, lines
        assert time.monotonic() < deadline, lines
        time.sleep(0.05)
    found = re.search(r"http://([\d.]+):(\d+)/", "\n".join(lines))
    assert found, lines
    running = Preview(
        process, found.group(0), found.group(1), int(found.group(2)), project, tmp, lines
    )
    running.wait_for(" in ", timeout=120)  # "preview: built 3 lessons and 1 collection in 6.1 s"
    yield running
    if process.poll() is None:  # a test failed before the last one stopped it
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _descendants(pid: int) -> set[int]:
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found: set[int] = set()
    todo = [pid]
    while todo:
        for child in children.get(todo.pop(), ()):
            found.add(child)
            todo.append(child)
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


# The server


def test_page_and_state_are_served_with_a_policy_that_runs_only_the_pages_script(
    preview: Preview,
) -> None:
    status, headers, body = preview.request("/")
    assert status == 200
    assert b'<script src="/preview.js"' in body
    policy = headers["content-security-policy"]
    assert "script-src 'self';" in policy and "unsafe-inline" not in policy.split("style")[0]
    assert headers["x-content-type-options"] == "nosniff"
    status, _, body = preview.request("/api/state")
    assert status == 200 and LONG_ID.encode() in body


@pytest.mark.parametrize(
    "path",
    [
        "/files/../pubkit.yaml",
        "/files/%2e%2e/pubkit.yaml",
        "/files/..%2fpubkit.yaml",
        "/files/%2E%2E%2Fpubkit.yaml",
        "/files/..%5cpubkit.yaml",
        "/files//etc/passwd",
        "/files/pdf/",
        "/files/",
        "/files/leak.txt",
        "/../pubkit.yaml",
        "/%2e%2e/pubkit.yaml",
        "/epub/0/01-getting-started/01-first-steps/../../../../pubkit.yaml",
        "/epub/0/01-getting-started/01-first-steps/EPUB%2f..%2f..%2fpubkit.yaml",
        "/epub/0/..%2f..%2f/01-first-steps/mimetype",
        "/api/pages?lesson=../../pubkit&edition=pdf",
        "/api/page.png?lesson=01-getting-started/01-first-steps&edition=epub&n=1",
    ],
)
def test_nothing_outside_the_build_folder_is_served(preview: Preview, path: str) -> None:
    leak = preview.project / "build" / "leak.txt"
    if not leak.is_symlink():
        leak.symlink_to(preview.project / "pubkit.yaml")
    status, _, body = preview.request(path)
    assert status in (400, 404, 405), (path, status)
    assert b"Test Course" not in body and b"root:" not in body


def test_files_of_the_build_folder_and_the_epubs_chapters_are_served(preview: Preview) -> None:
    status, headers, body = preview.request("/files/manifest.json")
    assert status == 200 and b"Test Course" in body
    assert "script-src" not in headers["content-security-policy"]
    lesson = "01-getting-started/01-first-steps"
    status, headers, body = preview.request(f"/epub/0/{lesson}/EPUB/text/ch001.xhtml")
    assert status == 200 and b"Why it matters" in body
    assert headers["content-type"].startswith("application/xhtml+xml")
    assert "sandbox allow-same-origin" in headers["content-security-policy"]
    status, headers, body = preview.request(f"/api/page.png?lesson={lesson}&edition=handout&n=1")
    assert status == 200 and body.startswith(b"\x89PNG")
    assert preview.request(f"/api/page.png?lesson={lesson}&edition=handout&n=9")[0] == 404


def test_requests_for_another_host_are_refused(preview: Preview) -> None:
    port = preview.port
    foreign = (f"evil.example:{port}", f"127.0.0.1.nip.io:{port}", "127.0.0.1:1", "", "127.0.0.1")
    for host in foreign:
        status, _, body = preview.request("/api/state", host=host)
        assert status == 421, host
        assert b"course" not in body
    for host in (f"127.0.0.1:{port}", f"localhost:{port}", f"LOCALHOST:{port}"):
        assert preview.request("/api/state", host=host)[0] == 200, host
    assert preview.request("/api/state", method="POST")[0] == 405


def test_host_check_on_every_interface_takes_addresses_and_this_machines_name() -> None:
    loopback = host_check("127.0.0.1", 8765)
    assert loopback("localhost:8765") and loopback("127.0.0.1:8765")
    assert not loopback("192.168.1.9:8765") and not loopback("attacker.example:8765")
    everywhere = host_check("0.0.0.0", 8765)
    assert everywhere("192.168.1.9:8765") and everywhere("[::1]:8765")
    assert not everywhere("attacker.example:8765") and not everywhere("192.168.1.9:80")
    six = host_check("::1", 9000)
    assert six("[::1]:9000") and six("localhost:9000") and not six("[::2]:9000")


# The author's view, in a real browser


def test_an_author_watches_their_pages_change_as_they_write(
    preview: Preview, browser: object
) -> None:
    from playwright.sync_api import Browser, expect

    assert isinstance(browser, Browser)
    page = browser.new_page(viewport={"width": 1280, "height": 800})
    problems: list[str] = []
    page.on("pageerror", lambda error: problems.append(str(error)))
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.goto(f"{preview.url}#lesson={LONG_ID}&edition=pdf")
    pages = page.locator("#pages .page")
    expect(page.locator(f'.lesson[data-id="{LONG_ID}"]')).to_contain_text("A Long Read")
    expect(page.locator(f'.lesson[data-id="{LONG_ID}"] .figures')).to_contain_text("min")
    expect(pages.first.locator(".page-text")).to_contain_text("Pages to scroll", timeout=30_000)
    assert pages.count() >= 3
    expect(pages.first.locator("img")).to_have_js_property("complete", True)
    assert pages.first.locator("img").evaluate("image => image.naturalWidth") > 1000

    # A save: the new words appear, in place, where the reader was.
    page.evaluate("window.stayed = true")
    page.locator("#pages").evaluate("pages => { pages.scrollTop = 1500; }")
    path = preview.project / "manuscript/01-getting-started/03-long-read.md"
    path.write_text(long_lesson(ADDED))
    expect(page.locator("#pages")).to_contain_text(ADDED, timeout=60_000)
    assert page.evaluate("window.stayed") is True  # not reloaded
    assert abs(page.locator("#pages").evaluate("pages => pages.scrollTop") - 1500) <= 2

    # A broken front matter: its message, with its line, over the last good pages.
    path.write_text(long_lesson(ADDED).replace("title: A Long Read", "title: [A Long Read"))
    messages = page.locator("#messages")
    expect(messages).to_contain_text(
        re.compile(r"03-long-read\.md:\d+: error: .*YAML"), timeout=60_000
    )
    expect(page.locator(f'.lesson[data-id="{LONG_ID}"] .state')).to_have_text("failed")
    expect(page.locator("#pages")).to_contain_text(ADDED)
    preview.wait_for("03-long-read.md:")  # the terminal shows the same line

    # Mended: the message goes, the pages come back with the new words.
    path.write_text(long_lesson("Mended at last."))
    expect(page.locator("#pages")).to_contain_text("Mended at last.", timeout=60_000)
    expect(messages).to_be_hidden()

    # The other editions: the handout's pages, and the EPUB's chapter as a reader shows it.
    for edition in ("handout", "instructor"):
        page.locator(f'#editions [data-edition="{edition}"]').click()
        first = page.locator("#pages .page").first
        expect(first.locator("img")).to_have_attribute("src", re.compile(f"edition={edition}&"))
        expect(first).to_contain_text("Pages to scroll")
        expect(page.locator("#pages")).to_contain_text("Mended at last.")
    page.locator('#editions [data-edition="epub"]').click()
    chapter = page.frame_locator("#chapter-frame").locator("body")
    expect(chapter).to_contain_text("Mended at last.", timeout=30_000)
    # The e-reader's place is kept too.
    frame = page.locator("#chapter-frame")
    page.wait_for_function(
        "() => document.querySelector('#chapter-frame').contentDocument.readyState === 'complete'"
    )
    frame.evaluate("frame => frame.contentWindow.scrollTo(0, 1200)")
    assert frame.evaluate("frame => frame.contentWindow.scrollY") == 1200
    path.write_text(long_lesson("Read in the e-reader."))
    expect(chapter).to_contain_text("Read in the e-reader.", timeout=60_000)
    page.wait_for_function(
        "() => document.querySelector('#chapter-frame').contentWindow.scrollY > 1190"
    )
    assert abs(frame.evaluate("frame => frame.contentWindow.scrollY") - 1200) <= 2
    assert page.evaluate("window.stayed") is True
    page.close()
    assert not problems, problems


def _page_text(preview: Preview, lesson_id: str, edition: str = "pdf") -> str:
    status, _, body = preview.request(f"/api/pages?lesson={lesson_id}&edition={edition}")
    assert status == 200
    return " ".join(page["text"] for page in json.loads(body)["pages"])


def test_a_burst_of_saves_is_one_build(preview: Preview) -> None:
    lesson_id = "01-getting-started/01-first-steps"
    path = preview.project / "manuscript" / f"{lesson_id}.md"
    text = path.read_text()
    preview.idle()
    start = len(preview.lines)
    for count in range(1, 6):
        path.write_text(text + f"\nSaved {count} times.\n")
        time.sleep(0.01)
    preview.wait_for(f"built {lesson_id} in", after=start)
    preview.wait_for("built collections/01-getting-started", after=start + 1)
    preview.idle()
    built = [line for line in preview.lines[start:] if f"built {lesson_id}" in line]
    assert len(built) == 1, preview.lines[start:]
    assert "Saved 5 times." in _page_text(preview, lesson_id)


def test_a_modules_new_title_rebuilds_its_lessons_and_collection(preview: Preview) -> None:
    module = preview.project / "manuscript/01-getting-started/module.yaml"
    preview.idle()
    start = len(preview.lines)
    module.write_text(module.read_text().replace("Getting Started", "Getting Going"))
    preview.wait_for("built 3 lessons and 1 collection", after=start)
    state = json.loads(preview.request("/api/state")[2])
    assert [m["title"] for m in state["modules"]] == ["Getting Going"]
    assert "GETTING GOING" in _page_text(preview, LONG_ID, "handout").upper()


def test_ctrl_c_stops_it_with_nothing_left_behind(preview: Preview) -> None:
    """Last: the preview stops on SIGINT, its build process, workers and EPUBCheck with
    it, and its temporary files gone."""
    process = preview.process
    family = _descendants(process.pid)
    assert family, "the preview runs its builds in a process of its own"
    process.send_signal(signal.SIGINT)
    assert process.wait(timeout=30) == 0
    preview.wait_for("preview: stopped", timeout=5)
    deadline = time.monotonic() + 10
    while any(_alive(pid) for pid in family) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not [pid for pid in family if _alive(pid)]
    assert not list(preview.tmp.iterdir())
    assert not any("Traceback" in line for line in preview.lines), preview.lines
