"""Turn a course's manuscripts into what their links can lead to: every lesson, with the
sections of those a link names a section of (:class:`pubkit.document.links.Course`)."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from urllib.parse import unquote, urlsplit

from pubkit.document import pandoc
from pubkit.document.ast import identifiers
from pubkit.document.links import Course, Target
from pubkit.document.sanitize import sanitize
from pubkit.errors import PubkitError
from pubkit.sources.config import Config
from pubkit.sources.manuscript import Lesson

#: What may be a link to a manuscript in a lesson's Markdown or raw HTML: a path ending
#: in ``.md``, with or without ``#section`` (read generously: pandoc decides what is one).
_WRITTEN = re.compile(r"""[^\s()<>"'\[\]]+\.md(?:#[^\s()<>"'\[\]]*)?""", re.IGNORECASE)


def written_links(lesson: Lesson) -> Iterator[tuple[Path, str]]:
    """Each manuscript path the lesson may link to (resolved), with the section named."""
    if ".md" not in lesson.body.lower():  # most lessons: the pattern is slow to fail
        return
    for found in _WRITTEN.finditer(lesson.body):
        parts = urlsplit(found[0])
        if parts.scheme or parts.netloc:
            continue
        path = unquote(parts.path)
        if path and not path.startswith("/"):
            yield (lesson.path.parent / path).resolve(), unquote(parts.fragment)


#: The identifiers of lessons' sections, by the digest of each lesson's text (see
#: :func:`section_ids`); None for a text pandoc could not read.
SectionIds = Mapping[str, tuple[str, ...] | None]


def text_digest(lesson: Lesson) -> str:
    return hashlib.sha256(lesson.body.encode("utf-8")).hexdigest()


def named_sections(linking: Iterable[Lesson], lessons: Mapping[Path, Lesson]) -> list[Lesson]:
    """The lessons of ``lessons`` (by resolved path) a link of ``linking`` names a section of."""
    named = {
        path: lessons[path]
        for lesson in linking
        for path, section in written_links(lesson)
        if section and path in lessons
    }
    return list(named.values())


def section_ids(
    lessons: Iterable[Lesson], known: SectionIds | None = None
) -> dict[str, tuple[str, ...] | None]:
    """The identifiers each of ``lessons`` gives its sections and elements (what a link's
    ``#section`` may name), by the digest of its text: taken from ``known`` (an earlier
    build's), else read by pandoc, all the texts at once."""
    known = known or {}
    found: dict[str, tuple[str, ...] | None] = {}
    reading = []
    for lesson in lessons:
        digest = text_digest(lesson)
        if digest in known:
            found[digest] = known[digest]
        elif digest not in found:
            from pubkit.document.markdown import READER  # a no-op build reads no lesson

            found[digest] = None
            reading.append((digest, pandoc.parse(lesson.body, READER, source=lesson.path)))
    for digest, running in reading:
        try:
            blocks, _ = sanitize(pandoc.json_value(running.wait())["blocks"], lambda _source: None)
        except PubkitError:
            continue  # its own build reports why; links to its sections are not checked
        found[digest] = tuple(sorted(identifiers(blocks)))  # raw HTML's ids as editions write them
    return found


def course_links(
    config: Config,
    lessons: Sequence[Lesson],
    linking: Sequence[Lesson],
    editions: Sequence[str],
    known: SectionIds | None = None,
) -> Course:
    """The course as the links of ``linking`` (the lessons about to be read) see it:
    every lesson of ``lessons``, and the sections of each one they name a section of
    (from ``known``, :func:`section_ids`, or read by pandoc)."""
    by_path = {lesson.path.resolve(): lesson for lesson in lessons}
    named = named_sections(linking, by_path)
    ids = section_ids(named, known)
    sections = {}
    for lesson in named:
        if (found := ids[text_digest(lesson)]) is not None:
            sections[lesson.path.resolve()] = frozenset(found)
    targets = {
        path: replace(target_of(lesson), sections=sections.get(path))
        for path, lesson in by_path.items()
    }
    return Course(
        root=config.root.resolve(),
        manuscripts=(config.root / config.manuscript_dir).resolve(),
        url=config.url,
        lessons=targets,
        pdf_folder="pdf" if "pdf" in editions or "handout" not in editions else "handout",
    )


def target_of(lesson: Lesson) -> Target:
    module = lesson.module
    return Target(lesson.id, lesson.number, lesson.title, module.number, module.title)


def link_key(lesson: Lesson, lessons: Mapping[Path, Lesson], sections: SectionIds) -> str:
    """What the lesson's outputs take from the lessons it links to: their numbers, titles
    and places, and the identifiers of one whose section it names (``sections``, by
    :func:`section_ids`): an edit to a lesson that leaves those as they were rebuilds
    none of the lessons that link to it."""
    parts = []
    for path, section in dict.fromkeys(written_links(lesson)):
        if (target := lessons.get(path)) is not None:
            parts.append(repr(target_of(target)))
            if section:
                parts.append(repr(sections[text_digest(target)]))
    return "\n".join(parts)
