"""Turn a module's lessons into its collected editions: one PDF (title page, contents with
page numbers, every lesson with its header and takeaways box) and one EPUB (a chapter per
lesson, the title page as its cover).

A lesson enters its module's collection as a :class:`Fragment`, made when the lesson is
set and kept in the build cache: a module is collected again, after one lesson changed,
without setting its other lessons again.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from pubkit import __version__
from pubkit.course.workers import beside
from pubkit.document.pandoc import json_bytes, json_value
from pubkit.editions import EDITIONS, MODULE_STYLESHEETS, PAGES
from pubkit.sources.config import Config
from pubkit.sources.manuscript import Module
from pubkit.sources.theme import Theme

if TYPE_CHECKING:
    from pubkit.document.render import Rendered, RenderJob
    from pubkit.engines.epub import Book, Chapter
    from pubkit.engines.pagelist import PrintPages
    from pubkit.errors import Diagnostic

# The document's and the engines' modules are imported where they are used: a build that
# finds every collection up to date (a no-op) needs none of them.


#: The collected editions, by the lesson edition each one collects.
COLLECTED = (PAGES.name, "epub")


@dataclass(frozen=True)
class Fragment:
    """One lesson as its module's collections set it; identifiers carry the lesson's
    anchor as a prefix, so that lessons never share one."""

    anchor: str
    number: int
    title: str
    language: str
    words: int
    minutes: int
    #: The lesson's chapter for the collected EPUB (pandoc blocks).
    blocks: list[Any]
    api_version: list[int]
    #: Every character the lesson sets, for the EPUB's font subsets.
    text: str
    #: The text that begins each of its pages, for the collected EPUB's page list.
    page_starts: list[str]
    #: The languages its spans and blocks are in, and its MathML formulas: what the
    #: collected EPUB's fonts are chosen and cut for (a walk of the module's blocks,
    #: 0.1 s, before pandoc could start).
    languages: list[str]
    mathml: str
    #: A digest of what its chapter of the collected EPUB is made of: its blocks and the
    #: files they show (a changed picture under the same name changes it).
    chapter_key: str
    #: Its pages as the collected PDF sets them (a PDF, kept beside the rest, not in its
    #: JSON): laid out for the lesson's own PDF, written again by its worker
    #: (:func:`pubkit.engines.bookpages.book_pages`).
    pdf: bytes = field(repr=False, default=b"")

    @property
    def pages(self) -> int:
        return len(self.page_starts)

    def as_dict(self) -> dict[str, Any]:
        """The fields by name, but the PDF; not :func:`dataclasses.asdict`, which
        deep-copies the blocks (a tenth of a second a lesson)."""
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name != "pdf"}

    def to_json(self) -> bytes:
        return json_bytes(self.as_dict())

    @classmethod
    def from_json(cls, data: bytes, pdf: bytes) -> Fragment:
        return cls(**json_value(data), pdf=pdf)


def fragment(job: RenderJob) -> Fragment:
    """The lesson, with its final reading figures, as its module's collections set it:
    ``job`` carries the lesson's pdf edition, whose book pages the collected PDF takes."""
    from pubkit.document.ast import renamed_ids
    from pubkit.document.links import book_anchor
    from pubkit.engines.epub import languages_of, lesson_blocks, mathml_of

    anchor = book_anchor(job.lesson.number)
    header = str(job.template_macros("header.html.j2").header())
    pdf = job.print_edition
    assert pdf is not None and pdf.book is not None  # the pdf edition, set first
    # A copy: the lesson's document is kept by its worker, which may set another edition
    # of it next (it did: a handout with the book's ids). References stay relative: the
    # collected EPUB's lessons share their module's folder.
    blocks = renamed_ids(lesson_blocks(job, links=False), f"{anchor}-".__add__)
    assert job.figures.pages is not None
    blocks = _collected_links(job, blocks)
    made_of: list[str | bytes] = [json_bytes(blocks, sort_keys=True)]
    made_of += [path.read_bytes() for path in job.document.files]
    return Fragment(
        anchor=anchor,
        number=job.lesson.number,
        title=job.lesson.title,
        language=job.language,
        words=job.figures.words,
        minutes=job.figures.minutes,
        blocks=blocks,
        api_version=job.document.ast["pandoc-api-version"],
        text=job.document.text + header,
        page_starts=list(pdf.page_starts),
        languages=sorted(languages_of(blocks)),
        mathml=mathml_of(blocks),
        chapter_key=_digest(made_of),
        pdf=pdf.book,
    )


def _collected_links(job: RenderJob, blocks: list[Any]) -> list[Any]:
    """The lesson's links to other lessons as its module's collected EPUB holds them: to
    a lesson of the same module, its place in the same book; to another module's, which
    an EPUB cannot lead into, its public PDF or its number and title
    (:func:`pubkit.document.links.epub_blocks`). The collected PDF's are set in the
    lesson's book pages (:func:`pubkit.document.links.book_href`)."""
    from pubkit.document.links import TITLE_ID, Target, book_anchor, epub_blocks

    own = job.lesson.module.folder.name

    def in_book(target: Target, section: str) -> str | None:
        if target.module != own:
            return None
        place = book_anchor(target.number)
        return f"#{place}-{section}" if section else f"#{place}-{TITLE_ID}"

    words = job.theme.words(job.language)
    return epub_blocks(blocks, job.document.targets, job.document.links, own, words, in_book)


def _context(
    module: Module, fragments: Sequence[Fragment], config: Config, edition: str, date: str | None
) -> dict[str, Any]:
    from pubkit.document.links import BOOK_LINK

    lessons = [{**f.as_dict(), "pages": f.pages, "opens": None} for f in fragments]
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
        # module.html.j2's part: "front" or "numbers" (see _render_pdf)
        "part": "front",
        "front_pages": 0,
        "book_link": BOOK_LINK,
    }


@dataclass(frozen=True)
class Part:
    """A part of a module's collections laid out by WeasyPrint, and a digest of what it
    was laid out from: the next build takes it again while that is the same (an edit
    that moves no page lays out nothing of the book). The parts, by :data:`PARTS` name:
    the book's front (title page and contents), its numbered pages (a PDF of
    :func:`pubkit.engines.bookpages.number_pages`) and the EPUB's cover."""

    key: str
    data: bytes = field(repr=False)


#: What a module's collection is set from: the module, its key, its lessons' fragments,
#: and the parts of its last collections.
Collecting = tuple[Module, str, list[Fragment], dict[str, Part]]


#: The parts a collection keeps (:class:`Part`), each named as its file is; the last, the
#: collected EPUB's chapters (:func:`pubkit.engines.epub.chapters_archive`).
PARTS = ("front.pdf", "numbers.pdf", "cover.png", "chapters.zip")
CHAPTERS = PARTS[-1]


@dataclass(frozen=True)
class Collected:
    """A module's collected editions, by name, and the parts the next build may take;
    its PDF perhaps still :class:`Unbound` (to be bound where its EPUB is checked, while
    EPUBCheck reads that)."""

    rendered: dict[str, Rendered]
    parts: dict[str, Part] = field(default_factory=dict)
    unbound: Unbound | None = None
    #: What EPUBCheck found in its EPUB where it was set (a cluster's worker); None: the
    #: build checks it.
    checked: tuple[Diagnostic, ...] | None = None

    def bound(self, fragments: Sequence[Fragment]) -> dict[str, Rendered]:
        """Every edition, the PDF bound from its pieces and the lessons' ``fragments``."""
        if self.unbound is None:
            return self.rendered
        return {PAGES.name: self.unbound.bind(fragments), **self.rendered}


@dataclass(frozen=True)
class Unbound:
    """A collected PDF's own pieces, its lessons' pages not yet joined to them: what
    :func:`pubkit.engines.bookpages.assemble` makes the book of."""

    front: bytes = field(repr=False)
    numbers: bytes = field(repr=False)
    pages: int

    def bind(self, fragments: Sequence[Fragment]) -> Rendered:
        from pubkit.document.render import Rendered
        from pubkit.engines.bookpages import assemble

        data = assemble(self.front, self.numbers, [f.pdf for f in fragments])
        return Rendered(data=data, pages=self.pages)


def render(
    module: Module,
    fragments: Sequence[Fragment],
    config: Config,
    theme: Theme,
    date: str | None,
    names: Sequence[str] = COLLECTED,
    kept: Mapping[str, Part] | None = None,
    bind: bool = True,
    spare_core: bool = False,
) -> Collected:
    """The module's collected editions among ``names``, the parts in ``kept`` (the last
    build's) taken again where they fit; without ``bind``, the PDF's pieces, unbound.
    The PDF is laid out while pandoc writes the EPUB, whose page list then follows the
    PDF's pages; with a ``spare_core``, the EPUB's cover meanwhile too."""
    from pubkit.engines.epub import writing

    setting = _Setting(module, fragments, config, theme, date)
    parts = _Parts(kept or {})
    rendered: dict[str, Rendered] = {}
    unbound = pages = None
    if "epub" not in names:
        unbound, pages = _render_pdf(setting, parts)
    else:
        book = _book(setting, parts.chapters())
        with writing(book, theme, config, EDITIONS["epub"], date) as finish:
            cover = _cover(setting, parts, spare_core)
            if PAGES.name in names:
                unbound, pages = _render_pdf(setting, parts)
            epub = finish(cover(), pages)
        if epub.chapters:
            parts.keep_chapters(epub.chapters)
        rendered["epub"] = replace(epub, chapters={})
    collected = Collected(rendered, parts.made, unbound)
    return Collected(collected.bound(fragments), parts.made) if bind else collected


class _Setting(NamedTuple):
    """What each part of a module's collections is set from."""

    module: Module
    fragments: Sequence[Fragment]
    config: Config
    theme: Theme
    date: str | None


class _Parts:
    """The parts a collection takes from its last build's (``kept``) or makes anew."""

    def __init__(self, kept: Mapping[str, Part]) -> None:
        self.kept = kept
        self.made: dict[str, Part] = {}

    def get(self, name: str, *made_from: str) -> bytes | None:
        """The kept part ``name`` if it was made from ``made_from``; else None."""
        found = self.kept.get(name)
        if found is None or found.key != _digest(made_from):
            return None
        self.made[name] = found
        return found.data

    def keep(self, name: str, data: bytes, *made_from: str) -> bytes:
        self.made[name] = Part(_digest(made_from), data)
        return data

    def chapters(self) -> dict[str, Chapter]:
        """The collected EPUB's chapters the last build kept, by key."""
        from pubkit.engines.epub import kept_chapters

        found = self.kept.get(CHAPTERS)
        return kept_chapters(found.data) if found else {}

    def keep_chapters(self, chapters: Mapping[str, Chapter]) -> None:
        from pubkit.engines.epub import chapters_archive

        self.keep(CHAPTERS, chapters_archive(chapters), *chapters)


def _digest(parts: Sequence[str | bytes]) -> str:
    digest = hashlib.sha256()
    for part in parts:
        digest.update(part.encode("utf-8") if isinstance(part, str) else part)
        digest.update(b"\0")
    return digest.hexdigest()


def _render_pdf(setting: _Setting, parts: _Parts) -> tuple[Unbound, PrintPages]:
    """The collected PDF's pieces (:class:`Unbound`): its front (title page and contents)
    and its numbered pages, each taken from ``parts`` when laid out from the same HTML;
    and each lesson's pages in it, by the id of its title in the EPUB."""
    from pubkit.document.links import TITLE_ID
    from pubkit.document.templates import environment
    from pubkit.engines.bookpages import number_pages
    from pubkit.engines.glyphs import faces_for, languages_in
    from pubkit.engines.pagelist import PrintPages
    from pubkit.engines.weasy import Resources, lay_out, stylesheet, weasyprint_warnings, write_pdf

    module, fragments, config, theme, date = setting
    template = environment(theme, config.language).get_template("module.html.j2")
    context = _context(module, fragments, config, PAGES.name, date)
    resources = Resources.of_project(config, theme, module.folder)

    def laid_out(html: str, page_rule: str = "") -> Any:
        faces = faces_for(theme, html, config.language, languages_in(html))
        css = stylesheet(
            theme, MODULE_STYLESHEETS, PAGES.name, config.paper, page_rule, faces, config.language
        )
        return lay_out(html, css, resources)

    front_pages = 2  # the title page and one of contents, until laid out
    with weasyprint_warnings():  # each lesson's own build has reported them already
        for _ in range(3):
            opens = _opening_pages(fragments, front_pages)
            for lesson, first in zip(context["lessons"], opens, strict=True):
                lesson["opens"] = first
            html = template.render(context)
            # Kept only once laid out in as many pages as the contents' numbers counted.
            if (front := parts.get("front.pdf", str(front_pages), html)) is not None:
                break
            document = laid_out(html)
            if len(document.pages) == front_pages:
                front = write_pdf(document, PAGES.pdf_variant)
                parts.keep("front.pdf", front, str(front_pages), html)
                break
            front_pages = len(document.pages)
        else:
            front = write_pdf(document, PAGES.pdf_variant)
        numbered = template.render(context, part="numbers", front_pages=front_pages)
        if (numbers := parts.get("numbers.pdf", numbered)) is None:
            # Untagged: its drawing is the book's page furniture (an artifact).
            only = _numbers_only(theme, config.paper)
            drawn = write_pdf(number_pages(laid_out(numbered, only)), None)
            numbers = parts.keep("numbers.pdf", drawn, numbered)
    chapters = {
        f"{f.anchor}-{TITLE_ID}": (first, tuple(f.page_starts))
        for f, first in zip(fragments, opens, strict=True)
    }
    edition_name = f"{_title(module, config, theme)}, PDF edition ({config.paper})"
    pages = front_pages + sum(f.pages for f in fragments)
    return Unbound(front, numbers, pages), PrintPages(edition_name, chapters)


@cache
def _numbers_only(theme: Theme, paper: str) -> str:
    """The rules that lay the book's numbered pages out with only the margin boxes that
    may number them (:func:`pubkit.engines.bookpages.numbers_only`)."""
    from pubkit.engines.bookpages import numbers_only

    return numbers_only(theme.stylesheet(MODULE_STYLESHEETS, PAGES.name, paper, str, faces=()))


def _opening_pages(fragments: Sequence[Fragment], front_pages: int) -> list[int]:
    """The page each lesson opens on, after ``front_pages`` pages."""
    opens, page = [], front_pages + 1
    for f in fragments:
        opens.append(page)
        page += f.pages
    return opens


def _book(setting: _Setting, kept: Mapping[str, Chapter]) -> Book:
    """The collected EPUB's book: a chapter per lesson, headed as in the lesson's own EPUB;
    those the last build made of the same lesson in the same book (``kept``) taken again."""
    from pubkit.engines.epub import Book, book_metadata

    module, fragments, config, theme, date = setting
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
    book = json.dumps(meta, sort_keys=True)  # the chapters' language, direction, title
    return Book(
        blocks=[block for f in fragments for block in f.blocks],
        api_version=fragments[0].api_version,
        meta=meta,
        text="".join(f.text for f in fragments) + title + config.title,
        cover_alt=f"{title}. {config.title}",
        title=title,
        language=config.language,
        source=module.source,
        languages=frozenset(language for f in fragments for language in f.languages),
        mathml="".join(f.mathml for f in fragments),
        chapter_keys=tuple(_digest([f.chapter_key, book]) for f in fragments),
        kept_chapters=kept,
    )


def _cover(setting: _Setting, parts: _Parts, spare_core: bool) -> Callable[[], bytes]:
    """The collected EPUB's cover: the module's title page, as a PNG (what waits for it;
    with a ``spare_core``, it is laid out in a process beside this one meanwhile)."""
    from pubkit.document.templates import environment

    module, fragments, config, theme, date = setting
    context = _context(module, fragments, config, "cover", date)
    html = environment(theme, config.language).get_template("module-cover.html.j2").render(context)
    if (kept := parts.get("cover.png", html)) is not None:
        return lambda: kept
    from pubkit.engines.cover import cover_png

    def made() -> bytes:
        return cover_png(html, theme, config.paper, config.language)

    wait = beside(made) if spare_core else made
    return lambda: parts.keep("cover.png", wait(), html)


def _title(module: Module, config: Config, theme: Theme) -> str:
    """ "Module 9: The Human Craft", in the course's language."""
    return f"{theme.words(config.language)['module']} {module.number}: {module.title}"


def output_path(module: Module, edition: str) -> Path:
    """Where a module's collected edition goes, relative to the output folder."""
    return Path("collections") / (module.folder.name + EDITIONS[edition].suffix)
