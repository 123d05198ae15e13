"""Turn a lesson's Markdown into its checked document: pandoc's AST (files it refers to
checked, unsafe HTML removed, headings in order, pubkit's own ids kept free), the HTML
fragment the paged editions lay out, and its plain text."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from pubkit.document import pandoc
from pubkit.document.ast import (
    AST,
    ATTR_AT,
    free_name,
    identifiers,
    plain_text,
    rename_ids_in_blocks,
    walk,
)
from pubkit.document.blocks import TAKEAWAYS, Arrangement, arrange, kind_of, mark
from pubkit.document.citations import cite
from pubkit.document.crossref import Labels, caption_tables, number
from pubkit.document.links import TITLE_ID, Course, Target, lone_course, resolve
from pubkit.document.math import (
    attach_attributes,
    check_math,
    dollar_delimiters,
    draw_all,
    formula_in,
    keep_prices,
)
from pubkit.document.paged import to_html
from pubkit.document.sanitize import (
    html_ids,
    is_raw_html,
    rename_ids,
    rename_repeated_ids,
    sanitize,
)
from pubkit.errors import Diagnostic, LessonError, warning
from pubkit.sources.bibliography import Bibliography
from pubkit.sources.blocks import Family, builtin_family
from pubkit.sources.config import text_direction
from pubkit.sources.manuscript import Lesson, div_openers
from pubkit.sources.numbering import DEFAULT as NUMBERING
from pubkit.sources.resources import check_resources, line_of, local_files

#: CommonMark with pandoc's extensions (fenced divs, footnotes, pipe tables, definition
#: lists, smart punctuation, attributes, an image alone in a paragraph as a captioned
#: figure, bare addresses as links, ``$…$`` TeX math: :mod:`pubkit.document.math`). Its
#: parser is linear-time, unlike pandoc's ``markdown`` reader. Front matter is read by
#: pubkit.
READER = "commonmark_x+implicit_figures+autolink_bare_uris-yaml_metadata_block"
NESTS_TOO_DEEPLY = "the manuscript nests too deeply to set"
#: The warning about an image without a description (``{at}``: its file).
NO_DESCRIPTION = (
    "image “{at}” has no description (alt text); "
    "screen readers skip it and the EPUB claims no WCAG conformance"
)
#: Identifiers pubkit gives its own parts, which an author's are renamed away from.
RESERVED_IDS = frozenset({TITLE_ID})
#: Identifiers the editions' writers give: the EPUB's page-break markers (``page-12``)
#: and pandoc's footnotes and their back-links (``fn3``, ``fnref3``).
RESERVED_PATTERN = re.compile(r"page-\d+|fn\d+|fnref\d+")


@dataclass(frozen=True)
class Document:
    """A lesson's body after parsing: what every edition renders from."""

    ast: AST
    html: str
    text: str
    has_takeaways: bool
    #: What the author should know but need not fix (a skipped heading level).
    warnings: tuple[Diagnostic, ...] = ()
    #: The lessons its lesson links lead to, by id (:mod:`pubkit.document.links`).
    targets: Mapping[str, Target] = field(default_factory=dict)
    #: Where its links lead from: the course's address (its lessons are :attr:`targets`).
    links: Course = field(default_factory=lambda: Course(Path(), Path(), None, {}))
    #: What the edition it is set for does with solutions and instructor notes
    #: (:func:`for_edition`); None: as read, with everything.
    arrangement: Arrangement | None = None
    #: The words of the lesson's language (labels of the blocks moved to its end).
    words: Mapping[str, Any] = field(default_factory=dict)
    #: The AST as read, every block in it, that each edition's is arranged from.
    source: AST | None = None
    #: The files its images and raw HTML pull in (:func:`local_files`).
    files: tuple[Path, ...] = ()


@dataclass(frozen=True)
class Reading:
    """What a lesson is read with, besides its course: the words of its language (labels,
    "Figure", "References"), the theme's kinds of block, what it may cite, and how the
    theme numbers figures, tables and equations."""

    words: Mapping[str, Any] = field(default_factory=dict)
    blocks: Family = field(default_factory=builtin_family)
    bibliography: Bibliography = field(
        default_factory=lambda: Bibliography((), frozenset(), Path())
    )
    numbering: Mapping[str, str] = field(default_factory=lambda: dict(NUMBERING))


def parse(lesson: Lesson) -> AST:
    """Parse the lesson body with pandoc into its JSON AST (or take what :func:`read_ahead`
    read)."""
    output = _READ_AHEAD.get((lesson.path, lesson.body)) or _parser(lesson).wait()
    if isinstance(output, LessonError):
        raise output
    ast: AST = pandoc.json_value(output)
    return ast


#: pandoc's JSON for the lessons read ahead, by manuscript and body.
_READ_AHEAD: dict[tuple[Path, str], bytes | LessonError] = {}
#: The lessons converted ahead, by manuscript and body.
_CONVERTED: dict[tuple[Path, str], Document | LessonError] = {}
#: The largest pandoc JSON of a lesson converted ahead (the seed lesson's is 110 kB):
#: the process that reads ahead is not bounded in memory as a worker is, so a larger
#: lesson is left to its worker.
CONVERT_AHEAD_BYTES = 4 << 20


def read_ahead(
    lessons: Sequence[Lesson],
    root: Path,
    course: Course | None = None,
    reading: Callable[[Lesson], Reading] | None = None,
) -> Callable[[], None]:
    """Start pandoc reading ``lessons`` now and return what converts them
    (:func:`convert`), so that the caller can do something else meanwhile (load
    WeasyPrint); :func:`parse` and :func:`convert` then take what was done, in this
    process and in the workers it forks. What an earlier call did is forgotten."""
    _READ_AHEAD.clear()
    _CONVERTED.clear()
    started = [(lesson, _parser(lesson)) for lesson in lessons]

    def finish() -> None:
        for lesson, running in started:
            key = (lesson.path, lesson.body)
            try:
                _READ_AHEAD[key] = output = running.wait()
            except LessonError as error:
                _READ_AHEAD[key] = error
                continue
            if len(output) > CONVERT_AHEAD_BYTES:
                continue
            try:
                # Read, not set: the workers set it, drawing its formulas between them.
                _CONVERTED[key] = _document(lesson, root, course, reading and reading(lesson))
            except LessonError as error:
                _CONVERTED[key] = error
            except Exception:
                pass  # left to the lesson's worker, which reports it as the lesson's error

    return finish


def _parser(lesson: Lesson) -> pandoc.Conversion:
    return pandoc.parse(dollar_delimiters(lesson.body), READER, source=lesson.path)


def read(
    lesson: Lesson,
    root: Path,
    course: Course | None = None,
    reading: Reading | None = None,
) -> tuple[AST, tuple[Diagnostic, ...], dict[str, Target]]:
    """Parse and check the lesson: every file it refers to must be inside ``root`` and
    every link must lead somewhere in ``course`` (:func:`pubkit.document.links.resolve`);
    unsafe HTML is removed, headings set in order and identifiers made unique. Returns the
    AST, what the author should know, and the lessons it links to (raises
    :class:`LessonError` for what stops the lesson). Figures, tables and equations are
    numbered and its fenced divs made blocks in the words of ``reading`` (default: pubkit's
    blocks, English), its citations rendered from its bibliography
    (:mod:`pubkit.document.citations`)."""
    reading = reading or Reading()
    words = reading.words
    try:
        ast = parse(lesson)
        problems = check_resources(ast["blocks"], lesson, root)
        if problems:
            raise LessonError(problems)
        ast["blocks"], removed = sanitize(ast["blocks"], lambda source: line_of(lesson, source))
        caption_tables(ast["blocks"])  # before formulas take the labels after them
        attach_attributes(ast["blocks"])
        skips = outline(ast["blocks"])
        unreserve(ast["blocks"])
        openers, _ = div_openers(lesson.body, lesson.body_line)
        boxes = mark(ast["blocks"], reading.blocks, words, openers, lesson.path, lesson.number)
        labels = Labels(words, reading.numbering, lesson.number)
        numbering = number(ast["blocks"], labels, lambda text: line_of(lesson, text), lesson.path)
        ast, citing = cite(
            ast,
            reading.bibliography,
            words,
            lambda text: line_of(lesson, text),
            lesson.path,
        )
        renamed = deduplicate(ast["blocks"], lesson)
        targets, faults, unlinked = resolve(
            ast["blocks"],
            lesson,
            course or lone_course(lesson, root),
            lambda href: line_of(lesson, href),
        )
        keep_prices(ast["blocks"])
        faults += check_math(ast["blocks"], lambda tex: line_of(lesson, tex), lesson.path)
        faults += numbering + citing
        if faults:
            raise LessonError(faults)
        mark_directions(ast["blocks"])
    except RecursionError:
        raise LessonError.at(lesson.path, None, NESTS_TOO_DEEPLY) from None
    undescribed = [
        node["c"][2][0]
        for node in walk(ast["blocks"])
        if node["t"] == "Image" and not _described(node)
    ]
    warnings = [
        warning(
            lesson.path,
            lesson.line_of_text(text),
            f"heading “{text}” is level {written} under a level {parent} heading; "
            f"set as level {level} so that no level is skipped",
        )
        for text, parent, written, level in skips
    ]
    warnings += [
        warning(lesson.path, line_of(lesson, source), NO_DESCRIPTION.format(at=source))
        for source in undescribed
    ]
    warnings += [
        warning(
            lesson.path,
            lesson.field_lines.get(name),
            f"{name}: “{formula}” is TeX math, which a {name} prints as written (it is plain "
            "text: write the formula in words, or in Unicode such as x²)",
        )
        for name in ("title", "subtitle")
        if (formula := formula_in(getattr(lesson, name) or ""))
    ]
    warnings += [
        warning(lesson.path, line, f"{what} removed: pubkit keeps only safe HTML")
        for line, what in removed
    ]
    return ast, (*warnings, *boxes, *renamed, *unlinked), targets


def _described(image: Mapping[str, Any]) -> bool:
    """Whether an image has a description: its ``alt`` attribute (empty: the author marks
    it decorative), else its caption."""
    attributes = dict(image["c"][0][2])
    return "alt" in attributes or bool(plain_text(image["c"][1]).strip())


def convert(
    lesson: Lesson,
    root: Path,
    course: Course | None = None,
    reading: Reading | None = None,
    *,
    backwards: bool = False,
) -> Document:
    """The lesson read (:func:`read`, or what :func:`read_ahead` read), as the learners'
    PDF and EPUB set it; :func:`for_edition` sets it for another edition. Its formulas
    are drawn first to last, or ``backwards`` (:func:`pubkit.document.math.draw_all`)."""
    done = _CONVERTED.get((lesson.path, lesson.body))
    if isinstance(done, LessonError):
        raise done
    document = done or _document(lesson, root, course, reading)
    draw_all(document.ast["blocks"], backwards)
    return for_edition(document, lesson, Arrangement())


def _document(
    lesson: Lesson, root: Path, course: Course | None, reading: Reading | None
) -> Document:
    """The lesson read, not yet set for any edition (its formulas not yet drawn)."""
    course = course or lone_course(lesson, root)
    ast, warnings, targets = read(lesson, root, course, reading)
    return Document(
        ast=ast,
        html="",
        text="",
        has_takeaways=any(kind_of(b) == TAKEAWAYS for b in walk(ast["blocks"])),
        warnings=warnings,
        targets=targets,
        links=replace(course, lessons={}),
        words=reading.words if reading else {},
        files=local_files(ast["blocks"], lesson),
    )


def for_edition(document: Document, lesson: Lesson, arrangement: Arrangement) -> Document:
    """The document as an edition sets it: instructor notes and solutions where its
    ``arrangement`` puts them (:func:`pubkit.document.blocks.arrange`), its words (and so
    its reading figures) only those its reader reads."""
    if arrangement == document.arrangement:
        return document
    source = document.source if document.source is not None else document.ast
    blocks = arrange(source["blocks"], arrangement, document.words)
    ast = {**source, "blocks": blocks}
    return replace(
        document,
        ast=ast,
        html=to_html(ast, lesson),
        text=plain_text(blocks),
        arrangement=arrangement,
        source=source,
    )


def unreserve(blocks: list[Any]) -> None:
    """Rename, in place, an author's identifier that pubkit gives one of its own parts
    (:data:`RESERVED_IDS`, :data:`RESERVED_PATTERN`), and the links to it, in pandoc's
    attributes and in raw HTML: a section headed "Lesson Title" would otherwise share its
    id with the lesson's title."""
    taken = identifiers(blocks)
    reserved = {name for name in taken if RESERVED_PATTERN.fullmatch(name)}
    renamed = {name: free_name(name, taken) for name in sorted((RESERVED_IDS & taken) | reserved)}
    if renamed:
        rename_ids_in_blocks(blocks, _renaming(renamed))


def deduplicate(blocks: list[Any], lesson: Lesson) -> list[Diagnostic]:
    """Give, in place, each identifier that an earlier element already has a free name of
    its own (``note-1``), with a warning at its line: links to it lead to the first, as a
    browser's would. Raw HTML's elements are renamed a fragment at a time, with the
    links inside that fragment."""
    taken = identifiers(blocks)
    seen: set[str] = set()
    notes: list[Diagnostic] = []
    written: dict[str, int] = {}  # how many times each identifier was repeated

    def free(name: str, line: int | None) -> str:
        new = free_name(name, taken)
        notes.append(
            warning(
                lesson.path,
                line,
                f"identifier “{name}” is given twice; the second is renamed “{new}” "
                f"(links to #{name} lead to the first)",
            )
        )
        return new

    for node in walk(blocks):
        if node["t"] in ATTR_AT:
            at = ATTR_AT[node["t"]]
            name = node["c"][at][0]
            if name and name in seen:
                text = plain_text(node["c"][2] if node["t"] == "Header" else node["c"][-1])
                line = _written_at(lesson, name, written) or lesson.line_of_text(text)
                node["c"][at] = [free(name, line), *node["c"][at][1:]]
            seen.add(node["c"][at][0])
        elif is_raw_html(node):
            names = html_ids(node["c"][1])
            renames = {
                name: free(name, _written_at(lesson, name, written) or line_of(lesson, name))
                for name in sorted(names & seen)
            }
            if renames:
                node["c"][1] = rename_ids(node["c"][1], _renaming(renames))
            # An identifier the fragment itself gives twice: its second tag renamed.
            node["c"][1] = rename_repeated_ids(
                node["c"][1],
                lambda name: free(
                    name, _written_at(lesson, name, written) or line_of(lesson, name)
                ),
            )
            seen.update(html_ids(node["c"][1]))
    return notes


def _renaming(renames: Mapping[str, str]) -> Callable[[str], str]:
    return lambda name: renames.get(name, name)


def _written_at(lesson: Lesson, name: str, duplicates: dict[str, int]) -> int | None:
    """The line of the n-th repetition of ``id="name"`` (or ``{#name}``) in the manuscript,
    counted in ``duplicates``; None when the author did not write that many (an identifier
    pandoc made)."""
    pattern = re.compile(rf"""(?:\bid\s*=\s*["']?|\{{[^}}]*#){re.escape(name)}(?![\w-])""")
    count = duplicates[name] = duplicates.get(name, 0) + 1
    found = list(pattern.finditer(lesson.body))
    return lesson.line_at(found[count].start()) if count < len(found) else None


def mark_directions(blocks: list[Any]) -> None:
    """Give, in place, each span or block the author set in another language
    (``[…]{lang=ar}``) the direction its language is written in, unless the author gave
    one: its text is then set as a run of its own (the bidirectional algorithm isolates
    it), right to left in a left-to-right lesson and the other way round."""
    for node in walk(blocks):
        if node["t"] in ("Span", "Div"):
            attributes = node["c"][0][2]
            names = {name for name, _ in attributes}
            language = next((value for name, value in attributes if name == "lang"), None)
            if language and "dir" not in names:
                attributes.append(["dir", text_direction(language)])


def outline(blocks: list[Any]) -> list[tuple[str, int, int, int]]:
    """Renumber the body's headings, in place, into an outline under the lesson's title.

    The title is the only level 1; the top of the body is level 2 (so ``#`` and ``##``
    both give sections), and no level is skipped, so screen readers and the PDF's tags
    see headings in order. Returns each skip: (heading text, level written above it,
    level written, level set).
    """
    stack: list[tuple[int, int]] = []  # (level written, level set)
    skips = []
    for node in walk(blocks):
        if node["t"] != "Header":
            continue
        written = node["c"][0]
        while stack and stack[-1][0] >= written:
            stack.pop()
        parent_written, parent_set = stack[-1] if stack else (1, 1)
        level = min(parent_set + 1, 6)
        if stack and written > parent_written + 1:
            text = " ".join(plain_text(node["c"][2]).split())
            skips.append((text, parent_written, written, level))
        node["c"][0] = level
        stack.append((written, level))
    return skips
