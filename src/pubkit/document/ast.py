"""Turn pandoc's JSON AST into what pubkit asks of it: its elements in document order,
the words a reader reads, and its identifiers renamed.

Every walk here keeps its own stack rather than recursing: a lesson has tens of thousands
of elements, and an author's nesting must not exhaust Python's.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import Any

from pubkit.document.sanitize import html_ids, is_raw_html, rename_ids

AST = dict[str, Any]

#: The pandoc elements that are blocks: each ends a line of the plain text.
BLOCKS = frozenset(
    {
        *("Plain", "Para", "LineBlock", "CodeBlock", "RawBlock", "BlockQuote"),
        *("OrderedList", "BulletList", "DefinitionList", "Header", "HorizontalRule"),
        *("Table", "Figure", "Div"),
    }
)
#: The inlines that separate words.
BREAKS = frozenset({"Space", "SoftBreak", "LineBreak"})
#: pandoc AST nodes and where their attributes are: [id, classes, key-values].
ATTR_AT = dict.fromkeys(("Div", "Span", "CodeBlock", "Code", "Table", "Figure", "Link", "Image"), 0)
ATTR_AT["Header"] = 1
#: Elements whose inlines are one part of their content, and which part.
INLINES_AT = {"Header": 2, "Span": 1, "Link": 1, "Image": 1, "Quoted": 1}


def walk(node: Any) -> Iterator[Any]:
    """Every pandoc element in ``node``, in document order."""
    stack = [node]
    pop, push, extend = stack.pop, stack.append, stack.extend
    while stack:
        item = pop()
        if type(item) is list:
            extend(reversed(item))
        elif type(item) is dict and "t" in item:
            yield item
            # Only what may hold elements: not a Str's text, nor the None of a Space.
            if type(content := item.get("c")) is list or type(content) is dict:
                push(content)


class _LineEnd:
    """Pushed beneath a block's content: the line break the text takes after it."""


_LINE_END = _LineEnd()


def plain_text(node: Any) -> str:
    """The words a reader reads: text, code and footnotes, not raw markup or image files."""
    parts: list[str] = []
    stack: list[Any] = [node]
    while stack:
        item = stack.pop()
        if item is _LINE_END:
            parts.append("\n")
            continue
        if isinstance(item, list):
            stack.extend(reversed(item))
            continue
        if not isinstance(item, dict) or "t" not in item:
            continue
        kind, content = item["t"], item.get("c", [])
        if kind in BLOCKS:
            stack.append(_LINE_END)
        if kind == "Str":
            parts.append(content)
        elif kind in BREAKS:
            parts.append(" ")
        elif kind in ("Code", "CodeBlock", "Math"):
            parts.append(f" {content[-1]} ")
        elif kind in ("RawBlock", "RawInline", "Image"):
            if kind == "RawBlock":
                stack.pop()  # no text, and no line of its own
        elif kind == "Link":
            stack.append(content[-2])
        elif kind in ("Span", "Quoted", "Cite"):
            stack.append(content[-1])
        elif kind == "Header":
            stack.append(content[2])
        elif kind == "Div":
            stack.append(content[1])
        else:
            stack.append(content)
    return "".join(parts)


def list_items(block: Any) -> list[Any]:
    """The items of a ``BulletList`` or ``OrderedList``."""
    items: list[Any] = block["c"] if block["t"] == "BulletList" else block["c"][1]
    return items


def identifiers(blocks: Any) -> set[str]:
    """Every identifier the elements of ``blocks`` give, in pandoc's attributes and in raw
    HTML: what a link's ``#section`` may name."""
    found: set[str] = set()
    for node in walk(blocks):
        if node["t"] in ATTR_AT:
            if name := node["c"][ATTR_AT[node["t"]]][0]:
                found.add(name)
        elif is_raw_html(node):
            found.update(html_ids(node["c"][1]))
    return found


def free_name(name: str, taken: set[str]) -> str:
    """``name-1`` (or the first of ``name-2``, ``name-3``… not ``taken``), now taken."""
    suffix = 1
    while f"{name}-{suffix}" in taken:
        suffix += 1
    taken.add(f"{name}-{suffix}")
    return f"{name}-{suffix}"


def unique_name(name: str, taken: set[str]) -> str:
    """``name`` itself when no element has it yet, else :func:`free_name`; now taken."""
    if name in taken:
        return free_name(name, taken)
    taken.add(name)
    return name


def inlines(text: str) -> list[Any]:
    """``text`` as pandoc's inlines: its words, and a space wherever it had any."""
    found: list[Any] = []
    for index, part in enumerate(re.split(r"(\s+)", text)):
        if index % 2:
            found.append({"t": "Space"})
        elif part:
            found.append({"t": "Str", "c": part})
    return found


def rename_ids_in_blocks(blocks: list[Any], rename: Callable[[str], str]) -> None:
    """Rename, in place, every identifier the elements of ``blocks`` give (in pandoc's
    attributes and in raw HTML), and every link to one, by ``rename``; an element without
    an identifier keeps none."""
    for node in walk(blocks):
        if node["t"] in ATTR_AT:
            _rename_attributes(node["t"], node["c"], rename)
        elif is_raw_html(node):
            node["c"][1] = rename_ids(node["c"][1], rename)


def renamed_ids(blocks: list[Any], rename: Callable[[str], str]) -> list[Any]:
    """A copy of ``blocks`` with the identifiers renamed as :func:`rename_ids_in_blocks`
    renames them in place; ``blocks`` are left as they are (a lesson's document, which
    the same worker may set again for another edition)."""

    def how(node: dict[str, Any]) -> dict[str, Any] | None:
        if node["t"] in ATTR_AT:
            content = replaced(node["c"], how)  # a copy, its elements renamed in turn
            _rename_attributes(node["t"], content, rename)
            return {**node, "c": content}
        if is_raw_html(node):
            return {**node, "c": [node["c"][0], rename_ids(node["c"][1], rename)]}
        return None

    result: list[Any] = replaced(blocks, how)
    return result


def _rename_attributes(kind: str, content: list[Any], rename: Callable[[str], str]) -> None:
    """Rename, in ``content`` (an element's own list), its identifier and, for a link to
    one, its target; the attributes and the target are replaced, not changed."""
    at = ATTR_AT[kind]
    identifier, *rest = content[at]  # a list, or a tuple made by pubkit
    content[at] = [rename(identifier) if identifier else "", *rest]
    if kind == "Link" and content[2][0].startswith("#"):
        content[2] = ["#" + rename(content[2][0][1:]), *content[2][1:]]


def rewrite_words(blocks: Any, mark: str, how: Callable[[list[Any]], list[Any]]) -> None:
    """Replace, in place, each run of inlines in ``blocks`` with a word holding ``mark``
    (a paragraph's, a heading's, a caption's, a span's, a link's text…) by ``how`` of it."""
    for node in walk(blocks):
        content = node.get("c")
        at = INLINES_AT.get(node["t"])
        words = content if at is None else content[at]
        if isinstance(words, list) and any(
            isinstance(item, dict) and item.get("t") == "Str" and mark in item["c"]
            for item in words
        ):
            if at is None:
                node["c"] = how(words)
            else:
                content[at] = how(words)


def replaced(node: Any, how: Callable[[dict[str, Any]], dict[str, Any] | None]) -> Any:
    """A copy of ``node`` in which each element that ``how`` gives a replacement for is
    replaced (what it does not replace is copied, its content searched in turn); ``node``
    itself is left as it is. Only the containers on the way are copied."""
    if isinstance(node, list):
        return [replaced(part, how) for part in node]
    if isinstance(node, dict) and "t" in node:
        if (instead := how(node)) is not None:
            return instead
        return {**node, "c": replaced(node["c"], how)} if "c" in node else node
    return node
