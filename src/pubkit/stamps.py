"""A rebuild with nothing to do, answered from stamps: what a build read and wrote, by
size and modification time, and what a build that finds everything up to date prints.

A successful build records them (:func:`record`) in pubkit's cache on this machine, one
record per request (project, lessons, editions, settings, output folder). The next
``pubkit build`` of the same request stats those files (:func:`unchanged`); if not one
of them, nor any folder lessons or theme files are found in, has changed, it prints the
record's report and reads nothing else: no pubkit.yaml, no front matter, no theme. A
changed stamp, a missing record or anything unreadable means the whole build runs,
which then decides what is up to date from content hashes, as always.

This module imports little of Python's and only pubkit's version: the ``pubkit`` command
loads it before anything else, and every layer may use it (:func:`cache_home`).
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable, Mapping
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pubkit import __version__

#: The record's layout; a record of another layout is not read.
FORMAT = 1
#: A file changed this shortly before a build started may change again within the same
#: tick of its file system's clock (two seconds on FAT) without its time changing: a build
#: that read such a file leaves no record, and the next one reads everything again.
RACY_NS = 2_000_000_000
#: The environment that shapes a build's outputs besides its files and options.
ENVIRONMENT = ("SOURCE_DATE_EPOCH", "DASK_SCHEDULER_ADDRESS")


def cache_home() -> Path:
    """pubkit's cache on this machine: ``$PUBKIT_CACHE``, else ``$XDG_CACHE_HOME/pubkit``
    or ``~/.cache/pubkit``."""
    chosen = os.environ.get("PUBKIT_CACHE")
    if chosen:
        return Path(chosen)
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "pubkit"


def kept_between_builds(name: str) -> Path | None:
    """Where pubkit keeps ``name`` (drawn formulas, builds' stamps) from one build to the
    next: a folder of its cache; none when ``$PUBKIT_CACHE`` is set empty."""
    return None if os.environ.get("PUBKIT_CACHE") == "" else cache_home() / name


@dataclass(frozen=True)
class Report:
    """What a build that finds everything up to date prints."""

    #: Each lesson's and collection's line, in order: (what, how).
    ticks: tuple[tuple[str, str], ...]
    #: Lessons up to date.
    lessons: int
    #: Warnings, each with whether it is an error: (text, is_error).
    notes: tuple[tuple[str, bool], ...]
    manifest: Path


def request_key(
    root: Path,
    targets: Iterable[Path],
    formats: Iterable[str] | None,
    out: Path | str | None,
    settings: Mapping[str, Any],
    strict: bool,
    validate: bool,
) -> str:
    """One build request, as a name for its record: the same for the same project, lessons,
    editions, output folder, settings and environment, whatever the working folder."""
    request = {
        "root": str(root.resolve()),
        "targets": sorted(str(Path(t).resolve()) for t in targets),
        "formats": list(formats) if formats else None,
        "out": str(Path(out).resolve()) if out else None,
        "settings": sorted(settings.items()),
        "strict": strict,
        "validate": validate,
        "version": __version__,
        "environment": [os.environ.get(name) for name in ENVIRONMENT],
    }
    text = json.dumps(request, sort_keys=True, default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]


def _path(key: str) -> Path:
    """Where request ``key``'s record is kept; an OSError when nothing is kept."""
    if (folder := kept_between_builds("unchanged")) is None:
        raise OSError("PUBKIT_CACHE is empty: nothing is kept between builds")
    return folder / f"{key}.json"


def unchanged(key: str) -> Report | None:
    """The report of the last build of request ``key``, if every file it read or wrote
    and every folder it searched is as that build left it; else None."""
    try:
        record = json.loads(_path(key).read_bytes())
        if record["format"] != FORMAT:
            return None
        for name, (size, mtime) in record["files"].items():
            info = os.stat(name)
            if info.st_size != size or info.st_mtime_ns != mtime:
                return None
        for name, mtime in record["folders"].items():
            if os.stat(name).st_mtime_ns != mtime:
                return None
        report = record["report"]
        return Report(
            ticks=tuple((what, how) for what, how in report["ticks"]),
            lessons=report["lessons"],
            notes=tuple((text, is_error) for text, is_error in report["notes"]),
            manifest=Path(report["manifest"]),
        )
    except (OSError, ValueError, KeyError, TypeError):
        return None


def forget(key: str) -> None:
    """Drop request ``key``'s record: a build of it is under way, and may fail."""
    with suppress(OSError):
        _path(key).unlink(missing_ok=True)


def record(
    key: str,
    report: Report,
    *,
    read: Iterable[Path],
    searched: Iterable[Path],
    written: Path,
    started_ns: int,
) -> bool:
    """Keep ``report`` for request ``key`` with the stamps of the files the build
    ``read``, of every folder under the folders it ``searched`` (and the files in them),
    and of every file under the output folder it has ``written``. Nothing is kept when a
    file read changed after ``started_ns`` (less :data:`RACY_NS`). Whether it was kept."""
    files: dict[str, list[int]] = {}
    folders: dict[str, int] = {}
    try:
        for path in read:
            info = os.stat(path)
            files[str(path)] = [info.st_size, info.st_mtime_ns]
        for top in searched:
            _walk(Path(top), files, folders)
        newest = max([m for _, m in files.values()] + list(folders.values()), default=0)
        if newest >= started_ns - RACY_NS:
            return False
        _walk(written, files, {})
    except OSError:
        return False
    data = {
        "format": FORMAT,
        "files": files,
        "folders": folders,
        "report": {
            "ticks": report.ticks,
            "lessons": report.lessons,
            "notes": report.notes,
            "manifest": str(report.manifest),
        },
    }
    try:
        path = _path(key)
        temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            temporary.write_text(json.dumps(data, separators=(",", ":")), encoding="utf-8")
            temporary.replace(path)
        finally:
            temporary.unlink(missing_ok=True)
    except OSError:
        return False
    return True


def _walk(top: Path, files: dict[str, list[int]], folders: dict[str, int]) -> None:
    """Stamp ``top``'s folders (their times change as entries come and go) and files,
    through links to folders (a module folder may be one), each folder once."""
    seen: set[str] = set()
    for folder, subfolders, names in os.walk(top, followlinks=True):
        if (real := os.path.realpath(folder)) in seen:  # a link back up: a loop
            subfolders.clear()
            continue
        seen.add(real)
        folders[folder] = os.stat(folder).st_mtime_ns
        for name in names:
            path = os.path.join(folder, name)
            info = os.stat(path)
            files[path] = [info.st_size, info.st_mtime_ns]
