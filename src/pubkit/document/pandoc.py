"""Turn pandoc conversions into requests to one bounded pandoc session per process.

A fresh pandoc process costs about 20 ms of page faults (its binary is 160 MB) before it
converts anything, more than a lesson's conversion itself; a build makes three per lesson.
So each process of the build (each worker) keeps one ``pandoc lua`` running
:file:`pandoc_server.lua`, and sends it its conversions one at a time. What a one-shot
pandoc would be bounded by, the session is too:

- memory: the session's data segment is capped (``RLIMIT_DATA``) before it reads any
  request; a manuscript that needs more makes it exit, and says so;
- time: a conversion that takes longer than :data:`TIMEOUT_SECONDS` stops the session;
- files: the Markdown reader may read none; only the EPUB writer reads the stylesheet,
  fonts and cover it is given, and the images of an AST whose every reference
  :mod:`pubkit.sources.resources` has checked.

A session that stopped is replaced by a fresh one at the next request.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import resource
import select
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import orjson

from pubkit.errors import LessonError

#: Wall-clock bound for one conversion; a manuscript must not hang the build.
TIMEOUT_SECONDS = 60
#: What pandoc may hold in its data segment (its heap): about three times what the book
#: of a 60-lesson module needs (360 MB), far less than the machine has.
MEMORY_LIMIT_BYTES = 1 << 30
#: Options for pandoc's runtime: a 1 MB initial heap instead of the 64 MB pandoc is built
#: with, which costs page faults for nothing; and no collection of the old generation
#: before it holds 64 MB, which a lesson's conversion then never makes (a sixth less CPU,
#: an eighth for a module's book; the output is the same).
RUNTIME_OPTIONS = ("-H1m", "-O64m")
_SCRIPT = Path(__file__).with_name("pandoc_server.lua")
_OUT_OF_MEMORY = "the manuscript needs more memory than pandoc is allowed"


@cache
def pandoc_path() -> str:
    """The pandoc shipped in the ``pypandoc-binary`` wheel: never a system pandoc."""
    import pypandoc

    path: str = pypandoc.get_pandoc_path()
    return path


def parse(markdown: str, reader: str, *, source: Path) -> Conversion:
    """Start reading ``markdown`` with pandoc's ``reader`` into pandoc's JSON."""
    return _session().request({"op": "parse", "reader": reader}, markdown.encode(), source)


def html(ast: dict[str, Any], *, source: Path) -> Conversion:
    """Start writing ``ast`` as an HTML5 fragment (no wrapping, no syntax highlighting)."""
    return _session().request({"op": "html"}, json_bytes(ast), source)


def citeproc(
    ast: dict[str, Any],
    *,
    source: Path,
    bibliography: list[Path],
    csl: Path,
    language: str,
) -> Conversion:
    """Start rendering the ``Cite`` elements of ``ast`` with citeproc: in style ``csl``
    and ``language``, from the ``bibliography`` files (checked by
    :mod:`pubkit.sources.bibliography`), linked to their entries in a list of references
    at the end (``Div`` ``#refs``); pandoc's JSON."""
    header = {
        "op": "citeproc",
        "bibliography": [str(path) for path in bibliography],
        "csl": str(csl),
        "lang": language,
    }
    return _session().request(header, json_bytes(ast), source)


def epub(
    ast: dict[str, Any],
    *,
    source: Path,
    css: Path,
    fonts: list[Path],
    cover: Path,
    date: str | None = None,
) -> Conversion:
    """Start writing ``ast`` as an EPUB 3: stylesheet ``css``, ``fonts`` embedded, ``cover``,
    no title page, a chapter per top-level section, contents one level deep (pubkit
    writes them whole: :func:`pubkit.engines.epubparts.contents`). Images are read relative to
    ``source``'s folder. ``date`` (YYYY-MM-DD) fixes the time pandoc stamps on the book
    (``dcterms:modified``)."""
    header: dict[str, Any] = {
        "op": "epub",
        "folder": str(source.parent),
        "css": str(css),
        "fonts": [str(font) for font in fonts],
        "cover": str(cover),
    }
    if date:
        midnight = dt.datetime.fromisoformat(date).replace(tzinfo=dt.UTC)
        header["epoch"] = str(int(midnight.timestamp()))
    return _session().request(header, json_bytes(ast), source)


@dataclass
class Conversion:
    """A request sent to the session: the caller may do something else meanwhile (pandoc
    is another process), then :meth:`wait` for its output."""

    session: _Session
    source: Path
    started: float = field(default_factory=time.monotonic)
    #: The output, or the error, once read from the session.
    outcome: bytes | LessonError | None = None

    def wait(self) -> bytes:
        """pandoc's output, or the :class:`LessonError` about ``source`` its failure is."""
        if self.outcome is None:
            self.outcome = self.session.reply(self)
        if isinstance(self.outcome, LessonError):
            raise self.outcome
        return self.outcome

    def stop(self) -> None:
        """Give up on the conversion (its caller failed meanwhile): pandoc is stopped."""
        if self.outcome is None:
            self.session.end()


class _Session:
    """One ``pandoc lua`` serving :file:`pandoc_server.lua`, one request at a time."""

    def __init__(self) -> None:
        self.owner = os.getpid()
        self.settings = (RUNTIME_OPTIONS, MEMORY_LIMIT_BYTES)
        self.errors = tempfile.TemporaryFile()  # noqa: SIM115 (lives as long as pandoc)
        # -E: no LUA_INIT from the environment runs in it.
        command = [pandoc_path(), "+RTS", *RUNTIME_OPTIONS, "-RTS", "lua", "-E", str(_SCRIPT)]
        self.process = subprocess.Popen(
            command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.errors
        )
        # Before any request is sent, so before pandoc has read anything of a manuscript.
        limit = (MEMORY_LIMIT_BYTES, MEMORY_LIMIT_BYTES)
        with contextlib.suppress(ProcessLookupError):  # pandoc stopped at once: reply() says why
            resource.prlimit(self.process.pid, resource.RLIMIT_DATA, limit)
        self.pending: Conversion | None = None
        self.received = bytearray()  # read from pandoc, not yet taken
        self.said = ""  # its standard error, once it has stopped

    @property
    def usable(self) -> bool:
        return (
            self.owner == os.getpid()  # not a session inherited through a fork
            and self.settings == (RUNTIME_OPTIONS, MEMORY_LIMIT_BYTES)
            and self.process.poll() is None
        )

    def request(self, header: dict[str, Any], data: bytes, source: Path) -> Conversion:
        if (earlier := self.pending) is not None:  # one at a time: read the earlier one first
            earlier.outcome = self.reply(earlier)
        conversion = Conversion(self, source)
        line = json.dumps({**header, "size": len(data)}).encode() + b"\n"
        assert self.process.stdin is not None
        try:
            self.process.stdin.write(line + data)
            self.process.stdin.flush()
        except BrokenPipeError:
            pass  # pandoc has stopped: reply() says why
        self.pending = conversion
        return conversion

    def reply(self, conversion: Conversion) -> bytes | LessonError:
        """The output of ``conversion``, the request under way, or the error it met."""
        assert conversion is self.pending  # any earlier one has its outcome
        self.pending = None
        deadline = conversion.started + TIMEOUT_SECONDS
        try:
            head = self._read_line(deadline)
            kind, _, size = head.partition(b" ")
            body = self._read(int(size), deadline)
        except TimeoutError:
            self.end()
            message = f"pandoc took longer than {TIMEOUT_SECONDS} s; conversion stopped"
            return LessonError.at(conversion.source, None, message)
        except (EOFError, ValueError):
            return LessonError.at(conversion.source, None, f"pandoc failed: {self._stopped()}")
        if kind == b"ok":
            return body
        lines = body.decode("utf-8", "replace").strip().splitlines() or ["no reason given"]
        return LessonError.at(conversion.source, None, f"pandoc failed: {lines[0]}")

    def _read_line(self, deadline: float) -> bytes:
        while (end := self.received.find(b"\n")) < 0:
            self._receive(deadline)
        return self._take(end + 1)[:-1]

    def _read(self, size: int, deadline: float) -> bytes:
        while len(self.received) < size:
            self._receive(deadline)
        return self._take(size)

    def _take(self, size: int) -> bytes:
        data = bytes(self.received[:size])
        del self.received[:size]
        return data

    def _receive(self, deadline: float) -> None:
        """Read what pandoc has written, waiting for it until ``deadline``."""
        assert self.process.stdout is not None
        pipe = self.process.stdout.fileno()
        ready, _, _ = select.select([pipe], [], [], max(0.0, deadline - time.monotonic()))
        if not ready:
            raise TimeoutError
        chunk = os.read(pipe, 1 << 20)
        if not chunk:
            raise EOFError
        self.received += chunk

    def _stopped(self) -> str:
        """Why pandoc stopped, from what it wrote before it did."""
        code = self.end()
        if "out of memory" in self.said.lower():  # the data segment's bound
            return _OUT_OF_MEMORY
        lines = self.said.splitlines()
        return lines[-1] if lines else f"exit status {code}"

    def close(self) -> None:
        """End the session once it has answered what was asked."""
        assert self.process.stdin is not None
        self.process.stdin.close()  # pandoc_server.lua reads its end and exits
        try:
            self.process.wait(timeout=TIMEOUT_SECONDS)
        finally:
            self.end()

    def end(self) -> int:
        """Stop pandoc (if it still runs) and return its exit status; what it wrote to its
        standard error is then in :attr:`said`."""
        if (pending := self.pending) is not None:
            pending.outcome = LessonError.at(pending.source, None, "pandoc was stopped")
        self.pending = None
        self.received.clear()
        if self.process.poll() is None:
            self.process.kill()
        for stream in (self.process.stdin, self.process.stdout):
            if stream is not None:
                stream.close()
        code = self.process.wait()
        if not self.errors.closed:
            self.errors.seek(0)
            self.said = self.errors.read().decode("utf-8", "replace").strip()
            self.errors.close()
        return code


_SESSION: _Session | None = None


def end_session() -> None:
    """Let this process's pandoc session finish and exit (a worker's, as it exits: its
    time then counts as the worker's)."""
    global _SESSION
    if _SESSION is not None and _SESSION.owner == os.getpid():
        _SESSION.close()
    _SESSION = None


def _session() -> _Session:
    """This process's pandoc session, started on first use or after the last one stopped."""
    global _SESSION
    if _SESSION is None or not _SESSION.usable:
        if _SESSION is not None and _SESSION.owner == os.getpid():
            _SESSION.end()
        _SESSION = _Session()
    return _SESSION


def json_bytes(value: Any, sort_keys: bool = False) -> bytes:
    """``value`` (pandoc's JSON, or what holds some) as compact JSON: by orjson, a
    twentieth of the json module's time (a lesson's AST goes to pandoc seven times);
    by the json module what orjson refuses (nested deeper than its 254 levels), as
    before it."""
    try:
        return orjson.dumps(value, option=orjson.OPT_SORT_KEYS if sort_keys else 0)
    except orjson.JSONEncodeError:
        return json.dumps(value, separators=(",", ":"), sort_keys=sort_keys).encode()


def json_value(data: bytes) -> Any:
    """The value of JSON ``data`` (pandoc's): by orjson, or by the json module what orjson
    refuses (nested deeper than its 1024 levels), as before it."""
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:
        return json.loads(data)
