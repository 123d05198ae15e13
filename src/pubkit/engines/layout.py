"""Turn a laid-out WeasyPrint document into typographic findings, page by page.

What a proofreader marks on a first proof: lines that run past the text block, headings
left alone at the foot of a page, a box cut in two, pages left almost empty
by a forced break. The checks read WeasyPrint's box tree, so they see the pages exactly
as printed.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from itertools import pairwise
from typing import Any

from weasyprint.document import Document
from weasyprint.formatting_structure import boxes

from pubkit.document.paged import BOX_NUMBER, CONTINUED_LABEL
from pubkit.engines.pagelist import IMAGE, KEY_LENGTH, reading_key

#: Slack for rounding in the layout engine, in CSS px (1/96 in).
TOLERANCE = 1.0
#: A page followed by a forced break is "almost empty" below this share of its text block.
EMPTY_SHARE = 0.25
#: Elements whose boxes hold a heading.
HEADINGS = frozenset({"h1", "h2", "h3", "h4", "h5", "h6"})
_FORCED_BREAKS = frozenset({"page", "left", "right", "recto", "verso"})
_PX_TO_MM = 25.4 / 96


@dataclass(frozen=True)
class Finding:
    """One fault on one page (1-based), with text that locates it in the manuscript."""

    page: int
    message: str
    text: str = ""


@dataclass(frozen=True)
class BoxSplit:
    """How a block's box longer than a page must be set: its place among the lesson's
    boxes, and the units (list items or blocks) that must start a new page under a
    "(continued)" heading. No units: first let the box flow from where it stands."""

    box: int
    units: tuple[int, ...] = ()


#: Classes of boxes set to run over pages (see :mod:`pubkit.document.paged`).
FLOWING = frozenset({"block-long", "block-continued"})


@dataclass
class _Page:
    number: int
    box: boxes.PageBox
    #: In-flow content in document order, with each box's ancestors (margin boxes and the
    #: footnote area excluded).
    flow: list[tuple[boxes.Box, tuple[boxes.Box, ...]]] = field(default_factory=list)

    @property
    def left(self) -> float:
        return float(self.box.content_box_x())

    @property
    def right(self) -> float:
        return float(self.box.content_box_x() + self.box.width)

    @property
    def top(self) -> float:
        return float(self.box.content_box_y())

    @property
    def height(self) -> float:
        return float(self.box.height)

    def lines(self) -> Iterator[tuple[boxes.Box, tuple[boxes.Box, ...]]]:
        """Line boxes and block images: what ink there is on the page, in reading order."""
        for box, ancestors in self.flow:
            if isinstance(box, boxes.LineBox | boxes.BlockReplacedBox):
                yield box, ancestors

    @property
    def ink_bottom(self) -> float:
        bottoms = [b.position_y + b.margin_height() for b, _ in self.lines()]
        return float(max(bottoms, default=self.top))


def _walk(
    box: boxes.Box, ancestors: tuple[boxes.Box, ...] = ()
) -> Iterator[tuple[boxes.Box, tuple[boxes.Box, ...]]]:
    yield box, ancestors
    for child in getattr(box, "children", ()):
        if isinstance(child, boxes.MarginBox | boxes.FootnoteAreaBox):
            continue
        if isinstance(child, boxes.Box):
            yield from _walk(child, (*ancestors, box))


def _pages(document: Document) -> list[_Page]:
    pages = []
    for number, page in enumerate(document.pages, start=1):
        page_box: boxes.PageBox = page._page_box  # WeasyPrint's box tree: no public API
        pages.append(_Page(number, page_box, list(_walk(page_box))[1:]))
    return pages


def _text(box: boxes.Box) -> str:
    words = [b.text for b in box.descendants() if isinstance(b, boxes.TextBox)]
    return " ".join(" ".join(words).split())


def _source_text(box: boxes.Box) -> str:
    """The text of the box's element as written, before CSS transforms or hyphenation."""
    if box.element is None:
        return _text(box)
    return " ".join("".join(box.element.itertext()).split())


def _classes(box: boxes.Box) -> list[str]:
    element = box.element
    return (element.get("class") or "").split() if element is not None else []


def _is_block(box: boxes.Box) -> bool:
    return box.element_tag in ("aside", "section") and "block" in _classes(box)


def _kind(box: boxes.Box) -> str:
    """A block's kind, as its class names it (``block-exercise``)."""
    return next((c[6:] for c in _classes(box) if c.startswith("block-")), "block")


def _short(text: str, limit: int = 48) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def inspect(document: Document) -> list[Finding]:
    """Every fault on the document's pages, in page order."""
    pages = _pages(document)
    findings = [
        *_overflows(pages),
        *_stranded_headings(pages),
        *_split_boxes(pages),
        *_empty_pages(pages),
    ]
    return sorted(findings, key=lambda f: f.page)


def _overflows(pages: list[_Page]) -> Iterator[Finding]:
    for page in pages:
        seen: set[int] = set()
        for box, ancestors in page.flow:
            if isinstance(box, boxes.LineBox):
                parts = [d for d in box.descendants() if isinstance(d, boxes.TextBox)]
                parts += [d for d in box.descendants() if isinstance(d, boxes.AtomicInlineLevelBox)]
            elif isinstance(box, boxes.TableBox | boxes.BlockReplacedBox):
                parts = [box]
            else:
                continue
            if any(id(a) in seen for a in ancestors):
                continue  # one finding per table or image, not one per line in it
            widest = max(parts, key=lambda p: p.position_x + p.margin_width(), default=None)
            if widest is None:
                continue
            over = widest.position_x + widest.margin_width() - page.right
            if over > TOLERANCE:
                seen.add(id(box))
                what = "table" if isinstance(box, boxes.TableBox) else "line"
                if isinstance(box, boxes.BlockReplacedBox):
                    what = "image"
                text = _text(widest) or _source_text(box)
                yield Finding(
                    page.number,
                    f"{what} runs {over * _PX_TO_MM:.1f} mm into the margin: “{_short(text)}”",
                    text,
                )


def _stranded_headings(pages: list[_Page]) -> Iterator[Finding]:
    for page in pages[:-1]:
        lines = list(page.lines())
        if not lines:
            continue
        _, ancestors = lines[-1]
        heading = next((a for a in reversed(ancestors) if a.element_tag in HEADINGS), None)
        if heading is not None:
            text = _source_text(heading)
            yield Finding(
                page.number,
                f"heading “{_short(text)}” stands alone at the foot of the page; "
                f"its text starts on page {page.number + 1}",
                text,
            )


def _box_fragments(pages: list[_Page]) -> dict[Any, list[tuple[_Page, boxes.Box]]]:
    """Each block element's boxes, page by page, in document order."""
    fragments: dict[Any, list[tuple[_Page, boxes.Box]]] = {}
    for page in pages:
        for box, _ in page.flow:
            if _is_block(box):
                fragments.setdefault(box.element, []).append((page, box))
    return fragments


def _split_boxes(pages: list[_Page]) -> Iterator[Finding]:
    for parts in _box_fragments(pages).values():
        if len(parts) < 2 or FLOWING.intersection(_classes(parts[0][1])):
            continue
        first, last = parts[0][0].number, parts[-1][0].number
        text, kind = _source_text(parts[0][1]), _kind(parts[0][1])
        if sum(box.margin_height() for _, box in parts) <= parts[0][0].height:
            message = f"{kind} box split across pages {first}–{last} although it fits on one"
        else:  # only when the renderer did not set it as a long box
            message = f"{kind} box runs over pages {first}–{last} with no “continued” label"
        yield Finding(first, message, text)


def _empty_pages(pages: list[_Page]) -> Iterator[Finding]:
    for page, following in pairwise(pages):
        used = (page.ink_bottom - page.top) / page.height
        if used >= EMPTY_SHARE:
            continue
        forced = next(
            (
                box
                for box, _ in following.flow
                if isinstance(box, boxes.BlockLevelBox)
                and box.style["break_before"] in _FORCED_BREAKS
                and box.position_y <= following.top + TOLERANCE
            ),
            None,
        )
        if forced is not None:
            text = _source_text(forced)
            yield Finding(
                page.number,
                f"page is {used:.0%} full because of a forced page break before "
                f"“{_short(text)}” on page {following.number}",
                text,
            )


def continuations(document: Document) -> list[BoxSplit]:
    """How each block's box longer than a page must be set to read well.

    A box too long for a page is first let to flow from where it stands (rather than
    leave the rest of its page empty); a flowing box is then cut where its pages end, so
    that each continuation can carry its label. Boxes carry ``data-box`` (their
    place in the lesson) and, when a continuation, ``data-first-unit``.
    """
    splits = []
    for element, parts in _box_fragments(_pages(document)).items():
        if len(parts) < 2:
            continue
        box = int(element.get(BOX_NUMBER, "0"))
        if not FLOWING.intersection(_classes(parts[0][1])):
            if sum(b.margin_height() for _, b in parts) > parts[0][0].height:
                splits.append(BoxSplit(box))
            continue
        units = [
            unit
            for child in element
            if CONTINUED_LABEL not in (child.get("class") or "").split()
            for unit in (list(child) if child.tag in ("ul", "ol") else [child])
        ]
        offset = int(element.get("data-first-unit", "0"))
        starts = []
        for _, fragment in parts[1:]:
            shown = {b.element for b in fragment.descendants() if b.element is not None}
            first = next((i for i, unit in enumerate(units) if unit in shown), None)
            if first:  # never before the first unit: the heading stays with the box
                starts.append(offset + first)
        if starts:
            splits.append(BoxSplit(box, tuple(dict.fromkeys(starts))))
    return splits


def page_starts(document: Document) -> tuple[str, ...]:
    """The text that begins each page, as :func:`pubkit.engines.pagelist.reading_key` sees it.

    Only the lesson's own words count, and its images (as :data:`pagelist.IMAGE`): not
    running heads, footnotes, list numbers or footnote calls (generated content), labels
    hidden from readers, nor a table's header rows repeated on a page the table runs
    onto, since the EPUB's text has none of these where the page begins.
    """
    starts = []
    seen: set[Any] = set()  # elements begun on an earlier page
    for page in _pages(document):
        key = ""
        for box, ancestors in page.flow:
            if isinstance(box, boxes.ReplacedBox):
                key += IMAGE
            elif _is_lesson_text(box, ancestors, seen):
                key += reading_key(box.text)
            if len(key) >= KEY_LENGTH:
                break
        starts.append(key[:KEY_LENGTH])
        seen.update(box.element for box, _ in page.flow if box.element is not None)
    return tuple(starts)


def _is_lesson_text(box: boxes.Box, ancestors: tuple[boxes.Box, ...], seen: set[Any]) -> bool:
    if not isinstance(box, boxes.TextBox) or "::" in box.element_tag:  # generated content
        return False
    return not any(_hidden(a) or _repeated(a, seen) for a in (*ancestors, box))


def _hidden(box: boxes.Box) -> bool:
    element = box.element
    return element is not None and element.get("aria-hidden") == "true"


def _repeated(box: boxes.Box, seen: set[Any]) -> bool:
    """A table's header or footer rows, set again on a page the table runs onto."""
    return (
        isinstance(box, boxes.TableRowGroupBox)
        and (box.is_header or box.is_footer)
        and box.element in seen
    )
