"""Turn pandoc invocations into bounded subprocess runs of the bundled pandoc binary."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
from collections.abc import Sequence
from functools import cache
from pathlib import Path

from .errors import LessonError

#: Wall-clock bound for one conversion; a manuscript must not hang the build.
TIMEOUT_SECONDS = 60
#: Heap bound passed to pandoc's runtime, so a hostile input cannot exhaust memory.
MEMORY_LIMIT = "-M512m"


@cache
def pandoc_path() -> str:
    """The pandoc shipped in the ``pypandoc-binary`` wheel: never a system pandoc."""
    import pypandoc

    path: str = pypandoc.get_pandoc_path()
    return path


def run_pandoc(
    args: Sequence[str],
    stdin: bytes,
    *,
    source: Path,
    cwd: Path | None = None,
    sandbox: bool = True,
    date: str | None = None,
) -> bytes:
    """Run pandoc with ``args``, feeding ``stdin``; failures become a :class:`LessonError`.

    ``sandbox`` forbids pandoc any file or network access beyond its arguments. Only the
    EPUB writer runs without it (it must read the stylesheet and fonts), on an AST whose
    every reference :mod:`pubkit.resources` has checked. ``date`` (YYYY-MM-DD) fixes the
    time pandoc stamps on its output (the EPUB's ``dcterms:modified``).
    """
    sandboxing = ["--sandbox"] if sandbox else []
    command = [pandoc_path(), "+RTS", MEMORY_LIMIT, "-RTS", *sandboxing, *args]
    env = dict(os.environ)
    if date:
        midnight = dt.datetime.fromisoformat(date).replace(tzinfo=dt.UTC)
        env["SOURCE_DATE_EPOCH"] = str(int(midnight.timestamp()))
    try:
        done = subprocess.run(
            command,
            input=stdin,
            capture_output=True,
            timeout=TIMEOUT_SECONDS,
            cwd=cwd,
            env=env,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise LessonError.at(
            source, None, f"pandoc took longer than {TIMEOUT_SECONDS} s; conversion stopped"
        ) from None
    if done.returncode != 0:
        stderr = done.stderr.decode("utf-8", "replace").strip()
        lines = stderr.splitlines()
        detail = lines[-1] if lines else f"exit status {done.returncode}"
        if "heap exhausted" in stderr.lower() or "heap overflow" in stderr.lower():
            detail = "the manuscript needs more memory than pandoc is allowed"
        raise LessonError.at(source, None, f"pandoc failed: {detail}")
    return done.stdout
