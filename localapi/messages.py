"""Message methods of the local Bot API: send, edit and delete messages, answer callback queries, send
locations, venues and chat actions."""

from __future__ import annotations

import copy
from typing import Any

from domain.telegram_html import utf16_len
from localapi.state import (
    CHAT_ACTIONS,
    MAX_TEXT_LENGTH,
    NOT_MODIFIED,
    Files,
    Params,
    ServerState,
    Stored,
    bad_request,
)


class MessageMethods(ServerState):
    """sendMessage, editMessageText, answerCallbackQuery, sendLocation …"""

    # ------------------------------------------------------------------ methods: messages

    async def _send_message(self, params: Params, files: Files) -> Any:
        chat = self._chat_for(params, sending=True)
        text = params.get("text")
        if not isinstance(text, str) or not text.strip():
            raise bad_request("message text is empty")
        plain, entities, rendered = self._format(text, params.get("parse_mode"), params.get("entities"))
        if not plain.strip():
            raise bad_request("message text is empty")
        if utf16_len(plain) > MAX_TEXT_LENGTH:
            raise bad_request("message is too long")
        content: dict[str, Any] = {"text": plain}
        if entities:
            content["entities"] = entities
        preview = self._link_preview(params)
        if preview:
            content["link_preview_options"] = preview
        return self._store_bot_message(
            chat, params, content, html_text=rendered, parse_mode=params.get("parse_mode")
        )

    @staticmethod
    def _link_preview(params: Params) -> dict[str, Any] | None:
        preview = params.get("link_preview_options")
        if preview is None and params.get("disable_web_page_preview"):
            preview = {"is_disabled": True}
        return preview or None

    async def _edit_message_text(self, params: Params, files: Files) -> Any:
        chat = self._chat_for(params)
        stored = self._stored_for(chat, params, "message to edit not found")
        if not stored.from_bot:
            raise bad_request("message can't be edited")
        if "text" not in stored.raw:
            raise bad_request("there is no text in the message to edit")
        text = params.get("text")
        if not isinstance(text, str) or not text.strip():
            raise bad_request("message text is empty")
        plain, entities, rendered = self._format(text, params.get("parse_mode"), params.get("entities"))
        if not plain.strip():
            raise bad_request("message text is empty")
        if utf16_len(plain) > MAX_TEXT_LENGTH:
            raise bad_request("message is too long")
        markup = self._validate_markup(params.get("reply_markup"))
        if markup is not None and "inline_keyboard" not in markup:
            raise bad_request("inline keyboard expected")
        raw = stored.raw
        if plain == raw["text"] and entities == raw.get("entities", []) and markup == raw.get("reply_markup"):
            raise bad_request(NOT_MODIFIED)
        raw["text"] = plain
        raw.pop("entities", None)
        if entities:
            raw["entities"] = entities
        # Like Telegram: an edit without reply_markup removes the inline keyboard.
        self._set_inline_markup(stored, markup)
        preview = self._link_preview(params)
        if preview:
            raw["link_preview_options"] = preview
        stored.html = rendered
        stored.parse_mode = params.get("parse_mode")
        self._edited(stored)
        return copy.deepcopy(raw)

    @staticmethod
    def _set_inline_markup(stored: Stored, markup: dict[str, Any] | None) -> None:
        if markup:
            stored.raw["reply_markup"] = markup
        else:
            stored.raw.pop("reply_markup", None)
        stored.reply_markup = markup

    async def _edit_message_reply_markup(self, params: Params, files: Files) -> Any:
        chat = self._chat_for(params)
        stored = self._stored_for(chat, params, "message to edit not found")
        if not stored.from_bot:
            raise bad_request("message can't be edited")
        markup = self._validate_markup(params.get("reply_markup"))
        if markup is not None and "inline_keyboard" not in markup:
            raise bad_request("inline keyboard expected")
        if markup == stored.raw.get("reply_markup"):
            raise bad_request(NOT_MODIFIED)
        self._set_inline_markup(stored, markup)
        self._edited(stored)
        return copy.deepcopy(stored.raw)

    async def _delete_message(self, params: Params, files: Files) -> Any:
        chat = self._chat_for(params)
        stored = self._stored_for(chat, params, "message to delete not found")
        del chat.messages[stored.message_id]
        chat.deleted[stored.message_id] = self._notify()
        return True

    async def _delete_messages(self, params: Params, files: Files) -> Any:
        chat = self._chat_for(params)
        ids = params.get("message_ids") or []
        if not isinstance(ids, list) or not 1 <= len(ids) <= 100:
            raise bad_request("message_ids is invalid")
        for message_id in ids:
            if chat.messages.pop(int(message_id), None) is not None:
                chat.deleted[int(message_id)] = self._notify()
        return True

    async def _answer_callback_query(self, params: Params, files: Files) -> Any:
        query_id = str(params.get("callback_query_id") or "")
        query = self._callback_queries.get(query_id)
        if query is None or query["answered"]:
            raise bad_request("query is too old and response timeout expired or query ID is invalid")
        query["answered"] = True
        answer = {
            "text": params.get("text"),
            "show_alert": bool(params.get("show_alert", False)),
            "url": params.get("url"),
            "cache_time": int(params.get("cache_time") or 0),
        }
        self.callback_answers[query_id] = answer
        self._notice(query["chat_id"], {"kind": "callback_answer", "callback_query_id": query_id, **answer})
        return True

    def _notice(self, chat_id: int, notice: dict[str, Any]) -> None:
        self._notices.append((self._notify(), chat_id, notice))
        del self._notices[:-200]

    def notices_since(self, chat_id: int, version: int) -> list[dict[str, Any]]:
        return [n for v, c, n in self._notices if c == chat_id and v > version]

    @staticmethod
    def _location(params: Params) -> dict[str, Any]:
        try:
            latitude, longitude = float(params["latitude"]), float(params["longitude"])
        except (KeyError, TypeError, ValueError) as exc:
            raise bad_request("wrong latitude or longitude specified") from exc
        if not (-90 <= latitude <= 90 and -180 <= longitude <= 180):
            raise bad_request("wrong latitude or longitude specified")
        location: dict[str, Any] = {"latitude": latitude, "longitude": longitude}
        for key in ("horizontal_accuracy", "live_period", "heading", "proximity_alert_radius"):
            if params.get(key) is not None:
                location[key] = params[key]
        live_period = location.get("live_period")
        if live_period is not None and not (60 <= live_period <= 86400 or live_period == 0x7FFFFFFF):
            raise bad_request("wrong live period specified")
        return location

    async def _send_location(self, params: Params, files: Files) -> Any:
        chat = self._chat_for(params, sending=True)
        location = self._location(params)
        return self._store_bot_message(chat, params, {"location": location})

    async def _send_venue(self, params: Params, files: Files) -> Any:
        chat = self._chat_for(params, sending=True)
        location = self._location(params)
        title, address = params.get("title"), params.get("address")
        if not title:
            raise bad_request("venue title is empty")
        if address is None:
            raise bad_request("venue address is empty")
        venue: dict[str, Any] = {"location": location, "title": str(title), "address": str(address)}
        for key in ("foursquare_id", "foursquare_type", "google_place_id", "google_place_type"):
            if params.get(key):
                venue[key] = params[key]
        return self._store_bot_message(chat, params, {"location": location, "venue": venue})

    async def _send_chat_action(self, params: Params, files: Files) -> Any:
        chat = self._chat_for(params, sending=True)
        action = params.get("action")
        if action not in CHAT_ACTIONS:
            raise bad_request("wrong parameter action in request")
        self._notice(chat.info["id"], {"kind": "chat_action", "action": action})
        return True
