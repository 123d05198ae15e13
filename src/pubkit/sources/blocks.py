"""Turn a theme's ``blocks.yaml`` into the course's block family: the kinds of fenced div
(``::: exercise``, ``::: {.callout-tip}``) pubkit sets as labelled boxes, each with its
names, label, role, place and look (:mod:`pubkit.document.blocks` sets them)."""

from __future__ import annotations

import base64
import difflib
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cache, cached_property
from pathlib import Path
from typing import Any

from pubkit.errors import ConfigError, Diagnostic, PubkitError, error
from pubkit.sources.config import builtin_styles
from pubkit.sources.numbering import PATTERN_HINT, valid_numbering
from pubkit.sources.yamlsrc import FAST_LOADER, YamlMapping, load_mapping

BLOCKS_FILE = "blocks.yaml"
#: What a kind does beyond its box: an exercise is numbered and holds solutions; a
#: solution (or hint) goes where the edition puts solutions; an instructor's block is only
#: in the instructor edition.
BOX, EXERCISE, SOLUTION, INSTRUCTOR = "box", "exercise", "solution", "instructor"
ROLES = (BOX, EXERCISE, SOLUTION, INSTRUCTOR)
#: Where a block goes: where it is written, under the lesson's header, after the body.
HERE, TOP, END = "here", "top", "end"
PLACES = (HERE, TOP, END)
ELEMENTS = ("aside", "section")
LOOK = ("accent", "tint", "border")
_DEFAULT_LOOK = {
    "accent": "var(--color-accent)",
    "tint": "var(--color-box-tint)",
    "border": "var(--color-box-border)",
}
_FIELDS = ("aliases", "label", "role", "place", "element", "listed", "look", "icon", "numbering")
_NAME = re.compile(r"^[a-z][a-z0-9-]*$")
_VAR = re.compile(r"var\(\s*--([A-Za-z0-9-]+)\s*\)")


@dataclass(frozen=True)
class BlockKind:
    """One kind of block, as the theme defines it."""

    name: str
    aliases: tuple[str, ...] = ()
    #: A key of the theme's strings, or the label by language tag.
    label: str | Mapping[str, str] = ""
    role: str = BOX
    place: str = HERE
    element: str = "aside"
    #: Its heading is in the contents.
    listed: bool = False
    look: Mapping[str, str] = field(default_factory=lambda: dict(_DEFAULT_LOOK))
    icon: Path | None = None
    #: How an exercise's number reads: ``{n}`` ("Exercise 3"), ``{lesson}.{n}`` ("Exercise 50.3").
    numbering: str = "{n}"

    @property
    def css_class(self) -> str:
        return f"block-{self.name}"

    def label_in(self, strings: Mapping[str, Any], language: str) -> str:
        """The label in ``language``: from the theme's ``strings`` for it, or the kind's
        own words for that tag, its base language, then English."""
        if isinstance(self.label, str):
            return str(strings.get(self.label, self.label.replace("_", " ").capitalize()))
        base = language.split("-")[0].lower()
        for tag in (language, base, "en"):
            if tag in self.label:
                return self.label[tag]
        return next(iter(self.label.values()), self.name)


@dataclass(frozen=True)
class Family:
    """Every kind of block the theme defines, found by any of its names."""

    kinds: Mapping[str, BlockKind]
    #: Where the family was defined (the publisher's file first), for messages.
    sources: tuple[Path, ...] = ()
    #: Classes the theme's stylesheets style (``page-break``, a publisher's own): a div of
    #: one is set as written, not reported as an unknown block.
    styled: frozenset[str] = frozenset()

    def find(self, name: str) -> BlockKind | None:
        """The kind called ``name`` (or one of its aliases), whatever its case."""
        return self._names.get(name.lower())

    @cached_property
    def _names(self) -> dict[str, BlockKind]:
        names: dict[str, BlockKind] = {}
        for kind in self.kinds.values():
            for name in (kind.name, *kind.aliases):
                names.setdefault(name, kind)
        return names

    def nearest(self, name: str) -> str | None:
        """The known name closest to ``name``, for a "did you mean"."""
        close = difflib.get_close_matches(name.lower(), list(self._names), n=1, cutoff=0.6)
        return close[0] if close else None

    def of_role(self, role: str) -> list[BlockKind]:
        return [kind for kind in self.kinds.values() if kind.role == role]

    def stylesheet(self, value: Callable[[str], str]) -> str:
        """Each kind's look as CSS, its token references filled in by ``value`` (a
        custom property's name → its value in this edition)."""
        rules = []
        for kind in self.kinds.values():
            look = {part: _VAR.sub(lambda m: value(m.group(1)), v) for part, v in kind.look.items()}
            selector = f".block.{kind.css_class}"
            rules.append(
                f"{selector} {{ background: {look['tint']}; border-color: {look['border']}; }}\n"
                f"{selector} > .block-label {{ color: {look['accent']}; }}"
            )
            if kind.icon is not None:
                svg = kind.icon.read_text(encoding="utf-8").replace("currentColor", look["accent"])
                data = base64.b64encode(svg.encode("utf-8")).decode("ascii")
                rules.append(
                    f'{selector} > .block-label::before {{ content: ""; display: inline-block; '
                    f"width: 1.25em; height: 1.25em; vertical-align: -0.3em; "
                    f'margin-right: 0.45em; background: url("data:image/svg+xml;base64,{data}") '
                    f"no-repeat; background-size: contain; }}\n"
                    f'[dir="rtl"] {selector} > .block-label::before '
                    f"{{ margin-right: 0; margin-left: 0.45em; }}"
                )
        return "\n".join(rules) + "\n"

    def tokens(self) -> set[str]:
        """The design tokens the kinds' looks refer to."""
        return {
            name
            for kind in self.kinds.values()
            for v in kind.look.values()
            for name in _VAR.findall(v)
        }


@cache
def builtin_family() -> Family:
    """pubkit's own kinds of block (its theme's ``blocks.yaml``)."""
    return load_family((builtin_styles(),))


def load_family(folders: tuple[Path, ...]) -> Family:
    """The block family of a theme: pubkit's kinds, changed and added to, key by key, by
    the publisher's ``blocks.yaml``. Every fault is collected, at its line."""
    sources = [f / BLOCKS_FILE for f in folders if (f / BLOCKS_FILE).is_file()]
    merged: dict[str, dict[str, Any]] = {}
    where: dict[str, tuple[Path, int]] = {}  # dotted key -> where it was last given
    problems: list[Diagnostic] = []
    for source in reversed(sources):  # pubkit's first, the publisher's over it
        try:
            mapping = _load(source)
        except PubkitError as exc:
            problems.extend(exc.diagnostics)
            continue
        for name, value in mapping.values.items():
            line = mapping.line_of(name)
            if not _NAME.match(name):
                problems.append(
                    error(
                        source,
                        line,
                        f"block name '{name}': expected lower-case letters, digits and hyphens",
                    )
                )
                continue
            if not isinstance(value, dict):
                problems.append(
                    error(
                        source, line, f"{name}: expected the kind's fields ({', '.join(_FIELDS)})"
                    )
                )
                continue
            merged.setdefault(name, {}).update(value)
            where[name] = (source, line)
            for key in value:
                where[f"{name}.{key}"] = (source, mapping.line_of(f"{name}.{key}"))
    kinds: dict[str, BlockKind] = {}
    owners: dict[str, str] = {}
    for name, fields in merged.items():
        try:
            kind = _kind(name, fields, folders, where, problems)
        except _Skip:
            continue
        for alias in (kind.name, *kind.aliases):
            if alias in owners and owners[alias] != name:
                source, line = where.get(f"{name}.aliases", where[name])
                problems.append(
                    error(source, line, f"{name}: the name '{alias}' is already {owners[alias]}'s")
                )
            owners.setdefault(alias, name)
        kinds[name] = kind
    if problems:
        raise ConfigError(problems)
    return Family(kinds, tuple(sources))


class _Skip(Exception):
    pass


def _kind(
    name: str,
    fields: Mapping[str, Any],
    folders: tuple[Path, ...],
    where: Mapping[str, tuple[Path, int]],
    problems: list[Diagnostic],
) -> BlockKind:
    found: list[Diagnostic] = []

    def fault(key: str, message: str) -> None:
        source, line = where.get(f"{name}.{key}", where[name])
        found.append(error(source, line, f"{name}.{key}: {message}"))

    for key in fields:
        if key not in _FIELDS:
            hint = difflib.get_close_matches(key, _FIELDS, n=1)
            fault(key, "unknown field" + (f"; did you mean '{hint[0]}'?" if hint else ""))
    aliases = fields.get("aliases") or []
    if not isinstance(aliases, list) or not all(
        isinstance(a, str) and _NAME.match(a) for a in aliases
    ):
        fault("aliases", "expected a list of names in lower-case letters, digits and hyphens")
        aliases = []
    label = fields.get("label", name)
    if not (isinstance(label, str) and label) and not (
        isinstance(label, dict) and label and all(isinstance(v, str) for v in label.values())
    ):
        fault("label", "expected a key of strings.yaml, or words by language ({en: …, de: …})")
        label = name
    choices = {"role": ROLES, "place": PLACES, "element": ELEMENTS}
    chosen = {}
    for key, allowed in choices.items():
        chosen[key] = fields.get(key, allowed[0])
        if chosen[key] not in allowed:
            fault(key, f"expected one of {', '.join(allowed)}; got {chosen[key]!r}")
    listed = fields.get("listed", False)
    if not isinstance(listed, bool):
        fault("listed", "expected true or false")
    look = fields.get("look") or {}
    if not isinstance(look, dict) or set(look) - set(LOOK):
        fault("look", f"expected colours for {', '.join(LOOK)}")
        look = {}
    icon = fields.get("icon")
    icon_path = None
    if icon is not None:
        icon_path = next((f / str(icon) for f in folders if (f / str(icon)).is_file()), None)
        inside = icon_path is not None and any(
            icon_path.resolve().is_relative_to(f) for f in folders
        )
        if not isinstance(icon, str) or not str(icon).endswith(".svg") or not inside:
            fault("icon", f"expected an SVG file of the theme folder; got {icon!r}")
            icon_path = None
    numbering = fields.get("numbering", "{n}")
    if not valid_numbering(numbering):
        fault("numbering", PATTERN_HINT)
        numbering = "{n}"
    if found:
        problems.extend(found)
        raise _Skip
    return BlockKind(
        name=name,
        aliases=tuple(aliases),
        label=label,
        role=chosen["role"],
        place=chosen["place"],
        element=chosen["element"],
        listed=listed,
        look={**_DEFAULT_LOOK, **{k: str(v) for k, v in look.items()}},
        icon=icon_path.resolve() if icon_path else None,
        numbering=numbering,
    )


def _load(path: Path) -> YamlMapping:
    return load_mapping(path.read_text(encoding="utf-8"), path, loader_class=FAST_LOADER)
