"""File uploads of the local Bot API: `sendPhoto` with a multipart upload or a file_id, and the bytes kept
for the demo page."""

from __future__ import annotations

import copy
import re
import secrets
import struct
from typing import Any

from domain.telegram_html import utf16_len
from localapi.state import MAX_CAPTION_LENGTH, Files, Params, ServerState, bad_request


def _image_size(data: bytes) -> tuple[int, int]:
    """Width and height of a PNG or JPEG, so PhotoSize looks plausible; a square guess otherwise."""
    if data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) >= 24:
        width, height = struct.unpack(">II", data[16:24])
        return int(width), int(height)
    if data[:2] == b"\xff\xd8":
        index = 2
        while index + 9 < len(data):
            if data[index] != 0xFF:
                index += 1
                continue
            marker = data[index + 1]
            (segment,) = struct.unpack(">H", data[index + 2 : index + 4])
            if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
                height, width = struct.unpack(">HH", data[index + 5 : index + 9])
                return int(width), int(height)
            index += 2 + segment
    return 512, 512


class Uploads(ServerState):
    """sendPhoto and the files the bot uploaded."""

    # ------------------------------------------------------------------ methods: photos and files

    async def _send_photo(self, params: Params, files: Files) -> Any:
        chat = self._chat_for(params, sending=True)
        photo = params.get("photo")
        upload: tuple[str, bytes] | None = files.get("photo")
        if isinstance(photo, str) and photo.startswith("attach://"):
            upload = files.get(photo.removeprefix("attach://"))
            if upload is None:
                raise bad_request("wrong file identifier/HTTP URL specified")
        if upload is not None:
            sizes = self._store_upload(upload[1])
        elif isinstance(photo, str) and photo in self._files:
            sizes = self._files[photo]["sizes"]
        elif isinstance(photo, str) and re.match(r"^https?://", photo):
            sizes = self._store_upload(b"", remote=photo)
        else:
            raise bad_request("wrong file identifier/HTTP URL specified")
        content: dict[str, Any] = {"photo": copy.deepcopy(sizes)}
        rendered = ""
        caption = params.get("caption")
        if caption:
            plain, entities, rendered = self._format(
                str(caption), params.get("parse_mode"), params.get("caption_entities")
            )
            if utf16_len(plain) > MAX_CAPTION_LENGTH:
                raise bad_request("message caption is too long")
            content["caption"] = plain
            if entities:
                content["caption_entities"] = entities
        return self._store_bot_message(
            chat, params, content, html_text=rendered, parse_mode=params.get("parse_mode")
        )

    def _store_upload(self, data: bytes, remote: str | None = None) -> list[dict[str, Any]]:
        width, height = _image_size(data) if data else (800, 600)
        sizes: list[dict[str, Any]] = []
        # Telegram answers with a thumbnail and the full size; both are addressable file_ids.
        scale = min(1.0, 90 / max(width, height, 1))
        for w, h, size in (
            (round(width * scale), round(height * scale), len(data) // 20),
            (width, height, len(data)),
        ):
            file_id = "AgACAgUAAx" + secrets.token_urlsafe(24)
            entry: dict[str, Any] = {
                "file_id": file_id,
                "file_unique_id": "AQAD" + secrets.token_urlsafe(8),
                "file_size": size,
                "width": max(w, 1),
                "height": max(h, 1),
            }
            sizes.append(entry)
        for entry in sizes:
            self._files[entry["file_id"]] = {"sizes": sizes, "bytes": data, "remote": remote}
        return sizes

    async def _get_file(self, params: Params, files: Files) -> Any:
        file_id = str(params.get("file_id", ""))
        stored = self._files.get(file_id)
        if stored is None or not stored["bytes"]:
            raise bad_request("invalid file_id")
        entry = next(size for size in stored["sizes"] if size["file_id"] == file_id)
        return {
            "file_id": file_id,
            "file_unique_id": entry["file_unique_id"],
            "file_size": len(stored["bytes"]),
            "file_path": f"photos/{file_id}.jpg",
        }

    def file_at(self, path: str) -> bytes | None:
        """The bytes of a file by the `file_path` getFile gave (`photos/<file_id>.jpg`)."""
        name = path.removeprefix("photos/").removesuffix(".jpg")
        return self.file_bytes(name) if path.startswith("photos/") else None

    def user_photo(self, data: bytes) -> list[dict[str, Any]]:
        """The PhotoSize list of a photo a user is about to send (`send_content(…, {"photo": sizes})`):
        its file_ids are known to getFile and downloadable, as a real user's photo is to the bot."""
        return copy.deepcopy(self._store_upload(data))

    def file_bytes(self, file_id: str) -> bytes | None:
        """The bytes a bot uploaded under any of the photo's file_ids (for the demo page)."""
        stored = self._files.get(file_id)
        return stored["bytes"] if stored else None
