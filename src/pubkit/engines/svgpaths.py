"""Draw the SVG paths of formulas fast, and each distinct path once per process, however
often it is drawn.

WeasyPrint 70 parses an SVG ``<path>``'s ``d`` text every time it draws it, in general
and slow Python (a unit lookup for every number): a lesson's 200 formulas, drawn by
ziamath (:mod:`pubkit.document.math`) as 150,000 coordinates, took 2 s to draw in each
paged edition, most of it that parsing. Two things make it cheap:

- a path written as ziafont writes glyph outlines (absolute ``M``, ``L``, ``Q``, ``C``
  and ``Z``, each with all its numbers, nothing else) is read by :func:`_simple_path`,
  which writes the operators WeasyPrint's own reading would, a sixth of its time;
- the operators a path's ``d`` gives (with the size and viewport it is drawn in, on which
  its units depend) are kept and written again as they were.

The PDF is byte for byte the same as WeasyPrint's own drawing (tested against it).
"""

from __future__ import annotations

import re
from collections import OrderedDict
from functools import lru_cache
from itertools import islice
from typing import Any

from weasyprint import svg as weasy_svg

_draw_path = weasy_svg.path
#: Paths kept, least recently drawn first; a formula's path is some tens of kilobytes.
_KEPT: OrderedDict[tuple[Any, ...], tuple[tuple[bytes, ...], tuple[Any, ...]]] = OrderedDict()
MAX_KEPT = 20_000
#: A path as ziafont writes one: absolute commands, plain numbers, single spaces.
_SIMPLE = re.compile(r"[MLQCZ0-9. -]*")
#: Numbers each command of a simple path takes.
_ARITY = {"M": 2, "L": 2, "Q": 4, "C": 6, "Z": 0}
_MARKERS = ("marker", "marker-start", "marker-mid", "marker-end")


def draw_path(svg: Any, node: Any, font_size: float) -> None:
    """WeasyPrint's ``path``, with what it writes for each distinct path kept."""
    key = (node.get("d", ""), font_size, svg.inner_width, svg.inner_height)
    found = _KEPT.get(key)
    stream = svg.stream
    if found is None:
        operators, vertices = stream.stream, len(node.vertices)
        start = len(operators)
        if not _simple_path(stream, node):
            _draw_path(svg, node, font_size)
        found = (tuple(operators[start:]), tuple(islice(node.vertices, vertices, None)))
        _KEPT[key] = found
        if len(_KEPT) > MAX_KEPT:
            _KEPT.popitem(last=False)
        return
    _KEPT.move_to_end(key)
    stream.stream.extend(found[0])
    node.vertices.extend(found[1])


def _simple_path(stream: Any, node: Any) -> bool:
    """Write the operators of a path written as ziafont writes glyphs, as WeasyPrint's
    ``path`` would; False (nothing written) for any other path, or one with markers (whose
    vertices only WeasyPrint's reading records)."""
    d = node.get("d", "")
    if not _SIMPLE.fullmatch(d) or any(name in node.attrib for name in _MARKERS):
        return False
    tokens = d.split()
    written = [b"0 0 m"]  # WeasyPrint's path() starts at the origin
    write = written.append
    x = y = 0.0
    first: tuple[float, float] | None = None
    last = ""
    index, count = 0, len(tokens)
    try:
        while index < count:
            letter = tokens[index]
            arity = _ARITY[letter]
            if index + arity >= count:
                return False
            if last in ("", "M", "Z"):
                first = None if letter in "MZ" else (x, y)
            if letter == "Q":  # a cubic curve, its control points as WeasyPrint puts them
                x2, y2 = float(tokens[index + 1]), float(tokens[index + 2])
                (x3_text, x3), (y3_text, y3) = _read(tokens[index + 3]), _read(tokens[index + 4])
                write(
                    f"{_text(x2 * 2 / 3 + x / 3)} {_text(y2 * 2 / 3 + y / 3)}"
                    f" {_text(x2 * 2 / 3 + x3 / 3)} {_text(y2 * 2 / 3 + y3 / 3)}"
                    f" {x3_text} {y3_text} c".encode()
                )
                x, y = x3, y3
            elif arity == 2:  # M, L
                (x_text, x), (y_text, y) = _read(tokens[index + 1]), _read(tokens[index + 2])
                write(f"{x_text} {y_text} {_OPERATOR[letter]}".encode())
            elif arity:  # C: its numbers as they are
                numbers = [_read(token) for token in tokens[index + 1 : index + 7]]
                write(" ".join([*(text for text, _ in numbers), "c"]).encode())
                x, y = numbers[4][1], numbers[5][1]
            elif first is not None:  # Z, closing a path that has drawn
                write(b"h")
                x, y = first
            index += 1 + arity
            last = letter
    except (KeyError, ValueError):
        return False
    stream.stream.extend(written)
    return True


_OPERATOR = {"M": "m", "L": "l"}


def _text(value: float) -> str:
    """A number as pydyf writes one."""
    return str(int(value)) if value.is_integer() else f"{value:f}".rstrip("0")


@lru_cache(maxsize=1 << 16)
def _read(token: str) -> tuple[str, float]:
    """A number of a path's text, as pydyf writes it (ziafont's are mostly written so),
    and its value."""
    value = float(token)
    return _text(value), value


def install() -> None:
    """Draw SVG paths with :func:`draw_path` (idempotent)."""
    weasy_svg.TAGS["path"] = draw_path
