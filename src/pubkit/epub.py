"""Turn a lesson into an EPUB 3 with pandoc: module header, cover, page list, subset fonts,
accessibility metadata read off the content, the shared design."""

from __future__ import annotations

import io
import json
import re
import tempfile
import uuid
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from xml.etree import ElementTree as ET

from fontTools import subset

from . import a11y
from .cover import render_cover
from .errors import Diagnostic, warning
from .pagelist import PageMarker, mark_pages
from .pandoc import run_pandoc
from .render import Rendered, RenderJob
from .theme import FontFace

XHTML = "http://www.w3.org/1999/xhtml"
EPUB_NS = "http://www.idpf.org/2007/ops"
OPF = "http://www.idpf.org/2007/opf"
DC = "http://purl.org/dc/elements/1.1/"
XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"
#: Characters every font subset keeps, so digits and common punctuation never go missing.
_ALWAYS = (
    "".join(map(chr, range(0x20, 0x7F))) + "\u00a0\u00b7\u2013\u2014\u2018\u2019\u201c\u201d\u2026"
)
#: Fixed zip entry time: the EPUB's bytes depend on its content only.
_ZIP_TIME = (1980, 1, 1, 0, 0, 0)
#: Where pandoc puts things in the container.
NAV = "EPUB/nav.xhtml"
PACKAGE = "EPUB/content.opf"
COVER = "EPUB/text/cover.xhtml"
_CHAPTER = re.compile(r"^EPUB/text/ch\d+\.xhtml$")
#: The default series name: "Module 9: The Human Craft".
SERIES = "{module} {number}: {title}"

for _prefix, _uri in (("", XHTML), ("epub", EPUB_NS), ("opf", OPF), ("dc", DC)):
    ET.register_namespace(_prefix, _uri)


def _meta(value: Any) -> dict[str, Any]:
    """A Python value as pandoc metadata; text stays literal (never read as Markdown)."""
    if isinstance(value, dict):
        return {"t": "MetaMap", "c": {k: _meta(v) for k, v in value.items()}}
    if isinstance(value, list | tuple):
        return {"t": "MetaList", "c": [_meta(v) for v in value]}
    return {"t": "MetaString", "c": str(value)}


def _inlines(text: str) -> list[dict[str, Any]]:
    """Literal text as pandoc inlines."""
    inlines: list[dict[str, Any]] = []
    for word in text.split():
        if inlines:
            inlines.append({"t": "Space"})
        inlines.append({"t": "Str", "c": word})
    return inlines


def identifier(job: RenderJob) -> str:
    """A stable identifier: the same lesson of the same course keeps it across rebuilds."""
    name = f"pubkit:{job.config.title}:{job.lesson.id}"
    return f"urn:uuid:{uuid.uuid5(uuid.NAMESPACE_URL, name)}"


def series(job: RenderJob) -> str:
    """The module as e-reader libraries shelve it (``epub.series`` in pubkit.yaml)."""
    module = job.lesson.module
    words = job.theme.words(job.language)
    return (job.config.series or SERIES).format(
        module=words["module"], number=module.number, title=module.title
    )


def metadata(job: RenderJob) -> dict[str, Any]:
    lesson = job.lesson
    words = job.theme.words(job.language)
    meta: dict[str, Any] = {
        "title": lesson.title,
        "lang": job.language,
        "identifier": identifier(job),
        "creator": [{"role": "author", "text": a} for a in job.authors],
        "belongs-to-collection": series(job),
        "group-position": str(lesson.number),
        "toc-title": words["contents"],
    }
    optional = {
        "description": lesson.subtitle,
        "subject": list(lesson.keywords) or None,
        "publisher": job.config.publisher or None,
        "date": job.date or lesson.date,
    }
    meta.update({k: v for k, v in optional.items() if v})
    return {k: _meta(v) for k, v in meta.items()}


def lesson_blocks(job: RenderJob) -> list[dict[str, Any]]:
    """The lesson as one section headed by a real level-1 title, so pandoc adds no title of
    its own and keeps header and body in one chapter; :func:`finish_chapter` then gathers
    the header parts around the title in print order."""
    macros = job.template_macros("header.html.j2")
    title_attr: tuple[str, list[str], list[str]] = ("lesson-title", ["lesson-title"], [])
    header = [
        {"t": "Header", "c": [1, title_attr, _inlines(job.lesson.title)]},
        {"t": "RawBlock", "c": ["html", f"{macros.module_line()}\n{macros.lesson_number()}"]},
        {"t": "RawBlock", "c": ["html", str(macros.after_title())]},
    ]
    blocks = [*header, *job.document.ast["blocks"]]
    return [{"t": "Div", "c": [("", ["lesson"], []), blocks]}]


def _subset_font(face: FontFace, text: str, target: Path) -> None:
    """Keep the glyphs ``text`` needs. fontTools' default OpenType features cover kerning,
    ligatures and the shaping of every script; hinting is dropped, as e-readers set type
    at print resolutions with their own rasterisers (it halves the fonts' size)."""
    options = subset.Options()
    options.hinting = False
    options.name_IDs = ["*"]
    options.name_languages = ["*"]
    options.notdef_outline = True
    font = subset.load_font(str(face.path), options)
    subsetter = subset.Subsetter(options)
    subsetter.populate(text=text + _ALWAYS)
    subsetter.subset(font)
    font.save(str(target))


def _tag(name: str, namespace: str = XHTML) -> str:
    return f"{{{namespace}}}{name}"


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
    header = ET.Element(_tag("header"), {"class": "lesson-header"})
    header.text = header.tail = "\n"
    for name in _HEADER_PARTS:
        if name in parts:
            parts[name].tail = "\n"
            header.append(parts[name])
    section.insert(0, header)


def _finish_takeaways(box: ET.Element) -> None:
    """A takeaways box is an <aside> labelled by its heading."""
    box.tag = _tag("aside")
    box.set("class", " ".join(c for c in _classes(box) if not c.startswith("level")))
    heading = next((c for c in box if c.tag in (_tag("h2"), _tag("h3"), _tag("h4"))), None)
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
        for link in root.iter(_tag("a"))
        if link.get("role") == "doc-noteref"
    }
    for note in root.iter(_tag("aside")):
        call = calls.get(note.get("id") or "")
        first = next(iter(note), None)
        if call is None or first is None or not call.get("id"):
            continue
        number = "".join(call.itertext()).strip()
        back = ET.Element(
            _tag("a"),
            {"href": f"#{call.get('id')}", "role": "doc-backlink", "class": "footnote-back"},
        )
        back.text = number
        back.tail = "\u00a0" + (first.text or "") if first.tag == _tag("p") else "\n"
        if first.tag == _tag("p"):
            first.text = None
            first.insert(0, back)
        else:
            note.text = None
            note.insert(0, back)


def finish_chapter(root: ET.Element, title: str) -> None:
    """Put pandoc's chapter in pubkit's shape: the header as in print, takeaways as asides,
    numbered notes, and the lesson's title (not pandoc's file name) as the document title."""
    for element in root.iter(_tag("title")):
        element.text = title
    for element in list(root.iter()):
        classes = _classes(element)
        if "lesson" in classes:
            _finish_header(element)
        if "takeaways" in classes:
            _finish_takeaways(element)
    _number_notes(root)


def _xhtml(root: ET.Element) -> bytes:
    body = ET.tostring(root, encoding="unicode")
    return ('<?xml version="1.0" encoding="UTF-8"?>\n<!DOCTYPE html>\n' + body).encode("utf-8")


def _finish_cover(root: ET.Element, job: RenderJob) -> None:
    """An <img> with a text alternative in place of pandoc's unlabelled SVG wrapper."""
    body = root.find(_tag("body"))
    assert body is not None
    image = next(body.iter("{http://www.w3.org/2000/svg}image"))
    source = image.get("{http://www.w3.org/1999/xlink}href", "")
    words = job.theme.words(job.language)
    module = job.lesson.module
    alt = (
        f"{words['module']} {module.number}: {module.title}. "
        f"{words['lesson']} {job.lesson.number}: {job.lesson.title}"
    )
    body.clear()
    body.set("class", "cover")
    section = ET.SubElement(body, _tag("section"), {_tag("type", EPUB_NS): "cover"})
    section.text = section.tail = "\n"
    ET.SubElement(
        section, _tag("img"), {"src": source, "alt": alt, "role": "doc-cover"}
    ).tail = "\n"


def _finish_nav(root: ET.Element, chapter: str, markers: list[PageMarker], job: RenderJob) -> None:
    """Add the page list (when there is one) and the landmarks reading systems look for."""
    body = root.find(_tag("body"))
    assert body is not None
    words = job.theme.words(job.language)
    for nav in body.findall(_tag("nav")):
        if nav.get(_tag("type", EPUB_NS)) == "landmarks":
            body.remove(nav)
    href = chapter.removeprefix("EPUB/")
    if markers:
        pages = ET.SubElement(
            body,
            _tag("nav"),
            {
                _tag("type", EPUB_NS): "page-list",
                "role": "doc-pagelist",
                "id": "page-list",
                "aria-label": words["page_list"],
                "hidden": "hidden",
            },
        )
        listing = ET.SubElement(pages, _tag("ol"))
        for marker in markers:
            item = ET.SubElement(listing, _tag("li"))
            ET.SubElement(item, _tag("a"), {"href": f"{href}#{marker.id}"}).text = str(marker.page)
    landmarks = ET.SubElement(
        body,
        _tag("nav"),
        {_tag("type", EPUB_NS): "landmarks", "id": "landmarks", "hidden": "hidden"},
    )
    listing = ET.SubElement(landmarks, _tag("ol"))
    for kind, target, label in (
        ("cover", "text/cover.xhtml", job.lesson.title),
        ("bodymatter", href, job.lesson.title),
    ):
        item = ET.SubElement(listing, _tag("li"))
        ET.SubElement(item, _tag("a"), {"href": target, _tag("type", EPUB_NS): kind}).text = label
    for element in (*body.iter(_tag("nav")), *body.iter(_tag("ol")), *body.iter(_tag("li"))):
        element.tail = "\n"


def _finish_package(root: ET.Element, claims: a11y.Accessibility, job: RenderJob) -> None:
    """Replace pandoc's fixed accessibility claims with those read off the content."""
    metadata = root.find(_tag("metadata", OPF))
    assert metadata is not None
    for meta in list(metadata):
        if (meta.get("property") or "").startswith("schema:"):
            metadata.remove(meta)
    for item in root.iter(_tag("item", OPF)):
        if item.get("href") == "text/cover.xhtml":  # an <img> now, no longer SVG
            item.attrib.pop("properties", None)

    def add(name: str, value: str, **attributes: str) -> ET.Element:
        element = ET.SubElement(metadata, _tag("meta", OPF), {"property": name, **attributes})
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
    language = {XML_LANG: "en"} if not job.language.lower().startswith("en") else {}
    add("schema:accessibilitySummary", claims.summary, **language)
    if claims.conforms:
        add("dcterms:conformsTo", a11y.CONFORMANCE)
        add("a11y:certifiedBy", job.config.publisher or job.config.title)
    if "printPageNumbers" in claims.features:  # where the page numbers come from
        add("pageBreakSource", f"{job.lesson.title}, PDF edition ({job.config.paper})")


def _package_xml(package: ET.Element) -> bytes:
    """The package document with OPF as its default namespace, as reading systems expect.

    ElementTree can give only one namespace the empty prefix, and XHTML has it; markup
    in text is escaped, so the ``opf:`` prefix appears only in tags."""
    text = ET.tostring(package, encoding="unicode")
    text = text.replace("<opf:", "<").replace("</opf:", "</").replace("xmlns:opf=", "xmlns=")
    return ('<?xml version="1.0" encoding="UTF-8"?>\n' + text).encode("utf-8")


def _repack(epub: bytes, job: RenderJob) -> tuple[bytes, list[Diagnostic]]:
    """Finish pandoc's EPUB and rewrite the container: mimetype first and stored, fixed
    times. Returns the bytes and warnings about what could not be claimed."""
    source = zipfile.ZipFile(io.BytesIO(epub))
    entries = {name: source.read(name) for name in source.namelist()}
    chapters = {name: ET.fromstring(data) for name, data in entries.items() if _CHAPTER.match(name)}
    starts = job.print_edition.page_starts if job.print_edition else ()
    markers: list[PageMarker] = []
    missing: list[int] = []
    lesson_chapter = min(chapters)  # the lesson is the first chapter; any notes follow it
    for name, root in chapters.items():
        finish_chapter(root, job.lesson.title)
        if starts and name == lesson_chapter:
            markers, missing = mark_pages(root, starts)
        entries[name] = _xhtml(root)
    nav = ET.fromstring(entries[NAV])
    _finish_nav(nav, lesson_chapter, markers, job)
    entries[NAV] = _xhtml(nav)
    if COVER in entries:
        cover = ET.fromstring(entries[COVER])
        _finish_cover(cover, job)
        entries[COVER] = _xhtml(cover)
    package = ET.fromstring(entries[PACKAGE])
    cover_image = {
        "EPUB/" + item.get("href", "")
        for item in package.iter(_tag("item", OPF))
        if "cover-image" in (item.get("properties") or "").split()
    }
    claims = a11y.assess(
        chapters.values(),
        [root.get("lang") for root in chapters.values()],
        len(markers),
        {
            name: data
            for name, data in entries.items()
            if name.startswith("EPUB/media/") and name not in cover_image
        },
    )
    _finish_package(package, claims, job)
    entries[PACKAGE] = _package_xml(package)

    path, edition = job.lesson.path, job.edition.name
    notes = [
        warning(
            path,
            None,
            f"{edition}: page {page} of the PDF edition was not found in the "
            "EPUB text; it is left out of the page list",
        )
        for page in missing
    ]
    notes += [
        warning(path, None, f"{edition}: no WCAG conformance claimed: {problem}")
        for problem in claims.problems
    ]
    return _zip(entries), notes


def _zip(entries: Mapping[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as target:
        for name in sorted(entries, key=lambda n: (n != "mimetype", n)):
            info = zipfile.ZipInfo(name, _ZIP_TIME)
            info.compress_type = zipfile.ZIP_STORED if name == "mimetype" else zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            target.writestr(info, entries[name])
    return buffer.getvalue()


def render_epub(job: RenderJob) -> Rendered:
    ast = {**job.document.ast, "blocks": lesson_blocks(job), "meta": metadata(job)}
    with tempfile.TemporaryDirectory(prefix="pubkit-epub-") as tmp:
        folder = Path(tmp)
        (folder / "fonts").mkdir()
        text = job.document.html + job.render_template("header.html.j2")
        fonts = []
        for face in job.theme.fonts:
            target = folder / "fonts" / face.path.name
            _subset_font(face, text, target)
            fonts.append(f"--epub-embed-font={target}")
        css = job.theme.stylesheet(
            job.edition.stylesheets,
            job.edition.name,
            job.config.paper,
            font_url=lambda face: f"../fonts/{face.path.name}",
        )
        (folder / "pubkit.css").write_text(css, encoding="utf-8")
        (folder / "cover.png").write_bytes(render_cover(job))
        output = folder / "lesson.epub"
        run_pandoc(
            [
                *("--from", "json", "--to", "epub3", "--output", str(output)),
                *("--css", str(folder / "pubkit.css"), *fonts),
                f"--epub-cover-image={folder / 'cover.png'}",
                *("--epub-title-page=false", "--split-level=1", "--toc-depth=3"),
                *("--wrap=none", "--syntax-highlighting=none"),
            ],
            json.dumps(ast).encode("utf-8"),
            source=job.lesson.path,
            cwd=job.lesson.path.parent,
            sandbox=False,
        )
        data, notes = _repack(output.read_bytes(), job)
        return Rendered(data=data, diagnostics=tuple(notes))
