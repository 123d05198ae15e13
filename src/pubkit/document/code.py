"""Turn a lesson's fenced code into highlighted HTML: ```` ```python ```` is coloured by
Pygments, token by token, with classes the theme's stylesheets colour from the design
tokens (the same in the PDFs and the EPUB; ink that photocopies on the handout), and a
program's output (```` ```output ````, ``text``, ``console``) is set apart from code.

Every edition renders from the same AST; this is applied as an edition writes its HTML
(:func:`highlighted`), so the words a reader counts are the code's, unchanged.
"""

from __future__ import annotations

import html
from functools import lru_cache
from typing import Any

from pubkit.document.ast import replaced, walk

#: Fence languages that are a program's output rather than code.
OUTPUT = frozenset({"output", "text", "console-output", "stdout", "plain"})


@lru_cache(maxsize=256)
def _lexer(language: str) -> Any:
    from pygments.lexers import get_lexer_by_name
    from pygments.util import ClassNotFound

    try:
        return get_lexer_by_name(language, stripnl=False, ensurenl=False)
    except ClassNotFound:
        return None


def _spans(code: str, lexer: Any) -> str:
    """``code`` as Pygments' token spans (short classes such as ``k``, ``s2``, ``c1``),
    with no wrapping element, no line anchors and no inline styles."""
    from pygments import highlight
    from pygments.formatters import HtmlFormatter

    spans: str = highlight(code, lexer, HtmlFormatter(nowrap=True))
    return spans[:-1] if spans.endswith("\n") and not code.endswith("\n") else spans


def _language(block: Any) -> str | None:
    classes = block["c"][0][1]
    return classes[0].lower() if classes else None


def _attributes(block: Any, kind: str, language: str | None) -> str:
    ident, classes, _ = block["c"][0]
    names = ["code", kind, *(f"language-{language}" for _ in [language] if language)]
    names += [name for name in classes[1:] if name.replace("-", "").isalnum()]
    ident_attribute = f' id="{html.escape(ident)}"' if ident else ""
    return f'{ident_attribute} class="{" ".join(names)}"'


def to_html(block: Any) -> dict[str, Any] | None:
    """A ``CodeBlock`` as the highlighted HTML block every edition sets, or None when it
    has no language (or one Pygments does not know): then it stays as pandoc sets it."""
    language = _language(block)
    if language is None:
        return None
    code = block["c"][1]
    if language in OUTPUT:
        body, kind = html.escape(code, quote=False), "output"
    elif (lexer := _lexer(language)) is not None:
        body, kind = _spans(code, lexer), "highlighted"
    else:
        return None
    markup = f"<pre{_attributes(block, kind, language)}><code>{body}</code></pre>"
    return {"t": "RawBlock", "c": ["html", markup]}


def highlighted(blocks: list[Any]) -> list[Any]:
    """``blocks`` with each fenced code block of a known language highlighted (a new list
    where one changes; the blocks given are left as they are)."""
    if not any(node["t"] == "CodeBlock" and _language(node) for node in walk(blocks)):
        return blocks
    result: list[Any] = replaced(
        blocks, lambda node: to_html(node) if node["t"] == "CodeBlock" else None
    )
    return result
