"""Notices: the union's announcements as the H5 page shows them to whoever stands in their audience.

An announcement reaches the bot's subscribers in its audience (bot/services/announcements.py: a region
by adcode prefix, optionally only within a radius of a point or a station). The page has no subscribers,
so it asks the other way round: which announcements sent lately cover this position? The position's
district is looked up, compared with each audience's region, and the distance to the audience's centre
with its radius. The position is used for that and not kept. Only announcements that went out (sending,
done, or scheduled and due) are notices; paused, cancelled and drafts are not.
"""

from __future__ import annotations

import asyncio
import html
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.services.search import WGS84
from domain.values import GeoPoint
from storage.announcements_repo import AnnouncementRepository
from storage.regions import RegionLookup

#: Announcements older than this are no longer notices.
NOTICE_WINDOW = timedelta(days=30)
#: Most notices one position is shown, newest first.
MAX_NOTICES = 10
#: Sent announcements read per request to find those covering a position.
_CANDIDATES = 200
_TAG = re.compile(r"<[^>]*>")


@dataclass(frozen=True, slots=True)
class Notice:
    id: int
    text: str
    sent_at: datetime

    def as_json(self) -> dict[str, object]:
        return {"id": self.id, "text": self.text, "sent_at": self.sent_at.isoformat()}


def plain_text(telegram_html: str) -> str:
    """An announcement's text (Telegram's HTML) as plain text: tags dropped, entities read."""
    return html.unescape(_TAG.sub("", telegram_html)).strip()


#: Seconds the sent announcements read for one request serve the next ones: every H5 page with a position
#: asks, so a crowd would otherwise read the database per page (the overload issue: answers the memory can
#: give do not touch it). A new announcement, a pause or a cancel shows within this long.
NOTICES_CACHE_S = 5.0


class NoticeService:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        regions: RegionLookup,
        window: timedelta = NOTICE_WINDOW,
        limit: int = MAX_NOTICES,
        cache_s: float = NOTICES_CACHE_S,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.sessions = sessions
        self.regions = regions
        self.window = window
        self.limit = limit
        self.cache_s = cache_s
        self._monotonic = monotonic
        self._cached: tuple[float, list[Any]] | None = None
        self._reading = asyncio.Lock()

    async def _sent(self, at: datetime) -> list[Any]:
        """The announcements sent within the window, newest first: from memory for `cache_s` seconds after
        a read, and one read at a time (a crowd arriving together waits for the same read)."""
        cached = self._cached
        if cached is not None and self._monotonic() - cached[0] < self.cache_s:
            return cached[1]
        async with self._reading:
            cached = self._cached
            if cached is not None and self._monotonic() - cached[0] < self.cache_s:
                return cached[1]
            async with self.sessions() as session:
                rows = await AnnouncementRepository(session).sent_since(at - self.window, at, _CANDIDATES)
            self._cached = (self._monotonic(), rows)
            return rows

    def _district_of(self, point: GeoPoint) -> str:
        region = self.regions.index().lookup(point.lat, point.lon)
        return region.adcode if region is not None else ""

    async def covering(self, point: GeoPoint, at: datetime) -> list[Notice]:
        """Announcements sent within the window whose audience covers `point`, newest first."""
        rows = await self._sent(at)
        if not rows:
            return []
        district = await asyncio.to_thread(self._district_of, point)
        notices: list[Notice] = []
        for row in rows:
            # "" addresses everyone; anything else needs the position inside that adcode prefix.
            if row.region and not district.startswith(row.region):
                continue
            if row.radius_km is not None and row.lat is not None and row.lon is not None:
                distance = float(WGS84.inv(row.lon, row.lat, point.lon, point.lat)[2])
                if distance > row.radius_km * 1000:
                    continue
            notices.append(Notice(row.id, plain_text(row.text), row.scheduled_at or row.created_at))
            if len(notices) == self.limit:
                break
        return notices
