"""Give the pages that the same ``@page`` rules match one set of computed styles.

WeasyPrint 70 computes the styles of every page and of its sixteen margin boxes afresh
(each page's type holds its index), then looks each property up again as the boxes are
made: a module book's page that shows only its number took 26 ms, and the running heads
a twentieth of a lesson's layout. But a page's styles come from nothing but the ``@page``
rules its type matches (in the stylesheets' order) and the root element's style: pages
whose types match the same selectors get the same cascade, so they are given the styles
computed for the first of them, with the values already looked up. The first page is kept
apart (the viewport's size is known only once it is made), and every selector is matched
as WeasyPrint matches it, ``:nth()`` and page groups too. The bytes of every PDF are the
same.
"""

from __future__ import annotations

from typing import Any
from weakref import WeakKeyDictionary

from weasyprint.css import StyleFor
from weasyprint.layout import page

#: WeasyPrint's own, which :func:`set_page_type_computed_styles` calls for a page type
#: whose rules no earlier page matched.
weasyprint_set = page.set_page_type_computed_styles
#: By document (its ``StyleFor``): by what a page type matches, the first page type that
#: matched it and the pseudo-elements (margin boxes, footnote area) it has styles for.
_SEEN: WeakKeyDictionary[Any, dict[tuple[bool, ...], tuple[Any, tuple[Any, ...]]]] = (
    WeakKeyDictionary()
)


def _matched(page_type: Any, style_for: Any) -> tuple[bool, ...]:
    """Which of the document's page selectors ``page_type`` matches, and whether it is
    the first page."""
    return (
        page_type.index == 0,
        *(
            StyleFor._page_type_match(selector[2], page_type)
            for sheet, _origin, _specificity in style_for._sheets
            for _rule, selectors, _declarations in sheet.page_rules
            for selector in selectors
        ),
    )


def set_page_type_computed_styles(page_type: Any, html: Any, style_for: Any) -> None:
    """WeasyPrint's, unless a page type matching the same rules has its styles already:
    then ``page_type`` is given those."""
    seen = _SEEN.setdefault(style_for, {})
    key = _matched(page_type, style_for)
    computed = style_for.get_computed_styles()
    if (first := seen.get(key)) is not None:
        first_type, pseudo_types = first
        for pseudo_type in pseudo_types:
            computed[page_type, pseudo_type] = computed[first_type, pseudo_type]
        return
    weasyprint_set(page_type, html, style_for)
    pseudo_types = tuple(
        pseudo_type
        for element, pseudo_type in style_for.get_cascaded_styles()
        if pseudo_type and element == page_type
    )
    seen[key] = (page_type, (None, *pseudo_types))


def install() -> None:
    """Set pages' styles with :func:`set_page_type_computed_styles` (idempotent)."""
    page.set_page_type_computed_styles = set_page_type_computed_styles
