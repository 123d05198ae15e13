"""The laid-out pages of a built PDF as the browser shows them: PNG images drawn by
PDFium (pypdfium2) from the very PDF the build wrote, and each page's text (so that the
page can be searched and read aloud, and tests can read it)."""

from __future__ import annotations

import io
import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

#: Pixels per PDF point: 2 × the CSS pixel (96 per inch), sharp on high-density screens.
SCALE = 2 * 96 / 72
#: Page images kept drawn (about 150 kB each).
KEPT_IMAGES = 240


@dataclass(frozen=True)
class Page:
    #: Size in CSS pixels.
    width: float
    height: float
    text: str


class Pages:
    """Pages of the PDFs under the build folder, by file and content hash (an image is
    drawn once per version of its PDF). PDFium is not thread-safe: one lock for all."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._images: OrderedDict[tuple[str, int], bytes] = OrderedDict()
        self._pages: OrderedDict[str, tuple[Page, ...]] = OrderedDict()

    def pages(self, path: Path, version: str) -> tuple[Page, ...]:
        with self._lock:
            if version not in self._pages:
                self._pages[version] = _read(path)
                while len(self._pages) > KEPT_IMAGES // 8:
                    self._pages.popitem(last=False)
            return self._pages[version]

    def image(self, path: Path, version: str, number: int) -> bytes | None:
        """Page ``number`` (from 1) as PNG; none when the PDF has no such page."""
        key = (version, number)
        with self._lock:
            if key not in self._images:
                png = _draw(path, number)
                if png is None:
                    return None
                self._images[key] = png
                while len(self._images) > KEPT_IMAGES:
                    self._images.popitem(last=False)
            self._images.move_to_end(key)
            return self._images[key]


def _read(path: Path) -> tuple[Page, ...]:
    import pypdfium2 as pdfium

    document = pdfium.PdfDocument(path)
    try:
        pages = []
        for page in document:
            width, height = page.get_size()
            text = page.get_textpage().get_text_range()
            pages.append(Page(width * 96 / 72, height * 96 / 72, text.replace("\r\n", "\n")))
        return tuple(pages)
    finally:
        document.close()


def _draw(path: Path, number: int) -> bytes | None:
    import pypdfium2 as pdfium

    document = pdfium.PdfDocument(path)
    try:
        if not 1 <= number <= len(document):
            return None
        image = document[number - 1].render(scale=SCALE).to_pil()
        data = io.BytesIO()
        image.save(data, format="PNG", compress_level=3)
        return data.getvalue()
    finally:
        document.close()
