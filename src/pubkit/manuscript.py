"""Turn manuscript files into validated :class:`Module` and :class:`Lesson` objects."""

from __future__ import annotations

import datetime as dt
import difflib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .config import Config, parse_language
from .errors import Diagnostic, PubkitError, error, warning
from .yamlsrc import YamlMapping, load_mapping

MODULE_FILE = "module.yaml"
LESSON_SUFFIX = ".md"
_FENCE = re.compile(r"^---\s*$")
_FENCE_END = re.compile(r"^(---|\.\.\.)\s*$")
_DIV_OPEN = re.compile(r"^ {0,3}(:{3,})\s*(\{[^}]*\}|[^\s:{}]+)\s*:*\s*$")
_DIV_CLOSE = re.compile(r"^ {0,3}(:{3,})\s*$")
_CODE_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
#: Where a quote mark opens rather than closes: at the start, after a space, a bracket or a dash.
_OPENS_QUOTE = re.compile(r"""(^|(?<=[\s(\[{—–/-]))(["'])""")

LESSON_FIELDS = (
    "lesson",
    "title",
    "subtitle",
    "authors",
    "date",
    "keywords",
    "reading_minutes",
    "language",
)
MODULE_FIELDS = ("number", "title")


@dataclass(frozen=True)
class Module:
    number: int
    title: str
    #: The module's folder; its name is the module's part of every output path.
    folder: Path
    source: Path

    @property
    def label(self) -> str:
        return f"{self.number} · {self.title}"


@dataclass(frozen=True)
class Lesson:
    module: Module
    number: int
    title: str
    path: Path
    #: The Markdown after the front matter, and the 1-based line it starts on.
    body: str
    body_line: int
    subtitle: str | None = None
    authors: tuple[str, ...] = ()
    date: str | None = None
    keywords: tuple[str, ...] = ()
    reading_minutes: int | None = None
    #: The lesson's own language when it differs from the course's (hyphenation, quotes, UI words).
    language: str | None = None
    field_lines: Mapping[str, int] = field(default_factory=dict)

    def line_at(self, offset: int) -> int:
        """The manuscript line (1-based) of character ``offset`` in :attr:`body`."""
        return self.body_line + self.body.count("\n", 0, offset)

    def line_of_text(self, text: str) -> int | None:
        """The manuscript line where rendered ``text`` starts, found by its first words.

        Between two words the Markdown may have markup, a line break or straight quotes
        where the output has curly ones, so any run of non-word characters matches.
        """
        words = [w for w in re.split(r"\W+", text) if w][:6]
        while words:
            pattern = r"\W+".join(re.escape(w) for w in words)
            if len(pattern) >= 4 and (found := re.search(pattern, self.body)):
                return self.line_at(found.start())
            words.pop()
        return None

    @property
    def id(self) -> str:
        """Stable identifier: ``<module-folder>/<lesson-file-stem>``."""
        return f"{self.module.folder.name}/{self.path.stem}"


# --- reading files ---


#: A lesson is a few thousand words; a file far larger is a mistake or an attack.
MAX_MANUSCRIPT_BYTES = 4 * 1024 * 1024


def read_text(path: Path) -> str:
    """Read UTF-8 text, naming the byte and line of the first undecodable byte."""
    if path.stat().st_size > MAX_MANUSCRIPT_BYTES:
        raise PubkitError.at(path, None, "larger than 4 MiB: too large for one lesson")
    data = path.read_bytes()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise PubkitError.at(
            path, line, f"not UTF-8: byte 0x{data[exc.start]:02x} at offset {exc.start}"
        ) from None
    text = text.removeprefix("\ufeff")
    if found := _CONTROL.search(text):
        line = text.count("\n", 0, found.start()) + 1
        column = found.start() - text.rfind("\n", 0, found.start())
        raise PubkitError.at(
            path,
            line,
            f"control character U+{ord(found.group()):04X} at column {column}: "
            "no edition can carry it (XML forbids it); delete it",
        )
    return text


#: Characters XML 1.0 forbids, which no EPUB or tagged PDF may contain.
_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def split_front_matter(text: str, path: Path) -> tuple[YamlMapping, str, int]:
    """Split ``---`` front matter from the body; return (metadata, body, body line)."""
    if not text.strip():
        raise PubkitError.at(path, 1, "empty file: a lesson needs front matter and a body")
    lines = text.splitlines(keepends=True)
    if not _FENCE.match(lines[0]):
        raise PubkitError.at(path, 1, "missing front matter: start the file with a '---' line")
    for index in range(1, len(lines)):
        if _FENCE_END.match(lines[index]):
            meta = load_mapping("".join(lines[1:index]), path, line_offset=1)
            return meta, "".join(lines[index + 1 :]), index + 2
    raise PubkitError.at(path, 1, "front matter opened with '---' is never closed")


# --- field validation ---


def smart_punctuation(text: str) -> str:
    """Typographic quotes, dashes and ellipses in a front-matter text, as pandoc's ``smart``
    extension gives the body: titles and deks read the same as the text beneath them."""
    text = text.replace("---", "\u2014").replace("--", "\u2013").replace("...", "\u2026")
    text = _OPENS_QUOTE.sub(lambda m: "\u201c" if m.group(2) == '"' else "\u2018", text)
    return text.replace('"', "\u201d").replace("'", "\u2019")


class _Fields:
    """Typed access to a YAML mapping that collects every problem."""

    def __init__(self, meta: YamlMapping, path: Path, known: tuple[str, ...]) -> None:
        self.meta = meta
        self.path = path
        self.problems: list[Diagnostic] = []
        for key in meta.values:
            if key not in known:
                hint = difflib.get_close_matches(key, known, n=1)
                suggestion = f"; did you mean '{hint[0]}'?" if hint else ""
                self.problems.append(
                    warning(path, meta.line_of(key), f"unknown field '{key}'{suggestion}")
                )

    def _bad(self, key: str, expected: str) -> None:
        value = self.meta.values[key]
        shown = repr(value) if len(repr(value)) < 40 else repr(value)[:37] + "..."
        self.problems.append(
            error(self.path, self.meta.line_of(key), f"{key}: expected {expected}; got {shown}")
        )

    def _missing(self, key: str) -> None:
        self.problems.append(error(self.path, self.meta.line, f"missing required field '{key}'"))

    def integer(self, key: str, *, required: bool = False, minimum: int = 0) -> int | None:
        value = self.meta.values.get(key)
        if value is None:
            if required:
                self._missing(key)
            return None
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            self._bad(key, f"a whole number of at least {minimum}")
            return None
        return value

    def text(self, key: str, *, required: bool = False) -> str | None:
        value = self.meta.values.get(key)
        if value is None:
            if required:
                self._missing(key)
            return None
        if isinstance(value, int | float) and not isinstance(value, bool):
            value = str(value)
        if not isinstance(value, str) or not value.strip() or _CONTROL.search(value):
            self._bad(key, "a non-empty text without control characters")
            return None
        return " ".join(value.split())

    def language(self, key: str) -> str | None:
        value = self.meta.values.get(key)
        if value is None:
            return None
        try:
            return parse_language(value)  # the same rule as course.language
        except ValueError:
            self._bad(key, "a language tag such as en, de or pt-BR")
            return None

    def texts(self, key: str) -> tuple[str, ...]:
        value = self.meta.values.get(key)
        if value is None:
            return ()
        if isinstance(value, str):
            value = [part for part in value.split(",") if part.strip()]
        if (
            not isinstance(value, list)
            or not all(isinstance(v, str | int | float) and not isinstance(v, bool) for v in value)
            or any(_CONTROL.search(str(v)) for v in value)
        ):
            self._bad(key, "a text or a list of texts, without control characters")
            return ()
        return tuple(" ".join(str(v).split()) for v in value if str(v).strip())

    def date(self, key: str) -> str | None:
        value = self.meta.values.get(key)
        if value is None:
            return None
        if isinstance(value, dt.datetime):
            return value.date().isoformat()
        if isinstance(value, dt.date):
            return value.isoformat()
        if isinstance(value, str):
            try:
                return dt.date.fromisoformat(value.strip()).isoformat()
            except ValueError:
                pass
        self._bad(key, "a date written YYYY-MM-DD")
        return None


def check_fenced_divs(body: str, path: Path, first_line: int) -> list[Diagnostic]:
    """Report ``:::`` blocks that are opened and never closed (pandoc would swallow the rest)."""
    open_divs: list[tuple[int, str]] = []
    code_fence: str | None = None
    for number, line in enumerate(body.splitlines(), start=first_line):
        fence = _CODE_FENCE.match(line)
        if code_fence is not None:
            if (
                fence
                and fence.group(1)[0] == code_fence[0]
                and len(fence.group(1)) >= len(code_fence)
            ):
                code_fence = None
            continue
        if fence:
            code_fence = fence.group(1)
        elif opener := _DIV_OPEN.match(line):
            open_divs.append((number, opener.group(2)))
        elif _DIV_CLOSE.match(line) and open_divs:
            open_divs.pop()
    return [
        error(path, number, f"'::: {name}' block is never closed with a ':::' line")
        for number, name in open_divs
    ]


# --- modules and lessons ---


def load_module(folder: Path) -> Module:
    source = folder / MODULE_FILE
    if not source.is_file():
        raise PubkitError.at(
            folder, None, f"module folder has no {MODULE_FILE} (with 'number' and 'title')"
        )
    meta = load_mapping(read_text(source), source)
    fields = _Fields(meta, source, MODULE_FIELDS)
    number = fields.integer("number", required=True)
    title = fields.text("title", required=True)
    errors = [p for p in fields.problems if p.is_error]
    if errors or number is None or title is None:
        raise PubkitError(errors)
    return Module(number=number, title=smart_punctuation(title), folder=folder, source=source)


def load_lesson(path: Path, module: Module) -> tuple[Lesson | None, list[Diagnostic]]:
    """Read and validate one lesson; return it (or None) and every diagnostic found."""
    try:
        meta, body, body_line = split_front_matter(read_text(path), path)
    except PubkitError as exc:
        return None, list(exc.diagnostics)
    fields = _Fields(meta, path, LESSON_FIELDS)
    number = fields.integer("lesson", required=True)
    title = fields.text("title", required=True)
    subtitle = fields.text("subtitle")
    lesson_fields: dict[str, Any] = {
        "subtitle": smart_punctuation(subtitle) if subtitle else None,
        "authors": fields.texts("authors"),
        "date": fields.date("date"),
        "keywords": fields.texts("keywords"),
        "reading_minutes": fields.integer("reading_minutes", minimum=1),
        "language": fields.language("language"),
    }
    diagnostics = fields.problems + check_fenced_divs(body, path, body_line)
    if not body.strip():
        diagnostics.append(error(path, body_line, "the lesson has no text after its front matter"))
    if any(d.is_error for d in diagnostics) or number is None or title is None:
        return None, diagnostics
    lesson = Lesson(
        module=module,
        number=number,
        title=smart_punctuation(title),
        path=path,
        body=body,
        body_line=body_line,
        field_lines=dict(meta.lines),
        **lesson_fields,
    )
    return lesson, diagnostics


@dataclass(frozen=True)
class Collection:
    """What :func:`collect` found: valid lessons in course order, and every diagnostic."""

    lessons: tuple[Lesson, ...]
    diagnostics: tuple[Diagnostic, ...]
    #: Source files that failed validation, one entry each.
    failed: tuple[Path, ...]


def strictly(collection: Collection) -> Collection:
    """``--strict``: every warning is an error, and a lesson warned about fails."""
    warned = {d.path for d in collection.diagnostics if not d.is_error}
    keep = [
        lesson
        for lesson in collection.lessons
        if lesson.path not in warned and lesson.module.source not in warned
    ]
    return Collection(
        lessons=tuple(keep),
        diagnostics=tuple(d.as_error() for d in collection.diagnostics),
        failed=(*collection.failed, *(x.path for x in collection.lessons if x not in keep)),
    )


def _lesson_files(config: Config, targets: Iterable[Path]) -> tuple[list[Path], list[Diagnostic]]:
    found: list[Path] = []
    problems: list[Diagnostic] = []
    for target in targets:
        target = target.resolve()
        if target.is_file():
            found.append(target)
        elif target.is_dir():
            if (target / MODULE_FILE).is_file() or any(target.glob(f"*{LESSON_SUFFIX}")):
                module_dirs = [target]
            else:
                module_dirs = sorted(p for p in target.iterdir() if p.is_dir())
            for folder in module_dirs:
                if folder.name.startswith((".", "_")):
                    continue
                found.extend(
                    sorted(
                        p
                        for p in folder.glob(f"*{LESSON_SUFFIX}")
                        if p.is_file() and not p.name.startswith((".", "_"))
                    )
                )
        else:
            problems.append(error(target, None, "no such file or folder"))
    inside = []
    for path in dict.fromkeys(found):
        if path.resolve().is_relative_to(config.root):
            inside.append(path)
        else:  # a symbolic link in the manuscript folder that leads out of the project
            problems.append(error(path, None, "links to a file outside the project; not read"))
    return inside, problems


def collect(config: Config, targets: Iterable[Path] = ()) -> Collection:
    """Find, read and validate lessons under ``targets`` (default: the manuscript folder)."""
    targets = list(targets) or [config.manuscript_dir]
    files, diagnostics = _lesson_files(config, targets)
    modules: dict[Path, Module | None] = {}
    lessons: list[Lesson] = []
    failed: list[Path] = []
    for path in files:
        folder = path.parent
        if folder not in modules:
            try:
                modules[folder] = load_module(folder)
            except PubkitError as exc:
                modules[folder] = None
                diagnostics.extend(exc.diagnostics)
        module = modules[folder]
        if module is None:
            failed.append(path)
            continue
        lesson, found = load_lesson(path, module)
        diagnostics.extend(found)
        if lesson is None:
            failed.append(path)
        else:
            lessons.append(lesson)

    seen: dict[tuple[Path, int], Lesson] = {}
    unique: list[Lesson] = []
    for lesson in lessons:
        key = (lesson.module.folder, lesson.number)
        if key in seen:
            first = seen[key]
            diagnostics.append(
                error(
                    lesson.path,
                    lesson.field_lines.get("lesson"),
                    f"lesson {lesson.number} is already used by {first.path.name}",
                )
            )
            failed.append(lesson.path)
            continue
        seen[key] = lesson
        unique.append(lesson)
    unique.sort(key=lambda le: (le.module.number, le.module.folder.name, le.number))
    return Collection(tuple(unique), tuple(diagnostics), tuple(failed))
