"""Turn lessons (and module collections) into their editions on a Dask cluster: the same
work as :func:`pubkit.course.workers.render_isolated`, as tasks on Dask's ``distributed``
scheduler, wherever its workers run.

On a worker, each task sets its item exactly as a local build does, in a process forked
from the worker and kept for the tasks after it (:class:`~pubkit.course.workers.Kept`),
so that the same time and memory bounds hold, a crash fails that item only, and every
lesson after the first finds the engines' caches warm, as on a local build's workers. A worker
plugin loads fonts, stylesheets and hyphenation dictionaries once per worker process, so
that every forked item finds them loaded. A worker lost mid-task has its task run again
elsewhere by the scheduler; nothing is written until a result is back, so nothing is half
written. Results come back in the order of the items, as locally: the outputs are the same
bytes.

``distributed`` is optional (``pip install 'pubkit[cluster]'``): this module, which
imports it, is imported only by a build given a scheduler (:func:`connect`).
"""

from __future__ import annotations

import multiprocessing
import pickle
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, TypeVar

from distributed import Client, KilledWorker, WorkerPlugin

from pubkit.course.workers import Kept, Usage
from pubkit.errors import Diagnostic, LessonError, PubkitError, error, warning
from pubkit.sources.config import Config
from pubkit.sources.theme import Theme

T = TypeVar("T")
L = TypeVar("L")

#: Seconds to reach the scheduler before the build gives up.
CONNECT_SECONDS = 20


class Cluster:
    """A connection to a Dask scheduler, for one build."""

    def __init__(self, address: str) -> None:
        self.address = address
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
        # The function (settings, theme) goes in every task, not scattered once: a task
        # that outlives every worker holding scattered data could not run again.
        futures = self.client.map(_on_worker, items, function=function, where=where, pure=False)
        try:
            for item, future in zip(items, futures, strict=True):
                try:
                    kind, value, peak, daemonic = future.result()
                except KilledWorker:
                    message = "the cluster's workers setting this lesson were lost, again and again"
                    yield item, LessonError([error(where(item), None, message)])
                    continue
                except Exception as exc:
                    if future.status != "error":  # the scheduler, or the way to it, is gone
                        raise self._lost(exc) from None
                    found = f"{type(exc).__name__}: {exc}"  # the task itself: this lesson only
                    message = f"setting this lesson failed on the cluster ({found}); a pubkit bug"
                    yield item, LessonError([error(where(item), None, message)])
                    continue
                if usage is not None:
                    usage.peak_bytes = max(usage.peak_bytes, peak)
                if daemonic and not self.notices:
                    self.notices.append(_unbounded())
                if kind == "error":
                    yield item, LessonError(value)
                else:
                    yield item, pickle.loads(value) if kind == "pickled" else value
        finally:
            for future in futures:
                future.cancel()

    def _lost(self, exc: BaseException) -> PubkitError:
        reason = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        message = f"lost the Dask scheduler at {self.address} ({reason}); nothing more was built"
        return PubkitError([error(None, None, message)])


def _on_worker(
    item: Any, function: Callable[[Any], Any], where: Callable[[Any], Path]
) -> tuple[str, Any, int, bool]:
    """On a worker: the item set in the bounded process this worker thread keeps, as a
    local worker sets it; (kind, result or diagnostics, peak memory, whether the worker
    was daemonic).

    A daemonic worker process (Dask's default) may not start processes: there the item is
    set in the worker itself, bounded only by the cluster's own memory limits."""
    if multiprocessing.current_process().daemon:
        try:
            return "ok", function(item), 0, True
        except PubkitError as exc:
            return "error", exc.diagnostics, 0, True
    if not hasattr(_KEPT, "worker"):
        _KEPT.worker = Kept()
    usage = Usage()
    result = _KEPT.worker.run(item, function, where, usage)
    if isinstance(result, LessonError):
        return "error", result.diagnostics, usage.peak_bytes, False
    return "pickled", result, usage.peak_bytes, False  # loaded by the build, not here


#: Each Dask worker thread's kept process (one per thread: the docs say one thread).
_KEPT = threading.local()


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

        warm(self.theme, self.config, self.names, self.languages)
        warm(self.theme, self.config, self.names, self.languages, collections=True)
