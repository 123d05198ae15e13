"""Turn a lesson into its paginated PDF editions (pdf, handout) with WeasyPrint."""

from __future__ import annotations

import logging
import zlib
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from functools import cache
from typing import Any

import pydyf
import pyphen
from weasyprint import CSS, HTML
from weasyprint.text.fonts import FontConfiguration

from pubkit.document.paged import to_html
from pubkit.document.render import Rendered, RenderJob
from pubkit.document.templates import counted_right
from pubkit.editions import COVER_STYLESHEETS, EDITIONS, MODULE_STYLESHEETS, PAGES, Edition
from pubkit.engines import layout
from pubkit.engines.fetcher import ProjectFetcher, project_url
from pubkit.errors import Diagnostic, LessonError, warning
from pubkit.sources.config import Config
from pubkit.sources.theme import Theme

#: Enough passes for "N pages" to settle and long takeaways boxes to break; more is a loop.
MAX_PASSES = 6
#: Engine notices about the machine, not about the lesson; never shown to authors.
_ENGINE_NOTICES = ("HarfBuzz-Subset",)
#: Room outside the bleed for crop marks (a print shop's "slug"), in mm.
SLUG_MM = 10.0
_PT_PER_MM = 72 / 25.4
#: First guess of words per page, so that most lessons paginate in one pass.
WORDS_PER_PAGE = 520
#: zlib level of the PDFs' streams. pydyf would use 9, which takes three and a half times
#: as long as 6 on a lesson's pages and fonts, for streams 1.4 % smaller.
ZLIB_LEVEL = 6


@cache
def font_config() -> FontConfiguration:
    return FontConfiguration()


@cache
def stylesheet(
    theme: Theme, names: tuple[str, ...], edition: str, paper: str, page_rule: str
) -> CSS:
    css = theme.stylesheet(names, edition, paper, font_url=lambda face: face.path.as_uri())
    css += page_rule
    fetcher = ProjectFetcher(list(theme.folders))
    return CSS(
        string=css,
        base_url=theme.folders[0].as_uri() + "/",
        url_fetcher=fetcher,
        font_config=font_config(),
    )


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


def _print_shop(edition: Edition, config: Config) -> str:
    """The @page rule a commercial printer needs: bleed beyond the trim, crop marks.

    WeasyPrint draws marks in the outer half of the bleed area, so with marks the area
    grows by :data:`SLUG_MM`: the marks then stay clear of the bleed itself.
    """
    if not edition.print_shop or not (config.bleed or config.marks):
        return ""
    area = (config.bleed or 0.0) + (SLUG_MM if config.marks else 0.0)
    marks = "; marks: crop cross" if config.marks else ""
    return f"\n@page {{ bleed: {area:g}mm{marks} }}\n"


def warm(
    theme: Theme,
    config: Config,
    names: tuple[str, ...],
    languages: Iterable[str] = (),
    collections: bool = False,
) -> None:
    """Load fonts, parse stylesheets and the hyphenation dictionaries of ``languages``
    once, before the build forks its workers (:mod:`pubkit.course.workers`), so that no worker
    pays for them again (a dictionary takes a tenth of a second): for the lesson editions
    ``names`` (the pdf edition is always set), or for the modules' ``collections``."""
    for language in dict.fromkeys(languages):
        if fallback := pyphen.language_fallback(language):
            pyphen.Pyphen(lang=fallback)  # pyphen keeps what it has read
    for name in (PAGES.name, *names) if not collections else ():
        edition = EDITIONS[name]
        if edition.paged:
            page_rule = _print_shop(edition, config)
            stylesheet(theme, edition.stylesheets, name, config.paper, page_rule)
    if "epub" in names:  # the cover, of a lesson or a module
        stylesheet(theme, COVER_STYLESHEETS, "cover", config.paper, "")
    if collections and PAGES.name in names:
        stylesheet(theme, MODULE_STYLESHEETS, PAGES.name, config.paper, "")


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


def finisher(bleed_mm: float | None = None) -> Callable[[Any, pydyf.PDF], None]:
    """What is done to a PDF once WeasyPrint has drawn it: its streams compressed at
    :data:`ZLIB_LEVEL`, and with ``bleed_mm`` (print-shop editions) each page's BleedBox
    set to that bleed: WeasyPrint caps it at 10 pt, and counts the crop marks' slug in."""
    points = (bleed_mm or 0.0) * _PT_PER_MM

    def finish(_document: Any, pdf: pydyf.PDF) -> None:
        for item in pdf.objects:
            if isinstance(item, pydyf.Stream) and item.compress:
                _compress(item)
            elif bleed_mm is not None and _is_page(item):
                left, bottom, right, top = item["TrimBox"]
                item["BleedBox"] = pydyf.Array(
                    [left - points, bottom - points, right + points, top + points]
                )

    return finish


def _is_page(item: Any) -> bool:
    return isinstance(item, pydyf.Dictionary) and item.get("Type") == "/Page"


def _compress(stream: pydyf.Stream) -> None:
    """Deflate ``stream`` now, as pydyf would when writing it, at :data:`ZLIB_LEVEL`."""
    plain = pydyf.Stream(stream.stream).data  # <</Length n>> stream ... endstream
    start = plain.index(b"\nstream\n") + len(b"\nstream\n")
    body = plain[start : -len(b"\nendstream")]
    stream.stream = [zlib.compress(body, ZLIB_LEVEL)]
    stream.extra["Filter"] = "/FlateDecode"
    stream.compress = False


def render_paged(job: RenderJob) -> Rendered:
    """Lay the lesson out until it is stable, then write the PDF and proofread its pages.

    Stable means the "N pages" in the header reads right for the pages produced, and every
    takeaways box longer than a page breaks where its page ends, with a "(continued)"
    heading on the next. WeasyPrint prints the number itself (``counter(pages)``, see
    :data:`pubkit.document.templates.PAGE_COUNTER`), re-making only the header's page once it
    knows the count; so one layout is enough unless the first guess chose the wrong
    singular or plural ("1 page") or the count needs a thousands separator.
    """
    lesson = job.lesson
    fetcher = ProjectFetcher([job.config.root, *job.theme.folders], project=job.config.root)
    base_url = project_url(job.config.root, lesson.path.parent) + "/"
    print_shop = _print_shop(job.edition, job.config)
    css = stylesheet(
        job.theme, job.edition.stylesheets, job.edition.name, job.config.paper, print_shop
    )
    pages = job.figures.pages or max(1, round(job.figures.words / WORDS_PER_PAGE))
    body = job.document.html
    words = job.theme.words(job.language)
    breaks: dict[int, frozenset[int]] = {}
    tried: list[int] = []
    with weasyprint_warnings() as messages:
        for _ in range(MAX_PASSES):
            figures = job.figures.with_pages(pages)
            html = job.render_template("lesson.html.j2", figures, body, live_pages=True)
            document = HTML(string=html, base_url=base_url, url_fetcher=fetcher).render(
                stylesheets=[css], font_config=font_config()
            )
            tried.append(pages)
            splits = layout.continuations(document)
            if splits:
                for split in splits:
                    breaks[split.box] = breaks.get(split.box, frozenset()).union(split.units)
                continued = words["continued"]
                body = to_html(job.document.ast, lesson, breaks, continued)
            elif counted_right(words, "pages", pages, len(document.pages)):
                break
            pages = len(document.pages)
        else:
            raise LessonError.at(lesson.path, None, f"layout does not settle (pages {tried})")
        data = document.write_pdf(
            pdf_variant=job.edition.pdf_variant,
            finisher=finisher((job.config.bleed or 0.0) if print_shop else None),
        )
    if fetcher.refused:
        raise LessonError.at(lesson.path, None, "refused resource " + "; ".join(fetcher.refused))
    name = job.edition.name
    diagnostics = tuple(warning(lesson.path, None, f"{name}: {m}") for m in dict.fromkeys(messages))
    findings = tuple(
        warning(lesson.path, lesson.line_of_text(f.text), f"{name} page {f.page}: {f.message}")
        for f in layout.inspect(document)
    )
    return Rendered(
        data=data,
        pages=len(document.pages),
        diagnostics=diagnostics,
        findings=findings,
        page_starts=layout.page_starts(document),
        body=body,
    )
