"""Visual regression: chosen pages of sample lessons against committed reference PNGs.

The fonts are bundled and the renderer (pypdfium2) is pinned, so on this machine kind a
page renders to the same pixels; the tolerance absorbs anti-aliasing noise only.
Regenerate the references deliberately, after looking at them: ``make references``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PIL import Image, ImageChops

from pdfinfo import render

REFERENCES = Path(__file__).resolve().parent / "visual"
#: (reference, project, lesson, edition, 0-based page). The seed lesson (project None, the
#: repository's course): the header page, a body page, the takeaways page, a handout
#: verso. The scripts sample (tests/projects/scripts): an Arabic lesson, right to left, in
#: both paged editions, a Hindi one, a Japanese one and an Urdu one. The blocks sample
#: (tests/projects/blocks): exercises with their solutions beside them (instructor
#: edition) and at the end of the lesson (pdf), and callouts on the handout. The
#: technical sample: math, numbered and wrapped code, in the PDF and the handout.
PAGES = (
    ("seed", None, "09-the-human-craft/50-career-growth-for-product-managers", "pdf", 0),
    ("seed", None, "09-the-human-craft/50-career-growth-for-product-managers", "pdf", 2),
    ("seed", None, "09-the-human-craft/50-career-growth-for-product-managers", "pdf", 6),
    ("seed", None, "09-the-human-craft/50-career-growth-for-product-managers", "handout", 1),
    ("arabic", "scripts", "01-languages/01-arabic", "pdf", 0),
    ("arabic", "scripts", "01-languages/01-arabic", "handout", 0),
    ("hindi", "scripts", "01-languages/02-hindi", "pdf", 0),
    ("japanese", "scripts", "01-languages/04-japanese", "pdf", 0),
    ("urdu", "scripts", "01-languages/05-urdu", "pdf", 0),
    ("tamil", "scripts", "01-languages/06-tamil", "pdf", 0),
    ("blocks", "blocks", "01-loops/01-for-loops", "instructor", 1),
    ("blocks", "blocks", "01-loops/01-for-loops", "pdf", 2),
    ("blocks", "blocks", "01-loops/01-for-loops", "handout", 0),
    ("technical", "technical", "01-numerics/01-summing", "pdf", 0),
    ("technical", "technical", "01-numerics/01-summing", "handout", 0),
)
SCALE = 0.75  # 54 dpi: enough to see every line, small enough to commit
#: A pixel differs when a channel moves by more than this (anti-aliasing stays below it).
PIXEL_TOLERANCE = 48
#: Differing pixels allowed per page: a few, for anti-aliasing noise; one changed word
#: alters some sixty at this scale, a moved line thousands.
PIXELS_ALLOWED = 12


def reference_path(name: str, edition: str, page: int) -> Path:
    return REFERENCES / f"{name}-{edition}-page{page + 1}.png"


def render_page(pdf: Path, page: int) -> Any:
    return render(pdf, page, scale=SCALE)


def difference(image: Any, reference: Any) -> int:
    """Pixels that differ beyond :data:`PIXEL_TOLERANCE` (all of them if sizes differ)."""
    if image.size != reference.size:
        return int(image.width * image.height)
    delta = ImageChops.difference(image.convert("RGB"), reference.convert("RGB")).convert("L")
    return int(delta.point(lambda v: 255 if v > PIXEL_TOLERANCE else 0).histogram()[255])


def save_references(outputs: dict[str | None, Path]) -> list[Path]:
    """Render every page of :data:`PAGES` from the build folders ``outputs`` (by project)."""
    written = []
    for name, project, lesson, edition, page in PAGES:
        path = reference_path(name, edition, page)
        render_page(outputs[project] / edition / f"{lesson}.pdf", page).save(path, optimize=True)
        written.append(path)
    return written


def load(path: Path) -> Any:
    with Image.open(path) as image:
        return image.convert("RGB")
