"""Turn the parts pandoc writes into an EPUB into pubkit's: the lesson chapter (header as
in print, course blocks as labelled asides, numbered notes), the cover page, the
navigation (contents, page list, landmarks) and the package metadata (accessibility
claims read off the content)."""

from __future__ import annotations

import copy
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from xml.etree import ElementTree as ET

from pubkit.engines import a11y
from pubkit.engines.namespaces import (
    EPUB,
    MATHML,
    NCX,
    OPF,
    XML_LANG,
    tag,
    to_string,
)
from pubkit.engines.pagelist import PageMarker
from pubkit.sources.config import text_direction

#: How deep the contents go: lessons, their sections, and those sections' own.
CONTENTS_DEPTH = 3
_HEADINGS = frozenset(tag(f"h{level}") for level in range(1, 7))
_LEVEL = re.compile(r"^level(\d+)$")


def _classes(element: ET.Element) -> list[str]:
    return (element.get("class") or "").split()


_HEADER_PARTS = ("module-line", "lesson-number", "lesson-title", "dek", "reading-figures")


def _finish_header(section: ET.Element) -> None:
    """Gather title, module line, lesson number, dek and figures into one <header>."""
    parts = {}
    for child in list(section):
        found = set(_classes(child)) & set(_HEADER_PARTS)
        if found:
            parts[found.pop()] = child
            section.remove(child)
    header = ET.Element(tag("header"), {"class": "lesson-header"})
    header.text = header.tail = "\n"
    for name in _HEADER_PARTS:
        if name in parts:
            parts[name].tail = "\n"
            header.append(parts[name])
    section.insert(0, header)


def _finish_block(box: ET.Element) -> None:
    """A course block (:mod:`pubkit.document.blocks`) is an <aside> or a <section>,
    labelled by its heading; pandoc's section attributes and pubkit's own data go."""
    box.tag = tag("section" if box.get("data-element") == "section" else "aside")
    # pandoc gives the box its label's classes when it makes one section of the two.
    label_classes = {"block-label", "block-title", "unlisted"}
    kept = [c for c in _classes(box) if not c.startswith("level") and c not in label_classes]
    box.set("class", " ".join(kept))
    # A block with an id of its own: pandoc wraps its label and what follows in a section
    # of the label's; the label is the box's own heading.
    inner = next(iter(box), None)
    if inner is not None and inner.tag == tag("section") and "block-label" in _classes(inner):
        place = list(box).index(inner)
        box.remove(inner)
        label = next((c for c in inner if c.tag in _HEADINGS), None)
        if label is not None and not label.get("id") and inner.get("id"):
            label.set("id", inner.get("id", ""))
        for offset, child in enumerate(list(inner)):
            box.insert(place + offset, child)
    for name in [n for n in box.attrib if n.startswith("data-") and n != "data-number"]:
        del box.attrib[name]
    heading = next((c for c in box if c.tag in _HEADINGS), None)
    if heading is None:
        return
    if not heading.get("id") and box.get("id"):
        heading.set("id", box.attrib.pop("id"))
    if heading.get("id"):
        box.set("aria-labelledby", heading.get("id", ""))


def _number_notes(root: ET.Element) -> None:
    """Open each note with its number, linked back to where it is called.

    Readers that pop notes up show them as they are; the others list them at the end of
    the chapter, where a bare paragraph would not say which call it answers.
    """
    calls = {
        (link.get("href") or "").removeprefix("#"): link
        for link in root.iter(tag("a"))
        if link.get("role") == "doc-noteref"
    }
    for note in root.iter(tag("aside")):
        call = calls.get(note.get("id") or "")
        first = next(iter(note), None)
        if call is None or first is None or not call.get("id"):
            continue
        number = "".join(call.itertext()).strip()
        back = ET.Element(
            tag("a"),
            {"href": f"#{call.get('id')}", "role": "doc-backlink", "class": "footnote-back"},
        )
        back.text = number
        back.tail = "\u00a0" + (first.text or "") if first.tag == tag("p") else "\n"
        if first.tag == tag("p"):
            first.text = None
            first.insert(0, back)
        else:
            note.text = None
            note.insert(0, back)


def set_direction(root: ET.Element) -> None:
    """``dir="rtl"`` on an XHTML document whose language is written right to left, and
    ``dir="ltr"`` on its program code, which reads left to right in any lesson."""
    if text_direction(root.get("lang", "")) == "rtl":
        root.set("dir", "rtl")
        for block in root.iter(tag("pre")):
            block.set("dir", "ltr")


def finish_chapter(root: ET.Element, title: str) -> None:
    """Put pandoc's chapter in pubkit's shape: the header as in print, blocks as asides,
    numbered notes, and the lesson's title (not pandoc's file name) as the document title."""
    for element in root.iter(tag("title")):
        element.text = title
    set_direction(root)
    for element in list(root.iter()):
        classes = _classes(element)
        if "lang" in element.attrib:  # XHTML reading systems look for xml:lang
            element.set(XML_LANG, element.attrib["lang"])
            if element is not root and "dir" not in element.attrib:  # a lesson in a book
                element.set("dir", text_direction(element.attrib["lang"]))
        if "lesson" in classes:
            _finish_header(element)
        if "block" in classes:
            _finish_block(element)
    _number_notes(root)


def chapter_title(root: ET.Element) -> str:
    """The text of a chapter's level-1 heading (its lesson's title), or ""."""
    heading = next(root.iter(tag("h1")), None)
    return " ".join("".join(heading.itertext()).split()) if heading is not None else ""


def xhtml(root: ET.Element) -> bytes:
    body = to_string(root)
    return ('<?xml version="1.0" encoding="UTF-8"?>\n<!DOCTYPE html>\n' + body).encode("utf-8")


def finish_cover(root: ET.Element, alt: str, source: str) -> None:
    """An <img> of ``source`` with a text alternative in place of pandoc's unlabelled SVG
    wrapper."""
    set_direction(root)
    body = root.find(tag("body"))
    assert body is not None
    body.clear()
    body.set("class", "cover")
    section = ET.SubElement(body, tag("section"), {tag("type", EPUB): "cover"})
    section.text = section.tail = "\n"
    ET.SubElement(section, tag("img"), {"src": source, "alt": alt, "role": "doc-cover"}).tail = "\n"


@dataclass(frozen=True)
class Entry:
    """A line of the book's contents: a section of a chapter, by its heading, and the
    sections inside it."""

    #: ``text/ch001.xhtml#section-id``, relative to the package document.
    href: str
    #: The section's heading as the contents show it: its markup kept (emphasis, code),
    #: its links, note calls, page markers and identifiers left out.
    label: ET.Element
    children: tuple[Entry, ...]

    @property
    def text(self) -> str:
        return " ".join("".join(self.label.itertext()).split())


def contents(root: ET.Element, href: str) -> list[Entry]:
    """The contents of the chapter ``root`` (at ``href``): its sections (pandoc's
    ``<section class="levelN">``) down to :data:`CONTENTS_DEPTH`, nested as they are.

    pubkit reads them off the finished chapter rather than asking pandoc for them: pandoc
    spends half of a lesson's EPUB on a contents list three levels deep. A section marked
    ``unlisted`` is left out, and the sections inside it take its place."""

    def sections(element: ET.Element) -> Iterator[Entry]:
        for child in element:
            heading = _listed_heading(child)
            if heading is None:
                yield from sections(child)
                continue
            entry = Entry(f"{href}#{child.get('id')}", _label(heading), tuple(sections(child)))
            if entry.text:
                yield entry
            else:  # a heading with nothing to read (an image alone): its sections stay
                yield from entry.children

    return list(sections(root))


def _listed_heading(element: ET.Element) -> ET.Element | None:
    """The heading of ``element`` when it is a section the contents list: one of pandoc's
    ``<section class="levelN">`` down to :data:`CONTENTS_DEPTH`, with an id, not
    ``unlisted``."""
    if element.tag != tag("section") or not element.get("id"):
        return None
    classes = _classes(element)
    levels = [int(match[1]) for name in classes if (match := _LEVEL.match(name))]
    if not levels or levels[0] > CONTENTS_DEPTH or "unlisted" in classes:
        return None
    return _heading(element)


def _heading(section: ET.Element) -> ET.Element | None:
    """A section's own heading: the first in it (pubkit's header holds a lesson's)."""
    return next((e for e in section.iter() if e.tag in _HEADINGS), None)


def _label(heading: ET.Element) -> ET.Element:
    """``heading``'s content for the contents: a copy without links (their text stays),
    note calls, page markers or identifiers, which belong to the chapter alone; a formula
    as its text alternative (the contents are text: MathML there is neither allowed by
    the navigation document's declared properties nor read by every reading system)."""
    label = copy.deepcopy(heading)
    parents = {child: parent for parent in label.iter() for child in parent}
    for element in list(label.iter())[1:]:
        element.attrib.pop("id", None)
        if element.tag == tag("math", MATHML) and element in parents:
            said = ET.Element(tag("span"))
            said.text, said.tail = element.get("alttext", ""), element.tail
            parent = parents[element]
            parent.insert(list(parent).index(element), said)
            parent.remove(element)
        elif element.get("role") in ("doc-noteref", "doc-pagebreak"):
            _remove(element, parents[element])
        elif element.tag == tag("a"):
            element.tag = tag("span")
            for name in [n for n in element.attrib if n not in ("lang", XML_LANG)]:
                del element.attrib[name]
    label.attrib.clear()
    return label


def _remove(element: ET.Element, parent: ET.Element) -> None:
    """Take ``element`` out of ``parent``, keeping the text that follows it."""
    index = list(parent).index(element)
    if element.tail:
        if index:
            previous = parent[index - 1]
            previous.tail = (previous.tail or "") + element.tail
        else:
            parent.text = (parent.text or "") + element.tail
    parent.remove(element)


def _depth(entries: Sequence[Entry]) -> int:
    return max((1 + _depth(e.children) for e in entries), default=0)


def finish_nav(
    root: ET.Element,
    chapter: str,
    entries: Sequence[Entry],
    markers: list[tuple[str, PageMarker]],
    words: Mapping[str, Any],
    title: str,
) -> None:
    """Write the contents of ``entries`` into the navigation document, then add the page
    list of ``markers`` (each in its chapter), when there are any, and the landmarks
    reading systems look for: the cover, and ``chapter`` (where the body begins) under
    ``title``."""
    set_direction(root)
    body = root.find(tag("body"))
    assert body is not None
    for toc in _navs(body, "toc"):
        if entries and (listing := toc.find(tag("ol"))) is not None:
            toc.remove(listing)
            toc.append(_nav_list(entries))
    for nav in _navs(body, "landmarks"):
        body.remove(nav)
    href = chapter.removeprefix("EPUB/")
    if markers:
        pages = ET.SubElement(
            body,
            tag("nav"),
            {
                tag("type", EPUB): "page-list",
                "role": "doc-pagelist",
                "id": "page-list",
                "aria-label": words["page_list"],
                "hidden": "hidden",
            },
        )
        listing = ET.SubElement(pages, tag("ol"))
        for name, marker in markers:
            item = ET.SubElement(listing, tag("li"))
            target = f"{name.removeprefix('EPUB/')}#{marker.id}"
            ET.SubElement(item, tag("a"), {"href": target}).text = str(marker.page)
    landmarks = ET.SubElement(
        body,
        tag("nav"),
        {tag("type", EPUB): "landmarks", "id": "landmarks", "hidden": "hidden"},
    )
    listing = ET.SubElement(landmarks, tag("ol"))
    for kind, target, label in (
        ("cover", "text/cover.xhtml", words["cover"]),
        ("bodymatter", href, title),
    ):
        item = ET.SubElement(listing, tag("li"))
        ET.SubElement(item, tag("a"), {"href": target, tag("type", EPUB): kind}).text = label
    for element in (*body.iter(tag("nav")), *body.iter(tag("ol")), *body.iter(tag("li"))):
        element.tail = "\n"


def _navs(body: ET.Element, kind: str) -> list[ET.Element]:
    """The navigation document's ``<nav>`` elements of ``epub:type`` ``kind``."""
    return [nav for nav in body.findall(tag("nav")) if nav.get(tag("type", EPUB)) == kind]


def _nav_list(entries: Sequence[Entry]) -> ET.Element:
    listing = ET.Element(tag("ol"), {"class": "toc"})
    for entry in entries:
        item = ET.SubElement(listing, tag("li"))
        link = ET.SubElement(item, tag("a"), {"href": entry.href})
        link.text = entry.label.text
        link.extend(entry.label)
        if entry.children:
            item.append(_nav_list(entry.children))
    return listing


def finish_ncx(root: ET.Element, entries: Sequence[Entry]) -> None:
    """Write the contents of ``entries`` into the EPUB 2 table of contents (toc.ncx), which
    older reading systems show, as plain text; and its depth."""
    nav_map = root.find(tag("navMap", NCX))
    if nav_map is None or not entries:
        return
    for point in nav_map.findall(tag("navPoint", NCX)):
        nav_map.remove(point)
    count = 0

    def points(parent: ET.Element, entries: Sequence[Entry]) -> None:
        nonlocal count
        for entry in entries:
            count += 1
            point = ET.SubElement(parent, tag("navPoint", NCX), {"id": f"navPoint-{count}"})
            label = ET.SubElement(point, tag("navLabel", NCX))
            ET.SubElement(label, tag("text", NCX)).text = entry.text
            ET.SubElement(point, tag("content", NCX), {"src": entry.href})
            points(point, entry.children)

    points(nav_map, entries)
    ET.indent(nav_map, level=1)
    for meta in root.iter(tag("meta", NCX)):
        if meta.get("name") == "dtb:depth":
            meta.set("content", str(_depth(entries)))


def ncx_xml(root: ET.Element) -> bytes:
    """The NCX document, with its namespace as the default one."""
    return _xml(root, NCX)


def finish_package(
    root: ET.Element, claims: a11y.Accessibility, language: str, certifier: str, page_source: str
) -> None:
    """Replace pandoc's fixed accessibility claims with those read off the content.

    ``certifier`` makes the conformance claim (when there is one); ``page_source`` names
    the edition the page numbers come from (when there are any)."""
    metadata = root.find(tag("metadata", OPF))
    assert metadata is not None
    for meta in list(metadata):
        if (meta.get("property") or "").startswith("schema:"):
            metadata.remove(meta)
    for item in root.iter(tag("item", OPF)):
        if item.get("href") == "text/cover.xhtml":  # an <img> now, no longer SVG
            item.attrib.pop("properties", None)

    def add(name: str, value: str, **attributes: str) -> ET.Element:
        element = ET.SubElement(metadata, tag("meta", OPF), {"property": name, **attributes})
        element.text = value
        element.tail = "\n    "
        return element

    for mode in claims.modes:
        add("schema:accessMode", mode)
    for modes in claims.sufficient:
        add("schema:accessModeSufficient", modes)
    for feature in claims.features:
        add("schema:accessibilityFeature", feature)
    for hazard in claims.hazards:
        add("schema:accessibilityHazard", hazard)
    english = {XML_LANG: "en"} if not language.lower().startswith("en") else {}
    add("schema:accessibilitySummary", claims.summary, **english)
    if claims.conforms:
        add("dcterms:conformsTo", a11y.CONFORMANCE)
        add("a11y:certifiedBy", certifier)
    if "printPageNumbers" in claims.features:
        add("pageBreakSource", page_source)


def package_xml(package: ET.Element) -> bytes:
    """The package document with OPF as its default namespace, as reading systems expect."""
    return _xml(package, OPF)


def _xml(root: ET.Element, default: str) -> bytes:
    return ('<?xml version="1.0" encoding="UTF-8"?>\n' + to_string(root, default)).encode()


def link_across(chapters: Mapping[str, ET.Element]) -> None:
    """Point each ``#id`` link, in place, at the chapter that has the id, when its own
    does not: pandoc does so for the Markdown's links, not for raw HTML's (a module's
    collection, whose lessons are chapters, links from one to another)."""
    owner: dict[str, str] = {}
    for name, root in chapters.items():
        for element in root.iter():
            if (ident := element.get("id")) is not None:
                owner.setdefault(ident, name.rsplit("/", 1)[-1])
    for name, root in chapters.items():
        here = name.rsplit("/", 1)[-1]
        for anchor in root.iter(tag("a")):
            href = anchor.get("href") or ""
            if href.startswith("#") and (there := owner.get(href[1:])) and there != here:
                anchor.set("href", f"{there}{href}")
