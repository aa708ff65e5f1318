"""Search demand as counted: distance bands, hours of the week, day and night, the amenity filter's key.

A search is counted by where (a coarse hexagonal cell), when (the local hour of the week and day), how
(the channel and the amenities asked for) and how far the nearest open station was, in bands; these are
the values those counts are keyed by, shared by the counter, the database and the reports.
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum

#: Upper edges (metres) of the distance bands of the nearest open station; past the last is band 4,
#: which also holds "no open station at all".
BAND_EDGES_M: tuple[int, ...] = (500, 1000, 1500, 3000)
#: The last band: farther than 3 km, or none open.
FAR_BAND = len(BAND_EDGES_M)
#: Labels of the bands, for reports and exports.
BAND_LABELS: tuple[str, ...] = ("<500", "500-1000", "1000-1500", "1500-3000", ">3000")
#: Local hours (0-23) that are night: 22:00-06:00, when the station hours that matter are 24-hour ones.
NIGHT_HOURS = frozenset({22, 23, 0, 1, 2, 3, 4, 5})
#: A cell with fewer searches than this in a period is never shown or exported (k-anonymity).
K_ANONYMITY = 5
HOURS_A_WEEK = 168


class Channel(StrEnum):
    """Where a search came from (stored: never change a value)."""

    BOT = "bot"
    API = "api"
    H5 = "h5"


def band_of(distance_m: float | None) -> int:
    """The band of the nearest open station's distance; None (nothing open) is the farthest band."""
    if distance_m is None:
        return FAR_BAND
    if distance_m < 1000:
        return 0 if distance_m < 500 else 1
    if distance_m < 1500:
        return 2
    return 3 if distance_m < 3000 else FAR_BAND


def unmet_bands(walkable_m: int) -> tuple[int, ...]:
    """The bands whose every distance is beyond `walkable_m` (which must be a band edge)."""
    if walkable_m not in BAND_EDGES_M:
        raise ValueError(f"the walkable distance must be one of {BAND_EDGES_M}")
    first = BAND_EDGES_M.index(walkable_m) + 1
    return tuple(range(first, FAR_BAND + 1))


def is_night(hour_of_week: int) -> bool:
    return hour_of_week % 24 in NIGHT_HOURS


def amenity_key(amenities: Iterable[str]) -> str:
    """The amenity filter as stored: its keys sorted and comma-joined; "" for no filter."""
    return ",".join(sorted(set(amenities)))
