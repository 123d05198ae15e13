"""Serve the preview: the page, the state of every lesson (as JSON, and pushed as
server-sent events after every build), the laid-out pages of the PDF editions, the EPUB's
chapters, and the files of the build folder; watch the course and build again on save.

Only the loopback interface is served unless asked otherwise; a request whose Host header
names another server is refused (DNS rebinding); nothing outside the build folder is
served; the page runs its own script only (Content-Security-Policy), and the EPUB's
chapters are shown in a sandbox that runs none.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import json
import posixpath
import socket
import threading
import time
import webbrowser
import xml.etree.ElementTree as ET
import zipfile
from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from pubkit.editions import EDITIONS
from pubkit.errors import Diagnostic, PubkitError
from pubkit.output import MANIFEST_NAME
from pubkit.preview.builder import Builder, Built, running
from pubkit.preview.pages import Pages

#: The port asked for first when none is given (a bookmark survives a restart); a free one
#: is chosen when it is taken.
PREFERRED_PORT = 8765
LOOPBACK = "127.0.0.1"
#: The page's own script and styles only; no inline script, no plug-ins, no framing.
PAGE_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "connect-src 'self'; frame-src 'self'; base-uri 'none'; form-action 'none'; "
    "frame-ancestors 'none'"
)
#: An EPUB chapter: its styles, fonts and images, no script at all, in a sandbox (that
#: keeps the origin, so that the page can keep the reader's scroll position).
CHAPTER_POLICY = (
    "default-src 'none'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
    "font-src 'self'; media-src 'self'; frame-ancestors 'self'; sandbox allow-same-origin"
)
#: Files of the build folder (PDFs, EPUBs, the downloads page): no script either.
FILE_POLICY = (
    "default-src 'none'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
    "font-src 'self'; object-src 'self'; frame-ancestors 'self'"
)
_CONTENT_TYPES = {
    ".xhtml": "application/xhtml+xml",
    ".html": "text/html",
    ".css": "text/css",
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".gif": "image/gif",
    ".svg": "image/svg+xml",
    ".webp": "image/webp",
    ".ttf": "font/ttf",
    ".otf": "font/otf",
    ".woff": "font/woff",
    ".woff2": "font/woff2",
}
_OPF = "{http://www.idpf.org/2007/opf}"
_CONTAINER = "{urn:oasis:names:tc:opendocument:xmlns:container}"


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
    generation: int = 0
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
            "generation": self.generation,
            "course": self.manifest.get("course", {}),
            "busy": self.busy,
            "took": self.took,
            "messages": self.messages.get("", []),
            "modules": list(modules.values()),
            "collections": [
                {
                    "module": item["module"],
                    "editions": {
                        name: edition["path"] for name, edition in item["editions"].items()
                    },
                }
                for item in self.manifest.get("collections", ())
            ],
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
            for name, edition in entry.get("editions", {}).items()
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
        self.generation += 1
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
        failed = {_lesson_id(path) for path in built.failed}
        asked = {lesson_id for lesson_id, _ in built.sources}
        if whole or built.manifest is None:
            self.failed, self.messages = failed, {}
        else:  # some lessons only: what the others last said stands
            self.failed = (self.failed - asked) | failed
            self.messages = {key: value for key, value in self.messages.items() if key not in asked}
            self.messages.pop("", None)
        by_source = {path: lesson_id for lesson_id, path in self.sources.items()}
        for path in built.failed:
            by_source.setdefault(path, _lesson_id(path))
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
            failed = f", {len(built.failed)} failed" if built.failed else ""
            self.say(f"preview: built in {self.took:.1f} s{failed}", bool(built.failed))

    # Files of the build folder

    def edition_file(self, lesson_id: str, edition: str) -> tuple[Path, str] | None:
        """The lesson's built file of ``edition``, and its version; none if there is none."""
        for entry in self.manifest.get("lessons", ()):
            if entry["id"] == lesson_id and edition in entry.get("editions", {}):
                item = entry["editions"][edition]
                path = (self.out / item["path"]).resolve()
                if path.is_relative_to(self.out) and path.is_file():
                    return path, item["sha256"][:16]
        return None


def _lesson_id(path: Path) -> str:
    return f"{path.parent.name}/{path.stem}"


def _message(diagnostic: Diagnostic) -> dict[str, str]:
    return {"severity": diagnostic.severity.value, "text": str(diagnostic)}


def _read_manifest(out: Path) -> Mapping[str, Any]:
    try:
        data = json.loads((out / MANIFEST_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


# The web application


def application(session: Session, hosts: Callable[[str], bool]) -> ASGIApp:
    page = resources.files("pubkit.preview") / "page"
    assets = {
        "/": ("index.html", "text/html; charset=utf-8"),
        "/preview.js": ("preview.js", "text/javascript; charset=utf-8"),
        "/preview.css": ("preview.css", "text/css; charset=utf-8"),
        "/favicon.svg": ("favicon.svg", "image/svg+xml"),
    }
    loaded = {route: ((page / name).read_bytes(), kind) for route, (name, kind) in assets.items()}

    async def asset(request: Request) -> Response:
        body, kind = loaded[request.url.path]
        return Response(body, media_type=kind, headers={"Cache-Control": "no-cache"})

    async def state(_request: Request) -> Response:
        return JSONResponse(session.snapshot(), headers={"Cache-Control": "no-store"})

    async def events(request: Request) -> Response:
        return StreamingResponse(
            _events(session),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
        )

    async def pages(request: Request) -> Response:
        found = _paged(session, request)
        if found is None:
            return _not_found()
        path, version = found
        laid_out = await asyncio.to_thread(session.pages.pages, path, version)
        return JSONResponse(
            {
                "version": version,
                "pages": [{"width": p.width, "height": p.height, "text": p.text} for p in laid_out],
            },
            headers={"Cache-Control": "no-store"},
        )

    async def image(request: Request) -> Response:
        found = _paged(session, request)
        number = request.query_params.get("n", "")
        if found is None or not number.isdigit():
            return _not_found()
        path, version = found
        png = await asyncio.to_thread(session.pages.image, path, version, int(number))
        if png is None:
            return _not_found()
        fresh = request.query_params.get("v") == version
        cache = "private, max-age=31536000, immutable" if fresh else "no-store"
        return Response(png, media_type="image/png", headers={"Cache-Control": cache})

    async def chapters(request: Request) -> Response:
        found = session.edition_file(request.query_params.get("lesson", ""), "epub")
        if found is None:
            return _not_found()
        path, version = found
        spine = await asyncio.to_thread(_spine, path)
        return JSONResponse(
            {"version": version, "chapters": spine}, headers={"Cache-Control": "no-store"}
        )

    async def chapter_file(request: Request) -> Response:
        params = request.path_params
        lesson_id = f"{params['module']}/{params['lesson']}"
        found = session.edition_file(lesson_id, "epub")
        if found is None:
            return _not_found()
        body = await asyncio.to_thread(_member, found[0], params["member"])
        if body is None:
            return _not_found()
        kind = _CONTENT_TYPES.get(posixpath.splitext(params["member"])[1].lower())
        if kind is None:
            return _not_found()
        return Response(
            body,
            media_type=kind,
            headers={"Content-Security-Policy": CHAPTER_POLICY, "Cache-Control": "no-cache"},
        )

    app = Starlette(
        routes=[
            *(Route(path, asset) for path in assets),
            Route("/api/state", state),
            Route("/api/events", events),
            Route("/api/pages", pages),
            Route("/api/page.png", image),
            Route("/api/chapters", chapters),
            Route("/epub/{version}/{module}/{lesson}/{member:path}", chapter_file),
            Mount("/files", app=_Files(directory=session.out, check_dir=False)),
        ]
    )
    return _Guard(app, hosts)


async def _events(session: Session) -> AsyncIterator[str]:
    """The state now, then again after every change, until the page or the server
    goes; a comment every 15 s keeps the connection open through proxies."""
    queue: asyncio.Queue[str | None] = asyncio.Queue()
    session.listeners.add(queue)
    try:
        yield f"event: state\ndata: {json.dumps(session.snapshot())}\n\n"
        quiet = 0.0
        while not session.closing:
            try:
                data = await asyncio.wait_for(queue.get(), timeout=0.5)
            except TimeoutError:
                quiet += 0.5
                if quiet >= 15:
                    quiet = 0.0
                    yield ": still here\n\n"
                continue
            if data is None:
                return
            quiet = 0.0
            yield f"event: state\ndata: {data}\n\n"
    finally:
        session.listeners.discard(queue)


def _paged(session: Session, request: Request) -> tuple[Path, str] | None:
    edition = request.query_params.get("edition", "")
    if edition not in EDITIONS or not EDITIONS[edition].paged:
        return None
    return session.edition_file(request.query_params.get("lesson", ""), edition)


def _not_found() -> Response:
    return PlainTextResponse("Not found", status_code=404)


def _spine(epub: Path) -> list[dict[str, str]]:
    """The EPUB's reading order: each document's path in the package, and whether it is
    the cover."""
    with zipfile.ZipFile(epub) as package:
        container = ET.fromstring(package.read("META-INF/container.xml"))
        rootfile = container.find(f".//{_CONTAINER}rootfile")
        opf_path = rootfile.get("full-path", "") if rootfile is not None else ""
        opf = ET.fromstring(package.read(opf_path))
    base = posixpath.dirname(opf_path)
    items = {
        item.get("id"): item for item in opf.iter(f"{_OPF}item") if item.get("href") is not None
    }
    chapters = []
    for ref in opf.iter(f"{_OPF}itemref"):
        item = items.get(ref.get("idref"))
        if item is None:
            continue
        href = posixpath.normpath(posixpath.join(base, item.get("href", "")))
        cover = "cover" in (item.get("properties") or "") or "cover" in href.rsplit("/", 1)[-1]
        chapters.append({"path": href, "kind": "cover" if cover else "text"})
    return chapters


def _member(epub: Path, name: str) -> bytes | None:
    """A file of the EPUB, by its exact name in the package; none for anything else."""
    if not name or ".." in name.split("/"):
        return None
    with zipfile.ZipFile(epub) as package:
        if name not in package.namelist():
            return None
        return package.read(name)


class _Files(StaticFiles):
    """The build folder's files, as StaticFiles serves them (nothing outside the folder,
    no symbolic link out of it, no folder listing), none of them allowed to run script."""

    async def get_response(self, path: str, scope: Scope) -> Response:
        response = await super().get_response(path, scope)
        response.headers["Content-Security-Policy"] = FILE_POLICY
        return response


class _Guard:
    """Every response: refused unless the request's Host header names this server;
    otherwise given the page's security headers (a route may set its own policy)."""

    def __init__(self, app: ASGIApp, hosts: Callable[[str], bool]) -> None:
        self.app = app
        self.hosts = hosts

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        if not self.hosts(headers.get(b"host", b"").decode("latin-1")):
            refusal = PlainTextResponse("This preview answers to its own address only.", 421)
            await refusal(scope, receive, send)
            return
        if scope["method"] not in ("GET", "HEAD"):
            await PlainTextResponse("Method not allowed", 405)(scope, receive, send)
            return

        async def secured(message: Message) -> None:
            if message["type"] == "http.response.start":
                names = {name.lower() for name, _ in message.get("headers", ())}
                extra = [
                    (b"x-content-type-options", b"nosniff"),
                    (b"referrer-policy", b"no-referrer"),
                    (b"cross-origin-resource-policy", b"same-origin"),
                ]
                if b"content-security-policy" not in names:
                    extra.append((b"content-security-policy", PAGE_POLICY.encode()))
                message = {**message, "headers": [*message.get("headers", ()), *extra]}
            await send(message)

        await self.app(scope, receive, secured)


def host_check(host: str, port: int) -> Callable[[str], bool]:
    """Which Host headers name this server: its address and port; ``localhost`` when it
    listens on the loopback interface; any address or this machine's own name when it
    listens on every interface. Never another name, which a DNS-rebinding page would send."""
    listening = _address(host)
    loopback = listening is not None and listening.is_loopback
    wildcard = listening is not None and listening.is_unspecified
    names = {socket.gethostname().lower(), socket.getfqdn().lower()} if wildcard else set()

    def allowed(header: str) -> bool:
        name, _, given = header.rpartition(":")
        if not name or given != str(port):
            return False
        name = name.lower()
        address = _address(name.strip("[]"))
        if address is not None:
            return address == listening or wildcard
        return (name == "localhost" and (loopback or wildcard)) or name in names or name == host

    return allowed


def _address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


# Running it


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
    ready: Callable[[str], None] | None = None,
) -> None:
    """Build the course (or ``targets``), serve its preview, and build again on every
    save until interrupted (Ctrl-C). ``say`` hears what the terminal shows (message,
    whether it is an error); ``ready`` is called with the address once it is served."""
    import uvicorn

    from pubkit.check import check

    say = say or (lambda text, _error: print(text))
    checked = check(root)  # pubkit.yaml must be readable to know where the build goes
    out = (out or checked.config.output_dir).resolve()
    sock = listen(host or LOOPBACK, port)
    url = url_of(sock)
    with running(root, out, {}) as builder:  # forked before any thread starts
        session = Session(builder, out, tuple(t.resolve() for t in targets), say)
        bound_host, bound_port = sock.getsockname()[:2]
        app = _Lifespan(application(session, host_check(bound_host, bound_port)), session, root)
        config = uvicorn.Config(
            app, log_level="warning", access_log=False, lifespan="on", timeout_graceful_shutdown=1
        )
        server = _Server(config, session)
        say(f"preview: {url} (Ctrl-C stops it)", False)
        if host is not None and not _is_loopback(bound_host):
            say(f"preview: listening on {bound_host}: other machines can reach it", False)
        if browser:
            threading.Thread(target=webbrowser.open, args=(url,), daemon=True).start()
        if ready:
            ready(url)
        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(server.serve(sockets=[sock]))
    sock.close()
    say("preview: stopped", False)


def _is_loopback(host: str) -> bool:
    address = _address(host)
    return address is not None and address.is_loopback


class _Server:
    """uvicorn's server, which also tells the session to stop when it is told to."""

    def __init__(self, config: Any, session: Session) -> None:
        import uvicorn

        session_ = session

        class Server(uvicorn.Server):
            def handle_exit(self, sig: int, frame: Any) -> None:
                session_.closing = True
                super().handle_exit(sig, frame)

        self._server = Server(config)

    async def serve(self, sockets: list[socket.socket]) -> None:
        await self._server.serve(sockets=sockets)


class _Lifespan:
    """The app, with the watcher and the builds running while it is served."""

    def __init__(self, app: ASGIApp, session: Session, root: Path) -> None:
        self.app = app
        self.session = session
        self.root = root

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "lifespan":
            await self.app(scope, receive, send)
            return
        tasks: list[asyncio.Task[None]] = []
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                tasks = [
                    asyncio.create_task(self.session.rebuilding()),
                    asyncio.create_task(_watch(self.root, self.session)),
                ]
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                self.session.closing = True
                for listener in self.session.listeners:
                    listener.put_nowait(None)
                for task in tasks:
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
                await send({"type": "lifespan.shutdown.complete"})
                return


async def _watch(root: Path, session: Session) -> None:
    """Every burst of saves under the course folder (but the build folder) as one change;
    the operating system tells (inotify), nothing polls."""
    from watchfiles import DefaultFilter, awatch

    quiet = DefaultFilter(ignore_paths=[str(session.out)])
    async for changes in awatch(root.resolve(), watch_filter=quiet, step=50, rust_timeout=500):
        session.changed(Path(path).resolve() for _change, path in changes)
