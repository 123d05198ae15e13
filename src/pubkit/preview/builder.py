"""Build in a process of the preview's own: :func:`pubkit.build.build`, kept warm between
saves (engines, fonts and stylesheets loaded once, EPUBCheck's JVM started once).

The process is forked before the server starts any thread, so that it, and the workers it
forks in turn, never inherit a lock another thread held. It is in a process group of its
own: Ctrl-C in the terminal reaches the server, which stops the builder (and so its
workers and EPUBCheck) itself, mid-build or not.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from pubkit.course.validate import DAEMON_SWITCH
from pubkit.errors import Diagnostic, PubkitError

#: Called with each lesson or collection as the build reaches it: (label, how).
Reached = Callable[[str, str], None]


@dataclass(frozen=True)
class Built:
    """What one build did: its messages, the manuscripts that failed, and whether the
    course could be built at all (pubkit.yaml or the theme may stop it)."""

    diagnostics: tuple[Diagnostic, ...]
    failed: tuple[Path, ...]
    #: The manifest the build wrote; none when nothing could be built.
    manifest: Path | None
    #: Each lesson the build was asked for (by id): its manuscript.
    sources: tuple[tuple[str, Path], ...] = ()
    #: What was set anew: lessons, and module collections.
    rendered: tuple[str, ...] = ()


@dataclass(frozen=True)
class Request:
    """What to build: the lessons under ``targets`` (none: the whole course)."""

    targets: tuple[Path, ...]


class Builder:
    """The build process; :meth:`build` asks it for one build and waits for it."""

    def __init__(self, root: Path, out: Path | None) -> None:
        context = multiprocessing.get_context("fork")
        self._connection, theirs = context.Pipe(duplex=True)
        self._process = context.Process(
            target=_serve,
            args=(theirs, self._connection, root, out),
            name="pubkit-preview-builder",
        )
        self._process.start()
        theirs.close()
        self._lock = threading.Lock()

    def build(self, targets: Sequence[Path], reached: Reached | None = None) -> Built:
        """One build of ``targets`` (none: the whole course), calling ``reached`` as each
        lesson is done. One build at a time."""
        with self._lock:
            self._connection.send(Request(tuple(targets)))
            while True:
                try:
                    kind, value = self._connection.recv()
                except (EOFError, OSError):
                    code = self._process.exitcode
                    raise PubkitError.at(
                        None, None, f"the preview's build process stopped (exit status {code})"
                    ) from None
                if kind == "reached":
                    if reached:
                        reached(*value)
                    continue
                built: Built = value
                return built

    def close(self) -> None:
        """Stop the build process (mid-build or not), its workers and its EPUBCheck."""
        if self._process.is_alive():
            with contextlib.suppress(OSError):
                self._connection.send(None)
            self._process.join(timeout=0.5)
        if self._process.is_alive():
            self._process.terminate()  # mid-build: SIGTERM unwinds it (see _serve)
            self._process.join(timeout=10)
        if self._process.is_alive():
            self._process.kill()
            self._process.join()
        self._connection.close()


def _serve(connection: Connection, servers: Connection, root: Path, out: Path | None) -> None:
    """In the build process: one build per request, until told to stop, terminated, or
    the server is gone (its end of the pipe, inherited with the fork, is closed here, so
    that the server's death is heard)."""
    servers.close()
    os.setpgid(0, 0)  # Ctrl-C is the server's; it stops this process itself
    # EPUBCheck's JVM is this process's own, not the daemon an author's builds share: it
    # stays loaded while the preview runs and stops with it.
    os.environ[DAEMON_SWITCH] = "0"
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, _unwind)
    try:
        _warm(root, out)
        with contextlib.suppress(EOFError, OSError):
            while (request := connection.recv()) is not None:
                connection.send(("built", _build(connection, root, out, request)))
    except SystemExit:
        pass
    finally:
        _clean_up()
    os._exit(0)


def _unwind(_signum: int, _frame: Any) -> None:
    """SIGTERM mid-build: unwind, so that the build's workers are stopped and its
    temporary files removed as on any other way out."""
    raise SystemExit(0)


def _build(connection: Connection, root: Path, out: Path | None, request: Request) -> Built:
    from pubkit.build import BUILT, build

    rendered: list[str] = []

    def progress(label: str, _done: int, _total: int, how: str) -> None:
        if how == BUILT:
            rendered.append(label)
        connection.send(("reached", (label, how)))

    try:
        result = build(root, request.targets, out=out, progress=progress)
    except PubkitError as exc:  # pubkit.yaml, the theme: nothing could be built
        return Built(exc.diagnostics, (), None)
    diagnostics = tuple(dict.fromkeys((*result.warnings, *result.diagnostics)))
    failed = tuple(path.resolve() for path in result.failed)
    sources = [(r.lesson.id, r.lesson.path.resolve()) for r in result.built]
    sources += [(lesson_id_of(path), path) for path in failed]
    return Built(diagnostics, failed, result.manifest, tuple(sources), tuple(rendered))


def _warm(root: Path, out: Path | None) -> None:
    """Load what the lessons and collections need (WeasyPrint, fonts, stylesheets,
    hyphenation dictionaries, EPUBCheck's JVM, which checks a built EPUB to load its own
    classes) before the first build, which may find everything up to date and load none
    of it: the author's first save then costs what every later one does. The page shows
    the pages built before meanwhile."""
    from pubkit.check import check
    from pubkit.course.validate import shared_checker
    from pubkit.engines.pdf import warm
    from pubkit.sources.theme import load_theme

    try:
        checked = check(root)
    except PubkitError:
        return  # the next build says what is wrong
    config = checked.config
    theme = load_theme(config.styles_dir)
    languages = {lesson.language or config.language for lesson in checked.manuscripts.lessons}
    warm(theme, config, config.editions, languages)
    warm(theme, config, config.editions, languages, collections=True)
    if "epub" in config.editions:  # a first check takes the JVM seconds: one done now
        built = next((out or config.output_dir).glob("epub/*/*.epub"), None)
        with contextlib.suppress(PubkitError):
            checker = shared_checker()
            checker.start()
            if built is not None:
                checker.messages(built)


def _clean_up() -> None:
    """What a forked process's exit would leave (it runs no atexit hook, no finaliser):
    EPUBCheck's JVM, and the font files WeasyPrint copied."""
    from pubkit.course import validate

    validate.close_shared_checker()
    if weasy := sys.modules.get("pubkit.engines.weasy"):  # loaded once a lesson was set
        weasy.forget_fonts()


def lesson_id_of(path: Path) -> str:
    """The id of the lesson whose manuscript is ``path`` (:attr:`Lesson.id`), for one
    that failed before it was read."""
    return f"{path.parent.name}/{path.stem}"


@contextlib.contextmanager
def running(root: Path, out: Path | None) -> Iterator[Builder]:
    builder = Builder(root, out)
    try:
        yield builder
    finally:
        builder.close()
