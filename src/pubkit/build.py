"""Turn a course folder into its editions: the pipeline, read top to bottom in :func:`build`."""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import Any

from . import __version__, validate
from .config import Config, load_config
from .editions import EDITIONS
from .errors import ConfigError, Diagnostic, LessonError, PubkitError
from .manuscript import Collection, Lesson, collect, strictly
from .markdown import NESTS_TOO_DEEPLY, Document, convert
from .markdown import read as read_markdown
from .metrics import Figures, count_words, reading_minutes
from .output import (
    MANIFEST_NAME,
    STATE_NAME,
    fingerprint,
    outputs_intact,
    read_json,
    sha256,
    write_atomic,
    write_json,
)
from .render import Rendered, RenderJob
from .theme import Theme, check_stylesheets, load_theme
from .workers import default_jobs, render_isolated

#: One lesson set in memory: its editions, reading figures and parsed document.
LessonOutcome = tuple[dict[str, Rendered], Figures, Document]

#: Called once per lesson as it finishes: (lesson, index, total, skipped).
Progress = Callable[[Lesson, int, int, bool], None]


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
        rendered, _, document = outcome
        diagnostics.extend(document.warnings)
        findings.extend(f for result in rendered.values() for f in result.findings)
    return collection, diagnostics, findings


def check_epubs(
    root: Path, targets: Iterable[Path] = (), out: Path | None = None
) -> tuple[Collection, list[Diagnostic], list[Diagnostic]]:
    """Run EPUBCheck on every lesson's built EPUB; its messages point at manuscript lines.

    Returns the collection, its diagnostics and EPUBCheck's findings.
    """
    config, collection, warnings = check(root, targets)
    out = (out or config.output_dir).resolve()
    findings = validate.check_epubs(
        (lesson, out / output_path(lesson, "epub")) for lesson in collection.lessons
    )
    return collection, [*warnings, *collection.diagnostics], findings


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
    """Build every lesson under ``targets`` (default: the whole manuscript folder).

    Everything is gathered and validated first; a lesson's files are written only
    once all of its editions have rendered, so a failure never leaves half an output.
    ``strict`` makes every warning an error, failing the lesson it is about. Lessons are
    set ``jobs`` at a time (default: one per core), each in its own bounded process
    (:mod:`pubkit.workers`); the output is the same for any number of jobs.
    """
    targets = tuple(targets)
    config, collection, warnings = check(root, targets, settings, strict)
    theme = load_theme(config.styles_dir)
    names = tuple(formats) if formats else config.editions
    out = (out or config.output_dir).resolve()
    state = read_json(out / STATE_NAME) or {}
    date = source_date() or config.date
    theme_digest = _theme_digest(theme)

    results: list[LessonResult] = []
    failed = list(collection.failed)
    diagnostics = list(collection.diagnostics)
    total = len(collection.lessons)
    keys = {
        lesson.id: _fingerprint(lesson, config, theme_digest, names, date, strict)
        for lesson in collection.lessons
    }
    fresh = {
        lesson.id
        for lesson in collection.lessons
        if not force
        and (previous := state.get(lesson.id))
        and previous["key"] == keys[lesson.id]
        and outputs_intact(out, previous["entry"]["editions"])
    }
    work = [lesson for lesson in collection.lessons if lesson.id not in fresh]
    outcomes = _set_lessons(work, config, theme, names, date, jobs)
    for index, lesson in enumerate(collection.lessons, start=1):
        if lesson.id in fresh:
            results.append(LessonResult(lesson, state[lesson.id]["entry"], skipped=True))
            if progress:
                progress(lesson, index, total, True)
            continue
        _, outcome = next(outcomes)
        if isinstance(outcome, PubkitError):
            diagnostics.extend(outcome.diagnostics)
            failed.append(lesson.path)
            continue
        rendered, figures, document = outcome
        notes = [
            *document.warnings,
            *(d for result in rendered.values() for d in (*result.diagnostics, *result.findings)),
        ]
        if strict and notes:
            diagnostics.extend(note.as_error() for note in notes)
            failed.append(lesson.path)
            continue
        diagnostics.extend(notes)
        entry = _write_lesson(lesson, out, rendered, figures, document.has_takeaways)
        state[lesson.id] = {"key": keys[lesson.id], "entry": entry}
        results.append(LessonResult(lesson, entry, skipped=False))
        if progress:
            progress(lesson, index, total, False)

    manifest = out / MANIFEST_NAME
    kept = {f"{path.parent.name}/{path.stem}" for path in failed} if not targets else None
    write_json(manifest, _manifest(config, out, results, state, kept))
    write_json(out / STATE_NAME, state)
    return BuildResult(
        built=tuple(results),
        failed=tuple(dict.fromkeys(failed)),
        diagnostics=tuple(diagnostics),
        manifest=manifest,
        warnings=tuple(warnings),
    )


def _set_lessons(
    lessons: Sequence[Lesson],
    config: Config,
    theme: Theme,
    names: tuple[str, ...],
    date: str | None,
    jobs: int | None = None,
) -> Iterator[tuple[Lesson, LessonOutcome | LessonError]]:
    """Set ``lessons`` in bounded worker processes (:mod:`pubkit.workers`), in order.

    Fonts and stylesheets are loaded here first, so the forked workers share them.
    """
    if not lessons:
        return iter(())
    from .pdf import warm  # WeasyPrint is loaded only when a lesson is to be set

    warm(theme, config, names)
    set_lesson = partial(_render_lesson, config=config, theme=theme, names=names, date=date)
    return render_isolated(lessons, set_lesson, jobs or default_jobs())


def _render_lesson(
    lesson: Lesson, config: Config, theme: Theme, names: tuple[str, ...], date: str | None
) -> LessonOutcome:
    """Parse, measure and render one lesson's editions, all in memory.

    Whatever goes wrong fails this lesson only: an unexpected exception (a fault in pubkit
    or an engine, set off by this manuscript) becomes an error naming it, and the rest of
    the course is still built. PUBKIT_DEBUG=1 lets it through, with its traceback.
    """
    try:
        return _render_editions(lesson, config, theme, names, date)
    except (PubkitError, MemoryError):  # a lesson's memory bound: see pubkit.workers
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
    words = count_words(document.text)
    figures = Figures(
        words, reading_minutes(words, config.words_per_minute, lesson.reading_minutes)
    )

    def job(name: str, figures: Figures, pdf: Rendered | None = None) -> RenderJob:
        return RenderJob(lesson, document, figures, config, theme, EDITIONS[name], date, pdf)

    # The page count is a reading figure of every edition, so the pdf edition is always
    # rendered, even when only the EPUB was asked for.
    pdf = EDITIONS["pdf"].renderer(job("pdf", figures))
    assert pdf.pages is not None
    figures = figures.with_pages(pdf.pages)
    rendered = {"pdf": pdf} if "pdf" in names else {}
    for name in names:
        if name != "pdf":
            rendered[name] = EDITIONS[name].renderer(job(name, figures, pdf))
    return rendered, figures, document


def _write_lesson(
    lesson: Lesson,
    out: Path,
    rendered: Mapping[str, Rendered],
    figures: Figures,
    has_takeaways: bool,
) -> dict[str, Any]:
    editions: dict[str, Any] = {}
    for name, result in rendered.items():
        relative = output_path(lesson, name)
        write_atomic(out / relative, result.data)
        record: dict[str, Any] = {
            "path": relative.as_posix(),
            "bytes": len(result.data),
            "sha256": sha256(result.data),
        }
        if result.pages is not None:
            record["pages"] = result.pages
        editions[name] = record
    return {
        "id": lesson.id,
        "module": {"number": lesson.module.number, "title": lesson.module.title},
        "lesson": lesson.number,
        "title": lesson.title,
        "subtitle": lesson.subtitle,
        "words": figures.words,
        "minutes": figures.minutes,
        "pages": figures.pages,
        "has_takeaways": has_takeaways,
        "editions": editions,
    }


def _theme_digest(theme: Theme) -> str:
    """One digest of every file of the theme (stylesheets, templates, fonts)."""
    parts: list[bytes | str] = []
    for folder in theme.folders:
        for path in sorted(p for p in folder.rglob("*") if p.is_file()):
            parts += [path.relative_to(folder).as_posix(), path.read_bytes()]
    return fingerprint(parts)


def _fingerprint(
    lesson: Lesson,
    config: Config,
    theme_digest: str,
    names: tuple[str, ...],
    date: str | None,
    strict: bool,
) -> str:
    """Everything an output depends on: a change to any of it rebuilds the lesson (and
    ``--strict`` looks at every lesson's warnings afresh)."""
    parts: list[bytes | str] = [__version__, ",".join(names), date or "", theme_digest]
    parts.append("strict" if strict else "")
    parts.append(repr(replace(config, lines={})))  # pubkit.yaml and command-line settings
    parts += [lesson.path.read_bytes(), lesson.module.source.read_bytes()]
    return fingerprint(parts)


def _manifest(
    config: Config,
    out: Path,
    results: list[LessonResult],
    state: Mapping[str, Any],
    kept: set[str] | None,
) -> dict[str, Any]:
    """This run's lessons, plus earlier outputs still on disk.

    ``kept`` limits the earlier outputs to those ids (a whole-course build keeps only
    lessons that failed this time); None keeps every one (a build of some lessons).
    """
    entries = {r.lesson.id: r.entry for r in results}
    for lesson_id, record in state.items():
        if lesson_id in entries or (kept is not None and lesson_id not in kept):
            continue
        if outputs_intact(out, record["entry"]["editions"]):
            entries[lesson_id] = record["entry"]
    return {
        "generator": f"pubkit {__version__}",
        "course": {
            "title": config.title,
            "publisher": config.publisher,
            "language": config.language,
        },
        "lessons": sorted(entries.values(), key=lambda e: (e["module"]["number"], e["lesson"])),
    }
