"""Turn the files a lesson refers to into checked paths inside the project, or errors."""

from __future__ import annotations

import re
import stat
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit
from xml.etree import ElementTree

from pubkit.errors import Diagnostic, error
from pubkit.sources.manuscript import Lesson

#: Attributes through which HTML pulls a file in (links to pages are not fetched).
_FETCHING = {
    "img": ("src", "srcset"),
    "source": ("src", "srcset"),
    "video": ("src", "poster"),
    "audio": ("src",),
    "track": ("src",),
    "embed": ("src",),
    "object": ("data",),
    "iframe": ("src",),
    "link": ("href",),
    "image": ("href", "xlink:href"),
    "use": ("href", "xlink:href"),
    "script": ("src",),
    "input": ("src",),
}


#: What CSS fetches: ``url(...)`` and ``@import "..."``.
_CSS_REFERENCE = re.compile(
    r"""url\(\s*["']?([^"')\s]+)["']?\s*\)|@import\s+["']([^"']+)["']""", re.IGNORECASE
)


def css_references(css: str) -> list[str]:
    return [url or imported for url, imported in _CSS_REFERENCE.findall(css)]


class _References(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.found: list[str] = []
        self._in_style = False

    def handle_data(self, data: str) -> None:
        if self._in_style:
            self.found += css_references(data)

    def handle_endtag(self, tag: str) -> None:
        if tag == "style":
            self._in_style = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._in_style = self._in_style or tag == "style"
        wanted = _FETCHING.get(tag, ())
        for name, value in attrs:
            if name == "style" and value:
                self.found += css_references(value)
            if name in wanted and value:
                if name == "srcset":
                    self.found += [part.split()[0] for part in value.split(",") if part.split()]
                else:
                    self.found.append(value)
        if tag == "a":
            for name, value in attrs:
                if name == "rel" and value and "attachment" in value.lower():
                    self.found.append(dict(attrs).get("href") or "")


def _references(node: Any) -> Iterator[str]:
    if isinstance(node, list):
        for item in node:
            yield from _references(item)
    elif isinstance(node, dict) and "t" in node:
        kind, content = node["t"], node.get("c", [])
        if kind == "Image":
            yield content[2][0]
        elif kind in ("RawBlock", "RawInline") and content[0] in ("html", "html5"):
            parser = _References()
            parser.feed(content[1])
            parser.close()
            yield from parser.found
        else:
            yield from _references(content)


def line_of(lesson: Lesson, reference: str) -> int | None:
    """The manuscript line where ``reference`` is written, when it can be found: as an
    attribute value or a Markdown target first, so that a short name is not found
    inside some earlier word."""
    if not reference:
        return None
    for written in (f'"{reference}"', f"'{reference}'", f"({reference}", f"={reference}"):
        if (index := lesson.body.find(written)) >= 0:
            return lesson.line_at(index)
    index = lesson.body.find(reference)
    return lesson.line_at(index) if index >= 0 else None


def check_reference(reference: str, lesson: Lesson, root: Path) -> str | None:
    """Why ``reference`` may not be used, or None when it is a regular file in the project."""
    parts = urlsplit(reference)
    if parts.scheme == "data" or (not parts.scheme and not parts.path and parts.fragment):
        return None
    if parts.scheme and len(parts.scheme) > 1:
        if parts.scheme in ("http", "https", "ftp"):
            return "remote resources are never fetched; save the file in the project"
        return f"'{parts.scheme}:' references are not allowed"
    if not parts.path:
        return "empty reference"
    path = (lesson.path.parent / unquote(parts.path)).resolve()
    if not path.is_relative_to(root.resolve()):
        return "outside the project folder"
    try:
        mode = path.stat().st_mode
    except OSError:
        return "no such file"
    if not stat.S_ISREG(mode):
        return "not a regular file"
    if path.suffix.lower() == ".svg":
        return svg_fault(path)
    return None


#: What an SVG may not hold, as raw HTML may not (:mod:`pubkit.document.sanitize`): what
#: runs, what embeds another document, and what fetches a file from outside it.
_SVG_FORBIDDEN = frozenset({"script", "foreignobject", "iframe", "handler", "listener"})
_SVG_LINKS = frozenset({"href", "{http://www.w3.org/1999/xlink}href"})
_SVG_MAX_BYTES = 16 * 1024 * 1024


def svg_fault(path: Path) -> str | None:
    """Why an SVG image may not be used, or None: it must be well-formed SVG, without a
    DTD (no entities to expand), script, event handler, ``foreignObject``, or reference
    to anything outside itself (a ``#fragment`` or a ``data:`` image is fine)."""
    if path.stat().st_size > _SVG_MAX_BYTES:
        return "an SVG larger than 16 MiB"
    data = path.read_bytes()
    if b"<!DOCTYPE" in data or b"<!ENTITY" in data:
        return "an SVG with a DOCTYPE or entities; save it without them"
    try:
        root = ElementTree.fromstring(data)
    except ElementTree.ParseError as exc:
        return f"not well-formed SVG ({exc})"
    if _local(root.tag) != "svg":
        return "not an SVG image (its root element is not <svg>)"
    for element in root.iter():
        tag = _local(element.tag).lower()
        if tag in _SVG_FORBIDDEN:
            return f"an SVG with <{_local(element.tag)}>, which pubkit does not allow"
        for name, value in element.attrib.items():
            if _local(name).lower().startswith("on"):
                return f"an SVG with an event handler ({_local(name)})"
            if name in _SVG_LINKS and not value.strip().startswith(("#", "data:image/")):
                return f"an SVG that refers to '{value[:60]}' outside itself"
            if name == "style" and _outside(value):
                return "an SVG whose style fetches a file"
        if tag == "style" and _outside(element.text or ""):
            return "an SVG whose style sheet fetches a file"
    return None


def _local(name: str) -> str:
    return name.rsplit("}", 1)[-1]


def _outside(css: str) -> bool:
    """Whether CSS fetches something that is not a part of the same SVG (``url(#id)``)."""
    return any(not ref.strip().startswith("#") for ref in css_references(css))


def local_files(ast: Any, lesson: Lesson) -> tuple[Path, ...]:
    """The files the lesson's images and raw HTML pull in (each once, resolved): what
    its outputs are made of besides its manuscript, which a rebuild must look at."""
    found = []
    for reference in dict.fromkeys(_references(ast)):
        parts = urlsplit(reference)
        if not parts.scheme and parts.path:
            path = (lesson.path.parent / unquote(parts.path)).resolve()
            if path.is_file():
                found.append(path)
    return tuple(dict.fromkeys(found))


def check_resources(ast: Any, lesson: Lesson, root: Path) -> list[Diagnostic]:
    """Every image and raw-HTML resource of the lesson that is missing or not allowed."""
    problems = []
    for reference in dict.fromkeys(_references(ast)):
        why = check_reference(reference, lesson, root)
        if why:
            problems.append(error(lesson.path, line_of(lesson, reference), f"'{reference}': {why}"))
    return problems
