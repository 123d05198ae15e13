"""Turn a styles folder (tokens, stylesheets, strings, fonts) into per-edition CSS."""

from __future__ import annotations

import base64
import importlib.util
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from pubkit.editions import COVER_STYLESHEETS, EDITIONS, MODULE_STYLESHEETS
from pubkit.errors import ConfigError, Diagnostic, PubkitError, error
from pubkit.sources.blocks import BLOCKS_FILE, Family, load_family
from pubkit.sources.config import Config, builtin_styles
from pubkit.sources.numbering import DEFAULT as NUMBERING
from pubkit.sources.numbering import load_numbering
from pubkit.sources.resources import css_references
from pubkit.sources.yamlsrc import FAST_LOADER, load_mapping

TOKENS_FILE = "tokens.yaml"
#: A publisher's own additions, cascaded after every edition's stylesheets when present.
CUSTOM_CSS = "custom.css"
STRINGS_FILE = "strings.yaml"
#: The stylesheet every edition's cascade starts with; the blocks' looks follow it.
BASE_CSS = "base.css"
#: In :meth:`Theme.words`: the label of each kind of block (``block:exercise``).
LABEL_PREFIX = "block:"
_VAR = re.compile(r"var\(\s*--([A-Za-z0-9-]+)\s*\)")
_FONT_GROUP = "fonts"


@dataclass(frozen=True)
class FontFace:
    family: str
    path: Path
    weight: int
    style: str
    #: Set only where the families before it lack a glyph (``fallback: true``).
    fallback: bool = False
    #: Sets the EPUB's MathML formulas, and no text (``formulas: true``).
    formulas: bool = False


@dataclass(frozen=True, eq=False)  # compared by identity, so caches can key on it
class Theme:
    """A resolved theme: the publisher's folder, falling back file by file to pubkit's own."""

    folders: tuple[Path, ...]
    tokens: Mapping[str, Any]
    fonts: tuple[FontFace, ...]
    strings: Mapping[str, Mapping[str, Any]]
    #: The kinds of block it sets as labelled boxes (:mod:`pubkit.sources.blocks`).
    blocks: Family = field(default_factory=lambda: Family({}))
    #: How figures, tables and equations are numbered (:mod:`pubkit.sources.numbering`).
    numbering: Mapping[str, str] = field(default_factory=lambda: dict(NUMBERING))

    def locate(self, name: str) -> Path | None:
        """``name`` from the publisher's folder, else pubkit's; None when neither has it."""
        return next((f / name for f in self.folders if (f / name).is_file()), None)

    def find(self, name: str) -> Path:
        path = self.locate(name)
        if path is None:
            raise ConfigError([error(self.folders[0], None, f"theme has no {name}")])
        return path

    @property
    def template_folders(self) -> list[Path]:
        return [f / "templates" for f in self.folders if (f / "templates").is_dir()]

    def properties(
        self,
        edition: str,
        paper: str,
        loaded: frozenset[str] | None = None,
        language: str | None = None,
    ) -> dict[str, str]:
        """Design tokens as custom-property values (``color-accent`` → ``#1d5b8c``); each
        font stack lists the fallback families among ``loaded`` (default: all), those made
        for ``language`` first (``languages:``: Han characters in their regional forms)."""
        properties = _flatten(self.tokens, exclude={_FONT_GROUP, "editions"})
        overrides = self.tokens.get("editions", {}).get(edition, {})
        properties.update(_flatten(overrides, exclude=set()))
        properties["print-page-size"] = paper
        for role, fallbacks in self.fallbacks(language).items():
            properties[f"font-{role}"] = self._stack(role, fallbacks, loaded, language)
        return properties

    def _stack(
        self,
        role: str,
        fallbacks: list[str],
        loaded: frozenset[str] | None,
        language: str | None = None,
    ) -> str:
        """A font role's CSS stack: its family, the ``fallbacks`` among ``loaded``, its
        generic family; a fallback made for ``language`` that leads (``lead: true``: its
        script's text set with the spaces and punctuation around it) comes first."""
        font = self.tokens[_FONT_GROUP][role]
        listed = [f for f in fallbacks if loaded is None or f in loaded]
        lead = [f for f in listed if language and self._leads(f, language)]
        stack = [*lead, font["family"], *(f for f in listed if f not in lead)]
        return "".join(f'"{f}", ' for f in stack) + str(font.get("generic", "serif"))

    def _leads(self, family: str, language: str) -> bool:
        return family in _leading(self, language)

    def regional_css(self, loaded: frozenset[str]) -> str:
        """For each loaded font made for some languages (``languages:``: Han characters in
        a region's forms), a rule that sets an element in one of them (a span
        ``[漢字]{lang=ja}``, a lesson's article in a collection) in the serif stack ordered
        for that language, whatever the lesson's: its Han characters take their region's
        forms. Headings keep their own stacks; later rules win (``zh-Hant`` over ``zh``)."""
        rules = []
        for font in self.tokens.get(_FONT_GROUP, {}).values():
            tags = [str(tag) for tag in font.get("languages") or ()]
            if not tags or font.get("family") not in loaded:
                continue
            stack = self._stack("serif", self.fallbacks(tags[0])["serif"], loaded, tags[0])
            selector = ", ".join(f'[lang|="{tag}"]' for tag in tags)
            rules.append(f":is({selector}):not(h1, h2, h3, h4, h5, h6) {{ font-family: {stack}; }}")
        return "\n".join(dict.fromkeys(rules))  # a region's serif and sans: one rule

    def fallbacks(self, language: str | None = None) -> dict[str, list[str]]:
        """Each font role's fallback families, in the order its stack lists them: the
        theme's, with those made for ``language`` first (``languages:``: Han characters in
        their regional forms). Every role has an entry, fallbacks' own included."""
        return {role: list(families) for role, families in _fallbacks(self, language).items()}

    def stylesheet(
        self,
        names: tuple[str, ...],
        edition: str,
        paper: str,
        font_url: Callable[[FontFace], str],
        faces: tuple[FontFace, ...] | None = None,
        language: str | None = None,
    ) -> str:
        """Concatenate ``names`` with @font-face rules (for ``faces``, default every face
        of the theme), custom properties substituted.

        Substituting rather than leaving ``var()`` keeps the CSS usable in @page rules
        and on e-readers whose engines have no custom properties.
        """
        faces = self.fonts if faces is None else faces
        loaded = frozenset(f.family for f in faces)
        properties = self.properties(edition, paper, loaded, language)
        parts = [_font_faces(faces, font_url)]
        for name in names:
            path = self.find(name)
            parts.append(f"/* {name} */\n" + _substitute(path, properties))
            if name == BASE_CSS:  # each kind of block's look, over the boxes' common rules
                parts.append(f"/* {BLOCKS_FILE} */\n" + self._blocks_css(properties))
        if regional := self.regional_css(loaded):
            parts.append(f"/* Han characters in their language's regional forms */\n{regional}")
        if custom := self.locate(CUSTOM_CSS):
            parts.append(f"/* {CUSTOM_CSS} */\n" + _substitute(custom, properties))
        return "\n".join(parts)

    def _blocks_css(self, properties: Mapping[str, str]) -> str:
        if unknown := sorted(self.blocks.tokens() - properties.keys()):
            source = self.blocks.sources[0] if self.blocks.sources else None
            raise ConfigError(
                [error(source, None, f"var(--{name}): no such design token") for name in unknown]
            )
        return self.blocks.stylesheet(properties.__getitem__)

    def family(self, role: str) -> str:
        """The family of a font role (``serif`` → ``Noto Serif``)."""
        return str(self.tokens[_FONT_GROUP][role]["family"])

    def strings_tag(self, language: str) -> str | None:
        """The tag ``language``'s UI strings are under: the exact tag, else the base
        language's (Traditional Chinese's for ``zh-TW``, ``zh-HK``, ``zh-MO``); None when
        the theme has none for it."""
        base = language.split("-")[0].lower()
        traditional = base == "zh" and language.lower().endswith(("-tw", "-hk", "-mo"))
        for tag in (language, language.lower(), *(["zh-Hant"] if traditional else []), base):
            if tag in self.strings:
                return tag
        return None

    def words(self, language: str) -> Mapping[str, Any]:
        """The UI strings for ``language``: exact tag, then base language, then English."""
        english = self.strings.get("en", {})
        tag = self.strings_tag(language)
        words = english if tag is None else {**english, **self.strings[tag]}
        labels = {
            f"{LABEL_PREFIX}{kind.name}": kind.label_in(words, language)
            for kind in self.blocks.kinds.values()
        }
        return {**words, **labels}


@cache
def _leading(theme: Theme, language: str) -> frozenset[str]:
    """The families that lead their stacks in text in ``language``."""
    return frozenset(
        str(font.get("family"))
        for font in theme.tokens.get(_FONT_GROUP, {}).values()
        if font.get("lead") and _affinity(font, language) < 2
    )


@cache  # a theme is compared by identity; every stylesheet asks again, per language
def _fallbacks(theme: Theme, language: str | None) -> dict[str, tuple[str, ...]]:
    fonts = theme.tokens.get(_FONT_GROUP, {})
    if language:  # a stable sort: the fonts made for the language move to the front
        fonts = dict(sorted(fonts.items(), key=lambda item: _affinity(item[1], language)))
    return {
        role: tuple(
            str(other["family"])
            for other in fonts.values()
            if other.get("fallback") is True or role in (other.get("fallback") or ())
        )
        for role in fonts
    }


def _affinity(font: Mapping[str, Any], language: str) -> int:
    """0 when a font's ``languages`` name ``language`` (``zh-TW``), 1 when they name its
    base language (``zh``), else 2: the order its stack takes the fonts in."""
    made = {str(tag).lower() for tag in font.get("languages") or ()}
    if language.lower() in made:
        return 0
    return 1 if language.split("-")[0].lower() in made else 2


def _flatten(tokens: Mapping[str, Any], exclude: set[str], prefix: str = "") -> dict[str, str]:
    flat: dict[str, str] = {}
    for key, value in tokens.items():
        if key in exclude:
            continue
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(_flatten(value, set(), f"{name}-"))
        else:
            flat[name] = str(value)
    return flat


def _substitute(path: Path, properties: Mapping[str, str]) -> str:
    """The stylesheet at ``path`` with its tokens filled in; an unknown token, or a file
    it would load from outside the theme folder or the network, is an error at its line."""
    css = path.read_text(encoding="utf-8")
    problems = []
    for number, line in enumerate(css.splitlines(), start=1):
        for name in _VAR.findall(line):
            if name not in properties:
                problems.append(error(path, number, f"var(--{name}): no such design token"))
        for reference in css_references(line):
            if why := _outside_theme(path.parent, reference):
                problems.append(error(path, number, f"'{reference}': {why}"))
    if problems:
        raise ConfigError(problems)
    return _inline_images(_VAR.sub(lambda m: properties[m.group(1)], css), path.parent)


#: Images a theme's stylesheet may refer to, inlined (:func:`_inline_images`).
_IMAGE_TYPES = {
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".gif": "image/gif",
}
_IMAGE_URL = re.compile(r"""url\(\s*(["']?)([^"')\s]+)\1\s*\)""")


def _inline_images(css: str, folder: Path) -> str:
    """``css`` with each image it refers to by a path of its own folder written in as a
    ``data:`` URL: a stylesheet's images then go wherever it goes (any edition, an EPUB,
    a publisher's theme that keeps pubkit's stylesheet) with nothing to resolve."""

    def inline(found: re.Match[str]) -> str:
        reference = found.group(2)
        kind = _IMAGE_TYPES.get(Path(urlsplit(reference).path).suffix.lower())
        if urlsplit(reference).scheme or kind is None:
            return found.group(0)
        data = (folder / unquote(urlsplit(reference).path)).read_bytes()
        return f'url("data:{kind};base64,{base64.b64encode(data).decode("ascii")}")'

    return _IMAGE_URL.sub(inline, css)


def _outside_theme(folder: Path, reference: str) -> str | None:
    """Why a stylesheet may not load ``reference``, or None when it is a theme file."""
    scheme = urlsplit(reference).scheme.lower()
    if scheme == "data":
        return None
    if scheme:
        return "a stylesheet may load only files of its theme folder, never from the network"
    target = (folder / unquote(urlsplit(reference).path)).resolve()
    if not target.is_relative_to(folder.resolve()):
        return "outside the theme folder"
    return None if target.is_file() else "no such file"


def _font_faces(fonts: tuple[FontFace, ...], font_url: Callable[[FontFace], str]) -> str:
    return "\n".join(
        f'@font-face {{ font-family: "{face.family}"; font-weight: {face.weight}; '
        f'font-style: {face.style}; src: url("{font_url(face)}"); }}'
        for face in fonts
    )


def _font_file(face: Mapping[str, Any], folders: tuple[Path, ...]) -> Path | None:
    """A face's file: in the theme's folders, or (``package:``) in an installed Python
    package that ships it (the STIX Two Math that ziamath draws the PDFs' formulas with)."""
    if package := face.get("package"):
        # find_spec locates the package without importing it (ziamath's import is 0.1 s)
        spec = importlib.util.find_spec(str(package))
        if spec is None or not spec.submodule_search_locations:
            return None
        places = [Path(p) for p in spec.submodule_search_locations]
    else:
        places = list(folders)
    return next((f / face["file"] for f in places if (f / face["file"]).is_file()), None)


def _load_fonts(tokens: Mapping[str, Any], folders: tuple[Path, ...]) -> tuple[FontFace, ...]:
    source = folders[0] / TOKENS_FILE
    faces: list[FontFace] = []
    problems = []
    for role, font in tokens.get(_FONT_GROUP, {}).items():
        if not isinstance(font, Mapping) or "family" not in font:
            problems.append(error(source, None, f"fonts.{role}: expected a family and its faces"))
            continue
        for face in font.get("faces", []):
            found = _font_file(face, folders)
            if found is None and font.get("optional"):
                continue  # not installed: its characters are reported as without a glyph
            if found is None:
                problems.append(error(source, None, f"fonts.{role}: no font file {face['file']}"))
                continue
            faces.append(
                FontFace(
                    family=str(font["family"]),
                    path=found.resolve(),
                    weight=int(face.get("weight", 400)),
                    style=str(face.get("style", "normal")),
                    fallback=bool(font.get("fallback", False)),
                    formulas=bool(font.get("formulas", False)),
                )
            )
    if problems:
        raise ConfigError(problems)
    return tuple(faces)


def _load(path: Path) -> Mapping[str, Any]:
    return load_mapping(path.read_text(encoding="utf-8"), path, loader_class=FAST_LOADER).values


@cache
def load_theme(folder: Path) -> Theme:
    """Read the theme in ``folder``; files it lacks come from pubkit's built-in theme."""
    builtin = builtin_styles()
    folders = tuple(dict.fromkeys([folder.resolve(), builtin]))
    try:
        tokens_path = next(f / TOKENS_FILE for f in folders if (f / TOKENS_FILE).is_file())
        strings_path = next(f / STRINGS_FILE for f in folders if (f / STRINGS_FILE).is_file())
        tokens = _load(tokens_path)
        strings = _load(strings_path)
    except StopIteration:
        raise ConfigError([error(folder, None, "theme has no tokens.yaml")]) from None
    except PubkitError as exc:
        raise ConfigError(exc.diagnostics) from None
    # Every fault of the theme's blocks and numbering at once, not the first file's only.
    problems: list[Diagnostic] = []
    family, numbering = Family({}), dict(NUMBERING)
    try:
        family = load_family(folders)
    except ConfigError as exc:
        problems += exc.diagnostics
    try:
        numbering = dict(load_numbering(folders))
    except ConfigError as exc:
        problems += exc.diagnostics
    if problems:
        raise ConfigError(problems)
    return Theme(
        folders=folders,
        tokens=tokens,
        fonts=_load_fonts(tokens, folders),
        strings=strings,
        blocks=replace(family, styled=_styled_classes(folders)),
        numbering=numbering,
    )


_CLASS = re.compile(r"\.(-?[A-Za-z_][\w-]*)")


def _styled_classes(folders: tuple[Path, ...]) -> frozenset[str]:
    """Every class the theme's stylesheets name (``.page-break``, a publisher's own)."""
    return frozenset(
        name
        for folder in folders
        for sheet in folder.glob("*.css")
        for name in _CLASS.findall(sheet.read_text(encoding="utf-8"))
    )


def check_stylesheets(theme: Theme, config: Config) -> None:
    """Assemble every stylesheet once, so that a theme fault (an unknown token, a file
    loaded from outside the theme) stops the build before any lesson, reported once."""
    problems: list[Diagnostic] = []
    sheets = {name: EDITIONS[name].stylesheets for name in config.editions}
    sheets["cover"] = COVER_STYLESHEETS
    sheets["module"] = MODULE_STYLESHEETS
    for name, stylesheets in sheets.items():
        try:
            theme.stylesheet(stylesheets, name, config.paper, font_url=lambda f: f.path.name)
        except ConfigError as exc:
            problems.extend(exc.diagnostics)
    if problems:
        raise ConfigError(dict.fromkeys(problems))
