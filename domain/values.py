"""Values shared by every layer: station records, amenity keys, statuses and domain errors.

Nothing here touches a database, a network or a clock. Storage builds these from rows, services pass them
around, handlers and the web layer render them.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from domain.amenities import AMENITIES

#: Amenity keys in their canonical order (bitmasks, icons, exports) and the Simplified Chinese label imports
#: accept besides the key; both from the amenity registry (`domain/amenities.py`).
AMENITY_LABELS_ZH: dict[str, str] = {amenity.key: amenity.label_zh for amenity in AMENITIES}
AMENITY_KEYS: tuple[str, ...] = tuple(AMENITY_LABELS_ZH)
AMENITY_BIT: dict[str, int] = {key: 1 << i for i, key in enumerate(AMENITY_KEYS)}


def amenity_mask(keys: frozenset[str] | set[str] | tuple[str, ...] | list[str]) -> int:
    """Bitmask of amenity keys; raises UnknownAmenity for a key that is not one of ours."""
    mask = 0
    for key in keys:
        try:
            mask |= AMENITY_BIT[key]
        except KeyError:
            raise UnknownAmenity(key) from None
    return mask


def amenities_from_mask(mask: int) -> tuple[str, ...]:
    return tuple(key for key in AMENITY_KEYS if mask & AMENITY_BIT[key])


class StationStatus(enum.StrEnum):
    ACTIVE = "active"
    TEMPORARILY_CLOSED = "temporarily_closed"
    CLOSED = "closed"


class CRS(enum.StrEnum):
    WGS84 = "wgs84"
    GCJ02 = "gcj02"
    BD09 = "bd09"


class YizhanError(Exception):
    """Base of the errors the edges translate into a user-facing message."""


class InvalidLocation(YizhanError):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class UnknownAmenity(YizhanError):
    def __init__(self, key: str) -> None:
        super().__init__(f"unknown amenity: {key}")
        self.key = key


class InvalidOpeningHours(YizhanError):
    """`message` is English for logs and the command line; `code` and `details` let an edge say it in the
    user's language (`domain.hours.HoursProblem` lists the codes)."""

    def __init__(
        self, expression: str, message: str, code: str = "invalid", details: dict[str, Any] | None = None
    ) -> None:
        super().__init__(f"invalid opening hours {expression!r}: {message}")
        self.expression = expression
        self.message = message
        self.code = code
        self.details = details or {}


class StationNotFound(YizhanError):
    def __init__(self, code: str) -> None:
        super().__init__(f"no station with code {code!r}")
        self.code = code


class InvalidCursor(YizhanError):
    """A paging cursor that this service did not hand out (or that was altered)."""


@dataclass(frozen=True, slots=True)
class GeoPoint:
    """A WGS-84 point. Construct with `GeoPoint.parse` for untrusted input."""

    lat: float
    lon: float

    @classmethod
    def parse(cls, lat: object, lon: object) -> GeoPoint:
        try:
            flat = float(lat)  # type: ignore[arg-type]
            flon = float(lon)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            raise InvalidLocation("not a number") from None
        if not (math.isfinite(flat) and math.isfinite(flon)):
            raise InvalidLocation("not a finite number")
        if not -90.0 <= flat <= 90.0:
            raise InvalidLocation("latitude out of range")
        if not -180.0 <= flon <= 180.0:
            raise InvalidLocation("longitude out of range")
        return cls(flat, flon)


@dataclass(frozen=True, slots=True)
class BBox:
    """A WGS-84 bounding box, edges included. It never crosses the antimeridian (China does not), so
    `min_lon <= max_lon` and `min_lat <= max_lat` always hold; `BBox.parse` checks untrusted input."""

    min_lon: float
    min_lat: float
    max_lon: float
    max_lat: float

    @classmethod
    def parse(cls, text: str) -> BBox:
        """`minLon,minLat,maxLon,maxLat` (the GeoJSON order); raises InvalidLocation."""
        parts = text.split(",")
        if len(parts) != 4:
            raise InvalidLocation("a bounding box is four numbers: minLon,minLat,maxLon,maxLat")
        try:
            min_lon, min_lat, max_lon, max_lat = (float(part) for part in parts)
        except ValueError:
            raise InvalidLocation("a bounding box is four numbers: minLon,minLat,maxLon,maxLat") from None
        for lat, lon in ((min_lat, min_lon), (max_lat, max_lon)):
            GeoPoint.parse(lat, lon)  # finite and in range, or InvalidLocation
        if min_lon > max_lon or min_lat > max_lat:
            raise InvalidLocation("the minimum of a bounding box must not exceed its maximum")
        return cls(min_lon, min_lat, max_lon, max_lat)


@dataclass(frozen=True, slots=True)
class StationRecord:
    """One station as imported, exported and stored; coordinates are always WGS-84."""

    code: str
    name: str
    lat: float
    lon: float
    address: str = ""
    region: str = ""
    host: str = ""
    opening_hours: str = ""
    amenities: tuple[str, ...] = ()
    phone: str = ""
    manager: str = ""
    status: StationStatus = StationStatus.ACTIVE
    timezone: str | None = None
    verified_at: datetime | None = None
    #: The hours as the source wrote them when they had to be translated into `opening_hours`
    #: (`周一至周五 9:00-17:00`); "" when `opening_hours` is what was written.
    opening_hours_text: str = ""


@dataclass(frozen=True, slots=True)
class Station(StationRecord):
    """A stored station: a record plus its identity and bookkeeping times."""

    id: int = 0
    created_at: datetime | None = None
    updated_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class User:
    """Someone the bot knows: Telegram identity, language choice and remembered amenity filter."""

    id: int
    first_name: str = ""
    username: str | None = None
    language_code: str | None = None
    locale: str | None = None
    amenity_filter: tuple[str, ...] = ()
