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
from . import epubparts as parts
from .cover import render_cover
from .errors import Diagnostic, warning
from .namespaces import OPF, tag
from .pagelist import PageMarker, mark_pages
from .pandoc import run_pandoc
from .render import Rendered, RenderJob
from .theme import FontFace

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
        parts.finish_chapter(root, job.lesson.title)
        if starts and name == lesson_chapter:
            markers, missing = mark_pages(root, starts)
        entries[name] = parts.xhtml(root)
    nav = ET.fromstring(entries[NAV])
    parts.finish_nav(nav, lesson_chapter, markers, job)
    entries[NAV] = parts.xhtml(nav)
    if COVER in entries:
        cover = ET.fromstring(entries[COVER])
        parts.finish_cover(cover, job)
        entries[COVER] = parts.xhtml(cover)
    package = ET.fromstring(entries[PACKAGE])
    cover_image = {
        "EPUB/" + item.get("href", "")
        for item in package.iter(tag("item", OPF))
        if "cover-image" in (item.get("properties") or "").split()
    }
    claims = a11y.assess(
        chapters.values(),
        len(markers),
        {
            name: data
            for name, data in entries.items()
            if name.startswith("EPUB/media/") and name not in cover_image
        },
    )
    parts.finish_package(package, claims, job)
    entries[PACKAGE] = parts.package_xml(package)

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
            date=job.date,
        )
        data, notes = _repack(output.read_bytes(), job)
        return Rendered(data=data, diagnostics=tuple(notes))
