"""The HTTP API renders nearby answers straight from the hits (`NearbyService.nearby_json`); the bot and
`yizhan nearby --json` go through `NearbyResult`s. Both must give the same document, byte for byte."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.services.closures import ClosureBoard
from bot.services.nearby import NearbyService, nearby_json
from bot.services.search import SearchService
from bot.web.responses import json_body
from domain.values import AMENITY_KEYS, GeoPoint, Station, StationStatus
from storage.spatial import IndexEntry, SpatialIndex

HOURS = ["24/7", "Mo-Su 08:00-20:00", "Mo-Fr 09:00-18:00; PH off", "Mo-Su 22:00-06:00", ""]
STATUSES = ["active", "active", "temporarily_closed", "closed"]


class Details:
    """The station look-up of `StationService`, from memory; stations in `gone` were deleted after the
    index was read, so the look-up does not find them."""

    def __init__(self, stations: Sequence[Station], gone: set[int]) -> None:
        self.stations = {station.id: station for station in stations if station.id not in gone}
        self.closures = ClosureBoard(None)  # type: ignore[arg-type]  # nobody reported anything

    async def get_many(self, ids: Sequence[int]) -> dict[int, Station]:
        return {i: self.stations[i] for i in ids if i in self.stations}


@st.composite
def network(draw: st.DrawFn) -> tuple[list[IndexEntry], list[Station], set[int]]:
    count = draw(st.integers(0, 40))
    entries: list[IndexEntry] = []
    stations: list[Station] = []
    for i in range(1, count + 1):
        lat = draw(st.floats(22.9, 23.3))
        lon = draw(st.floats(113.1, 113.5))
        status = draw(st.sampled_from(STATUSES))
        amenities = tuple(draw(st.lists(st.sampled_from(AMENITY_KEYS[:4]), max_size=3, unique=True)))
        hours = draw(st.sampled_from(HOURS))
        timezone = draw(st.sampled_from([None, "Asia/Urumqi"]))
        code = f"GZ{i:04d}"
        entries.append(IndexEntry(i, code, lat, lon, status, amenities, hours, timezone))
        stations.append(
            Station(
                code=code,
                name=f"驿站{i}号",
                lat=lat,
                lon=lon,
                address=draw(st.sampled_from(["", "广州市天河路1号"])),
                opening_hours=hours,
                amenities=amenities,
                phone=draw(st.sampled_from(["", "020-12345678"])),
                status=StationStatus(status),
                timezone=timezone,
                id=i,
            )
        )
    gone = set(draw(st.lists(st.integers(1, max(count, 1)), max_size=3)))
    return entries, stations, gone


def printed(answer: dict) -> str:
    return json.dumps(answer, ensure_ascii=False, indent=2)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    network(),
    st.floats(22.8, 23.4),
    st.floats(113.0, 113.6),
    st.integers(1, 12),
    st.lists(st.sampled_from(AMENITY_KEYS[:4]), max_size=2, unique=True),
    st.integers(0, 7 * 24 * 60),
    st.booleans(),
)
def test_api_answer_is_the_cli_answer_byte_for_byte(
    world: tuple[list[IndexEntry], list[Station], set[int]],
    lat: float,
    lon: float,
    k: int,
    amenities: list[str],
    minutes: int,
    include_closed: bool,
) -> None:
    entries, stations, gone = world
    service = NearbyService(SearchService(SpatialIndex(entries)), Details(stations, gone))  # type: ignore[arg-type]
    point = GeoPoint(lat, lon)
    at = datetime(2025, 6, 16, tzinfo=UTC) + timedelta(minutes=minutes)
    query = {"k": k, "amenities": amenities, "at": at, "include_closed": include_closed}

    async def both() -> tuple[dict, dict]:
        fast = await service.nearby_json(point, **query)  # type: ignore[arg-type]
        return fast, nearby_json(point, at, await service.nearby(point, **query))  # type: ignore[arg-type]

    fast, expected = asyncio.run(both())
    assert json_body(fast) == json_body(expected)  # what the API sends
    assert printed(fast) == printed(expected)  # what `yizhan nearby --json` prints
    assert all(result["code"] not in {f"GZ{i:04d}" for i in gone} for result in fast["results"])
