"""Turn resource URLs into file contents, refusing anything outside the allowed folders."""

from __future__ import annotations

import mimetypes
import stat
from pathlib import Path
from urllib.parse import unquote, urlsplit

from weasyprint.urls import URLFetcher, URLFetcherResponse

from pubkit.document.math import FORMULA_SCHEME, drawing

#: The largest resource (image, font) a manuscript may pull into a PDF.
MAX_RESOURCE_BYTES = 64 * 1024 * 1024
#: Where the project appears to WeasyPrint. WeasyPrint names each embedded image after
#: its URL, so a URL that does not depend on the folder the project is checked out in
#: keeps the PDF's bytes the same wherever it is built (and keeps that folder out of it).
PROJECT_URL_ROOT = Path("/pubkit-project")


def project_url(root: Path, path: Path) -> str:
    """The URL WeasyPrint is given for ``path`` inside the project at ``root``."""
    return (PROJECT_URL_ROOT / path.relative_to(root)).as_uri()


class ProjectFetcher(URLFetcher):  # type: ignore[misc]
    """A WeasyPrint URL fetcher that reads regular files under ``roots`` and nothing else.

    No network, no device files, no symbolic link out of the project. Every refusal is
    recorded in :attr:`refused` so the build can report it as an error.
    """

    def __init__(self, roots: list[Path], project: Path | None = None) -> None:
        """``project``: the folder that :func:`project_url` URLs stand for."""
        super().__init__(allowed_protocols=("file", "data"))
        self.roots = [root.resolve() for root in roots]
        self.project = project.resolve() if project else None
        self.refused: list[str] = []

    def _refuse(self, url: str, why: str) -> ValueError:
        self.refused.append(f"{url}: {why}")
        return ValueError(why)

    def fetch(self, url: str, headers: object = None) -> URLFetcherResponse:
        scheme = urlsplit(url).scheme.lower()
        if scheme == "data":
            return super().fetch(url, headers)
        if scheme == FORMULA_SCHEME:
            if (svg := drawing(url)) is None:
                raise self._refuse(url, "no formula of this lesson")
            return URLFetcherResponse(url, body=svg, headers={"Content-Type": "image/svg+xml"})
        if scheme != "file":
            raise self._refuse(url, "only files inside the project may be used")
        path = Path(unquote(urlsplit(url).path))
        if self.project and path.is_relative_to(PROJECT_URL_ROOT):
            path = self.project / path.relative_to(PROJECT_URL_ROOT)
        path = path.resolve()
        if not any(path.is_relative_to(root) for root in self.roots):
            raise self._refuse(url, "outside the project folder")
        try:
            info = path.stat()
        except OSError:
            raise self._refuse(url, "no such file") from None
        if not stat.S_ISREG(info.st_mode):
            raise self._refuse(url, "not a regular file")
        if info.st_size > MAX_RESOURCE_BYTES:
            raise self._refuse(url, "larger than 64 MiB")
        media_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        return URLFetcherResponse(
            path.as_uri(), body=path.read_bytes(), headers={"Content-Type": media_type}
        )
