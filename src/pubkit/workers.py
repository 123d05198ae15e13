"""Turn lessons into rendered editions in child processes, each bounded in time and memory.

Every lesson is set in a child forked from the build: a manuscript that makes an engine
loop, exhaust memory or crash fails alone, with an error that says which, while the other
lessons go on being built, several at a time (``--jobs``). Forking keeps what the build
has already loaded (engines, fonts, parsed stylesheets), so a child costs milliseconds.
Results come back in lesson order, so the output does not depend on the number of jobs.
"""

from __future__ import annotations

import multiprocessing
import os
import pickle
import resource
import signal
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from pathlib import Path
from typing import Any, TypeVar

from .errors import Diagnostic, LessonError, PubkitError, error

T = TypeVar("T")
L = TypeVar("L")

#: Wall-clock bound for setting one lesson in every edition.
TIMEOUT_SECONDS = 300.0
#: Address space a child may use (the engines need about 250 MB for a long lesson).
MEMORY_LIMIT_BYTES = 2 << 30


def default_jobs() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def _lesson_path(lesson: Any) -> Path:
    path: Path = lesson.path
    return path


@dataclass
class Usage:
    """What the children used, for ``make bench``: the largest peak resident set."""

    peak_bytes: int = 0


@dataclass
class _Child:
    index: int
    process: Any
    connection: Connection
    started: float


def _limit_memory() -> None:
    _soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    limit = MEMORY_LIMIT_BYTES if hard == resource.RLIM_INFINITY else min(hard, MEMORY_LIMIT_BYTES)
    resource.setrlimit(resource.RLIMIT_AS, (limit, hard))


def _run_child(connection: Connection, function: Callable[[Any], Any], lesson: Any) -> None:
    """In the child: set the lesson, send back its result or what stopped it, and exit."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    try:
        _limit_memory()
        outcome: tuple[str, Any, int] = ("ok", function(lesson), _peak())
    except PubkitError as exc:
        outcome = ("error", exc.diagnostics, _peak())
    except MemoryError:
        outcome = ("memory", None, 0)
    try:
        connection.send_bytes(pickle.dumps(outcome, protocol=pickle.HIGHEST_PROTOCOL))
    except MemoryError:
        connection.send_bytes(pickle.dumps(("memory", None, 0)))
    connection.close()
    os._exit(0)  # no cleanup of the parent's state inherited by the fork


def _peak() -> int:
    """This process's peak resident set, in bytes (Linux counts kilobytes)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def _failure(source: Path, message: str) -> LessonError:
    return LessonError([error(source, None, message)])


def _outcome(source: Path, child: _Child, usage: Usage) -> Any:
    try:
        kind, value, peak = pickle.loads(child.connection.recv_bytes())
    except (EOFError, OSError):
        child.process.join()
        code = child.process.exitcode
        if code is not None and code < 0:
            name = signal.Signals(-code).name
            return _failure(source, f"setting this lesson crashed an engine ({name})")
        return _failure(source, f"setting this lesson stopped unexpectedly (exit status {code})")
    finally:
        child.connection.close()
    child.process.join()
    usage.peak_bytes = max(usage.peak_bytes, peak)
    if kind == "ok":
        return value
    if kind == "memory":
        limit = MEMORY_LIMIT_BYTES >> 20
        return _failure(source, f"setting this lesson needs more than the {limit} MB it may use")
    diagnostics: tuple[Diagnostic, ...] = value
    return LessonError(diagnostics)


def render_isolated(
    lessons: Sequence[L],
    function: Callable[[L], T],
    jobs: int,
    where: Callable[[L], Path] = _lesson_path,
    usage: Usage | None = None,
) -> Iterator[tuple[L, T | LessonError]]:
    """``function(lesson)`` for each lesson (or other item) in its own child, ``jobs`` at a
    time; yields (item, result or the error that stopped it) in the order of ``lessons``.
    Errors point at ``where(item)``: the lesson's manuscript by default. ``usage``
    gathers the children's peak memory."""
    usage = usage if usage is not None else Usage()
    context = multiprocessing.get_context("fork")
    pending = list(enumerate(lessons))
    running: list[_Child] = []
    done: dict[int, T | LessonError] = {}
    following = 0
    try:
        while following < len(lessons):
            while pending and len(running) < max(1, jobs):
                index, lesson = pending.pop(0)
                receiver, sender = context.Pipe(duplex=False)
                process = context.Process(target=_run_child, args=(sender, function, lesson))
                process.start()
                sender.close()
                running.append(_Child(index, process, receiver, time.monotonic()))
            ready = wait([child.connection for child in running], timeout=0.5)
            for child in list(running):
                source = where(lessons[child.index])
                if child.connection in ready:
                    done[child.index] = _outcome(source, child, usage)
                    running.remove(child)
                elif time.monotonic() - child.started > TIMEOUT_SECONDS:
                    child.process.kill()
                    child.process.join()
                    child.connection.close()
                    message = f"took longer than {TIMEOUT_SECONDS:g} s to set; stopped"
                    done[child.index] = _failure(source, message)
                    running.remove(child)
            while following in done:
                yield lessons[following], done.pop(following)
                following += 1
    finally:  # interrupted: stop every child; none has written anything
        for child in running:
            child.process.kill()
            child.process.join()
            child.connection.close()
