"""Turn a course folder into its editions: the pipeline, read top to bottom in :func:`build`.

The stages it calls live in layers below it: :mod:`pubkit.sources` (what is read in and
checked), :mod:`pubkit.document` (a lesson's document), :mod:`pubkit.engines` (the
editions' engines), :mod:`pubkit.course` (lessons on workers, collections, the downloads
page), and :mod:`pubkit.output` (atomic writes, the build record, the manifest).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field, replace
from functools import cached_property, partial
from itertools import chain
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pubkit import stamps, store
from pubkit.check import Checked, check
from pubkit.course import modulebook
from pubkit.course.links import SectionIds, course_links, link_key, named_sections, section_ids
from pubkit.course.modulebook import PARTS, Collected, Collecting, Fragment
from pubkit.course.workers import Usage, default_jobs, render_isolated
from pubkit.errors import ConfigError, Diagnostic, LessonError, PubkitError, error, warning
from pubkit.output import (
    MANIFEST_NAME,
    STATE_NAME,
    Inputs,
    code_files,
    collection_files,
    entry_files,
    file_stamps,
    files_unchanged,
    fingerprint,
    fragment_pages_path,
    fragment_path,
    lesson_files,
    manifest,
    outputs_intact,
    read_collecting,
    read_fragment,
    read_parts,
    read_state,
    stored_size,
    write_collection,
    write_if_changed,
    write_json,
    write_lesson,
    written_to_store,
)
from pubkit.shared import (
    SharedFolder,
    WrittenCollection,
    collection_where_set,
    downloads_where_set,
    lesson_where_set,
    sharing,
)
from pubkit.sources import bibliography
from pubkit.sources.config import Config, source_date
from pubkit.sources.manuscript import Lesson, Manuscripts, Module, collect, modules_of
from pubkit.sources.theme import Theme, load_theme

if TYPE_CHECKING:
    from pubkit.course.cluster import Cluster
    from pubkit.course.lessons import LessonOutcome, WrittenLesson
    from pubkit.course.validate import Check, EpubCheck

# Setting lessons, validating EPUBs and writing the downloads page are imported where they
# are done: a build with nothing to do (a no-op) needs none of them, and they took a third
# of its time.

#: Called as each lesson or module collection is done: (what, done, total, how), how being
#: :data:`BUILT`, :data:`UP_TO_DATE`, :data:`FAILED` or :data:`KEPT` (a collection left
#: as it was, since a lesson of its module failed).
Progress = Callable[[str, int, int, str], None]
BUILT, UP_TO_DATE, FAILED, KEPT = "built", "up to date", "failed", "kept"


@dataclass(frozen=True)
class LessonResult:
    """One lesson's manifest entry, and whether this run had to build it."""

    lesson: Lesson
    entry: Mapping[str, Any]
    skipped: bool


@dataclass(frozen=True)
class BuildResult:
    built: tuple[LessonResult, ...]
    failed: tuple[Path, ...]
    diagnostics: tuple[Diagnostic, ...]
    manifest: Path | None = None
    warnings: tuple[Diagnostic, ...] = field(default=())
    #: The modules whose collections this build looked at.
    collected: tuple[Module, ...] = ()
    #: The largest peak resident memory of a worker process (0: nothing was set).
    peak_worker_bytes: int = 0
    #: The store the outputs were sent to (an fsspec URL); none: the output folder.
    published: str | None = None
    #: The bytes of the course's files sent to a cluster's workers (none to a machine that
    #: kept them from an earlier build).
    sent_to_cluster: int = 0
    #: The bytes of the results a cluster's workers sent back (little when they wrote the
    #: outputs themselves, to an output folder they see).
    received_from_cluster: int = 0

    @property
    def ok(self) -> bool:
        return not self.failed


def build(
    root: Path,
    targets: Iterable[Path] = (),
    *,
    formats: Iterable[str] | None = None,
    out: Path | str | None = None,
    force: bool = False,
    progress: Progress | None = None,
    settings: Mapping[str, Any] | None = None,
    strict: bool = False,
    jobs: int | None = None,
    validate: bool = True,
    scheduler: str | None = None,
) -> BuildResult:
    """Build every lesson under ``targets`` (default: the whole course), then each module's
    collected editions and the downloads page.

    Everything is gathered and validated first; a file is written only once it has
    rendered whole, so a failure never leaves half an output. What is up to date (the
    content-hash record in the output folder) is not built again unless ``force``.
    ``strict`` makes every warning an error, failing the lesson it is about. Lessons are
    set ``jobs`` at a time (default: one per core), each in its own bounded process
    (:mod:`pubkit.course.workers`); the output is the same for any number of jobs.
    Every EPUB is run through EPUBCheck before it is written (unless not ``validate``):
    one it rejects fails its lesson, or leaves its module's last good collection.
    Given the address of a Dask ``scheduler`` (or pubkit.yaml's ``scheduler``, or the
    environment's ``DASK_SCHEDULER_ADDRESS``), lessons and collections are set on that
    cluster's workers instead (:mod:`pubkit.course.cluster`), into the same bytes.
    ``out`` may be a folder, a ``file://`` URL or any fsspec URL (``s3://…``), which is
    built through a local mirror (:mod:`pubkit.store`).
    """
    if store.is_url(out):  # the same build, into a mirror sent to the store after
        with store.mirrored(str(out)) as mirror:
            result = build(
                root, targets, formats=formats, out=mirror, force=force, progress=progress,
                settings=settings, strict=strict, jobs=jobs, validate=validate,
                scheduler=scheduler,
            )  # fmt: skip
        return replace(result, published=str(out))

    # A build of this request under way: its record of what it read and wrote (which
    # answers the next build when nothing has changed) is kept again only if all goes well.
    targets = tuple(targets)
    request = stamps.request_key(root, targets, formats, out, settings or {}, strict, validate)
    started = time.time_ns()
    stamps.forget(request)

    # Gather and check everything first: pubkit.yaml, the theme, every manuscript.
    checked = check(root, targets, settings=settings, strict=strict)
    config, manuscripts = checked.config, checked.manuscripts
    theme = load_theme(config.styles_dir)
    names = tuple(formats) if formats else config.editions
    out = (store.local_folder(out) if out else config.output_dir).resolve()
    date = source_date() or config.date
    inputs = Inputs(config, theme, names, date, strict, jobs or default_jobs(), validate)
    modules = {} if checked.targets else modules_of(manuscripts)
    # Links lead to any lesson of the course, built now or not.
    course = collect(config).lessons if checked.targets else manuscripts.lessons
    run = _Run(inputs, out, read_state(out), manuscripts, course, modules, force, progress)
    address = scheduler or config.scheduler or os.environ.get("DASK_SCHEDULER_ADDRESS")

    # Set each lesson that is not up to date (here, or on a cluster), writing it once it
    # is whole and its EPUB valid; then collect each module whose lessons changed.
    with (
        _Validator(validate and "epub" in names) as validator,
        _connected(address, config) as cluster,
        sharing(out) if cluster else nullcontext() as shared,
        _Ahead(run) as ahead,
    ):
        run.cluster, run.shared = cluster, shared
        lessons = _build_lessons(manuscripts, run, validator, ahead)
        collected = _build_collections(modules, lessons, run, validator, ahead)

        # The manifest and the downloads page, from this run and what earlier runs left.
        kept = None if checked.targets else {f"{p.parent.name}/{p.stem}" for p in lessons.failed}
        entries = {result.lesson.id: result.entry for result in lessons.results}
        listing = manifest(config, out, entries, run.state, kept)
        write_json(out / MANIFEST_NAME, listing)
        _write_downloads(listing, run)
    write_json(out / STATE_NAME, run.state, indent=False)
    result = BuildResult(
        built=tuple(lessons.results),
        failed=tuple(dict.fromkeys(lessons.failed)),
        diagnostics=(*lessons.diagnostics, *collected),
        manifest=out / MANIFEST_NAME,
        warnings=(
            *checked.warnings,
            *_machine_notices(run),
            *validator.notices,
            *(cluster.notices if cluster else ()),
        ),
        collected=tuple(modules),
        peak_worker_bytes=run.usage.peak_bytes,
        sent_to_cluster=cluster.sent_bytes if cluster else 0,
        received_from_cluster=cluster.received_bytes if cluster else 0,
    )
    if address is None and result.ok and not any(d.is_error for d in result.diagnostics):
        _remember(request, started, run, checked)
    return result


def _remember(request: str, started: int, run: _Run, checked: Checked) -> None:
    """Keep the stamps of what this build read and wrote, with what a build of the same
    request prints when it finds all of it up to date: that build is then answered from
    them (:mod:`pubkit.stamps`)."""
    config, theme, lessons = run.inputs.config, run.inputs.theme, run.manuscripts.lessons
    collections = UP_TO_DATE if _collected(run) else KEPT
    report = stamps.Report(
        ticks=(
            *((lesson.id, UP_TO_DATE) for lesson in lessons),
            *((f"collections/{module.folder.name}", collections) for module in run.modules),
        ),
        lessons=len(lessons),
        notes=tuple((str(d), d.is_error) for d in checked.diagnostics),
        manifest=run.out / MANIFEST_NAME,
    )
    # pubkit.yaml (or, without one, the project folder it would appear in), pubkit's code,
    # fonts from other packages, bibliographies, and the pictures lessons show.
    read = [config.source or config.root, *code_files(), *(face.path for face in theme.fonts)]
    for lesson in run.course:
        read += bibliography.inputs(config, lesson)
        shown = run.state["lessons"].get(lesson.id, {}).get("files", {})
        read += [config.root / name for name in shown]
    read += [target for target in checked.targets if not target.is_dir()]
    searched = [config.manuscript_dir, *theme.folders]
    searched += [target for target in checked.targets if target.is_dir()]
    stamps.record(
        request,
        report,
        read=dict.fromkeys(path.resolve() for path in read),
        searched=dict.fromkeys(path.resolve() for path in searched),
        written=run.out,
        started_ns=started,
    )


def _write_downloads(listing: Mapping[str, Any], run: _Run) -> None:
    """The downloads page and its fonts, set again only when the manifest or what every
    output depends on changed: a build that changed nothing writes nothing."""
    key = fingerprint([run.inputs.digest, json.dumps(listing, sort_keys=True)])
    kept = run.state.get("downloads") or {}
    written = kept.get("files", ())
    if kept.get("key") == key and all(stored_size(run.out, f) is not None for f in written):
        return

    theme, config = run.inputs.theme, run.inputs.config
    page: Callable[[Mapping[str, Any]], dict[Path, bytes] | list[Path]]
    page = partial(_downloads_page, theme=theme, config=config)
    made: dict[Path, bytes] | list[Path] | PubkitError
    if run.cluster is None:
        made = page(listing)
    else:  # a task too, after the lessons and collections; written there if it can be
        if run.shared is not None:
            page = partial(downloads_where_set, make=page, shared=run.shared)
        where = lambda _: config.source or config.root  # noqa: E731 (sent to the workers)
        ((_, made),) = run.cluster.run([listing], page, where, run.usage)
        if isinstance(made, PubkitError):
            raise made
    if isinstance(made, dict):
        for relative, data in made.items():
            write_if_changed(run.out / relative, data)
    else:  # written where it was set
        written_to_store(run.out, {str(path): None for path in made})
    run.state["downloads"] = {"key": key, "files": sorted(p.as_posix() for p in made)}


def _downloads_page(listing: Mapping[str, Any], theme: Theme, config: Config) -> dict[Path, bytes]:
    from pubkit.course import downloads

    return downloads.render_index(listing, theme, config)


@contextmanager
def _connected(address: str | None, config: Config) -> Iterator[Cluster | None]:
    """The Dask cluster at ``address`` for the length of the build; none without one."""
    if not address:
        yield None
        return
    try:
        from pubkit.course.cluster import Cluster
    except ImportError:
        message = "a Dask scheduler was given: install Dask with pip install 'pubkit[cluster]'"
        raise ConfigError([error(None, None, message)]) from None
    with Cluster(address, config) as cluster:
        yield cluster


def _machine_notices(run: _Run) -> list[Diagnostic]:
    """What the machine lacks that the outputs this build set are worse for."""
    if not run.rendered or run.cluster is not None:
        return []
    from pubkit.engines.weasy import machine_notices  # WeasyPrint is loaded once anything was set

    return machine_notices()


@dataclass
class _Run:
    """One build at work: its inputs and output folder, the record of earlier builds it
    updates, and what it has done so far (for the progress display and ``make bench``)."""

    inputs: Inputs
    out: Path
    #: The build record (:data:`STATE_NAME`), updated as outputs are written.
    state: dict[str, Any]
    manuscripts: Manuscripts
    #: Every lesson of the course, which links may lead to.
    course: Sequence[Lesson]
    #: The modules to collect, each with its lessons.
    modules: Mapping[Module, list[Lesson]]
    force: bool
    progress: Progress | None
    done: int = 0
    #: How many of those were set anew (not up to date).
    rendered: int = 0
    usage: Usage = field(default_factory=Usage)
    #: The Dask cluster lessons are set on; none: this machine's workers.
    cluster: Cluster | None = None
    #: The output folder as the cluster's workers write to it, when they see it.
    shared: SharedFolder | None = None
    #: The identifiers of the lessons links name sections of (:func:`section_ids`).
    sections: SectionIds = field(init=False)
    #: Each lesson's content hash.
    keys: Mapping[str, str] = field(init=False)

    def __post_init__(self) -> None:
        by_path = {lesson.path.resolve(): lesson for lesson in self.course}
        self.sections = self._section_ids(named_sections(self.manuscripts.lessons, by_path))
        self.keys = {
            lesson.id: self.inputs.key(lesson, link_key(lesson, by_path, self.sections))
            for lesson in self.manuscripts.lessons
        }

    def _section_ids(self, lessons: Sequence[Lesson]) -> SectionIds:
        """The identifiers of the lessons whose sections links name, kept in the build
        record by the digest of each text: a text read once is not read again."""
        kept = self.state.get("sections") or {}
        known = kept.get("ids", {}) if kept.get("inputs") == self.inputs.digest else {}
        ids = section_ids(
            lessons, {k: tuple(v) if v is not None else None for k, v in known.items()}
        )
        self.state["sections"] = {"inputs": self.inputs.digest, "ids": ids}
        return ids

    @property
    def total(self) -> int:
        return len(self.manuscripts.lessons) + len(self.modules)

    def tick(self, label: str, how: str) -> None:
        self.done += 1
        self.rendered += how != UP_TO_DATE
        if self.progress:
            self.progress(label, self.done, self.total, how)

    def up_to_date(self, lesson: Lesson) -> bool:
        """Whether the lesson's outputs were built from what it is made of now, and are
        all still there."""
        previous = self.state["lessons"].get(lesson.id)
        return (
            not self.force
            and previous is not None
            and previous["key"] == self.keys[lesson.id]
            and outputs_intact(self.out, entry_files(previous["entry"]))
            and stored_size(self.out, fragment_path(lesson.id)) is not None
            and stored_size(self.out, fragment_pages_path(lesson.id)) is not None
            and files_unchanged(previous.get("files", {}), self.inputs.config.root)
        )


@dataclass
class _Lessons:
    results: list[LessonResult] = field(default_factory=list)
    failed: list[Path] = field(default_factory=list)
    diagnostics: list[Diagnostic] = field(default_factory=list)


def _build_lessons(
    manuscripts: Manuscripts, run: _Run, validator: _Validator, ahead: _Ahead
) -> _Lessons:
    """Set and write every lesson that is not up to date; record each in ``state``. Each
    lesson's EPUB is checked (in the background, while the next lessons are set) before
    the lesson is written; its module's collection may start before (:class:`_Ahead`)."""
    done = _Lessons(failed=list(manuscripts.failed), diagnostics=list(manuscripts.diagnostics))
    records = run.state["lessons"]
    work = []
    for lesson in manuscripts.lessons:
        if run.up_to_date(lesson):
            done.results.append(LessonResult(lesson, records[lesson.id]["entry"], skipped=True))
            run.tick(lesson.id, UP_TO_DATE)
        else:
            work.append(lesson)
    inputs = run.inputs
    config, theme, names, date = inputs.config, inputs.theme, inputs.names, inputs.date
    if not work:
        return done

    if run.cluster is None:  # on a cluster, each worker checks the EPUBs it sets
        validator.start()
    course = course_links(config, run.course, work, names, run.sections)
    from pubkit.course.lessons import set_lessons

    where_set = None
    if run.shared is not None:  # written by the worker that set it, where it sees the folder
        where_set = partial(
            lesson_where_set,
            shared=run.shared,
            strict=inputs.strict,
            validating=validator.active,
        )
    setting = set_lessons(
        work,
        config,
        theme,
        names,
        date,
        inputs.jobs,
        run.usage,
        course,
        run.cluster,
        ahead.start,
        validate=validator.active,
        where_set=where_set,
    )
    checks: list[tuple[Lesson, LessonOutcome | WrittenLesson, Future[list[Diagnostic]]]] = []
    for lesson, outcome in setting:
        if isinstance(outcome, PubkitError):
            done.diagnostics.extend(outcome.diagnostics)
            done.failed.append(lesson.path)
            run.tick(lesson.id, FAILED)
            continue
        checks.append((lesson, outcome, validator.lesson(lesson, outcome)))
        while checks and checks[0][2].done():  # write what is checked, in order
            _finish_lesson(*checks.pop(0), run, done)
    for pending in checks:
        _finish_lesson(*pending, run, done)
    order = {lesson.id: index for index, lesson in enumerate(manuscripts.lessons)}
    done.results.sort(key=lambda result: order[result.lesson.id])
    return done


def _finish_lesson(
    lesson: Lesson,
    outcome: LessonOutcome | WrittenLesson,
    checked: Future[list[Diagnostic]],
    run: _Run,
    done: _Lessons,
) -> None:
    """Write the lesson set as ``outcome``, unless EPUBCheck rejected its EPUB (or, under
    ``--strict``, anyone found anything); then its earlier outputs stay as they were.
    A lesson the worker that set it wrote already (:func:`pubkit.shared.lesson_where_set`) is
    recorded."""
    from pubkit.course.lessons import WrittenLesson

    if isinstance(outcome, WrittenLesson):
        done.diagnostics.extend(outcome.notes)
        entry, files = dict(outcome.entry), outcome.files
        written_to_store(run.out, lesson_files(lesson.id, entry))
    else:
        notes, errors = outcome.judged(checked.result(), run.inputs.strict)
        done.diagnostics.extend([*notes, *errors])
        if errors:
            done.failed.append(lesson.path)
            run.tick(lesson.id, FAILED)
            return
        entry, files = write_lesson(lesson, run.out, outcome), outcome.document.files
    run.state["lessons"][lesson.id] = {
        "key": run.keys[lesson.id],
        "entry": entry,
        "files": file_stamps(files, run.inputs.config.root),
    }
    done.results.append(LessonResult(lesson, entry, skipped=False))
    run.tick(lesson.id, BUILT)


class _Validator:
    """EPUBCheck on every EPUB the build writes, in one JVM for the whole build (and
    the next ones in this process: :func:`pubkit.course.validate.shared_checker`); when
    not ``active``, nothing is checked."""

    def __init__(self, active: bool) -> None:
        self.active = active
        #: What could not be checked, once for the whole build.
        self.notices: list[Diagnostic] = []
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="epubcheck")
        self._folder = Path(tempfile.mkdtemp(prefix="pubkit-validate-"))

    def __enter__(self) -> _Validator:
        return self

    @cached_property
    def checker(self) -> EpubCheck:

        from pubkit.course.validate import shared_checker

        checker: EpubCheck = shared_checker()
        return checker

    def __exit__(self, *_exc: object) -> None:
        self._pool.shutdown(cancel_futures=True)
        shutil.rmtree(self._folder, ignore_errors=True)

    def start(self) -> None:
        """Start EPUBCheck's JVM, which loads while the lessons are set."""
        if self.active:
            try:
                self.checker.start()
            except PubkitError as exc:
                self._give_up(exc)

    def lesson(
        self, lesson: Lesson, outcome: LessonOutcome | WrittenLesson
    ) -> Future[list[Diagnostic]]:
        """What EPUBCheck finds in the lesson's EPUB, at its manuscript lines (soon); a
        lesson written where it was set was checked there."""
        from pubkit.course.lessons import LessonOutcome

        if not isinstance(outcome, LessonOutcome):
            return _at_once([])
        epub = outcome.rendered.get("epub")
        if not self.active or epub is None:
            return _at_once([])
        if outcome.checked is not None:  # checked where it was set
            return _at_once(list(outcome.checked))
        from pubkit.course.validate import lesson_check

        return self._pool.submit(self._check, epub.data, *lesson_check(lesson))

    def collection(
        self,
        module: Module,
        members: list[Lesson],
        data: bytes | None,
        checked: tuple[Diagnostic, ...] | None = None,
    ) -> Future[list[Diagnostic]]:
        """What EPUBCheck finds in a module's collected EPUB (``data``; None: none made),
        at its lessons' lines (soon); ``checked``: what it found where it was set."""
        if not self.active or data is None:
            return _at_once([])
        if checked is not None:
            return _at_once(list(checked))
        from pubkit.course.validate import collection_check

        return self._pool.submit(self._check, data, *collection_check(module, members))

    def _check(self, data: bytes, name: str, check: Check) -> list[Diagnostic]:
        if not self.active:
            return []
        path = self._folder / name
        path.write_bytes(data)
        try:
            return list(check(path, self.checker.messages))
        except PubkitError as exc:
            self._give_up(exc)
            return []
        finally:
            path.unlink(missing_ok=True)

    def _give_up(self, exc: PubkitError) -> None:
        self.active = False
        reasons = "; ".join(d.message for d in exc.diagnostics)
        self.notices.append(
            warning(None, None, f"the EPUBs were not validated: {reasons} (or pass --no-validate)")
        )


def _at_once(value: list[Diagnostic]) -> Future[list[Diagnostic]]:
    future: Future[list[Diagnostic]] = Future()
    future.set_result(value)
    return future


def _build_collections(
    modules: Mapping[Module, list[Lesson]],
    lessons: _Lessons,
    run: _Run,
    validator: _Validator,
    ahead: _Ahead,
) -> list[Diagnostic]:
    """Collect each module whose lessons changed, from their lessons' cached fragments
    (or take the collection set ahead of them, :class:`_Ahead`); a module with a lesson
    that failed keeps its last good collection."""
    names = _collected(run)
    records = run.state["collections"]
    ready = {result.lesson.id for result in lessons.results}
    diagnostics: list[Diagnostic] = []
    work: list[Collecting] = []
    taken: list[tuple[Collecting, Future[Collected | LessonError]]] = []
    for module, members in modules.items():
        folder = module.folder.name
        key = _module_key(run, module, members)
        previous = records.get(folder)
        if not names or any(lesson.id not in ready for lesson in members):
            run.tick(f"collections/{folder}", KEPT)  # a lesson failed: keep the last good one
            continue
        if (
            not run.force
            and previous
            and previous["key"] == key
            and outputs_intact(run.out, previous["entry"]["editions"])
        ):
            run.tick(f"collections/{folder}", UP_TO_DATE)
            continue
        if (started := ahead.take(key)) is not None:  # set from these fragments already
            taken.append(started)
            continue
        work.append((module, key, [], {}))  # its fragments read where it is set

    # Locally, each book is bound here while EPUBCheck reads its EPUB; on a cluster, there.
    results: Iterable[tuple[Collecting, Collected | WrittenCollection | LessonError]]
    if run.cluster is not None:
        results = _collect_on_cluster(run.cluster, work, modules, run, validator)
    else:
        work = [
            read_collecting(
                run.out, module, modules[module], key, _kept_keys(run, module.folder.name)
            )
            for module, key, _, _ in work
        ]
        if taken and not work:  # while they finish, the downloads page's engines warm up
            from pubkit.course import downloads

            downloads.warm(run.inputs.theme, run.inputs.config)
        _warm_collections(run, work)
        collect = _collector(run, bind=False)
        results = chain(
            ((item, started.result()) for item, started in taken),
            render_isolated(work, collect, run.inputs.jobs, _module_source, run.usage),
        )
    for item, collected in results:
        module, key, fragments, _ = item
        label = f"collections/{module.folder.name}"
        if isinstance(collected, PubkitError):  # the module keeps its last good collection
            diagnostics.extend(collected.diagnostics)
            run.tick(label, FAILED)
            continue
        if isinstance(collected, WrittenCollection):  # checked and written where it was set
            diagnostics.extend(collected.found)
            records[module.folder.name] = collected.record
            written_to_store(run.out, collection_files(module.folder.name, collected.record))
            run.tick(label, BUILT)
            continue
        epub = collected.rendered.get("epub")
        data = epub.data if epub else None
        checking = validator.collection(module, modules[module], data, collected.checked)
        outcomes = collected.bound(fragments)
        found = checking.result()
        diagnostics.extend(found)
        if any(d.is_error for d in found):
            run.tick(label, FAILED)
            continue
        records[module.folder.name] = write_collection(
            run.out, item, modules[module], outcomes, collected, run.inputs.digest
        )
        run.tick(label, BUILT)
    return diagnostics


def _collected(run: _Run) -> tuple[str, ...]:
    """The collected editions the build makes."""
    return tuple(name for name in modulebook.COLLECTED if name in run.inputs.names)


def _module_key(run: _Run, module: Module, members: Sequence[Lesson]) -> str:
    """What a module's collections are made of: its lessons' keys, the editions made."""
    names = ",".join(_collected(run))
    return fingerprint([module.folder.name, names, *(run.keys[lesson.id] for lesson in members)])


def _collector(
    run: _Run, bind: bool, spare_core: bool = False
) -> Callable[[Collecting], Collected]:
    """A module's collections, as a worker sets them (``bind``: its PDF bound there;
    ``spare_core``: a core is free for a process beside it)."""
    inputs = run.inputs
    return partial(
        _collect,
        config=inputs.config,
        theme=inputs.theme,
        date=inputs.date,
        names=_collected(run),
        bind=bind,
        spare_core=spare_core,
    )


def _warm_collections(run: _Run, work: Sequence[Collecting]) -> None:
    """Load what the collections' workers share before they are forked."""
    if work:
        from pubkit.engines.pdf import warm

        languages = (f.language for _, _, fragments, _ in work for f in fragments)
        inputs = run.inputs
        warm(inputs.theme, inputs.config, _collected(run), languages, collections=True)


class _Ahead:
    """Module collections started before their lessons are written. When a build sets
    fewer lessons than it has cores (an edit), a module whose other lessons are all up to
    date is collected as soon as the changed lesson's fragment comes
    (:func:`pubkit.course.workers.send_early`): on the core that set the lesson's
    handout, while the lesson's EPUB is set and checked. The build takes the collection
    if the lesson is then written (its key says so); if it failed, it is dropped."""

    def __init__(self, run: _Run) -> None:
        self.run = run
        #: The collections started, by the key of what they are made of.
        self.started: dict[str, tuple[Collecting, Future[Collected | LessonError]]] = {}
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ahead")

    def __enter__(self) -> _Ahead:
        return self

    def __exit__(self, *_exc: object) -> None:
        self._pool.shutdown()

    def start(self, lesson: Lesson, fragment: Fragment) -> None:
        """Start the collection of ``lesson``'s module, ``fragment`` its new part, if its
        other lessons are up to date."""
        run = self.run
        members = run.modules.get(lesson.module)
        if not _collected(run) or not members:
            return
        if any(other.id != lesson.id and not run.up_to_date(other) for other in members):
            return
        fragments = [
            fragment if other.id == lesson.id else read_fragment(run.out, other.id)
            for other in members
        ]
        key = _module_key(run, lesson.module, members)
        folder = lesson.module.folder.name
        item = (
            lesson.module,
            key,
            fragments,
            read_parts(run.out, folder, _kept_keys(run, folder)),
        )
        self.started[key] = (item, self._pool.submit(self._collect, item))

    def _collect(self, item: Collecting) -> Collected | LessonError:
        _warm_collections(self.run, [item])
        collect = _collector(self.run, bind=False, spare_core=True)
        ((_, collected),) = render_isolated([item], collect, 1, _module_source, self.run.usage)
        return collected

    def take(self, key: str) -> tuple[Collecting, Future[Collected | LessonError]] | None:
        """The collection started for ``key`` (what it is set from, and it), if one was."""
        return self.started.pop(key, None)


def _collect(
    item: Collecting,
    config: Config,
    theme: Theme,
    date: str | None,
    names: tuple[str, ...],
    bind: bool,
    spare_core: bool,
) -> Collected:
    module, _, fragments, kept = item
    return modulebook.render(module, fragments, config, theme, date, names, kept, bind, spare_core)


def _collect_checked(
    item: Collecting,
    collect: Callable[[Collecting], Collected],
    members: Mapping[Module, Sequence[Lesson]],
) -> Collected:
    """A module's collections as ``collect`` sets them, their EPUB run through EPUBCheck
    where it was set (a cluster's worker), at its lessons' lines."""
    collected = collect(item)
    if (epub := collected.rendered.get("epub")) is not None:
        from pubkit.course.validate import checked_where_set, collection_check

        check = collection_check(item[0], members[item[0]])
        collected = replace(collected, checked=checked_where_set(epub.data, *check))
    return collected


def _module_source(item: Collecting) -> Path:
    return item[0].source


def _kept_keys(run: _Run, folder: str) -> dict[str, str]:
    """The keys of the parts of the module's last collections (:class:`Part`: the book's
    front and numbered pages, the EPUB's cover), if made from the same inputs (theme,
    settings, pubkit itself): the next collections take each again while it fits."""
    kept = (run.state["collections"].get(folder) or {}).get("parts")
    if not kept or kept.get("inputs") != run.inputs.digest:
        return {}
    return {name: key for name, key in kept["keys"].items() if name in PARTS}


def _collect_on_cluster(
    cluster: Cluster,
    work: Sequence[Collecting],
    modules: Mapping[Module, Sequence[Lesson]],
    run: _Run,
    validator: _Validator,
) -> Iterator[tuple[Collecting, Collected | WrittenCollection | LessonError]]:
    """Each module's collections (``work``, their fragments yet to be read) set on the
    cluster's workers, their PDF bound and their EPUB checked there. A worker that sees
    the output folder reads the lessons' fragments from it and writes the books to it
    (:func:`pubkit.shared.collection_where_set`): no lesson's pages cross the network;
    the books of one that does not are sent their fragments, and come back."""
    collect = _collector(run, bind=True)
    if validator.active and "epub" in _collected(run):
        collect = partial(_collect_checked, collect=collect, members=modules)
    kept = {module.folder.name: _kept_keys(run, module.folder.name) for module, *_ in work}

    def filled(item: Collecting) -> Collecting:
        module, key, _, _ = item
        return read_collecting(run.out, module, modules[module], key, kept[module.folder.name])

    if run.shared is None:
        yield from cluster.run([filled(item) for item in work], collect, _module_source, run.usage)
        return
    where_set = partial(
        collection_where_set,
        collect=collect,
        shared=run.shared,
        members=modules,
        kept=kept,
        inputs=run.inputs.digest,
        validating=validator.active,
    )
    unseen = []
    for item, collected in cluster.run(work, where_set, _module_source, run.usage):
        if collected is None:  # its worker did not see the output folder
            unseen.append(filled(item))
        else:
            yield item, collected
    yield from cluster.run(unseen, collect, _module_source, run.usage)
