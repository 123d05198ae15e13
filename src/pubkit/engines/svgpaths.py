"""Turn each distinct SVG path into PDF drawing operators once per process, however often it
is drawn.

WeasyPrint 70 parses an SVG ``<path>``'s ``d`` text every time it draws it, in Python: a
formula pubkit sets (:mod:`pubkit.document.math`, drawn by ziamath as a ``<use>`` of one
glyph path a character) costs 18 ms to draw, 90 % of it that parsing, so a lesson's 200
formulas took 3.7 s in each paged edition. The same glyphs recur across formulas and
editions, so the operators a path's ``d`` gives (with the size and viewport it is drawn
in, on which its units depend) are kept and written again as they were; the PDF is
byte for byte the same (:func:`install` is tested against WeasyPrint's own drawing).
"""

from __future__ import annotations

from collections import OrderedDict
from itertools import islice
from typing import Any

from weasyprint import svg as weasy_svg

_draw_path = weasy_svg.path
#: Paths kept, least recently drawn first; a glyph's path is some hundreds of bytes.
_KEPT: OrderedDict[tuple[Any, ...], tuple[tuple[bytes, ...], tuple[Any, ...]]] = OrderedDict()
MAX_KEPT = 20_000


def draw_path(svg: Any, node: Any, font_size: float) -> None:
    """WeasyPrint's ``path``, with what it writes for each distinct path kept."""
    key = (node.get("d", ""), font_size, svg.inner_width, svg.inner_height)
    found = _KEPT.get(key)
    stream = svg.stream
    if found is None:
        operators, vertices = stream.stream, len(node.vertices)
        start = len(operators)
        _draw_path(svg, node, font_size)
        found = (tuple(operators[start:]), tuple(islice(node.vertices, vertices, None)))
        _KEPT[key] = found
        if len(_KEPT) > MAX_KEPT:
            _KEPT.popitem(last=False)
        return
    _KEPT.move_to_end(key)
    stream.stream.extend(found[0])
    node.vertices.extend(found[1])


def install() -> None:
    """Draw SVG paths with :func:`draw_path` (idempotent)."""
    weasy_svg.TAGS["path"] = draw_path
