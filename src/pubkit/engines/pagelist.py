"""Turn the PDF's page starts into page-break markers in the EPUB's chapter.

The PDF edition reports the text that begins each of its pages
(:func:`pubkit.engines.layout.page_starts`); here that text is found again in the EPUB's XHTML
and a ``doc-pagebreak`` marker is set before it, so that "turn to page 4" works on an
e-reader. Both sides compare a *reading key*: letters, marks and digits, case-folded, so
that hyphenation, capitals set by CSS, curly quotes and line breaks do not matter.
"""

from __future__ import annotations

import unicodedata
from bisect import bisect_right
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from itertools import accumulate
from xml.etree import ElementTree as ET

from pubkit.engines.namespaces import EPUB, MATHML, tag

#: Characters of a page's opening text compared with the EPUB's (about eight words).
KEY_LENGTH = 48
#: Shortest opening that still places a marker when the full one is not found.
MIN_KEY = 12
#: Stands for an image in a reading key, so a page that opens on a figure is marked
#: before the figure, not after it.
IMAGE = "\ue000"
#: Elements a page can begin with; a marker goes before them rather than inside. (Not
#: items of lists, definition lists or figures: a <span> may not stand between those.)
_BLOCKS = frozenset(
    tag(name) for name in ("p", "h1", "h2", "h3", "h4", "h5", "h6", "pre", "figure")
)
#: Text the PDF does not set in its flow: footnote calls and notes, hidden labels.
_NOT_IN_FLOW = frozenset({"doc-noteref", "doc-footnote", "doc-endnotes", "doc-endnote"})
_NOTE_TYPES = frozenset({"noteref", "footnote", "footnotes", "endnote", "endnotes"})
#: What the PDF sets as an image: images, and formulas (drawn, :mod:`pubkit.document.math`).
_DRAWN = frozenset({tag("img"), tag("math", MATHML)})


def reading_key(text: str) -> str:
    """``text`` reduced to what any rendering of it keeps: letters, marks and digits,
    case-folded, without the accents that setting a text in capitals may drop (Greek
    capitals have no tonos: a header's "Ταλαντώσεις" prints "ΤΑΛΑΝΤΩΣΕΙΣ")."""
    return text.translate(_KEYS)


#: The combining diacritics of the Latin, Greek and Cyrillic scripts (not the marks of
#: scripts such as Devanagari, whose vowel signs are letters of the word).
_ACCENTS = range(0x300, 0x370)


class _Keys(dict[int, str]):
    """Each character's part of a reading key, worked out once per character."""

    def __missing__(self, code: int) -> str:
        key = "".join(
            part.casefold()
            for part in unicodedata.normalize("NFD", chr(code))
            if unicodedata.category(part)[0] in "LMN" and ord(part) not in _ACCENTS
        )
        self[code] = key
        return key


_KEYS = _Keys()


@dataclass(frozen=True)
class PrintPages:
    """The pages of a PDF edition that an EPUB's page list follows."""

    #: The edition, as the package names it ("Career Growth…, PDF edition (A4)").
    edition: str
    #: By the id of a chapter's title: the number of its first page, and the text that
    #: begins each of its pages (:func:`pubkit.engines.layout.page_starts`).
    chapters: Mapping[str, tuple[int, tuple[str, ...]]]

    def of(self, chapter: ET.Element) -> tuple[int, tuple[str, ...]] | None:
        """The pages of ``chapter``, found by the id of its title; None if it has none."""
        ids = (element.get("id") or "" for element in chapter.iter())
        return next((self.chapters[i] for i in ids if i in self.chapters), None)


@dataclass(frozen=True)
class PageMarker:
    """A page-break marker set in the chapter: the PDF page number and the marker's id."""

    page: int
    id: str


@dataclass(frozen=True)
class _Run:
    """A stretch of text in the tree: an element's ``text``, or a child's ``tail``; or an
    image, read as :data:`IMAGE`."""

    element: ET.Element
    tail: bool
    image: bool = False

    @property
    def text(self) -> str:
        if self.image:
            return IMAGE
        return (self.element.tail if self.tail else self.element.text) or ""


def _skipped(element: ET.Element) -> bool:
    roles = set((element.get("role") or "").split())
    types = set((element.get(tag("type", EPUB)) or "").split())
    return (
        element.get("aria-hidden") == "true"
        or bool(roles & _NOT_IN_FLOW)
        or bool(types & _NOTE_TYPES)
    )


def _runs(element: ET.Element) -> Iterator[_Run]:
    if _skipped(element):
        return
    if element.tag in _DRAWN:  # a formula too: the PDF draws it as an image
        yield _Run(element, tail=False, image=True)
        return
    if element.text:
        yield _Run(element, tail=False)
    for child in element:
        yield from _runs(child)
        if child.tail:
            yield _Run(child, tail=True)


def mark_pages(
    root: ET.Element, starts: Sequence[str], first: int = 1
) -> tuple[list[PageMarker], list[int]]:
    """Set a marker before the text that begins each PDF page (``starts``, page ``first``
    first).

    Returns the markers set, in page order, and the pages whose opening text was not
    found (left out of the page list rather than placed at a guess).
    """
    runs = list(_runs(root))
    keys = [IMAGE if run.image else reading_key(run.text) for run in runs]
    text = "".join(keys)
    offsets = list(accumulate((len(key) for key in keys), initial=0))  # where each run's key starts
    parents = {child: parent for parent in root.iter() for child in parent}
    taken = {element.get("id") for element in root.iter()}
    placed: list[tuple[ET.Element, int, int]] = []  # (marker, run, character)
    missing: list[int] = []
    position = 0
    for page, key in enumerate(starts, start=first):
        found = _find(text, key, position)
        if found is None:
            missing.append(page)
            continue
        position = found + 1
        number = bisect_right(offsets, found) - 1
        placed.append(
            (_marker(page, taken), number, _character(runs[number], found - offsets[number]))
        )
    # Last first: a marker splits its run of text, which would move the places after it.
    for marker, number, index in reversed(placed):
        _insert(marker, runs[number], index, parents)
    markers = [PageMarker(int(m.get("aria-label", "0")), m.get("id", "")) for m, _, _ in placed]
    return markers, missing


def _character(run: _Run, at: int) -> int:
    """The character of ``run`` whose reading key holds its key's character ``at`` (most
    characters key as one, punctuation as none, "ß" as two)."""
    if run.image:
        return 0
    length = 0
    for index, character in enumerate(run.text):
        length += len(_KEYS[ord(character)])
        if length > at:
            return index
    raise AssertionError("beyond the run's key")


def _find(text: str, key: str, start: int) -> int | None:
    """Where ``key`` (or, failing that, its longest opening that is found) next occurs."""
    length = len(key)
    while length >= min(MIN_KEY, len(key)) and length > 0:
        found = text.find(key[:length], start)
        if found >= 0:
            return found
        length //= 2
    return None


def _marker(page: int, taken: set[str | None]) -> ET.Element:
    ident, suffix = f"page-{page}", 1
    while ident in taken:  # an author's heading may already be called "Page 4"
        suffix += 1
        ident = f"page-{page}-{suffix}"
    taken.add(ident)
    return ET.Element(
        tag("span"),
        {
            "id": ident,
            "role": "doc-pagebreak",
            tag("type", EPUB): "pagebreak",
            "aria-label": str(page),
        },
    )


def _insert(
    marker: ET.Element, run: _Run, index: int, parents: dict[ET.Element, ET.Element]
) -> None:
    """Put ``marker`` at ``index`` of ``run``: at the start of the word there, or before
    the paragraph, heading or figure when the page begins with it."""
    text = run.text
    # A later page that begins in the same word has cut the run at the word's start.
    index = min(index, len(text))
    while index > 0 and reading_key(text[index - 1]):
        index -= 1
    if run.image or (not text[:index].strip() and not run.tail):
        node = run.element
        while node.tag not in _BLOCKS and node in parents:
            parent = parents[node]
            if (parent.text or "").strip() or parent[0] is not node:
                break
            node = parent
        if node.tag in _BLOCKS and node in parents:
            parent = parents[node]
            marker.tail = "\n"
            parent.insert(list(parent).index(node), marker)
            return
    if run.image:  # an image within a line of text
        parent = parents[run.element]
        parent.insert(list(parent).index(run.element), marker)
        return
    marker.tail = text[index:]
    if run.tail:
        run.element.tail = text[:index]
        parent = parents[run.element]
        parent.insert(list(parent).index(run.element) + 1, marker)
    else:
        run.element.text = text[:index]
        run.element.insert(0, marker)
