"""Turn the raw HTML and attributes a manuscript carries into a safe subset.

pandoc's commonmark reader passes raw HTML through untouched (``-raw_html`` is ignored,
jgm/pandoc#8305) and its attribute syntax accepts any name (``{onclick=...}``), so the
parsed document is cleaned here, before any edition is written: scripts, frames, forms,
embedded objects, style sheets, event handlers, ``javascript:`` addresses and file
attachments are removed, each with a warning at its manuscript line. What stays is
re-serialised as well-formed XHTML, so that the EPUB stays valid too.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from html.parser import HTMLParser
from typing import Any
from urllib.parse import urlsplit

#: Elements an author may write as raw HTML.
ALLOWED_TAGS = frozenset(
    {
        *("a", "abbr", "b", "bdi", "bdo", "blockquote", "br", "caption", "cite", "code"),
        *("col", "colgroup", "dd", "del", "details", "dfn", "div", "dl", "dt", "em"),
        *("figcaption", "figure", "h1", "h2", "h3", "h4", "h5", "h6", "hr", "i", "img"),
        *("ins", "kbd", "li", "mark", "ol", "p", "pre", "q", "rp", "rt", "ruby", "s"),
        *("samp", "small", "span", "strong", "sub", "summary", "sup", "table", "tbody"),
        *("td", "tfoot", "th", "thead", "time", "tr", "u", "ul", "var", "wbr"),
    }
)
#: Elements removed together with everything inside them.
DROPPED_WITH_CONTENT = frozenset(
    {
        *("script", "style", "template", "noscript", "iframe", "frame", "frameset"),
        *("object", "embed", "applet", "svg", "math", "textarea", "select", "title"),
    }
)
VOID_TAGS = frozenset({"br", "col", "hr", "img", "wbr"})
#: Block elements that raw HTML inside a paragraph may open: set there as spans.
_BLOCKS_AS_SPANS = frozenset(
    {
        *("div", "p", "section", "article", "aside", "header", "footer", "nav", "main"),
        *("figure", "figcaption", "blockquote", "address", "details", "summary"),
        *("h1", "h2", "h3", "h4", "h5", "h6"),
    }
)
_GLOBAL_ATTRIBUTES = frozenset({"id", "class", "title", "lang", "dir", "role", "hidden"})
_TAG_ATTRIBUTES = {
    "a": {"href", "hreflang", "rel"},
    "img": {"src", "alt", "width", "height"},
    "td": {"colspan", "rowspan", "headers", "align"},
    "th": {"colspan", "rowspan", "headers", "scope", "align"},
    "col": {"span"},
    "colgroup": {"span"},
    "ol": {"start", "reversed", "type"},
    "li": {"value"},
    "time": {"datetime"},
    "q": {"cite"},
    "blockquote": {"cite"},
    "del": {"cite", "datetime"},
    "ins": {"cite", "datetime"},
    "details": {"open"},
}
_URL_ATTRIBUTES = frozenset({"href", "src", "cite"})
_SAFE_SCHEMES = frozenset({"", "http", "https", "mailto", "tel"})
#: CSS that could fetch, run or bind something: a ``style`` holding it is removed.
_UNSAFE_CSS = re.compile(r"url\s*\(|@import|expression\s*\(|javascript:|behaviou?r\s*:|binding|\\")


#: A start tag, as pandoc and :class:`Sanitizer` write them: attribute values in double
#: quotes, with ``"``, ``<`` and ``>`` escaped, as they are in text.
START_TAG = re.compile(r"<[A-Za-z][^>]*>")
#: In a start tag: attributes that name one element (id, for) or several (aria-*,
#: headers) by id, and a link to an id.
_ID_ATTRIBUTE = re.compile(r'(?<=\s)(id|for|aria-labelledby|aria-describedby|headers)="([^"]*)"')
_LOCAL_LINK = re.compile(r'(?<=\s)href="#([^"]*)"')
#: The raw formats kept, as HTML; pandoc drops any other from the editions.
_RAW_HTML = frozenset({"html", "html4", "html5", "xhtml"})


def is_raw_html(node: Mapping[str, Any]) -> bool:
    """Whether a pandoc element is raw HTML (its content: [format, text])."""
    return node.get("t") in ("RawBlock", "RawInline") and node["c"][0].lower() in _RAW_HTML


def rename_ids(html: str, rename: Callable[[str], str]) -> str:
    """``html`` (written by pandoc or :class:`Sanitizer`) with every identifier its tags
    give, and every link to one, renamed by ``rename``; text is left alone."""

    def ids(match: re.Match[str]) -> str:
        return f'{match[1]}="{" ".join(map(rename, match[2].split()))}"'

    def tag(match: re.Match[str]) -> str:
        text = _ID_ATTRIBUTE.sub(ids, match[0])
        return _LOCAL_LINK.sub(lambda m: f'href="#{rename(m[1])}"', text)

    return START_TAG.sub(tag, html)


def rename_repeated_ids(html: str, rename: Callable[[str], str]) -> str:
    """``html`` with each identifier a tag gives that an earlier tag of it gave already
    renamed by ``rename``, at that tag only: the first keeps it, and the links to it."""
    given: set[str] = set()

    def ids(match: re.Match[str]) -> str:
        if match[1] != "id":
            return match[0]
        names = [rename(name) if name in given else name for name in match[2].split()]
        given.update(names)
        return f'id="{" ".join(names)}"'

    return START_TAG.sub(lambda tag: _ID_ATTRIBUTE.sub(ids, tag[0]), html)


def html_ids(html: str) -> set[str]:
    """The identifiers ``html``'s tags give."""
    return {
        found[2]
        for tag in START_TAG.findall(html)
        for found in _ID_ATTRIBUTE.finditer(tag)
        if found[1] == "id"
    }


def safe_url(value: str, image: bool = False) -> bool:
    """Whether an address may stay: web, mail, phone, relative, or a data: image."""
    scheme = urlsplit(value.strip()).scheme.lower()
    return scheme in _SAFE_SCHEMES or (image and scheme == "data")


def safe_attribute(tag: str, name: str, value: str) -> str | None:
    """Why attribute ``name`` may not stay on ``tag``, or None when it may."""
    name = name.lower()
    if name.startswith("on"):
        return f"event handler {name}"
    if name == "rel" and "attachment" in value.lower():
        return "rel=attachment (it would embed a file in the PDF)"
    if name == "style":
        return "style that fetches or runs something" if _UNSAFE_CSS.search(value) else None
    if name in _URL_ATTRIBUTES and not safe_url(value, image=tag == "img"):
        return f"{name} address '{value[:40]}'"
    allowed = name in _GLOBAL_ATTRIBUTES or name.startswith(("aria-", "data-"))
    if not allowed and name not in _TAG_ATTRIBUTES.get(tag, ()):
        return f"attribute {name}"
    return None


class _Cleaner(HTMLParser):
    """Re-serialise an HTML fragment, keeping the allowed subset, well nested.

    ``open_tags`` is shared by the fragments of one list of blocks or inlines: an end tag
    closes what was opened in an earlier fragment of the same list, one that closes
    nothing is dropped, and what is still open at the end of the list is closed there.
    """

    def __init__(self, dropping: str | None, open_tags: list[str], inline: bool = False) -> None:
        super().__init__(convert_charrefs=True)
        #: Inside a paragraph (raw inline HTML): a block element there is set as a span,
        #: which XHTML allows (an EPUB's ``<p>`` may not hold a ``<div>``).
        self.inline = inline
        self.out: list[str] = []
        self.removed: list[str] = []
        #: Inside an element dropped with its content (it may close in a later fragment).
        self.dropping = dropping
        self.open_tags = open_tags

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._start(tag, attrs, closed=tag in VOID_TAGS)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._start(tag, attrs, closed=True)

    def _start(self, tag: str, attrs: list[tuple[str, str | None]], closed: bool) -> None:
        if self.dropping:
            return
        tag = self._placed(tag)
        if tag in DROPPED_WITH_CONTENT:
            self.removed.append(f"<{tag}>")
            if not closed:
                self.dropping = tag
            return
        if tag not in ALLOWED_TAGS:
            self.removed.append(f"<{tag}>")
            return
        kept = []
        for name, value in attrs:
            why = safe_attribute(tag, name, value or "")
            if why:
                self.removed.append(f"{why} on <{tag}>")
            else:
                kept.append(f' {name.lower()}="{html.escape(value or name, quote=True)}"')
        self.out.append(f"<{tag}{''.join(kept)}{' /' if tag in VOID_TAGS else ''}>")
        if tag not in VOID_TAGS:
            self.open_tags.append(tag)

    def _placed(self, tag: str) -> str:
        return "span" if self.inline and tag in _BLOCKS_AS_SPANS else tag

    def handle_endtag(self, tag: str) -> None:
        if self.dropping:
            if tag == self.dropping:
                self.dropping = None
            return
        tag = self._placed(tag)
        if tag in self.open_tags:
            while self.open_tags:
                last = self.open_tags.pop()
                self.out.append(f"</{last}>")
                if last == tag:
                    break

    def handle_data(self, data: str) -> None:
        if not self.dropping:
            self.out.append(html.escape(data, quote=False))


@dataclass
class Sanitizer:
    """Clean a pandoc AST into a new one; ``removed`` lists (raw source, what went), for
    the warnings."""

    removed: list[tuple[str, str]] = field(default_factory=list)
    _dropping: str | None = None

    def clean(self, node: Any) -> Any:
        if isinstance(node, list):
            return self._clean_list(node)
        if isinstance(node, dict) and "t" in node:
            return {**node, "c": self.clean(node["c"])} if "c" in node else node
        return node

    def _clean_list(self, items: list[Any]) -> list[Any]:
        if _is_attr(items):
            return self._clean_attr(items)
        kept = []
        open_tags: list[str] = []
        for item in items:
            kind = item.get("t") if isinstance(item, dict) else None
            if kind in ("RawBlock", "RawInline"):
                kept.extend(self._clean_raw(item, open_tags))
            elif kind == "Link":
                kept.append(self._clean_link(item))
            elif self._dropping and kind in _INLINE_TEXT:
                continue  # the text of an inline <script>…</script>
            else:
                kept.append(self.clean(item))
            if kind == "RawBlock" or kind in _BLOCK_KINDS:
                self._dropping = None
        self._dropping = None if _has_blocks(items) else self._dropping
        if open_tags:  # close what the author left open, where its list ends
            kind = "RawBlock" if _has_blocks(items) else "RawInline"
            closing = "".join(f"</{tag}>" for tag in reversed(open_tags))
            kept.append({"t": kind, "c": ["html", closing]})
        return kept

    def _clean_raw(self, item: dict[str, Any], open_tags: list[str]) -> list[Any]:
        form, text = item["c"]
        if form.lower() not in _RAW_HTML:
            return []  # raw LaTeX and the like: no edition writes it
        cleaner = _Cleaner(self._dropping, open_tags, inline=item["t"] == "RawInline")
        cleaner.feed(text)
        cleaner.close()
        self._dropping = cleaner.dropping
        for what in cleaner.removed:
            self.removed.append((text, what))
        cleaned = "".join(cleaner.out)
        return [{"t": item["t"], "c": [form, cleaned]}] if cleaned.strip() else []

    def _clean_link(self, item: dict[str, Any]) -> Any:
        attr, inlines, (target, title) = item["c"]
        if safe_url(target) or target.startswith("#"):
            return {**item, "c": [self._clean_attr(attr), self.clean(inlines), [target, title]]}
        self.removed.append((target, f"link address '{target[:40]}'"))
        return {"t": "Span", "c": [self._clean_attr(attr), self.clean(inlines)]}

    def _clean_attr(self, attr: list[Any]) -> list[Any]:
        ident, classes, pairs = attr
        kept = []
        for name, value in pairs:
            why = safe_attribute("*", name, value)
            # pandoc writes unknown names as data-*, so only what is unsafe goes.
            if why and not why.startswith("attribute "):
                self.removed.append((f"{name}=", why))
            else:
                kept.append([name, value])
        return [ident, classes, kept]


_INLINE_TEXT = frozenset({"Str", "Space", "SoftBreak", "LineBreak", "Emph", "Strong", "Code"})
_BLOCK_KINDS = frozenset({"Para", "Plain", "Header", "CodeBlock", "BlockQuote", "Div"})


def _has_blocks(items: list[Any]) -> bool:
    return any(isinstance(i, dict) and i.get("t") in _BLOCK_KINDS for i in items)


def _is_attr(items: list[Any]) -> bool:
    """pandoc's Attr: [identifier, [classes], [[key, value], ...]]."""
    return (
        len(items) == 3
        and isinstance(items[0], str)
        and isinstance(items[1], list)
        and isinstance(items[2], list)
        and all(isinstance(p, list) and len(p) == 2 for p in items[2])
        and all(isinstance(c, str) for c in items[1])
    )


def sanitize(
    blocks: list[Any], line_of: Callable[[str], int | None]
) -> tuple[list[Any], list[tuple[int | None, str]]]:
    """The blocks with unsafe HTML removed, and (line, what was removed) for each removal."""
    sanitizer = Sanitizer()
    cleaned = sanitizer.clean(blocks)
    report = [(line_of(source), what) for source, what in dict.fromkeys(sanitizer.removed)]
    return cleaned, report
