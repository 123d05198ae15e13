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


def count_words(text: str) -> int:
    """Count words: whitespace-separated runs that hold a letter or digit, plus CJK characters."""
    count = 0
    for token in text.split():
        unspaced = len(_UNSPACED.findall(token))
        rest = _UNSPACED.sub(" ", token) if unspaced else token
        count += unspaced + sum(1 for part in rest.split() if any(c.isalnum() for c in part))
    return count


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
