"""Shared harness of the end-to-end bot tests: the real dispatcher, middlewares and HTTP session against
the local Bot API server, with a fixed clock and a small station set around a point in Guangzhou."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from aiogram import Dispatcher

from bot.app import Core, open_core
from bot.config import Settings
from bot.i18n import translator
from bot.telegram import build_bot, build_dispatcher
from domain.values import StationRecord, StationStatus
from localapi import LocalBotAPI
from storage.models import SubscriptionOfferRow, SubscriptionRow

HOME = (23.1300, 113.2600)
NOON = datetime(2025, 6, 3, 4, 0, tzinfo=UTC)  # Tuesday 12:00 in China
LANGS = {"zh-hans": "zh_Hans", "zh-hant": "zh_Hant", "en": "en"}


def north(metres: float) -> tuple[float, float]:
    return HOME[0] + metres / 111_000, HOME[1]


def station(code: str, name: str, metres: float, **kw: Any) -> StationRecord:
    lat, lon = north(metres)
    base: dict[str, Any] = dict(
        address=f"广州市中山路{code[-2:]}号",
        opening_hours="24/7",
        amenities=("drinking_water",),
        phone="020-8888" + code[-4:],
        manager="李华",
        host="中国移动",
        region="440104",
    )
    base.update(kw)
    return StationRecord(code=code, name=name, lat=lat, lon=lon, **base)


STATIONS = [
    station("GZ0001", "天河移动营业厅工会驿站", 200, amenities=("drinking_water", "toilet")),
    station(
        "GZ0002",
        "越秀建设银行爱心驿站",
        500,
        opening_hours="Mo-Su 08:00-20:00",
        amenities=("drinking_water", "food_heating"),
    ),
    station("GZ0003", "海珠夜班驿站", 900, opening_hours="Mo-Su 22:00-06:00"),
    station("GZ0004", "暂停服务的驿站", 100, status=StationStatus.TEMPORARILY_CLOSED),
    *[station(f"GZ01{i:02d}", f"第{i}号驿站", 1000 + 150 * i) for i in range(1, 9)],
    # Far away, in Hotan (Xinjiang).
    StationRecord(code="XJ0001", name="和田工会驿站", lat=37.11, lon=79.93, opening_hours="24/7"),
]


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@dataclass
class Env:
    api: LocalBotAPI
    core: Core
    clock: Clock
    dp: Dispatcher
    user_id: int = 501

    def tr(self, lang: str, text: str) -> str:
        return translator(LANGS[lang]).gettext(text)

    async def offer_due(self, user_id: int) -> bool:
        """Whether this user's next search brings the one-time subscription offer."""
        async with self.core.sessions() as session:
            subscribed = await session.get(SubscriptionRow, user_id)
            offered = await session.get(SubscriptionOfferRow, user_id)
        return subscribed is None and offered is None

    async def act(self, action: Awaitable[Any], user_id: int | None = None) -> Any:
        """Run a user action and return the bot's newest message after it.

        A rider's first search is followed by the one-time subscription offer. Then the answer is the
        results, and the offer is waited for too, so that it cannot arrive in the middle of the next action.
        """
        user_id = self.user_id if user_id is None else user_id
        offer_due = await self.offer_due(user_id)
        mark = self.api.mark()
        await action
        reply = await self.api.wait_for_change(user_id, mark)
        if not offer_due or not (is_results(reply) or is_offer(reply)):
            return reply
        await self.api.wait_for(lambda: self._after(user_id, mark, is_offer))
        return self._after(user_id, mark, is_results) or reply

    def _after(self, user_id: int, mark: int, kind: Any) -> Any:
        fresh = [m for m in self.api.changes_since(user_id, mark)[0] if m.from_bot and kind(m)]
        return fresh[-1] if fresh else None

    async def location(self, lang: str, lat: float = HOME[0], lon: float = HOME[1], **kw: Any) -> Any:
        return await self.act(self.api.send_location(self.user_id, lat, lon, language_code=lang, **kw))

    async def press(self, lang: str, message_id: int, data: str) -> Any:
        mark = self.api.mark()
        await self.api.press(self.user_id, message_id, data, language_code=lang)
        return await self.api.wait_for_change(self.user_id, mark)

    async def text(self, lang: str, text: str) -> Any:
        return await self.act(self.api.send_text(self.user_id, text, language_code=lang))

    async def settle(self) -> None:
        """Wait until every queued update was taken and handled."""
        await self.api.wait_for(lambda: not self.api.pending_updates)
        await asyncio.sleep(0.2)


@pytest.fixture
async def env(tmp_path: Path) -> AsyncIterator[Env]:
    settings = Settings(database_url=f"sqlite+aiosqlite:///{tmp_path / 'bot.db'}", _env_file=None)  # type: ignore[call-arg]
    async with open_core(settings) as core:
        await core.stations.save_records(STATIONS)
        await core.reload_index()
        api = LocalBotAPI()
        url = await api.start()
        bot = build_bot(api.token, url)
        clock = Clock(NOON)
        dp = build_dispatcher(core, clock=clock, throttle_rate=50, throttle_burst=50)
        task = asyncio.create_task(dp.start_polling(bot, handle_signals=False, polling_timeout=1))
        await api.wait_for(lambda: api.calls_to("getUpdates"))
        try:
            yield Env(api, core, clock, dp)
        finally:
            await dp.stop_polling()
            await asyncio.wait_for(task, 10)
            await bot.session.close()
            await api.stop()


def names_in(text: str) -> list[str]:
    """Station names in the order the text shows them."""
    found = [(text.find(s.name), s.name) for s in STATIONS if s.name in text]
    return [name for _, name in sorted(found)]


def button_data(message: Any, startswith: str) -> list[str]:
    return [b["callback_data"] for b in message.buttons if b.get("callback_data", "").startswith(startswith)]


def is_results(message: Any) -> bool:
    """A search answer: every one carries the filter button."""
    return bool(button_data(message, "f:o:"))


def is_offer(message: Any) -> bool:
    """The one-time subscription offer after a rider's first search."""
    return bool(button_data(message, "sb:no"))
