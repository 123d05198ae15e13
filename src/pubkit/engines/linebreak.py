"""Turn WeasyPrint's line breaking right where it would leave a paragraph's first word alone
on its line.

WeasyPrint 70 lays a run of text out with its trailing space counted in the line's width.
When the run's words fit the line but its trailing space does not (the run ends just before
an inline element: ``shows the <code>for</code>``), ``split_first_line`` takes the run for
one that cannot be split where Pango split it, and breaks after its first word: "A" alone
on a line, the rest of the sentence on the next. (Found on a lesson's first paragraph:
one line in a few hundred of running text with inline code, emphasis or links.) A space at
the end of a line hangs, so such a run fits; this lays it out as fitting, with the
trailing space allowed past the edge, and leaves every other line as WeasyPrint breaks it.
"""

from __future__ import annotations

from typing import Any

from weasyprint.layout import inline
from weasyprint.text import line_break

_split_first_line = line_break.split_first_line


def split_first_line(
    text: str, style: Any, context: Any, max_width: float | None, *args: Any, **kwargs: Any
) -> Any:
    """WeasyPrint's ``split_first_line``, except that a run whose words fit ``max_width``
    is laid out whole when only its trailing space would not fit."""
    found = _split_first_line(text, style, context, max_width, *args, **kwargs)
    words = text.rstrip(" ")
    if (
        found[2] is None  # it fits whole, or nothing was split
        or max_width is None
        or words == text
        or not words
        or style["white_space"] not in ("normal", "pre-line")
    ):
        return found
    fitted = _split_first_line(words, style, context, max_width, *args, **kwargs)
    if fitted[2] is not None:  # the words themselves do not fit: WeasyPrint was right
        return found
    # The words fit: the trailing space may hang past the edge of the line.
    spaced = max_width + style["font_size"] * (len(text) - len(words))
    whole = _split_first_line(text, style, context, spaced, *args, **kwargs)
    return whole if whole[2] is None else found


def install() -> None:
    """Lay lines out with :func:`split_first_line` (idempotent)."""
    inline.split_first_line = split_first_line
