"""Turn an edition name into its description: the registry of editions.

The ``--format`` choices, the ``editions`` setting and the manifest all come from
:data:`EDITIONS`. An edition names its renderer as ``module:function``;
:func:`pubkit.engines.renderer` imports it on first use, so that ``pubkit check`` never
pays for WeasyPrint. This module imports nothing of pubkit's: every layer may use it.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Edition:
    name: str
    suffix: str
    description: str
    #: ``module:function`` of the engine that renders it (:func:`pubkit.engines.renderer`).
    renderer: str
    #: Theme stylesheets, in cascade order.
    stylesheets: tuple[str, ...]
    #: WeasyPrint's PDF variant for paged editions ("pdf/ua-1": tagged, for screen readers).
    pdf_variant: str | None = None
    #: Takes the print-shop settings (handout.bleed, handout.marks).
    print_shop: bool = False
    #: Sets the pages every edition counts: its page count is the "N pages" reading figure
    #: in every edition's header, its pages are the EPUB's page list, and a module's
    #: collected PDF is set as it is. So it is set for every lesson, first, even when it
    #: was not asked for. One edition has this role (:data:`PAGES`).
    sets_pages: bool = False
    #: Where it puts exercises' solutions and hints: ``beside`` them, at the ``end`` of
    #: the lesson, or ``omit`` (pubkit.yaml's ``solutions`` may say otherwise).
    solutions: str = "end"
    #: For the course's instructors: their notes shown; listed apart from the learners'
    #: editions. Every other edition leaves instructor notes out.
    instructor: bool = False

    @property
    def paged(self) -> bool:
        """Laid out on pages (and so proofread by :mod:`pubkit.engines.layout`)."""
        return self.suffix == ".pdf"


#: The EPUB cover's stylesheets (:mod:`pubkit.engines.cover`): the header, set as on page 1, or
#: a module's title page (:mod:`pubkit.course.modulebook`).
COVER_STYLESHEETS = ("base.css", "module.css", "cover.css")
#: A module's collected PDF (:mod:`pubkit.course.modulebook`): the pdf edition, plus its title
#: page and contents.
MODULE_STYLESHEETS = ("base.css", "print.css", "pdf.css", "module.css")

EDITIONS: dict[str, Edition] = {
    edition.name: edition
    for edition in (
        Edition(
            "pdf",
            ".pdf",
            "paginated PDF for download",
            "pubkit.engines.pdf:render_paged",
            ("base.css", "print.css", "pdf.css"),
            pdf_variant="pdf/ua-1",
            sets_pages=True,
        ),
        Edition(
            "handout",
            ".pdf",
            "print-ready handout PDF",
            "pubkit.engines.pdf:render_paged",
            ("base.css", "print.css", "handout.css"),
            print_shop=True,
            solutions="omit",  # a worksheet
        ),
        Edition(
            "epub",
            ".epub",
            "EPUB 3 for e-readers",
            "pubkit.engines.epub:render_epub",
            ("base.css", "epub.css"),
        ),
        Edition(
            "instructor",
            ".pdf",
            "instructor's PDF: solutions beside their exercises, instructor notes",
            "pubkit.engines.pdf:render_paged",
            ("base.css", "print.css", "pdf.css"),
            pdf_variant="pdf/ua-1",
            solutions="beside",
            instructor=True,
        ),
    )
}

#: The edition that sets the pages every edition counts (:attr:`Edition.sets_pages`).
(PAGES,) = (edition for edition in EDITIONS.values() if edition.sets_pages)
