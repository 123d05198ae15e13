"""Turn an output address into the folder a build writes to: a local folder (or a
``file://`` URL) as it is; any other fsspec URL (``s3://…``, ``gs://…``, ``memory://…``)
through a local mirror of it, filled from the store before the build and sent back after.

The build itself always writes a local folder, whole files by atomic renames. Sending to
the store: each object written whole with one put (an object store shows the old object
or the new one, never part of one), only those whose bytes changed since the mirror last
matched the store, and the build record last of all: a push cut short leaves the store's
old record, so the next build sends what is missing. The record lives with the outputs,
so a build on another machine (an empty mirror) fetches the record and the fragments the
collections are made from, and finds an unchanged catalogue up to date.

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
from pubkit.output import STATE_NAME, read_json, write_atomic, write_json
from pubkit.stamps import cache_home

#: In the mirror: what each file's bytes were when the mirror last matched the store.
LEDGER_NAME = ".pubkit-mirror.json"


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
        ledger = _pull(filesystem, root, mirror)
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


def _pull(filesystem: Any, root: str, mirror: Path) -> dict[str, Any]:
    """Bring the mirror to the store: every file of the store the mirror lacks or holds
    other bytes of (by the ledger, and the store's own checksum); the ledger as it is then."""
    kept = read_json(mirror / LEDGER_NAME)
    ledger: dict[str, Any] = kept if isinstance(kept, dict) else {}
    remote: dict[str, str] = {}
    if filesystem.exists(root):
        for path in filesystem.find(root):
            relative = path[len(root) :].lstrip("/")
            checksum = str(filesystem.checksum(path))
            remote[relative] = checksum
            local = mirror / relative
            known = ledger.get(relative)
            if known and known["store"] == checksum and local.is_file():
                continue
            data = filesystem.cat_file(path)
            write_atomic(local, data)
            ledger[relative] = {"store": checksum, "bytes": _digest(data)}
    if not remote:  # a new store: nothing of the mirror is there
        ledger = {}
    for relative in set(ledger) - set(remote):
        del ledger[relative]
    write_json(mirror / LEDGER_NAME, ledger)
    return ledger


def _push(filesystem: Any, root: str, mirror: Path, ledger: dict[str, Any]) -> None:
    """Send the store every file of the mirror whose bytes changed, the record last."""
    files = sorted(
        (
            path.relative_to(mirror).as_posix()
            for path in mirror.rglob("*")
            if path.is_file() and path.name != LEDGER_NAME and not path.name.endswith(".tmp")
        ),
        key=lambda name: (name == STATE_NAME, name),  # the record last
    )
    for relative in files:
        data = (mirror / relative).read_bytes()
        digest = _digest(data)
        if (ledger.get(relative) or {}).get("bytes") == digest:
            continue
        target = f"{root}/{relative}"
        filesystem.makedirs(target.rsplit("/", 1)[0], exist_ok=True)
        filesystem.pipe_file(target, data)
        ledger[relative] = {"store": str(filesystem.checksum(target)), "bytes": digest}
    write_json(mirror / LEDGER_NAME, ledger)
