"""Turn an empty folder into a course a new user can build at once: ``pubkit new``.

The course is package data (``scaffold/course/``): pubkit.yaml with every key commented,
one module with one lesson showing the header fields and the takeaways box, and
``styles/custom.css`` with a commented example.
"""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path

from pubkit.errors import ConfigError, error

#: Files stored under another name, so that tools do not treat them as the package's own.
_RENAMED = {"dot-gitignore": ".gitignore"}


def _sources() -> dict[Path, bytes]:
    """Each file of the scaffold, by its path in the new course."""
    root = Path(str(resources.files("pubkit") / "scaffold" / "course"))
    files = {}
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        relative = path.relative_to(root)
        files[relative.with_name(_RENAMED.get(relative.name, relative.name))] = path.read_bytes()
    return files


def course_title(folder: Path) -> str:
    """A title from the folder's name: ``intro-to-statistics`` → ``Intro To Statistics``."""
    words = folder.resolve().name.replace("-", " ").replace("_", " ").split()
    return " ".join(word[:1].upper() + word[1:] for word in words) or "Untitled Course"


def new_course(folder: Path) -> list[Path]:
    """Write the scaffold into ``folder`` (created if need be); returns the files written.

    Refuses, writing nothing, when any of those files exists already.
    """
    if folder.exists() and not folder.is_dir():
        raise ConfigError([error(folder, None, "not a folder")])
    files = _sources()
    taken = [folder / relative for relative in files if (folder / relative).exists()]
    if taken:
        raise ConfigError(
            [
                error(path, None, "already exists; pubkit new writes only new files")
                for path in taken
            ]
        )
    title = json.dumps(course_title(folder), ensure_ascii=False)  # a YAML string, quoted
    written = []
    for relative, data in files.items():
        if relative.name == "pubkit.yaml":
            data = data.replace(b"$title", title.encode())
        path = folder / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("xb") as stream:  # never over a file that appeared meanwhile
            stream.write(data)
        written.append(path)
    return written
