"""Turn labelled figures, tables, equations and sections, and the references to them,
into numbered captions and links, in the syntax Quarto users write:

- ``![Caption](chart.png){#fig-chart}``: "Figure 1: Caption";
- ``::: {#tbl-sales}`` around a table and its caption (the block's last paragraph), or
  pandoc's caption after (or before) the table, ``: Caption {#tbl-sales}``: "Table 1:
  Caption", as the table's own caption (:func:`caption_tables`);
- ``$$…$$ {#eq-energy}``: the equation numbered "(1)" at the right;
- ``## Area {#sec-area}``: a section, referred to by its heading;
- ``::: {#ex-loops .exercise}``: an exercise, referred to as its block numbered it
  ("Exercise 3", :mod:`pubkit.document.blocks`);
- ``@fig-chart`` (or ``[@fig-chart]``) in the text: "Figure 1", linked to it.

pandoc-crossref's spelling of the same labels, ``{#fig:chart}`` and ``@fig:chart``, reads
the same (the label keeps its name as written).

Figures, tables and equations are numbered per lesson, each kind on its own, as the
theme numbers them (``{n}``, or ``{lesson}.{n}``: :mod:`pubkit.sources.numbering`, the
same in the lesson's editions and its module's collection), in the lesson's language
(the theme's strings). A reference to a label the lesson does not have,
and a label given twice, are errors at their lines.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pubkit.document.ast import plain_text, rewrite_words, walk
from pubkit.errors import Diagnostic, error

#: The kinds of label, and the word each is referred to by (a key of the theme's strings).
KINDS = {"fig": "figure", "tbl": "table", "eq": "equation", "sec": None, "ex": None}
#: A label's name: its kind, then ``-`` (Quarto's) or ``:`` (pandoc-crossref's), then more.
_LABEL = re.compile(r"(fig|tbl|eq|sec|ex)[-:]")
#: A reference in a word of the text: ``@fig-chart``, ``[@fig-chart]``, ``@fig-chart,``,
#: ``@fig:chart``. Not inside a word: ``ops@sec-team.org`` is an address.
_REFERENCE = re.compile(r"(?<![\w@.])(\[?)@((?:fig|tbl|eq|sec|ex)[-:][\w:-]*\w)(\]?)")


@dataclass(frozen=True)
class Labels:
    """How the lesson's labels read: the words of its language ("Figure"), the theme's
    numbering of each kind, and the lesson's number that numbering may show."""

    words: Mapping[str, Any]
    numbering: Mapping[str, str]
    lesson: int

    def numbered(self, word: str, count: int) -> str:
        """The number of the ``count``-th figure (``word``) of the lesson: "2", "50.2"."""
        return self.numbering.get(word, "{n}").format(lesson=self.lesson, n=count)


@dataclass(frozen=True)
class Label:
    kind: str
    #: Its number as the theme numbers its kind: "2", "50.2" (sections: "").
    number: str
    #: What a reference to it reads: "Figure 2", or a section's heading.
    text: str


def number(
    blocks: list[Any], how: Labels, line_of: Callable[[str], int | None], path: Path
) -> list[Diagnostic]:
    """Number, in place, the lesson's labelled figures, tables and equations, caption
    them, and turn every reference into a link that reads "Figure 2"; returns the errors
    (a label given twice, a reference to no label)."""
    labels: dict[str, Label] = {}
    problems: list[Diagnostic] = []
    counts = dict.fromkeys(KINDS, 0)

    def label(name: str, heading: str = "") -> Label | None:
        kind = _kind(name)
        if name in labels:
            problems.append(error(path, line_of(f"#{name}"), f"label “{name}” is given twice"))
            return None
        counts[kind] += 1
        word = KINDS[kind]
        if word is None:
            labels[name] = Label(kind, "", heading)
        else:
            shown = how.numbered(word, counts[kind])
            labels[name] = Label(kind, shown, f"{how.words.get(word, word.title())} {shown}")
        return labels[name]

    for node in walk(blocks):
        kind = node["t"]
        ident = node["c"][0][0] if kind in ("Figure", "Div") else ""
        if kind == "Figure" and _kind(ident) == "fig" and (found := label(ident)):
            _caption_figure(node, found.text)
        elif kind == "Div" and _kind(ident) == "tbl" and (found := label(ident)):
            _caption_table(node, found.text)
        elif kind == "Header" and _kind(node["c"][1][0]) == "sec":
            label(node["c"][1][0], " ".join(plain_text(node["c"][2]).split()))
        elif kind == "Div" and _kind(ident) == "ex":
            reference = dict(node["c"][0][2]).get("data-reference")
            if reference:  # an exercise, numbered by its block
                label(ident, reference)
        elif kind in ("Para", "Plain"):
            _number_equations(node["c"], label)
    rewrite_words(blocks, "@", lambda words: _linked(words, labels, line_of, path, problems))
    return problems


def _kind(name: str) -> str:
    """The kind of label ``name`` is ("fig" for ``fig-chart`` and ``fig:chart``); "" for
    a name that is no label."""
    found = _LABEL.match(name)
    return found[1] if found else ""


def caption_tables(blocks: list[Any]) -> None:
    """Give, in place, each table its caption written as pandoc's Markdown and Quarto
    write one (CommonMark has none): a paragraph just after the table (or just before
    it) that opens with ``: ``. A label at its end, ``{#tbl-sales}``, labels the table:
    both are then wrapped as ``::: {#tbl-sales}`` would wrap them. Done before formulas
    take the attributes written after them (a caption may end with a formula)."""
    stack: list[Any] = [blocks]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            stack.append(item.get("c"))
            continue
        if not isinstance(item, list):
            continue
        index = 0
        while index < len(item) - 1:
            first, second = item[index : index + 2]
            if _is_table(first) and (words := _caption_words(second)) is not None:
                item[index : index + 2] = [_captioned(first, words)]
            elif _is_table(second) and (words := _caption_words(first)) is not None:
                item[index : index + 2] = [_captioned(second, words)]
            index += 1
        stack.extend(item)


def _is_table(block: Any) -> bool:
    return isinstance(block, dict) and block.get("t") == "Table"


def _caption_words(block: Any) -> list[Any] | None:
    """The words of a paragraph that opens with ``: `` (a table's caption), else None."""
    if not (isinstance(block, dict) and block.get("t") == "Para"):
        return None
    words = block["c"]
    if words[:2] != [{"t": "Str", "c": ":"}, {"t": "Space"}]:
        return None
    return list(words[2:])


def _captioned(table: Any, words: list[Any]) -> Any:
    """The table captioned with ``words``; in a block labelled as they end
    (``{#tbl-…}``, which pandoc reads as an empty span), where they do."""
    last = words[-1] if words else None
    if (
        isinstance(last, dict)
        and last.get("t") == "Span"
        and last["c"][0][0]
        and all(part.get("t") in ("Space", "SoftBreak") for part in last["c"][1])
    ):
        words = words[:-1]
        while words and words[-1].get("t") in ("Space", "SoftBreak"):
            words.pop()
        block = [table, {"t": "Para", "c": words}]
        return {"t": "Div", "c": [[last["c"][0][0], [], []], block]}
    table["c"][1] = [None, [{"t": "Plain", "c": words}]]
    return table


def _caption_figure(figure: Any, text: str) -> None:
    caption = figure["c"][1][1]
    prefix = [{"t": "Str", "c": f"{text}:"}, {"t": "Space"}]
    if caption and caption[0]["t"] in ("Plain", "Para"):
        caption[0]["c"] = [*prefix, *caption[0]["c"]]
    else:
        figure["c"][1][1] = [{"t": "Plain", "c": [{"t": "Str", "c": text}]}]


def _caption_table(block: Any, text: str) -> None:
    """The block's last paragraph becomes its table's caption, after "Table 1:"."""
    content = block["c"][1]
    tables = [item for item in content if item["t"] == "Table"]
    if not tables:
        return
    words = content.pop()["c"] if content[-1]["t"] in ("Para", "Plain") else []
    prefix = [{"t": "Str", "c": f"{text}:" if words else text}]
    prefix += [{"t": "Space"}] if words else []
    tables[0]["c"][1] = [None, [{"t": "Plain", "c": [*prefix, *words]}]]


def _number_equations(inlines: list[Any], label: Callable[[str], Label | None]) -> None:
    """A display formula labelled ``{#eq-…}`` (the span around it,
    :func:`pubkit.document.math.attach_attributes`): the span now holds the formula, in a
    span of its own that centres it (a MathML formula keeps its own layout that way), then
    its number "(1)"."""
    for index, item in enumerate(inlines):
        if not (isinstance(item, dict) and item.get("t") == "Span"):
            continue
        (ident, classes, attributes), content = item["c"]
        if (
            _kind(ident) == "eq"
            and len(content) == 1
            and content[0].get("t") == "Math"
            and content[0]["c"][0]["t"] == "DisplayMath"
            and (found := label(ident)) is not None
        ):
            shown = [{"t": "Str", "c": f"({found.number})"}]
            numbered = {"t": "Span", "c": [["", ["equation-number"], []], shown]}
            # The formula's own attributes (an author's ``alt``) stay beside it.
            formula = {"t": "Span", "c": [["", ["equation-formula"], attributes], content]}
            attr = [ident, ["equation", *classes], []]
            inlines[index] = {"t": "Span", "c": [attr, [formula, numbered]]}


def _label_in(written: str, labels: Mapping[str, Label]) -> str | None:
    """The label a reference names: all of it, or the label it begins with when the rest
    is a word of another script written onto it (a Korean or Japanese particle, as in
    ``@fig-dice처럼`` "like Figure 1"), labels being written in ASCII."""
    if written in labels:
        return written
    for end in range(len(written) - 1, 0, -1):
        if not written[end].isascii() and written[:end] in labels:
            return written[:end]
    return None


def _linked(
    inlines: list[Any],
    labels: Mapping[str, Label],
    line_of: Callable[[str], int | None],
    path: Path,
    problems: list[Diagnostic],
) -> list[Any]:
    result: list[Any] = []
    for item in inlines:
        if not (isinstance(item, dict) and item.get("t") == "Str" and "@" in item["c"]):
            result.append(item)
            continue
        text, start = item["c"], 0
        for found in _REFERENCE.finditer(text):
            name = _label_in(found[2], labels)
            if name is None:
                why = f"reference to “{found[2]}”: no such label in this lesson"
                problems.append(error(path, line_of(f"@{found[2]}"), why))
                continue
            if found.start() > start:
                result.append({"t": "Str", "c": text[start : found.start()]})
            target = labels[name]
            words = [{"t": "Str", "c": target.text}]
            link = [["", ["cross-reference"], []], words, [f"#{name}", ""]]
            result.append({"t": "Link", "c": link})
            whole = name == found[2]
            start = found.end() if whole else found.start(2) + len(name)
        if start < len(text):
            result.append({"t": "Str", "c": text[start:]})
    return result
