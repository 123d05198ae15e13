"""Turn an edition name into the renderer that produces it: the registry of editions.

The ``--format`` choices, the ``editions`` setting and the manifest all come from
:data:`EDITIONS`. Renderers are imported on first use so that ``pubkit check`` never
pays for WeasyPrint.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from .render import Rendered, RenderJob


class Renderer(Protocol):
    def __call__(self, job: RenderJob) -> Rendered: ...


@dataclass(frozen=True)
class Edition:
    name: str
    suffix: str
    description: str
    module: str
    function: str
    #: Theme stylesheets, in cascade order.
    stylesheets: tuple[str, ...]
    #: WeasyPrint's PDF variant for paged editions ("pdf/ua-1": tagged, for screen readers).
    pdf_variant: str | None = None
    #: Takes the print-shop settings (handout.bleed, handout.marks).
    print_shop: bool = False

    @property
    def paged(self) -> bool:
        """Laid out on pages (and so proofread by :mod:`pubkit.layout`)."""
        return self.suffix == ".pdf"

    @property
    def renderer(self) -> Renderer:
        module = importlib.import_module(self.module, __package__)
        renderer: Renderer = getattr(module, self.function)
        return renderer


#: The EPUB cover's stylesheets (:mod:`pubkit.cover`): the header, set as on page 1, or
#: a module's title page (:mod:`pubkit.modulebook`).
COVER_STYLESHEETS = ("base.css", "module.css", "cover.css")
#: A module's collected PDF (:mod:`pubkit.modulebook`): the pdf edition, plus its title
#: page and contents.
MODULE_STYLESHEETS = ("base.css", "print.css", "pdf.css", "module.css")

EDITIONS: dict[str, Edition] = {
    edition.name: edition
    for edition in (
        Edition(
            "pdf",
            ".pdf",
            "paginated PDF for download",
            ".pdf",
            "render_paged",
            ("base.css", "print.css", "pdf.css"),
            pdf_variant="pdf/ua-1",
        ),
        Edition(
            "handout",
            ".pdf",
            "print-ready handout PDF",
            ".pdf",
            "render_paged",
            ("base.css", "print.css", "handout.css"),
            print_shop=True,
        ),
        Edition(
            "epub",
            ".epub",
            "EPUB 3 for e-readers",
            ".epub",
            "render_epub",
            ("base.css", "epub.css"),
        ),
    )
}
