"""Turn a lesson into an EPUB 3 with pandoc: module header, cover, page list, subset fonts,
accessibility metadata read off the content, the shared design."""

from __future__ import annotations

import hashlib
import io
import json
import re
import tempfile
import uuid
import zipfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from xml.etree import ElementTree as ET

from pubkit.document import pandoc
from pubkit.document.ast import walk
from pubkit.document.code import highlighted
from pubkit.document.links import TITLE_ID, epub_blocks
from pubkit.document.math import for_epub, formulas
from pubkit.document.render import Rendered, RenderJob
from pubkit.editions import Edition
from pubkit.engines import a11y
from pubkit.engines import epubparts as parts
from pubkit.engines.cover import placeholder_png, render_cover
from pubkit.engines.fonts import formula_text, subset_font
from pubkit.engines.glyphs import faces_for
from pubkit.engines.namespaces import OPF, tag
from pubkit.engines.pagelist import PageMarker, PrintPages, mark_pages
from pubkit.errors import Diagnostic, warning
from pubkit.sources.config import Config, text_direction
from pubkit.sources.theme import Theme

#: Fixed zip entry time: the EPUB's bytes depend on its content only.
_ZIP_TIME = (1980, 1, 1, 0, 0, 0)
#: Where pandoc puts things in the container.
NAV = "EPUB/nav.xhtml"
NCX = "EPUB/toc.ncx"
PACKAGE = "EPUB/content.opf"
COVER = "EPUB/text/cover.xhtml"
_CHAPTER = re.compile(r"^EPUB/text/ch(\d+)\.xhtml$")
#: The default series name: "Module 9: The Human Craft".
SERIES = "{module} {number}: {title}"


def meta_value(value: Any) -> dict[str, Any]:
    """A Python value as pandoc metadata; text stays literal (never read as Markdown)."""
    if isinstance(value, dict):
        return {"t": "MetaMap", "c": {k: meta_value(v) for k, v in value.items()}}
    if isinstance(value, list | tuple):
        return {"t": "MetaList", "c": [meta_value(v) for v in value]}
    return {"t": "MetaString", "c": str(value)}


def _inlines(text: str) -> list[dict[str, Any]]:
    """Literal text as pandoc inlines."""
    inlines: list[dict[str, Any]] = []
    for word in text.split():
        if inlines:
            inlines.append({"t": "Space"})
        inlines.append({"t": "Str", "c": word})
    return inlines


def series(job: RenderJob) -> str:
    """The module as e-reader libraries shelve it (``epub.series`` in pubkit.yaml)."""
    module = job.lesson.module
    words = job.theme.words(job.language)
    return (job.config.series or SERIES).format(
        module=words["module"], number=module.number, title=module.title
    )


def book_metadata(
    config: Config,
    key: str,
    title: str,
    language: str,
    authors: Sequence[str],
    series: str,
    position: int,
    contents: str,
    **optional: Any,
) -> dict[str, Any]:
    """An EPUB's metadata for pandoc: ``title`` as number ``position`` of ``series``, and a
    stable identifier made from the course and ``key``, so that the same lesson (or
    module) of the same course keeps it across rebuilds. Empty ``optional`` values
    (description, subject, date…) are left out."""
    name = f"pubkit:{config.title}:{key}"
    meta: dict[str, Any] = {
        "title": title,
        "lang": language,
        "identifier": f"urn:uuid:{uuid.uuid5(uuid.NAMESPACE_URL, name)}",
        "creator": [{"role": "author", "text": a} for a in authors],
        "belongs-to-collection": series,
        "group-position": str(position),
        "toc-title": contents,
        "publisher": config.publisher,
        **optional,
    }
    if text_direction(language) == "rtl":  # pandoc sets dir on every chapter and the spine
        meta.update({"dir": "rtl", "page-progression-direction": "rtl"})
    return {k: meta_value(v) for k, v in meta.items() if v}


def metadata(job: RenderJob) -> dict[str, Any]:
    lesson = job.lesson
    return book_metadata(
        job.config,
        lesson.id,
        lesson.title,
        job.language,
        job.authors,
        series(job),
        lesson.number,
        job.theme.words(job.language)["contents"],
        description=lesson.subtitle,
        subject=list(lesson.keywords),
        date=job.date or lesson.date,
    )


def lesson_blocks(job: RenderJob, links: bool = True) -> list[dict[str, Any]]:
    """The lesson as one section headed by a real level-1 title, so pandoc adds no title of
    its own and keeps header and body in one chapter; :func:`finish_chapter` then gathers
    the header parts around the title in print order. With ``links``, its links to other
    lessons take the form a lesson's EPUB can hold (a module's collection gives them its
    own)."""
    macros = job.template_macros("header.html.j2")
    title_attr: tuple[str, list[str], list[str]] = (TITLE_ID, ["lesson-title"], [])
    header = [
        {"t": "Header", "c": [1, title_attr, _inlines(job.lesson.title)]},
        {"t": "RawBlock", "c": ["html", f"{macros.module_line()}\n{macros.lesson_number()}"]},
        {"t": "RawBlock", "c": ["html", str(macros.after_title())]},
    ]
    document = job.document
    body = highlighted(formulas(document.ast["blocks"], for_epub))  # MathML, coloured code
    if links:
        own = job.lesson.module.folder.name
        words = job.theme.words(job.language)
        body = epub_blocks(body, document.targets, document.links, own, words)
    blocks = [*header, *body]
    # A lesson in a language other than the course's says so (in a module's collection,
    # it shares the book with lessons in the course's language).
    language = [("lang", job.language)] if job.language != job.config.language else []
    return [{"t": "Div", "c": [("", ["lesson"], language), blocks]}]


@dataclass(frozen=True)
class Book:
    """What one EPUB holds: a lesson, or a module's lessons collected
    (:mod:`pubkit.course.modulebook`).

    Each lesson is a ``Div.lesson`` of ``blocks`` headed by its level-1 title; pandoc
    makes a chapter of each."""

    blocks: list[Any]
    #: The pandoc AST version the blocks were read with.
    api_version: list[int]
    #: pandoc metadata (title, identifier, language, creators…), see :func:`metadata`.
    meta: dict[str, Any]
    #: Every character the book sets, header included: the fonts keep these glyphs.
    text: str
    cover_alt: str
    #: The body's label in the landmarks.
    title: str
    language: str
    #: Where errors point, and the folder relative references start from.
    source: Path
    #: The languages its spans and blocks say they are in, and its MathML formulas
    #: (:func:`languages_of`, :func:`mathml_of`); None: read from the blocks when written
    #: (a module's book takes its lessons', found when each was set).
    languages: frozenset[str] | None = None
    mathml: str | None = None
    #: A collection's chapters: a key for each of its blocks (a lesson's ``Div``, which
    #: pandoc makes one chapter of), and the chapters earlier builds made of blocks with
    #: those keys (:class:`Chapter`), which pandoc is given only the titles of. Empty: a
    #: lesson's book, whose chapter is not kept.
    chapter_keys: tuple[str, ...] = ()
    kept_chapters: Mapping[str, Chapter] = field(default_factory=dict)


@dataclass(frozen=True)
class Chapter:
    """A lesson's chapter of a collected EPUB as pandoc wrote it, made to stand alone, so
    that the next build of the book takes it again while the lesson is unchanged: its
    links into the book as ``#id`` (:func:`pubkit.engines.epubparts.link_across` leads
    each to its chapter), its images named by their content (``media/<digest>.png``),
    with their media types, and the properties its package item has (``mathml``,
    ``svg``)."""

    xhtml: bytes = field(repr=False)
    media: Mapping[str, tuple[str, bytes]] = field(repr=False)
    properties: str


def kept_chapters(data: bytes) -> dict[str, Chapter]:
    """The chapters :func:`chapters_archive` keeps, by key."""
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        index = json.loads(archive.read("index.json"))
        return {
            key: Chapter(
                xhtml=archive.read(f"{key}/chapter.xhtml"),
                media={
                    name: (kind, archive.read(f"{key}/media/{name}"))
                    for name, kind in entry["media"].items()
                },
                properties=entry["properties"],
            )
            for key, entry in index.items()
        }


def chapters_archive(chapters: Mapping[str, Chapter]) -> bytes:
    """``chapters`` (by key) as one file, stored (not compressed: it is read again soon)."""
    index = {
        key: {
            "properties": chapter.properties,
            "media": {name: kind for name, (kind, _) in chapter.media.items()},
        }
        for key, chapter in chapters.items()
    }
    entries = {"index.json": json.dumps(index, sort_keys=True).encode()}
    for key, chapter in chapters.items():
        entries[f"{key}/chapter.xhtml"] = chapter.xhtml
        entries.update({f"{key}/media/{name}": data for name, (_, data) in chapter.media.items()})
    return _zip(entries, zipfile.ZIP_STORED)


def _title_only(block: Any) -> Any | None:
    """A lesson's ``Div`` with nothing but its title (what pandoc needs of a kept
    chapter: its place and its heading); None if it does not start with one."""
    attr, content = block["c"] if block.get("t") == "Div" else (None, [])
    if not content or content[0].get("t") != "Header" or content[0]["c"][0] != 1:
        return None
    return {"t": "Div", "c": [attr, content[:1]]}


def _titles_for_kept(book: Book) -> tuple[list[Any], Book]:
    """The blocks pandoc is given, a kept chapter's lesson by its title only; and the book
    with the chapters so kept (one without a title of its own is written again)."""
    if not book.kept_chapters:
        return book.blocks, book
    blocks, kept = [], {}
    for block, key in zip(book.blocks, book.chapter_keys, strict=True):
        title = _title_only(block) if key in book.kept_chapters else None
        if title is not None:
            kept[key] = book.kept_chapters[key]
        blocks.append(title or block)
    return blocks, replace(book, kept_chapters=kept)


class _Unkept(Exception):
    """pandoc did not make a chapter of each of a collection's blocks: its chapters can be
    neither kept nor taken again (the book is written whole)."""


def _stand_alone(entries: dict[str, bytes], package: ET.Element, book: Book) -> dict[str, Chapter]:
    """Put a collection's kept chapters in place of the titles pandoc was given for them,
    and make the others stand alone (:class:`Chapter`), in ``entries`` and the
    ``package`` document; returns every chapter, by key. The cover image is named
    ``media/cover.png``, whatever pandoc named it."""
    names = sorted(filter(_CHAPTER.match, entries), key=_chapter_number)
    if len(names) != len(book.chapter_keys):
        raise _Unkept
    manifest = package.find(tag("manifest", OPF))
    assert manifest is not None
    items = {"EPUB/" + (item.get("href") or ""): item for item in manifest}
    media = {name: item for name, item in items.items() if name.startswith("EPUB/media/")}
    chapters = {}
    for name, key in zip(names, book.chapter_keys, strict=True):
        chapter = book.kept_chapters.get(key) or _chapter(entries, name, items, media)
        chapters[key] = chapter
        entries[name] = chapter.xhtml
        items[name].attrib.pop("properties", None)
        if chapter.properties:
            items[name].set("properties", chapter.properties)
    for name, item in media.items():
        data = entries.pop(name)
        manifest.remove(item)
        if "cover-image" in (item.get("properties") or "").split():
            cover = "media/cover" + Path(name).suffix
            entries["EPUB/" + cover] = data
            item.set("href", cover)
            item.set("id", "cover-image")
            manifest.append(item)
    for chapter in chapters.values():
        for file, (kind, data) in chapter.media.items():
            if f"EPUB/media/{file}" not in entries:
                entries[f"EPUB/media/{file}"] = data
                attributes = {"id": "m-" + file.replace(".", "-"), "href": f"media/{file}"}
                ET.SubElement(manifest, tag("item", OPF), {**attributes, "media-type": kind})
    for item in manifest:  # one item a line, as pandoc writes them
        item.tail = "\n    "
    manifest[-1].tail = "\n  "
    return chapters


def _chapter(
    entries: Mapping[str, bytes],
    name: str,
    items: Mapping[str, ET.Element],
    media: Mapping[str, ET.Element],
) -> Chapter:
    """Chapter ``name`` as pandoc wrote it, made to stand alone (:class:`Chapter`)."""
    root = ET.fromstring(entries[name])
    files: dict[str, tuple[str, bytes]] = {}
    for element in root.iter():
        for attribute, value in element.attrib.items():
            item = media.get("EPUB/" + value[3:]) if value.startswith("../media/") else None
            if item is not None:  # (an element without children is false)
                data = entries["EPUB/" + value[3:]]
                file = hashlib.sha256(data).hexdigest()[:20] + Path(value).suffix.lower()
                files[file] = (item.get("media-type") or "", data)
                element.set(attribute, "../media/" + file)
            elif attribute == "href" and (found := _IN_BOOK.match(value)):
                element.set(attribute, found[1])
    return Chapter(parts.xhtml(root), files, items[name].get("properties") or "")


#: A link pandoc led to a chapter of the book: ``ch003.xhtml#id``.
_IN_BOOK = re.compile(r"^ch\d+\.xhtml(#.+)$")


def _repack(
    epub: bytes,
    book: Book,
    cover: bytes,
    pages: PrintPages | None,
    theme: Theme,
    config: Config,
    edition: str,
    fonts: Mapping[str, bytes],
) -> tuple[bytes, list[Diagnostic], dict[str, Chapter]]:
    """Finish pandoc's EPUB, with ``cover`` in place of the placeholder pandoc was given,
    the ``fonts`` in place of their empty files (by name in the container), and
    page-break markers following ``pages``; and rewrite the container: mimetype first and
    stored, fixed times. Returns the bytes, warnings about what could not be claimed, and
    a collection's chapters (:class:`Chapter`, by key)."""
    source = zipfile.ZipFile(io.BytesIO(epub))
    entries = {name: source.read(name) for name in source.namelist()}
    missing_fonts = set(fonts) - set(entries)
    assert not missing_fonts, f"pandoc left out {missing_fonts}"
    entries.update(fonts)
    package = ET.fromstring(entries[PACKAGE])
    made = _stand_alone(entries, package, book) if book.chapter_keys else {}
    chapters = {
        name: ET.fromstring(entries[name])
        for name in sorted(filter(_CHAPTER.match, entries), key=_chapter_number)
    }
    markers: list[tuple[str, PageMarker]] = []
    missing: list[int] = []
    toc: list[parts.Entry] = []
    first = next(iter(chapters))  # the (first) lesson; any notes follow their lesson
    parts.link_across(chapters)
    for name, root in chapters.items():
        toc += parts.contents(root, name.removeprefix("EPUB/"))  # pandoc's sections
        parts.finish_chapter(root, parts.chapter_title(root) or book.title)
        if pages and (own := pages.of(root)):
            found, lost = mark_pages(root, own[1], first=own[0])
            markers += [(name, marker) for marker in found]
            missing += lost
        entries[name] = parts.xhtml(root)
    words = theme.words(book.language)
    nav = ET.fromstring(entries[NAV])
    parts.finish_nav(nav, first, toc, markers, words, book.title)
    entries[NAV] = parts.xhtml(nav)
    ncx = ET.fromstring(entries[NCX])
    parts.finish_ncx(ncx, toc)
    entries[NCX] = parts.ncx_xml(ncx)
    cover_image = {
        "EPUB/" + item.get("href", "")
        for item in package.iter(tag("item", OPF))
        if "cover-image" in (item.get("properties") or "").split()
    }
    for name in cover_image:
        entries[name] = cover
    if COVER in entries:
        page = ET.fromstring(entries[COVER])
        (image,) = (name.removeprefix("EPUB/") for name in cover_image)
        parts.finish_cover(page, book.cover_alt, f"../{image}")
        entries[COVER] = parts.xhtml(page)
    claims = a11y.assess(
        chapters.values(),
        len(markers),
        {
            name: data
            for name, data in entries.items()
            if name.startswith("EPUB/media/") and name not in cover_image
        },
    )
    certifier = config.publisher or config.title
    page_source = pages.edition if pages else ""
    parts.finish_package(package, claims, book.language, certifier, page_source)
    entries[PACKAGE] = parts.package_xml(package)

    path = book.source
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
    return _zip(entries), notes, made


def languages_of(blocks: list[Any]) -> frozenset[str]:
    """The languages the book's spans and blocks say they are in (``{lang=ja}``)."""
    return frozenset(
        value
        for node in walk(blocks)
        if node["t"] in ("Span", "Div")
        for key, value in node["c"][0][2]
        if key == "lang"
    )


def mathml_of(blocks: list[Any]) -> str:
    """The book's MathML formulas (:func:`pubkit.document.math.for_epub`), as markup."""
    return "".join(
        node["c"][1]
        for node in walk(blocks)
        if node["t"] == "RawInline" and node["c"][0] == "html" and "math" in node["c"][1][:12]
    )


def _chapter_number(name: str) -> int:
    """Chapters in reading order: pandoc numbers them (ch001, …, ch1000)."""
    match = _CHAPTER.match(name)
    assert match is not None
    return int(match[1])


def _zip(entries: Mapping[str, bytes], compression: int = zipfile.ZIP_DEFLATED) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as target:
        for name in sorted(entries, key=lambda n: (n != "mimetype", n)):
            info = zipfile.ZipInfo(name, _ZIP_TIME)
            info.compress_type = zipfile.ZIP_STORED if name == "mimetype" else compression
            info.external_attr = 0o644 << 16
            target.writestr(info, entries[name])
    return buffer.getvalue()


def render_epub(job: RenderJob) -> Rendered:
    """The lesson as an EPUB: one chapter, its cover, and a page list following the PDF."""
    words = job.theme.words(job.language)
    module, lesson = job.lesson.module, job.lesson
    book = Book(
        blocks=lesson_blocks(job),
        api_version=job.document.ast["pandoc-api-version"],
        meta=metadata(job),
        text=job.document.html + str(job.template_macros("header.html.j2").header()),
        cover_alt=(
            f"{words['module']} {module.number}: {module.title}. "
            f"{words['lesson']} {lesson.number}: {lesson.title}"
        ),
        title=lesson.title,
        language=job.language,
        source=lesson.path,
    )
    pages = None
    if job.print_edition:
        edition = f"{lesson.title}, PDF edition ({job.config.paper})"
        pages = PrintPages(edition, {TITLE_ID: (1, job.print_edition.page_starts)})
    with writing(book, job.theme, job.config, job.edition, job.date) as finish:
        return finish(render_cover(job), pages)  # the cover is set while pandoc writes


#: Finishes a book pandoc has written (:func:`writing`), given its cover (PNG) and the
#: print pages its page list follows (None: no page list).
Finish = Callable[[bytes, PrintPages | None], Rendered]


@contextmanager
def writing(
    book: Book, theme: Theme, config: Config, edition: Edition, date: str | None
) -> Iterator[Finish]:
    """pandoc writing ``book`` as EPUB 3 with the theme's stylesheet and subset fonts,
    started at once: the caller makes the cover meanwhile (and a module's PDF, whose pages
    the page list follows), then finishes the book (:func:`_repack`) with what the block
    yields. ``date`` (YYYY-MM-DD) fixes its modification time. pandoc is stopped if the
    block ends otherwise."""
    blocks, book = _titles_for_kept(book)
    ast = {"pandoc-api-version": book.api_version, "meta": book.meta, "blocks": blocks}
    with tempfile.TemporaryDirectory(prefix="pubkit-epub-") as tmp:
        folder = Path(tmp)
        (folder / "fonts").mkdir()
        fonts = []
        mathml = formula_text(book.mathml if book.mathml is not None else mathml_of(book.blocks))
        languages = book.languages if book.languages is not None else languages_of(book.blocks)
        faces = faces_for(theme, book.text, book.language, languages, formulas=bool(mathml))
        for face in faces:  # empty until _repack: pandoc names them, then writes the book
            fonts.append(folder / "fonts" / face.path.name)
            fonts[-1].write_bytes(b"")
        css = theme.stylesheet(
            edition.stylesheets,
            edition.name,
            config.paper,
            font_url=lambda face: f"../fonts/{face.path.name}",
            faces=faces,
            language=book.language,
        )
        (folder / "pubkit.css").write_text(css, encoding="utf-8")
        (folder / "cover.png").write_bytes(placeholder_png())  # replaced in _repack
        running = _pandoc(ast, book, folder, fonts, date)
        waited = False
        # Cut while pandoc writes (a module's ten faces: 35 ms), which then has no font to
        # deflate (40 ms): _repack puts them in.
        subsets = {
            f"EPUB/fonts/{face.path.name}": subset_font(
                face, mathml if face.formulas else book.text
            )
            for face in faces
        }

        def finish(cover: bytes, pages: PrintPages | None) -> Rendered:
            nonlocal waited
            waited = True
            epub = running.wait()
            try:
                data, notes, made = _repack(
                    epub, book, cover, pages, theme, config, edition.name, subsets
                )
            except _Unkept:  # written whole, no chapter kept
                whole = replace(book, chapter_keys=(), kept_chapters={})
                if book.kept_chapters:
                    ast["blocks"] = whole.blocks
                    epub = _pandoc(ast, whole, folder, fonts, date).wait()
                data, notes, made = _repack(
                    epub, whole, cover, pages, theme, config, edition.name, subsets
                )
            return Rendered(data=data, diagnostics=tuple(notes), chapters=made)

        try:
            yield finish
        finally:
            if not waited:
                running.stop()


def _pandoc(
    ast: dict[str, Any], book: Book, folder: Path, fonts: list[Path], date: str | None
) -> pandoc.Conversion:
    """pandoc writing ``ast`` as ``book``, with what :func:`writing` put in ``folder``."""
    return pandoc.epub(
        ast,
        source=book.source,
        css=folder / "pubkit.css",
        fonts=fonts,
        cover=folder / "cover.png",
        date=date,
    )
