"""Turn failures into diagnostics a user can act on: ``path:line: error: message``."""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Self


class Severity(StrEnum):
    ERROR = "error"
    WARNING = "warning"


def display_path(path: Path) -> str:
    """Show ``path`` relative to the working directory when it lies below it."""
    try:
        relative = os.path.relpath(path)
    except ValueError:  # another drive on Windows
        return str(path)
    return str(path) if relative.startswith("..") else relative


@dataclass(frozen=True)
class Diagnostic:
    """One message about one place in one file."""

    path: Path | None
    line: int | None
    message: str
    severity: Severity = Severity.ERROR

    def __str__(self) -> str:
        where = display_path(self.path) if self.path else "pubkit"
        if self.path and self.line:
            where = f"{where}:{self.line}"
        return f"{where}: {self.severity.value}: {self.message}"

    @property
    def is_error(self) -> bool:
        return self.severity is Severity.ERROR

    def as_error(self) -> Diagnostic:
        """This diagnostic as an error (``--strict``)."""
        return Diagnostic(self.path, self.line, self.message, Severity.ERROR)


def error(path: Path | None, line: int | None, message: str) -> Diagnostic:
    return Diagnostic(path, line, message, Severity.ERROR)


def warning(path: Path | None, line: int | None, message: str) -> Diagnostic:
    return Diagnostic(path, line, message, Severity.WARNING)


class PubkitError(Exception):
    """An error the user can fix. The CLI prints its diagnostics without a traceback."""

    exit_code = 1

    def __init__(self, diagnostics: Iterable[Diagnostic]) -> None:
        self.diagnostics = tuple(diagnostics)
        super().__init__("\n".join(str(d) for d in self.diagnostics))

    @classmethod
    def at(cls, path: Path | None, line: int | None, message: str) -> Self:
        return cls([error(path, line, message)])


class ConfigError(PubkitError):
    """``pubkit.yaml`` or a theme is unusable: nothing can be built."""

    exit_code = 2


class LessonError(PubkitError):
    """One lesson cannot be built; the rest of the course still can."""
