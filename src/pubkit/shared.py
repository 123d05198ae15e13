"""Turn a cluster's workers into the writers of what they set, where they see the output
folder: the build's own machine, a file system they share with it, or the object store
the build writes to.

The build puts a token (a random name) in the output folder, or the store, for as long as
it runs (:func:`sharing`); a worker that finds it there sees the very folder the build
writes, not one of the same name on its own machine. Such a worker writes each lesson it
sets, once it has passed EPUBCheck there (:func:`lesson_where_set`), each module's books,
read from and written to the folder (:func:`collection_where_set`), and the downloads
page (:func:`downloads_where_set`), each file whole (an atomic rename; one put), and
sends back only what the build records: no edition's bytes cross the network. A worker
that does not find the token sends back what it set, and the build writes it, as
without a cluster. (The build's mirror of a store then drops its stale copies of what
the workers wrote: :func:`pubkit.output.written_to_store`.)
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pubkit.errors import Diagnostic
from pubkit.output import (
    CACHE_DIR,
    StoreFolder,
    mirror_ledger,
    put,
    put_if_changed,
    read_collecting,
    write_collection,
    write_lesson,
)
from pubkit.sources.manuscript import Lesson, Module

if TYPE_CHECKING:
    from pubkit.course.lessons import LessonOutcome, WrittenLesson
    from pubkit.course.modulebook import Collected, Collecting

# A build without a cluster imports this module and none of the setting of lessons.


@dataclass(frozen=True)
class SharedFolder:
    """The output folder as a cluster's workers write to it: its path, as text (no move
    of the course's files to a worker's copy of them touches it), or the URL of the store
    the build writes to through a mirror; and the build's token."""

    place: str
    token: str
    #: Whether ``place`` is a store's URL.
    store: bool = False

    @property
    def token_name(self) -> Path:
        return Path(CACHE_DIR) / "shared" / self.token

    @property
    def out(self) -> Path | StoreFolder:
        return StoreFolder(self.place) if self.store else Path(self.place)

    def seen(self) -> Path | StoreFolder | None:
        """The folder, if this process finds the build's token in it; else None."""
        out = self.out
        try:
            if isinstance(out, StoreFolder):
                return out if out.exists(self.token_name) else None
            return out if (out / self.token_name).is_file() else None
        except (ImportError, OSError, ValueError):  # no fsspec back end here, no way there
            return None


@contextmanager
def sharing(out: Path) -> Iterator[SharedFolder]:
    """The output folder ``out`` (or the store it mirrors) shared with a cluster's
    workers for the length of a build: its token there, and gone after."""
    url = mirror_ledger(out).get("url")
    shared = SharedFolder(url or str(out), secrets.token_hex(16), store=url is not None)
    put(shared.out, shared.token_name, b"")
    try:
        yield shared
    finally:
        try:
            if isinstance(target := shared.out, StoreFolder):
                target.remove(shared.token_name)
            else:
                (target / shared.token_name).unlink(missing_ok=True)
        except OSError:  # a store gone meanwhile: the build says why
            pass


def lesson_where_set(
    lesson: Lesson, outcome: LessonOutcome, shared: SharedFolder, strict: bool, validating: bool
) -> LessonOutcome | WrittenLesson:
    """On the worker that set the lesson: the lesson written to the output folder, if this
    worker sees it, EPUBCheck ran here (``validating``) and the lesson passes as the build
    judges it (:meth:`LessonOutcome.judged`); else the outcome, for the build to judge and
    write (a lesson that fails leaves its last outputs as they were)."""
    from pubkit.course.lessons import WrittenLesson

    folder = shared.seen()
    unchecked = validating and "epub" in outcome.rendered and outcome.checked is None
    if folder is None or unchecked:
        return outcome
    notes, errors = outcome.judged(outcome.checked or (), strict)
    if errors:
        return outcome
    entry = write_lesson(lesson, folder, outcome)
    return WrittenLesson(entry, tuple(notes), outcome.document.files)


@dataclass(frozen=True)
class WrittenCollection:
    """A module's collections written where they were set: the module's build record,
    and EPUBCheck's warnings."""

    record: Mapping[str, Any]
    found: tuple[Diagnostic, ...]


def collection_where_set(
    item: Collecting,
    collect: Callable[[Collecting], Collected],
    shared: SharedFolder,
    members: Mapping[Module, Sequence[Lesson]],
    kept: Mapping[str, Mapping[str, str]],
    inputs: str,
    validating: bool,
) -> Collected | WrittenCollection | None:
    """On a worker: the module's collections (``item``, its fragments yet to be read) set
    from its lessons' fragments in the output folder and the parts of its last
    collections (``kept``: their keys, by module folder), and written there, when
    EPUBCheck ran here and found no error (else the collections, for the build to judge);
    None where the folder is not seen (the build then sends the fragments)."""
    folder = shared.seen()
    if folder is None:
        return None
    module, key, _, _ = item
    lessons = members[module]
    item = read_collecting(folder, module, lessons, key, kept[module.folder.name])
    collected = collect(item)
    found = collected.checked or ()
    unchecked = validating and "epub" in collected.rendered and collected.checked is None
    if unchecked or any(d.is_error for d in found):
        return collected
    outcomes = collected.bound(item[2])
    record = write_collection(folder, item, lessons, outcomes, collected, inputs)
    return WrittenCollection(record, tuple(found))


def downloads_where_set(
    listing: Mapping[str, Any],
    make: Callable[[Mapping[str, Any]], dict[Path, bytes]],
    shared: SharedFolder,
) -> dict[Path, bytes] | list[Path]:
    """On a worker: the downloads page's files (``make``), written to the output folder
    if this worker sees it (their names); else their bytes, for the build."""
    files = make(listing)
    if (folder := shared.seen()) is None:
        return files
    for relative, data in files.items():
        put_if_changed(folder, relative, data)
    return list(files)
