"""Turn a lesson's fenced code into highlighted HTML: ```` ```python ```` is coloured by
Pygments, token by token, with classes the theme's stylesheets colour from the design
tokens (the same in the PDFs and the EPUB; ink that photocopies on the handout), and a
program's output (```` ```output ````, ``text``, ``console``) is set apart from code.

Every edition renders from the same AST; this is applied as an edition writes its HTML
(:func:`highlighted`), so the words a reader counts are the code's, unchanged. In print
each line is a block of its own, so that a line too long for the page wraps under a
hanging indent with a continuation mark (print.css); ``{.python .numberLines}`` (and
``startFrom="10"``) numbers the lines, in every edition.
"""

from __future__ import annotations

import html
import re
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


def _lines(code: str, lexer: Any | None) -> list[str]:
    """``code``, line by line, as HTML: Pygments' token spans (short classes such as
    ``k``, ``s2``, ``c1``; no line anchors, no inline styles) or, without a lexer, text."""
    from pygments.formatters.html import _get_ttype_class

    lines: list[str] = [""]
    tokens = lexer.get_tokens(code) if lexer is not None else [(None, code)]
    for kind, value in tokens:
        name = _get_ttype_class(kind) if kind is not None else ""
        for index, part in enumerate(value.split("\n")):
            if index:
                lines.append("")
            for word in re.split(r"( +)", part) if name else [part]:
                # A span a word: WeasyPrint breaks a line between inline boxes, not inside
                # one (a long string would go whole to the next line); spaces stay bare.
                text = html.escape(word, quote=False)
                if word and name and not word.isspace():
                    lines[-1] += f'<span class="{name}">{text}</span>'
                else:
                    lines[-1] += text
    if len(lines) > 1 and not lines[-1] and code.endswith("\n"):
        lines.pop()
    return lines


def _language(block: Any) -> str | None:
    classes = [name for name in block["c"][0][1] if name not in NUMBERED]
    return classes[0].lower() if classes else None


def _attributes(block: Any, kind: str, language: str | None, numbered: bool) -> str:
    ident, classes, _ = block["c"][0]
    names = ["code", kind, *(f"language-{language}" for _ in [language] if language)]
    names += ["numbered"] if numbered else []
    names += [name for name in classes[1:] if name.replace("-", "").isalnum()]
    names = list(dict.fromkeys(n for n in names if n not in NUMBERED))
    ident_attribute = f' id="{html.escape(ident)}"' if ident else ""
    return f'{ident_attribute} class="{" ".join(names)}"'


#: The classes that number a code block's lines (pandoc's names).
NUMBERED = frozenset({"numberLines", "number-lines"})


def _first_number(block: Any) -> int:
    given = dict(block["c"][0][2]).get("startFrom", "1")
    return int(given) if given.isdigit() else 1


def to_html(block: Any, paged: bool = False) -> dict[str, Any] | None:
    """A ``CodeBlock`` as the HTML block an edition sets: highlighted when its language is
    one Pygments knows, set apart when it is a program's output, its lines numbered when
    asked. ``paged``: each line a block of its own (print.css wraps it under a mark).
    None for a block without language, numbers or pages: pandoc sets it."""
    language = _language(block)
    code = block["c"][1]
    numbered = bool(NUMBERED & set(block["c"][0][1]))
    lexer = (
        _lexer(language)
        if language and language not in OUTPUT and language not in NUMBERED
        else None
    )
    if language in OUTPUT:
        kind = "output"
    elif lexer is not None:
        kind = "highlighted"
    elif paged or numbered:
        kind, language = "plain", None
    else:
        return None
    lines = _lines(code, lexer)
    if numbered:
        first = _first_number(block)
        lines = [
            f'<span class="ln" aria-hidden="true">{first + index}</span>{line}'
            for index, line in enumerate(lines)
        ]
    if paged:
        body = "".join(f'<span class="line">{line}</span>' for line in lines)
    else:
        body = "\n".join(lines)
    markup = f"<pre{_attributes(block, kind, language, numbered)}><code>{body}</code></pre>"
    return {"t": "RawBlock", "c": ["html", markup]}


def highlighted(blocks: list[Any], paged: bool = False) -> list[Any]:
    """``blocks`` with each fenced code block set by :func:`to_html` (a new list where
    one changes; the blocks given are left as they are)."""
    if not any(node["t"] == "CodeBlock" for node in walk(blocks)):
        return blocks

    def replace(node: dict[str, Any]) -> dict[str, Any] | None:
        if node["t"] == "Note":  # a note's code is set as a line of it (pubkit.document.paged)
            return node
        return to_html(node, paged) if node["t"] == "CodeBlock" else None

    result: list[Any] = replaced(blocks, replace)
    return result
