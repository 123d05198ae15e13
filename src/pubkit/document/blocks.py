"""Turn a lesson's fenced divs into the theme's course blocks (:mod:`pubkit.sources.blocks`):
each a labelled box, exercises numbered, objectives moved under the header and key points
to the end (:func:`mark`, once per lesson); then, per edition, instructor notes kept or
left out and solutions set beside their exercises, at the end or nowhere
(:func:`arrange`).

A block is a ``Div`` of classes ``block block-<kind>``, its first element its label
heading (``block-label``): the author's first heading or title, else the kind's label in
the lesson's language. Attributes say what :func:`arrange` and the engines need:
``data-element`` (``aside`` or ``section``), ``data-role``, an exercise's
``data-reference`` ("Exercise 3", for ``@ex-…``), a solution's ``data-exercise`` (the id of
its exercise) and ``data-end-label`` ("Solution 3").
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pubkit.document.ast import identifiers, inlines, plain_text, unique_name, walk
from pubkit.document.math import text_with_math
from pubkit.errors import Diagnostic, warning
from pubkit.sources.blocks import END, EXERCISE, INSTRUCTOR, SOLUTION, TOP, BlockKind, Family
from pubkit.sources.config import SOLUTION_PLACES
from pubkit.sources.theme import LABEL_PREFIX

BLOCK_CLASS = "block"
#: The section holding a lesson's references (:mod:`pubkit.document.citations`).
REFERENCES_CLASS = "references-section"
#: The kind whose box the manifest notes (``has_takeaways``).
TAKEAWAYS = "takeaways"
LABEL_CLASS = "block-label"
#: Where an edition puts solutions and hints.
BESIDE, AT_END, OMIT = SOLUTION_PLACES
#: How many boxes deep a box may sit: a solution in an exercise, not a note in that.
MAX_DEPTH = 2
#: A heading that numbers its exercise already: "Challenge 1: …", "Exercise 2".
_NUMBERED = re.compile(r"^\w+\s+\d+\b")


@dataclass(frozen=True)
class Arrangement:
    """What an edition does with the blocks a learner does not always see."""

    solutions: str = AT_END
    instructor: bool = False


def is_block(node: Any) -> bool:
    return isinstance(node, dict) and node.get("t") == "Div" and BLOCK_CLASS in node["c"][0][1]


def kind_of(node: Any) -> str | None:
    """The kind of a block (``exercise``), None for anything else."""
    if not is_block(node):
        return None
    return next(
        (c[6:] for c in node["c"][0][1] if c.startswith("block-") and c != LABEL_CLASS), None
    )


def _attribute(node: Any, name: str) -> str | None:
    return next((v for k, v in node["c"][0][2] if k == name), None)


def mark(
    blocks: list[Any],
    family: Family,
    words: Mapping[str, Any],
    openers: Sequence[tuple[int, str]],
    path: Path,
    lesson_number: int,
) -> list[Diagnostic]:
    """Make, in place, each fenced div of a known kind its labelled block, number the
    exercises, and move blocks placed at the top or the end there; returns what the
    author should know (an unknown block name, a box too deep, a stray solution).
    ``openers`` are the manuscript lines of the divs, in document order
    (:func:`pubkit.sources.manuscript.div_openers`)."""
    marker = _Marker(family, words, path, lesson_number, identifiers(blocks))
    divs = [node for node in walk(blocks) if node["t"] == "Div"]
    if len(divs) == len(openers):  # else a div pandoc made: lines found by text instead
        marker.lines = {id(div): line for div, (line, _) in zip(divs, openers, strict=True)}
    blocks[:] = marker.visit(blocks, depth=0, level=1)
    top = [b for b in blocks if _placed(b, family) == TOP]
    end = [b for b in blocks if _placed(b, family) == END]
    if top or end:
        rest = [b for b in blocks if _placed(b, family) not in (TOP, END)]
        blocks[:] = [*top, *rest, *end]
        for block in (*top, *end):  # a section of the lesson's own, under its title
            _set_label_level(block, 2)
    marker.number_exercises(blocks)
    return marker.notes


def _placed(block: Any, family: Family) -> str | None:
    kind = kind_of(block)
    found = family.kinds.get(kind) if kind else None
    return found.place if found else None


def _set_label_level(block: Any, level: int) -> None:
    label = block["c"][1][0]
    if label["t"] == "Header" and LABEL_CLASS in label["c"][1][1]:
        label["c"][0] = level


class _Marker:
    def __init__(
        self,
        family: Family,
        words: Mapping[str, Any],
        path: Path,
        lesson_number: int,
        taken: set[str],
    ) -> None:
        self.family = family
        self.words = words
        self.path = path
        self.lesson_number = lesson_number
        self.taken = taken
        self.notes: list[Diagnostic] = []
        self.lines: dict[int, int] = {}

    def line(self, node: Any) -> int | None:
        return self.lines.get(id(node))

    def visit(
        self, blocks: list[Any], depth: int, level: int, inside: tuple[str, ...] = ()
    ) -> list[Any]:
        """``blocks`` with their divs made blocks; ``level`` is the heading level they are
        under, ``inside`` the kinds of the boxes around them."""
        result: list[Any] = []
        for block in blocks:
            kind = block.get("t")
            if kind == "Header":
                level = block["c"][0]
            if kind == "Div":
                block = self.div(block, depth, level, inside, result)
                if block is None:
                    continue
            elif kind in ("BlockQuote",):
                block = {**block, "c": self.visit(block["c"], depth, level, inside)}
            elif kind in ("BulletList", "OrderedList"):
                items = block["c"] if kind == "BulletList" else block["c"][1]
                items = [self.visit(item, depth, level, inside) for item in items]
                block = {**block, "c": items if kind == "BulletList" else [block["c"][0], items]}
            result.append(block)
        return result

    def div(
        self, div: Any, depth: int, level: int, inside: tuple[str, ...], siblings: list[Any]
    ) -> Any | None:
        (_ident, classes, _attributes), content = div["c"]
        line = self.line(div)
        kind = next((found for c in classes if (found := self.family.find(c))), None)
        if kind is None:
            self.unknown(classes, line)
            return {**div, "c": [div["c"][0], self.visit(content, depth, level, inside)]}
        if depth >= MAX_DEPTH:
            path = " inside ".join(f"“{k}”" for k in (kind.name, *reversed(inside)))
            self.notes.append(
                warning(
                    self.path,
                    line,
                    f"{path}: a box can hold one more box, not two; "
                    f"the “{kind.name}” block is set as plain text",
                )
            )
            return {**div, "c": [div["c"][0], self.visit(content, depth, level, inside)]}
        if kind.role == SOLUTION and EXERCISE not in {self.family.kinds[k].role for k in inside}:
            exercise = siblings[-1] if siblings and _role(siblings[-1]) == EXERCISE else None
            where = "outside any exercise"
            if exercise is not None:
                self.notes.append(
                    warning(
                        self.path,
                        line,
                        f"“{classes[0]}” block follows an exercise instead of sitting inside it "
                        "(before its closing ':::'); taken as that exercise's",
                    )
                )
                block = self.block(div, kind, depth + 1, level + 1, (*inside, EXERCISE))
                exercise["c"][1].append(block)
                return None
            self.notes.append(
                warning(self.path, line, f"“{classes[0]}” block {where}; set where it is written")
            )
        return self.block(div, kind, depth, level, inside)

    def unknown(self, classes: list[str], line: int | None) -> None:
        name = classes[0] if classes else None
        if name is None or name in self.family.styled or name.startswith(("tbl-", "fig-")):
            return
        nearest = self.family.nearest(name)
        hint = (
            f"; did you mean “{nearest}”?"
            if nearest
            else " (the theme's blocks.yaml lists the known ones)"
        )
        self.notes.append(
            warning(self.path, line, f"unknown block “{name}”, set as a plain block{hint}")
        )

    def block(
        self, div: Any, kind: BlockKind, depth: int, level: int, inside: tuple[str, ...]
    ) -> Any:
        (ident, classes, attributes), content = div["c"]
        attributes = [list(pair) for pair in attributes]
        title = next((v for k, v in attributes if k == "title"), None)
        icon = next((v for k, v in attributes if k == "icon"), None)
        attributes = [[k, v] for k, v in attributes if k not in ("title", "icon")]
        content = self.visit(content, depth + 1, level + 1, (*inside, kind.name))
        heading = content[0] if content and content[0]["t"] == "Header" and title is None else None
        label_level = min(level + 1, 6)
        word = str(self.words.get(f"{LABEL_PREFIX}{kind.name}", kind.name))
        if heading is not None:
            content = content[1:]
            label_id, label_classes, label_attributes = heading["c"][1]
            text = heading["c"][2]
        else:
            label_id, label_classes, label_attributes = "", [], []
            text = text_with_math(title) if title is not None else inlines(word)
        if not label_id:
            label_id = unique_name(f"{ident or kind.name}-label", self.taken)
        # A title of the author's own reads as written; the kind's label (or the author's
        # heading repeating it: "## Key Takeaways") is set as a label.
        own = " ".join(plain_text(text).split()).casefold() != word.casefold()
        label_classes = [
            *label_classes,
            LABEL_CLASS,
            *(["block-title"] if own else []),
            *([] if kind.listed else ["unlisted"]),
        ]
        label = {
            "t": "Header",
            "c": [label_level, [label_id, label_classes, label_attributes], text],
        }
        names = [BLOCK_CLASS, kind.css_class, *(["no-icon"] if icon == "false" else [])]
        classes = [*names, *(c for c in classes if c not in names)]
        attributes += [["data-element", kind.element], ["data-role", kind.role]]
        return {"t": "Div", "c": [[ident, classes, attributes], [label, *content]]}

    def number_exercises(self, blocks: list[Any]) -> None:
        """Number the exercises in document order ("Exercise 3"), give each an id, and
        tell its solutions and hints theirs ("Solution 3")."""
        exercises = [node for node in walk(blocks) if _role(node) == EXERCISE]
        for count, exercise in enumerate(exercises, start=1):
            (ident, _classes, attributes), content = exercise["c"]
            kind = self.family.kinds[kind_of(exercise) or ""]
            number = kind.numbering.format(lesson=self.lesson_number, n=count)
            word = self.words.get(f"{LABEL_PREFIX}{kind.name}", kind.name)
            reference = f"{word} {number}"
            if not ident:
                ident = unique_name(f"{kind.name}-{count}", self.taken)
                exercise["c"][0][0] = ident
            attributes += [["data-number", number], ["data-reference", reference]]
            label = content[0]["c"][2]
            written = " ".join(plain_text(label).split())
            if written == word:
                content[0]["c"][2] = inlines(reference)
            elif not _NUMBERED.match(written):
                content[0]["c"][2] = [*inlines(f"{reference}:"), {"t": "Space"}, *label]
            for answer in content[1:]:
                if _role(answer) != SOLUTION:
                    continue
                answer_kind = self.family.kinds[kind_of(answer) or ""]
                answer_word = self.words.get(f"{LABEL_PREFIX}{answer_kind.name}", answer_kind.name)
                if not answer["c"][0][0]:
                    answer["c"][0][0] = unique_name(f"{answer_kind.name}-{count}", self.taken)
                answer["c"][0][2] += [
                    ["data-exercise", ident],
                    ["data-end-label", f"{answer_word} {number}"],
                    [
                        "data-back",
                        str(self.words.get("back_to", "{target}")).format(target=reference),
                    ],
                ]


def _role(node: Any) -> str | None:
    return _attribute(node, "data-role") if is_block(node) else None


def arrange(blocks: list[Any], arrangement: Arrangement, words: Mapping[str, Any]) -> list[Any]:
    """The lesson's blocks as an edition sets them (``blocks`` is left as it is):
    instructor blocks only in the instructor edition; solutions and hints beside their
    exercises, at the end of the lesson under "Solutions" with links both ways, or left
    out. Absent, not hidden: they are not in that edition's words either."""
    moved: list[Any] = []

    def visit(items: list[Any]) -> list[Any]:
        result = []
        for block in items:
            role = _role(block)
            if role == INSTRUCTOR and not arrangement.instructor:
                continue
            if role == SOLUTION and arrangement.solutions != BESIDE:
                if arrangement.solutions == AT_END:
                    moved.append(_at_end(block))
                continue
            if block.get("t") == "Div":
                content = visit(block["c"][1])
                answers = [m for m in moved if _attribute(m, "data-exercise") == block["c"][0][0]]
                if role == EXERCISE and answers and block["c"][0][0]:
                    content.append(_links_to(answers))
                block = {**block, "c": [block["c"][0], content]}
            elif block.get("t") == "BlockQuote":
                block = {**block, "c": visit(block["c"])}
            elif block.get("t") in ("BulletList", "OrderedList"):
                kind = block["t"]
                lists = block["c"] if kind == "BulletList" else block["c"][1]
                lists = [visit(item) for item in lists]
                block = {**block, "c": lists if kind == "BulletList" else [block["c"][0], lists]}
            result.append(block)
        return result

    arranged = visit(blocks)
    if moved:
        taken = identifiers(blocks)
        heading_id = unique_name("solutions", taken)
        heading = {
            "t": "Header",
            "c": [
                2,
                [heading_id, ["solutions-heading"], []],
                inlines(str(words.get("solutions", "Solutions"))),
            ],
        }
        solutions = {"t": "Div", "c": [["", ["solutions"], []], [heading, *moved]]}
        # The lesson's references stay its last section.
        last = arranged[-1] if arranged else None
        at_end = last is not None and last["t"] == "Div" and REFERENCES_CLASS in last["c"][0][1]
        arranged.insert(len(arranged) - 1 if at_end else len(arranged), solutions)
    return arranged


def _at_end(solution: Any) -> Any:
    """A solution as the end of the lesson lists it: "Solution 3", a link back to its
    exercise after it."""
    (ident, classes, attributes), (label, *content) = solution["c"]
    end_label = _attribute(solution, "data-end-label")
    if end_label and LABEL_CLASS in label["c"][1][1]:
        label = {**label, "c": [3, label["c"][1], inlines(end_label)]}
    else:
        label = {**label, "c": [3, *label["c"][1:]]}
    exercise, back = _attribute(solution, "data-exercise"), _attribute(solution, "data-back")
    if exercise and back:
        link = {
            "t": "Link",
            "c": [["", ["back-to-exercise"], []], inlines(back), [f"#{exercise}", ""]],
        }
        content = [*content, {"t": "Para", "c": [link]}]
    return {"t": "Div", "c": [[ident, classes, attributes], [label, *content]]}


def _links_to(answers: list[Any]) -> Any:
    """The line under an exercise that leads to its solutions at the end."""
    line: list[Any] = []
    for answer in answers:
        if line:
            line += [{"t": "Str", "c": " ·"}, {"t": "Space"}]
        text = _attribute(answer, "data-end-label") or "→"
        line.append(
            {
                "t": "Link",
                "c": [["", ["to-solution"], []], inlines(text), [f"#{answer['c'][0][0]}", ""]],
            }
        )
    return {"t": "Div", "c": [["", ["solution-links"], []], [{"t": "Para", "c": line}]]}
