"""Photos riders sent the bot with their reports, fetched from Telegram for the staff console.

A report keeps a photo as Telegram's `file_id` only (no copy of ours, and the retention job forgets it), so
the console asks the Bot API for it when a clerk looks: `getFile` gives a path, valid for an hour, and
`/file/bot<token>/<path>` the bytes. Plain aiohttp rather than aiogram: `yizhan serve` does not otherwise
load aiogram, whose types take seconds to import. The token never reaches the browser; the console's own
route (`/console/moderation/{case}/photos/{n}`) checks the clerk's scope first.
"""

from __future__ import annotations

import logging

import aiohttp

log = logging.getLogger(__name__)

#: Telegram lets bots download files up to 20 MB; a report's photo is a few hundred KB.
MAX_PHOTO_BYTES = 10 * 1024 * 1024
DEFAULT_API = "https://api.telegram.org"


class PhotoUnavailable(Exception):
    """Telegram does not have the file (any more), refused, or did not answer in time."""


class TelegramPhotos:
    def __init__(self, token: str, api_url: str | None = None, timeout_s: float = 10.0) -> None:
        self._token = token
        self._api = (api_url or DEFAULT_API).rstrip("/")
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._session: aiohttp.ClientSession | None = None

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(timeout=self._timeout)
        return self._session

    async def fetch(self, file_id: str) -> tuple[bytes, str]:
        """The photo's bytes and content type. Raises `PhotoUnavailable`."""
        client = self._client()
        try:
            async with client.get(
                f"{self._api}/bot{self._token}/getFile", params={"file_id": file_id}
            ) as got:
                answer = await got.json(content_type=None)
            if not answer.get("ok") or not answer.get("result", {}).get("file_path"):
                raise PhotoUnavailable(str(answer.get("description", "no file_path")))
            path = answer["result"]["file_path"]
            async with client.get(f"{self._api}/file/bot{self._token}/{path}") as response:
                if response.status != 200:
                    raise PhotoUnavailable(f"download answered {response.status}")
                if (response.content_length or 0) > MAX_PHOTO_BYTES:
                    raise PhotoUnavailable("larger than a photo")
                data = await response.content.read(MAX_PHOTO_BYTES + 1)
                if len(data) > MAX_PHOTO_BYTES:
                    raise PhotoUnavailable("larger than a photo")
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            raise PhotoUnavailable(f"{type(exc).__name__}: {exc}") from None
        if data[:2] == b"\xff\xd8":
            return data, "image/jpeg"
        if data[:8] == b"\x89PNG\r\n\x1a\n":
            return data, "image/png"
        if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
            return data, "image/webp"
        raise PhotoUnavailable("not an image")

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
