"""What the record's renderer may read: ``data:`` URLs and the package's own files, nothing else.

The signed batch record is laid out from our template and the record's words. Nothing in it
needs the network or a file outside the ``mes`` package (fonts come from the system through
fontconfig, not through a URL; the stylesheet is inlined; the QR code is a ``data:`` URL). So
WeasyPrint is given a :class:`PackageFetcher` that refuses every other URL — ``http:``,
``https:``, ``ftp:``, ``file:`` anywhere else — before anything is opened: the hub's renderer
never becomes a way to reach another host (SSRF) or to read the hub's files into a record.

A refusal is never quiet. The fetcher stops the layout at once (WeasyPrint's
``FatalURLFetchingError``) and keeps the URL; where WeasyPrint catches that (it draws SVG
images inside a catch-all), the URL kept makes :func:`check_refusals` raise
:class:`ResourceRefused` after the layout. No PDF missing a resource leaves the renderer.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from urllib.request import url2pathname

from weasyprint.urls import FatalURLFetchingError, URLFetcher, URLFetcherResponse

import mes
from mes.core.errors import MesError
from mes.core.text import first_few

PACKAGE = Path(mes.__file__).resolve().parent


class ResourceRefused(MesError):
    """The printed record asked for something outside the package; it is not printed."""

    http_status = 409

    def __init__(self, urls: list[str]) -> None:
        self.urls = list(urls)
        shown = first_few([repr(url[:120]) for url in self.urls], 3)
        super().__init__(
            f"The printed record asked for {shown}; the renderer reads nothing but "
            "data: URLs and the application's own files, so the record was not printed.",
            what_to_do="Report this to the administrator: the record's text or the print "
            "template refers to an outside resource.",
        )

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.urls,))  # across the layout workers' process boundary


def package_file(url: str) -> Path | None:
    """The file of the ``mes`` package a ``file:`` URL names, or None if it names another."""
    parts = urlsplit(url)
    if parts.scheme.lower() != "file" or parts.netloc not in ("", "localhost"):
        return None
    try:
        path = Path(url2pathname(parts.path)).resolve(strict=True)  # symlinks followed
    except (OSError, RuntimeError, ValueError):
        return None
    return path if path.is_relative_to(PACKAGE) and path.is_file() else None


class PackageFetcher(URLFetcher):
    """WeasyPrint's fetcher, allowed ``data:`` URLs and files inside the ``mes`` package only.

    ``refused`` lists every URL refused during one layout (one fetcher per document).
    """

    def __init__(self) -> None:
        super().__init__(allowed_protocols=("data", "file"), allow_redirects=False)
        self.refused: list[str] = []

    def fetch(self, url: str, headers: Any = None) -> URLFetcherResponse:
        """The resource at ``url`` if it is allowed; otherwise stop the layout."""
        scheme = urlsplit(url).scheme.lower()
        if scheme == "data":
            return super().fetch(url, headers)
        path = package_file(url) if scheme == "file" else None
        if path is not None:
            return super().fetch(path.as_uri(), headers)  # the file checked, not a new lookup
        self.refused.append(url)
        raise FatalURLFetchingError(f"refused: {url[:200]}")

    def check_refusals(self) -> None:
        """Raise :class:`ResourceRefused` if anything was refused during the layout."""
        if self.refused:
            raise ResourceRefused(self.refused)
