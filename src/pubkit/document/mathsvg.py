"""Draw MathML as SVG with ziamath, in the form WeasyPrint draws fastest.

ziamath (with its bundled STIX Two Math, SIL Open Font License 1.1) turns the outlines of
the font's glyphs into SVG paths; no font is embedded. Two things make its drawings cheap:

- **Glyphs as paths in the formula's coordinates**, each run of one colour merged into one
  path (:func:`_merge_glyphs`): WeasyPrint draws a ``<use>`` of a glyph ``<symbol>`` (ziamath's
  default) as an SVG document of its own, and a formula then as a hundred nodes.
- **A row measured only when something in it stretches** (:func:`_row_height`): ziamath sets
  each row twice, once without its stretchy operators to learn how tall they must be, and
  so every row nested in it 2, 4, 8 times; a row with no stretchy operator anywhere in it
  never reads that height, so it is not measured. And each element's style is read from a
  shallow copy of its parent's, not a deep one (``dataclasses.asdict``) it reads four
  fields of. The drawings are the same (tested against ziamath's own), in half the time.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache, lru_cache
from typing import Any
from xml.etree import ElementTree

#: The size formulas are drawn at; the paged editions scale them to the text's (em).
DRAWN_AT = 20.0
#: Decimals of the drawings' coordinates: a two-thousandth of an em (0.005 pt in 10 pt
#: text), finer than any printer; ziafont's 3 make a lesson's PDFs a fifth larger.
PRECISION = 2


def draw(formula: str) -> str:
    """The MathML ``formula`` drawn as an SVG document."""
    from ziafont.config import config
    from ziamath.zmath import Math  # loaded for lessons with math only

    _faster_ziamath()
    config.svg2 = False  # paths, not <use> of <symbol>
    config.precision = PRECISION
    drawing = Math(formula, size=DRAWN_AT, margin=0).svgxml()
    _merge_glyphs(drawing)
    return ElementTree.tostring(drawing, encoding="unicode")


#: What a glyph's path and a rule's rectangle hold, as ziafont and ziamath draw them.
_GLYPH = {"d", "fill"}
_RULE = {"x", "y", "width", "height", "fill"}


def _merge_glyphs(parent: ElementTree.Element) -> None:
    """Each run of glyphs (and rules) of one colour under ``parent`` made one path, the
    rules' rectangles kept after it. Opaque shapes of one colour look the same in any
    order; a rule stays a rectangle so that no outline's winding can cancel it out."""
    children = list(parent)
    for child in children:
        _merge_glyphs(child)
    runs: list[list[ElementTree.Element]] = []
    for child in children:
        simple = (child.tag == "path" and set(child.attrib) == _GLYPH) or (
            child.tag == "rect" and set(child.attrib) == _RULE
        )
        if not simple:
            runs.append([])
        elif runs and runs[-1] and runs[-1][0].get("fill") == child.get("fill"):
            runs[-1].append(child)
        else:
            runs.append([child])
    for run in runs:
        glyphs = [element for element in run if element.tag == "path"]
        if len(glyphs) < 2:
            continue
        glyphs[0].set("d", " ".join(element.get("d", "").strip() for element in glyphs))
        rules = [element for element in run if element.tag == "rect"]
        for element in glyphs[1:] + rules:
            parent.remove(element)
        after = list(parent).index(glyphs[0]) + 1
        for offset, rule in enumerate(rules):  # after the glyphs, in their order
            parent.insert(after + offset, rule)


@cache
def _stretchy() -> frozenset[str]:
    """Every operator ziamath's dictionary lets stretch, in any form."""
    from ziamath import operators

    table: dict[tuple[str, str], dict[str, str]] = operators.operators
    return frozenset(name for (name, _form), p in table.items() if p.get("stretchy") == "true")


def _may_stretch(element: ElementTree.Element) -> bool:
    """Whether an operator in ``element`` may stretch: one marked stretchy, or one the
    dictionary lets stretch and not marked otherwise (ziamath reads an ``mi`` holding an
    operator's name as that operator)."""
    stretchy = _stretchy()
    for node in element.iter():
        if node.tag not in ("mo", "mi"):
            continue
        marked = node.get("stretchy")
        if marked is not None and node.tag == "mo":
            if marked != "false":
                return True
        elif (node.text or "").strip() in stretchy:
            return True
    return False


@cache
def _faster_ziamath() -> None:
    """Give ziamath's rows :func:`_row_height`, its styles a shallow copy, its lengths and
    coordinates quicker formatting (once)."""
    import dataclasses

    from ziafont import font, glyph, svgpath
    from ziamath import drawable, styles, zmath
    from ziamath.nodes import mnode, mrow
    from ziamath.nodes.mnode import Mnode as MNode
    from ziamath.nodes.mrow import Mrow

    names = tuple(field.name for field in dataclasses.fields(styles.MathStyle))

    def shallow(style: Any) -> dict[str, Any]:
        return {name: getattr(style, name) for name in names}

    setattr(styles, "asdict", shallow)  # noqa: B010 (parse_style reads the copy, no more)

    def merged(attributes: dict[str, Any], inherited: dict[str, Any]) -> dict[str, Any]:
        """The ChainMap parse_style reads six keys of, as one dict: the same answers."""
        return {**inherited, **attributes}

    setattr(styles, "ChainMap", merged)  # noqa: B010

    measure: Callable[..., tuple[float, float]] = Mrow._get_height_nostretch

    def _row_height(
        row: Any, line: list[ElementTree.Element], **kwargs: Any
    ) -> tuple[float, float]:
        """The row's height without its stretchy operators, which they stretch to; only
        they read it (as ``rowymin``, ``rowymax``), so a row without one is not measured."""
        if any(_may_stretch(child) for child in line):
            return measure(row, line, **kwargs)
        return 0.0, 0.0  # read by no one

    setattr(Mrow, "_get_height_nostretch", _row_height)  # noqa: B010

    # A length attribute's points, worked out once per text and size: ziamath builds a
    # table of fourteen named spaces at every call, 20,000 calls a lesson's 200 formulas.
    sized: Callable[..., float] = MNode.size_px
    points = lru_cache(maxsize=1024)(lambda size, font_size: sized(None, size, font_size))

    def size_px(node: Any, size: str, fontsize: float | None = None) -> float:
        return points(size, node.glyphsize if fontsize is None else fontsize)

    setattr(MNode, "size_px", size_px)  # noqa: B010

    # A coordinate as ziafont writes it (its 300,000 a lesson), without the format
    # specification built again for each: the same text at :data:`PRECISION` decimals.
    spec = f".{PRECISION}f"

    def fmt(value: float) -> str:
        return format(float(value), spec).rstrip("0").rstrip(".")

    for module in (svgpath, glyph, font, drawable, zmath, mnode, mrow):
        setattr(module, "fmt", fmt)  # noqa: B010
