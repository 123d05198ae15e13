"""Read what a reader of a PDF sees: text, metadata, fonts, outline and pixels."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pypdfium2 as pdfium
from pypdf import PdfReader


def page_texts(path: Path) -> list[str]:
    return [page.extract_text() or "" for page in PdfReader(path).pages]


def fonts(path: Path) -> dict[str, bool]:
    """Every font the PDF uses, and whether its program is embedded."""
    found: dict[str, bool] = {}
    for page in PdfReader(path).pages:
        resources: Any = page.get("/Resources")
        for font in (resources.get_object().get("/Font") or {}).values():
            font = font.get_object()
            descendants = font.get("/DescendantFonts")
            described = descendants[0].get_object() if descendants else font
            descriptor = described.get("/FontDescriptor").get_object()
            embedded = any(k in descriptor for k in ("/FontFile", "/FontFile2", "/FontFile3"))
            found[str(font["/BaseFont"]).split("+")[-1]] = embedded
    return found


def outline_titles(path: Path) -> list[str]:
    titles: list[str] = []

    def walk(items: list[Any]) -> None:
        for item in items:
            if isinstance(item, list):
                walk(item)
            else:
                titles.append(str(item.title))

    walk(PdfReader(path).outline)
    return titles


def render(path: Path, page: int, scale: float = 1.0) -> Any:
    """A page as a PIL image (pypdfium2, no system packages)."""
    document = pdfium.PdfDocument(path)
    image = document[page].render(scale=scale).to_pil().convert("RGB")
    document.close()
    return image


def count_colour(image: Any, colour: tuple[int, int, int], tolerance: int = 3) -> int:
    return sum(
        count
        for count, pixel in image.getcolors(maxcolors=1 << 24)
        if all(abs(a - b) <= tolerance for a, b in zip(pixel, colour, strict=True))
    )


def count_coloured(image: Any, spread: int = 30) -> int:
    """Pixels that are neither white, grey nor black."""
    return sum(
        count
        for count, pixel in image.getcolors(maxcolors=1 << 24)
        if max(pixel) - min(pixel) > spread
    )


def ink_box(image: Any, threshold: int = 160) -> tuple[int, int, int, int]:
    """Bounding box (left, top, right, bottom) of the dark pixels on a page."""
    grey = image.convert("L").point(lambda v: 255 if v < threshold else 0)
    box: tuple[int, int, int, int] = grey.getbbox()
    return box


def text_top(path: Path, page: int, text: str) -> float | None:
    """Height above the page's foot (pt) of the first character of ``text``, if on the page."""
    document = pdfium.PdfDocument(path)
    try:
        textpage = document[page].get_textpage()
        found = textpage.search(text).get_next()
        return float(textpage.get_charbox(found[0])[3]) if found else None
    finally:
        document.close()


def char_height(path: Path, page: int, text: str) -> float:
    """Height (pt) of the first character of ``text``: it grows with the font size."""
    document = pdfium.PdfDocument(path)
    try:
        textpage = document[page].get_textpage()
        found = textpage.search(text).get_next()
        assert found, f"{text!r} not on page {page + 1}"
        _, bottom, _, top = textpage.get_charbox(found[0])
        return float(top - bottom)
    finally:
        document.close()


def text_span(path: Path, page: int, text: str) -> tuple[float, float, float] | None:
    """Where ``text`` sits on the page, if there: (left, right) of its characters and the
    page's width, in points."""
    document = pdfium.PdfDocument(path)
    try:
        textpage = document[page].get_textpage()
        found = textpage.search(text).get_next()
        if not found:
            return None
        boxes = [textpage.get_charbox(i) for i in range(found[0], found[0] + found[1])]
        width = float(document[page].get_width())
        return min(b[0] for b in boxes), max(b[2] for b in boxes), width
    finally:
        document.close()


def alternate_texts(path: Path) -> list[str]:
    """Every /Alt of a tagged PDF's structure tree (figures' and formulas' descriptions)."""
    found, stack = [], [PdfReader(path).trailer["/Root"]["/StructTreeRoot"]]
    while stack:
        node = stack.pop()
        node = node.get_object() if hasattr(node, "get_object") else node
        if isinstance(node, dict):
            if "/Alt" in node:
                found.append(str(node["/Alt"]))
            kids = node.get("/K")
            stack.extend(reversed(kids) if isinstance(kids, list) else [kids])
    return found
