"""The preview's state: what the last builds said about every lesson, and the builds
themselves, one after another, as saves come in: a saved lesson's own manuscript first,
so that its pages come back soonest, then what depends on it."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pubkit.editions import EDITIONS
from pubkit.errors import Diagnostic, PubkitError
from pubkit.output import MANIFEST_NAME, entry_editions, read_json
from pubkit.preview.builder import Builder, Built, lesson_id_of
from pubkit.preview.pages import Pages


@dataclass
class Session:
    """The preview at work: what the last builds said, and who is listening."""

    builder: Builder
    out: Path
    #: The lessons asked for (none: the whole course).
    targets: tuple[Path, ...]
    say: Callable[[str, bool], None]
    #: The last manifest read: every built lesson and collection.
    manifest: Mapping[str, Any] = field(default_factory=dict)
    #: Every lesson the last whole build saw, by id, with its manuscript.
    sources: dict[str, Path] = field(default_factory=dict)
    failed: set[str] = field(default_factory=set)
    #: The last build's messages about each lesson (by id; "" for the course).
    messages: dict[str, list[dict[str, str]]] = field(default_factory=dict)
    #: Lessons being built now, and whether anything is.
    building: set[str] = field(default_factory=set)
    busy: bool = False
    #: Seconds the last build took from the save that started it.
    took: float | None = None
    listeners: set[asyncio.Queue[str | None]] = field(default_factory=set)
    closing: bool = False
    pages: Pages = field(default_factory=Pages)
    _pending: set[Path] = field(default_factory=set)
    _since: float = 0.0
    _wake: asyncio.Event = field(default_factory=asyncio.Event)

    def __post_init__(self) -> None:
        self.manifest = _read_manifest(self.out)

    # What the page is told

    def snapshot(self) -> dict[str, Any]:
        """Every lesson by module, with its reading figures, editions and state."""
        entries = {entry["id"]: entry for entry in self.manifest.get("lessons", ())}
        known = self.sources.keys() or entries.keys()
        modules: dict[str, dict[str, Any]] = {}
        for lesson_id in sorted({*known, *self.failed, *self.building}):
            entry = entries.get(lesson_id, {})
            folder = lesson_id.split("/", 1)[0]
            module = modules.setdefault(
                folder, {"folder": folder, **entry.get("module", {"title": folder})}
            )
            if "number" in entry.get("module", {}):
                module.update(entry["module"])
            module.setdefault("lessons", []).append(self._lesson(lesson_id, entry))
        return {
            "course": self.manifest.get("course", {}),
            "busy": self.busy,
            "took": self.took,
            "messages": self.messages.get("", []),
            "modules": list(modules.values()),
            "downloads": "index.html" if (self.out / "index.html").is_file() else None,
        }

    def _lesson(self, lesson_id: str, entry: Mapping[str, Any]) -> dict[str, Any]:
        if lesson_id in self.building:
            state = "building"
        elif lesson_id in self.failed:
            state = "failed"
        else:
            state = "up to date"
        editions = {
            name: {
                "version": edition["sha256"][:16],
                "pages": edition.get("pages"),
                "path": edition["path"],
                "paged": EDITIONS[name].paged if name in EDITIONS else False,
                "description": EDITIONS[name].description if name in EDITIONS else name,
            }
            for name, edition in entry_editions(entry).items()
        }
        figures = {key: entry[key] for key in ("words", "minutes", "pages") if key in entry}
        return {
            "id": lesson_id,
            "number": entry.get("lesson"),
            "title": entry.get("title") or lesson_id.split("/", 1)[-1],
            **figures,
            "state": state,
            "messages": self.messages.get(lesson_id, []),
            "editions": editions,
        }

    def publish(self) -> None:
        data = json.dumps(self.snapshot())
        for listener in self.listeners:
            listener.put_nowait(data)

    # Building

    def changed(self, paths: Iterable[Path]) -> None:
        """Files were saved: build again once the build under way is done."""
        if not self._pending:
            self._since = time.monotonic()
        self._pending.update(paths)
        self._wake.set()

    async def rebuilding(self) -> None:
        """Build the course now, and again after every burst of saves: a lesson's own
        manuscript first (so that its pages come back soonest), then whatever else
        depends on it (its module's collection, the downloads page)."""
        self._since = time.monotonic()
        await self._build(self.targets, mark={e["id"] for e in self.manifest.get("lessons", ())})
        whole_due = False
        while not self.closing:
            if not self._pending:
                if whole_due:
                    whole_due = False
                    await self._build(self.targets, mark=set())
                    continue
                self._wake.clear()
                await self._wake.wait()
                continue
            changes, self._pending = self._pending, set()
            lessons = self._lessons(changes)
            if lessons:
                await self._build(
                    lessons, mark={i for i, p in self.sources.items() if p in lessons}
                )
                whole_due = not self.targets  # lessons alone are all that was asked for
            else:
                await self._build(self.targets, mark=set(self.sources))

    def _lessons(self, changes: set[Path]) -> tuple[Path, ...]:
        """The manuscripts saved, when only known lessons' manuscripts were (anything else,
        such as pubkit.yaml, a module.yaml, the theme or a figure, asks for a whole
        build, which finds what depends on it)."""
        known = set(self.sources.values())
        if all(path in known and path.is_file() for path in changes):
            return tuple(sorted(changes))
        return ()

    async def _build(self, targets: Sequence[Path], mark: set[str]) -> None:
        self.building, self.busy = set(mark), True
        self.publish()
        loop = asyncio.get_running_loop()

        def reached(label: str, _how: str) -> None:
            loop.call_soon_threadsafe(self._reached, label)

        try:
            built = await asyncio.to_thread(self.builder.build, targets, reached)
        except PubkitError as exc:  # the build process itself is gone
            built = Built(exc.diagnostics, (), None)
        self.took = time.monotonic() - self._since
        self._since = time.monotonic()
        self._take(built, whole=tuple(targets) == self.targets)
        self.building, self.busy = set(), False
        self.publish()
        self._tell(built)

    def _reached(self, label: str) -> None:
        if label in self.building:
            self.building.discard(label)
            self.publish()

    def _take(self, built: Built, whole: bool) -> None:
        """What a build says: its manifest, its lessons, its failures and messages."""
        if built.manifest is not None:
            self.manifest = _read_manifest(self.out)
        if whole and built.manifest is not None:
            self.sources = dict(built.sources)
        failed = {lesson_id_of(path) for path in built.failed}
        asked = {lesson_id for lesson_id, _ in built.sources}
        if whole or built.manifest is None:
            self.failed, self.messages = failed, {}
        else:  # some lessons only: what the others last said stands
            self.failed = (self.failed - asked) | failed
            self.messages = {key: value for key, value in self.messages.items() if key not in asked}
            self.messages.pop("", None)
        by_source = {path: lesson_id for lesson_id, path in self.sources.items()}
        for path in built.failed:
            by_source.setdefault(path, lesson_id_of(path))
        for diagnostic in built.diagnostics:
            where = by_source.get(diagnostic.path.resolve(), "") if diagnostic.path else ""
            self.messages.setdefault(where, []).append(_message(diagnostic))

    def _tell(self, built: Built) -> None:
        """The terminal hears what the page shows."""
        for diagnostic in built.diagnostics:
            self.say(str(diagnostic), diagnostic.is_error)
        if built.manifest is None:
            self.say("preview: nothing could be built; waiting for the next save", True)
        else:
            failed = f"; {len(built.failed)} failed" if built.failed else ""
            self.say(f"preview: {_done(built.rendered)} in {self.took:.1f} s{failed}", False)

    # Files of the build folder

    def edition_file(self, lesson_id: str, edition: str) -> tuple[Path, str] | None:
        """The lesson's built file of ``edition``, and its version; none if there is none."""
        for entry in self.manifest.get("lessons", ()):
            if entry["id"] == lesson_id and edition in entry_editions(entry):
                item = entry_editions(entry)[edition]
                path = (self.out / item["path"]).resolve()
                if path.is_relative_to(self.out) and path.is_file():
                    return path, item["sha256"][:16]
        return None


def _done(rendered: Sequence[str]) -> str:
    """What a build set: named when few, counted when many."""
    if not rendered:
        return "up to date"
    if len(rendered) <= 3:
        return "built " + ", ".join(rendered)
    collections = sum(label.startswith("collections/") for label in rendered)
    lessons = len(rendered) - collections
    counts = [f"{lessons} lesson{'s' * (lessons != 1)}"] if lessons else []
    counts += [f"{collections} collection{'s' * (collections != 1)}"] if collections else []
    return "built " + " and ".join(counts)


def _message(diagnostic: Diagnostic) -> dict[str, str]:
    return {"severity": diagnostic.severity.value, "text": str(diagnostic)}


def _read_manifest(out: Path) -> Mapping[str, Any]:
    data = read_json(out / MANIFEST_NAME)
    return data if isinstance(data, dict) else {}
