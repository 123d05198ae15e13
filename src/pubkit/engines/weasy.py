"""Turn HTML and a theme's stylesheets into laid-out pages and PDF bytes: the one place
pubkit drives WeasyPrint, for a lesson's paged editions, a module's collected PDF and the
covers.

Every document is laid out by :func:`lay_out` with the fonts loaded once
(:func:`font_config`), its resources fetched only from the project and the theme
(:class:`Resources`), and written by :func:`write_pdf` or :func:`first_page_pdf`.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import deflate
import pydyf
import weasyprint.draw
import weasyprint.pdf.fonts
from weasyprint import CSS, HTML, Document
from weasyprint.text.fonts import FontConfiguration

from pubkit.document.links import BOOK_LINK, PDF_FILE
from pubkit.engines import linebreak, pagestyles, pangosetup, svgpaths
from pubkit.engines.fetcher import ProjectFetcher, project_url
from pubkit.errors import Diagnostic, warning
from pubkit.sources.config import Config
from pubkit.sources.theme import FontFace, Theme

#: Engine notices never shown to authors: about the machine, not the lesson; and the
#: glyphs missing from the fonts, which pubkit reports itself, once, at the line.
_ENGINE_NOTICES = ("HarfBuzz-Subset", ".notdef glyph")
_PT_PER_MM = 72 / 25.4
linebreak.install()  # no paragraph's first word alone on its line
svgpaths.install()  # a formula's glyphs parsed once, not at each drawing
pangosetup.install()  # a font's Pango context and description made once, not each line
pagestyles.install()  # pages matching the same @page rules share their computed styles
#: Deflate level of the PDFs' streams, written by libdeflate (the ``deflate`` wheel, pinned:
#: its output depends on its version only). pydyf would use zlib at 9, three and a half
#: times as long as at 6; libdeflate at 6 takes about half zlib's time at 6 (a lesson's
#: streams 17 ms, not 31), for streams 5 % smaller.
DEFLATE_LEVEL = 6
#: The key that marks a content stream holding only the drawing of boxes :func:`write_pdf`
#: was asked to set apart (the boxes that number a lesson's pages, which its module's book
#: leaves out): each such drawing is a stream of its page's own.
APART = "PubkitApart"
#: While a PDF is drawn: which boxes to set apart, and where each page's drawing of them
#: starts and ends (by the page stream's id: indexes into its operators).
_apart: ContextVar[tuple[Callable[[Any], bool], dict[int, list[tuple[int, int]]]] | None] = (
    ContextVar("apart", default=None)
)


def _install_apart() -> None:
    """Have WeasyPrint's drawing of a stacking context (a page's margin boxes are each one)
    note where its operators start and end when its box is one to set apart."""
    draw = weasyprint.draw.draw_stacking_context

    def drawing(stream: Any, context: Any) -> None:
        apart = _apart.get()
        if apart is None or not apart[0](context.box):
            draw(stream, context)
            return
        start = len(stream.stream)
        draw(stream, context)
        apart[1].setdefault(id(stream), []).append((start, len(stream.stream)))

    weasyprint.draw.draw_stacking_context = drawing


_install_apart()


class _ArraysByItem:
    """WeasyPrint's cffi for its font subsetting, but that it asks for an array of ``n``
    items as an array of the item's type (``hb_codepoint_t[]``). cffi parses the C
    declaration of each new type, and ``hb_codepoint_t[57]`` is a new type for each size
    (8 ms each); the sizes are the fonts' glyph counts, so a worker parsed dozens, a
    fresh one a tenth of a second's worth before its first PDF was out. The arrays are
    the same."""

    def __init__(self, ffi: Any) -> None:
        self._ffi = ffi

    def __getattr__(self, name: str) -> Any:
        return getattr(self._ffi, name)

    def new(self, cdecl: str, init: Any = None) -> Any:
        sized = _SIZED_ARRAY.match(cdecl)
        if sized is None or (init is not None and len(init) != int(sized[2])):
            return self._ffi.new(cdecl, init)
        return self._ffi.new(f"{sized[1]}[]", int(sized[2]) if init is None else init)


_SIZED_ARRAY = re.compile(r"^(\w+)\[(\d+)\]$")
weasyprint.pdf.fonts.ffi = _ArraysByItem(weasyprint.pdf.fonts.ffi)
#: The C types WeasyPrint asks cffi for as it lays out and writes a PDF, each parsed on
#: first use (8 ms): parsed by :func:`parse_c_types` before the workers fork.
_C_TYPES = (
    "char[]",
    "PangoRectangle *",
    "PangoLogAttr[]",
    "unsigned int *",
    "hb_tag_t[]",
    "hb_codepoint_t[]",
    "FcResult *",
    "FcChar8 **",
)


def parse_c_types() -> None:
    """Have cffi parse the C types WeasyPrint uses (:data:`_C_TYPES`) in this process,
    so that the workers forked from it inherit them (a module's collection, set after an
    edit, 60 ms sooner)."""
    for name in _C_TYPES:
        weasyprint.pdf.fonts.ffi.typeof(name)


@dataclass(frozen=True)
class Resources:
    """Where a document's images, stylesheets and fonts may come from, and the URL its
    relative references resolve against."""

    fetcher: ProjectFetcher
    base_url: str

    @classmethod
    def of_project(cls, config: Config, theme: Theme, folder: Path) -> Resources:
        """A lesson's or module's: files of the project and of the theme, relative
        references read from ``folder``."""
        fetcher = ProjectFetcher([config.root, *theme.folders], project=config.root)
        return cls(fetcher, project_url(config.root, folder) + "/")

    @classmethod
    def of_theme(cls, theme: Theme) -> Resources:
        """A cover's: files of the theme only."""
        return cls(ProjectFetcher(list(theme.folders)), theme.folders[0].as_uri() + "/")


def lay_out(html: str, css: CSS, resources: Resources, images: str | None = None) -> Document:
    """``html`` laid out in pages with ``css``. Layouts with the same ``images`` key (a
    lesson's passes and editions) share the images WeasyPrint has read (a formula's SVG is
    parsed once, not once a pass and an edition); another key forgets them."""
    page = HTML(string=html, base_url=resources.base_url, url_fetcher=resources.fetcher)
    cache = _image_cache(images)
    return page.render(stylesheets=[css], font_config=font_config(), cache=cache)


_IMAGES: dict[str, dict[Any, Any]] = {}


def _image_cache(key: str | None) -> dict[Any, Any] | None:
    if key is None:
        return None
    if key not in _IMAGES:
        _IMAGES.clear()  # one document's at a time: a file's image may change meanwhile
        _IMAGES[key] = {}
    return _IMAGES[key]


def write_pdf(
    document: Document,
    variant: str | None = None,
    bleed_mm: float | None = None,
    apart: Callable[[Any], bool] | None = None,
) -> bytes:
    """The laid-out ``document`` as a PDF of WeasyPrint's ``variant`` ("pdf/ua-1"), its
    streams deflated at :data:`DEFLATE_LEVEL`; with ``bleed_mm``, each page's BleedBox set;
    the drawing of each box ``apart`` picks in a content stream of its own, marked
    :data:`APART` (the page's others before and after it)."""
    cuts: dict[int, list[tuple[int, int]]] = {}
    token = _apart.set((apart, cuts) if apart is not None else None)
    try:
        return document.write_pdf(pdf_variant=variant, finisher=finisher(bleed_mm, cuts))  # type: ignore[no-any-return]
    finally:
        _apart.reset(token)


def first_page_pdf(document: Document) -> bytes:
    """The document's first page alone, uncompressed: read once, by a rasteriser."""
    return document.copy(document.pages[:1]).write_pdf(uncompressed_pdf=True)  # type: ignore[no-any-return]


#: fontconfig's configuration for pubkit: no font folder, so that only the theme's fonts
#: (added by their @font-face rules) are ever set, whatever the machine has installed.
_CLOSED_FONTCONFIG = """<?xml version="1.0"?>
<!DOCTYPE fontconfig SYSTEM "urn:fontconfig:fonts.dtd">
<fontconfig></fontconfig>
"""


class _ForkSafeFonts(FontConfiguration):  # type: ignore[misc]
    """WeasyPrint's font configuration, safe to share with forked workers.

    WeasyPrint copies each @font-face font into one folder under a name made from its
    rule, and takes a font already there for one it has registered. Workers forked from
    the build inherit that folder: two of them adding the same new font (a script's,
    loaded only for the lessons that need it) would see each other's file and skip
    registering it, and set the text with another face. So what this process has
    registered is remembered in memory, and a worker writes its new fonts into a folder
    of its own inside the build's (removed with it).
    """

    def __init__(self) -> None:
        super().__init__()
        self._owner = os.getpid()
        self._registered: set[str] = set()

    def add_font_face(self, rule_descriptors: Any, url_fetcher: Any) -> Any:
        key = str(rule_descriptors)
        if key in self._registered:
            return None
        if os.getpid() != self._owner:  # a forked worker's first font of its own
            self._owner = os.getpid()
            shared: Path | None = getattr(self, "_folder", None)  # the build's, if any
            if shared is not None:
                self._folder = Path(tempfile.mkdtemp(prefix=f"worker-{self._owner}-", dir=shared))
        self._registered.add(key)
        return super().add_font_face(rule_descriptors, url_fetcher)


def forget_fonts() -> None:
    """Remove the font files WeasyPrint copied for this process's :func:`font_config`,
    which its finaliser would: for a process that ends without running finalisers (the
    preview's build process)."""
    if font_config.cache_info().currsize:
        folder: Path | None = getattr(font_config(), "_folder", None)
        if folder is not None:
            shutil.rmtree(folder, ignore_errors=True)
        font_config.cache_clear()


@cache
def font_config() -> FontConfiguration:
    """WeasyPrint's fonts, once per process: the theme's alone. WeasyPrint starts from the
    configuration fontconfig finds (``FONTCONFIG_FILE``, else the machine's, with every
    system font), so it is pointed at an empty one while the configuration loads: two
    machines with different fonts installed set the same bytes, and a glyph no theme font
    has is reported (:mod:`pubkit.engines.glyphs`), never borrowed from the machine."""
    with tempfile.TemporaryDirectory(prefix="pubkit-fontconfig-") as folder:
        closed = Path(folder) / "fonts.conf"
        closed.write_text(_CLOSED_FONTCONFIG, encoding="utf-8")
        given = os.environ.get("FONTCONFIG_FILE")
        os.environ["FONTCONFIG_FILE"] = str(closed)
        try:
            return _ForkSafeFonts()
        finally:
            if given is None:
                del os.environ["FONTCONFIG_FILE"]
            else:
                os.environ["FONTCONFIG_FILE"] = given


@cache
def stylesheet(
    theme: Theme,
    names: tuple[str, ...],
    edition: str,
    paper: str,
    page_rule: str,
    faces: tuple[FontFace, ...],
    language: str | None = None,
) -> CSS:
    """The theme's stylesheets ``names`` for ``edition`` with @font-face rules for
    ``faces`` (:func:`pubkit.engines.glyphs.faces_for`: a script's font is loaded only
    for a text in that script) in the order ``language`` wants, parsed once per build."""
    css = theme.stylesheet(
        names, edition, paper, lambda face: face.path.as_uri(), faces=faces, language=language
    )
    css += page_rule
    resources = Resources.of_theme(theme)
    with weasyprint_warnings() as messages:  # a rule it cannot use: told with each lesson
        parsed = CSS(
            string=css,
            base_url=resources.base_url,
            url_fetcher=resources.fetcher,
            font_config=font_config(),
        )
    _STYLESHEET_NOTES[id(parsed)] = tuple(f"stylesheet: {m}" for m in dict.fromkeys(messages))
    return parsed


#: What WeasyPrint said parsing each of :func:`stylesheet`'s stylesheets (kept as long).
_STYLESHEET_NOTES: dict[int, tuple[str, ...]] = {}


def stylesheet_notes(css: CSS) -> tuple[str, ...]:
    """WeasyPrint's warnings about ``css`` (a :func:`stylesheet`): a declaration it ignored."""
    return _STYLESHEET_NOTES.get(id(css), ())


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        if not any(notice in message for notice in _ENGINE_NOTICES):
            self.messages.append(message)


@contextmanager
def weasyprint_warnings() -> Iterator[list[str]]:
    """Collect WeasyPrint's warnings instead of letting them reach the terminal."""
    logger = logging.getLogger("weasyprint")
    handler = _Collect()
    logger.addHandler(handler)
    propagate, logger.propagate = logger.propagate, False
    try:
        yield handler.messages
    finally:
        logger.removeHandler(handler)
        logger.propagate = propagate


def finisher(
    bleed_mm: float | None = None, cuts: dict[int, list[tuple[int, int]]] | None = None
) -> Callable[[Any, pydyf.PDF], None]:
    """What is done to a PDF once WeasyPrint has drawn it: each page's drawing split into
    streams where ``cuts`` say (see :func:`write_pdf`); its streams compressed at
    :data:`DEFLATE_LEVEL`; and with ``bleed_mm`` (print-shop editions) each page's BleedBox
    set to that bleed: WeasyPrint caps it at 10 pt, and counts the crop marks' slug in."""
    points = (bleed_mm or 0.0) * _PT_PER_MM

    def finish(_document: Any, pdf: pydyf.PDF) -> None:
        if cuts:
            _split_pages(pdf, cuts)
        for item in pdf.objects:
            if isinstance(item, pydyf.Stream) and item.compress:
                _compress(item)
            elif _is_link(item):
                _lead_link(item)
            elif bleed_mm is not None and _is_page(item):
                left, bottom, right, top = item["TrimBox"]
                item["BleedBox"] = pydyf.Array(
                    [left - points, bottom - points, right + points, top + points]
                )

    return finish


def _split_pages(pdf: pydyf.PDF, cuts: dict[int, list[tuple[int, int]]]) -> None:
    """Each page's drawing with ``cuts`` made an array of streams: the drawing between
    two cuts, the drawing each cut holds (marked :data:`APART`), in order. A page's
    drawing may be split between any two operators: its streams are read as one."""
    cut = {
        item.reference: (item, sorted(cuts[id(item)]))
        for item in pdf.objects
        if isinstance(item, pydyf.Stream) and id(item) in cuts
    }
    for page in [item for item in pdf.objects if _is_page(item)]:
        if page.get("Contents") not in cut:
            continue
        drawing, spans = cut[page["Contents"]]
        parts, at = [], 0
        for start, end in spans:
            parts.append((drawing.stream[at:start], False))
            parts.append((drawing.stream[start:end], True))
            at = end
        parts.append((drawing.stream[at:], False))
        drawing.stream = parts[0][0]  # the first part stays where the drawing was
        references = [drawing.reference]
        for operators, apart in parts[1:]:
            stream = pydyf.Stream(operators, {APART: "true"} if apart else None, drawing.compress)
            pdf.add_object(stream)
            references.append(stream.reference)
        page["Contents"] = pydyf.Array(references)


def _is_link(item: Any) -> bool:
    return (
        isinstance(item, pydyf.Dictionary)
        and item.get("Subtype") == "/Link"
        and isinstance(item.get("A"), pydyf.Dictionary)
    )


def lead(uri: str) -> tuple[str, str, str] | None:
    """Where a written link leads as a PDF link: ``("dest", name, "")`` for a place of the
    book a lesson's pages are written for (:data:`pubkit.document.links.BOOK_LINK`),
    ``("file", path, section)`` for another PDF beside this one
    (:data:`pubkit.document.links.PDF_FILE`); None for a link that stays a URI."""
    if uri.startswith(BOOK_LINK):
        return ("dest", unquote(uri[len(BOOK_LINK) :]), "")
    if uri.startswith(PDF_FILE):
        path, _, section = unquote(uri[len(PDF_FILE) :]).partition("#")
        return ("file", path, section)
    return None


def _lead_link(annotation: pydyf.Dictionary) -> None:
    """A link annotation to a written target made the PDF link :func:`lead` says: to a
    named destination; or a "go to a page of another file" action, to the section's
    named destination (WeasyPrint names one after each element's id), else to the first
    page."""
    action = annotation["A"]
    uri = action.get("URI")
    if action.get("S") != "/URI":
        return
    led = lead(uri.string if isinstance(uri, pydyf.String) else str(uri or ""))
    if led is None:
        return
    kind, place, section = led
    if kind == "dest":
        del annotation["A"]
        annotation["Dest"] = pydyf.String(place)
        if "Contents" in annotation:
            annotation["Contents"] = pydyf.String(place)
        return
    del action["URI"]
    action["S"] = "/GoToR"
    action["F"] = pydyf.String(place)
    action["D"] = pydyf.String(section) if section else pydyf.Array([0, "/Fit"])
    action["NewWindow"] = "false"
    if "Contents" in annotation:  # what a screen reader says of the link (PDF/UA)
        annotation["Contents"] = pydyf.String(place)


def _is_page(item: Any) -> bool:
    return isinstance(item, pydyf.Dictionary) and item.get("Type") == "/Page"


def _compress(stream: pydyf.Stream) -> None:
    """Deflate ``stream`` now, as pydyf would when writing it, at :data:`DEFLATE_LEVEL`."""
    plain = pydyf.Stream(stream.stream).data  # <</Length n>> stream ... endstream
    start = plain.index(b"\nstream\n") + len(b"\nstream\n")
    body = plain[start : -len(b"\nendstream")]
    stream.stream = [bytes(deflate.zlib_compress(body, DEFLATE_LEVEL))]
    stream.extra["Filter"] = "/FlateDecode"
    stream.compress = False


def machine_notices() -> list[Diagnostic]:
    """What this machine lacks that the PDFs are better with: HarfBuzz's subsetter (Debian's
    ``libharfbuzz-subset0``), without which WeasyPrint subsets fonts with fontTools, about
    three times slower and into other bytes than a machine that has it."""
    from weasyprint.pdf import fonts

    if fonts.harfbuzz_subset is not None:
        return []
    return [
        warning(
            None,
            None,
            "libharfbuzz-subset is not installed (Debian: libharfbuzz-subset0): the PDFs' "
            "fonts are subset with fontTools instead, about three times slower, and the "
            "PDFs differ in their bytes from those of a machine that has it",
        )
    ]
