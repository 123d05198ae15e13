"""Run the preview: the build process forked, the loopback interface listened on (unless
another address is asked for), the page served by uvicorn, the course folder watched, until
Ctrl-C."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import socket
import threading
import webbrowser
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.types import Lifespan

from pubkit.errors import PubkitError
from pubkit.preview.builder import running
from pubkit.preview.session import Session
from pubkit.preview.web import application, host_check, ip_of
from pubkit.sources.config import Config, builtin_styles

#: The port asked for first when none is given (a bookmark survives a restart); a free one
#: is chosen when it is taken.
PREFERRED_PORT = 8765
LOOPBACK = "127.0.0.1"


def listen(host: str, port: int | None) -> socket.socket:
    """A socket listening on ``host`` at ``port``; with none, at :data:`PREFERRED_PORT`
    or, when that is taken, a free one."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    for candidate in (port,) if port is not None else (PREFERRED_PORT, 0):
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, candidate))
        except OSError as exc:
            sock.close()
            if port is not None or candidate == 0:
                message = f"cannot listen on {host}:{candidate}: {exc.strerror}"
                raise PubkitError.at(None, None, message) from None
            continue
        sock.listen(128)
        sock.set_inheritable(False)
        return sock
    raise AssertionError("unreachable")


def url_of(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    return f"http://[{host}]:{port}/" if ":" in host else f"http://{host}:{port}/"


def preview(
    root: Path,
    targets: Sequence[Path] = (),
    *,
    out: Path | None = None,
    host: str | None = None,
    port: int | None = None,
    browser: bool = True,
    say: Callable[[str, bool], None] | None = None,
) -> None:
    """Build the course (or ``targets``), serve its preview, and build again on every
    save until interrupted (Ctrl-C). ``say`` hears what the terminal shows (message,
    whether it is an error)."""
    from pubkit.check import check

    say = say or (lambda text, _error: print(text))
    checked = check(root)  # pubkit.yaml must be readable to know where the build goes
    out = (out or checked.config.output_dir).resolve()
    sock = listen(host or LOOPBACK, port)
    url = url_of(sock)
    with running(root, out) as builder:  # forked before any thread starts
        session = Session(builder, out, tuple(t.resolve() for t in targets), say)
        bound_host, bound_port = sock.getsockname()[:2]
        serving = _serving(session, _watched(checked.config))
        app = application(session, host_check(bound_host, bound_port), serving)
        config = uvicorn.Config(
            app, log_level="warning", access_log=False, lifespan="on", timeout_graceful_shutdown=1
        )
        server = _Server(config, session)
        say(f"preview: {url} (Ctrl-C stops it)", False)
        if host is not None and not _is_loopback(bound_host):
            say(f"preview: listening on {bound_host}: other machines can reach it", False)
        if browser:
            threading.Thread(target=webbrowser.open, args=(url,), daemon=True).start()
        asyncio.run(server.serve(sockets=[sock]))
    sock.close()
    say("preview: stopped", False)


def _is_loopback(host: str) -> bool:
    address = ip_of(host)
    return address is not None and address.is_loopback


class _Server(uvicorn.Server):
    """uvicorn's server, stopped by Ctrl-C (or SIGTERM) once and for all: the builds and
    the page's event streams are told to end, the server closes within a second, and no
    signal is raised again afterwards (uvicorn's own way: a traceback from asyncio)."""

    def __init__(self, config: uvicorn.Config, session: Session) -> None:
        super().__init__(config)
        self.session = session

    def handle_exit(self, sig: int, frame: Any) -> None:
        self.session.closing = True
        self.should_exit = True  # a second Ctrl-C: the same, not a forced exit

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        stopping = (signal.SIGINT, signal.SIGTERM)
        previous = {sig: signal.signal(sig, self.handle_exit) for sig in stopping}
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)


def _serving(session: Session, folders: Sequence[Path]) -> Lifespan[Starlette]:
    """While the page is served: the builds, and the watcher that asks for them."""

    @contextlib.asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        tasks = [
            asyncio.create_task(session.rebuilding()),
            asyncio.create_task(_watch(folders, session)),
        ]
        try:
            yield
        finally:
            session.closing = True
            for listener in session.listeners:
                listener.put_nowait(None)
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    return lifespan


def _watched(config: Config) -> list[Path]:
    """The course folder, and its manuscripts' and theme's folders when they lie outside
    it (pubkit's own theme aside)."""
    folders = [config.root.resolve()]
    for folder in (config.manuscript_dir.resolve(), config.styles_dir.resolve()):
        if folder != builtin_styles().resolve() and not folder.is_relative_to(folders[0]):
            folders.append(folder)
    return folders


async def _watch(folders: Sequence[Path], session: Session) -> None:
    """Every burst of saves in ``folders`` (but the build folder) as one change: the
    operating system tells (inotify), nothing polls."""
    from watchfiles import DefaultFilter, awatch

    quiet = DefaultFilter(ignore_paths=[str(session.out)])
    async for changes in awatch(*folders, watch_filter=quiet, step=50, rust_timeout=500):
        session.changed(Path(path).resolve() for _change, path in changes)
