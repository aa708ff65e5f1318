"""Query-string parsing for the HTTP API: each function reads one parameter or raises `BadParameter`.

Everything here is about text coming off the wire; the meaning of the values (ranges, keys, coordinate
systems) comes from `domain.values`. Unknown parameters are ignored, so that clients may add cache busters
and later versions may add parameters. A parameter given twice counts with its first value, except
`amenity`, which may repeat.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from multidict import MultiMapping

from bot.services.stations import SyncCursor
from bot.web.responses import BadParameter
from domain.values import AMENITY_KEYS, CRS, BBox, GeoPoint, InvalidCursor, InvalidLocation

Query = MultiMapping[str]

#: Instants the opening-hours calendar is trusted for; beyond them answers would be guesses (and far
#: enough out, datetime arithmetic overflows).
EARLIEST_AT = datetime(2000, 1, 1, tzinfo=UTC)
LATEST_AT = datetime(2100, 1, 1, tzinfo=UTC)
_INTEGER = re.compile(r"[+-]?[0-9]+")
_TRUE = frozenset({"true", "1"})
_FALSE = frozenset({"false", "0"})
# An unescaped "+" of a UTC offset arrives as a space ("10:30:00 08:00"); put it back.
_SPACED_OFFSET = re.compile(r"(T\d{2}(?::?\d{2}){0,2}(?:\.\d+)?) (\d{2}(?::?\d{2})?)$")


def _shown(value: str) -> str:
    """The offending value for a message: quoted, and cut short (it may be anything, of any length)."""
    return repr(value if len(value) <= 40 else value[:40] + "…")


def _first(query: Query, name: str) -> str | None:
    value = query.get(name)
    return None if value is None else value.strip()


def _number(query: Query, name: str) -> float | None:
    text = _first(query, name)
    if text is None or text == "":
        return None
    try:
        value = float(text)
    except ValueError:
        raise BadParameter(name, f"{name} must be a number, not {_shown(text)}") from None
    if not math.isfinite(value):
        raise BadParameter(name, f"{name} must be a finite number")
    return value


def required_point(query: Query) -> GeoPoint:
    """`lat` and `lon`, both required, as a point in whatever system `crs` names."""
    lat = _number(query, "lat")
    lon = _number(query, "lon")
    if lat is None:
        raise BadParameter("lat", "lat is required (latitude in degrees, -90 to 90)")
    if lon is None:
        raise BadParameter("lon", "lon is required (longitude in degrees, -180 to 180)")
    if not -90.0 <= lat <= 90.0:
        raise BadParameter("lat", "lat must be between -90 and 90")
    if not -180.0 <= lon <= 180.0:
        raise BadParameter("lon", "lon must be between -180 and 180")
    return GeoPoint(lat, lon)


def integer(query: Query, name: str, *, default: int, low: int, high: int) -> int:
    text = _first(query, name)
    if text is None or text == "":
        return default
    # int() would also take "1_000" and "٣"; a count is plain digits. Length is checked apart because
    # int() refuses thousands of digits with an error of its own.
    if not _INTEGER.fullmatch(text):
        raise BadParameter(name, f"{name} must be a whole number from {low} to {high}, not {_shown(text)}")
    if len(text.lstrip("+-0")) > 9 or not low <= int(text) <= high:
        raise BadParameter(name, f"{name} must be from {low} to {high}")
    return int(text)


def boolean(query: Query, name: str, *, default: bool = False) -> bool:
    text = _first(query, name)
    if text is None or text == "":
        return default
    folded = text.lower()
    if folded in _TRUE:
        return True
    if folded in _FALSE:
        return False
    raise BadParameter(name, f"{name} must be true, false, 1 or 0, not {_shown(text)}")


def amenities(query: Query) -> tuple[str, ...]:
    """`amenity` repeated or comma-separated (`amenity=toilet&amenity=wifi`, `amenity=toilet,wifi`)."""
    keys: list[str] = []
    for value in query.getall("amenity", ()):
        for key in value.split(","):
            key = key.strip()
            if not key:
                continue
            if key not in AMENITY_KEYS:
                raise BadParameter(
                    "amenity", f"unknown amenity {_shown(key)}; one of: {', '.join(AMENITY_KEYS)}"
                )
            if key not in keys:
                keys.append(key)
    return tuple(keys)


def crs(query: Query) -> CRS:
    text = _first(query, "crs")
    if text is None or text == "":
        return CRS.WGS84
    try:
        return CRS(text.lower())
    except ValueError:
        raise BadParameter(
            "crs", f"crs must be one of {', '.join(c.value for c in CRS)}, not {_shown(text)}"
        ) from None


def _iso_datetime(name: str, text: str) -> datetime:
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        pass
    fixed = _SPACED_OFFSET.sub(r"\1+\2", text)
    try:
        return datetime.fromisoformat(fixed)
    except ValueError:
        raise BadParameter(
            name, f"{name} must be an ISO 8601 date and time (2025-06-18T10:30:00+08:00), not {_shown(text)}"
        ) from None


def _in_utc(name: str, value: datetime) -> datetime:
    try:
        return value.astimezone(UTC)
    except OverflowError:
        raise BadParameter(name, f"{name} is out of range") from None


def instant(query: Query, name: str, *, default_tz: str, now: Callable[[], datetime]) -> datetime:
    """An instant to evaluate opening hours at; without an offset it is read in `default_tz`.

    The value keeps the offset it was given in, so the answer echoes the client's own time.
    """
    text = _first(query, name)
    if text is None or text == "":
        return now()
    value = _iso_datetime(name, text)
    if value.tzinfo is None:
        value = value.replace(tzinfo=ZoneInfo(default_tz))
    if not EARLIEST_AT <= _in_utc(name, value) < LATEST_AT:
        raise BadParameter(name, f"{name} must lie between 2000 and 2099")
    return value


def since(query: Query) -> datetime | None:
    """A sync's lower bound, usually a previous answer's `server_time`; it must carry its offset."""
    text = _first(query, "since")
    if text is None or text == "":
        return None
    value = _iso_datetime("since", text)
    if value.tzinfo is None:
        raise BadParameter("since", "since needs a UTC offset (pass back server_time as it was given)")
    return _in_utc("since", value)


def bbox(query: Query) -> BBox | None:
    text = _first(query, "bbox")
    if text is None or text == "":
        return None
    try:
        return BBox.parse(text)
    except InvalidLocation as exc:
        raise BadParameter("bbox", f"bbox: {exc.reason}") from None


def cursor(query: Query) -> SyncCursor | None:
    text = _first(query, "cursor")
    if text is None or text == "":
        return None
    try:
        return SyncCursor.decode(text)
    except InvalidCursor:
        raise BadParameter("cursor", "cursor must be a next_cursor from an earlier answer") from None
