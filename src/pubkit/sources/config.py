"""Turn ``pubkit.yaml`` into a typed :class:`Config`, collecting every error at once."""

from __future__ import annotations

import datetime as dt
import difflib
import os
import re
import string
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from pubkit.editions import EDITIONS
from pubkit.errors import ConfigError, Diagnostic, PubkitError, error, warning
from pubkit.sources.yamlsrc import YamlMapping, load_mapping

CONFIG_NAME = "pubkit.yaml"
PAPER_SIZES = ("A4", "Letter")
_LENGTH = re.compile(r"^(\d+(?:\.\d+)?)\s*(mm|cm|in|pt)$")
_MM_PER = {"mm": 1.0, "cm": 10.0, "in": 25.4, "pt": 25.4 / 72}
#: Characters XML 1.0 forbids: no EPUB or tagged PDF can carry them.
CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")
_LANGUAGE_TAG = re.compile(r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{1,8})*$")


@cache
def builtin_styles() -> Path:
    """The theme shipped with pubkit, used when a project has no ``styles/`` folder."""
    return Path(str(resources.files("pubkit") / "theme")).resolve()


@dataclass(frozen=True)
class Config:
    """Course-wide settings. Every one has a default: a folder with no pubkit.yaml builds."""

    root: Path
    #: The pubkit.yaml these settings came from, if any.
    source: Path | None = None
    #: course.title: the course's name, shown in PDF metadata and the EPUB.
    title: str = "Untitled course"
    #: course.publisher: the publishing house, written into every edition's metadata.
    publisher: str = ""
    #: course.url: the public address the output folder is published at (``https://…/``,
    #: ending in ``/``): links that leave a lesson's file (to another lesson, to a page
    #: outside the course) become absolute against it; None: they stay within the files.
    url: str | None = None
    #: course.authors: default authors for lessons whose front matter names none.
    authors: tuple[str, ...] = ()
    #: course.language: BCP 47 tag of the manuscripts (hyphenation, e-reader language).
    language: str = "en"
    #: course.date: the date stamped on every edition (YYYY-MM-DD), so that rebuilds of
    #: unchanged sources are byte-identical; SOURCE_DATE_EPOCH, when set, wins.
    date: str | None = None
    #: reading.words_per_minute: reading speed used for "N min read"; None: the rate of
    #: each lesson's language (:func:`pubkit.document.metrics.reading_rate`).
    words_per_minute: int | None = None
    #: pdf.paper: page size of the pdf and handout editions.
    paper: str = "A4"
    #: handout.bleed: bleed around each handout page for a commercial printer, in mm
    #: (written "3mm", "0.125in", "9pt"); None for office printers. Sets BleedBox/TrimBox.
    bleed: float | None = None
    #: handout.marks: crop and registration marks on the handout, outside the bleed.
    marks: bool = False
    #: epub.series: the series e-reader libraries shelve a module's lessons under, with
    #: {module} (the word "Module" in the lesson's language), {number} and {title};
    #: None for "{module} {number}: {title}".
    series: str | None = None
    #: editions: which editions ``pubkit build`` makes when --format is not given.
    editions: tuple[str, ...] = tuple(EDITIONS)
    #: solutions: where an edition puts exercises' solutions and hints, by edition name
    #: (``{handout: end}``): ``beside`` each exercise, at the ``end`` of the lesson, or
    #: ``omit``; an edition not named keeps its own (:attr:`pubkit.editions.Edition.solutions`).
    solutions: Mapping[str, str] = field(default_factory=dict)
    #: bibliography: the course's bibliography files (BibLaTeX ``.bib``, BibTeX ``.bibtex``,
    #: CSL JSON or YAML), relative to the project; a lesson's front matter may add its own.
    bibliography: tuple[str, ...] = ()
    #: csl: the citation style: one pubkit ships (``apa``, ``ieee``…) or a ``.csl`` file of
    #: the project; None: Chicago author-date.
    csl: str | None = None
    #: manuscript: folder holding one sub-folder per module.
    manuscript_dir: Path = Path("manuscript")
    #: styles: theme folder (tokens, CSS, templates, fonts).
    styles_dir: Path = field(default_factory=builtin_styles)
    #: output: folder the editions and the manifest are written to.
    output_dir: Path = Path("build")
    #: scheduler: the address of a Dask scheduler to build on (``tcp://host:8786``); None:
    #: this machine's workers. It changes where lessons are set, never their bytes.
    scheduler: str | None = None
    #: 1-based line of each key in pubkit.yaml, for later messages.
    lines: Mapping[str, int] = field(default_factory=dict)

    @property
    def credits(self) -> tuple[str, ...]:
        """Who is credited where a lesson names no author: course.authors, else the
        publisher."""
        return self.authors or ((self.publisher,) if self.publisher else ())

    def line_of(self, key: str) -> int | None:
        return self.lines.get(key)

    def solutions_in(self, edition: str) -> str:
        """Where edition ``edition`` puts solutions and hints."""
        return self.solutions.get(edition, EDITIONS[edition].solutions)


# --- option parsers: each returns the typed value or raises ValueError(expected ...) ---


def _text(value: Any) -> str:
    if not isinstance(value, str) or not value.strip() or CONTROL.search(value):
        raise ValueError("expected a non-empty text without control characters")
    return value.strip()


def _url(value: Any) -> str:
    """An absolute http(s) address, given a trailing ``/`` so that it is a folder."""
    text = _text(value)
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.query or parts.fragment:
        raise ValueError("expected the web address the course is published at, https://…/")
    return text if text.endswith("/") else text + "/"


def _text_list(value: Any) -> tuple[str, ...]:
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list):
        raise ValueError("expected a text or a list of texts")
    try:
        return tuple(_text(i) for i in items)
    except ValueError:
        raise ValueError("expected a text or a list of texts, without control characters") from None


#: Languages written right to left (ISO 639), unless a script subtag says otherwise.
RTL_LANGUAGES = frozenset(
    {"ar", "arc", "ckb", "dv", "fa", "he", "iw", "ks", "ku", "ps", "sd", "syr", "ug", "ur", "yi"}
)
#: Scripts written right to left (ISO 15924), for a tag such as ``az-Arab`` or ``pa-Arab``.
RTL_SCRIPTS = frozenset({"arab", "hebr", "thaa", "syrc", "nkoo", "adlm", "rohg", "samr", "mand"})


def text_direction(language: str) -> str:
    """``rtl`` for a language tag written right to left (``ar``, ``he-IL``, ``pa-Arab``),
    else ``ltr``; a script subtag wins over the language (``ku-Latn`` is ``ltr``)."""
    subtags = language.lower().replace("_", "-").split("-")
    script = next((s for s in subtags[1:] if len(s) == 4 and s.isalpha()), None)
    if script is not None:
        return "rtl" if script in RTL_SCRIPTS else "ltr"
    return "rtl" if subtags[0] in RTL_LANGUAGES else "ltr"


def parse_language(value: Any) -> str:
    if not isinstance(value, str) or not _LANGUAGE_TAG.match(value):
        raise ValueError("expected a language tag such as en, en-GB or pt-BR")
    return value


def _length(value: Any) -> float | None:
    """A bleed such as ``3mm``, in millimetres; ``0`` or ``none`` for no bleed."""
    text = value.strip().lower() if isinstance(value, str) else str(value)
    if text in ("0", "none"):
        return None
    match = _LENGTH.match(text)
    millimetres = float(match.group(1)) * _MM_PER[match.group(2)] if match else None
    if millimetres is None or millimetres > 25:
        raise ValueError("expected a length up to 25mm, such as 3mm, 0.125in or 9pt")
    return millimetres


def _flag(value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValueError("expected true or false")
    return value


def _series(value: Any) -> str:
    """A series name pattern; every {placeholder} must be one pubkit fills in."""
    text = _text(value)
    try:
        names = {name for _, name, _, _ in string.Formatter().parse(text) if name is not None}
    except ValueError:
        names = {"{"}
    unknown = names - {"module", "number", "title"}
    if unknown:
        raise ValueError("expected a name with {module}, {number} and {title} as placeholders")
    return text


def _date(value: Any) -> str:
    if isinstance(value, dt.datetime):
        return value.date().isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    try:
        return dt.date.fromisoformat(str(value).strip()).isoformat()
    except ValueError:
        raise ValueError("expected a date written YYYY-MM-DD") from None


def _words_per_minute(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 50 <= value <= 2000:
        raise ValueError("expected a whole number from 50 to 2000")
    return value


def _choice(*choices: str) -> Callable[[Any], str]:
    def parse(value: Any) -> str:
        for choice in choices:
            if isinstance(value, str) and value.lower() == choice.lower():
                return choice
        raise ValueError(f"expected one of {', '.join(choices)}")

    return parse


def _editions(value: Any) -> tuple[str, ...]:
    names = _text_list(value)
    unknown = [n for n in names if n not in EDITIONS]
    if unknown or not names:
        raise ValueError(f"expected editions from {', '.join(EDITIONS)}")
    return tuple(dict.fromkeys(names))


#: Where an edition may put solutions and hints.
SOLUTION_PLACES = ("beside", "end", "omit")


def _solutions(value: Any) -> dict[str, str]:
    expected = f"expected editions and where each puts solutions ({', '.join(SOLUTION_PLACES)})"
    if not isinstance(value, dict):
        raise ValueError(expected + ", such as {handout: end}")
    places = {}
    for name, place in value.items():
        if name not in EDITIONS:
            hint = difflib.get_close_matches(str(name), list(EDITIONS), n=1)
            raise ValueError(
                f"no edition '{name}'" + (f"; did you mean '{hint[0]}'?" if hint else "")
            )
        if place not in SOLUTION_PLACES:
            raise ValueError(f"{name}: expected one of {', '.join(SOLUTION_PLACES)}")
        places[str(name)] = str(place)
    return places


def _folder(value: Any) -> Path:
    return Path(_text(value))


@dataclass(frozen=True)
class Option:
    key: str
    attribute: str
    parse: Callable[[Any], Any]


OPTIONS = (
    Option("course.title", "title", _text),
    Option("course.publisher", "publisher", _text),
    Option("course.url", "url", _url),
    Option("course.authors", "authors", _text_list),
    Option("course.language", "language", parse_language),
    Option("course.date", "date", _date),
    Option("reading.words_per_minute", "words_per_minute", _words_per_minute),
    Option("pdf.paper", "paper", _choice(*PAPER_SIZES)),
    Option("handout.bleed", "bleed", _length),
    Option("handout.marks", "marks", _flag),
    Option("epub.series", "series", _series),
    Option("editions", "editions", _editions),
    Option("solutions", "solutions", _solutions),
    Option("bibliography", "bibliography", _text_list),
    Option("csl", "csl", _text),
    Option("manuscript", "manuscript_dir", _folder),
    Option("styles", "styles_dir", _folder),
    Option("output", "output_dir", _folder),
    Option("scheduler", "scheduler", _text),
)
_SECTIONS = {o.key.split(".")[0] for o in OPTIONS if "." in o.key}


def _flatten(values: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in values.items():
        dotted = f"{prefix}{key}"
        if dotted in _SECTIONS and isinstance(value, dict):
            flat.update(_flatten(value, f"{dotted}."))
        else:
            flat[dotted] = value
    return flat


def _shown(value: Any) -> str:
    text = repr(value) if not isinstance(value, str) else value
    return text if len(text) <= 40 else text[:37] + "..."


def source_date() -> str | None:
    """The date to stamp on outputs when SOURCE_DATE_EPOCH asks for reproducible builds
    (the reproducible-builds.org convention; it wins over course.date)."""
    epoch = os.environ.get("SOURCE_DATE_EPOCH", "").strip()
    if not epoch.isdigit():
        return None
    return dt.datetime.fromtimestamp(int(epoch), dt.UTC).date().isoformat()


def _nearest(key: str, names: Sequence[str]) -> str | None:
    """The setting an unknown ``key`` most likely means: the only one of that name in
    another section (``title`` → ``course.title``, ``pdf.bleed`` → ``handout.bleed``),
    else the closest in spelling (``course.titel`` → ``course.title``)."""
    leaf = key.rsplit(".", 1)[-1]
    moved = [name for name in names if name.rsplit(".", 1)[-1] == leaf]
    if len(moved) == 1:
        return moved[0]
    close = difflib.get_close_matches(key, names, n=1)
    return close[0] if close else None


def load_config(
    root: Path, overrides: Mapping[str, Any] | None = None
) -> tuple[Config, list[Diagnostic]]:
    """Read ``root/pubkit.yaml`` (if present). Raises :class:`ConfigError` listing every error.

    ``overrides`` maps setting keys (``handout.bleed``) to values given on the command
    line; they win over the file and are checked the same way. Returns the config and
    any warnings (unknown keys).
    """
    root = root.resolve()
    path = root / CONFIG_NAME
    defaults = Config(root=root, manuscript_dir=root / "manuscript", output_dir=root / "build")
    if (root / "styles").is_dir():
        defaults = replace(defaults, styles_dir=root / "styles")
    mapping = _read_mapping(path) if path.is_file() else None

    problems: list[Diagnostic] = []
    warnings: list[Diagnostic] = []
    settings: dict[str, Any] = {}
    known = {o.key: o for o in OPTIONS}
    for key, value in _flatten(mapping.values if mapping else {}).items():
        line = mapping.line_of(key) if mapping else None
        option = known.get(key)
        if option is None:
            hint = _nearest(key, [*known, *_SECTIONS])
            suggestion = f"; did you mean '{hint}'?" if hint else ""
            warnings.append(warning(path, line, f"{key}: unknown setting{suggestion}"))
            continue
        if value is None:
            continue
        try:
            settings[option.attribute] = option.parse(value)
        except ValueError as exc:
            problems.append(error(path, line, f"{key}: {exc}; got {_shown(value)}"))
    for key, value in (overrides or {}).items():
        try:
            settings[known[key].attribute] = known[key].parse(value)
        except ValueError as exc:
            problems.append(error(None, None, f"{key} (command line): {exc}; got {_shown(value)}"))

    for attribute in ("manuscript_dir", "styles_dir", "output_dir"):
        if attribute in settings:
            settings[attribute] = (root / settings[attribute]).resolve()
    styles = settings.get("styles_dir")
    if styles is not None and not styles.is_dir():
        line = mapping.line_of("styles") if mapping else None
        problems.append(error(path, line, f"styles: no folder {styles}"))
    if problems:
        raise ConfigError(problems)
    if mapping is None:
        return replace(defaults, **settings), warnings
    config = replace(defaults, source=path, lines=dict(mapping.lines), **settings)
    return config, warnings


def _read_mapping(path: Path) -> YamlMapping:
    try:
        return load_mapping(path.read_text(encoding="utf-8"), path)
    except UnicodeDecodeError as exc:
        raise ConfigError([error(path, None, f"not UTF-8 (byte {exc.start})")]) from None
    except PubkitError as exc:
        raise ConfigError(exc.diagnostics) from None
