"""Turn a lesson's AST into the HTML fragment the paged editions lay out: each course block
(:mod:`pubkit.document.blocks`) an ``<aside>`` or ``<section>`` (cut where a long one must
start again on a new page), each footnote an inline element that CSS floats to the foot
of its page."""

from __future__ import annotations

import html
from collections.abc import Iterator, Mapping
from typing import Any

from pubkit.document import pandoc
from pubkit.document.ast import AST, BREAKS, list_items, plain_text, replaced, walk
from pubkit.document.blocks import LABEL_CLASS, is_block
from pubkit.document.code import highlighted
from pubkit.document.math import for_pages, formulas
from pubkit.sources.manuscript import Lesson

#: Class of the inline element a footnote becomes in the paged editions (CSS ``float: footnote``).
FOOTNOTE_CLASS = "footnote"


def to_html(
    ast: AST,
    lesson: Lesson,
    continuations: Mapping[int, frozenset[int]] | None = None,
    continued: str = "(continued)",
) -> str:
    """Write the AST as the HTML5 fragment the paged editions lay out (no <html>, no header).

    Footnotes stay where they are called, as inline elements that CSS floats to the foot
    of the page; the EPUB keeps pandoc's own notes. ``continuations`` maps a block's box
    (by its place in the lesson) to the units (list items or blocks) where it must
    start again on a new page, headed "<its heading> <continued>"; a box listed there
    with no units is set to flow across pages.
    """
    boxes = _Boxes(continuations or {}, continued)
    # Formulas drawn (WeasyPrint has no MathML), code highlighted.
    blocks = highlighted(formulas(_bookmarked(ast["blocks"]), for_pages), paged=True)
    html_ast = {**ast, "blocks": _inline_notes(list(boxes.transform(blocks)))}
    return pandoc.html(html_ast, source=lesson.path).wait().decode("utf-8")


def _bookmarked(blocks: list[Any]) -> list[Any]:
    """``blocks`` with each heading that holds a formula given its words, the formula's
    TeX among them, as its PDF bookmark (``data-bookmark``, read by the stylesheet's
    ``bookmark-label``): drawn, a formula would be left out of the bookmark."""

    def bookmark(node: dict[str, Any]) -> dict[str, Any] | None:
        if node["t"] != "Header" or not any(n["t"] == "Math" for n in walk(node["c"][2])):
            return None
        level, (ident, classes, attributes), words = node["c"]
        said = " ".join(plain_text(words).split())
        return {**node, "c": [level, [ident, classes, [*attributes, ["bookmark", said]]], words]}

    # A copy always: what follows rewrites the blocks it is given, and the document's own
    # serve the next edition.
    return list(replaced(blocks, bookmark))


#: The attribute that numbers each block's box in the lesson, for
#: :func:`pubkit.engines.layout.continuations`.
BOX_NUMBER = "data-box"
#: The class of the "(continued)" label a box's continuation opens with.
CONTINUED_LABEL = "continued-label"


class _Boxes:
    """Give each block its own element: ``<aside>`` (or ``<section>``) labelled by its
    heading.

    Only for the HTML fragment: the EPUB writer wraps headings in sections, which raw
    tags would cut across, so :mod:`pubkit.engines.epubparts` makes its asides after
    pandoc. Each box carries :data:`BOX_NUMBER` (its place in the lesson) so that
    :func:`pubkit.engines.layout.continuations` can say where a long one must break.
    """

    def __init__(self, continuations: Mapping[int, frozenset[int]], continued: str) -> None:
        self.continuations = continuations
        self.continued = continued
        self.count = 0

    def transform(self, blocks: list[Any]) -> Iterator[Any]:
        for block in blocks:
            if is_block(block):
                yield from self._aside(block)
            elif isinstance(block, dict) and block.get("t") == "Div":
                attr, content = block["c"]
                yield {"t": "Div", "c": [attr, list(self.transform(content))]}
            else:
                yield block

    def _aside(self, block: Any) -> Iterator[Any]:
        number, self.count = self.count, self.count + 1
        (ident, classes, attrs), content = block["c"]
        given = dict(attrs)
        element = "section" if given.get("data-element") == "section" else "aside"
        content = list(self.transform(content))
        heading = next((b for b in content if b.get("t") == "Header"), None)
        label = heading["c"][2] if heading else []
        breaks = self.continuations.get(number, frozenset())
        flowing = ["block-long"] if number in self.continuations else []
        attributes = {
            "id": ident,
            "class": " ".join([*classes, *flowing]),
            "aria-labelledby": heading["c"][1][0] if heading else "",
            "lang": given.get("lang", ""),
            "dir": given.get("dir", ""),
            BOX_NUMBER: str(number),
        }
        yield _raw_tag(element, attributes)
        unit = 0
        for part in content:
            is_list = part.get("t") in ("BulletList", "OrderedList")
            items = list_items(part) if is_list else [None]  # a list's units are its items
            kept: list[Any] = []
            for index, item in enumerate(items):
                if unit in breaks and unit > 0:
                    if kept:
                        yield _list_part(part, kept, index - len(kept))
                        kept = []
                    yield {"t": "RawBlock", "c": ["html", f"</{element}>"]}
                    yield _raw_tag(
                        element,
                        {
                            "class": " ".join([*classes, "block-continued"]),
                            "aria-labelledby": attributes["aria-labelledby"],
                            "lang": attributes["lang"],
                            "dir": attributes["dir"],
                            BOX_NUMBER: str(number),
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
        yield {"t": "RawBlock", "c": ["html", f"</{element}>"]}


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


def _continued_label(heading: list[Any], continued: str) -> Any:
    inlines = [*heading, {"t": "Space"}, {"t": "Str", "c": continued}]
    return {
        "t": "Div",
        "c": [
            ["", [LABEL_CLASS, CONTINUED_LABEL], [["aria-hidden", "true"]]],
            [{"t": "Plain", "c": inlines}],
        ],
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
                if items and items[-1].get("t") not in BREAKS:
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
            for item in list_items(block):
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
