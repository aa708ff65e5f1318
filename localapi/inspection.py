"""Inspecting the local Bot API: what a test asserts on (the chats as they are now, the calls the bot
made) and waiting for the bot to act."""

from __future__ import annotations

import asyncio
import copy
import inspect
from collections.abc import Callable
from typing import Any, TypeVar

from localapi.state import ChatMessage, ServerState, Stored

T = TypeVar("T")


class Inspection(ServerState):
    """Read-only views of the state, and waits on its changes."""

    # ------------------------------------------------------------------ inspection

    def chat(self, chat_id: int) -> list[ChatMessage]:
        """Every message of the chat in order, as it is now; [] for a chat nobody opened."""
        chat = self._chats.get(chat_id)
        return [stored.snapshot() for stored in chat.messages.values()] if chat else []

    def message(self, chat_id: int, message_id: int) -> ChatMessage | None:
        chat = self._chats.get(chat_id)
        stored = chat.messages.get(message_id) if chat else None
        return stored.snapshot() if stored else None

    def bot_messages(self, chat_id: int) -> list[ChatMessage]:
        return [m for m in self.chat(chat_id) if m.from_bot]

    def last_bot_message(self, chat_id: int) -> ChatMessage | None:
        messages = self.bot_messages(chat_id)
        return messages[-1] if messages else None

    def reply_keyboard(self, chat_id: int) -> dict[str, Any] | None:
        """The reply keyboard the chat's input field shows now (sent with a message, until removed)."""
        chat = self._chats.get(chat_id)
        return copy.deepcopy(chat.reply_keyboard) if chat else None

    def calls_to(self, method: str) -> list[dict[str, Any]]:
        return [params for name, params in self.calls if name.lower() == method.lower()]

    @property
    def pending_updates(self) -> list[dict[str, Any]]:
        return copy.deepcopy(self._updates)

    def changes_since(self, chat_id: int, version: int) -> tuple[list[ChatMessage], list[int]]:
        """Messages created or edited, and ids deleted, after `version` (for the demo's long poll)."""
        chat = self._chats.get(chat_id)
        if chat is None:
            return [], []
        changed = [s.snapshot() for s in chat.messages.values() if s.changed > version]
        deleted = [message_id for message_id, at in chat.deleted.items() if at > version]
        return changed, deleted

    def mark(self) -> int:
        """The event counter now; pass it to `wait_for_change` to wait for what happens after."""
        return self._version

    def describe(self, limit: int = 20) -> str:
        """A readable dump of chats, recent calls and queue, for failure messages."""
        lines: list[str] = []
        for chat_id, chat in self._chats.items():
            lines.append(f"chat {chat_id} ({chat.info['type']}{', blocked' if chat.blocked else ''}):")
            for stored in list(chat.messages.values())[-limit:]:
                message = stored.snapshot()
                who = "bot " if message.from_bot else "user"
                if message.venue:
                    body = f"[venue {message.venue['title']} / {message.venue['address']}]"
                elif message.location:
                    body = f"[location {message.location['latitude']}, {message.location['longitude']}]"
                else:
                    body = message.text.replace("\n", " ⏎ ")[:160]
                buttons = [b.get("text") for b in message.buttons]
                extra = f" buttons={buttons}" if buttons else ""
                extra += f" (edited {message.edits}x)" if message.edits else ""
                lines.append(f"  #{message.message_id} {who}: {body}{extra}")
        if not self._chats:
            lines.append("no chats")
        recent = [(name, params) for name, params in self.calls if name != "getUpdates"][-10:]
        lines.append("recent calls: " + (", ".join(name for name, _ in recent) or "none"))
        failed = [f"{method}: {description}" for method, description in self.errors[-5:]]
        if failed:
            lines.append("recent errors: " + "; ".join(failed))
        if self.unknown_methods:
            lines.append(f"unknown methods called: {self.unknown_methods}")
        lines.append(f"pending updates: {len(self._updates)}")
        return "\n".join(lines)

    async def wait_for(
        self,
        predicate: Callable[[], T | bool | None],
        timeout: float = 5.0,  # noqa: ASYNC109 - a polling deadline, not a cancellation scope
    ) -> T:
        """Poll `predicate` every 5 ms until it returns something truthy, and return that."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            result: Any = predicate()
            if inspect.isawaitable(result):
                result = await result
            if result:
                return result  # type: ignore[no-any-return]
            if loop.time() >= deadline:
                raise TimeoutError(f"condition not met within {timeout} s\n{self.describe()}")
            await asyncio.sleep(0.005)

    async def wait_for_bot_reply(
        self,
        chat_id: int,
        after_message_id: int,
        timeout: float = 5.0,  # noqa: ASYNC109 - passed on to wait_for
    ) -> ChatMessage:
        """The first bot message newer than `after_message_id`, or a bot message edited after that message."""
        chat = self._chats.get(chat_id)
        anchor = chat.messages.get(after_message_id) if chat else None
        since = anchor.created if anchor else None

        def reply() -> ChatMessage | None:
            current = self._chats.get(chat_id)
            if current is None:
                return None
            candidates: list[tuple[int, Stored]] = []
            for stored in current.messages.values():
                if not stored.from_bot:
                    continue
                if stored.message_id > after_message_id:
                    candidates.append((stored.created, stored))
                elif since is not None and stored.edits and stored.changed > since:
                    candidates.append((stored.changed, stored))
            return min(candidates, key=lambda c: c[0])[1].snapshot() if candidates else None

        return await self.wait_for(reply, timeout)

    async def wait_for_change(
        self,
        chat_id: int,
        mark: int,
        timeout: float = 5.0,  # noqa: ASYNC109 - passed on to wait_for
    ) -> ChatMessage:
        """The bot message sent or edited most recently after `mark` (see `mark()`)."""

        def changed() -> ChatMessage | None:
            current = self._chats.get(chat_id)
            if current is None:
                return None
            fresh = [s for s in current.messages.values() if s.from_bot and s.changed > mark]
            return max(fresh, key=lambda s: s.changed).snapshot() if fresh else None

        return await self.wait_for(changed, timeout)
