"""Turn lessons (and module collections) into their editions on a Dask cluster: the same
work as :func:`pubkit.course.workers.render_isolated`, as tasks on Dask's ``distributed``
scheduler, wherever its workers run.

On a worker, each task sets its item exactly as a local build does, in a process forked
from the worker and kept for the tasks after it (:class:`~pubkit.course.workers.Kept`),
so that the same time and memory bounds hold, a crash fails that item only, and every
lesson after the first finds the engines' caches warm, as on a local build's workers. A worker
plugin loads fonts, stylesheets and hyphenation dictionaries once per worker process, so
that every forked item finds them loaded. A worker lost mid-task has its task run again
elsewhere by the scheduler; every file is written whole or not at all, and recorded by the
build only once its task is back. Results come back in the order of the items, as
locally: the outputs are the same bytes. (What a task does with its item is the build's:
where a worker sees the output folder, the build has it write what it set there and send
back only what the build records, :func:`pubkit.shared.lesson_where_set`.)

Workers need not see the course folder: its files (manuscripts, figures, bibliographies,
the publisher's theme) are known by their content (:class:`Snapshot`), and each machine is
sent those it lacks, once; it keeps one copy of the course on its disk, under the digest
of the whole, and each item is set with its paths moved there, and the results' paths
moved back (:func:`pubkit.course.workers.dumps`).

``distributed`` is optional (``pip install 'pubkit[cluster]'``): this module, which
imports it, is imported only by a build given a scheduler (:func:`connect`).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import multiprocessing
import os
import pickle
import shutil
import stat
import tempfile
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

from distributed import Client, KilledWorker, WorkerPlugin

from pubkit.course.workers import Kept, Moves, Usage, moved
from pubkit.errors import Diagnostic, LessonError, PubkitError, error, warning
from pubkit.sources.config import Config, builtin_styles
from pubkit.sources.theme import Theme
from pubkit.stamps import cache_home

T = TypeVar("T")
L = TypeVar("L")

#: Seconds to reach the scheduler before the build gives up.
CONNECT_SECONDS = 20


@dataclass(frozen=True)
class Snapshot:
    """The files a course's lessons may read, as the build sees them: for each folder
    (the course, and its manuscripts and theme where they lie outside it), each file's
    path in it and the SHA-256 of its bytes; and one digest of it all."""

    digest: str
    folders: tuple[tuple[str, tuple[tuple[str, str], ...]], ...]


def snapshot(config: Config) -> tuple[Snapshot, dict[str, bytes]]:
    """The course's files (the output folder and hidden files aside), and their bytes by
    digest."""
    output = config.output_dir.resolve()
    roots = [config.root.resolve()]
    for extra in (config.manuscript_dir, config.styles_dir):
        place = extra.resolve()
        if place != builtin_styles() and not any(place.is_relative_to(r) for r in roots):
            roots.append(place)
    blobs: dict[str, bytes] = {}
    folders = []
    for root in roots:
        files = []
        for path in sorted(root.rglob("*")):
            relative = path.relative_to(root)
            hidden = any(part.startswith(".") or part == "__pycache__" for part in relative.parts)
            if hidden or path.is_relative_to(output) or not path.is_file():
                continue
            data = path.read_bytes()
            digest = hashlib.sha256(data).hexdigest()
            blobs[digest] = data
            files.append((relative.as_posix(), digest))
        folders.append((str(root), tuple(files)))
    whole = hashlib.sha256(repr(folders).encode("utf-8")).hexdigest()
    return Snapshot(whole, tuple(folders)), blobs


class Cluster:
    """A connection to a Dask scheduler, for one build of the course ``config`` says."""

    def __init__(self, address: str, config: Config) -> None:
        self.address = address
        self.config = config
        #: The course's files as the tasks find them (on the first task): their snapshot,
        #: and the bytes sent with every task (none: every worker's machine had them).
        self._shipped: tuple[Snapshot, Any] | None = None
        #: Whether every file's bytes go with the tasks (a worker lacked one it was not sent).
        self._whole = False
        #: The bytes of the course's files sent to the cluster.
        self.sent_bytes = 0
        #: The bytes of the results the cluster's workers sent back.
        self.received_bytes = 0
        try:
            self.client = Client(address, timeout=f"{CONNECT_SECONDS}s", set_as_default=False)
        except (OSError, TimeoutError) as exc:
            message = f"cannot reach the Dask scheduler at {address}: {exc}"
            raise PubkitError([error(None, None, message)]) from None
        #: What the workers said once for the whole build (a daemonic worker).
        self.notices: list[Diagnostic] = []

    def __enter__(self) -> Cluster:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.client.close()

    def warm(
        self, theme: Theme, config: Config, names: tuple[str, ...], languages: Iterable[str]
    ) -> None:
        """Have every worker (and every worker that joins later) load what the lessons
        need, once per worker process."""
        plugin = _Warm(theme, config, names, tuple(dict.fromkeys(languages)))
        self.client.register_plugin(plugin, name="pubkit-warm")

    def run(
        self,
        items: Sequence[L],
        function: Callable[[L], T],
        where: Callable[[L], Path],
        usage: Usage | None = None,
    ) -> Iterator[tuple[L, T | LessonError]]:
        """``function(item)`` for each item on the cluster's workers; yields (item, result
        or the error that stopped it) in the order of ``items``."""
        if not items:
            return
        files, blobs = self._ship()
        # The function (settings, theme) goes in every task, not scattered once: a task
        # that outlives every worker holding scattered data could not run again.
        futures = self.client.map(
            _on_worker, items, function=function, where=where, files=files, blobs=blobs, pure=False
        )
        retried = []
        try:
            for item, future in zip(items, futures, strict=True):
                outcome = self._outcome(item, future, where)
                if isinstance(outcome, tuple) and outcome[0] == _LACKING:
                    # A worker whose machine lacks the course's files (it joined since they
                    # were sent, or lost them): the task again, the files with it.
                    files, blobs = self._ship(whole=True)
                    again = self.client.submit(
                        _on_worker, item, function, where, files, blobs, pure=False
                    )
                    retried.append(again)
                    outcome = self._outcome(item, again, where)
                if isinstance(outcome, LessonError):
                    yield item, outcome
                    continue
                kind, value, peak, daemonic = outcome
                if usage is not None:
                    usage.peak_bytes = max(usage.peak_bytes, peak)
                if daemonic and not self.notices:
                    self.notices.append(_unbounded())
                if kind == "error":
                    yield item, LessonError(value)
                elif kind == "pickled":
                    self.received_bytes += len(value)
                    yield item, pickle.loads(value)
                else:
                    yield item, value
        finally:
            for future in (*futures, *retried):
                future.cancel()

    def _outcome(
        self, item: Any, future: Any, where: Callable[[Any], Path]
    ) -> tuple[str, Any, int, bool] | LessonError:
        """What a task gave: (kind, value, peak memory, daemonic), or the error that
        stopped it."""
        try:
            outcome: tuple[str, Any, int, bool] = future.result()
        except KilledWorker:
            message = "the cluster's workers setting this lesson were lost, again and again"
            return LessonError([error(where(item), None, message)])
        except Exception as exc:
            if future.status != "error":  # the scheduler, or the way to it, is gone
                raise self._lost(exc) from None
            found = f"{type(exc).__name__}: {exc}"  # the task itself: this lesson only
            message = f"setting this lesson failed on the cluster ({found}); a pubkit bug"
            return LessonError([error(where(item), None, message)])
        return outcome

    def _ship(self, whole: bool = False) -> tuple[Snapshot, Any]:
        """The course's files, as the tasks find them. Each worker's machine is first sent
        the files it lacks (each file's bytes under a key made from them, so a file is
        sent once whatever its names, and never again to a machine that kept it), and
        writes its copy of the course; the tasks then carry only the snapshot. ``whole``:
        every file's bytes go with the tasks, for a worker that joined since."""
        if self._shipped is not None and (self._whole or not whole):
            return self._shipped
        files, blobs = snapshot(self.config)
        try:
            if whole:
                digests = sorted(blobs)
                sent = self.client.scatter([blobs[d] for d in digests], hash=True, broadcast=True)
                # On every worker (a task runs again wherever it lands, whoever is lost);
                # one future for them all, which each task depends on.
                packed = self.client.submit(
                    _packed, digests, *sent, key=f"pubkit-course-{files.digest}"
                )
                self._shipped, self._whole = (files, packed), True
                self.sent_bytes += sum(len(data) for data in blobs.values())
                return self._shipped
            # A worker that cannot answer, or write its copy, is sent the files with its
            # tasks (:data:`_LACKING`).
            lacking: dict[str, Any] = self.client.run(_lacking, files, on_error="return")
            machines = set()
            for address, digests in sorted(lacking.items()):
                machine = urlsplit(address).hostname
                if not isinstance(digests, list) or not digests or machine in machines:
                    continue  # another worker of its machine wrote the machine's copy
                given = {digest: blobs[digest] for digest in digests}
                self.client.run(_kept_copy, files, given, workers=[address], on_error="return")
                self.sent_bytes += sum(len(data) for data in given.values())
                machines.add(machine)
        except (OSError, TimeoutError) as exc:
            raise self._lost(exc) from None
        self._shipped = files, {}
        return self._shipped

    def _lost(self, exc: BaseException) -> PubkitError:
        reason = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        message = f"lost the Dask scheduler at {self.address} ({reason}); nothing more was built"
        return PubkitError([error(None, None, message)])


def _on_worker(
    item: Any,
    function: Callable[[Any], Any],
    where: Callable[[Any], Path],
    files: Snapshot,
    blobs: Mapping[str, bytes],
) -> tuple[str, Any, int, bool]:
    """On a worker: the item set in the bounded process this worker thread keeps, as a
    local worker sets it, from this worker's copy of the course's ``files``; (kind,
    result or diagnostics, peak memory, whether the worker was daemonic).

    A daemonic worker process (Dask's default) may not start processes: there the item is
    set in the worker itself, bounded only by the cluster's own memory limits."""
    try:
        moves = _kept_copy(files, blobs)
    except _Lacking:
        return _LACKING, None, 0, False
    if multiprocessing.current_process().daemon:
        back = [(new, old) for old, new in moves]
        try:
            return "ok", moved(moved(function, moves)(moved(item, moves)), back), 0, True
        except PubkitError as exc:
            return "error", moved(exc.diagnostics, back), 0, True
    if not hasattr(_KEPT, "worker"):
        _KEPT.worker = Kept()
    usage = Usage()
    result = _KEPT.worker.run(item, function, where, usage, moves)
    if isinstance(result, LessonError):
        return "error", result.diagnostics, usage.peak_bytes, False
    return "pickled", result, usage.peak_bytes, False  # loaded by the build, not here


#: A task's answer when its worker's machine lacks a file of the course it was not sent.
_LACKING = "lacking"


class _Lacking(Exception):
    """This machine has neither a copy of the course nor one of its files' bytes."""


def _lacking(files: Snapshot) -> list[str]:
    """On a worker (``Client.run``): the digests of the course's files its machine lacks
    (none when it keeps a copy of the course)."""
    courses = cache_home() / "courses"
    if files.digest in _COPIES or (courses / files.digest).is_dir():
        return []
    kept = courses / "files"
    return sorted({d for _, paths in files.folders for _, d in paths if not (kept / d).is_file()})


def _packed(digests: list[str], *data: bytes) -> dict[str, bytes]:
    """The course's files' bytes by digest, as a task finds them."""
    return dict(zip(digests, data, strict=True))


#: Each Dask worker thread's kept process (one per thread: the docs say one thread).
_KEPT = threading.local()
_COPIES: dict[str, Moves] = {}
_COPYING = threading.Lock()


#: Copies of courses a machine keeps (the newest), beside the files they are made of.
KEPT_COPIES = 8


def _kept_copy(files: Snapshot, blobs: Mapping[str, bytes]) -> Moves:
    """This machine's copy of the course (made once, in pubkit's cache, under the digest
    of its files), as the moves from the build's folders to it."""
    with _COPYING:
        if files.digest not in _COPIES:
            place = cache_home() / "courses" / files.digest
            if not place.is_dir():
                _write_copy(place, files, blobs)
                _forget_old_copies(place.parent)
            _COPIES[files.digest] = [
                (folder, str(place / str(index))) for index, (folder, _) in enumerate(files.folders)
            ]
        return _COPIES[files.digest]


def _write_copy(place: Path, files: Snapshot, blobs: Mapping[str, bytes]) -> None:
    """Write the copy whole beside ``place``, then move it there: another worker process
    of the machine finds it whole or not at all. Its files are links to one file per
    content (``files/<sha256>``), so a copy after an edit costs only what changed; none
    is forgotten between its writing and its linking (:func:`_machine_lock`)."""
    store = place.parent / "files"
    store.mkdir(parents=True, exist_ok=True)
    with _machine_lock(place.parent):
        draft = Path(tempfile.mkdtemp(prefix=".copy-", dir=place.parent))
        for index, (_, paths) in enumerate(files.folders):
            for relative, digest in paths:
                target = draft / str(index) / relative
                target.parent.mkdir(parents=True, exist_ok=True)
                kept = store / digest
                if not kept.is_file():
                    if digest not in blobs:
                        shutil.rmtree(draft, ignore_errors=True)
                        raise _Lacking(digest)
                    written = kept.with_name(f".{digest}.{os.getpid()}")
                    written.write_bytes(blobs[digest])
                    written.replace(kept)
                try:
                    os.link(kept, target)
                except OSError:  # a file system without hard links
                    target.write_bytes(blobs[digest])
        try:
            draft.rename(place)
        except OSError:  # another process made it meanwhile
            shutil.rmtree(draft, ignore_errors=True)


def _forget_old_copies(courses: Path) -> None:
    """Keep the :data:`KEPT_COPIES` newest copies, and the files they link to; one worker
    process of the machine at a time (:func:`_machine_lock`): a copy being removed looks
    new (its folder's time changes as its files go), so another process forgetting
    meanwhile would keep it and remove a new one."""
    with _machine_lock(courses):
        dated = [(age, path) for path in courses.iterdir() if (age := _copy_age(path)) is not None]
        old = [path for _, path in sorted(dated, reverse=True)[KEPT_COPIES:]]
        for path in old:
            shutil.rmtree(path, ignore_errors=True)
        if old:
            for kept in (courses / "files").iterdir():
                if not kept.name.startswith(".") and kept.stat().st_nlink == 1:  # in no copy
                    kept.unlink(missing_ok=True)


@contextlib.contextmanager
def _machine_lock(courses: Path) -> Iterator[None]:
    """Held by one process of the machine at a time: while it writes a copy, or forgets
    old ones."""
    with (courses / ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def _copy_age(path: Path) -> float | None:
    """When the copy of a course at ``path`` was made; None if ``path`` is none."""
    if len(path.name) != 64:
        return None
    try:
        found = path.stat()
    except FileNotFoundError:
        return None
    return found.st_mtime if stat.S_ISDIR(found.st_mode) else None


def _unbounded() -> Diagnostic:
    return warning(
        None,
        None,
        "the cluster's workers are daemonic processes, so their lessons are not bounded in "
        "time or memory: start them with DASK_DISTRIBUTED__WORKER__DAEMON=False",
    )


class _Warm(WorkerPlugin):
    """The worker plugin: fonts, stylesheets and dictionaries loaded as a worker starts."""

    def __init__(
        self, theme: Theme, config: Config, names: tuple[str, ...], languages: tuple[str, ...]
    ) -> None:
        self.theme, self.config, self.names, self.languages = theme, config, names, languages

    def setup(self, worker: Any) -> None:
        from pubkit.engines.pdf import warm

        try:
            warm(self.theme, self.config, self.names, self.languages)
            warm(self.theme, self.config, self.names, self.languages, collections=True)
        except OSError:  # a publisher's theme this worker cannot see: loaded by its lessons
            pass
