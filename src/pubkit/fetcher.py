"""Turn resource URLs into file contents, refusing anything outside the allowed folders."""

from __future__ import annotations

import mimetypes
import stat
from pathlib import Path
from urllib.parse import unquote, urlsplit

from weasyprint.urls import URLFetcher, URLFetcherResponse

#: The largest resource (image, font) a manuscript may pull into a PDF.
MAX_RESOURCE_BYTES = 64 * 1024 * 1024


class ProjectFetcher(URLFetcher):  # type: ignore[misc]
    """A WeasyPrint URL fetcher that reads regular files under ``roots`` and nothing else.

    No network, no device files, no symbolic link out of the project. Every refusal is
    recorded in :attr:`refused` so the build can report it as an error.
    """

    def __init__(self, roots: list[Path]) -> None:
        super().__init__(allowed_protocols=("file", "data"))
        self.roots = [root.resolve() for root in roots]
        self.refused: list[str] = []

    def _refuse(self, url: str, why: str) -> ValueError:
        self.refused.append(f"{url}: {why}")
        return ValueError(why)

    def fetch(self, url: str, headers: object = None) -> URLFetcherResponse:
        scheme = urlsplit(url).scheme.lower()
        if scheme == "data":
            return super().fetch(url, headers)
        if scheme != "file":
            raise self._refuse(url, "only files inside the project may be used")
        path = Path(unquote(urlsplit(url).path)).resolve()
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
