"""Turn rendered editions into files: atomic writes, the build record and the manifest.

The build record (:data:`STATE_NAME`) keeps, for each lesson and module collection, the
content hash of everything its outputs were made from (:class:`Inputs`) and its manifest
entry: what is unchanged and intact is not built again.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import shutil
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from functools import cache, cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pubkit import __version__
from pubkit.editions import EDITIONS
from pubkit.sources import bibliography
from pubkit.sources.config import Config, load_config
from pubkit.sources.manuscript import Lesson, Module
from pubkit.sources.theme import Theme

if TYPE_CHECKING:
    from pubkit.course.lessons import LessonOutcome
    from pubkit.course.modulebook import Collected, Collecting, Fragment, Part
    from pubkit.document.render import Rendered

MANIFEST_NAME = "manifest.json"
STATE_NAME = ".pubkit-state.json"
#: Where pubkit keeps what it needs between builds, inside the output folder.
CACHE_DIR = ".pubkit"
#: The build record's layout; a record of another layout is ignored (everything rebuilds).
STATE_FORMAT = 3


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def write_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to a temporary file beside ``path`` and rename it into place.

    A crash or Ctrl-C leaves either the old file or the new one, never half of one.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    # Named here, created inside the try: a Ctrl-C that lands while the file is being
    # created still has it removed (mkstemp could create it and be interrupted before
    # saying its name).
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
    try:
        with temporary.open("xb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        temporary.chmod(0o644)
        temporary.replace(path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def write_if_changed(path: Path, data: bytes) -> bool:
    """Write ``data`` unless ``path`` already holds it (so its time stamp tells when its
    content last changed); True when written."""
    try:
        if path.read_bytes() == data:
            return False
    except OSError:
        pass
    write_atomic(path, data)
    return True


def write_json(path: Path, value: Any, *, indent: bool = True) -> None:
    """Write ``value`` as JSON unless the file already holds it: indented for people to
    read (the manifest), or not (the build record: json's C encoder writes only that,
    ten times faster)."""
    options: dict[str, Any] = {"indent": 2} if indent else {"separators": (",", ":")}
    text = json.dumps(value, ensure_ascii=False, **options) + "\n"
    write_if_changed(path, text.encode("utf-8"))


def read_json(path: Path) -> Any:
    """A previous run's JSON, or None when there is none or it is unreadable."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def outputs_intact(out: Path, editions: Mapping[str, Mapping[str, Any]]) -> bool:
    """True when every recorded output file still exists with its recorded size."""
    for record in editions.values():
        path = out / record["path"]
        try:
            if path.stat().st_size != record["bytes"]:
                return False
        except OSError:
            return False
    return True


def file_stamps(files: Iterable[Path], root: Path) -> dict[str, list[Any]]:
    """What a lesson's images (and other files it pulls in) were when it was set, by their
    paths under ``root``: size, modification time and content hash."""
    stamps, root = {}, root.resolve()
    for path in files:
        info = path.stat()
        key = path.relative_to(root).as_posix() if path.is_relative_to(root) else str(path)
        stamps[key] = [info.st_size, info.st_mtime_ns, sha256(path.read_bytes())]
    return stamps


def files_unchanged(stamps: Mapping[str, list[Any]], root: Path) -> bool:
    """Whether every file in ``stamps`` (:func:`file_stamps`) still holds what it held: its
    size and time the same, or else its content (a file saved again unchanged)."""
    for name, (size, mtime, digest) in stamps.items():
        path = root / name
        try:
            info = path.stat()
            if (info.st_size, info.st_mtime_ns) != (size, mtime) and (
                info.st_size != size or sha256(path.read_bytes()) != digest
            ):
                return False
        except OSError:
            return False
    return True


def fingerprint(parts: Iterable[bytes | str]) -> str:
    digest = hashlib.sha256()
    for part in parts:
        data = part.encode("utf-8") if isinstance(part, str) else part
        digest.update(len(data).to_bytes(8, "big"))
        digest.update(data)
    return digest.hexdigest()


def output_path(lesson: Lesson, edition: str) -> Path:
    """Where a lesson's edition goes, relative to the output folder."""
    suffix = EDITIONS[edition].suffix
    return Path(edition) / lesson.module.folder.name / (lesson.path.stem + suffix)


@dataclass(frozen=True)
class Inputs:
    """What every output of this build depends on, besides its own manuscripts."""

    config: Config
    theme: Theme
    names: tuple[str, ...]
    date: str | None
    strict: bool
    jobs: int
    #: Whether each EPUB is run through EPUBCheck before it is written.
    validate: bool = True

    @cached_property
    def digest(self) -> str:
        """pubkit's code and version, the theme's files, the settings and editions asked for
        (and ``--strict``, which looks at every lesson's warnings afresh, and
        ``--no-validate``, whose outputs a validating build checks again)."""
        parts: list[bytes | str] = [__version__, code_digest(), theme_digest(self.theme)]
        parts += [",".join(self.names), self.date or "", "strict" if self.strict else ""]
        parts.append("" if self.validate else "unvalidated")
        # pubkit.yaml and settings; where lessons are set (a cluster) changes no byte.
        parts.append(repr(replace(self.config, lines={}, scheduler=None)))
        return fingerprint(parts)

    def key(self, lesson: Lesson, links: str = "") -> str:
        """The lesson's content hash: a change to any input rebuilds it, ``links`` included
        (what it takes from the lessons it links to, :func:`pubkit.course.links.link_key`)
        and the bibliographies and style its citations are set from."""
        source = (lesson.path.read_bytes(), lesson.module.source.read_bytes())
        cited = [path.read_bytes() for path in bibliography.inputs(self.config, lesson)]
        return fingerprint([self.digest, *source, links, *cited])


def write_output(out: Path, relative: Path, rendered: Rendered) -> dict[str, Any]:
    """Write one output file; its manifest record."""
    write_atomic(out / relative, rendered.data)
    record: dict[str, Any] = {
        "path": relative.as_posix(),
        "bytes": len(rendered.data),
        "sha256": sha256(rendered.data),
    }
    if rendered.pages is not None:
        record["pages"] = rendered.pages
    return record


def write_lesson(lesson: Lesson, out: Path, outcome: LessonOutcome) -> dict[str, Any]:
    """Write the lesson's editions, thumbnail and cached fragment; its manifest entry."""
    from pubkit.document.render import Rendered

    written = {
        name: write_output(out, output_path(lesson, name), result)
        for name, result in outcome.rendered.items()
    }
    # The instructors' editions are listed apart from the learners'.
    editions = {name: r for name, r in written.items() if not EDITIONS[name].instructor}
    instructors = {name: r for name, r in written.items() if EDITIONS[name].instructor}
    thumbnail = Path("thumbnails") / lesson.module.folder.name / (lesson.path.stem + ".png")
    write_atomic(out / fragment_pages_path(lesson.id), outcome.fragment.pdf)
    write_atomic(out / fragment_path(lesson.id), outcome.fragment.to_json())
    figures = outcome.figures
    return {
        "id": lesson.id,
        "module": {"number": lesson.module.number, "title": lesson.module.title},
        "lesson": lesson.number,
        "title": lesson.title,
        "subtitle": lesson.subtitle,
        "language": outcome.fragment.language,
        "words": figures.words,
        "minutes": figures.minutes,
        "pages": figures.pages,
        "has_takeaways": outcome.document.has_takeaways,
        "editions": editions,
        **({"instructor_editions": instructors} if instructors else {}),
        "thumbnail": write_output(out, thumbnail, Rendered(outcome.thumbnail)),
    }


def entry_editions(entry: Mapping[str, Any]) -> dict[str, Any]:
    """A lesson's manifest entry's editions: the learners' and the instructors' (listed
    apart), by name."""
    return {**entry.get("editions", {}), **entry.get("instructor_editions", {})}


def entry_files(entry: Mapping[str, Any]) -> dict[str, Any]:
    """Every file a lesson's manifest entry records: its editions and its thumbnail."""
    return {**entry_editions(entry), "thumbnail": entry["thumbnail"]}


def fragment_path(lesson_id: str) -> Path:
    """Where a lesson's :class:`Fragment` is kept, written after its book pages
    (:func:`fragment_pages_path`): the JSON is there only when both are."""
    return Path(CACHE_DIR) / "fragments" / f"{lesson_id}.json"


def fragment_pages_path(lesson_id: str) -> Path:
    """Where a lesson's book pages (:attr:`Fragment.pdf`) are kept."""
    return fragment_path(lesson_id).with_suffix(".pdf")


def part_path(module_folder: str, name: str) -> Path:
    """Where a part of a module's last collections is kept (``numbers.pdf``: its book's
    numbered pages; :data:`pubkit.course.modulebook.PARTS`)."""
    return Path(CACHE_DIR) / "collections" / f"{module_folder}.{name}"


def read_fragment(out: Path, lesson_id: str) -> Fragment:
    from pubkit.course.modulebook import Fragment

    pages = (out / fragment_pages_path(lesson_id)).read_bytes()
    return Fragment.from_json((out / fragment_path(lesson_id)).read_bytes(), pages)


def read_parts(out: Path, module_folder: str, keys: Mapping[str, str]) -> dict[str, Part]:
    """The parts of a module's last collections still in ``out`` (``keys``: each one's
    key, by name, as its build record keeps them)."""
    from pubkit.course.modulebook import Part

    parts = {}
    for name, key in keys.items():
        path = out / part_path(module_folder, name)
        if path.is_file():
            parts[name] = Part(key, path.read_bytes())
    return parts


def read_collecting(
    out: Path, module: Module, members: Sequence[Lesson], key: str, kept: Mapping[str, str]
) -> Collecting:
    """What a module's collection is set from, as ``out`` keeps it: its lessons'
    fragments, and the parts of its last collections (``kept``: their keys)."""
    fragments = [read_fragment(out, lesson.id) for lesson in members]
    return module, key, fragments, read_parts(out, module.folder.name, kept)


def write_collection(
    out: Path,
    item: Collecting,
    members: Sequence[Lesson],
    outcomes: Mapping[str, Rendered],
    collected: Collected,
    inputs: str,
) -> dict[str, Any]:
    """Write a module's collected editions (``outcomes``) and the parts of them that
    changed (the next build may take them again); the module's build record (``inputs``:
    the digest of what every output depends on)."""
    from pubkit.course import modulebook

    module, key, _, kept = item
    entry = {
        "module": {"number": module.number, "title": module.title},
        "lessons": [lesson.id for lesson in members],
        "editions": {
            name: write_output(out, modulebook.output_path(module, name), rendered)
            for name, rendered in outcomes.items()
        },
    }
    for name, part in collected.parts.items():
        if part != kept.get(name):
            write_atomic(out / part_path(module.folder.name, name), part.data)
    parts = {"keys": {name: part.key for name, part in collected.parts.items()}, "inputs": inputs}
    return {"key": key, "entry": entry, "parts": parts}


def read_state(out: Path) -> dict[str, Any]:
    """The previous build's record of what it built from what; empty when there is none,
    or when it was written by another version of this format."""
    state = read_json(out / STATE_NAME)
    if not isinstance(state, dict) or state.get("format") != STATE_FORMAT:
        return {"format": STATE_FORMAT, "lessons": {}, "collections": {}}
    return state


#: A theme file larger than this (a font) is known by its size and modification time, not
#: read whole on every build: the CJK fonts alone are 110 MB, a quarter of a second of hashing
#: in a no-op rebuild that otherwise takes a quarter of a second, and the other fonts
#: 20 ms more. Stylesheets, templates and tokens are smaller, and read.
READ_WHOLE_BYTES = 64 << 10


def theme_digest(theme: Theme) -> str:
    """One digest of every file of the theme (stylesheets, templates, fonts)."""
    parts: list[bytes | str] = []
    for folder in theme.folders:
        for path in sorted(p for p in folder.rglob("*") if p.is_file()):
            info = path.stat()
            large = info.st_size > READ_WHOLE_BYTES
            content = f"{info.st_size}:{info.st_mtime_ns}" if large else path.read_bytes()
            parts += [path.relative_to(folder).as_posix(), content]
    return fingerprint(parts)


@cache
def code_digest() -> str:
    """One digest of pubkit's own code, so that a changed pubkit rebuilds everything even
    before its version number changes (but for the preview's server, which shapes no
    output)."""
    package = Path(__file__).parent
    return fingerprint(
        part
        for path in code_files()
        for part in (path.relative_to(package).as_posix(), path.read_bytes())
    )


@cache
def code_files() -> tuple[Path, ...]:
    """pubkit's own code that shapes its outputs: its Python and Lua files but the
    preview server's."""
    package = Path(__file__).parent
    return tuple(
        sorted(
            p
            for p in package.rglob("*")
            if p.suffix in {".py", ".lua"} and p.is_file() and p.parent.name != "preview"
        )
    )


def manifest(
    config: Config,
    out: Path,
    entries: dict[str, Mapping[str, Any]],
    state: Mapping[str, Any],
    kept: set[str] | None,
) -> dict[str, Any]:
    """This run's lessons' ``entries`` (by id), plus earlier outputs still on disk, and
    the module collections.

    ``kept`` limits the earlier outputs to those ids (a whole-course build keeps only
    lessons that failed this time); None keeps every one (a build of some lessons).
    """
    entries = dict(entries)
    for lesson_id, record in state["lessons"].items():
        if lesson_id in entries or (kept is not None and lesson_id not in kept):
            continue
        if outputs_intact(out, entry_files(record["entry"])):
            entries[lesson_id] = record["entry"]
    collections = [
        record["entry"]
        for record in state["collections"].values()
        if outputs_intact(out, record["entry"]["editions"])
    ]
    return {
        "generator": f"pubkit {__version__}",
        "course": {
            "title": config.title,
            "publisher": config.publisher,
            "language": config.language,
        },
        "lessons": sorted(entries.values(), key=lambda e: (e["module"]["number"], e["lesson"])),
        "collections": sorted(collections, key=lambda e: e["module"]["number"]),
    }


def clean(root: Path, out: Path | None = None) -> list[Path]:
    """Remove what pubkit writes to the output folder (and the folder, if that empties it);
    anything else there stays. Returns what was removed."""
    from pubkit.course import downloads

    config, _warnings = load_config(root)
    out = (out or config.output_dir).resolve()
    made = [*EDITIONS, "collections", "thumbnails", downloads.FONTS_DIR.as_posix(), CACHE_DIR]
    made += [downloads.INDEX_NAME, MANIFEST_NAME, STATE_NAME]
    removed = []
    for name in made:
        path = out / name
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        elif path.exists() or path.is_symlink():
            path.unlink()
        else:
            continue
        removed.append(path)
    for folder in (out / downloads.FONTS_DIR.parent, out):
        if folder.is_dir() and not any(folder.iterdir()):
            folder.rmdir()
    return removed
