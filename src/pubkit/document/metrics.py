"""Turn a lesson's text into its reading figures: words, minutes and pages."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

# Scripts written without spaces between words: each character counts as a word,
# the usual convention for Chinese and Japanese reading-time estimates.
_UNSPACED = re.compile(
    "[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0002fa1f]"
)


#: Thai, written without spaces between words: its words are found with a dictionary.
_THAI = re.compile("[\u0e00-\u0e7f]+")
#: A whitespace-separated run with a letter or a digit in it (``[^\W_]``: what
#: ``str.isalnum`` takes).
_WORD = re.compile(r"\S*[^\W_]\S*")


def count_words(text: str) -> int:
    """Count words: whitespace-separated runs that hold a letter or digit, plus CJK
    characters, and Thai words as a dictionary finds them."""
    count = len(_UNSPACED.findall(text))
    rest = _UNSPACED.sub(" ", text) if count else text
    if _THAI.search(rest):
        count += sum(_thai_words(run) for run in _THAI.findall(rest))
        rest = _THAI.sub(" ", rest)
    return count + len(_WORD.findall(rest))


def _thai_words(run: str) -> int:
    """The words of a run of Thai, where Pango's word breaks (libthai's dictionary, which
    also decides where WeasyPrint breaks Thai lines) start them; imported only for Thai."""
    from weasyprint.text.line_break import get_log_attrs

    breaks = get_log_attrs(run, "th")
    return max(1, sum(1 for i in range(len(run)) if breaks[i].is_word_start))


#: English: 238 words a minute (Brysbaert 2019, "How many words do we read per minute? A
#: review and meta-analysis of reading rate", Journal of Memory and Language 109).
ENGLISH_RATE = 238
#: Mean reading rates of adult native readers in the International Reading Speed Texts
#: (Trauzettel-Klosinski & Dietz 2012, "Standardized assessment of reading performance:
#: the new International Reading Speed Texts IReST", IOVS 53(9), one text translated into
#: each language), for the languages that differ markedly from English (228 there): words
#: a minute, and characters a minute for Chinese and Japanese, which count each character.
_IREST = {"ar": 138, "he": 187, "fi": 161, "tr": 166, "pl": 166, "de": 179, "zh": 255, "ja": 357}


def reading_rate(language: str) -> int:
    """Words (or, in Chinese and Japanese, characters) read a minute in ``language``:
    English's rate, scaled by IReST's ratio for the languages it measured apart."""
    measured = _IREST.get(language.split("-")[0].lower())
    return ENGLISH_RATE if measured is None else round(ENGLISH_RATE * measured / 228)


def reading_minutes(words: int, words_per_minute: int, override: int | None = None) -> int:
    """Minutes to read ``words``, rounded up, at least one; ``override`` wins when given."""
    if override is not None:
        return override
    return max(1, math.ceil(words / words_per_minute))


@dataclass(frozen=True)
class Figures:
    """What the module header prints: ``9 pages · 3,512 words · 15 min read``."""

    words: int
    minutes: int
    #: Pages of the lesson's PDF edition; known only once it has been rendered.
    pages: int | None = None

    def with_pages(self, pages: int) -> Figures:
        return Figures(self.words, self.minutes, pages)
