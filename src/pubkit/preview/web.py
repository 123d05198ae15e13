"""The preview's web application: the page, the state of every lesson (as JSON, and
pushed as server-sent events after every build), the laid-out pages of the PDF editions,
the EPUB's chapters, and the files of the build folder.

A request whose Host header names another server is refused (DNS rebinding); nothing
outside the build folder is served, nor any folder's listing; the page runs its own script
only (Content-Security-Policy), and the EPUB's chapters are shown in a sandbox that runs
none.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import posixpath
import socket
import xml.etree.ElementTree as ET
import zipfile
from collections.abc import AsyncIterator, Callable
from importlib import resources
from pathlib import Path

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Lifespan, Message, Receive, Scope, Send

from pubkit.editions import EDITIONS
from pubkit.preview.session import Session

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


def application(
    session: Session, hosts: Callable[[str], bool], lifespan: Lifespan[Starlette] | None = None
) -> ASGIApp:
    """The preview's routes behind their guard (:class:`_Guard`); ``lifespan`` runs while
    they are served."""
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
        ],
        lifespan=lifespan,
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
    listening = ip_of(host)
    loopback = listening is not None and listening.is_loopback
    wildcard = listening is not None and listening.is_unspecified
    names = {socket.gethostname().lower(), socket.getfqdn().lower()} if wildcard else set()

    def allowed(header: str) -> bool:
        name, _, given = header.rpartition(":")
        if not name or given != str(port):
            return False
        name = name.lower()
        address = ip_of(name.strip("[]"))
        if address is not None:
            return address == listening or wildcard
        return (name == "localhost" and (loopback or wildcard)) or name in names or name == host

    return allowed


def ip_of(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None
