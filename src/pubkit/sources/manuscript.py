"""Turn manuscript files into validated :class:`Module` and :class:`Lesson` objects."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pubkit.errors import Diagnostic, PubkitError, error
from pubkit.sources.config import Config
from pubkit.sources.frontmatter import Fields, read_text, smart_punctuation, split_front_matter
from pubkit.sources.yamlsrc import load_mapping

MODULE_FILE = "module.yaml"
LESSON_SUFFIX = ".md"
_DIV_OPEN = re.compile(r"^ {0,3}(:{3,})\s*(\{[^}]*\}|[^\s:{}]+)\s*:*\s*$")
_DIV_CLOSE = re.compile(r"^ {0,3}(:{3,})\s*$")
_CODE_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
#: What a line inside a block quote or a list item starts with, before a fence.
_QUOTE_OR_ITEM = re.compile(r"^(?:\s*>|\s*(?:[-+*]|\d{1,9}[.)])(?=\s)|\s{4})*\s*")

LESSON_FIELDS = (
    "lesson",
    "title",
    "subtitle",
    "authors",
    "date",
    "keywords",
    "reading_minutes",
    "language",
    "bibliography",
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
    #: Bibliography files of its own, as written (relative to the lesson's folder).
    bibliography: tuple[str, ...] = ()
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


def div_openers(body: str, first_line: int) -> tuple[list[tuple[int, str]], list[int]]:
    """The ``:::`` blocks of a manuscript body, in document order: each opening line and
    what follows its colons (``exercise``, ``{.callout-tip title="…"}``); and the indexes of
    those never closed. In a block quote or a list item as well; not in code."""
    openers: list[tuple[int, str]] = []
    open_divs: list[int] = []
    code_fence: str | None = None
    for number, line in enumerate(body.splitlines(), start=first_line):
        line = _QUOTE_OR_ITEM.sub("", line)
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
            open_divs.append(len(openers))
            openers.append((number, opener.group(2)))
        elif _DIV_CLOSE.match(line) and open_divs:
            open_divs.pop()
    return openers, open_divs


def check_fenced_divs(body: str, path: Path, first_line: int) -> list[Diagnostic]:
    """Report ``:::`` blocks that are opened and never closed (pandoc would swallow the rest)."""
    openers, unclosed = div_openers(body, first_line)
    return [
        error(
            path,
            openers[index][0],
            f"'::: {openers[index][1]}' block is never closed with a ':::' line",
        )
        for index in unclosed
    ]


_NOTE_DEFINITION = re.compile(r"^ {0,3}\[\^([^\]\s]+)\]:")
_NOTE_REFERENCE = re.compile(r"\[\^([^\]\s]+)\](?!:)")


def check_footnotes(body: str, path: Path, first_line: int) -> list[Diagnostic]:
    """Report a footnote whose text calls itself, directly or through others: pandoc's
    reader expands notes into notes without end (and runs out of its memory bound)."""
    calls: dict[str, set[str]] = {}
    lines: dict[str, int] = {}
    current: str | None = None
    blank = False
    for number, line in enumerate(body.splitlines(), start=first_line):
        if definition := _NOTE_DEFINITION.match(line):
            current = definition.group(1)
            lines.setdefault(current, number)
            line = line[definition.end() :]
        elif blank and line.strip() and not line.startswith((" ", "\t")):
            current = None  # an unindented paragraph after a blank line ends the note
        blank = not line.strip()
        if current is not None:
            calls.setdefault(current, set()).update(_NOTE_REFERENCE.findall(line))
    problems = []
    for label in calls:
        seen, stack = set(), list(calls[label])
        while stack:
            other = stack.pop()
            if other == label:
                problems.append(
                    error(path, lines[label], f"footnote [^{label}] refers to itself in its text")
                )
                break
            if other not in seen:
                seen.add(other)
                stack.extend(calls.get(other, ()))
    return problems


# --- modules and lessons ---


def load_module(folder: Path) -> Module:
    source = folder / MODULE_FILE
    if not source.is_file():
        raise PubkitError.at(
            folder, None, f"module folder has no {MODULE_FILE} (with 'number' and 'title')"
        )
    meta = load_mapping(read_text(source), source)
    fields = Fields(meta, source, MODULE_FIELDS)
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
    fields = Fields(meta, path, LESSON_FIELDS)
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
        "bibliography": fields.texts("bibliography"),
    }
    diagnostics = fields.problems + check_fenced_divs(body, path, body_line)
    diagnostics += check_footnotes(body, path, body_line)
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
class Manuscripts:
    """What :func:`collect` found: valid lessons in course order, and every diagnostic."""

    lessons: tuple[Lesson, ...]
    diagnostics: tuple[Diagnostic, ...]
    #: Source files that failed validation, one entry each.
    failed: tuple[Path, ...]


def strictly(collection: Manuscripts) -> Manuscripts:
    """``--strict``: every warning is an error, and a lesson warned about fails."""
    warned = {d.path for d in collection.diagnostics if not d.is_error}
    keep = [
        lesson
        for lesson in collection.lessons
        if lesson.path not in warned and lesson.module.source not in warned
    ]
    return Manuscripts(
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


def collect(config: Config, targets: Iterable[Path] = ()) -> Manuscripts:
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
    return Manuscripts(tuple(unique), tuple(diagnostics), tuple(failed))


def modules_of(manuscripts: Manuscripts) -> dict[Module, list[Lesson]]:
    """Each module's lessons in lesson order: what its collection holds. A module with a
    lesson that cannot be read is left out; its collection would be missing that lesson."""
    broken = {path.parent.resolve() for path in manuscripts.failed}
    modules: dict[Module, list[Lesson]] = {}
    for lesson in manuscripts.lessons:
        if lesson.module.folder.resolve() not in broken:
            modules.setdefault(lesson.module, []).append(lesson)
    for members in modules.values():
        members.sort(key=lambda lesson: lesson.number)
    return dict(sorted(modules.items(), key=lambda item: item[0].number))
