"""Make the regional Noto Serif CJK fonts the theme sets Chinese, Japanese and Korean body
text in, from Debian's fonts-noto-cjk (pinned in the Makefile).

Debian ships Noto Serif CJK as one collection per weight (``NotoSerifCJK-Regular.ttc``:
the Japanese, Korean, Simplified Chinese, Traditional Chinese and Hong Kong faces over one
set of 65,000 glyphs, 26 MB). Each region's face is cut down, with HarfBuzz's subsetter,
to the characters of the same region's Noto Sans font (installed from npm beside it), so
that serif and sans cover the same text, with every OpenType feature and name record
kept (vertical forms, the ``locl`` regional forms, the licence). Usage::

    python serif_cjk.py COLLECTIONS_DIR FONTS_DIR
"""

from __future__ import annotations

import sys
from pathlib import Path

import uharfbuzz as hb

#: Each region: its face's name in the collection, and the stem of its Sans font (which
#: the Serif font takes as its own, Sans → Serif).
REGIONS = {
    "Noto Serif CJK SC": "NotoSansHans",
    "Noto Serif CJK TC": "NotoSansHant",
    "Noto Serif CJK JP": "NotoSansJP",
    "Noto Serif CJK KR": "NotoSansKR",
}
WEIGHTS = ("Regular", "Bold")


def _family(face: hb.Face) -> str:
    return str(face.get_name(hb.OTNameIdPredefined.FONT_FAMILY) or "")


def main(collections: Path, fonts: Path) -> None:
    for weight in WEIGHTS:
        blob = hb.Blob.from_file_path(str(collections / f"NotoSerifCJK-{weight}.ttc"))
        faces = {}
        index = 0
        while (face := hb.Face(blob, index)).glyph_count:  # past the last: an empty face
            faces[_family(face)] = face
            index += 1
        for family, sans in REGIONS.items():
            if family not in faces:
                sys.exit(f"serif_cjk: no {family} in NotoSerifCJK-{weight}.ttc")
            reference = hb.Face(hb.Blob.from_file_path(str(fonts / f"{sans}-{weight}.otf")))
            wanted = hb.SubsetInput()
            wanted.unicode_set.update(reference.unicodes)
            for kind in (
                hb.SubsetInputSets.NAME_ID,
                hb.SubsetInputSets.NAME_LANG_ID,
                hb.SubsetInputSets.LAYOUT_FEATURE_TAG,
            ):
                wanted.sets(kind).invert()  # keep them all
            subset = hb.subset(faces[family], wanted)
            if subset is None:
                sys.exit(f"serif_cjk: HarfBuzz could not subset {family} {weight}")
            target = fonts / f"{sans.replace('Sans', 'Serif')}-{weight}.otf"
            target.write_bytes(subset.blob.data)


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))
