"""Turn a lesson's TeX math into what each edition sets: MathML (checked, with its TeX as
the text alternative) for the EPUB, and for the paged editions the same MathML drawn as
SVG (WeasyPrint has no MathML), sitting on the text's baseline at the text's size.

``$…$`` and ``$$…$$`` are math by pandoc's rules, which keep prices as prices: an opening
``$`` followed by a space, or a closing one followed by a digit, is not math, and ``\\$``
is a dollar sign; ``\\(…\\)`` and ``\\[…\\]`` (the second opening a line) are math too
(:func:`dollar_delimiters`). The TeX is converted by latex2mathml and drawn by ziamath;
TeX either cannot read is an error at its line, never raw TeX in an output. A formula's
text alternative is its TeX, or the author's description: ``$…${alt="…"}``.
"""

from __future__ import annotations

import hashlib
import html
import json
import re
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

from pubkit.document import mathsvg
from pubkit.document.ast import inlines, replaced, walk
from pubkit.errors import Diagnostic, error
from pubkit.stamps import kept_between_builds

MATHML = "http://www.w3.org/1998/Math/MathML"
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


def mathml(tex: str, display: bool, alt: str | None = None) -> str:
    """The formula as MathML (``<math>`` with ``alttext``: the author's description, of
    class ``described``, else the TeX), or :class:`MathError`."""
    alttext = html.escape(" ".join((alt or tex).split()), quote=True)
    described = ' class="described"' if alt else ""
    return _converted(tex, display).replace("<math ", f'<math alttext="{alttext}"{described} ', 1)


@lru_cache(maxsize=4096)
def _converted(tex: str, display: bool) -> str:
    """latex2mathml's MathML of the formula (1 ms), once per process whoever asks: the
    build checks every formula before it forks the workers, which then find it here."""
    from latex2mathml.converter import convert  # loaded for lessons with math only

    _check_braces(tex)
    tex = _ENVIRONMENT.sub(_environment, tex)
    for name in _BEGIN.findall(tex):
        if name not in _known_environments():
            raise MathError(f"unknown TeX environment {name}")
    try:
        converted: str = convert(tex, display="block" if display else "inline")
    except Exception as exc:  # latex2mathml's own exceptions have no common base
        raise MathError(f"the TeX cannot be read ({type(exc).__name__})") from None
    if unknown := _UNKNOWN.search(converted):
        raise MathError(f"unknown TeX command {unknown[1]}")
    try:
        ElementTree.fromstring(converted)
    except ElementTree.ParseError:  # latex2mathml passed something through as it was
        raise MathError("the TeX cannot be set (a construct latex2mathml does not know)") from None
    return converted


#: amsmath environments latex2mathml does not know, as ones it does that lay out alike:
#: the aligned kinds as ``align*`` (their column count dropped), ``eqnarray`` as the
#: right-centre-left array it is, the gathered kinds as one centred column.
_AS = {
    **dict.fromkeys(("aligned", "alignedat", "alignat", "alignat*"), ("align*", "")),
    **dict.fromkeys(("eqnarray", "eqnarray*"), ("array", "{rcl}")),
    **dict.fromkeys(("gathered", "gather", "gather*", "multline", "multline*"), ("array", "{c}")),
}
_ENVIRONMENT = re.compile(
    r"\\(begin|end)\{(" + "|".join(re.escape(name) for name in _AS) + r")\}(\{\d+\})?"
)
_BEGIN = re.compile(r"\\begin\{([^}]*)\}")


def _environment(found: re.Match[str]) -> str:
    name, argument = _AS[found[2]]
    if found[1] == "end":
        return f"\\end{{{name}}}" + (found[3] or "")
    return f"\\begin{{{name}}}{argument}"


@lru_cache(maxsize=1)
def _known_environments() -> frozenset[str]:
    """The environments latex2mathml sets: its matrices, arrays, cases and alignments."""
    from latex2mathml import commands

    return frozenset(name.lstrip("\\") for name in commands.MATRICES) | {"smallmatrix"}


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

    def img(self, alt: str, display: bool, source: str) -> str:
        """An ``<img>`` of the drawing at URL ``source`` (:func:`formula_url`), for the
        paged editions' HTML."""
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
    """The formula drawn with STIX Two Math, the OpenType math font ziamath ships (SIL Open
    Font License 1.1): its outlines become the SVG's paths, no font is embedded. Each
    distinct formula is drawn once (6 ms) and kept, in this process and on disk
    (:func:`formula_cache`), for every later build."""
    kept = _kept_drawing(tex, display)
    if kept is not None:
        return kept
    svg = mathsvg.draw(mathml(tex, display))
    found = _VIEWBOX.search(svg)
    assert found is not None
    _x, top, width, height = map(float, found.groups())
    depth = max(0.0, top + height) / mathsvg.DRAWN_AT
    drawing = Drawn(svg, width / mathsvg.DRAWN_AT, height / mathsvg.DRAWN_AT, depth)
    _keep_drawing(tex, display, drawing)
    return drawing


#: The URL scheme that names a drawn formula in the paged editions' HTML, served from this
#: process by :func:`drawing` (through :class:`pubkit.engines.fetcher.ProjectFetcher`):
#: as data URLs, a lesson's 200 formulas were 3 MB of HTML to convert and parse each pass.
FORMULA_SCHEME = "pubkit-formula"
#: Each formula named by :func:`formula_url` in this process, by name.
_NAMED: dict[str, tuple[str, bool]] = {}


def formula_url(tex: str, display: bool) -> str:
    """The URL the paged editions' HTML gives a formula's drawing."""
    name = hashlib.sha256(f"{display:d}{tex}".encode()).hexdigest()[:32]
    _NAMED[name] = (tex, display)
    return f"{FORMULA_SCHEME}:{name}"


def drawing(url: str) -> bytes | None:
    """The SVG drawing a :func:`formula_url` names; None for a URL no formula was given."""
    found = _NAMED.get(url.partition(":")[2])
    return None if found is None else drawn(*found).svg.encode()


def draw_all(blocks: list[Any], backwards: bool = False) -> None:
    """Draw every distinct formula of ``blocks`` now, first to last or (``backwards``) last
    to first. Two workers that set one lesson's editions side by side draw from either
    end: each formula is kept on disk once drawn (:func:`formula_cache`) and read back by
    the other, so between them they draw each once, about half each."""
    found = dict.fromkeys((node["c"][1], _display(node)) for node in walk(blocks) if is_math(node))
    for tex, display in reversed(found) if backwards else found:
        drawn(tex, display)


def formula_cache() -> Path | None:
    """Where drawn formulas are kept between builds: ``$PUBKIT_CACHE`` (empty: nowhere),
    else ``$XDG_CACHE_HOME/pubkit/formulas`` or ``~/.cache/pubkit/formulas``."""
    return kept_between_builds("formulas")


@lru_cache(maxsize=1)
def _engines() -> str:
    from importlib.metadata import version

    return (
        f"ziamath {version('ziamath')}, latex2mathml {version('latex2mathml')}, {mathsvg.DRAWN_AT},"
        f" glyphs merged, {mathsvg.PRECISION} decimals"
    )


def _drawing_path(tex: str, display: bool) -> Path | None:
    folder = formula_cache()
    if folder is None:
        return None
    key = hashlib.sha256(f"{_engines()}\0{display}\0{tex}".encode()).hexdigest()
    return folder / key[:2] / f"{key}.json"


def _kept_drawing(tex: str, display: bool) -> Drawn | None:
    path = _drawing_path(tex, display)
    try:
        kept = json.loads(path.read_text(encoding="utf-8")) if path else None
        return Drawn(kept["svg"], kept["width"], kept["height"], kept["depth"]) if kept else None
    except (OSError, ValueError, KeyError, TypeError):
        return None  # not kept, or damaged: drawn again


def _keep_drawing(tex: str, display: bool, drawing: Drawn) -> None:
    path = _drawing_path(tex, display)
    if path is None:
        return
    record = {
        "svg": drawing.svg,
        "width": drawing.width,
        "height": drawing.height,
        "depth": drawing.depth,
    }
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile("w", dir=path.parent, delete=False, suffix=".tmp") as f:
            json.dump(record, f)
        Path(f.name).replace(path)  # whole or not at all
    except OSError:
        pass  # a cache that cannot be written is only slower


#: A formula in text pandoc did not read (an attribute's): ``$`` then no space, the TeX,
#: no space then ``$`` not followed by a digit (pandoc's rules); ``\$`` is a dollar sign.
_IN_TEXT = re.compile(r"(?<!\\)\$(?=\S)((?:\\.|[^$\\])*?\S)\$(?!\d)")


def formula_in(text: str) -> str | None:
    """The first ``$…$`` formula of plain ``text`` (a title), as written; None if none."""
    found = _IN_TEXT.search(text)
    return found[0] if found else None


def text_with_math(text: str) -> list[Any]:
    """``text`` as pandoc's inlines, its ``$…$`` formulas as math: what a block's
    ``title="Compute $x^2$"`` reads as."""
    found: list[Any] = []
    start = 0
    for formula in _IN_TEXT.finditer(text):
        found += inlines(text[start : formula.start()].replace("\\$", "$"))
        found.append({"t": "Math", "c": [{"t": "InlineMath"}, formula[1]]})
        start = formula.end()
    return found + inlines(text[start:].replace("\\$", "$"))


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


def for_pages(node: Any, alt: str | None = None) -> dict[str, Any]:
    """A formula as the paged editions set it: its drawing, with the author's description
    or its TeX as alt text."""
    tex = node["c"][1]
    display = _display(node)
    said = " ".join((alt or tex).split())
    image = drawn(tex, display).img(said, display, formula_url(tex, display))
    kind = "display" if display else "inline"
    return {"t": "RawInline", "c": ["html", f'<span class="math {kind}">{image}</span>']}


def for_epub(node: Any, alt: str | None = None) -> dict[str, Any]:
    """A formula as the EPUB holds it: MathML, with its description or TeX as ``alttext``."""
    return {"t": "RawInline", "c": ["html", mathml(node["c"][1], _display(node), alt)]}


def formulas(blocks: list[Any], how: Callable[[Any, str | None], dict[str, Any]]) -> list[Any]:
    """``blocks`` with every formula replaced by ``how`` (given the formula and the
    author's description, if any): a new list where one changes; the blocks given are
    left as they are."""
    if not any(is_math(node) for node in walk(blocks)):
        return blocks

    def replace(node: dict[str, Any]) -> dict[str, Any] | None:
        if node["t"] == "Span" and any(is_math(child) for child in node["c"][1]):
            ident, classes, attributes = node["c"][0]
            alt = dict(attributes).get("alt")
            kept = [[k, v] for k, v in attributes if k not in _FORMULA_ATTRIBUTES]
            children = [
                how(child, alt) if is_math(child) else replaced(child, replace)
                for child in node["c"][1]
            ]
            return {"t": "Span", "c": [[ident, classes, kept], children]}
        return how(node, None) if is_math(node) else None

    result: list[Any] = replaced(blocks, replace)
    return result


#: What pandoc gives the span of attributes written after a formula, besides its id and
#: classes: taken by pubkit, not written as the span's.
_FORMULA_ATTRIBUTES = ("alt", "wrapper")


def attach_attributes(blocks: list[Any]) -> None:
    """Give, in place, each formula the attributes written after it: pandoc reads
    ``$…${alt="…"}`` as a span around the formula, but ``$$…$$ {#eq-x}`` as one after it;
    either becomes the span around it."""
    for node in walk(blocks):
        content = node.get("c")
        if not isinstance(content, list):
            continue
        index = 0
        while index < len(content) - 1:
            item, after = content[index], content[index + 1]
            if is_math(item) and _is_attributes(after):
                content[index] = {"t": "Span", "c": [after["c"][0], [item]]}
                del content[index + 1]
            index += 1


def _is_attributes(node: Any) -> bool:
    return (
        isinstance(node, dict)
        and node.get("t") == "Span"
        and ["wrapper", "1"] in [list(pair) for pair in node["c"][0][2]]
        and all(child.get("t") == "Space" for child in node["c"][1])
    )


#: ``\(…\)`` on a line, and ``\[`` opening a line (``\]`` closing it there or later).
_INLINE_PARENS = re.compile(r"\\\(\s*(.+?)\s*\\\)")
_DISPLAY_OPEN = re.compile(r"^(\s*(?:>\s*)*)\\\[")
_DISPLAY_CLOSE = re.compile(r"\\\]")
_FENCE = re.compile(r"^\s*(`{3,}|~{3,})")


def dollar_delimiters(markdown: str) -> str:
    """``markdown`` with LaTeX's ``\\(…\\)`` and ``\\[…\\]`` written as ``$…$`` and
    ``$$…$$``, which pandoc's CommonMark reader knows (it reads ``\\(`` as an escaped
    parenthesis); outside code, line for line, so that every line keeps its number. A
    ``\\[`` that does not open a line is an escaped bracket, as CommonMark has it."""
    if "\\(" not in markdown and "\\[" not in markdown:
        return markdown
    lines = markdown.split("\n")
    fence: str | None = None
    display = False
    for number, line in enumerate(lines):
        if found := _FENCE.match(line):
            marker = found.group(1)
            if fence is None:
                fence = marker
            elif marker[0] == fence[0] and len(marker) >= len(fence):
                fence = None
            continue
        if fence is not None:
            continue
        parts = re.split(r"(`+[^`]*`+)", line)  # code spans stay as they are
        for index in range(0, len(parts), 2):
            text = parts[index]
            if index == 0 and not display and (opened := _DISPLAY_OPEN.match(text)):
                text = opened.group(1) + "$$" + text[opened.end() :]
                display = True
            if display and (closed := _DISPLAY_CLOSE.search(text)):
                text = text[: closed.start()] + "$$" + text[closed.end() :]
                display = False
            parts[index] = _INLINE_PARENS.sub(lambda m: f"${m.group(1)}$", text)
        lines[number] = "".join(parts)
    return "\n".join(lines)
