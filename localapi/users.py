"""Acting as users of the local Bot API: what a test or the demo page does as a person in a chat (send
text, commands, locations, venues, press buttons, block the bot)."""

from __future__ import annotations

import copy
import html
import secrets
import time
from typing import Any

from domain.telegram_html import utf16_len
from localapi.state import Chat, Stored
from localapi.updates import UpdateQueue


class ActingUsers(UpdateQueue):
    """Each action stores the user's message and queues the update a bot would get."""

    # ------------------------------------------------------------------ acting as users

    def _user(self, user_id: int, language_code: str | None, first_name: str) -> dict[str, Any]:
        user: dict[str, Any] = {"id": user_id, "is_bot": False, "first_name": first_name}
        if language_code:
            user["language_code"] = language_code
        self._users[user_id] = user
        return user

    def _user_chat(self, user: dict[str, Any], chat_id: int | None, chat_type: str) -> Chat:
        chat_id = user["id"] if chat_id is None else chat_id
        chat = self._chats.get(chat_id)
        if chat is None:
            if chat_type == "private":
                info = {"id": chat_id, "first_name": user["first_name"], "type": "private"}
            else:
                info = {"id": chat_id, "title": f"测试群 {chat_id}", "type": chat_type}
            chat = self._chats[chat_id] = Chat(info)
        return chat

    async def _user_message(
        self,
        user_id: int,
        content: dict[str, Any],
        *,
        language_code: str,
        first_name: str,
        chat_id: int | None,
        chat_type: str,
        html_text: str = "",
        reply_to_message_id: int | None = None,
    ) -> dict[str, Any]:
        user = self._user(user_id, language_code, first_name)
        chat = self._user_chat(user, chat_id, chat_type)
        reply_to = None
        if reply_to_message_id is not None:
            reply_to = self._reply_target(chat, {"reply_parameters": {"message_id": reply_to_message_id}})
        stored = self._store(
            chat, from_bot=False, sender=user, content=content, html_text=html_text, reply_to=reply_to
        )
        self._enqueue("message", stored.raw)
        return copy.deepcopy(stored.raw)

    async def send_text(
        self,
        user_id: int,
        text: str,
        *,
        language_code: str = "zh-hans",
        first_name: str = "测试",
        chat_id: int | None = None,
        chat_type: str = "private",
        reply_to_message_id: int | None = None,
    ) -> dict[str, Any]:
        """The user writes `text`; returns the Message the bot receives."""
        return await self._user_message(
            user_id,
            {"text": text},
            html_text=html.escape(text, quote=False),
            language_code=language_code,
            first_name=first_name,
            chat_id=chat_id,
            chat_type=chat_type,
            reply_to_message_id=reply_to_message_id,
        )

    async def send_content(
        self,
        user_id: int,
        content: dict[str, Any],
        *,
        language_code: str = "zh-hans",
        first_name: str = "测试",
        chat_id: int | None = None,
        chat_type: str = "private",
    ) -> dict[str, Any]:
        """The user sends a message of any content as the API shapes it (`{"photo": […], "caption": …,
        "caption_entities": […]}`, `{"text": …, "entities": […]}`, a sticker, a contact …)."""
        return await self._user_message(
            user_id,
            content,
            html_text=html.escape(str(content.get("text", content.get("caption", ""))), quote=False),
            language_code=language_code,
            first_name=first_name,
            chat_id=chat_id,
            chat_type=chat_type,
        )

    async def send_command(
        self,
        user_id: int,
        text: str,
        *,
        language_code: str = "zh-hans",
        first_name: str = "测试",
        chat_id: int | None = None,
        chat_type: str = "private",
    ) -> dict[str, Any]:
        """The user sends a command ("/start", "start" or "/start payload"), with its bot_command entity."""
        if not text.startswith("/"):
            text = "/" + text
        command = text.split(maxsplit=1)[0]
        content = {
            "text": text,
            "entities": [{"type": "bot_command", "offset": 0, "length": utf16_len(command)}],
        }
        return await self._user_message(
            user_id,
            content,
            html_text=html.escape(text, quote=False),
            language_code=language_code,
            first_name=first_name,
            chat_id=chat_id,
            chat_type=chat_type,
        )

    async def send_location(
        self,
        user_id: int,
        lat: float,
        lon: float,
        *,
        live_period: int | None = None,
        horizontal_accuracy: float | None = None,
        language_code: str = "zh-hans",
        first_name: str = "测试",
        chat_id: int | None = None,
        chat_type: str = "private",
    ) -> dict[str, Any]:
        """The user shares a location (a live one when `live_period` is given, in seconds)."""
        location: dict[str, Any] = {"latitude": lat, "longitude": lon}
        if horizontal_accuracy is not None:
            location["horizontal_accuracy"] = horizontal_accuracy
        if live_period is not None:
            location["live_period"] = live_period
        return await self._user_message(
            user_id,
            {"location": location},
            language_code=language_code,
            first_name=first_name,
            chat_id=chat_id,
            chat_type=chat_type,
        )

    def _user_stored(self, user_id: int, message_id: int, chat_id: int | None) -> Stored:
        chat = self._chats.get(user_id if chat_id is None else chat_id)
        stored = chat.messages.get(message_id) if chat else None
        if stored is None or stored.from_bot or stored.raw["from"]["id"] != user_id:
            raise ValueError(f"user {user_id} has no message {message_id} in that chat")
        return stored

    async def update_live_location(
        self,
        user_id: int,
        message_id: int,
        lat: float,
        lon: float,
        *,
        heading: int | None = None,
        chat_id: int | None = None,
    ) -> dict[str, Any]:
        """The user's live location moves: an edited_message with the new position."""
        stored = self._user_stored(user_id, message_id, chat_id)
        location = stored.raw.get("location")
        if not location or "live_period" not in location:
            raise ValueError(f"message {message_id} is not a live location")
        location.update(latitude=lat, longitude=lon)
        if heading is not None:
            location["heading"] = heading
        self._edited(stored)
        self._enqueue("edited_message", stored.raw)
        return copy.deepcopy(stored.raw)

    async def send_venue(
        self,
        user_id: int,
        lat: float,
        lon: float,
        title: str,
        address: str,
        *,
        language_code: str = "zh-hans",
        first_name: str = "测试",
        chat_id: int | None = None,
        chat_type: str = "private",
    ) -> dict[str, Any]:
        """The user shares a place picked from the map (a venue, with its location)."""
        location = {"latitude": lat, "longitude": lon}
        venue = {"location": dict(location), "title": title, "address": address}
        return await self._user_message(
            user_id,
            {"location": location, "venue": venue},
            language_code=language_code,
            first_name=first_name,
            chat_id=chat_id,
            chat_type=chat_type,
        )

    async def edit_text(
        self, user_id: int, message_id: int, text: str, *, chat_id: int | None = None
    ) -> dict[str, Any]:
        """The user edits one of their text messages: an edited_message update."""
        stored = self._user_stored(user_id, message_id, chat_id)
        if "text" not in stored.raw:
            raise ValueError(f"message {message_id} has no text")
        stored.raw["text"] = text
        stored.raw.pop("entities", None)
        stored.html = html.escape(text, quote=False)
        self._edited(stored)
        self._enqueue("edited_message", stored.raw)
        return copy.deepcopy(stored.raw)

    async def press(
        self,
        user_id: int,
        message_id: int,
        callback_data: str,
        *,
        language_code: str = "zh-hans",
        first_name: str = "测试",
        chat_id: int | None = None,
        forged: bool = False,
        inaccessible: bool = False,
    ) -> str:
        """The user taps an inline button; returns the callback_query id. The button must exist, unless
        `forged`: then any data, on any message id of any chat, as a modified client could send.
        `inaccessible`: the query carries only the message's chat and id (date 0), as Telegram sends it
        for a message too old for the bot to see."""
        target_chat = user_id if chat_id is None else chat_id
        chat = self._chats.get(target_chat)
        stored = chat.messages.get(message_id) if chat else None
        if not forged:
            if chat is None or stored is None:
                raise ValueError(f"no message {message_id} in chat {target_chat}")
            rows = (stored.raw.get("reply_markup") or {}).get("inline_keyboard") or []
            offered = [b.get("callback_data") for row in rows for b in row if "callback_data" in b]
            if callback_data not in offered:
                raise ValueError(
                    f"message {message_id} has no button with callback_data {callback_data!r}: {offered}"
                )
        user = self._user(user_id, language_code, first_name)
        query_id = str(secrets.randbits(62))
        self._callback_queries[query_id] = {
            "chat_id": target_chat,
            "message_id": message_id,
            "data": callback_data,
            "answered": False,
        }
        if inaccessible:
            message = {
                "message_id": message_id,
                "date": 0,
                "chat": {"id": target_chat, "type": "private" if target_chat > 0 else "supergroup"},
            }
        elif stored is not None:
            message = copy.deepcopy(stored.raw)  # as the bot last rendered it
        else:
            message = {
                "message_id": message_id,
                "date": 0,
                "chat": {"id": target_chat, "type": "private" if target_chat > 0 else "supergroup"},
                "from": {"id": int(self.token.split(":")[0]), "is_bot": True, "first_name": "bot"},
                "text": "…",
            }
        query = {
            "id": query_id,
            "from": user,
            "message": message,
            "chat_instance": str((target_chat * 1_000_003) % 2**62),
            "data": callback_data,
        }
        self._enqueue("callback_query", query)
        return query_id

    async def block(self, user_id: int) -> None:
        """The user blocks the bot: sends fail with 403 and the bot gets a my_chat_member update."""
        await self._set_blocked(user_id, True)

    async def _set_blocked(self, user_id: int, blocked: bool) -> None:
        user = self._users.get(user_id) or self._user(user_id, "zh-hans", "测试")
        chat = self._user_chat(user, None, "private")
        chat.blocked = blocked
        member = {"user": self.bot_user}
        old: dict[str, Any] = {"status": "member"}
        new: dict[str, Any] = {"status": "kicked", "until_date": 0}
        if not blocked:
            old, new = new, old
        self._enqueue(
            "my_chat_member",
            {
                "chat": chat.info,
                "from": user,
                "date": int(time.time()),
                "old_chat_member": {**old, **member},
                "new_chat_member": {**new, **member},
            },
        )

    def set_language(self, user_id: int, language_code: str) -> None:
        """Change a known user's language for the updates that follow."""
        if user_id in self._users:
            self._users[user_id]["language_code"] = language_code
        self._notify()
