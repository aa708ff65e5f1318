"""A local Telegram Bot API server for end-to-end tests, benchmarks and `yizhan demo`.

`LocalBotAPI` speaks the Bot API's HTTP protocol to a real aiogram `Bot` and lets a test (or the demo page
at `/`) act as users and inspect every chat.
"""

from __future__ import annotations

from localapi.demo import DEMO_USER_ID
from localapi.server import LocalBotAPI
from localapi.state import ApiError, ChatMessage

__all__ = ["DEMO_USER_ID", "ApiError", "ChatMessage", "LocalBotAPI"]
