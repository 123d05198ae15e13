"""Turn a course's manuscripts into what their links can lead to: every lesson, with the
sections of those a link names a section of (:class:`pubkit.document.links.Course`)."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterator, Sequence
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


def course_links(
    config: Config, lessons: Sequence[Lesson], linking: Sequence[Lesson], editions: Sequence[str]
) -> Course:
    """The course as the links of ``linking`` (the lessons about to be read) see it:
    every lesson of ``lessons``, and the sections of each one they name a section of
    (read by pandoc, all at once)."""
    from pubkit.document.markdown import READER  # a no-op build reads no lesson

    by_path = {lesson.path.resolve(): lesson for lesson in lessons}
    wanted = {
        path: by_path[path]
        for lesson in linking
        for path, section in written_links(lesson)
        if section and path in by_path
    }
    reading = [
        (path, pandoc.parse(lesson.body, READER, source=lesson.path))
        for path, lesson in wanted.items()
    ]
    sections: dict[Path, frozenset[str]] = {}
    for path, running in reading:
        try:
            blocks, _ = sanitize(json.loads(running.wait())["blocks"], lambda _source: None)
            sections[path] = frozenset(
                identifiers(blocks)
            )  # raw HTML's ids as its editions write them
        except PubkitError:
            continue  # its own build reports why; links to its sections are not checked
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


def link_key(lesson: Lesson, lessons: dict[Path, Lesson]) -> str:
    """What the lesson's outputs take from the lessons it links to: their numbers, titles
    and places, and the whole text of one whose section it names."""
    parts = []
    for path, section in dict.fromkeys(written_links(lesson)):
        if (target := lessons.get(path)) is not None:
            parts.append(repr(target_of(target)))
            if section:
                parts.append(hashlib.sha256(target.body.encode("utf-8")).hexdigest())
    return "\n".join(parts)
