"""Turn a course's lessons into their editions, set in memory on bounded workers.

Each lesson is parsed, measured and rendered in every edition asked for, in a worker
process of its own (:mod:`pubkit.course.workers`); nothing is written here (on a
cluster, the build may write a lesson where it was set: ``where_set``). The edition
that sets pages (:data:`pubkit.editions.PAGES`) is always set first: its page count is
a reading figure of every edition, and its pages are the EPUB's page list.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pubkit.course import downloads, modulebook
from pubkit.course.modulebook import Fragment
from pubkit.course.workers import Usage, default_jobs, render_isolated, send_early
from pubkit.document.ast import plain_text
from pubkit.document.blocks import Arrangement
from pubkit.document.links import Course
from pubkit.document.markdown import (
    NESTS_TOO_DEEPLY,
    Document,
    Reading,
    convert,
    for_edition,
    read_ahead,
)
from pubkit.document.metrics import Figures, count_words, reading_minutes, reading_rate
from pubkit.document.render import Rendered, RenderJob
from pubkit.editions import EDITIONS, PAGES, Edition
from pubkit.engines import renderer
from pubkit.engines.glyphs import missing_glyphs
from pubkit.errors import Diagnostic, LessonError, PubkitError
from pubkit.sources import bibliography
from pubkit.sources.config import Config
from pubkit.sources.manuscript import Lesson
from pubkit.sources.theme import Theme

if TYPE_CHECKING:
    from pubkit.course.cluster import Cluster


@dataclass(frozen=True)
class LessonOutcome:
    """One lesson set in memory, before anything is written."""

    rendered: dict[str, Rendered]
    #: The reading figures of the edition that sets pages (the manifest's).
    figures: Figures
    document: Document
    #: The first page of the PDF edition, for the downloads page.
    thumbnail: bytes
    #: The lesson as its module's collection sets it.
    fragment: Fragment
    #: What EPUBCheck found in its EPUB where it was set (a cluster's worker); None: the
    #: build checks it.
    checked: tuple[Diagnostic, ...] | None = None

    @property
    def notes(self) -> list[Diagnostic]:
        """What the author should know of the lesson, each fault once: the Markdown's
        warnings, then the editions' (one that not every edition found names the editions
        that did), then what the pages' proofreading found."""
        # The Markdown's own warnings stand as they are, whatever an edition also found.
        found: dict[Diagnostic, list[str] | None] = dict.fromkeys(self.document.warnings)
        for name, rendered in self.rendered.items():
            for note in rendered.diagnostics:
                if (names := found.setdefault(note, [])) is not None:
                    names.append(name)
        # The paged editions' messages are the same engine's; the others name their own.
        paged = {name for name in self.rendered if EDITIONS[name].paged}
        notes = [
            _naming(note, names) if names and paged > set(names) else note
            for note, names in found.items()
        ]
        return notes + [f for rendered in self.rendered.values() for f in rendered.findings]

    def judged(
        self, found: Sequence[Diagnostic], strict: bool
    ) -> tuple[list[Diagnostic], list[Diagnostic]]:
        """The lesson's notes and errors: its own :attr:`notes` and what EPUBCheck
        ``found`` in its EPUB; under ``strict``, every note an error. A lesson with an
        error is not written."""
        notes = [*self.notes, *(d for d in found if not d.is_error)]
        errors = [d for d in found if d.is_error]
        if strict:
            errors += [note.as_error() for note in notes]
            notes = []
        return notes, errors


@dataclass(frozen=True)
class WrittenLesson:
    """A lesson written where it was set (a cluster's worker that sees the output
    folder): what the build records of it, without its editions' bytes."""

    #: Its manifest entry.
    entry: Mapping[str, Any]
    #: What the author should know of it: its notes and EPUBCheck's warnings.
    notes: tuple[Diagnostic, ...]
    #: The files it pulls in (pictures), for the build record.
    files: tuple[Path, ...]


#: What is done to a lesson's outcome on the cluster's worker that set it.
WhereSet = Callable[[Lesson, LessonOutcome], LessonOutcome | WrittenLesson]


def _language(lesson: Lesson, config: Config) -> str:
    return lesson.language or config.language


def _naming(note: Diagnostic, editions: list[str]) -> Diagnostic:
    return replace(note, message=f"{', '.join(editions)}: {note.message}")


def set_lessons(
    lessons: Sequence[Lesson],
    config: Config,
    theme: Theme,
    names: tuple[str, ...],
    date: str | None,
    jobs: int | None = None,
    usage: Usage | None = None,
    course: Course | None = None,
    cluster: Cluster | None = None,
    early: Callable[[Lesson, Fragment], None] | None = None,
    validate: bool = False,
    where_set: WhereSet | None = None,
) -> Iterator[tuple[Lesson, LessonOutcome | WrittenLesson | LessonError]]:
    """Set ``lessons`` in bounded worker processes (:mod:`pubkit.course.workers`), in order;
    on a Dask ``cluster``'s workers when one is given (:mod:`pubkit.course.cluster`).

    Fonts, stylesheets and hyphenation dictionaries are loaded here first, so the forked
    workers share them. With fewer lessons than jobs (``pubkit build LESSON``), the cores
    to spare set each lesson's handout beside it (:func:`_aside`), and pandoc reads the
    lessons while WeasyPrint loads (:func:`pubkit.document.markdown.read_ahead`): each is converted
    here, once, for both of its workers; and each lesson's fragment is given to ``early``
    as soon as its pages are set, before its other editions (its module's collection can
    start meanwhile on the core that set its handout). On a cluster, with ``validate``,
    each EPUB is run through EPUBCheck on the worker that set it
    (:attr:`LessonOutcome.checked`), so that the build is not every EPUB's checker; and
    each outcome is given to ``where_set`` there, whose answer comes back instead (the
    lesson written where it was set: :class:`WrittenLesson`).
    """
    if not lessons:
        return iter(())
    if cluster is not None:  # each lesson a task, its engines loaded on the workers
        languages = (lesson.language or config.language for lesson in lessons)
        cluster.warm(theme, config, names, languages)
        set_whole: Callable[[_Part], LessonOutcome | WrittenLesson | Rendered] = partial(
            _render_part, config=config, theme=theme, names=names, date=date, course=course
        )
        if validate and "epub" in names:
            set_whole = partial(_checked_where_set, set_part=set_whole)
        if where_set is not None:
            set_whole = partial(_finished_where_set, set_part=set_whole, finish=where_set)
        parts: list[_Part] = [(lesson, None) for lesson in lessons]
        on_cluster = cluster.run(parts, set_whole, _part_source, usage)
        return ((lesson, outcome) for (lesson, _), outcome in on_cluster)  # type: ignore[misc]
    jobs = jobs or default_jobs()
    few = len(lessons) < jobs  # cores to spare

    # A few lessons are read by pandoc while WeasyPrint loads (a course's, in the workers).
    read = read_ahead(
        lessons if few else (), config.root, course, lambda lesson: _reading(lesson, config, theme)
    )
    from pubkit.engines.pdf import warm  # WeasyPrint is loaded only when a lesson is to be set

    aside = _aside(names) if few else ()
    main = tuple(name for name in names if name not in aside)
    # What is set aside prepares in its own worker, meanwhile.
    warm(theme, config, main, (lesson.language or config.language for lesson in lessons))
    read()
    parts = [(lesson, None) for lesson in lessons]
    parts += [(lesson, name) for lesson in lessons for name in aside]
    set_part = partial(
        _render_part, config=config, theme=theme, names=main, date=date, course=course
    )
    on_early = (lambda part, value: early(part[0], value)) if early and few else None
    results = render_isolated(parts, set_part, jobs, _part_source, usage, on_early)
    if not aside:  # every part is a whole lesson
        return ((lesson, outcome) for (lesson, _), outcome in results)  # type: ignore[misc]
    return _rejoined(list(results), names)


#: A lesson's share of work for one worker: the lesson and every edition that follows the
#: edition that sets its pages (None), or one edition set beside it (:func:`_aside`).
_Part = tuple[Lesson, str | None]


def _part_source(part: _Part) -> Path:
    return part[0].path


def _aside(names: tuple[str, ...]) -> tuple[str, ...]:
    """The editions that can be set beside the edition that sets pages, in a worker of
    their own, when there are cores to spare (fewer lessons than jobs): the other paged
    editions, which need nothing from it. The EPUB follows its pages, so stays with it."""
    return tuple(name for name in names if name != PAGES.name and EDITIONS[name].paged)


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
    part: _Part,
    config: Config,
    theme: Theme,
    names: tuple[str, ...],
    date: str | None,
    course: Course | None,
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
            return _render_aside(lesson, config, theme, aside, date, course)
        return _render_editions(lesson, config, theme, names, date, course)
    except (PubkitError, MemoryError):  # a lesson's memory bound: see pubkit.course.workers
        raise
    except RecursionError:
        raise LessonError.at(lesson.path, None, NESTS_TOO_DEEPLY) from None
    except Exception as exc:
        if os.environ.get("PUBKIT_DEBUG"):
            raise
        message = f"internal error ({type(exc).__name__}: {exc}); this is a bug in pubkit"
        raise LessonError.at(lesson.path, None, message) from exc


def _checked_where_set(
    part: _Part, set_part: Callable[[_Part], LessonOutcome | WrittenLesson | Rendered]
) -> LessonOutcome | WrittenLesson | Rendered:
    """The lesson's editions, its EPUB run through EPUBCheck where it was set."""
    from pubkit.course.validate import checked_where_set, lesson_check, warm_checker

    warm_checker()
    outcome = set_part(part)
    if isinstance(outcome, LessonOutcome) and (epub := outcome.rendered.get("epub")):
        outcome = replace(outcome, checked=checked_where_set(epub.data, *lesson_check(part[0])))
    return outcome


def _finished_where_set(
    part: _Part,
    set_part: Callable[[_Part], LessonOutcome | WrittenLesson | Rendered],
    finish: WhereSet,
) -> LessonOutcome | WrittenLesson | Rendered:
    """The lesson's editions, given to ``finish`` where they were set."""
    outcome = set_part(part)
    return finish(part[0], outcome) if isinstance(outcome, LessonOutcome) else outcome


def _render_editions(
    lesson: Lesson,
    config: Config,
    theme: Theme,
    names: tuple[str, ...],
    date: str | None,
    course: Course | None,
) -> LessonOutcome:
    read = _convert(lesson, config, theme, course)
    header = (lesson.module.title, lesson.title, lesson.subtitle or "", *lesson.authors)
    every_word = plain_text(read.ast["blocks"])  # what any edition sets, instructors' too
    if unset := missing_glyphs(lesson, (*header, every_word), theme):
        read = replace(read, warnings=(*read.warnings, *unset))

    def job(edition: Edition, pages: Rendered | None = None) -> RenderJob:
        """The edition's job: its document (instructor notes, solutions where it puts
        them) and its reading figures, the page count of the edition that sets pages."""
        document = for_edition(read, lesson, arrangement(edition, config))
        figures = _figures(lesson, document, config)
        figures = figures.with_pages(pages.pages) if pages and pages.pages else figures
        return RenderJob(lesson, document, figures, config, theme, edition, date, pages)

    # The page count is a reading figure of every edition, so the edition that sets pages
    # is always rendered, even when only the EPUB was asked for.
    first = job(PAGES)
    paged = renderer(PAGES)(first)
    assert paged.pages is not None
    # Its module's collection may start from it while the other editions are set.
    fragment = modulebook.fragment(job(PAGES, paged))
    send_early(fragment)
    rendered = {PAGES.name: paged} if PAGES.name in names else {}
    for name in names:
        if name != PAGES.name:
            rendered[name] = renderer(EDITIONS[name])(job(EDITIONS[name], paged))
    return LessonOutcome(
        rendered,
        first.figures.with_pages(paged.pages),
        first.document,
        thumbnail=downloads.thumbnail(paged.data),
        fragment=fragment,
    )


def arrangement(edition: Edition, config: Config) -> Arrangement:
    """What ``edition`` does with solutions and instructor notes (pubkit.yaml's
    ``solutions`` over the edition's own)."""
    return Arrangement(solutions=config.solutions_in(edition.name), instructor=edition.instructor)


def _convert(
    lesson: Lesson, config: Config, theme: Theme, course: Course | None, backwards: bool = False
) -> Document:
    reading = _reading(lesson, config, theme)
    return convert(lesson, config.root, course, reading, backwards=backwards)


def _reading(lesson: Lesson, config: Config, theme: Theme) -> Reading:
    """What the lesson is read with; a bibliography that does not read fails the lesson."""
    try:
        cites = bibliography.for_lesson(config, lesson)
    except PubkitError as exc:
        raise LessonError(exc.diagnostics) from None
    return Reading(theme.words(_language(lesson, config)), theme.blocks, cites, theme.numbering)


def _figures(lesson: Lesson, document: Document, config: Config) -> Figures:
    """Words and minutes of what the document's edition sets; the pages are known once
    the edition that sets them is set."""
    words = count_words(document.text)
    rate = config.words_per_minute or reading_rate(lesson.language or config.language)
    return Figures(words, reading_minutes(words, rate, lesson.reading_minutes))


def _render_aside(
    lesson: Lesson, config: Config, theme: Theme, name: str, date: str | None, course: Course | None
) -> Rendered:
    """Edition ``name`` of the lesson by itself (see :func:`_aside`)."""
    edition = EDITIONS[name]
    # Its formulas drawn from the last, while the lesson's worker draws from the first.
    read = _convert(lesson, config, theme, course, backwards=True)
    document = for_edition(read, lesson, arrangement(edition, config))
    figures = _figures(lesson, document, config)
    return renderer(edition)(RenderJob(lesson, document, figures, config, theme, edition, date))
