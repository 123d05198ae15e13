"""Turn a validated lesson and its parsed document into the context every edition renders."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from markupsafe import Markup

from pubkit import __version__
from pubkit.document.markdown import Document
from pubkit.document.metrics import Figures
from pubkit.document.templates import environment
from pubkit.editions import Edition
from pubkit.errors import Diagnostic
from pubkit.sources.config import Config
from pubkit.sources.manuscript import Lesson
from pubkit.sources.theme import Theme


@dataclass(frozen=True)
class RenderJob:
    """Everything an edition's renderer needs for one lesson."""

    lesson: Lesson
    document: Document
    figures: Figures
    config: Config
    theme: Theme
    edition: Edition
    #: Fixed date for reproducible output (YYYY-MM-DD), if any.
    date: str | None = None
    #: The lesson's PDF edition, once rendered: the EPUB follows its pages.
    print_edition: Rendered | None = None

    @property
    def authors(self) -> tuple[str, ...]:
        return self.lesson.authors or self.config.credits

    @property
    def language(self) -> str:
        return self.lesson.language or self.config.language

    def context(
        self, figures: Figures | None = None, body: str | None = None, live_pages: bool = False
    ) -> dict[str, Any]:
        """The template context; ``live_pages`` leaves the page count's number to the
        layout engine (:data:`pubkit.document.templates.PAGE_COUNTER`)."""
        return {
            "lesson": self.lesson,
            "module": self.lesson.module,
            "figures": figures or self.figures,
            "language": self.language,
            "authors": self.authors,
            "course": self.config,
            "edition": self.edition.name,
            "for_instructors": self.edition.instructor,
            "version": __version__,
            "date": self.date or self.lesson.date,
            "body": Markup(self.document.html if body is None else body),
            "live_pages": live_pages,
        }

    def render_template(
        self,
        name: str,
        figures: Figures | None = None,
        body: str | None = None,
        live_pages: bool = False,
    ) -> str:
        env = environment(self.theme, self.language)
        return env.get_template(name).render(self.context(figures, body, live_pages))

    def template_macros(self, name: str) -> Any:
        """The macros of template ``name``, bound to this job's context."""
        env = environment(self.theme, self.language)
        return env.get_template(name).make_module(self.context())


@dataclass(frozen=True)
class Rendered:
    """One edition of one lesson, in memory until the build writes it."""

    data: bytes
    #: Page count, for paginated editions.
    pages: int | None = None
    diagnostics: tuple[Diagnostic, ...] = ()
    #: What the typographic self-check found on the pages (:mod:`pubkit.engines.layout`).
    findings: tuple[Diagnostic, ...] = ()
    #: The text that begins each page (:func:`pubkit.engines.layout.page_starts`), for
    #: paged editions.
    page_starts: tuple[str, ...] = ()
    #: For the pdf edition: its pages as its module's collected PDF sets them, a PDF
    #: (:func:`pubkit.engines.bookpages.book_pages`, from its own), which the collection assembles.
    book: bytes | None = None
    #: For a module's collected EPUB: its chapters, by key, for the next build to take
    #: again (:class:`pubkit.engines.epub.Chapter`).
    chapters: Mapping[str, Any] = field(default_factory=dict, repr=False)
