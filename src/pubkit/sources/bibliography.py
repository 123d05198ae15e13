"""Turn bibliography files (BibLaTeX, BibTeX, CSL JSON, CSL YAML) and a citation style into
the references a lesson may cite: each file checked as an image is (a file of the project,
never the network), read once per build, its keys known; a file that does not read is an
error at its own line. :mod:`pubkit.document.citations` sets the citations with them."""

from __future__ import annotations

import json
import re
import subprocess
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from pubkit.errors import ConfigError, Diagnostic, PubkitError, error
from pubkit.sources.config import Config, builtin_styles
from pubkit.sources.manuscript import Lesson
from pubkit.sources.yamlsrc import FAST_LOADER, load_mapping

#: The bibliography formats pandoc's citeproc reads, by file suffix.
FORMATS = {
    ".bib": "biblatex",
    ".bibtex": "bibtex",
    ".json": "csljson",
    ".yaml": "cslyaml",
    ".yml": "cslyaml",
}
#: The citation styles pubkit ships (``csl: apa``), in the theme's ``csl/`` folder.
STYLES_DIR = "csl"
#: The style used when pubkit.yaml names none: pandoc's own default.
DEFAULT_STYLE = "chicago-author-date"
#: Longer than any real bibliography: a file this large is refused, not read.
MAX_BYTES = 16 << 20


@dataclass(frozen=True)
class Bibliography:
    """What a lesson may cite: its bibliography files, their keys, the style, and the
    language its citations are set in."""

    files: tuple[Path, ...]
    keys: frozenset[str]
    style: Path
    language: str = "en"

    def __bool__(self) -> bool:
        return bool(self.files)


def style_path(name: str | None, root: Path) -> Path:
    """The CSL file a ``csl:`` setting names: one pubkit ships (``apa``), or a file of
    the project (``styles/my.csl``)."""
    shipped = builtin_styles() / STYLES_DIR / f"{name or DEFAULT_STYLE}.csl"
    if name is None or shipped.is_file():
        return shipped
    return (root / name).resolve()


def shipped_styles() -> list[str]:
    return sorted(p.stem for p in (builtin_styles() / STYLES_DIR).glob("*.csl"))


def check_style(
    name: str | None, root: Path, where: Path | None, line: int | None
) -> list[Diagnostic]:
    """Why the ``csl:`` setting cannot be used, if it cannot."""
    path = style_path(name, root)
    if (
        path.is_file()
        and path.suffix == ".csl"
        and (path.is_relative_to(root) or path.is_relative_to(builtin_styles()))
    ):
        return []
    known = ", ".join(shipped_styles())
    return [
        error(where, line, f"csl: no style '{name}': one of {known}, or a .csl file of the project")
    ]


def check_course(config: Config) -> None:
    """Read the course's bibliography files and check its style once, before any lesson:
    a fault there is a fault of every lesson, reported once. Raises :class:`ConfigError`."""
    problems = check_style(config.csl, config.root, config.source, config.line_of("csl"))
    for name in config.bibliography:
        try:
            where, line = config.source, config.line_of("bibliography")
            read_keys(checked_file(config.root / name, config.root, where, line))
        except PubkitError as exc:
            problems.extend(exc.diagnostics)
    if problems:
        raise ConfigError(problems)


def for_lesson(config: Config, lesson: Lesson) -> Bibliography:
    """The bibliography of a lesson: the course's (pubkit.yaml's ``bibliography``) and
    the lesson's own (its front matter's, relative to it). Raises :class:`PubkitError` at
    the file and line of a fault."""
    root = config.root
    files = [
        (root / name, config.source, config.line_of("bibliography")) for name in config.bibliography
    ]
    line = lesson.field_lines.get("bibliography")
    files += [(lesson.path.parent / name, lesson.path, line) for name in lesson.bibliography]
    problems: list[Diagnostic] = []
    keys: set[str] = set()
    paths: list[Path] = []
    for path, where, at in files:
        try:
            keys |= read_keys(checked_file(path, root, where, at))
        except PubkitError as exc:
            problems.extend(exc.diagnostics)
            continue
        paths.append(path.resolve())
    if problems:
        raise PubkitError(problems)
    language = lesson.language or config.language
    style = style_path(config.csl, root)
    return Bibliography(tuple(dict.fromkeys(paths)), frozenset(keys), style, language)


def inputs(config: Config, lesson: Lesson) -> list[Path]:
    """The files a lesson's citations are set from, as far as they exist: its
    bibliographies and the project's style; a lesson's build key includes them."""
    written = [config.root / name for name in config.bibliography]
    written += [lesson.path.parent / name for name in lesson.bibliography]
    style = style_path(config.csl, config.root)
    if not style.is_relative_to(builtin_styles()):  # pubkit's own are the theme's
        written.append(style)
    return [path for path in written if path.is_file()]


def checked_file(path: Path, root: Path, where: Path | None, line: int | None) -> Path:
    """``path`` if it is a bibliography file of the project."""
    resolved = path.resolve()
    shown = path.name
    if not resolved.is_relative_to(root.resolve()):
        raise PubkitError.at(where, line, f"bibliography '{shown}': outside the project")
    if not resolved.is_file():
        raise PubkitError.at(where, line, f"bibliography '{shown}': no such file")
    if resolved.suffix.lower() not in FORMATS:
        kinds = ", ".join(FORMATS)
        raise PubkitError.at(where, line, f"bibliography '{shown}': expected a file ending {kinds}")
    if resolved.stat().st_size > MAX_BYTES:
        raise PubkitError.at(where, line, f"bibliography '{shown}': larger than 16 MB")
    return resolved


def read_keys(path: Path) -> frozenset[str]:
    """The citation keys of bibliography ``path`` (read once per content)."""
    stat = path.stat()
    return _keys(path, stat.st_size, stat.st_mtime_ns)


@cache
def _keys(path: Path, _size: int, _mtime: int) -> frozenset[str]:
    kind = FORMATS[path.suffix.lower()]
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise PubkitError.at(path, None, f"not UTF-8 (byte {exc.start})") from None
    if kind == "csljson":
        items = _json_items(text, path)
    elif kind == "cslyaml":
        mapping = load_mapping(text, path, loader_class=FAST_LOADER)
        listed = mapping.values.get("references")
        if not isinstance(listed, list):
            raise PubkitError.at(path, mapping.line, "expected 'references:', a list of CSL items")
        items = listed
    else:
        items = _tex_items(text, path, kind)
    keys = [str(item.get("id")) for item in items if isinstance(item, dict) and item.get("id")]
    if len(keys) != len(items):
        raise PubkitError.at(path, None, "every entry needs an id (its citation key)")
    return frozenset(keys)


def _json_items(text: str, path: Path) -> list[Any]:
    try:
        items = json.loads(text)
    except json.JSONDecodeError as exc:
        raise PubkitError.at(path, exc.lineno, f"JSON: {exc.msg}") from None
    if isinstance(items, dict) and isinstance(items.get("items"), list):
        items = items["items"]
    if not isinstance(items, list):
        raise PubkitError.at(path, 1, "expected a list of CSL items")
    return items


_ERROR_AT = re.compile(r'Error at (?:"[^"]*" )?\(line (\d+), column \d+\):\s*(.*)', re.S)
_ENTRY = re.compile(r"^[ \t]*@(\w+)\s*[{(]\s*([^,\s]*)", re.M)


def _tex_items(text: str, path: Path, kind: str) -> list[Any]:
    """BibLaTeX or BibTeX read by pandoc (its citeproc reads it the same way), into CSL."""
    from pypandoc import get_pandoc_path

    done = subprocess.run(
        [get_pandoc_path(), "-f", kind, "-t", "csljson"],
        input=text.encode("utf-8"),
        capture_output=True,
        timeout=60,
        check=False,
    )
    if done.returncode == 0:
        items: list[Any] = json.loads(done.stdout)
        return items
    said = done.stderr.decode("utf-8", "replace").strip()
    found = _ERROR_AT.search(said)
    if not found:
        raise PubkitError.at(
            path,
            None,
            f"does not read as {kind}: {said.splitlines()[0] if said else 'no reason given'}",
        )
    line, why = int(found.group(1)), " ".join(found.group(2).split()) or "unreadable"
    if "end of input" in why:  # pandoc reports an entry left open where the file ends
        line, why = _unclosed(text) or (line, why)
    return _raise(path, line, why)


def _unclosed(text: str) -> tuple[int, str] | None:
    """The entry whose braces never close: where it starts, and its key."""
    starts = list(_ENTRY.finditer(text))
    for start, following in zip(starts, [*starts[1:], None], strict=True):
        end = following.start() if following else len(text)
        chunk = text[start.start() : end]
        if chunk.count("{") + chunk.count("(") > chunk.count("}") + chunk.count(")"):
            line = text.count("\n", 0, start.start()) + 1
            return line, f"entry '{start.group(2)}' is never closed (a brace is missing)"
    return None


def _raise(path: Path, line: int, why: str) -> list[Any]:
    raise PubkitError.at(path, line, f"does not read as a bibliography: {why}")
