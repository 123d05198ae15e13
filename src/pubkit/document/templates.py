"""Turn a theme's Jinja2 templates into an environment with pubkit's filters registered."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from functools import cache
from typing import Any

import jinja2
from markupsafe import Markup, escape

from pubkit.sources.config import text_direction
from pubkit.sources.theme import Theme

#: Where a paged edition's layout engine prints the lesson's page count itself (the CSS
#: ``counter(pages)``), so that "N pages" is right after one layout (:mod:`pubkit.engines.pdf`).
PAGE_COUNTER = Markup('<span class="page-count"></span>')


def format_number(value: int, thousands: str) -> str:
    return f"{value:,}".replace(",", thousands)


def file_size(size: int, decimal: str = ".") -> str:
    """``1234567`` → ``1.2 MB`` (decimal units, as file managers show them)."""
    if size < 1000:
        return f"{size} B"
    for unit, scale in (("KB", 1e3), ("MB", 1e6), ("GB", 1e9)):
        if size < scale * 1000 or unit == "GB":
            value = size / scale
            text = f"{value:.0f}" if value >= 100 else f"{value:.1f}"
            return f"{text.replace('.', decimal)} {unit}"
    raise AssertionError("unreachable")


def count(words: Mapping[str, Any], value: int, key: str) -> str:
    """``3512, "words"`` → ``3,512 words`` in the language of ``words``."""
    return _form(words, key, value).format(n=format_number(value, str(words.get("thousands", ","))))


def counted_right(words: Mapping[str, Any], key: str, guess: int, value: int) -> bool:
    """Whether the count set for ``guess`` with the number left to the layout engine
    (:data:`PAGE_COUNTER`, plain digits) reads as :func:`count` writes ``value``: the
    same singular or plural, and no thousands separator missing."""
    return _form(words, key, guess).format(n=value) == count(words, value, key)


def _form(words: Mapping[str, Any], key: str, value: int) -> str:
    singular, plural = words[key]
    return str(singular if value == 1 else plural)


def _count_filter(words: Mapping[str, Any]) -> Callable[..., str]:
    """``{{ 3512 | count("words") }}`` → ``3,512 words``; with ``live``, the number is
    :data:`PAGE_COUNTER` and ``value`` only chooses between singular and plural."""

    def count_filter(value: int, key: str, live: bool = False) -> str:
        if live:
            return Markup(escape(_form(words, key, value)).replace("{n}", PAGE_COUNTER))
        return count(words, value, key)

    return count_filter


@cache
def _dir_attribute(language: str, around: str | None = None) -> str:
    """`` dir="rtl"`` for an element in ``language`` when it is written the other way than
    the text ``around`` it (default: left to right); nothing when they agree."""
    direction = text_direction(language)
    if direction == (text_direction(around) if around else "ltr"):
        return ""
    return Markup(f' dir="{direction}"')


@cache
def environment(theme: Theme, language: str) -> jinja2.Environment:
    """One environment per theme and language, made once per process (a new one would
    compile each template again: 14 of them, 40 ms a lesson); every filter is registered
    here."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader([str(p) for p in theme.template_folders]),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
    )
    words = theme.words(language)
    env.filters["count"] = _count_filter(words)
    env.filters["size"] = lambda n: file_size(int(n), str(words.get("decimal", ".")))
    env.globals["strings"] = words
    env.filters["dir"] = _dir_attribute
    return env
