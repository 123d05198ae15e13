"""Turn a theme's Jinja2 templates into an environment with pubkit's filters registered."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from functools import cache
from typing import Any

import jinja2

from .theme import Theme


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


def _count_filter(words: Mapping[str, Any]) -> Callable[[int, str], str]:
    """``{{ 3512 | count("words") }}`` → ``3,512 words`` in the course's language."""

    def count(value: int, key: str) -> str:
        singular, plural = words[key]
        form = singular if value == 1 else plural
        return str(form).format(n=format_number(value, str(words.get("thousands", ","))))

    return count


@cache
def environment(theme: Theme, language: str) -> jinja2.Environment:
    """One environment per theme and language; every filter is registered here."""
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
    return env
