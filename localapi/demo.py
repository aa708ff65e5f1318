"""The browser side of the local Bot API: one demo user chatting with the bot on a phone-sized page.

`yizhan demo` lets a person try the bot without Telegram: the page at `/` is a small chat client (plain
JS in `static/`), and the JSON endpoints below act as user 1001 through the same `LocalBotAPI` methods the
end-to-end tests use, so what a person sees is what the tests assert. The page long-polls
`/demo/api/updates?since=N` on the server's change counter, so the bot's edits re-render messages in place.

Endpoints (JSON in, JSON out; errors are `{"error": "…"}` with status 400):
  GET  /                          the page
  GET  /demo/api/config           user, languages, the page's strings in each, bot, preset places
  GET  /demo/api/updates?since=N  changes after version N (held up to 25 s until there is one); without
                                  `since` the whole chat at once, with "reset": true
  POST /demo/api/message          {"text"}; text starting with "/" is sent as a command
  POST /demo/api/press            {"message_id", "callback_data"}
  POST /demo/api/location         {"key"} of a preset or {"latitude", "longitude"}; "live": true shares a
                                  live location that moves twice, ~50 m each, `live_step_seconds` apart
  POST /demo/api/live/stop        stop the simulated live location
  POST /demo/api/language         {"language_code"}: a registry language's tag in lower case (zh-hans …)

The page's strings and the places' labels come from the catalogues (`PAGE_STRINGS`), the languages from
the registry, so the page keeps no translations of its own. Given `chosen_locale` (how `yizhan demo` reads
the bot's database), the page follows the language the user picks with /language.
  GET  /demo/api/file/{file_id}   bytes of a photo the bot uploaded
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aiohttp import web

from bot.i18n import translator
from domain.languages import LANGUAGE
from domain.languages import LANGUAGES as REGISTRY
from domain.text import N_

if TYPE_CHECKING:
    from localapi.server import LocalBotAPI
    from localapi.state import ChatMessage

__all__ = ["DEMO_USER_ID", "LANGUAGES", "DemoChat"]

log = logging.getLogger("yizhan.localapi.demo")

STATIC_DIR = Path(__file__).resolve().parent / "static"
DEMO_USER_ID = 1001
DEMO_FIRST_NAME = "小王"
#: The demo user's Telegram language_code (a registry tag in lower case) → the language's name.
LANGUAGES = {language.tag.lower(): language.name for language in REGISTRY}
_LOCALE_OF = {language.tag.lower(): language.locale for language in REGISTRY}
#: What the chat page shows besides the bot's messages, translated per language by the catalogues.
PAGE_STRINGS: dict[str, str] = {
    "language": N_("Language"),
    "intro_title": N_("What can this bot do?"),
    "start": N_("Start"),
    "live_sharing": N_("Sharing live location"),
    "stop": N_("Stop"),
    "share_title": N_("Send a location"),
    "send_coords": N_("Send coordinates"),
    "live_toggle": N_("Share live location (moves twice, ~50 m each)"),
    "placeholder": N_("Message…"),
    "typing": N_("typing…"),
    "bot": N_("bot"),
    "offline": N_("Connection lost, retrying…"),
    "location": N_("Location"),
    "live_location": N_("Live location"),
    "edited": N_("edited"),
    "open_map": N_("Open in OpenStreetMap"),
    "bad_coords": N_("Type “latitude, longitude”, e.g. 30.657, 104.066"),
    "intro_default": N_("Share a location to find trade-union stations open near you."),
}
LIVE_PERIOD = 900
# ~50 m north per step: 1 degree of latitude is ~111 km everywhere.
LIVE_STEP_DEGREES = 50 / 111_320
MAX_HOLD_SECONDS = 25.0


def _translate(code: str, text: str) -> str:
    """`text` (a msgid) in the language whose lower-case tag is `code`."""
    return translator(_LOCALE_OF.get(code, "en")).gettext(text)


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


class DemoError(Exception):
    """A request the page should not have made; answered as 400 {"error": …}."""


class DemoChat:
    """Routes and state of the demo page, bound to one `LocalBotAPI`."""

    def __init__(
        self,
        api: LocalBotAPI,
        preset_places: list[tuple[str, str, float, float]],
        *,
        live_step_seconds: float = 31.0,
        chosen_locale: Callable[[int], Awaitable[str | None]] | None = None,
    ) -> None:
        self.api = api
        self.chosen_locale = chosen_locale
        self._last_chosen: str | None = None
        self.preset_places = {key: (label, lat, lon) for key, label, lat, lon in preset_places}
        self.live_step_seconds = live_step_seconds
        self.user_id = DEMO_USER_ID
        self.language_code = "zh-hans"
        self._live_task: asyncio.Task[None] | None = None
        self._live_message_id: int | None = None

    def install(self, app: web.Application) -> None:
        app.router.add_get("/", self._page)
        app.router.add_static("/demo/static/", STATIC_DIR, append_version=False)
        app.router.add_get("/demo/api/config", self._config)
        app.router.add_get("/demo/api/updates", self._updates)
        app.router.add_post("/demo/api/message", self._message)
        app.router.add_post("/demo/api/press", self._press)
        app.router.add_post("/demo/api/location", self._location)
        app.router.add_post("/demo/api/live/stop", self._live_stop)
        app.router.add_post("/demo/api/language", self._language)
        app.router.add_get("/demo/api/file/{file_id}", self._file)

    # ------------------------------------------------------------------ helpers

    @property
    def _user_kwargs(self) -> dict[str, Any]:
        return {"language_code": self.language_code, "first_name": DEMO_FIRST_NAME}

    @staticmethod
    async def _body(request: web.Request) -> dict[str, Any]:
        try:
            body = await request.json()
        except ValueError as exc:
            raise DemoError("body must be a JSON object") from exc
        if not isinstance(body, dict):
            raise DemoError("body must be a JSON object")
        return body

    @staticmethod
    def _ok(payload: dict[str, Any]) -> web.Response:
        return web.json_response(payload, dumps=_dumps, headers={"Cache-Control": "no-store"})

    @staticmethod
    def _error(message: str) -> web.Response:
        return web.json_response({"error": message}, status=400, dumps=_dumps)

    def _message_view(self, message: ChatMessage) -> dict[str, Any]:
        raw = message.raw
        photo = None
        if message.photo:
            largest = message.photo[-1]
            photo = {"file_id": largest["file_id"], "width": largest["width"], "height": largest["height"]}
        reply_to = raw.get("reply_to_message")
        return {
            "id": message.message_id,
            "from": "bot" if message.from_bot else "user",
            "date": message.date,
            "edits": message.edits,
            "html": message.html,
            "text": message.text,
            "reply_markup": raw.get("reply_markup"),
            "location": message.location,
            "venue": message.venue,
            "photo": photo,
            "reply_to": (
                {"id": reply_to["message_id"], "text": reply_to.get("text") or reply_to.get("caption") or ""}
                if reply_to
                else None
            ),
        }

    # ------------------------------------------------------------------ routes

    async def _page(self, request: web.Request) -> web.StreamResponse:
        return web.FileResponse(STATIC_DIR / "chat.html", headers={"Cache-Control": "no-store"})

    async def _config(self, request: web.Request) -> web.Response:
        return self._ok(
            {
                "user": {
                    "id": self.user_id,
                    "first_name": DEMO_FIRST_NAME,
                    "language_code": self.language_code,
                },
                "languages": [
                    {"code": language.tag.lower(), "label": language.name, "tag": language.tag}
                    for language in REGISTRY
                ],
                "strings": {
                    code: {key: _translate(code, text) for key, text in PAGE_STRINGS.items()}
                    for code in LANGUAGES
                },
                "bot": {"username": self.api.username, "first_name": self.api.bot_user["first_name"]},
                "preset_places": [
                    {
                        "key": key,
                        "label": _translate(self.language_code, label),
                        "labels": {code: _translate(code, label) for code in LANGUAGES},
                        "latitude": lat,
                        "longitude": lon,
                    }
                    for key, (label, lat, lon) in self.preset_places.items()
                ],
                "live_period": LIVE_PERIOD,
                "live_step_seconds": self.live_step_seconds,
            }
        )

    async def _updates(self, request: web.Request) -> web.Response:
        try:
            since = int(request.query.get("since", "-1"))
            hold = min(float(request.query.get("wait", MAX_HOLD_SECONDS)), MAX_HOLD_SECONDS)
        except ValueError:
            return self._error("since and wait must be numbers")
        # No `since` (or -1), or a counter from before a server restart, means: send the whole chat again.
        reset = since < 0 or since > self.api.version
        if not reset:
            deadline = asyncio.get_running_loop().time() + hold
            while self.api.version <= since and not self.api.closing:
                remaining = deadline - asyncio.get_running_loop().time()
                if remaining <= 0:
                    break
                await self.api.wait_change(remaining)
        await self._follow_chosen_language()
        baseline = 0 if reset else since
        changed, deleted = self.api.changes_since(self.user_id, baseline)
        return self._ok(
            {
                "version": self.api.version,
                "reset": reset,
                "messages": [self._message_view(m) for m in sorted(changed, key=lambda m: m.message_id)],
                "deleted": [] if reset else deleted,
                "notices": [] if reset else self.api.notices_since(self.user_id, since),
                "reply_keyboard": self.api.reply_keyboard(self.user_id),
                "commands": self.api.commands_for(self.language_code, self.user_id),
                "description": self.api.description("description", self.language_code),
                "language_code": self.language_code,
                "live": {"active": self._live_task is not None, "message_id": self._live_message_id},
            }
        )

    async def _follow_chosen_language(self) -> None:
        """Adopt the language the user chose with /language, so that the page and its selector follow it.

        Only a new choice is adopted: picking another language in the selector afterwards still works."""
        if self.chosen_locale is None:
            return
        try:
            locale = await self.chosen_locale(self.user_id)
        except Exception:
            log.warning("could not read the demo user's language", exc_info=True)
            return
        if locale == self._last_chosen:
            return
        self._last_chosen = locale
        language = LANGUAGE.get(locale) if locale else None
        if language is not None and language.tag.lower() != self.language_code:
            self.language_code = language.tag.lower()
            self.api.set_language(self.user_id, self.language_code)

    async def _message(self, request: web.Request) -> web.Response:
        try:
            body = await self._body(request)
            text = str(body.get("text") or "").strip()
            if not text:
                raise DemoError("text is empty")
        except DemoError as exc:
            return self._error(str(exc))
        if text.startswith("/"):
            message = await self.api.send_command(self.user_id, text, **self._user_kwargs)
        else:
            message = await self.api.send_text(self.user_id, text, **self._user_kwargs)
        return self._ok({"message_id": message["message_id"]})

    async def _press(self, request: web.Request) -> web.Response:
        try:
            body = await self._body(request)
            query_id = await self.api.press(
                self.user_id, int(body["message_id"]), str(body["callback_data"]), **self._user_kwargs
            )
        except (DemoError, KeyError, TypeError, ValueError) as exc:
            return self._error(f"cannot press that button: {exc}")
        return self._ok({"callback_query_id": query_id})

    def _point(self, body: dict[str, Any]) -> tuple[float, float]:
        if "key" in body:
            place = self.preset_places.get(str(body["key"]))
            if place is None:
                raise DemoError(f"no preset place {body['key']!r}")
            return place[1], place[2]
        try:
            lat, lon = float(body["latitude"]), float(body["longitude"])
        except (KeyError, TypeError, ValueError) as exc:
            raise DemoError("latitude and longitude must be numbers") from exc
        if not (-90 <= lat <= 90 and -180 <= lon <= 180):
            raise DemoError("latitude must be within ±90 and longitude within ±180")
        return lat, lon

    async def _location(self, request: web.Request) -> web.Response:
        try:
            body = await self._body(request)
            lat, lon = self._point(body)
        except DemoError as exc:
            return self._error(str(exc))
        live = bool(body.get("live"))
        await self.stop_live()
        message = await self.api.send_location(
            self.user_id, lat, lon, live_period=LIVE_PERIOD if live else None, **self._user_kwargs
        )
        if live:
            self._live_message_id = message["message_id"]
            self._live_task = asyncio.create_task(
                self._move(message["message_id"], lat, lon), name="demo-live"
            )
        return self._ok({"message_id": message["message_id"], "live": live})

    async def _move(self, message_id: int, lat: float, lon: float) -> None:
        """Walk the live location north twice, like a rider heading to the station."""
        try:
            for step in (1, 2):
                await asyncio.sleep(self.live_step_seconds)
                await self.api.update_live_location(
                    self.user_id, message_id, lat + step * LIVE_STEP_DEGREES, lon
                )
        except ValueError:
            log.info("live location %s ended early: the message is gone", message_id)
        finally:
            self._live_task = None
            self._live_message_id = None
            self.api.set_language(
                self.user_id, self.language_code
            )  # bumps the counter: the page sees "ended"

    async def stop_live(self) -> None:
        task, self._live_task = self._live_task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _live_stop(self, request: web.Request) -> web.Response:
        await self.stop_live()
        return self._ok({"live": False})

    async def _language(self, request: web.Request) -> web.Response:
        try:
            body = await self._body(request)
            code = str(body.get("language_code"))
            if code not in LANGUAGES:
                raise DemoError(f"language_code must be one of {', '.join(LANGUAGES)}")
        except DemoError as exc:
            return self._error(str(exc))
        self.language_code = code
        self.api.set_language(self.user_id, code)
        return self._ok({"language_code": code})

    async def _file(self, request: web.Request) -> web.Response:
        data = self.api.file_bytes(request.match_info["file_id"])
        if not data:
            raise web.HTTPNotFound()
        content_type = "image/png" if data[:4] == b"\x89PNG" else "image/jpeg"
        return web.Response(body=data, content_type=content_type)
