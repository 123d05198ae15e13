"""Turn an output address into the folder a build writes to: a local folder (or a
``file://`` URL) as it is; any other fsspec URL (``s3://…``, ``gs://…``, ``memory://…``)
through a local mirror of it, brought to the store's record before the build and sent
back after.

The mirror holds what the build reads and writes itself, not a copy of the store: before
the build it fetches the build record, and knows every other file of the store by its
ledger (:data:`~pubkit.output.LEDGER_NAME`: each file's checksum in the store and its
size), which tells the build what is there (:func:`pubkit.output.outputs_intact`); a file
the build reads (a lesson's fragment, for its module's book) is fetched when it is read
(:func:`pubkit.output.read_output`). A cluster's workers that reach the store write what
they set straight to it (:mod:`pubkit.shared`). Sending to the store: each object written
whole with one put (an object store shows the old object or the new one, never part of
one), only those whose bytes changed since the mirror last matched the store, and the
build record last of all: a push cut short leaves the store's old record, so the next
build sends what is missing. The record lives with the outputs, so a build on another
machine (an empty mirror) fetches the record and finds an unchanged catalogue up to date.

fsspec is optional (``pip install 'pubkit[cluster]'``) and imported only for a URL.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from pubkit.errors import ConfigError, PubkitError, error
from pubkit.output import (
    LEDGER_NAME,
    STATE_NAME,
    fetched,
    mirror_matched,
    read_json,
    write_atomic,
    write_json,
)
from pubkit.stamps import cache_home


def is_url(out: str | Path | None) -> bool:
    """Whether ``out`` names a store by URL rather than a local folder."""
    return out is not None and "://" in str(out) and not str(out).startswith("file://")


def local_folder(out: str | Path) -> Path:
    """A local folder given as a path or a ``file://`` URL."""
    text = str(out)
    return Path(urlparse(text).path) if text.startswith("file://") else Path(text)


def mirror_of(url: str) -> Path:
    """The local mirror of the store at ``url``, in the user's cache (``$PUBKIT_CACHE``,
    else ``$XDG_CACHE_HOME/pubkit`` or ``~/.cache/pubkit``)."""
    return cache_home() / "stores" / hashlib.sha256(url.encode()).hexdigest()[:24]


@contextmanager
def mirrored(url: str) -> Iterator[Path]:
    """The local mirror of the store at ``url``, brought up to the store's record, for
    a build to write to; sent back to the store when the build is done (or stopped by a
    failing lesson: what was built stands)."""
    filesystem, root = _open(url)
    mirror = mirror_of(url)
    mirror.mkdir(parents=True, exist_ok=True)
    try:
        ledger = _pull(filesystem, root, mirror, url)
        yield mirror
        _push(filesystem, root, mirror, ledger)
    except (OSError, ValueError) as exc:
        raise PubkitError([error(None, None, f"the store at {url}: {exc}")]) from None


def _open(url: str) -> tuple[Any, str]:
    try:
        import fsspec
    except ImportError:
        message = f"--out {url} needs fsspec: pip install 'pubkit[cluster]'"
        raise ConfigError([error(None, None, message)]) from None
    try:
        filesystem, root = fsspec.core.url_to_fs(url)
    except (ImportError, ValueError) as exc:  # an unknown protocol, a back end not installed
        raise ConfigError([error(None, None, f"--out {url}: {exc}")]) from None
    return filesystem, root.rstrip("/")


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _pull(filesystem: Any, root: str, mirror: Path, url: str) -> dict[str, Any]:
    """Bring the mirror to the store: the store's build record fetched (unless the mirror
    holds its bytes), every other file known by its checksum and size, and the mirror's
    copy of one the store holds other bytes of dropped; the ledger as it is then."""
    kept = read_json(mirror / LEDGER_NAME)
    known: dict[str, Any] = (
        kept["files"] if isinstance(kept, dict) and kept.get("url") == url else {}
    )
    files: dict[str, Any] = {}
    listing = filesystem.find(root, detail=True) if filesystem.exists(root) else {}
    for path, info in listing.items():
        relative = path[len(root) :].lstrip("/")
        checksum = _checksum(filesystem, path)
        local = mirror / relative
        was = known.get(relative)
        if was and was["store"] == checksum and (was["bytes"] is None or local.is_file()):
            files[relative] = was
            continue
        local.unlink(missing_ok=True)  # the store's file is another: the copy is stale
        files[relative] = {"store": checksum, "size": info["size"], "bytes": None}
        if relative == STATE_NAME:
            data = filesystem.cat_file(path)
            write_atomic(local, data)
            files[relative]["bytes"] = _digest(data)
    mirror_matched(mirror)
    if STATE_NAME not in files:  # a new store (or one emptied): no record of it here
        (mirror / STATE_NAME).unlink(missing_ok=True)
    ledger = {"url": url, "files": files}
    write_json(mirror / LEDGER_NAME, ledger, indent=False)
    return ledger


def _checksum(filesystem: Any, path: str) -> str:
    return str(filesystem.checksum(path))


def _push(filesystem: Any, root: str, mirror: Path, ledger: dict[str, Any]) -> None:
    """Send the store every file of the mirror whose bytes changed, the record last."""
    files = ledger["files"]
    names = sorted(
        (
            path.relative_to(mirror).as_posix()
            for path in mirror.rglob("*")
            if path.is_file() and path.name != LEDGER_NAME and not path.name.endswith(".tmp")
        ),
        key=lambda name: (name == STATE_NAME, name),  # the record last
    )
    for relative in names:
        data = (mirror / relative).read_bytes()
        digest = _digest(data)
        if fetched(mirror / relative) == digest:  # the store's own bytes
            files[relative]["bytes"] = digest
        if (files.get(relative) or {}).get("bytes") == digest:
            continue
        target = f"{root}/{relative}"
        filesystem.makedirs(target.rsplit("/", 1)[0], exist_ok=True)
        filesystem.pipe_file(target, data)
        files[relative] = {
            "store": _checksum(filesystem, target),
            "size": len(data),
            "bytes": digest,
        }
    write_json(mirror / LEDGER_NAME, ledger, indent=False)
