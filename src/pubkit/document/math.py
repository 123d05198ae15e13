"""Turn a lesson's TeX math into what each edition sets: MathML (checked, with its TeX as
the text alternative) for the EPUB, and for the paged editions the same MathML drawn as
SVG (WeasyPrint has no MathML), sitting on the text's baseline at the text's size.

``$…$`` and ``$$…$$`` are math by pandoc's rules, which keep prices as prices: an opening
``$`` followed by a space, or a closing one followed by a digit, is not math, and ``\\$``
is a dollar sign. The TeX is converted by latex2mathml and drawn by ziamath; TeX either
cannot read is an error at its line, never raw TeX in an output.
"""

from __future__ import annotations

import base64
import html
import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from pubkit.document.ast import replaced, walk
from pubkit.errors import Diagnostic, error

MATHML = "http://www.w3.org/1998/Math/MathML"
#: The size formulas are drawn at; the paged editions scale them to the text's (em).
_DRAWN_AT = 20.0
#: What latex2mathml leaves of a command it does not know: its name as a token.
_UNKNOWN = re.compile(r"<(?:mi|mo|mtext)[^>]*>(\\[A-Za-z]+)</")
#: A word that opens with ``$`` and holds a TeX command, left as text by pandoc: math
#: whose braces do not balance (pandoc reads only balanced math).
_STRAY_TEX = re.compile(r"\$+[^$\s]*\\[A-Za-z]+")
_VIEWBOX = re.compile(r'viewBox="([-\d.]+) ([-\d.]+) ([-\d.]+) ([-\d.]+)"')


class MathError(ValueError):
    """TeX that cannot be set: the message names what is wrong."""


def is_math(node: Any) -> bool:
    return isinstance(node, dict) and node.get("t") == "Math"


def _display(node: Any) -> bool:
    return bool(node["c"][0]["t"] == "DisplayMath")


@lru_cache(maxsize=4096)
def mathml(tex: str, display: bool) -> str:
    """The formula as MathML (``<math>`` with ``alttext``, the TeX), or :class:`MathError`."""
    from latex2mathml.converter import convert  # loaded for lessons with math only

    _check_braces(tex)
    try:
        converted: str = convert(tex, display="block" if display else "inline")
    except Exception as exc:  # latex2mathml's own exceptions have no common base
        raise MathError(f"the TeX cannot be read ({type(exc).__name__})") from None
    if unknown := _UNKNOWN.search(converted):
        raise MathError(f"unknown TeX command {unknown[1]}")
    alttext = html.escape(" ".join(tex.split()), quote=True)
    return converted.replace("<math ", f'<math alttext="{alttext}" ', 1)


def _check_braces(tex: str) -> None:
    depth = 0
    for index, char in enumerate(tex):
        escaped = index > 0 and tex[index - 1] == "\\"
        if char == "{" and not escaped:
            depth += 1
        elif char == "}" and not escaped:
            depth -= 1
            if depth < 0:
                raise MathError("a closing brace } without its opening one")
    if depth:
        raise MathError("an opening brace { is never closed")


@dataclass(frozen=True)
class Drawn:
    """A formula drawn as SVG, with its size in ems of the text around it."""

    svg: str
    width: float
    height: float
    #: How far it reaches below the baseline.
    depth: float

    def img(self, alt: str, display: bool) -> str:
        """An ``<img>`` of the drawing, for the paged editions' HTML."""
        source = "data:image/svg+xml;base64," + base64.b64encode(self.svg.encode()).decode()
        style = f"width:{self.width:.3f}em;height:{self.height:.3f}em"
        if not display:
            style += f";vertical-align:{-self.depth:.3f}em"
        kind = "display" if display else "inline"
        return (
            f'<img class="math-{kind}" role="math" alt="{html.escape(alt)}" '
            f'style="{style}" src="{source}" />'
        )


@lru_cache(maxsize=4096)
def drawn(tex: str, display: bool) -> Drawn:
    """The formula drawn (once per distinct formula) with STIX Two Math, the OpenType math
    font ziamath ships (SIL Open Font License 1.1): its outlines become the SVG's paths,
    no font is embedded."""
    from ziamath.zmath import Math  # loaded for lessons with math only

    figure = Math(mathml(tex, display), size=_DRAWN_AT, margin=0)
    svg = figure.svg()
    found = _VIEWBOX.search(svg)
    assert found is not None
    _x, top, width, height = map(float, found.groups())
    return Drawn(svg, width / _DRAWN_AT, height / _DRAWN_AT, max(0.0, top + height) / _DRAWN_AT)


def keep_prices(blocks: list[Any]) -> None:
    """Turn back into text, in place, inline math that pandoc's CommonMark reader took
    from between two prices (``$10 a month, US$20``): by pandoc's own rule for dollars,
    a closing ``$`` followed by a digit does not close math."""
    for node in walk(blocks):
        content = node.get("c")
        if not isinstance(content, list):
            continue
        for index, item in enumerate(content[:-1]):
            after = content[index + 1]
            if (
                is_math(item)
                and not _display(item)
                and isinstance(after, dict)
                and after.get("t") == "Str"
                and after["c"][:1].isdigit()
            ):
                content[index] = {"t": "Str", "c": f"${item['c'][1]}$"}


def check_math(
    blocks: list[Any], line_of: Callable[[str], int | None], path: Path
) -> list[Diagnostic]:
    """Every formula of the lesson that cannot be set, at its line."""
    problems = []
    for node in walk(blocks):
        if node["t"] == "Str" and (stray := _STRAY_TEX.search(node["c"])):
            word = node["c"]
            problems.append(
                error(
                    path,
                    line_of(stray[0]),
                    f"“{word}” looks like TeX math but is not read as math: its braces do "
                    "not balance (a dollar sign before a price is written \\$)",
                )
            )
        elif is_math(node):
            tex = node["c"][1]
            try:
                mathml(tex, _display(node))
            except MathError as exc:
                shown = " ".join(tex.split())
                shown = shown if len(shown) <= 60 else shown[:57] + "…"
                problems.append(error(path, line_of(tex), f"math “{shown}”: {exc}"))
    return problems


def for_pages(node: Any) -> dict[str, Any]:
    """A formula as the paged editions set it: its drawing, with its TeX as alt text."""
    tex = node["c"][1]
    display = _display(node)
    image = drawn(tex, display).img(" ".join(tex.split()), display)
    kind = "display" if display else "inline"
    return {"t": "RawInline", "c": ["html", f'<span class="math {kind}">{image}</span>']}


def for_epub(node: Any) -> dict[str, Any]:
    """A formula as the EPUB holds it: MathML, with its TeX as ``alttext``."""
    return {"t": "RawInline", "c": ["html", mathml(node["c"][1], _display(node))]}


def formulas(blocks: list[Any], how: Callable[[Any], dict[str, Any]]) -> list[Any]:
    """``blocks`` with every formula replaced by ``how`` (a new list where one changes;
    the blocks given are left as they are)."""
    if not any(is_math(node) for node in walk(blocks)):
        return blocks
    result: list[Any] = replaced(blocks, lambda node: how(node) if is_math(node) else None)
    return result
