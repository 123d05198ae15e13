"""Turn a lesson into an EPUB 3 with pandoc: module header, cover, page list, subset fonts,
accessibility metadata read off the content, the shared design."""

from __future__ import annotations

import io
import re
import tempfile
import uuid
import zipfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
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


def _repack(
    epub: bytes,
    book: Book,
    cover: bytes,
    pages: PrintPages | None,
    theme: Theme,
    config: Config,
    edition: str,
    fonts: Mapping[str, bytes],
) -> tuple[bytes, list[Diagnostic]]:
    """Finish pandoc's EPUB, with ``cover`` in place of the placeholder pandoc was given,
    the ``fonts`` in place of their empty files (by name in the container), and
    page-break markers following ``pages``; and rewrite the container: mimetype first and
    stored, fixed times. Returns the bytes and warnings about what could not be
    claimed."""
    source = zipfile.ZipFile(io.BytesIO(epub))
    entries = {name: source.read(name) for name in source.namelist()}
    missing_fonts = set(fonts) - set(entries)
    assert not missing_fonts, f"pandoc left out {missing_fonts}"
    entries.update(fonts)
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
    if COVER in entries:
        page = ET.fromstring(entries[COVER])
        parts.finish_cover(page, book.cover_alt)
        entries[COVER] = parts.xhtml(page)
    package = ET.fromstring(entries[PACKAGE])
    cover_image = {
        "EPUB/" + item.get("href", "")
        for item in package.iter(tag("item", OPF))
        if "cover-image" in (item.get("properties") or "").split()
    }
    for name in cover_image:
        entries[name] = cover
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
    return _zip(entries), notes


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
    ast = {"pandoc-api-version": book.api_version, "meta": book.meta, "blocks": book.blocks}
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
        running = pandoc.epub(
            ast,
            source=book.source,
            css=folder / "pubkit.css",
            fonts=fonts,
            cover=folder / "cover.png",
            date=date,
        )
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
            data, notes = _repack(epub, book, cover, pages, theme, config, edition.name, subsets)
            return Rendered(data=data, diagnostics=tuple(notes))

        try:
            yield finish
        finally:
            if not waited:
                running.stop()
