"""Turn rendered editions into files: atomic writes, the build record and the manifest.

Outputs are written to a local folder (whole files by atomic renames) or, by a cluster's
worker that reaches it, straight to a store (:class:`StoreFolder`, one put a file); and
read from a folder that may be a store's mirror (:mod:`pubkit.store`), which fetches the
store's files it lacks when they are read (:func:`read_output`, :func:`stored_size`).

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
from functools import cache, cached_property, lru_cache
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
#: In the local mirror of a store (:mod:`pubkit.store`): the store's address, and what each
#: of the store's files was when the mirror last matched it: the store's checksum, its
#: size, and the SHA-256 of the mirror's copy (None: the mirror holds none, and fetches the
#: file from the store when it is read, :func:`read_output`).
LEDGER_NAME = ".pubkit-mirror.json"


@dataclass(frozen=True)
class StoreFolder:
    """A folder of an fsspec store, as a cluster's worker that reaches it writes to it
    straight: each file with one put (an object store shows the old object or the new
    one, never part of one)."""

    url: str

    def put(self, relative: Path | str, data: bytes) -> None:
        filesystem, root = store_filesystem(self.url)
        target = f"{root}/{Path(relative).as_posix()}"
        filesystem.makedirs(target.rsplit("/", 1)[0], exist_ok=True)
        filesystem.pipe_file(target, data)

    def get(self, relative: Path | str) -> bytes:
        filesystem, root = store_filesystem(self.url)
        data: bytes = filesystem.cat_file(f"{root}/{Path(relative).as_posix()}")
        return data

    def exists(self, relative: Path | str) -> bool:
        filesystem, root = store_filesystem(self.url)
        path = f"{root}/{Path(relative).as_posix()}"
        filesystem.invalidate_cache(path)  # not a listing from before it was written
        return bool(filesystem.exists(path))

    def remove(self, relative: Path | str) -> None:
        filesystem, root = store_filesystem(self.url)
        filesystem.rm_file(f"{root}/{Path(relative).as_posix()}")


#: Where outputs are written: a local folder, or a store's folder.
Out = Path | StoreFolder


@cache
def store_filesystem(url: str) -> tuple[Any, str]:
    """The fsspec file system of the store at ``url``, and the folder's path in it."""
    import fsspec

    filesystem, root = fsspec.core.url_to_fs(url)
    return filesystem, root.rstrip("/")


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


def put_if_changed(out: Out, relative: Path, data: bytes) -> None:
    """Write one output file unless ``out`` already holds those bytes
    (:func:`write_if_changed`, for a store too)."""
    if isinstance(out, StoreFolder):
        try:
            if out.get(relative) == data:
                return
        except OSError:
            pass
        out.put(relative, data)
    else:
        write_if_changed(out / relative, data)


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
    """True when every recorded output file still exists with its recorded size (in
    ``out``, or in the store it mirrors)."""
    return all(stored_size(out, record["path"]) == record["bytes"] for record in editions.values())


def stored_size(out: Path, relative: Path | str) -> int | None:
    """The size of the output ``relative``: of ``out``'s copy, or else, in a store's
    mirror, of the store's file (by the mirror's ledger); None when there is none."""
    path = out / relative
    try:
        return path.stat().st_size
    except OSError:
        pass
    if (size := _WRITTEN.get(str(path))) is not None:
        return size
    entry = mirror_ledger(out).get("files", {}).get(Path(relative).as_posix())
    return entry["size"] if entry else None


def read_output(out: Out, relative: Path | str) -> bytes:
    """The bytes of the output ``relative``: ``out``'s copy, or else, in a store's mirror,
    the store's, fetched into the mirror."""
    if isinstance(out, StoreFolder):
        return out.get(relative)
    path = out / relative
    try:
        return path.read_bytes()
    except FileNotFoundError:
        url = mirror_ledger(out).get("url")
        if url is None:
            raise
    data = StoreFolder(url).get(relative)
    write_atomic(path, data)
    _FETCHED[str(path)] = sha256(data)
    return data


#: The SHA-256 of each file fetched into a mirror by this process, by its path: the same
#: bytes as the store's, which need not be sent back (:func:`fetched`).
_FETCHED: dict[str, str] = {}


def fetched(path: Path) -> str | None:
    """The SHA-256 of the bytes :func:`read_output` fetched from the store into ``path``."""
    return _FETCHED.get(str(path))


def written_to_store(out: Path, files: Mapping[str, int | None]) -> None:
    """In a store's mirror, what a worker wrote straight to the store: ``files``, by path,
    each with its size where it is known. The mirror's copies of them (stale) are
    dropped, so that they are fetched again if they are read, and the sizes known."""
    if mirror_ledger(out):
        for relative, size in files.items():
            path = out / relative
            path.unlink(missing_ok=True)
            _FETCHED.pop(str(path), None)
            if size is not None:
                _WRITTEN[str(path)] = size


#: The size of each file a worker wrote to the store, by its path in the mirror.
_WRITTEN: dict[str, int] = {}


def mirror_matched(mirror: Path) -> None:
    """Forget what this process fetched into ``mirror`` and knows workers wrote to its
    store: the mirror has just been brought to the store (:mod:`pubkit.store`)."""
    prefix = str(mirror) + os.sep
    for known in (_FETCHED, _WRITTEN):
        for path in [path for path in known if path.startswith(prefix)]:
            del known[path]


def mirror_ledger(out: Path) -> dict[str, Any]:
    """The ledger of the store ``out`` mirrors (:data:`LEDGER_NAME`); empty for a folder
    that mirrors none."""
    path = out / LEDGER_NAME
    try:
        stamp = path.stat().st_mtime_ns
    except OSError:
        return {}
    return _ledger(path, stamp)


@lru_cache(maxsize=4)
def _ledger(path: Path, _stamp: int) -> dict[str, Any]:
    ledger = read_json(path)
    return ledger if isinstance(ledger, dict) and "url" in ledger else {}


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


def put(out: Out, relative: Path, data: bytes) -> None:
    """Write one output file, whole or not at all."""
    if isinstance(out, StoreFolder):
        out.put(relative, data)
    else:
        write_atomic(out / relative, data)


def write_output(out: Out, relative: Path, rendered: Rendered) -> dict[str, Any]:
    """Write one output file; its manifest record."""
    put(out, relative, rendered.data)
    record: dict[str, Any] = {
        "path": relative.as_posix(),
        "bytes": len(rendered.data),
        "sha256": sha256(rendered.data),
    }
    if rendered.pages is not None:
        record["pages"] = rendered.pages
    return record


def write_lesson(lesson: Lesson, out: Out, outcome: LessonOutcome) -> dict[str, Any]:
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
    put(out, fragment_pages_path(lesson.id), outcome.fragment.pdf)
    put(out, fragment_path(lesson.id), outcome.fragment.to_json())
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


def lesson_files(lesson_id: str, entry: Mapping[str, Any]) -> dict[str, int | None]:
    """Every file :func:`write_lesson` wrote for a lesson (its manifest ``entry``), by
    path, with its size where the entry records it."""
    files: dict[str, int | None] = {r["path"]: r["bytes"] for r in entry_files(entry).values()}
    for path in (fragment_path(lesson_id), fragment_pages_path(lesson_id)):
        files[path.as_posix()] = None
    return files


def collection_files(module_folder: str, record: Mapping[str, Any]) -> dict[str, int | None]:
    """Every file :func:`write_collection` may have written for a module (its build
    ``record``), by path, with its size where the record has it."""
    editions = record["entry"]["editions"].values()
    files: dict[str, int | None] = {r["path"]: r["bytes"] for r in editions}
    for name in record["parts"]["keys"]:
        files[part_path(module_folder, name).as_posix()] = None
    return files


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


def read_fragment(out: Out, lesson_id: str) -> Fragment:
    from pubkit.course.modulebook import Fragment

    pages = read_output(out, fragment_pages_path(lesson_id))
    return Fragment.from_json(read_output(out, fragment_path(lesson_id)), pages)


def read_parts(out: Out, module_folder: str, keys: Mapping[str, str]) -> dict[str, Part]:
    """The parts of a module's last collections still in ``out`` (``keys``: each one's
    key, by name, as its build record keeps them)."""
    from pubkit.course.modulebook import Part

    parts = {}
    for name, key in keys.items():
        try:
            parts[name] = Part(key, read_output(out, part_path(module_folder, name)))
        except OSError:  # gone: made again
            continue
    return parts


def read_collecting(
    out: Out, module: Module, members: Sequence[Lesson], key: str, kept: Mapping[str, str]
) -> Collecting:
    """What a module's collection is set from, as ``out`` keeps it: its lessons'
    fragments, and the parts of its last collections (``kept``: their keys)."""
    fragments = [read_fragment(out, lesson.id) for lesson in members]
    return module, key, fragments, read_parts(out, module.folder.name, kept)


def write_collection(
    out: Out,
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
            put(out, part_path(module.folder.name, name), part.data)
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
