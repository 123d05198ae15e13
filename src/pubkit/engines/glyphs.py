"""Turn a lesson's text into the characters none of the theme's fonts can set, reported
once, at the line where the first of them appears.

pubkit sets type with the theme's fonts alone (:func:`pubkit.engines.weasy.font_config`),
so such a character would print as an empty box in every edition.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from functools import cache

import uharfbuzz as hb

from pubkit.errors import Diagnostic, warning
from pubkit.sources.manuscript import Lesson
from pubkit.sources.theme import FontFace, Theme

#: What needs no glyph of its own: controls, invisible format characters (joiners, the
#: soft hyphen, bidirectional marks), separators, and variation selectors.
_INVISIBLE = frozenset({"Cc", "Cf", "Zs", "Zl", "Zp"})
_SELECTORS = (range(0xFE00, 0xFE10), range(0xE0100, 0xE01F0))
#: How many characters a message names before it says "and N more".
_NAMED = 8


@cache
def _face_coverage(face: FontFace) -> frozenset[int]:
    return frozenset(hb.Face(hb.Blob.from_file_path(str(face.path))).unicodes)


@cache
def _family_coverage(theme: Theme, family: str) -> frozenset[int]:
    """Every code point some face of ``family`` has a glyph for (read on first need: the
    CJK fonts take a tenth of a second)."""
    faces = [face for face in theme.fonts if face.family == family]
    return frozenset().union(*(_face_coverage(face) for face in faces))


def coverage(theme: Theme) -> frozenset[int]:
    """Every code point some font of the theme has a glyph for in text."""
    families = dict.fromkeys(face.family for face in theme.fonts if not face.formulas)
    return frozenset().union(*(_family_coverage(theme, family) for family in families))


def primary_faces(theme: Theme) -> tuple[FontFace, ...]:
    """The faces of the theme's own families: what a text in their scripts needs."""
    return tuple(face for face in theme.fonts if not (face.fallback or face.formulas))


def faces_for(
    theme: Theme,
    text: str,
    language: str | None = None,
    others: Iterable[str] = (),
    formulas: bool = False,
) -> tuple[FontFace, ...]:
    """The faces a document that sets ``text`` loads (a PDF) or embeds (an EPUB, the
    downloads page): every face of the theme's own families, and of the fallback families
    only those that set one of its characters: for each stack, the first fallback in the
    stack's order (``language``'s first) that has a character the stack's own family lacks,
    as a reader or WeasyPrint would take it. So a lesson with a ∈ loads Noto Sans Math, not
    a 10 MB Chinese font that has one too. The ``others`` languages its elements are in
    (``lang``) choose too, in their own order: a Japanese quotation in a Chinese lesson
    loads the Japanese forms (:meth:`pubkit.sources.theme.Theme.regional_css`). The
    font of MathML ``formulas`` only with them."""
    wanted = {ord(char) for char in set(text) if _needs_glyph(char)}
    own = {face.family for face in primary_faces(theme)}
    installed = {face.family for face in theme.fonts}
    chosen: set[str] = set()
    for each in dict.fromkeys([language, *others]):
        for role, fallbacks in theme.fallbacks(each).items():
            family = theme.family(role)
            if family not in own:
                continue
            missing = wanted - _family_coverage(theme, family)
            for fallback in (f for f in fallbacks if f in installed):
                if not missing:
                    break
                if found := missing & _family_coverage(theme, fallback):
                    chosen.add(fallback)
                    missing -= found
    return tuple(
        face
        for face in theme.fonts
        if (face.formulas and formulas)
        or (not face.formulas and (not face.fallback or face.family in chosen))
    )


_LANG = re.compile(r'\blang="([^"]+)"')


def languages_in(html: str) -> set[str]:
    """The languages the elements of ``html`` say they are in (``lang="ja"``)."""
    return set(_LANG.findall(html))


def _needs_glyph(char: str) -> bool:
    code = ord(char)
    return unicodedata.category(char) not in _INVISIBLE and not any(
        code in selectors for selectors in _SELECTORS
    )


def missing(text: str, theme: Theme) -> list[str]:
    """The characters of ``text`` that no font of the theme has, in order of appearance."""
    own = dict.fromkeys(face.family for face in primary_faces(theme))
    covered = frozenset().union(*(_family_coverage(theme, family) for family in own))
    rest = [c for c in dict.fromkeys(text) if ord(c) not in covered and _needs_glyph(c)]
    if not rest:  # the common case: the fallbacks are not even read
        return []
    covered = coverage(theme)
    return [c for c in rest if ord(c) not in covered]


def missing_glyphs(lesson: Lesson, texts: Iterable[str], theme: Theme) -> list[Diagnostic]:
    """One warning for the lesson if any of ``texts`` (its body's text, its header) holds
    characters no theme font has: at the manuscript line where the first appears."""
    chars = missing("".join(texts), theme)
    if not chars:
        return []
    named = ", ".join(f"{c} (U+{ord(c):04X})" for c in chars[:_NAMED])
    more = f" and {len(chars) - _NAMED} more" if len(chars) > _NAMED else ""
    noun = "character has" if len(chars) == 1 else "characters have"
    message = f"{len(chars)} {noun} no glyph in the theme's fonts: {named}{more}"
    return [warning(lesson.path, _line_of(lesson, chars), message)]


def _line_of(lesson: Lesson, chars: list[str]) -> int | None:
    """The line where the first of ``chars`` appears in the body, else in the front matter."""
    places = [index for c in chars if (index := lesson.body.find(c)) >= 0]
    if places:
        return lesson.line_at(min(places))
    for name in ("title", "subtitle"):
        if any(c in (getattr(lesson, name) or "") for c in chars):
            return lesson.field_lines.get(name)
    return None
