"""Turn pandoc invocations into bounded subprocess runs of the bundled pandoc binary."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from .errors import LessonError

#: Wall-clock bound for one conversion; a manuscript must not hang the build.
TIMEOUT_SECONDS = 60
#: Options for pandoc's runtime: a heap bound, so that a hostile input cannot exhaust
#: memory; a 1 MB initial heap instead of the 64 MB pandoc is built with, which a lesson
#: never needs and which costs every run its page faults (a quarter of its time); and no
#: collection of the old generation before it holds 64 MB, which a lesson's run then
#: never makes (a sixth less CPU, an eighth for a module's book; the output is the same).
RUNTIME_OPTIONS = ("-M512m", "-H1m", "-O64m")
#: What a pipe holds with nobody reading it (Linux): a smaller input is written at start.
_PIPE_SIZE = 1 << 16


@cache
def pandoc_path() -> str:
    """The pandoc shipped in the ``pypandoc-binary`` wheel: never a system pandoc."""
    import pypandoc

    path: str = pypandoc.get_pandoc_path()
    return path


@dataclass
class Pandoc:
    """A pandoc at work: started (:meth:`start`), so that the caller can do something
    else meanwhile (pandoc is another process), then waited for (:meth:`wait`)."""

    process: subprocess.Popen[bytes]
    source: Path
    started: float
    #: Input not yet written: more than the pipe holds, it waits for :meth:`wait`.
    pending: bytes | None = None

    @classmethod
    def start(
        cls,
        args: Sequence[str],
        stdin: bytes,
        *,
        source: Path,
        cwd: Path | None = None,
        sandbox: bool = True,
        date: str | None = None,
    ) -> Pandoc:
        """Start pandoc with ``args``, feeding ``stdin``; :meth:`wait` gives its output, or
        the :class:`LessonError` about ``source`` that its failure is.

        ``sandbox`` forbids pandoc any file or network access beyond its arguments. Only the
        EPUB writer runs without it (it must read the stylesheet and fonts), on an AST whose
        every reference :mod:`pubkit.resources` has checked. ``date`` (YYYY-MM-DD) fixes the
        time pandoc stamps on its output (the EPUB's ``dcterms:modified``).
        """
        sandboxing = ["--sandbox"] if sandbox else []
        command = [pandoc_path(), "+RTS", *RUNTIME_OPTIONS, "-RTS", *sandboxing, *args]
        env = dict(os.environ)
        if date:
            midnight = dt.datetime.fromisoformat(date).replace(tzinfo=dt.UTC)
            env["SOURCE_DATE_EPOCH"] = str(int(midnight.timestamp()))
        process = subprocess.Popen(
            command,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            cwd=cwd,
            env=env,
        )
        running = cls(process, source, time.monotonic())
        if len(stdin) > _PIPE_SIZE:
            running.pending = stdin
        else:
            assert process.stdin is not None
            try:
                process.stdin.write(stdin)
                process.stdin.close()
            except BrokenPipeError:  # pandoc stopped at once: wait() says why
                pass
            process.stdin = None  # written: communicate() has nothing more to send
        return running

    def wait(self) -> bytes:
        """pandoc's output, once it has finished within :data:`TIMEOUT_SECONDS` of its start."""
        remaining = max(0.0, TIMEOUT_SECONDS - (time.monotonic() - self.started))
        try:
            stdout, stderr = self.process.communicate(self.pending, timeout=remaining)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.communicate()
            raise LessonError.at(
                self.source,
                None,
                f"pandoc took longer than {TIMEOUT_SECONDS} s; conversion stopped",
            ) from None
        if self.process.returncode != 0:
            message = stderr.decode("utf-8", "replace").strip()
            lines = message.splitlines()
            detail = lines[-1] if lines else f"exit status {self.process.returncode}"
            if "heap exhausted" in message.lower() or "heap overflow" in message.lower():
                detail = "the manuscript needs more memory than pandoc is allowed"
            raise LessonError.at(self.source, None, f"pandoc failed: {detail}")
        return stdout

    def stop(self) -> None:
        """Stop pandoc unfinished (its caller failed meanwhile)."""
        self.process.kill()
        self.process.communicate()
