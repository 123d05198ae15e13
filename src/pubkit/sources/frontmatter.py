"""Turn a manuscript file into checked text, its front matter and typed fields.

Every problem is collected with its line: undecodable bytes, characters no edition can
carry, front matter never closed, a field of the wrong type or an unknown one.
"""

from __future__ import annotations

import datetime as dt
import difflib
import re
from pathlib import Path

from pubkit.errors import Diagnostic, PubkitError, error, warning
from pubkit.sources.config import CONTROL, parse_language
from pubkit.sources.yamlsrc import YamlMapping, load_mapping

_FENCE = re.compile(r"^---\s*$")
_FENCE_END = re.compile(r"^(---|\.\.\.)\s*$")
#: Where a quote mark opens rather than closes: at the start, after a space, a bracket or a dash.
_OPENS_QUOTE = re.compile(r"""(^|(?<=[\s(\[{—–/-]))(["'])""")


# --- reading files ---


#: A lesson is a few thousand words; a file far larger is a mistake or an attack.
MAX_MANUSCRIPT_BYTES = 4 * 1024 * 1024


def read_text(path: Path) -> str:
    """Read UTF-8 text, naming the byte and line of the first undecodable byte."""
    if path.stat().st_size > MAX_MANUSCRIPT_BYTES:
        raise PubkitError.at(path, None, "larger than 4 MiB: too large for one lesson")
    data = path.read_bytes()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise PubkitError.at(
            path, line, f"not UTF-8: byte 0x{data[exc.start]:02x} at offset {exc.start}"
        ) from None
    text = text.removeprefix("\ufeff")
    if found := CONTROL.search(text):
        line = text.count("\n", 0, found.start()) + 1
        column = found.start() - text.rfind("\n", 0, found.start())
        raise PubkitError.at(
            path,
            line,
            f"control character U+{ord(found.group()):04X} at column {column}: "
            "no edition can carry it (XML forbids it); delete it",
        )
    return text


def split_front_matter(text: str, path: Path) -> tuple[YamlMapping, str, int]:
    """Split ``---`` front matter from the body; return (metadata, body, body line)."""
    if not text.strip():
        raise PubkitError.at(path, 1, "empty file: a lesson needs front matter and a body")
    lines = text.splitlines(keepends=True)
    if not _FENCE.match(lines[0]):
        raise PubkitError.at(path, 1, "missing front matter: start the file with a '---' line")
    for index in range(1, len(lines)):
        if _FENCE_END.match(lines[index]):
            meta = load_mapping("".join(lines[1:index]), path, line_offset=1)
            return meta, "".join(lines[index + 1 :]), index + 2
    raise PubkitError.at(path, 1, "front matter opened with '---' is never closed")


# --- field validation ---


def smart_punctuation(text: str) -> str:
    """Typographic quotes, dashes and ellipses in a front-matter text, as pandoc's ``smart``
    extension gives the body: titles and deks read the same as the text beneath them."""
    text = text.replace("---", "\u2014").replace("--", "\u2013").replace("...", "\u2026")
    text = _OPENS_QUOTE.sub(lambda m: "\u201c" if m.group(2) == '"' else "\u2018", text)
    return text.replace('"', "\u201d").replace("'", "\u2019")


class Fields:
    """Typed access to a YAML mapping that collects every problem."""

    def __init__(self, meta: YamlMapping, path: Path, known: tuple[str, ...]) -> None:
        self.meta = meta
        self.path = path
        self.problems: list[Diagnostic] = []
        for key in meta.values:
            if key not in known:
                hint = difflib.get_close_matches(key, known, n=1)
                suggestion = f"; did you mean '{hint[0]}'?" if hint else ""
                self.problems.append(
                    warning(path, meta.line_of(key), f"unknown field '{key}'{suggestion}")
                )

    def _bad(self, key: str, expected: str) -> None:
        value = self.meta.values[key]
        shown = repr(value) if len(repr(value)) < 40 else repr(value)[:37] + "..."
        self.problems.append(
            error(self.path, self.meta.line_of(key), f"{key}: expected {expected}; got {shown}")
        )

    def _missing(self, key: str) -> None:
        self.problems.append(error(self.path, self.meta.line, f"missing required field '{key}'"))

    def integer(self, key: str, *, required: bool = False, minimum: int = 0) -> int | None:
        value = self.meta.values.get(key)
        if value is None:
            if required:
                self._missing(key)
            return None
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            self._bad(key, f"a whole number of at least {minimum}")
            return None
        return value

    def text(self, key: str, *, required: bool = False) -> str | None:
        value = self.meta.values.get(key)
        if value is None:
            if required:
                self._missing(key)
            return None
        if isinstance(value, int | float) and not isinstance(value, bool):
            value = str(value)
        if not isinstance(value, str) or not value.strip() or CONTROL.search(value):
            self._bad(key, "a non-empty text without control characters")
            return None
        return " ".join(value.split())

    def language(self, key: str) -> str | None:
        value = self.meta.values.get(key)
        if value is None:
            return None
        try:
            return parse_language(value)  # the same rule as course.language
        except ValueError:
            self._bad(key, "a language tag such as en, de or pt-BR")
            return None

    def texts(self, key: str) -> tuple[str, ...]:
        value = self.meta.values.get(key)
        if value is None:
            return ()
        if isinstance(value, str):
            value = [part for part in value.split(",") if part.strip()]
        if (
            not isinstance(value, list)
            or not all(isinstance(v, str | int | float) and not isinstance(v, bool) for v in value)
            or any(CONTROL.search(str(v)) for v in value)
        ):
            self._bad(key, "a text or a list of texts, without control characters")
            return ()
        return tuple(" ".join(str(v).split()) for v in value if str(v).strip())

    def date(self, key: str) -> str | None:
        value = self.meta.values.get(key)
        if value is None:
            return None
        if isinstance(value, dt.datetime):
            return value.date().isoformat()
        if isinstance(value, dt.date):
            return value.isoformat()
        if isinstance(value, str):
            try:
                return dt.date.fromisoformat(value.strip()).isoformat()
            except ValueError:
                pass
        self._bad(key, "a date written YYYY-MM-DD")
        return None
