"""Turn a module's lessons into its collected editions: one PDF (title page, contents with
page numbers, every lesson with its header and takeaways box) and one EPUB (a chapter per
lesson, the title page as its cover).

A lesson enters its module's collection as a :class:`Fragment`, made when the lesson is
set and kept in the build cache: a module is collected again, after one lesson changed,
without setting its other lessons again.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urljoin

from markupsafe import Markup

from pubkit import __version__
from pubkit.document.ast import rename_ids_in_blocks
from pubkit.document.links import TITLE_ID
from pubkit.document.render import Rendered, RenderJob
from pubkit.document.sanitize import START_TAG, rename_ids
from pubkit.document.templates import environment
from pubkit.editions import EDITIONS, MODULE_STYLESHEETS, PAGES
from pubkit.engines.pagelist import PrintPages
from pubkit.sources.config import Config
from pubkit.sources.manuscript import Module
from pubkit.sources.theme import Theme

if TYPE_CHECKING:
    from pubkit.engines.epub import Book

#: In a start tag (:data:`pubkit.document.sanitize.START_TAG`): a reference to another file.
_REFERENCE = re.compile(r'(?<=\s)(src|href|poster)="([^"#][^"]*)"')
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")


#: The collected editions, by the lesson edition each one collects.
COLLECTED = (PAGES.name, "epub")


@dataclass(frozen=True)
class Fragment:
    """One lesson as its module's collection sets it; identifiers carry the lesson's
    anchor as a prefix, so that lessons never share one."""

    anchor: str
    number: int
    title: str
    language: str
    words: int
    minutes: int
    #: The header and the body as laid out in the lesson's PDF, for the collected PDF;
    #: references are project URLs.
    header: str
    body: str
    #: The lesson's chapter for the collected EPUB (pandoc blocks).
    blocks: list[Any]
    api_version: list[int]
    #: Every character the lesson sets, for the EPUB's font subsets.
    text: str

    def as_dict(self) -> dict[str, Any]:
        """The fields by name; not :func:`dataclasses.asdict`, which deep-copies the
        blocks (a tenth of a second a lesson)."""
        return {field.name: getattr(self, field.name) for field in fields(self)}

    def to_json(self) -> bytes:
        return json.dumps(self.as_dict(), ensure_ascii=False).encode("utf-8")

    @classmethod
    def from_json(cls, data: bytes) -> Fragment:
        return cls(**json.loads(data))


def anchor(job: RenderJob) -> str:
    """The lesson's id in its module's collection: ``lesson-7``. Lesson numbers are unique
    in a module, and every id of the lesson's own becomes ``lesson-7-…``: one hyphen
    more than any anchor, so never another lesson's anchor, whatever its file is called."""
    return f"lesson-{job.lesson.number}"


def fragment(job: RenderJob) -> Fragment:
    """The lesson, with its final reading figures, as its module's collection sets it:
    ``job`` carries the lesson's pdf edition, whose laid-out body the collected PDF sets."""
    from pubkit.engines.epub import lesson_blocks
    from pubkit.engines.fetcher import project_url

    prefix = anchor(job) + "-"
    header = str(job.template_macros("header.html.j2").header())
    base = project_url(job.config.root, job.lesson.path.parent) + "/"
    pdf = job.print_edition
    assert pdf is not None and pdf.body is not None  # the pdf edition, set first
    blocks = lesson_blocks(job, links=False)
    # In place, in the document's own blocks, which every edition has set already.
    # References stay relative: the collected EPUB's lessons share their module's folder.
    rename_ids_in_blocks(blocks, prefix.__add__)
    blocks, body = _collected_links(job, blocks, _prefix_html(pdf.body, prefix, base))
    assert job.figures.pages is not None
    return Fragment(
        anchor=anchor(job),
        number=job.lesson.number,
        title=job.lesson.title,
        language=job.language,
        words=job.figures.words,
        minutes=job.figures.minutes,
        header=_prefix_html(header, prefix, base),
        body=body,
        blocks=blocks,
        api_version=job.document.ast["pandoc-api-version"],
        text=job.document.text + header,
    )


def _collected_links(job: RenderJob, blocks: list[Any], body: str) -> tuple[list[Any], str]:
    """The lesson's links to other lessons as its module's collections hold them: to a
    lesson of the same module, its place in the same book; to another module's, in the
    PDF its place in that module's collected PDF beside it, and in the EPUB, which cannot
    lead into another book, its public PDF or its number and title
    (:func:`pubkit.document.links.epub_blocks`)."""
    from pubkit.document.links import PDF_FILE, Target, epub_blocks, lower_html

    targets, course = job.document.targets, job.document.links
    own = job.lesson.module.folder.name

    def place(target: Target, section: str) -> str:
        return f"lesson-{target.number}-{section}" if section else f"lesson-{target.number}"

    def in_book(target: Target, section: str) -> str | None:
        if target.module != own:
            return None
        return "#" + (place(target, section) if section else f"{place(target, '')}-{TITLE_ID}")

    def in_pdf(lesson: str, section: str) -> str:
        target = targets[lesson]
        if target.module == own:
            return f"#{place(target, section)}"
        file, destination = f"{target.module}.pdf", f"#{place(target, section)}"
        public = course.published(f"collections/{file}")
        return f"{public}{destination}" if public else f"{PDF_FILE}{file}{destination}"

    words = job.theme.words(job.language)
    blocks = epub_blocks(blocks, targets, course, own, words, inside=in_book)
    return blocks, lower_html(body, in_pdf)


def _prefix_html(html: str, prefix: str, base: str) -> str:
    """Give every identifier in ``html``'s tags (and every link to one) ``prefix``; make
    every other reference absolute against ``base``, since the collected PDF has one base
    for all its lessons."""

    def reference(match: re.Match[str]) -> str:
        value = match[2]
        return match[0] if _SCHEME.match(value) else f'{match[1]}="{urljoin(base, value)}"'

    html = rename_ids(html, prefix.__add__)
    return START_TAG.sub(lambda tag: _REFERENCE.sub(reference, tag[0]), html)


def _context(
    module: Module, fragments: Sequence[Fragment], config: Config, edition: str, date: str | None
) -> dict[str, Any]:
    lessons = [
        {**f.as_dict(), "header": Markup(f.header), "body": Markup(f.body)} for f in fragments
    ]
    return {
        "module": module,
        "course": config,
        "lessons": lessons,
        "words": sum(f.words for f in fragments),
        "minutes": sum(f.minutes for f in fragments),
        "language": config.language,
        "authors": config.credits,
        "edition": edition,
        "for_instructors": False,
        "version": __version__,
        "date": date,
    }


def render(
    module: Module,
    fragments: Sequence[Fragment],
    config: Config,
    theme: Theme,
    date: str | None,
    names: Sequence[str] = COLLECTED,
) -> dict[str, Rendered]:
    """The module's collected editions among ``names``. The PDF is laid out while pandoc
    writes the EPUB, whose page list then follows the PDF's pages."""
    from pubkit.engines.epub import writing

    rendered: dict[str, Rendered] = {}
    if "epub" not in names:
        rendered[PAGES.name], _ = _render_pdf(module, fragments, config, theme, date)
        return rendered
    book = _book(module, fragments, config, theme, date)
    with writing(book, theme, config, EDITIONS["epub"], date) as finish:
        pages = None
        if PAGES.name in names:
            rendered[PAGES.name], pages = _render_pdf(module, fragments, config, theme, date)
        rendered["epub"] = finish(_cover(module, fragments, config, theme, date), pages)
    return rendered


def _render_pdf(
    module: Module, fragments: Sequence[Fragment], config: Config, theme: Theme, date: str | None
) -> tuple[Rendered, PrintPages]:
    """The collected PDF, in one layout (the contents' page numbers are the lessons'
    pages), and each lesson's pages in it, by the id of its title in the EPUB."""
    from pubkit.engines.glyphs import faces_for, languages_in
    from pubkit.engines.layout import page_starts
    from pubkit.engines.weasy import Resources, lay_out, stylesheet, weasyprint_warnings, write_pdf

    edition = PAGES
    env = environment(theme, config.language)
    html = env.get_template("module.html.j2").render(
        _context(module, fragments, config, PAGES.name, date)
    )
    faces = faces_for(theme, html, config.language, languages_in(html))
    css = stylesheet(
        theme, MODULE_STYLESHEETS, PAGES.name, config.paper, "", faces, config.language
    )
    with weasyprint_warnings():  # each lesson's own build has reported them already
        document = lay_out(html, css, Resources.of_project(config, theme, module.folder))
        data = write_pdf(document, edition.pdf_variant)
    starts = page_starts(document)
    # Where each lesson opens (its article's id, on each of its pages), and so which
    # pages are its own.
    opens: dict[str, int] = {}
    for index, page in enumerate(document.pages):
        for name in page.anchors:
            opens.setdefault(name, index)
    firsts = [opens[f.anchor] for f in fragments]
    chapters = {
        f"{f.anchor}-{TITLE_ID}": (first + 1, starts[first:following])
        for f, first, following in zip(fragments, firsts, [*firsts[1:], len(starts)], strict=True)
    }
    edition_name = f"{_title(module, config, theme)}, PDF edition ({config.paper})"
    return Rendered(data=data, pages=len(document.pages)), PrintPages(edition_name, chapters)


def _book(
    module: Module, fragments: Sequence[Fragment], config: Config, theme: Theme, date: str | None
) -> Book:
    """The collected EPUB's book: a chapter per lesson, headed as in the lesson's own EPUB."""
    from pubkit.engines.epub import Book, book_metadata

    words = theme.words(config.language)
    title = _title(module, config, theme)
    meta = book_metadata(
        config,
        module.folder.name,
        title,
        config.language,
        config.credits,
        config.title,
        module.number,
        words["contents"],
        date=date,
    )
    return Book(
        blocks=[block for f in fragments for block in f.blocks],
        api_version=fragments[0].api_version,
        meta=meta,
        text="".join(f.text for f in fragments) + title + config.title,
        cover_alt=f"{title}. {config.title}",
        title=title,
        language=config.language,
        source=module.source,
    )


def _cover(
    module: Module, fragments: Sequence[Fragment], config: Config, theme: Theme, date: str | None
) -> bytes:
    """The collected EPUB's cover: the module's title page, as a PNG."""
    from pubkit.engines.cover import cover_png

    context = _context(module, fragments, config, "cover", date)
    html = environment(theme, config.language).get_template("module-cover.html.j2").render(context)
    return cover_png(html, theme, config.paper, config.language)


def _title(module: Module, config: Config, theme: Theme) -> str:
    """ "Module 9: The Human Craft", in the course's language."""
    return f"{theme.words(config.language)['module']} {module.number}: {module.title}"


def output_path(module: Module, edition: str) -> Path:
    """Where a module's collected edition goes, relative to the output folder."""
    return Path("collections") / (module.folder.name + EDITIONS[edition].suffix)
