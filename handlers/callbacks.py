"""Callback data of every inline button. Short prefixes keep them inside Telegram's 64 bytes.

Buttons carry the query point (rounded to about a metre) instead of a server-side session, so results
survive restarts and replicas, and a forged or stale button can do no more than run a search.
"""

from __future__ import annotations

from typing import Annotated

from aiogram.filters.callback_data import CallbackData
from pydantic import Field

#: Every id a button carries fits a database integer (a signed 64-bit one on PostgreSQL and SQLite); a
#: forged one outside 1..2^63-1 fails to unpack, so no handler runs and the catch-all answers "out of date".
MAX_DB_ID = 2**63 - 1
DbId = Annotated[int, Field(ge=1, le=MAX_DB_ID)]
#: Optional ids (0 = none) and page numbers.
DbIdOrZero = Annotated[int, Field(ge=0, le=MAX_DB_ID)]
Page = Annotated[int, Field(ge=0, le=10_000)]


class ResultsCb(CallbackData, prefix="r"):
    lat: float
    lon: float
    page: Page = 0
    closed: bool = False


class StationCb(CallbackData, prefix="st"):
    id: DbId
    lat: float
    lon: float


class FilterCb(CallbackData, prefix="f"):
    """action: o = open the filter, t = toggle `key`, c = clear, d = done (show results)."""

    action: str
    key: str = ""
    lat: float
    lon: float
    closed: bool = False


class LanguageCb(CallbackData, prefix="lang"):
    locale: str


def round_point(lat: float, lon: float) -> tuple[float, float]:
    return round(lat, 5), round(lon, 5)


class ReportCb(CallbackData, prefix="rp"):
    """action: s = start on a station, k = kind chosen, a = amenity chosen, go = send, x = cancel."""

    action: str
    station: DbId
    value: str = ""


class RateCb(CallbackData, prefix="rt"):
    station: DbId
    stars: Annotated[int, Field(ge=0, le=5)] = 0


class ModCb(CallbackData, prefix="md"):
    """action: v = view, ok = approve, no = reject, ask = ask for details, p = page of the queue."""

    action: str
    case: DbIdOrZero = 0
    page: Page = 0


class StaffCb(CallbackData, prefix="sf"):
    """action: ver, tc (temporarily close), ro (reopen), cl (close for good), hr, ph, am, hist;
    at = toggle amenity `value`, ad = amenities done."""

    action: str
    station: DbId
    value: str = ""


class SubscribeCb(CallbackData, prefix="sb"):
    """action: p = subscribe to province `region`, here = subscribe with the area of (lat, lon) (the
    one-time offer after a search), no = decline the offer. Only a ~5 km cell of the point is stored."""

    action: str
    region: str = ""
    lat: float = 0.0
    lon: float = 0.0


class UnsubscribeCb(CallbackData, prefix="unsub"):
    """Packs to plain "unsub": the button bot/broadcast.py puts on every announcement."""


class ComposeCb(CallbackData, prefix="ac"):
    """Composing an announcement. action: np = no photo, all = every subscriber of region `value`,
    sub = type a sub-region, pt = near a shared point, stn = near a station, km = radius `value`,
    go = send now, at = schedule, x = cancel."""

    action: str
    value: str = ""


class AnnouncementCb(CallbackData, prefix="an"):
    """Managing a sent or scheduled announcement. action: p = pause, r = resume, x = cancel."""

    action: str
    id: DbId


class ForgetCb(CallbackData, prefix="fg"):
    """/forget's confirmation. action: yes = delete my data, no = keep it."""

    action: str
