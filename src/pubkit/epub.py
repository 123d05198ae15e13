"""Turn a lesson into an EPUB 3 with pandoc: module header, subset fonts, the shared design."""

from __future__ import annotations

import io
import json
import tempfile
import uuid
import zipfile
from pathlib import Path
from typing import Any
from xml.etree import ElementTree as ET

from fontTools import subset

from .pandoc import run_pandoc
from .render import Rendered, RenderJob
from .theme import FontFace

XHTML = "http://www.w3.org/1999/xhtml"
EPUB_NS = "http://www.idpf.org/2007/ops"
#: Characters every font subset keeps, so digits and common punctuation never go missing.
_ALWAYS = (
    "".join(map(chr, range(0x20, 0x7F))) + "\u00a0\u00b7\u2013\u2014\u2018\u2019\u201c\u201d\u2026"
)
#: Fixed zip entry time: the EPUB's bytes depend on its content only.
_ZIP_TIME = (1980, 1, 1, 0, 0, 0)

ET.register_namespace("", XHTML)
ET.register_namespace("epub", EPUB_NS)


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


def metadata(job: RenderJob) -> dict[str, Any]:
    lesson, module = job.lesson, job.lesson.module
    words = job.theme.words(job.language)
    meta: dict[str, Any] = {
        "title": lesson.title,
        "lang": job.language,
        "identifier": identifier(job),
        "creator": [{"role": "author", "text": a} for a in job.authors],
        "belongs-to-collection": f"{words['module']} {module.number}: {module.title}",
        "group-position": str(lesson.number),
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
    options = subset.Options()
    options.layout_features = ["*"]
    options.name_IDs = ["*"]
    options.name_languages = ["*"]
    options.notdef_outline = True
    font = subset.load_font(str(face.path), options)
    subsetter = subset.Subsetter(options)
    subsetter.populate(text=text + _ALWAYS)
    subsetter.subset(font)
    font.save(str(target))


def _classes(element: ET.Element) -> list[str]:
    return (element.get("class") or "").split()


_HEADER_PARTS = ("module-line", "lesson-number", "lesson-title", "dek", "reading-figures")


def _tag(name: str) -> str:
    return f"{{{XHTML}}}{name}"


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


def finish_chapter(xhtml: bytes, title: str) -> bytes:
    """Put pandoc's chapter in pubkit's shape: the header as in print, takeaways as asides,
    and the lesson's title (not pandoc's file name) as the document title."""
    root = ET.fromstring(xhtml)
    for element in root.iter(_tag("title")):
        element.text = title
    for element in list(root.iter()):
        classes = _classes(element)
        if "lesson" in classes:
            _finish_header(element)
        if "takeaways" in classes:
            _finish_takeaways(element)
    body = ET.tostring(root, encoding="unicode")
    return ('<?xml version="1.0" encoding="UTF-8"?>\n<!DOCTYPE html>\n' + body).encode("utf-8")


def _repack(epub: bytes, title: str) -> bytes:
    """Rewrite the container: chapters finished, mimetype first and stored, fixed times."""
    source = zipfile.ZipFile(io.BytesIO(epub))
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as target:
        names = sorted(source.namelist(), key=lambda n: (n != "mimetype", n))
        for name in names:
            data = source.read(name)
            if name.endswith(".xhtml") and "/text/" in name:
                data = finish_chapter(data, title)
            info = zipfile.ZipInfo(name, _ZIP_TIME)
            info.compress_type = zipfile.ZIP_STORED if name == "mimetype" else zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            target.writestr(info, data)
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
        output = folder / "lesson.epub"
        run_pandoc(
            [
                *("--from", "json", "--to", "epub3", "--output", str(output)),
                *("--css", str(folder / "pubkit.css"), *fonts),
                *("--epub-title-page=false", "--split-level=1", "--toc-depth=3"),
                *("--wrap=none", "--syntax-highlighting=none"),
            ],
            json.dumps(ast).encode("utf-8"),
            source=job.lesson.path,
            cwd=job.lesson.path.parent,
            sandbox=False,
        )
        return Rendered(data=_repack(output.read_bytes(), job.lesson.title))
