"""The H5 page's static files, served from memory: read and gzipped once when the app starts.

A phone on a slow network pays for every byte and every round trip, so each file gets a URL with its own
content hash (`/h5/app.js?v=3f2a…`, written into the page by `bot/web/h5.py`). Such a URL names one version
forever and is cached for a year (`immutable`); any other URL of the file (no `v`, or an old one) is
revalidated (`no-cache`) with its ETag. Text files go gzipped (level 9, once) to clients that accept it;
brotli would save a little more but is not a dependency. Only files present at start are served, so no
path can escape the directory.
"""

from __future__ import annotations

import gzip
import hashlib
import mimetypes
from dataclasses import dataclass
from pathlib import Path

from aiohttp import web

__all__ = ["IMMUTABLE", "Asset", "StaticAssets", "accepts_gzip", "compressed"]

IMMUTABLE = "public, max-age=31536000, immutable"
REVALIDATE = "no-cache"
TEXT_SUFFIXES = frozenset({".js", ".css", ".json", ".svg", ".html", ".webmanifest", ".txt"})
CONTENT_TYPES = {
    ".js": "text/javascript",
    ".css": "text/css",
    ".json": "application/json",
    ".webmanifest": "application/manifest+json",
    ".svg": "image/svg+xml",
    ".html": "text/html",
}


def accepts_gzip(accept_encoding: str) -> bool:
    """Whether an Accept-Encoding header admits gzip (`gzip;q=0` refuses it)."""
    for item in accept_encoding.split(","):
        coding, *parameters = (part.strip() for part in item.split(";"))
        if coding.lower() not in ("gzip", "x-gzip"):
            continue
        quality = 1.0
        for parameter in parameters:
            if parameter.lower().startswith("q="):
                try:
                    quality = float(parameter[2:])
                except ValueError:
                    quality = 0.0
        if quality > 0:
            return True
    return False


def compressed(body: bytes) -> bytes | None:
    """`body` gzipped (deterministically: no timestamp), or None when that saves nothing worth a header."""
    packed = gzip.compress(body, compresslevel=9, mtime=0)
    return packed if len(packed) < len(body) * 0.9 else None


@dataclass(frozen=True, slots=True)
class Asset:
    body: bytes
    gzipped: bytes | None
    content_type: str
    #: The first 12 hex digits of the SHA-256 of `body`: the `v` of its versioned URL and its ETag.
    digest: str

    @classmethod
    def of(cls, body: bytes, suffix: str) -> Asset:
        content_type = CONTENT_TYPES.get(suffix) or mimetypes.guess_type("x" + suffix)[0]
        return cls(
            body=body,
            gzipped=compressed(body) if suffix in TEXT_SUFFIXES else None,
            content_type=content_type or "application/octet-stream",
            digest=hashlib.sha256(body).hexdigest()[:12],
        )

    def response(
        self, request: web.Request, cache_control: str, headers: dict[str, str] | None = None
    ) -> web.Response:
        """This asset for `request`: 304 when the client has it, gzipped when it may be."""
        gzipped = self.gzipped is not None and accepts_gzip(request.headers.get("Accept-Encoding", ""))
        tag = f'"{self.digest}-gz"' if gzipped else f'"{self.digest}"'
        common = {"Cache-Control": cache_control, "ETag": tag, "X-Content-Type-Options": "nosniff"}
        if self.gzipped is not None:
            common["Vary"] = "Accept-Encoding"
        common.update(headers or {})
        if any(etag.value in ("*", self.digest, f"{self.digest}-gz") for etag in request.if_none_match or ()):
            return web.Response(status=304, headers=common)
        if gzipped:
            common["Content-Encoding"] = "gzip"
        response = web.Response(body=self.gzipped if gzipped else self.body, headers=common)
        response.content_type = self.content_type
        if self.content_type.startswith("text/") or self.content_type.endswith(("json", "javascript")):
            response.charset = "utf-8"
        return response


class StaticAssets:
    """Every file under `root`, by its path relative to it (`vendor/leaflet/leaflet.js`)."""

    def __init__(
        self, root: Path, prefix: str = "/h5/", exclude: frozenset[str] | set[str] = frozenset()
    ) -> None:
        self.prefix = prefix
        self.files: dict[str, Asset] = {
            path.relative_to(root).as_posix(): Asset.of(path.read_bytes(), path.suffix.lower())
            for path in sorted(root.rglob("*"))
            if path.is_file()
            and not path.name.startswith(".")
            and path.relative_to(root).as_posix() not in exclude
        }

    def url(self, name: str) -> str:
        """The versioned URL of a file (KeyError for one that does not exist: a page must not link to it)."""
        return f"{self.prefix}{name}?v={self.files[name].digest}"

    async def handle(self, request: web.Request) -> web.Response:
        asset = self.files.get(request.match_info["path"])
        if asset is None:
            raise web.HTTPNotFound()
        versioned = request.query.get("v") == asset.digest
        return asset.response(request, IMMUTABLE if versioned else REVALIDATE)
