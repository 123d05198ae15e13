"""Read how a theme numbers a lesson's figures, tables and equations (``numbering.yaml``).

Each kind has a pattern: ``{n}``, its count among the lesson's of its kind, and if wanted
``{lesson}``, the lesson's number: ``"{lesson}.{n}"`` reads "Figure 50.2" and "(50.2)".
The same numbers stand in the lesson's editions and in its module's collection, where
``{lesson}`` tells one lesson's Figure 2 from another's. pubkit's own theme numbers
``{n}``; a publisher's ``styles/numbering.yaml`` changes any kind, and every fault is an
error at its line.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from pathlib import Path

from pubkit.errors import ConfigError, Diagnostic, PubkitError, error
from pubkit.sources.yamlsrc import FAST_LOADER, load_mapping

NUMBERING_FILE = "numbering.yaml"
#: What is numbered, and how unless the theme says otherwise.
DEFAULT = {"figure": "{n}", "table": "{n}", "equation": "{n}"}
PATTERN_HINT = "expected a pattern with {n}, and {lesson} if wanted, such as {lesson}.{n}"


def valid_numbering(pattern: object) -> bool:
    """Whether ``pattern`` numbers: a text with ``{n}``, and no field but ``{lesson}``."""
    if not isinstance(pattern, str) or "{n}" not in pattern:
        return False
    try:
        pattern.format(lesson=1, n=1)
    except (KeyError, IndexError, ValueError):
        return False
    return True


def load_numbering(folders: tuple[Path, ...]) -> Mapping[str, str]:
    """The theme's patterns: pubkit's, changed kind by kind by the publisher's file."""
    patterns = dict(DEFAULT)
    problems: list[Diagnostic] = []
    for source in reversed([f / NUMBERING_FILE for f in folders if (f / NUMBERING_FILE).is_file()]):
        try:
            mapping = load_mapping(
                source.read_text(encoding="utf-8"), source, loader_class=FAST_LOADER
            )
        except PubkitError as exc:
            problems.extend(exc.diagnostics)
            continue
        for kind, pattern in mapping.values.items():
            line = mapping.line_of(kind)
            if kind not in DEFAULT:
                close = difflib.get_close_matches(str(kind), list(DEFAULT), n=1)
                hint = f" (did you mean '{close[0]}'?)" if close else ""
                known = ", ".join(DEFAULT)
                problems.append(
                    error(source, line, f"unknown kind '{kind}'{hint}; numbered are {known}")
                )
            elif not valid_numbering(pattern):
                problems.append(error(source, line, f"{kind}: {PATTERN_HINT}; got {pattern!r}"))
            else:
                patterns[kind] = pattern
    if problems:
        raise ConfigError(problems)
    return patterns
