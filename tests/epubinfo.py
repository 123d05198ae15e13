"""Read what an e-reader reads in an EPUB: package metadata, documents, page markers."""

from __future__ import annotations

import re
import zipfile
from pathlib import Path
from xml.etree import ElementTree as ET

OPF = "{http://www.idpf.org/2007/opf}"
DC = "{http://purl.org/dc/elements/1.1/}"
XHTML = "{http://www.w3.org/1999/xhtml}"
EPUB_TYPE = "{http://www.idpf.org/2007/ops}type"
NCX = "{http://www.daisy.org/z3986/2005/ncx/}"


def read(epub: Path, name: str) -> bytes:
    with zipfile.ZipFile(epub) as archive:
        return archive.read(name)


def package(epub: Path) -> ET.Element:
    """The package document, found through META-INF/container.xml as a reader finds it."""
    container = ET.fromstring(read(epub, "META-INF/container.xml"))
    rootfile = next(e for e in container.iter() if e.tag.endswith("rootfile"))
    return ET.fromstring(read(epub, rootfile.get("full-path", "")))


def meta(epub: Path, name: str) -> list[str]:
    """Values of ``<meta property=name>`` (or ``dc:name``) in the package."""
    root = package(epub)
    if name.startswith("dc:"):
        return [e.text or "" for e in root.iter(f"{DC}{name[3:]}")]
    return [e.text or "" for e in root.iter(f"{OPF}meta") if e.get("property") == name]


def documents(epub: Path) -> dict[str, ET.Element]:
    with zipfile.ZipFile(epub) as archive:
        return {
            name: ET.fromstring(archive.read(name))
            for name in archive.namelist()
            if name.endswith(".xhtml")
        }


def words(text: str) -> str:
    """Letters and digits only, lower case: what survives hyphenation and line breaks."""
    return re.sub(r"[\W_]+", "", text).lower()


def text_after_markers(chapter: ET.Element) -> dict[str, str]:
    """For each page-break marker (by its label), the chapter's text that follows it.

    Footnote references and the notes themselves are left out, as on a printed page
    their numbers and text sit elsewhere.
    """
    parts: list[str | tuple[str]] = []

    def visit(element: ET.Element) -> None:
        if element.get("role") == "doc-pagebreak":
            parts.append((element.get("aria-label", ""),))
        elif element.get("role") in ("doc-noteref", "doc-footnote") or element.get(EPUB_TYPE) in (
            "footnotes",
        ):
            pass
        else:
            parts.append(element.text or "")
            for child in element:
                visit(child)
        parts.append(element.tail or "")

    visit(chapter)
    after: dict[str, str] = {}
    for index, part in enumerate(parts):
        if isinstance(part, tuple):
            following = [p for p in parts[index + 1 :] if isinstance(p, str)]
            after[part[0]] = " ".join("".join(following).split())
    return after
