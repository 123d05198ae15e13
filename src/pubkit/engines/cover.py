"""Turn a lesson's header into its EPUB cover: a PNG set like the PDF's first page."""

from __future__ import annotations

import io
from functools import cache
from typing import Any

import pypdfium2 as pdfium
from PIL import Image

from pubkit.document.render import RenderJob
from pubkit.editions import COVER_STYLESHEETS
from pubkit.engines.glyphs import faces_for, languages_in
from pubkit.engines.weasy import Resources, first_page_pdf, lay_out, stylesheet
from pubkit.sources.theme import Theme

#: Cover width in pixels: what e-reader stores ask for (at least 1400 on the short side).
WIDTH = 1400
#: A cover of type and flat colour has a few hundred colours (the edges of letters) and
#: is stored with a 256-colour palette, under half the size; one with more colours (a
#: publisher's photograph) keeps them all.
PALETTE_LIMIT = 4096
#: A cover of more than 256 colours is stored with an octree's palette of its colours,
#: each counted once for every this many of its pixels (and at least once).
_SAMPLED = 64


def render_cover(job: RenderJob) -> bytes:
    """The cover as PNG bytes: module, lesson number, title, dek and reading figures."""
    html = job.render_template("cover.html.j2")
    return cover_png(html, job.theme, job.config.paper, job.language)


def cover_png(html: str, theme: Theme, paper: str, language: str) -> bytes:
    """The first page of ``html``, set with the cover's stylesheets, as a PNG cover."""
    faces = faces_for(theme, html, language, languages_in(html))
    css = stylesheet(theme, COVER_STYLESHEETS, "cover", paper, "", faces, language)
    document = lay_out(html, css, Resources.of_theme(theme))
    return first_page_png(first_page_pdf(document), WIDTH)


@cache
def placeholder_png() -> bytes:
    """A blank 1-pixel PNG: what pandoc is given while the real cover is being made."""
    buffer = io.BytesIO()
    Image.new("L", (1, 1), 255).save(buffer, "PNG")
    return buffer.getvalue()


def first_page_png(pdf: bytes, width: int) -> bytes:
    """The PDF's first page as a PNG ``width`` pixels wide (covers, thumbnails)."""
    document = pdfium.PdfDocument(pdf)
    try:
        page = document[0]
        # In PIL's order (RGB), not PDFium's (BGR): no conversion of every pixel.
        image = page.render(scale=width / page.get_width(), rev_byteorder=True).to_pil()
    finally:
        document.close()
    if image.mode != "RGB":
        image = image.convert("RGB")
    if (colors := image.getcolors(maxcolors=PALETTE_LIMIT)) is not None:  # type, flat colour
        image = image.quantize(palette=_palette(image, colors), dither=Image.Dither.NONE)
    buffer = io.BytesIO()
    image.save(buffer, "PNG", compress_level=6)  # 10 % larger than level 9, 5 times faster
    return buffer.getvalue()


def _palette(image: Image.Image, colors: list[tuple[int, Any]]) -> Image.Image:
    """The 256 colours ``image`` (of ``colors``) is stored with: its own, when it has no
    more (each pixel keeps its colour); else those an octree finds in a sample of them,
    each colour as often as a sixty-fourth of its pixels and at least once, which each
    pixel of the image then takes the nearest of (a fifth of the time of an octree of
    every pixel, and as close)."""
    if len(colors) <= 256:
        own = Image.new("P", (1, 1))
        own.putpalette([channel for _count, color in colors for channel in color])
        return own
    weighted = [color for count, color in colors for _ in range(1 + count // _SAMPLED)]
    sample = Image.new("RGB", (len(weighted), 1))
    sample.putdata(weighted)
    return sample.quantize(colors=256, method=Image.Quantize.FASTOCTREE, dither=Image.Dither.NONE)
