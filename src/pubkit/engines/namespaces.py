"""Turn the EPUB's XML vocabularies into names: namespaces, and tags in ElementTree form."""

from __future__ import annotations

from xml.etree import ElementTree as ET

XHTML = "http://www.w3.org/1999/xhtml"
EPUB = "http://www.idpf.org/2007/ops"
OPF = "http://www.idpf.org/2007/opf"
DC = "http://purl.org/dc/elements/1.1/"
MATHML = "http://www.w3.org/1998/Math/MathML"
SVG = "http://www.w3.org/2000/svg"
XLINK = "http://www.w3.org/1999/xlink"
NCX = "http://www.daisy.org/z3986/2005/ncx/"
XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"

_PREFIXES = (
    ("", XHTML),
    ("epub", EPUB),
    ("opf", OPF),
    ("dc", DC),
    ("m", MATHML),
)


def to_string(root: ET.Element, default: str = XHTML) -> str:
    """``root`` as XML, with ``default`` (XHTML unless said) as the default namespace and
    the usual prefixes for the others.

    ElementTree keeps prefixes in one process-wide table, which other libraries write to
    as they are imported (WeasyPrint gives the empty prefix to no namespace at all), so
    the prefixes are set again right before each document is written.
    """
    for prefix, uri in _PREFIXES:
        ET.register_namespace(prefix, uri)
    ET.register_namespace("", default)  # the empty prefix is one namespace's at a time
    return ET.tostring(root, encoding="unicode")


def tag(name: str, namespace: str = XHTML) -> str:
    """``name`` in ``namespace``, as ElementTree spells it: ``{uri}name``."""
    return f"{{{namespace}}}{name}"
