"""Turn lessons into rendered editions in worker processes, each lesson bounded in time and
memory.

Lessons are set by ``--jobs`` workers forked from the build once it has loaded the engines,
fonts and parsed stylesheets. A worker sets one lesson after another, keeping what the
engines cache as they go (shaped fonts, laid-out glyphs), which makes every lesson after
its first about a seventh cheaper than in a fresh process. A manuscript that makes an
engine loop, exhaust memory or crash fails alone, with an error that says which: its
worker is stopped and a fresh one takes its place, while the other lessons go on. Workers
are also replaced after :data:`LESSONS_PER_WORKER` lessons, so that no cache grows
without bound. Results come back in lesson order, so the output does not depend on the
number of jobs.
"""

from __future__ import annotations

import gc
import io
import multiprocessing
import os
import pickle
import resource
import signal
import sys
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from pathlib import Path, PurePath
from typing import Any, TypeVar

from pubkit.document.pandoc import end_session
from pubkit.errors import Diagnostic, LessonError, PubkitError, error

T = TypeVar("T")
L = TypeVar("L")

#: Wall-clock bound for setting one lesson in every edition.
TIMEOUT_SECONDS = 300.0
#: Address space a worker may map beyond what it inherited (the engines need about 250 MB
#: for a long lesson).
MEMORY_LIMIT_BYTES = 2 << 30
#: Lessons a worker sets before a fresh one replaces it.
LESSONS_PER_WORKER = 25


def default_jobs() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def _lesson_path(lesson: Any) -> Path:
    path: Path = lesson.path
    return path


@dataclass
class Usage:
    """What the workers used, for ``make bench``: the largest peak resident set."""

    peak_bytes: int = 0


@dataclass
class _Worker:
    process: Any
    connection: Connection
    done: int = 0
    #: The item being set, and since when.
    index: int | None = None
    started: float = 0.0
    #: A kept worker's function, as last sent to it (pickled).
    function: bytes | None = None

    def stop(self, kill: bool = False) -> None:
        if kill:
            self.process.kill()
        else:
            try:
                self.connection.send(None)
            except OSError:
                self.process.kill()
        self.process.join()
        self.connection.close()


def _limit_memory() -> None:
    """Bound the worker's address space: :data:`MEMORY_LIMIT_BYTES` beyond what it has
    mapped as it starts, which is what it inherited (from the build, the preview's build
    process, or a Dask worker, whose threads map much more than they use)."""
    _soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    limit = _address_space() + MEMORY_LIMIT_BYTES
    limit = limit if hard == resource.RLIM_INFINITY else min(hard, limit)
    resource.setrlimit(resource.RLIMIT_AS, (limit, hard))


def _address_space() -> int:
    """This process's mapped address space, in bytes (0 where /proc does not say)."""
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 0
    return pages * resource.getpagesize()


@contextmanager
def _heap_frozen() -> Iterator[None]:
    """While a worker is forked: the build's objects out of the cycle collector's sight
    (:func:`gc.freeze`), so that the worker's collections never walk the heap it inherited
    (fonts, stylesheets, engines), nor copy it page by page as they mark it. The build's
    own collections go on as before once the worker is started. The collector's share of
    a course's CPU falls from about 8 % to 4.5 %."""
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


#: Folders moved: (where a path was, where it is now), as text.
Moves = Sequence[tuple[str, str]]


class _Moving(pickle.Pickler):
    """A pickler that moves every path under a folder of ``moves`` to its new place."""

    def __init__(self, file: io.BytesIO, moves: Moves) -> None:
        super().__init__(file, protocol=pickle.HIGHEST_PROTOCOL)
        self.moves = moves

    def reducer_override(self, obj: Any) -> Any:
        if isinstance(obj, PurePath):
            text = str(obj)
            for old, new in self.moves:
                if text == old or text.startswith(old + os.sep):
                    return type(obj), (new + text[len(old) :],)
        return NotImplemented


def dumps(value: Any, moves: Moves = ()) -> bytes:
    """``value`` pickled; with ``moves``, every path in it under a folder moved (a course's
    files where a Dask worker keeps its copy of them, :mod:`pubkit.course.cluster`)."""
    if not moves:
        return pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
    buffer = io.BytesIO()
    _Moving(buffer, moves).dump(value)
    return buffer.getvalue()


def moved(value: Any, moves: Moves) -> Any:
    """A copy of ``value`` with the paths under ``moves``' folders moved."""
    return pickle.loads(dumps(value, moves)) if moves else value


def _peak() -> int:
    """This process's peak resident set, in bytes (Linux counts kilobytes)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def _on_roomy_stack(function: Callable[[Any], Any], item: Any) -> Any:
    """``function(item)``, its calls laid out in one roomy block of Python's frame stack.

    CPython 3.11 keeps its frames in 16 KB blocks that it maps anew as the calls deepen and
    unmaps as they return (gh-142183, mended in 2026 for 3.13 on). WeasyPrint's layout
    recurses up and down across a block's end all the time: the workers of a 60-lesson
    course mapped and unmapped 370,000 blocks, for 7 % of the course's CPU time. This
    frame reserves a megabyte of evaluation stack (:data:`_ROOMY_FRAME`) that it never
    uses: it lands at the start of a 2 MB block, and every frame called from it stacks in
    the rest, untouched until used."""
    return function(item)


#: The frame of :func:`_on_roomy_stack`: just over 1 MB (a code object's evaluation stack
#: is reserved in its frame, and a block is a power of two large enough for its frame).
_ROOMY_FRAME = (1 << 20) // 8 + 1


def frame_blocks_churn(
    version: tuple[int, ...] = sys.version_info[:3],
    implementation: str = sys.implementation.name,
) -> bool:
    """Whether this Python maps and unmaps frame blocks as calls cross their ends: CPython
    3.11 and 3.12 (gh-142183). Elsewhere :func:`_on_roomy_stack` is left as written."""
    return implementation == "cpython" and (3, 11) <= version[:2] < (3, 13)


if frame_blocks_churn():
    _on_roomy_stack.__code__ = _on_roomy_stack.__code__.replace(co_stacksize=_ROOMY_FRAME)


#: Where a worker whose build listens for them sends what :func:`send_early` is given.
_early: Connection | None = None


def send_early(value: Any) -> None:
    """In a worker: send ``value`` to the build at once, before the item's result (a
    lesson's fragment, which its module's collection can start from while the lesson's
    other editions are set). Dropped where the build does not listen for it."""
    if _early is not None:
        _early.send_bytes(pickle.dumps(("early", dumps(value), _peak())))


def beside(function: Callable[[], T]) -> Callable[[], T]:
    """``function()`` in a process forked from this one, to use a core that would idle
    while this process goes on (a module's EPUB cover, laid out while its book's front
    is); returns what waits for its result. Its exceptions are raised by the wait; one
    that stopped the process is a :class:`LessonError`."""
    ours, theirs = multiprocessing.get_context("fork").Pipe(duplex=False)
    with _heap_frozen():
        pid = os.fork()
    if pid == 0:  # the child: only its result goes back
        ours.close()
        try:
            result: tuple[bool, Any] = (True, function())
        except BaseException as exc:  # sent to the parent, which raises it
            result = (False, exc)
        try:
            theirs.send(result)
        finally:
            os._exit(0)
    theirs.close()

    def wait() -> T:
        try:
            done, value = ours.recv()
        except EOFError:
            raise LessonError([error(None, None, "a process beside the build stopped")]) from None
        finally:
            ours.close()
            os.waitpid(pid, 0)
        if not done:
            raise value
        return value  # type: ignore[no-any-return]

    return wait


def _serve(
    connection: Connection,
    function: Callable[[Any], Any] | None = None,
    items: Sequence[Any] | None = None,
    early: bool = False,
) -> None:
    """In a worker: set the items the build names, one at a time, until told to stop.

    The items were inherited with the fork, so only their positions travel; a kept worker
    (:class:`Kept`) inherited none, and is sent each item, and its function when it is
    not the last one's. A worker that ran out of memory reports it and exits: its heap
    cannot be trusted any more. A kept worker's item may come with the moves that take its
    paths back to the build's (:meth:`Kept.run`)."""
    global _early
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the build's to handle
    _limit_memory()
    _early = connection if early else None
    back: Moves = ()
    while (message := _next(connection)) is not None:
        if items is None:
            sent, item, back = message
            function = function if sent is None else pickle.loads(sent)
        else:
            item = items[message]
        assert function is not None
        try:
            # Pickled here, once: a Dask worker passes the bytes on as they are (Kept).
            value = dumps(_on_roomy_stack(function, item), back)
            outcome: tuple[str, Any, int] = ("ok", value, _peak())
        except PubkitError as exc:
            outcome = ("error", exc.diagnostics, _peak())
        except MemoryError:
            outcome = ("memory", None, 0)
        try:
            connection.send_bytes(dumps(outcome, back))
        except MemoryError:
            outcome = ("memory", None, 0)
            connection.send_bytes(pickle.dumps(outcome))
        if outcome[0] == "memory":
            break
    connection.close()
    end_session()  # the worker's pandoc, whose time is then counted as the worker's
    os._exit(0)  # no cleanup of the build's state inherited by the fork


def _fork(
    function: Callable[[Any], Any] | None = None,
    items: Sequence[Any] | None = None,
    early: bool = False,
) -> _Worker:
    """A worker forked from this process, setting ``items`` by their positions; without
    them, a kept worker (:class:`Kept`), sent each item with its function: daemonic, so
    stopped as the process that keeps it exits, and closing that process's end of the
    pipe, so that it hears when that process is killed."""
    context = multiprocessing.get_context("fork")
    ours, theirs = context.Pipe(duplex=True)
    if items is None:
        process = context.Process(target=_serve_kept, args=(theirs, ours), daemon=True)
    else:
        process = context.Process(target=_serve, args=(theirs, function, items, early))
    with _heap_frozen():
        process.start()
    theirs.close()
    return _Worker(process, ours)


def _serve_kept(connection: Connection, keepers: Connection) -> None:
    keepers.close()
    _serve(connection)


def _next(connection: Connection) -> Any:
    """What the build sends next; None when it says stop, or is gone."""
    try:
        return connection.recv()
    except EOFError:
        return None


def _failure(source: Path, message: str) -> LessonError:
    return LessonError([error(source, None, message)])


class _Early:
    """What a worker sent before its item's result (:func:`send_early`)."""

    def __init__(self, value: Any) -> None:
        self.value = value


def _outcome(source: Path, worker: _Worker, usage: Usage, raw: bool = False) -> tuple[Any, bool]:
    """The result the worker sent (``raw``: as the bytes it was pickled into), or what it
    sent early (:class:`_Early`), and whether the worker can go on."""
    try:
        kind, value, peak = pickle.loads(worker.connection.recv_bytes())
    except (EOFError, OSError):
        worker.process.join()
        worker.connection.close()
        code = worker.process.exitcode
        if code is not None and code < 0:
            name = signal.Signals(-code).name
            return _failure(source, f"setting this lesson crashed an engine ({name})"), False
        message = f"setting this lesson stopped unexpectedly (exit status {code})"
        return _failure(source, message), False
    usage.peak_bytes = max(usage.peak_bytes, peak)
    if kind == "ok":
        return (value if raw else pickle.loads(value)), True
    if kind == "early":
        return _Early(pickle.loads(value)), True
    if kind == "memory":
        worker.process.join()
        worker.connection.close()
        limit = MEMORY_LIMIT_BYTES >> 20
        message = f"setting this lesson needs more than the {limit} MB it may use"
        return _failure(source, message), False
    diagnostics: tuple[Diagnostic, ...] = value
    return LessonError(diagnostics), True


def render_isolated(
    lessons: Sequence[L],
    function: Callable[[L], T],
    jobs: int,
    where: Callable[[L], Path] = _lesson_path,
    usage: Usage | None = None,
    early: Callable[[L, Any], None] | None = None,
) -> Iterator[tuple[L, T | LessonError]]:
    """``function(lesson)`` for each lesson (or other item) in worker processes, ``jobs``
    at a time; yields (item, result or the error that stopped it) in the order of
    ``lessons``. Errors point at ``where(item)``: the lesson's manuscript by default.
    ``usage`` gathers the workers' peak memory. What a worker sends early
    (:func:`send_early`) is given to ``early`` with its item as it comes."""
    usage = usage if usage is not None else Usage()
    items = list(lessons)
    pending = deque(range(len(items)))
    workers: list[_Worker] = []
    done: dict[int, T | LessonError] = {}
    following = 0

    def start() -> _Worker:
        worker = _fork(function, items, early is not None)
        workers.append(worker)
        return worker

    def assign(worker: _Worker) -> None:
        worker.index = pending.popleft()
        worker.started = time.monotonic()
        worker.connection.send(worker.index)

    try:
        while following < len(items):
            while pending and len(workers) < max(1, jobs):
                assign(start())
            ready = wait([w.connection for w in workers], timeout=0.5)
            for worker in list(workers):
                assert worker.index is not None
                source = where(items[worker.index])
                if worker.connection in ready:
                    outcome, alive = _outcome(source, worker, usage)
                    if isinstance(outcome, _Early):
                        assert early is not None
                        early(items[worker.index], outcome.value)
                        continue
                    done[worker.index] = outcome
                    worker.done += 1
                elif time.monotonic() - worker.started > TIMEOUT_SECONDS:
                    worker.stop(kill=True)
                    message = f"took longer than {TIMEOUT_SECONDS:g} s to set; stopped"
                    done[worker.index], alive = _failure(source, message), False
                else:
                    continue
                if alive and pending and worker.done < LESSONS_PER_WORKER:
                    assign(worker)
                    continue
                workers.remove(worker)
                if alive:
                    worker.stop()
            while following in done:
                yield items[following], done.pop(following)
                following += 1
    finally:  # finished, or interrupted: stop every worker; none has written anything
        for worker in workers:
            worker.stop(kill=True)


class Kept:
    """One bounded worker process kept for items that come one at a time, each with its
    own function (the tasks of a Dask worker, :mod:`pubkit.course.cluster`): forked on
    the first, it sets the ones after it with what it has loaded and cached, as a build's
    workers do, under the same bounds (time, memory, a crash failing its item alone), and
    is replaced after :data:`LESSONS_PER_WORKER` items or a failure that ends it."""

    def __init__(self) -> None:
        self._worker: _Worker | None = None

    def run(
        self,
        item: L,
        function: Callable[[L], Any],
        where: Callable[[L], Path],
        usage: Usage,
        moves: Moves = (),
    ) -> bytes | LessonError:
        """``function(item)`` pickled, as the kept process sent it (the result is not
        loaded here: it goes on to wherever it is wanted), or the error that stopped it.
        With ``moves``, the item and function are set with their paths moved (to where
        this machine keeps the course's files), and the result's are moved back."""
        source = where(item)
        worker = self._worker
        if worker is None or worker.done >= LESSONS_PER_WORKER:
            if worker is not None:
                worker.stop()
            worker = self._worker = _fork()
        back = [(new, old) for old, new in moves]
        # The function (settings, theme) only when it is not the one the process has: the
        # same objects, item after item, find the caches they key (by identity) warm.
        pickled = dumps(function, moves)
        sent, worker.function = (None if pickled == worker.function else pickled), pickled
        worker.connection.send_bytes(dumps((sent, item, back), moves))
        if not worker.connection.poll(TIMEOUT_SECONDS):
            worker.stop(kill=True)
            self._worker = None
            return _failure(source, f"took longer than {TIMEOUT_SECONDS:g} s to set; stopped")
        result, alive = _outcome(source, worker, usage, raw=True)
        worker.done += 1
        if not alive:
            self._worker = None
        value: bytes | LessonError = result
        return value
