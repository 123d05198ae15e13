"""Turn a lesson into its paginated PDF editions (pdf, handout) with WeasyPrint."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache

from weasyprint import CSS, HTML
from weasyprint.text.fonts import FontConfiguration

from .errors import Diagnostic, LessonError, warning
from .fetcher import ProjectFetcher
from .render import Rendered, RenderJob
from .theme import Theme

#: Enough passes for "N pages" to settle; a count that changes more often is a layout loop.
MAX_PASSES = 4
#: Engine notices about the machine, not about the lesson; never shown to authors.
_ENGINE_NOTICES = ("HarfBuzz-Subset",)
#: First guess of words per page, so that most lessons paginate in one pass.
WORDS_PER_PAGE = 520


@cache
def _font_config() -> FontConfiguration:
    return FontConfiguration()


@cache
def _stylesheet(theme: Theme, names: tuple[str, ...], edition: str, paper: str) -> CSS:
    css = theme.stylesheet(names, edition, paper, font_url=lambda face: face.path.as_uri())
    fetcher = ProjectFetcher(list(theme.folders))
    return CSS(
        string=css,
        base_url=theme.folders[0].as_uri() + "/",
        url_fetcher=fetcher,
        font_config=_font_config(),
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
def _weasyprint_warnings() -> Iterator[list[str]]:
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


def render_paged(job: RenderJob) -> Rendered:
    """Render until the "N pages" printed in the header equals the pages produced."""
    lesson = job.lesson
    fetcher = ProjectFetcher([job.config.root, *job.theme.folders])
    stylesheet = _stylesheet(job.theme, job.edition.stylesheets, job.edition.name, job.config.paper)
    pages = job.figures.pages or max(1, round(job.figures.words / WORDS_PER_PAGE))
    tried: list[int] = []
    with _weasyprint_warnings() as messages:
        for _ in range(MAX_PASSES):
            html = job.render_template("lesson.html.j2", job.figures.with_pages(pages))
            document = HTML(
                string=html, base_url=lesson.path.parent.as_uri() + "/", url_fetcher=fetcher
            ).render(stylesheets=[stylesheet], font_config=_font_config())
            tried.append(pages)
            if len(document.pages) == pages:
                break
            pages = len(document.pages)
        else:
            raise LessonError.at(lesson.path, None, f"page count does not settle (tried {tried})")
        data = document.write_pdf()
    if fetcher.refused:
        raise LessonError.at(lesson.path, None, "refused resource " + "; ".join(fetcher.refused))
    diagnostics: tuple[Diagnostic, ...] = tuple(
        warning(lesson.path, None, f"{job.edition.name}: {m}") for m in dict.fromkeys(messages)
    )
    return Rendered(data=data, pages=pages, diagnostics=diagnostics)
