"""Turn a finished EPUB's content into the accessibility claims it can honestly make.

Every claim is read off the content, never assumed: ``alternativeText`` only when every
image has a text alternative, ``printPageNumbers`` only when the page list is there, a
WCAG conformance claim only when nothing found here rules it out.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from xml.etree import ElementTree as ET

from PIL import Image, UnidentifiedImageError

from pubkit.engines.namespaces import MATHML, SVG, tag

#: The conformance claim of EPUB Accessibility 1.1 (dcterms:conformsTo).
CONFORMANCE = "EPUB Accessibility 1.1 - WCAG 2.2 Level AA"
_HEADINGS = {tag(f"h{level}"): level for level in range(1, 7)}
_DECORATIVE = frozenset({"presentation", "none"})


@dataclass(frozen=True)
class Accessibility:
    """The package's accessibility metadata (schema.org and EPUB Accessibility 1.1)."""

    modes: tuple[str, ...]
    sufficient: tuple[str, ...]
    features: tuple[str, ...]
    hazards: tuple[str, ...]
    summary: str
    #: Why WCAG conformance is not claimed; empty when it is.
    problems: tuple[str, ...]

    @property
    def conforms(self) -> bool:
        return not self.problems


def _missing_alternatives(documents: Iterable[ET.Element]) -> tuple[int, list[str]]:
    """How many images there are, and the sources of those without a text alternative."""
    count, missing = 0, []
    for root in documents:
        for image in root.iter(tag("img")):
            count += 1
            described = (image.get("alt") or "").strip() or image.get("aria-label")
            if not described and image.get("role") not in _DECORATIVE:
                missing.append(image.get("src", "?"))
        count += sum(1 for _ in root.iter(tag("svg", SVG)))
    return count, missing


def _heading_skips(documents: Iterable[ET.Element]) -> list[str]:
    skips = []
    for root in documents:
        previous = 0
        for element in root.iter():
            level = _HEADINGS.get(element.tag)
            if level is None:
                continue
            if level > previous + 1:
                text = " ".join("".join(element.itertext()).split())
                skips.append(f"heading “{text}” is level {level} after level {previous}")
            previous = level
    return skips


def _headerless_tables(documents: Iterable[ET.Element]) -> int:
    return sum(
        1
        for root in documents
        for table in root.iter(tag("table"))
        if next(table.iter(tag("th")), None) is None
    )


def _animated(media: Mapping[str, bytes]) -> list[str]:
    found = []
    for name, data in media.items():
        try:
            with Image.open(io.BytesIO(data)) as image:
                if getattr(image, "is_animated", False):
                    found.append(name)
        except (UnidentifiedImageError, OSError):
            continue
    return found


def _any(documents: list[ET.Element], test: Callable[[ET.Element], bool]) -> bool:
    return any(test(element) for root in documents for element in root.iter())


def _is_media(element: ET.Element) -> bool:
    return element.tag in (tag("audio"), tag("video"))


def _is_mathml(element: ET.Element) -> bool:
    return element.tag == tag("math", MATHML)


def _has_aria(element: ET.Element) -> bool:
    return any(key == "role" or key.startswith("aria-") for key in element.attrib)


def assess(
    documents: Iterable[ET.Element],
    page_list: int,
    media: Mapping[str, bytes],
) -> Accessibility:
    """Claims for content ``documents`` (cover excluded), a page list of ``page_list``
    pages (0: none) and the publication's images and other ``media``."""
    documents = list(documents)
    images, missing = _missing_alternatives(documents)
    animated = _animated(media)
    av = _any(documents, _is_media)
    problems = [_count(len(missing), "image") + " without a text alternative"] if missing else []
    problems += _heading_skips(documents)
    if headerless := _headerless_tables(documents):
        problems.append(_count(headerless, "table") + " without header cells")
    if not all(root.get("lang") for root in documents):
        problems.append("a document does not declare its language")
    if av:
        problems.append("audio or video, whose captions pubkit cannot check")
    if animated:
        problems.append(_count(len(animated), "animated image") + ", not checked for flashing")

    modes = ["textual"] + (["visual"] if images else []) + (["auditory"] if av else [])
    sufficient = ["textual"] if not missing and not av else []
    if len(modes) > 1:
        sufficient.append(",".join(modes))
    features = ["tableOfContents", "readingOrder", "displayTransformability"]
    if _any(documents, lambda element: element.tag in _HEADINGS):
        features.insert(0, "structuralNavigation")
    if images and not missing:
        features.append("alternativeText")
    if page_list:
        features += ["printPageNumbers", "pageBreakMarkers", "pageNavigation"]
    if _any(documents, _is_mathml):
        features.append("MathML")
        formulas = [e for root in documents for e in root.iter() if _is_mathml(e)]
        if all("described" in (e.get("class") or "").split() for e in formulas):
            features.append("describedMath")  # every formula described by its author
    if _any(documents, _has_aria):
        features.append("ARIA")
    hazards = ["unknown"] if av or animated else ["none"]
    summary = _summary(images, missing, page_list, hazards, problems)
    return Accessibility(
        tuple(modes), tuple(sufficient), tuple(features), tuple(hazards), summary, tuple(problems)
    )


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}{'' if number == 1 else 's'}"


def _summary(
    images: int, missing: list[str], page_list: int, hazards: list[str], problems: list[str]
) -> str:
    parts = []
    if not images:
        parts.append("This publication is text only, so it reads fully by ear or in braille.")
    elif not missing:
        parts.append(
            "Its image has a text alternative."
            if images == 1
            else f"Each of its {images} images has a text alternative."
        )
    else:
        parts.append(
            "Its image has no text alternative."
            if images == 1
            else f"{len(missing)} of its {images} images have no text alternative."
        )
    parts.append(
        "Headings structure the text and a table of contents lists them, in reading order."
    )
    if page_list:
        pages = _count(page_list, "page")
        parts.append(f"Page-break markers and a page list follow {pages} of the PDF edition.")
    if hazards == ["none"]:
        parts.append("It has no flashing, motion or sound hazards.")
    if problems:
        parts.append("It makes no WCAG conformance claim: " + "; ".join(problems) + ".")
    else:
        parts.append(f"It meets {CONFORMANCE}.")
    return " ".join(parts)
