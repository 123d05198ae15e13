"""Turn a course folder into its editions: the pipeline, read top to bottom in :func:`build`."""

from __future__ import annotations

import datetime as dt
import os
import shutil
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import cache, cached_property, partial
from pathlib import Path
from typing import Any

from pubkit import __version__
from pubkit.course import downloads, modulebook, validate
from pubkit.course.modulebook import Fragment
from pubkit.course.workers import Usage, default_jobs, render_isolated
from pubkit.document.markdown import NESTS_TOO_DEEPLY, Document, convert, read_ahead
from pubkit.document.markdown import read as read_markdown
from pubkit.document.metrics import Figures, count_words, reading_minutes
from pubkit.document.render import Rendered, RenderJob
from pubkit.editions import EDITIONS
from pubkit.engines import renderer
from pubkit.errors import ConfigError, Diagnostic, LessonError, PubkitError
from pubkit.output import (
    MANIFEST_NAME,
    STATE_NAME,
    fingerprint,
    outputs_intact,
    read_json,
    sha256,
    write_atomic,
    write_if_changed,
    write_json,
)
from pubkit.sources.config import Config, load_config
from pubkit.sources.manuscript import Collection, Lesson, Module, collect, strictly
from pubkit.sources.theme import Theme, check_stylesheets, load_theme

#: Called as each lesson or module collection is done: (what, done, total, up to date).
Progress = Callable[[str, int, int, bool], None]
#: Where pubkit keeps what it needs between builds, inside the output folder.
CACHE_DIR = ".pubkit"
#: The build record's layout; a record of another layout is ignored (everything rebuilds).
STATE_FORMAT = 2


@dataclass(frozen=True)
class LessonOutcome:
    """One lesson set in memory, before anything is written."""

    rendered: dict[str, Rendered]
    figures: Figures
    document: Document
    #: The first page of the PDF edition, for the downloads page.
    thumbnail: bytes
    #: The lesson as its module's collection sets it.
    fragment: Fragment


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

    @property
    def ok(self) -> bool:
        return not self.failed


def source_date() -> str | None:
    """The date to stamp on outputs when SOURCE_DATE_EPOCH asks for reproducible builds
    (the reproducible-builds.org convention; it wins over course.date)."""
    epoch = os.environ.get("SOURCE_DATE_EPOCH", "").strip()
    if not epoch.isdigit():
        return None
    return dt.datetime.fromtimestamp(int(epoch), dt.UTC).date().isoformat()


def check(
    root: Path,
    targets: Iterable[Path] = (),
    settings: Mapping[str, Any] | None = None,
    strict: bool = False,
    markdown: bool = False,
) -> tuple[Config, Collection, list[Diagnostic]]:
    """Validate configuration and manuscripts without rendering anything.

    ``settings`` override pubkit.yaml by key (``{"handout.bleed": "3mm"}``). ``strict``
    makes every warning an error: of pubkit.yaml (nothing is built) or of a lesson (that
    lesson fails). ``markdown`` also parses each lesson's Markdown and checks what it
    refers to and its raw HTML (``build`` does this as it renders).
    """
    config, warnings = load_config(root, settings)
    if strict and warnings:
        raise ConfigError([w.as_error() for w in warnings])
    check_stylesheets(load_theme(config.styles_dir), config)
    collection = collect(config, targets)
    if markdown:
        collection = _read_markdown(collection, config)
    return config, strictly(collection) if strict else collection, warnings


def _read_markdown(collection: Collection, config: Config) -> Collection:
    lessons, failed, diagnostics = [], list(collection.failed), list(collection.diagnostics)
    for lesson in collection.lessons:
        try:
            _, notes = read_markdown(lesson, config.root)
        except PubkitError as exc:
            diagnostics.extend(exc.diagnostics)
            failed.append(lesson.path)
            continue
        diagnostics.extend(notes)
        lessons.append(lesson)
    return Collection(tuple(lessons), tuple(diagnostics), tuple(failed))


def check_layout(
    root: Path, targets: Iterable[Path] = ()
) -> tuple[Collection, list[Diagnostic], list[Diagnostic]]:
    """Lay out every paged edition in memory and proofread the pages; nothing is written.

    Returns the collection, its diagnostics (manuscript errors, lessons that fail to
    render) and the findings: one warning per typographic fault.
    """
    config, collection, warnings = check(root, targets)
    theme = load_theme(config.styles_dir)
    paged = tuple(name for name in config.editions if EDITIONS[name].paged)
    diagnostics = [*warnings, *collection.diagnostics]
    findings: list[Diagnostic] = []
    date = source_date() or config.date
    for _lesson, outcome in _set_lessons(collection.lessons, config, theme, paged, date):
        if isinstance(outcome, PubkitError):
            diagnostics.extend(outcome.diagnostics)
            continue
        diagnostics.extend(outcome.document.warnings)
        findings.extend(f for result in outcome.rendered.values() for f in result.findings)
    return collection, diagnostics, findings


def check_epubs(
    root: Path, targets: Iterable[Path] = (), out: Path | None = None
) -> tuple[Collection, list[Diagnostic], list[Diagnostic]]:
    """Run EPUBCheck on every lesson's built EPUB, and on the whole course's collected
    EPUBs (no ``targets``); its messages point at manuscript lines.

    Returns the collection, its diagnostics and EPUBCheck's findings.
    """
    targets = tuple(targets)
    config, collection, warnings = check(root, targets)
    out = (out or config.output_dir).resolve()
    collected = "epub" in config.editions and not targets
    findings = validate.check_epubs(
        ((lesson, out / output_path(lesson, "epub")) for lesson in collection.lessons),
        (
            (module.source, members, out / modulebook.output_path(module, "epub"))
            for module, members in (_modules(collection) if collected else {}).items()
        ),
    )
    return collection, [*warnings, *collection.diagnostics], findings


def clean(root: Path, out: Path | None = None) -> list[Path]:
    """Remove what pubkit writes to the output folder (and the folder, if that empties it);
    anything else there stays. Returns what was removed."""
    config, _warnings = load_config(root)
    out = (out or config.output_dir).resolve()
    made = [*EDITIONS, "collections", "thumbnails", downloads.FONTS_DIR.as_posix(), CACHE_DIR]
    made += [downloads.INDEX_NAME, MANIFEST_NAME, STATE_NAME]
    removed = []
    for name in made:
        path = out / name
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        elif path.exists() or path.is_symlink():
            path.unlink()
        else:
            continue
        removed.append(path)
    for folder in (out / downloads.FONTS_DIR.parent, out):
        if folder.is_dir() and not any(folder.iterdir()):
            folder.rmdir()
    return removed


def output_path(lesson: Lesson, edition: str) -> Path:
    """Where a lesson's edition goes, relative to the output folder."""
    suffix = EDITIONS[edition].suffix
    return Path(edition) / lesson.module.folder.name / (lesson.path.stem + suffix)


def build(
    root: Path,
    targets: Iterable[Path] = (),
    formats: Iterable[str] | None = None,
    out: Path | None = None,
    force: bool = False,
    progress: Progress | None = None,
    settings: Mapping[str, Any] | None = None,
    strict: bool = False,
    jobs: int | None = None,
) -> BuildResult:
    """Build every lesson under ``targets`` (default: the whole course), then each module's
    collected editions and the downloads page.

    Everything is gathered and validated first; a file is written only once it has
    rendered whole, so a failure never leaves half an output. What is up to date (the
    content-hash record in the output folder) is not built again unless ``force``.
    ``strict`` makes every warning an error, failing the lesson it is about. Lessons are
    set ``jobs`` at a time (default: one per core), each in its own bounded process
    (:mod:`pubkit.course.workers`); the output is the same for any number of jobs.
    """
    targets = tuple(targets)
    config, collection, warnings = check(root, targets, settings, strict)
    theme = load_theme(config.styles_dir)
    names = tuple(formats) if formats else config.editions
    out = (out or config.output_dir).resolve()
    date = source_date() or config.date
    state = _read_state(out)
    inputs = _Inputs(config, theme, names, date, strict, jobs or default_jobs())
    keys = {lesson.id: inputs.key(lesson) for lesson in collection.lessons}
    modules = _modules(collection) if not targets else {}
    total = len(collection.lessons) + len(modules)
    run = _Run(inputs, out, state, keys, force, progress, total)

    lessons = _build_lessons(collection, run)
    collected = _build_collections(modules, lessons, run)

    kept = {f"{path.parent.name}/{path.stem}" for path in lessons.failed} if not targets else None
    manifest = _manifest(config, out, lessons.results, state, kept)
    write_json(out / MANIFEST_NAME, manifest)
    for relative, data in downloads.render_index(manifest, theme, config).items():
        write_if_changed(out / relative, data)
    write_json(out / STATE_NAME, state)
    return BuildResult(
        built=tuple(lessons.results),
        failed=tuple(dict.fromkeys(lessons.failed)),
        diagnostics=(*lessons.diagnostics, *collected),
        manifest=out / MANIFEST_NAME,
        warnings=(*warnings, *_machine_notices(run)),
        collected=tuple(modules),
        peak_worker_bytes=run.usage.peak_bytes,
    )


def _machine_notices(run: _Run) -> list[Diagnostic]:
    """What the machine lacks that the outputs this build set are worse for."""
    if not run.rendered:
        return []
    from pubkit.engines.pdf import machine_notices  # WeasyPrint is loaded once anything was set

    return machine_notices()


@dataclass(frozen=True)
class _Inputs:
    """What every output of this build depends on, besides its own manuscripts."""

    config: Config
    theme: Theme
    names: tuple[str, ...]
    date: str | None
    strict: bool
    jobs: int

    @cached_property
    def digest(self) -> str:
        """pubkit's code and version, the theme's files, the settings and editions asked for
        (and ``--strict``, which looks at every lesson's warnings afresh)."""
        parts: list[bytes | str] = [__version__, code_digest(), _theme_digest(self.theme)]
        parts += [",".join(self.names), self.date or "", "strict" if self.strict else ""]
        parts.append(repr(replace(self.config, lines={})))  # pubkit.yaml and settings
        return fingerprint(parts)

    def key(self, lesson: Lesson) -> str:
        """The lesson's content hash: a change to any input rebuilds it."""
        source = (lesson.path.read_bytes(), lesson.module.source.read_bytes())
        return fingerprint([self.digest, *source])


@dataclass
class _Run:
    """One build at work: its inputs and output folder, the record of earlier builds it
    updates, and what it has done so far (for the progress display and ``make bench``)."""

    inputs: _Inputs
    out: Path
    #: The build record (:data:`STATE_NAME`), updated as outputs are written.
    state: dict[str, Any]
    #: Each lesson's content hash.
    keys: Mapping[str, str]
    force: bool
    progress: Progress | None
    total: int
    done: int = 0
    #: How many of those were set anew (not up to date).
    rendered: int = 0
    usage: Usage = field(default_factory=Usage)

    def tick(self, label: str, skipped: bool) -> None:
        self.done += 1
        self.rendered += not skipped
        if self.progress:
            self.progress(label, self.done, self.total, skipped)


@dataclass
class _Lessons:
    results: list[LessonResult] = field(default_factory=list)
    failed: list[Path] = field(default_factory=list)
    diagnostics: list[Diagnostic] = field(default_factory=list)


def _build_lessons(collection: Collection, run: _Run) -> _Lessons:
    """Set and write every lesson that is not up to date; record each in ``state``."""
    done = _Lessons(failed=list(collection.failed), diagnostics=list(collection.diagnostics))
    records = run.state["lessons"]
    fresh = {
        lesson.id
        for lesson in collection.lessons
        if not run.force
        and (previous := records.get(lesson.id))
        and previous["key"] == run.keys[lesson.id]
        and outputs_intact(run.out, _files(previous["entry"]))
        and (run.out / _fragment_path(lesson.id)).is_file()
    }
    work = [lesson for lesson in collection.lessons if lesson.id not in fresh]
    inputs = run.inputs
    config, theme, names, date = inputs.config, inputs.theme, inputs.names, inputs.date
    outcomes = _set_lessons(work, config, theme, names, date, inputs.jobs, run.usage)
    for lesson in collection.lessons:
        if lesson.id in fresh:
            done.results.append(LessonResult(lesson, records[lesson.id]["entry"], skipped=True))
            run.tick(lesson.id, True)
            continue
        _, outcome = next(outcomes)
        if isinstance(outcome, PubkitError):
            done.diagnostics.extend(outcome.diagnostics)
            done.failed.append(lesson.path)
            run.tick(lesson.id, False)
            continue
        document = outcome.document
        notes = [
            *document.warnings,
            *(d for r in outcome.rendered.values() for d in (*r.diagnostics, *r.findings)),
        ]
        run.tick(lesson.id, False)
        if run.inputs.strict and notes:
            done.diagnostics.extend(note.as_error() for note in notes)
            done.failed.append(lesson.path)
            continue
        done.diagnostics.extend(notes)
        entry = _write_lesson(lesson, run.out, outcome)
        records[lesson.id] = {"key": run.keys[lesson.id], "entry": entry}
        done.results.append(LessonResult(lesson, entry, skipped=False))
    return done


def _modules(collection: Collection) -> dict[Module, list[Lesson]]:
    """Each module's lessons in lesson order: what its collection holds. A module with a
    lesson that cannot be read is left run.out; its collection would be missing that lesson."""
    broken = {path.parent.resolve() for path in collection.failed}
    modules: dict[Module, list[Lesson]] = {}
    for lesson in collection.lessons:
        if lesson.module.folder.resolve() not in broken:
            modules.setdefault(lesson.module, []).append(lesson)
    for members in modules.values():
        members.sort(key=lambda lesson: lesson.number)
    return dict(sorted(modules.items(), key=lambda item: item[0].number))


def _build_collections(
    modules: Mapping[Module, list[Lesson]], lessons: _Lessons, run: _Run
) -> list[Diagnostic]:
    """Collect each module whose lessons changed, from their cached fragments."""
    names = tuple(name for name in modulebook.COLLECTED if name in run.inputs.names)
    records = run.state["collections"]
    ready = {result.lesson.id for result in lessons.results}
    diagnostics: list[Diagnostic] = []
    work: list[tuple[Module, str, list[Fragment]]] = []
    for module, members in modules.items():
        folder = module.folder.name
        key = fingerprint([folder, ",".join(names), *(run.keys[lesson.id] for lesson in members)])
        previous = records.get(folder)
        if not names or any(lesson.id not in ready for lesson in members):
            run.tick(f"collections/{folder}", True)  # a lesson failed: keep the last good one
            continue
        if (
            not run.force
            and previous
            and previous["key"] == key
            and outputs_intact(run.out, previous["entry"]["editions"])
        ):
            run.tick(f"collections/{folder}", True)
            continue
        fragments = [_read_fragment(run.out, lesson.id) for lesson in members]
        work.append((module, key, fragments))

    if work:
        from pubkit.engines.pdf import warm

        languages = (f.language for *_, fragments in work for f in fragments)
        warm(run.inputs.theme, run.inputs.config, names, languages, collections=True)

    def collect(item: tuple[Module, str, list[Fragment]]) -> dict[str, Rendered]:
        module, _, fragments = item
        config, theme = run.inputs.config, run.inputs.theme
        return modulebook.render(module, fragments, config, theme, run.inputs.date, names)

    results = render_isolated(
        work, collect, run.inputs.jobs, where=lambda item: item[0].source, usage=run.usage
    )
    for (module, key, _), outcomes in results:
        run.tick(f"collections/{module.folder.name}", False)
        if isinstance(outcomes, PubkitError):  # the module keeps its last good collection
            diagnostics.extend(outcomes.diagnostics)
            continue
        entry = {
            "module": {"number": module.number, "title": module.title},
            "lessons": [lesson.id for lesson in modules[module]],
            "editions": {
                name: _write_output(run.out, modulebook.output_path(module, name), rendered)
                for name, rendered in outcomes.items()
            },
        }
        records[module.folder.name] = {"key": key, "entry": entry}
    return diagnostics


def _set_lessons(
    lessons: Sequence[Lesson],
    config: Config,
    theme: Theme,
    names: tuple[str, ...],
    date: str | None,
    jobs: int | None = None,
    usage: Usage | None = None,
) -> Iterator[tuple[Lesson, LessonOutcome | LessonError]]:
    """Set ``lessons`` in bounded worker processes (:mod:`pubkit.course.workers`), in order.

    Fonts, stylesheets and hyphenation dictionaries are loaded here first, so the forked
    workers share them. With fewer lessons than jobs (``pubkit build LESSON``), the cores
    to spare set each lesson's handout beside it (:func:`_aside`), and pandoc reads the
    lessons while WeasyPrint loads (:func:`pubkit.document.markdown.read_ahead`): each is converted
    here, once, for both of its workers.
    """
    if not lessons:
        return iter(())
    jobs = jobs or default_jobs()
    few = len(lessons) < jobs  # cores to spare
    # A few lessons are read by pandoc while WeasyPrint loads (a course's, in the workers).
    read = read_ahead(lessons if few else (), config.root)
    from pubkit.engines.pdf import warm  # WeasyPrint is loaded only when a lesson is to be set

    aside = _aside(names) if few else ()
    main = tuple(name for name in names if name not in aside)
    # What is set aside prepares in its own worker, meanwhile.
    warm(theme, config, main, (lesson.language or config.language for lesson in lessons))
    read()
    parts: list[_Part] = [(lesson, None) for lesson in lessons]
    parts += [(lesson, name) for lesson in lessons for name in aside]
    set_part = partial(_render_part, config=config, theme=theme, names=main, date=date)
    results = render_isolated(parts, set_part, jobs, where=lambda part: part[0].path, usage=usage)
    if not aside:  # every part is a whole lesson
        return ((lesson, outcome) for (lesson, _), outcome in results)  # type: ignore[misc]
    return _rejoined(list(results), names)


#: A lesson's share of work for one worker: the lesson and every edition that follows its
#: pdf edition (None), or one edition set beside it (:func:`_aside`).
_Part = tuple[Lesson, str | None]


def _aside(names: tuple[str, ...]) -> tuple[str, ...]:
    """The editions that can be set beside the pdf edition, in a worker of their own, when
    there are cores to spare (fewer lessons than jobs): the paged editions other than the
    pdf, which need nothing from it. The EPUB follows the pdf's pages, so stays with it."""
    return tuple(name for name in names if name != "pdf" and EDITIONS[name].paged)


def _rejoined(
    results: Sequence[tuple[_Part, LessonOutcome | Rendered | LessonError]], names: tuple[str, ...]
) -> Iterator[tuple[Lesson, LessonOutcome | LessonError]]:
    """Each lesson's outcome, with the editions set beside it back in their place; the
    lesson fails if any of its parts did."""
    beside: dict[str, list[tuple[str, Rendered | LessonError]]] = {}
    for (lesson, name), outcome in results:
        if name is not None:
            assert not isinstance(outcome, LessonOutcome)
            beside.setdefault(lesson.id, []).append((name, outcome))
    for (lesson, name), outcome in results:
        if name is not None:
            continue
        assert not isinstance(outcome, Rendered)
        others = dict(beside.get(lesson.id, ()))
        failures = [o for o in others.values() if isinstance(o, LessonError)]
        if isinstance(outcome, LessonOutcome) and failures:
            outcome = failures[0]
        if isinstance(outcome, LessonOutcome):
            done = {
                **outcome.rendered,
                **{n: r for n, r in others.items() if isinstance(r, Rendered)},
            }
            outcome = replace(outcome, rendered={n: done[n] for n in names if n in done})
        yield lesson, outcome


def _render_part(
    part: _Part, config: Config, theme: Theme, names: tuple[str, ...], date: str | None
) -> LessonOutcome | Rendered:
    """Parse, measure and render one lesson's editions ``names``, or the one edition
    set beside them, all in memory.

    Whatever goes wrong fails this lesson only: an unexpected exception (a fault in pubkit
    or an engine, set off by this manuscript) becomes an error naming it, and the rest of
    the course is still built. PUBKIT_DEBUG=1 lets it through, with its traceback.
    """
    lesson, aside = part
    try:
        if aside is not None:
            return _render_aside(lesson, config, theme, aside, date)
        return _render_editions(lesson, config, theme, names, date)
    except (PubkitError, MemoryError):  # a lesson's memory bound: see pubkit.course.workers
        raise
    except RecursionError:
        raise LessonError.at(lesson.path, None, NESTS_TOO_DEEPLY) from None
    except Exception as exc:
        if os.environ.get("PUBKIT_DEBUG"):
            raise
        message = f"internal error ({type(exc).__name__}: {exc}); this is a bug in pubkit"
        raise LessonError.at(lesson.path, None, message) from exc


def _render_editions(
    lesson: Lesson, config: Config, theme: Theme, names: tuple[str, ...], date: str | None
) -> LessonOutcome:
    document = convert(lesson, config.root)
    figures = _figures(lesson, document, config)

    def job(name: str, figures: Figures, pdf: Rendered | None = None) -> RenderJob:
        return RenderJob(lesson, document, figures, config, theme, EDITIONS[name], date, pdf)

    # The page count is a reading figure of every edition, so the pdf edition is always
    # rendered, even when only the EPUB was asked for.
    pdf = renderer(EDITIONS["pdf"])(job("pdf", figures))
    assert pdf.pages is not None
    figures = figures.with_pages(pdf.pages)
    rendered = {"pdf": pdf} if "pdf" in names else {}
    for name in names:
        if name != "pdf":
            rendered[name] = renderer(EDITIONS[name])(job(name, figures, pdf))
    return LessonOutcome(
        rendered,
        figures,
        document,
        thumbnail=downloads.thumbnail(pdf.data),
        fragment=modulebook.fragment(job("pdf", figures, pdf)),
    )


def _figures(lesson: Lesson, document: Document, config: Config) -> Figures:
    """Words and minutes; the pages are known once the pdf edition is set."""
    words = count_words(document.text)
    return Figures(words, reading_minutes(words, config.words_per_minute, lesson.reading_minutes))


def _render_aside(
    lesson: Lesson, config: Config, theme: Theme, name: str, date: str | None
) -> Rendered:
    """Edition ``name`` of the lesson by itself (see :func:`_aside`)."""
    document = convert(lesson, config.root)
    figures = _figures(lesson, document, config)
    edition = EDITIONS[name]
    return renderer(edition)(RenderJob(lesson, document, figures, config, theme, edition, date))


def _write_output(out: Path, relative: Path, rendered: Rendered) -> dict[str, Any]:
    """Write one output file; its manifest record."""
    write_atomic(out / relative, rendered.data)
    record: dict[str, Any] = {
        "path": relative.as_posix(),
        "bytes": len(rendered.data),
        "sha256": sha256(rendered.data),
    }
    if rendered.pages is not None:
        record["pages"] = rendered.pages
    return record


def _write_lesson(lesson: Lesson, out: Path, outcome: LessonOutcome) -> dict[str, Any]:
    """Write the lesson's editions, thumbnail and cached fragment; its manifest entry."""
    editions = {
        name: _write_output(out, output_path(lesson, name), result)
        for name, result in outcome.rendered.items()
    }
    thumbnail = Path("thumbnails") / lesson.module.folder.name / (lesson.path.stem + ".png")
    write_atomic(out / _fragment_path(lesson.id), outcome.fragment.to_json())
    figures = outcome.figures
    return {
        "id": lesson.id,
        "module": {"number": lesson.module.number, "title": lesson.module.title},
        "lesson": lesson.number,
        "title": lesson.title,
        "subtitle": lesson.subtitle,
        "language": outcome.fragment.language,
        "words": figures.words,
        "minutes": figures.minutes,
        "pages": figures.pages,
        "has_takeaways": outcome.document.has_takeaways,
        "editions": editions,
        "thumbnail": _write_output(out, thumbnail, Rendered(outcome.thumbnail)),
    }


def _files(entry: Mapping[str, Any]) -> dict[str, Any]:
    """Every file a lesson's manifest entry records: its editions and its thumbnail."""
    return {**entry["editions"], "thumbnail": entry["thumbnail"]}


def _fragment_path(lesson_id: str) -> Path:
    return Path(CACHE_DIR) / "fragments" / f"{lesson_id}.json"


def _read_fragment(out: Path, lesson_id: str) -> Fragment:
    return Fragment.from_json((out / _fragment_path(lesson_id)).read_bytes())


def _read_state(out: Path) -> dict[str, Any]:
    """The previous build's record of what it built from what; empty when there is none,
    or when it was written by another version of this format."""
    state = read_json(out / STATE_NAME)
    if not isinstance(state, dict) or state.get("format") != STATE_FORMAT:
        return {"format": STATE_FORMAT, "lessons": {}, "collections": {}}
    return state


def _theme_digest(theme: Theme) -> str:
    """One digest of every file of the theme (stylesheets, templates, fonts)."""
    parts: list[bytes | str] = []
    for folder in theme.folders:
        for path in sorted(p for p in folder.rglob("*") if p.is_file()):
            parts += [path.relative_to(folder).as_posix(), path.read_bytes()]
    return fingerprint(parts)


@cache
def code_digest() -> str:
    """One digest of pubkit's own code, so that a changed pubkit rebuilds everything even
    before its version number changes."""
    package = Path(__file__).parent
    files = sorted(p for p in package.rglob("*") if p.suffix in {".py", ".lua"} and p.is_file())
    return fingerprint(
        part for path in files for part in (path.relative_to(package).as_posix(), path.read_bytes())
    )


def _manifest(
    config: Config,
    out: Path,
    results: list[LessonResult],
    state: Mapping[str, Any],
    kept: set[str] | None,
) -> dict[str, Any]:
    """This run's lessons, plus earlier outputs still on disk, and the module collections.

    ``kept`` limits the earlier outputs to those ids (a whole-course build keeps only
    lessons that failed this time); None keeps every one (a build of some lessons).
    """
    entries = {r.lesson.id: r.entry for r in results}
    for lesson_id, record in state["lessons"].items():
        if lesson_id in entries or (kept is not None and lesson_id not in kept):
            continue
        if outputs_intact(out, _files(record["entry"])):
            entries[lesson_id] = record["entry"]
    collections = [
        record["entry"]
        for record in state["collections"].values()
        if outputs_intact(out, record["entry"]["editions"])
    ]
    return {
        "generator": f"pubkit {__version__}",
        "course": {
            "title": config.title,
            "publisher": config.publisher,
            "language": config.language,
        },
        "lessons": sorted(entries.values(), key=lambda e: (e["module"]["number"], e["lesson"])),
        "collections": sorted(collections, key=lambda e: e["module"]["number"]),
    }
