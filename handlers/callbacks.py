"""Callback data of every inline button. Short prefixes keep them inside Telegram's 64 bytes.

Actions have readable names in code and short codes on the wire: each `…Action` enum below is the one
place that maps a name to its code (the values are what buttons already sent carry, so they never change).
The `action` fields stay strings: a code no enum knows still unpacks, and the handler gives its own answer.

Buttons carry the query point (rounded to about a metre) instead of a server-side session, so results
survive restarts and replicas, and a forged or stale button can do no more than run a search.
"""

from __future__ import annotations

import enum
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


class CallCb(CallbackData, prefix="call"):
    """The station card's call button: counted for the station's evaluation, answered with a contact."""

    station: DbId


class FilterAction(enum.StrEnum):
    OPEN = "o"
    #: Toggle the amenity `key`.
    TOGGLE = "t"
    CLEAR = "c"
    #: Show the results.
    DONE = "d"


class FilterCb(CallbackData, prefix="f"):
    #: One of FilterAction (a plain string: a forged code reaches the handler, which answers it).
    action: str
    key: str = ""
    lat: float
    lon: float
    closed: bool = False


class LanguageCb(CallbackData, prefix="lang"):
    locale: str


def round_point(lat: float, lon: float) -> tuple[float, float]:
    return round(lat, 5), round(lon, 5)


class ReportAction(enum.StrEnum):
    #: Start a report on a station.
    START = "s"
    #: The kind of problem was chosen (`value`).
    KIND = "k"
    #: The broken amenity was chosen (`value`).
    AMENITY = "a"
    SEND = "go"
    CANCEL = "x"


class ReportCb(CallbackData, prefix="rp"):
    #: One of ReportAction (a plain string: a forged code reaches the handler, which answers it).
    action: str
    station: DbId
    value: str = ""


class RateCb(CallbackData, prefix="rt"):
    station: DbId
    stars: Annotated[int, Field(ge=0, le=5)] = 0


class ModAction(enum.StrEnum):
    VIEW = "v"
    APPROVE = "ok"
    REJECT = "no"
    #: Ask the reporters for details.
    ASK = "ask"
    #: A page of the queue.
    PAGE = "p"


class ModCb(CallbackData, prefix="md"):
    #: One of ModAction (a plain string: a forged code reaches the handler, which answers it).
    action: str
    case: DbIdOrZero = 0
    page: Page = 0


class StaffAction(enum.StrEnum):
    VERIFY = "ver"
    CLOSE_TEMPORARILY = "tc"
    REOPEN = "ro"
    CLOSE_FOR_GOOD = "cl"
    EDIT_HOURS = "hr"
    EDIT_PHONE = "ph"
    EDIT_AMENITIES = "am"
    HISTORY = "hist"
    #: Toggle the amenity `value` while editing amenities.
    TOGGLE_AMENITY = "at"
    AMENITIES_DONE = "ad"


class StaffCb(CallbackData, prefix="sf"):
    #: One of StaffAction (a plain string: a forged code reaches the handler, which answers it).
    action: str
    station: DbId
    value: str = ""


class SubscribeAction(enum.StrEnum):
    #: Subscribe to the province `region`.
    PROVINCE = "p"
    #: Subscribe with the area of (lat, lon): the one-time offer after a search. Only a ~5 km cell of the
    #: point is stored.
    HERE = "here"
    #: Decline the offer.
    DECLINE = "no"


class SubscribeCb(CallbackData, prefix="sb"):
    #: One of SubscribeAction (a plain string: a forged code reaches the handler, which answers it).
    action: str
    region: str = ""
    lat: float = 0.0
    lon: float = 0.0


class UnsubscribeCb(CallbackData, prefix="unsub"):
    """Packs to plain "unsub": the button bot/broadcast.py puts on every announcement."""


class ComposeAction(enum.StrEnum):
    NO_PHOTO = "np"
    #: Every subscriber of the region `value`.
    WHOLE_REGION = "all"
    #: Type a sub-region.
    SUB_REGION = "sub"
    NEAR_POINT = "pt"
    NEAR_STATION = "stn"
    #: The radius `value` in km.
    RADIUS = "km"
    SEND_NOW = "go"
    SCHEDULE = "at"
    CANCEL = "x"


class ComposeCb(CallbackData, prefix="ac"):
    """Composing an announcement."""

    #: One of ComposeAction (a plain string: a forged code reaches the handler, which answers it).
    action: str
    value: str = ""


class AnnouncementAction(enum.StrEnum):
    PAUSE = "p"
    RESUME = "r"
    CANCEL = "x"


class AnnouncementCb(CallbackData, prefix="an"):
    """Managing a sent or scheduled announcement."""

    #: One of AnnouncementAction (a plain string: a forged code reaches the handler, which answers it).
    action: str
    id: DbId


class ForgetAction(enum.StrEnum):
    DELETE = "yes"
    KEEP = "no"


class ForgetCb(CallbackData, prefix="fg"):
    """/forget's confirmation."""

    #: One of ForgetAction (a plain string: a forged code reaches the handler, which answers it).
    action: str
