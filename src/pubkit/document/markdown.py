"""Turn a lesson's Markdown into a pandoc AST, an HTML fragment and its plain text."""

from __future__ import annotations

import html
import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pubkit.document import pandoc
from pubkit.document.sanitize import html_ids, is_raw_html, rename_ids, sanitize
from pubkit.errors import Diagnostic, LessonError, warning
from pubkit.sources.manuscript import Lesson
from pubkit.sources.resources import check_resources, line_of

#: CommonMark with pandoc's extensions (fenced divs, footnotes, pipe tables, definition
#: lists, smart punctuation, attributes, an image alone in a paragraph as a captioned
#: figure, bare addresses as links). Its parser is linear-time, unlike pandoc's
#: ``markdown`` reader. Front matter is read by pubkit; ``$`` stays a currency sign.
READER = "commonmark_x+implicit_figures+autolink_bare_uris-yaml_metadata_block-tex_math_dollars"
TAKEAWAYS_CLASS = "takeaways"
NESTS_TOO_DEEPLY = "the manuscript nests too deeply to set"
#: Class of the inline element a footnote becomes in the paged editions (CSS ``float: footnote``).
FOOTNOTE_CLASS = "footnote"

_BLOCKS = frozenset(
    {
        *("Plain", "Para", "LineBlock", "CodeBlock", "RawBlock", "BlockQuote"),
        *("OrderedList", "BulletList", "DefinitionList", "Header", "HorizontalRule"),
        *("Table", "Figure", "Div"),
    }
)
_BREAKS = frozenset({"Space", "SoftBreak", "LineBreak"})
#: pandoc AST nodes and where their attributes are: [id, classes, key-values].
ATTR_AT = dict.fromkeys(("Div", "Span", "CodeBlock", "Code", "Table", "Figure", "Link", "Image"), 0)
ATTR_AT["Header"] = 1
#: The id of a lesson's title in its EPUB chapter (a module's collection prefixes it with
#: the lesson's anchor; the page list finds a lesson's chapter by it).
TITLE_ID = "lesson-title"
#: Identifiers pubkit gives its own parts, which an author's are renamed away from.
RESERVED_IDS = frozenset({TITLE_ID})

AST = dict[str, Any]


@dataclass(frozen=True)
class Document:
    """A lesson's body after parsing: what every edition renders from."""

    ast: AST
    html: str
    text: str
    has_takeaways: bool
    #: What the author should know but need not fix (a skipped heading level).
    warnings: tuple[Diagnostic, ...] = ()


def parse(lesson: Lesson) -> AST:
    """Parse the lesson body with pandoc into its JSON AST (or take what :func:`read_ahead`
    read)."""
    output = _READ_AHEAD.get((lesson.path, lesson.body)) or _parser(lesson).wait()
    if isinstance(output, LessonError):
        raise output
    ast: AST = json.loads(output)
    return ast


#: pandoc's JSON for the lessons read ahead, by manuscript and body.
_READ_AHEAD: dict[tuple[Path, str], bytes | LessonError] = {}
#: The lessons converted ahead, by manuscript and body.
_CONVERTED: dict[tuple[Path, str], Document | LessonError] = {}
#: The largest pandoc JSON of a lesson converted ahead (the seed lesson's is 110 kB):
#: the process that reads ahead is not bounded in memory as a worker is, so a larger
#: lesson is left to its worker.
CONVERT_AHEAD_BYTES = 4 << 20


def read_ahead(lessons: Sequence[Lesson], root: Path) -> Callable[[], None]:
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
                _CONVERTED[key] = convert(lesson, root)
            except LessonError as error:
                _CONVERTED[key] = error
            except Exception:
                pass  # left to the lesson's worker, which reports it as the lesson's error

    return finish


def _parser(lesson: Lesson) -> pandoc.Conversion:
    return pandoc.parse(lesson.body, READER, source=lesson.path)


def to_html(
    ast: AST,
    lesson: Lesson,
    continuations: Mapping[int, frozenset[int]] | None = None,
    continued: str = "(continued)",
) -> str:
    """Write the AST as the HTML5 fragment the paged editions lay out (no <html>, no header).

    Footnotes stay where they are called, as inline elements that CSS floats to the foot
    of the page; the EPUB keeps pandoc's own notes. ``continuations`` maps a takeaways
    box (by its place in the lesson) to the units (list items or blocks) where it must
    start again on a new page, headed "<its heading> <continued>"; a box listed there
    with no units is set to flow across pages.
    """
    boxes = _TakeawaysBoxes(continuations or {}, continued)
    html_ast = {**ast, "blocks": _inline_notes(list(boxes.transform(ast["blocks"])))}
    return pandoc.html(html_ast, source=lesson.path).wait().decode("utf-8")


def read(lesson: Lesson, root: Path) -> tuple[AST, tuple[Diagnostic, ...]]:
    """Parse and check the lesson: every file it refers to must be inside ``root``; unsafe
    HTML is removed and headings set in order. Returns the AST and what the author should
    know (raises :class:`LessonError` for what stops the lesson)."""
    try:
        ast = parse(lesson)
        problems = check_resources(ast["blocks"], lesson, root)
        if problems:
            raise LessonError(problems)
        ast["blocks"], removed = sanitize(ast["blocks"], lambda source: line_of(lesson, source))
        skips = outline(ast["blocks"])
        unreserve(ast["blocks"])
    except RecursionError:
        raise LessonError.at(lesson.path, None, NESTS_TOO_DEEPLY) from None
    undescribed = [
        node["c"][2][0]
        for node in _walk(ast["blocks"])
        if node["t"] == "Image" and not plain_text(node["c"][1]).strip()
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
        warning(
            lesson.path,
            line_of(lesson, source),
            f"image “{source}” has no description (alt text); "
            "screen readers skip it and the EPUB claims no WCAG conformance",
        )
        for source in undescribed
    ]
    warnings += [
        warning(lesson.path, line, f"{what} removed: pubkit keeps only safe HTML")
        for line, what in removed
    ]
    return ast, tuple(warnings)


def convert(lesson: Lesson, root: Path) -> Document:
    """The lesson read (:func:`read`), as every edition renders from it (or what
    :func:`read_ahead` converted)."""
    if done := _CONVERTED.get((lesson.path, lesson.body)):
        if isinstance(done, LessonError):
            raise done
        return done
    ast, warnings = read(lesson, root)
    return Document(
        ast=ast,
        html=to_html(ast, lesson),
        text=plain_text(ast["blocks"]),
        has_takeaways=any(_is_takeaways(b) for b in _walk(ast["blocks"])),
        warnings=warnings,
    )


def unreserve(blocks: list[Any]) -> None:
    """Rename, in place, an author's identifier that pubkit gives one of its own parts
    (:data:`RESERVED_IDS`), and the links to it, in pandoc's attributes and in raw HTML: a
    section headed "Lesson Title" would otherwise share its id with the lesson's title."""
    nodes, raw = [], []
    for node in _walk(blocks):
        if node["t"] in ATTR_AT:
            nodes.append(node)
        elif is_raw_html(node):
            raw.append(node)
    taken = {node["c"][ATTR_AT[node["t"]]][0] for node in nodes}
    taken.update(name for node in raw for name in html_ids(node["c"][1]))
    renamed: dict[str, str] = {}
    for name in sorted(RESERVED_IDS & taken):
        suffix = 1
        while f"{name}-{suffix}" in taken:
            suffix += 1
        renamed[name] = f"{name}-{suffix}"
        taken.add(renamed[name])
    if renamed:
        rename_ids_in_blocks(blocks, lambda name: renamed.get(name, name))


def rename_ids_in_blocks(blocks: list[Any], rename: Callable[[str], str]) -> None:
    """Rename, in place, every identifier the elements of ``blocks`` give (in pandoc's
    attributes and in raw HTML), and every link to one, by ``rename``; an element without
    an identifier keeps none."""
    for node in _walk(blocks):
        kind, content = node["t"], node.get("c")
        if kind in ATTR_AT:
            at = ATTR_AT[kind]
            identifier, *rest = content[at]  # a list, or a tuple made by pubkit
            content[at] = [rename(identifier) if identifier else "", *rest]
            if kind == "Link" and content[2][0].startswith("#"):
                content[2][0] = "#" + rename(content[2][0][1:])
        elif is_raw_html(node):
            content[1] = rename_ids(content[1], rename)


def outline(blocks: list[Any]) -> list[tuple[str, int, int, int]]:
    """Renumber the body's headings, in place, into an outline under the lesson's title.

    The title is the only level 1; the top of the body is level 2 (so ``#`` and ``##``
    both give sections), and no level is skipped, so screen readers and the PDF's tags
    see headings in order. Returns each skip: (heading text, level written above it,
    level written, level set).
    """
    stack: list[tuple[int, int]] = []  # (level written, level set)
    skips = []
    for node in _walk(blocks):
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


def _is_takeaways(node: Any) -> bool:
    return isinstance(node, dict) and node.get("t") == "Div" and TAKEAWAYS_CLASS in node["c"][0][1]


class _TakeawaysBoxes:
    """Give each takeaways box its own element: ``<aside>`` labelled by its heading.

    Only for the HTML fragment: the EPUB writer wraps headings in sections, which raw
    tags would cut across, so :mod:`pubkit.engines.epub` makes its asides after pandoc. Each
    aside carries ``data-takeaways`` (its place in the lesson) so that
    :func:`pubkit.engines.layout.continuations` can say where a long one must break.
    """

    def __init__(self, continuations: Mapping[int, frozenset[int]], continued: str) -> None:
        self.continuations = continuations
        self.continued = continued
        self.count = 0

    def transform(self, blocks: list[Any]) -> Iterator[Any]:
        for block in blocks:
            if _is_takeaways(block):
                yield from self._aside(block)
            elif isinstance(block, dict) and block.get("t") == "Div":
                attr, content = block["c"]
                yield {"t": "Div", "c": [attr, list(self.transform(content))]}
            else:
                yield block

    def _aside(self, block: Any) -> Iterator[Any]:
        number, self.count = self.count, self.count + 1
        (ident, classes, _attrs), content = block["c"]
        content = list(self.transform(content))
        heading = next((b for b in content if b.get("t") == "Header"), None)
        label = heading["c"][2] if heading else []
        breaks = self.continuations.get(number, frozenset())
        flowing = ["takeaways-long"] if number in self.continuations else []
        attributes = {
            "id": ident,
            "class": " ".join([*classes, *flowing]),
            "aria-labelledby": heading["c"][1][0] if heading else "",
            "data-takeaways": str(number),
        }
        yield _raw_tag("aside", attributes)
        unit = 0
        for part in content:
            is_list = part.get("t") in ("BulletList", "OrderedList")
            items = _list_items(part) if is_list else [None]  # a list's units are its items
            kept: list[Any] = []
            for index, item in enumerate(items):
                if unit in breaks and unit > 0:
                    if kept:
                        yield _list_part(part, kept, index - len(kept))
                        kept = []
                    yield {"t": "RawBlock", "c": ["html", "</aside>"]}
                    yield _raw_tag(
                        "aside",
                        {
                            "class": " ".join([*classes, "takeaways-continued"]),
                            "aria-labelledby": attributes["aria-labelledby"],
                            "data-takeaways": str(number),
                            "data-first-unit": str(unit),
                        },
                    )
                    yield _continued_label(label, self.continued)
                kept.append(item)
                unit += 1
            if not is_list:
                yield part
            elif kept:
                yield _list_part(part, kept, len(items) - len(kept))
        yield {"t": "RawBlock", "c": ["html", "</aside>"]}


def _raw_tag(name: str, attributes: Mapping[str, str]) -> Any:
    # The author wrote some of these attributes: escape them, since they become raw HTML.
    tag = "".join(f' {k}="{html.escape(v)}"' for k, v in attributes.items() if v)
    return {"t": "RawBlock", "c": ["html", f"<{name}{tag}>"]}


def _list_part(block: Any, items: list[Any], skipped: int) -> Any:
    """``items`` of a list, numbered on from where the list had got to."""
    if block["t"] == "OrderedList":
        (start, style, delimiter), _ = block["c"]
        return {"t": "OrderedList", "c": [[start + skipped, style, delimiter], items]}
    return {"t": "BulletList", "c": items}


def _list_items(block: Any) -> list[Any]:
    items: list[Any] = block["c"] if block["t"] == "BulletList" else block["c"][1]
    return items


def _continued_label(heading: list[Any], continued: str) -> Any:
    inlines = [*heading, {"t": "Space"}, {"t": "Str", "c": continued}]
    return {
        "t": "Div",
        "c": [["", ["takeaways-label"], [["aria-hidden", "true"]]], [{"t": "Plain", "c": inlines}]],
    }


def _inline_notes(node: Any) -> Any:
    """Replace every ``Note`` with a footnote span holding the note's text.

    The note's call is kept on one line with the word before it, so that a line never
    starts with a footnote number.
    """
    if isinstance(node, list):
        items: list[Any] = []
        for item in node:
            if isinstance(item, dict) and item.get("t") == "Note":
                note = {"t": "Span", "c": [["", [FOOTNOTE_CLASS], []], _note_inlines(item["c"])]}
                if items and items[-1].get("t") not in _BREAKS:
                    note = {"t": "Span", "c": [["", ["footnote-anchor"], []], [items.pop(), note]]}
                items.append(note)
            else:
                items.append(_inline_notes(item))
        return items
    if isinstance(node, dict) and "c" in node:
        return {**node, "c": _inline_notes(node["c"])}
    return node


def _note_inlines(blocks: list[Any]) -> list[Any]:
    """A note's blocks as one run of inlines, a line break between blocks.

    A footnote is a single inline box on the page, so paragraphs, list items and code
    become lines of it; every word is kept.
    """
    lines: list[list[Any]] = []

    def visit(block: Any) -> None:
        kind, content = block["t"], block.get("c")
        if kind in ("Para", "Plain"):
            lines.append(content)
        elif kind == "LineBlock":
            lines.extend(content)
        elif kind == "CodeBlock":
            lines.append([{"t": "Code", "c": content}])
        elif kind == "Header":
            lines.append(content[2])
        elif kind in ("BlockQuote", "Div", "Figure"):
            for child in content if kind == "BlockQuote" else content[-1]:
                visit(child)
        elif kind in ("BulletList", "OrderedList"):
            for item in _list_items(block):
                for child in item:
                    visit(child)
        elif kind == "DefinitionList":
            for term, definitions in content:
                lines.append(term)
                for definition in definitions:
                    for child in definition:
                        visit(child)
        elif kind not in ("RawBlock", "HorizontalRule"):  # a table: its words, as a line
            lines.append([{"t": "Str", "c": " ".join(plain_text(block).split())}])

    for block in blocks:
        visit(block)
    inlines: list[Any] = []
    for line in lines:
        if inlines:  # raw, because pandoc writes a newline after <br /> that would show
            inlines.append({"t": "RawInline", "c": ["html", "<br />"]})
        inlines.extend(_inline_notes(line))
    return inlines


def _walk(node: Any) -> Iterator[Any]:
    """Every pandoc element in ``node``, in document order (a stack, not recursion: a
    lesson has tens of thousands)."""
    stack = [node]
    while stack:
        item = stack.pop()
        if isinstance(item, list):
            stack.extend(reversed(item))
        elif isinstance(item, dict) and "t" in item:
            yield item
            stack.append(item.get("c"))


def plain_text(node: Any) -> str:
    """The words a reader reads: text, code and footnotes, not raw markup or image files."""
    parts: list[str] = []

    def visit(item: Any) -> None:
        if isinstance(item, list):
            for child in item:
                visit(child)
            return
        if not isinstance(item, dict) or "t" not in item:
            return
        kind, content = item["t"], item.get("c", [])
        if kind == "Str":
            parts.append(content)
        elif kind in _BREAKS:
            parts.append(" ")
        elif kind in ("Code", "CodeBlock", "Math"):
            parts.append(f" {content[-1]} ")
        elif kind in ("RawBlock", "RawInline", "Image"):
            return
        elif kind in ("Link", "Span", "Quoted", "Cite"):
            visit(content[-2] if kind in ("Link",) else content[-1])
        elif kind == "Header":
            visit(content[2])
        elif kind == "Div":
            visit(content[1])
        else:
            visit(content)
        if kind in _BLOCKS:
            parts.append("\n")

    visit(node)
    return "".join(parts)
