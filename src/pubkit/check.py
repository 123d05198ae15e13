"""Turn a course folder into its verdict without writing anything: pubkit.yaml, the
manuscripts and their Markdown checked (``pubkit check``), the pages proofread
(``--layout``), the built EPUBs run through EPUBCheck (``--epub``)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pubkit.editions import EDITIONS
from pubkit.errors import ConfigError, Diagnostic, PubkitError, warning
from pubkit.output import output_path
from pubkit.sources import bibliography
from pubkit.sources.config import Config, load_config, source_date
from pubkit.sources.manuscript import Manuscripts, collect, modules_of, strictly
from pubkit.sources.theme import Theme, check_stylesheets, load_theme

if TYPE_CHECKING:
    from pubkit.document.links import Course

# The document's and the course's modules are imported where they are used: a build that
# finds nothing to do (a no-op) needs none of them, and they take a third of its time.


@dataclass(frozen=True)
class Checked:
    """A course that passed the checks every command starts with."""

    config: Config
    manuscripts: Manuscripts
    #: pubkit.yaml's warnings (unknown keys); errors were raised.
    warnings: tuple[Diagnostic, ...]
    #: The lessons or folders asked for; none: the whole course.
    targets: tuple[Path, ...] = ()
    #: Whether warnings are errors (``--strict``).
    strict: bool = False

    @property
    def diagnostics(self) -> list[Diagnostic]:
        """Everything the checks found: pubkit.yaml's warnings, then the lessons'."""
        return [*self.warnings, *self.manuscripts.diagnostics]


def check(
    root: Path,
    targets: Iterable[Path] = (),
    *,
    settings: Mapping[str, Any] | None = None,
    strict: bool = False,
    markdown: bool = False,
) -> Checked:
    """Validate configuration and manuscripts without rendering anything.

    ``settings`` override pubkit.yaml by key (``{"handout.bleed": "3mm"}``). ``strict``
    makes every warning an error: of pubkit.yaml (nothing is built) or of a lesson (that
    lesson fails). ``markdown`` also parses each lesson's Markdown and checks what it
    refers to and its raw HTML (``build`` does this as it renders).
    """
    targets = tuple(targets)
    config, warnings = load_config(root, settings)
    theme = load_theme(config.styles_dir)
    if strict and warnings:
        raise ConfigError([w.as_error() for w in warnings])
    check_stylesheets(theme, config)
    bibliography.check_course(config)
    manuscripts = collect(config, targets)
    if unspoken := _unspoken(config, theme, manuscripts):
        if strict:
            raise ConfigError([w.as_error() for w in unspoken])
        warnings = [*warnings, *unspoken]
    if markdown:
        manuscripts = _read_markdown(manuscripts, config, _course(config, manuscripts, targets))
    if strict:
        manuscripts = strictly(manuscripts)
    return Checked(config, manuscripts, tuple(warnings), targets, strict)


def _unspoken(config: Config, theme: Theme, manuscripts: Manuscripts) -> list[Diagnostic]:
    """A warning for each language of the course the theme has no words for (its lessons'
    headers, boxes and labels then speak English), once, where it is first named."""
    named = [(config.language, config.source, config.line_of("course.language"))]
    named += [
        (lesson.language, lesson.path, lesson.field_lines.get("language"))
        for lesson in manuscripts.lessons
        if lesson.language
    ]
    found: dict[str, Diagnostic] = {}
    for language, path, line in named:
        if language not in found and theme.strings_tag(language) is None:
            found[language] = warning(
                path,
                line,
                f"the theme has no strings for {language!r}: the headers, boxes and labels "
                f"of its lessons are in English (add its words under {language}: in the "
                "theme's strings.yaml)",
            )
    return list(found.values())


def _course(config: Config, manuscripts: Manuscripts, targets: tuple[Path, ...]) -> Course:
    """What the checked lessons' links can lead to: any lesson of the course."""
    from pubkit.course.links import course_links

    everyone = collect(config).lessons if targets else manuscripts.lessons
    return course_links(config, everyone, manuscripts.lessons, config.editions)


def _read_markdown(manuscripts: Manuscripts, config: Config, course: Course) -> Manuscripts:
    from pubkit.document.markdown import Reading
    from pubkit.document.markdown import read as read_markdown

    theme = load_theme(config.styles_dir)
    lessons, failed, diagnostics = [], list(manuscripts.failed), list(manuscripts.diagnostics)
    for lesson in manuscripts.lessons:
        try:
            words = theme.words(lesson.language or config.language)
            cites = bibliography.for_lesson(config, lesson)
            reading = Reading(words, theme.blocks, cites, theme.numbering)
            _, notes, _ = read_markdown(lesson, config.root, course, reading)
        except PubkitError as exc:
            diagnostics.extend(exc.diagnostics)
            failed.append(lesson.path)
            continue
        diagnostics.extend(notes)
        lessons.append(lesson)
    return Manuscripts(tuple(lessons), tuple(diagnostics), tuple(failed))


def check_layout(checked: Checked) -> tuple[list[Diagnostic], list[Diagnostic]]:
    """Lay out every paged edition of the checked lessons in memory and proofread the
    pages; nothing is written.

    Returns what setting the lessons found (lessons that fail to render, the Markdown's
    warnings: errors under ``strict``) and the findings, one per typographic fault.
    """
    from pubkit.course.lessons import LessonOutcome, set_lessons

    config = checked.config
    theme = load_theme(config.styles_dir)
    paged = tuple(name for name in config.editions if EDITIONS[name].paged)
    diagnostics: list[Diagnostic] = []
    findings: list[Diagnostic] = []
    date = source_date() or config.date
    lessons = checked.manuscripts.lessons
    course = _course(config, checked.manuscripts, checked.targets)
    for _lesson, outcome in set_lessons(lessons, config, theme, paged, date, course=course):
        if isinstance(outcome, PubkitError):
            diagnostics.extend(outcome.diagnostics)
            continue
        assert isinstance(outcome, LessonOutcome)  # written where set only on a cluster
        notes = outcome.document.warnings
        diagnostics.extend([note.as_error() for note in notes] if checked.strict else notes)
        findings.extend(f for result in outcome.rendered.values() for f in result.findings)
    return diagnostics, findings


def check_epubs(checked: Checked, out: Path | None = None) -> list[Diagnostic]:
    """Run EPUBCheck on every checked lesson's built EPUB in ``out`` (default: the course's
    output folder) and, for a whole course, on its modules' collected EPUBs; its messages
    point at manuscript lines."""
    from pubkit.course import validate
    from pubkit.course.modulebook import output_path as collection_path

    config, manuscripts = checked.config, checked.manuscripts
    out = (out or config.output_dir).resolve()
    whole = "epub" in config.editions and not checked.targets
    collected = modules_of(manuscripts) if whole else {}
    return validate.check_epubs(
        ((lesson, out / output_path(lesson, "epub")) for lesson in manuscripts.lessons),
        (
            (module.source, members, out / collection_path(module, "epub"))
            for module, members in collected.items()
        ),
    )
