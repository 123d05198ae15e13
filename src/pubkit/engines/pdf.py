"""Turn a lesson into its paginated PDF editions (pdf, handout) with WeasyPrint."""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import pyphen

from pubkit.document.links import LESSON, book_anchor, book_href
from pubkit.document.markdown import NO_DESCRIPTION
from pubkit.document.paged import to_html
from pubkit.document.render import Rendered, RenderJob
from pubkit.document.templates import counted_right
from pubkit.editions import COVER_STYLESHEETS, EDITIONS, MODULE_STYLESHEETS, PAGES, Edition
from pubkit.engines import layout
from pubkit.engines.bookpages import book_pages, numbers_pages, written_link
from pubkit.engines.fetcher import PROJECT_URL_ROOT
from pubkit.engines.glyphs import faces_for, languages_in, primary_faces
from pubkit.engines.weasy import (
    Resources,
    lay_out,
    parse_c_types,
    stylesheet,
    stylesheet_notes,
    weasyprint_warnings,
    write_pdf,
)
from pubkit.errors import Diagnostic, LessonError, warning
from pubkit.sources.config import Config
from pubkit.sources.manuscript import Lesson
from pubkit.sources.resources import line_of
from pubkit.sources.theme import Theme

#: Enough passes for "N pages" to settle and long takeaways boxes to break; more is a loop.
MAX_PASSES = 6
#: Room outside the bleed for crop marks (a print shop's "slug"), in mm.
SLUG_MM = 10.0
#: First guess of words per page, so that most lessons paginate in one pass.
WORDS_PER_PAGE = 520


#: WeasyPrint's messages about a lesson, and what pubkit says of each in its own words:
#: the author's image, link or style at its line. A message not here is passed on as the
#: PDF engine's.
_ENGINE_MESSAGES: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r'Image "(?P<at>.*)" has no required alt description'), NO_DESCRIPTION),
    (
        re.compile(r"Failed to load image at '(?P<at>[^']*)': (?P<why>.*)"),
        "image “{at}” could not be read ({why}); it is left out of the PDF",
    ),
    (
        re.compile(r"No anchor #(?P<at>.*) for internal URI reference"),
        "link to “#{at}” leads nowhere: no element has that id",
    ),
    (
        re.compile(r"Anchor defined twice: '(?P<at>.*)'"),
        "identifier “{at}” is given twice; links to it lead to the first",
    ),
    (
        re.compile(r"(?:Ignored|Deprecated) `(?P<at>[^`]*)` at \d+:\d+, (?P<why>.*?)\.?$"),
        "style “{at}” is ignored: {why}",
    ),
)


def engine_notes(lesson: Lesson, root: Path, messages: Iterable[str]) -> Iterator[Diagnostic]:
    """WeasyPrint's ``messages`` about ``lesson``, in pubkit's words at the manuscript line
    (:data:`_ENGINE_MESSAGES`)."""
    for message in messages:
        for pattern, words in _ENGINE_MESSAGES:
            if found := pattern.fullmatch(message):
                at = found["at"]
                if at.startswith(PROJECT_URL_ROOT.as_uri()):  # an image, as WeasyPrint saw it
                    inside = unquote(at[len(PROJECT_URL_ROOT.as_uri()) + 1 :])
                    at = os.path.relpath(root / inside, lesson.path.parent)
                line = line_of(lesson, at) or line_of(lesson, f"#{at}")
                yield warning(lesson.path, line, words.format(**{**found.groupdict(), "at": at}))
                break
        else:
            yield warning(lesson.path, None, f"the PDF engine says: {message}")


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
    parse_c_types()
    for language in dict.fromkeys(languages):
        if fallback := pyphen.language_fallback(language):
            pyphen.Pyphen(lang=fallback)  # pyphen keeps what it has read
    faces = primary_faces(theme)  # a lesson in another script loads its fonts itself
    language = config.language
    for name in (PAGES.name, *names) if not collections else ():
        edition = EDITIONS[name]
        if edition.paged:
            page_rule = _print_shop(edition, config)
            stylesheet(theme, edition.stylesheets, name, config.paper, page_rule, faces, language)
    if "epub" in names:  # the cover, of a lesson or a module
        stylesheet(theme, COVER_STYLESHEETS, "cover", config.paper, "", faces, language)
    if collections and PAGES.name in names:
        stylesheet(theme, MODULE_STYLESHEETS, PAGES.name, config.paper, "", faces, language)


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
    resources = Resources.of_project(job.config, job.theme, lesson.path.parent)
    print_shop = _print_shop(job.edition, job.config)
    pages = job.figures.pages or max(1, round(job.figures.words / WORDS_PER_PAGE))
    body = job.document.html
    # The fonts its words need: the first pass's HTML holds them all (header, boxes, body).
    first = job.render_template("lesson.html.j2", job.figures.with_pages(pages), body)
    faces = faces_for(job.theme, first, job.language, languages_in(first))
    edition, paper = job.edition, job.config.paper
    css = stylesheet(
        job.theme, edition.stylesheets, edition.name, paper, print_shop, faces, job.language
    )
    words = job.theme.words(job.language)
    breaks: dict[int, frozenset[int]] = {}
    tried: list[int] = []
    with weasyprint_warnings() as messages:
        messages.extend(stylesheet_notes(css))
        for _ in range(MAX_PASSES):
            figures = job.figures.with_pages(pages)
            html = job.render_template("lesson.html.j2", figures, body, live_pages=True)
            document = lay_out(html, css, resources, images=str(lesson.path))
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
        bleed = (job.config.bleed or 0.0) if print_shop else None
        # The book's pages are the lesson's own, less the boxes that number them.
        apart = numbers_pages if job.edition is PAGES else None
        data = write_pdf(document, job.edition.pdf_variant, bleed, apart)
        book = _book_pages(job, document, data) if job.edition is PAGES else None
    if refused := resources.fetcher.refused:
        raise LessonError.at(lesson.path, None, "refused resource " + "; ".join(refused))
    name = job.edition.name
    diagnostics = tuple(engine_notes(lesson, job.config.root, dict.fromkeys(messages)))
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
        book=book,
    )


def _book_pages(job: RenderJob, document: Any, data: bytes) -> bytes:
    """The lesson's pages as its module's collected PDF sets them, made from its own PDF
    ``data``: its ids under the lesson's anchor, its links to lessons led to their place in
    the books."""
    targets, course = job.document.targets, job.document.links
    own = job.lesson.module.folder.name
    relinked = {}
    for page in document.pages:
        for kind, uri, _, box in page.links:
            value = box.element.get(LESSON) if box.element is not None else None
            if kind == "external" and value:
                lesson, _, section = value.partition("#")
                relinked[written_link(uri)] = book_href(targets, course, own, lesson, section)
    return book_pages(data, book_anchor(job.lesson.number) + "-", relinked)
