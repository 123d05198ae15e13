"""Turn a lesson's citations into rendered ones and its References section, with pandoc's
citeproc and the lesson's bibliography (:mod:`pubkit.sources.bibliography`).

pandoc's CommonMark reader has no citation syntax, so pubkit reads it, as pandoc's
Markdown does: ``[@key]``, ``[see @a, p. 33; -@b]`` (``-`` leaves the author out), and
``@key`` in running text ("Knuth (1984) says"), the last only for a key the bibliography
has (an ``@name`` that is no key is left as written). Each becomes a pandoc ``Cite``;
citeproc renders it in the style (``csl:``), linked to its entry in the References at the
end of the lesson, in the lesson's language. A bracketed key the bibliography lacks is an
error at its line.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from pubkit.document import pandoc
from pubkit.document.ast import AST, identifiers, inlines, rewrite_words, unique_name
from pubkit.document.blocks import REFERENCES_CLASS
from pubkit.errors import Diagnostic, error
from pubkit.sources.bibliography import Bibliography

#: A citation key, as pandoc reads one: a letter, digit or ``_`` first and last, with
#: internal punctuation allowed (``knuth:1984``, ``doe-2020a``).
KEY = r"[\w](?:[\w:.#$%&+?<>~/-]*[\w])?"
_GROUP = re.compile(r"\[([^\[\]]*?-?@[^\[\]]*)\]")
_ITEM = re.compile(
    rf"^\s*(?P<prefix>(?:.*\s)?)(?P<minus>-?)@(?P<key>{KEY})(?P<suffix>.*?)\s*$", re.S
)
_IN_TEXT = re.compile(rf"(?<![\w@.\[-])@({KEY})")
_RUN = frozenset({"Str", "Space", "SoftBreak"})


def cite(
    ast: AST,
    bibliography: Bibliography,
    words: Mapping[str, Any],
    line_of: Callable[[str], int | None],
    path: Path,
) -> tuple[AST, list[Diagnostic]]:
    """The lesson with its citations rendered and its References at the end (``ast``
    itself unchanged when it cites nothing); and the errors (a key no bibliography has,
    a citation where the lesson has no bibliography)."""
    problems: list[Diagnostic] = []
    found = _Finder(bibliography, line_of, path, problems)
    rewrite_words(ast["blocks"], "@", found.cited)
    if problems or not found.count:
        return ast, problems
    output = pandoc.citeproc(
        ast,
        source=path,
        bibliography=list(bibliography.files),
        csl=bibliography.style,
        language=bibliography.language,
    ).wait()
    cited: AST = pandoc.json_value(output)
    _section(cited["blocks"], str(words.get("references", "References")))
    return cited, problems


class _Finder:
    def __init__(
        self,
        bibliography: Bibliography,
        line_of: Callable[[str], int | None],
        path: Path,
        problems: list[Diagnostic],
    ) -> None:
        self.bibliography = bibliography
        self.line_of = line_of
        self.path = path
        self.problems = problems
        self.count = 0

    def cited(self, inlines: list[Any]) -> list[Any]:
        """``inlines`` with each citation in a run of words made a ``Cite``."""
        result: list[Any] = []
        run: list[Any] = []
        for item in [*inlines, None]:
            if isinstance(item, dict) and item.get("t") in _RUN:
                run.append(item)
                continue
            if run:
                result.extend(self._run(run))
                run = []
            if item is not None:
                result.append(item)
        return result

    def _run(self, run: list[Any]) -> list[Any]:
        text = "".join(item["c"] if item["t"] == "Str" else " " for item in run)
        if "@" not in text:
            return run
        pieces: list[Any] = []
        start = 0
        for match in _citations(text, self.bibliography.keys):
            citations = self._parsed(match)
            if citations is None:
                continue
            pieces += inlines(text[start : match.start()])
            pieces.append({"t": "Cite", "c": [citations, inlines(match.group(0))]})
            start = match.end()
            self.count += 1
        if not pieces:
            return run
        return pieces + inlines(text[start:])

    def _parsed(self, match: re.Match[str]) -> list[Any] | None:
        """The citations of a bracketed group or an in-text key; None when the brackets
        hold something else."""
        if not match.group(0).startswith("["):
            return [_citation(match.group(1), "AuthorInText", "", "")]
        items = []
        for part in match.group(1).split(";"):
            found = _ITEM.match(part)
            if not found:
                return None
            items.append(found)
        citations = []
        for found in items:
            key = found["key"]
            if key not in self.bibliography.keys:
                self._unknown(key)
            mode = "SuppressAuthor" if found["minus"] else "NormalCitation"
            citations.append(_citation(key, mode, found["prefix"], found["suffix"]))
        return citations

    def _unknown(self, key: str) -> None:
        files = ", ".join(p.name for p in self.bibliography.files)
        where = (
            f"no such key in {files}"
            if files
            else "the lesson has no bibliography (bibliography: in pubkit.yaml or its front matter)"
        )
        self.problems.append(
            error(self.path, self.line_of(f"@{key}"), f"citation “@{key}”: {where}")
        )


def _citations(text: str, keys: frozenset[str]) -> list[re.Match[str]]:
    """Bracketed groups, and in-text keys the bibliography has, in order."""
    groups = list(_GROUP.finditer(text))
    inside = [(m.start(), m.end()) for m in groups]
    in_text = [
        m
        for m in _IN_TEXT.finditer(text)
        if m.group(1) in keys and not any(a <= m.start() < b for a, b in inside)
    ]
    return sorted([*groups, *in_text], key=lambda m: m.start())


def _citation(key: str, mode: str, prefix: str, suffix: str) -> dict[str, Any]:
    return {
        "citationId": key,
        "citationPrefix": inlines(prefix.strip()),
        "citationSuffix": inlines(suffix.rstrip()),
        "citationMode": {"t": mode},
        "citationNoteNum": 1,
        "citationHash": 0,
    }


def _section(blocks: list[Any], title: str) -> None:
    """Put citeproc's list of references, in place, at the end of the lesson under its
    own heading ("References", in the lesson's language)."""
    index = next(
        (i for i, b in enumerate(blocks) if b["t"] == "Div" and b["c"][0][0] == "refs"), None
    )
    if index is None:
        return
    references = blocks.pop(index)
    heading_id = unique_name("references", identifiers(blocks))
    heading = {
        "t": "Header",
        "c": [2, [heading_id, ["references-heading"], []], inlines(title)],
    }
    blocks.append({"t": "Div", "c": [["", [REFERENCES_CLASS], []], [heading, references]]})
