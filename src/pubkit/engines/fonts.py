"""Turn the theme's fonts into subsets that hold only the glyphs a text needs, for the
EPUBs and the downloads page (the PDFs' fonts are subset by WeasyPrint)."""

from __future__ import annotations

import html
import re
import unicodedata

import uharfbuzz as hb

from pubkit.sources.theme import FontFace

#: Characters every font subset keeps, so digits and common punctuation never go missing.
_ALWAYS = (
    "".join(map(chr, range(0x20, 0x7F))) + "\u00a0\u00b7\u2013\u2014\u2018\u2019\u201c\u201d\u2026"
)


def subset_font(face: FontFace, text: str) -> bytes:
    """Keep the glyphs ``text`` needs, with HarfBuzz's subsetter (the one browsers use for
    web fonts; a hundred times faster than fontTools'). Its default OpenType features cover
    kerning, ligatures and the shaping of every script; every name record is kept (the
    licence among them); hinting is dropped, as e-readers set type at print resolutions
    with their own rasterisers (it halves the fonts' size)."""
    source = hb.Face(hb.Blob.from_file_path(str(face.path)))
    wanted = hb.SubsetInput()
    wanted.unicode_set.update(ord(char) for char in set(text + _ALWAYS))
    wanted.sets(hb.SubsetInputSets.NAME_ID).invert()
    wanted.sets(hb.SubsetInputSets.NAME_LANG_ID).invert()
    wanted.flags = hb.SubsetFlags.NO_HINTING | hb.SubsetFlags.NOTDEF_OUTLINE
    subset = hb.subset(source, wanted)
    if subset is None:
        raise ValueError(f"HarfBuzz could not subset {face.path.name}")
    data: bytes = subset.blob.data
    return data


_MARKUP = re.compile(r"<[^>]*>")


def formula_text(mathml: str) -> str:
    """The characters MathML formulas show, as a reader draws them: their text and each
    letter's mathematical italic form too (a one-letter ``<mi>x</mi>`` is set as 𝑥, U+1D465),
    what the formulas' font subset keeps."""
    text = html.unescape(_MARKUP.sub(" ", mathml))
    italic = [_math_italic(char) for char in set(text) if char.isalpha()]
    return text + "".join(char for char in italic if char)


def _math_italic(letter: str) -> str | None:
    """``letter``'s MATHEMATICAL ITALIC form (Latin and Greek), or None."""
    if letter == "h":
        return "\u210e"  # PLANCK CONSTANT: the italic h's place in Unicode
    name = unicodedata.name(letter, "")
    for script in ("LATIN ", "GREEK "):
        if name.startswith(script):
            name = name[len(script) :].replace("LETTER ", "")
            try:
                return unicodedata.lookup(f"MATHEMATICAL ITALIC {name}")
            except KeyError:
                return None
    return None
