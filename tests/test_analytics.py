"""Search demand: counted per coarse cell with no person and no point, flushed durably and additively by
replicas, and reported as demand, gaps and suggested sites without ever showing a cell under k=5."""

from __future__ import annotations

import asyncio
import csv
import io
import itertools
import json
import random
import re
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import h3
import pytest
from aiohttp.test_utils import TestClient, TestServer
from botkit import NOON, Env, env
from conftest import run_in_thread
from openpyxl import load_workbook
from sqlalchemy import inspect, text

from bot.app import Core, open_core
from bot.cli import main
from bot.config import Settings
from bot.services.analytics import (
    RESOLUTION,
    AnalyticsError,
    Candidate,
    DemandCounter,
    coverage_sets,
    greedy_max_coverage,
    read_candidates,
)
from bot.services.nearby import NearbyService, results_page
from bot.web import build_web_app
from domain.demand import FAR_BAND, K_ANONYMITY, Channel, band_of, is_night, unmet_bands
from domain.values import GeoPoint, StationRecord
from storage.analytics_repo import AnalyticsRepository

__all__ = ["env"]

NIGHT = NOON + timedelta(hours=11)  # Tuesday 23:00 in China
PERIOD = {"since": date(2025, 6, 1), "until": date(2025, 6, 30)}

# A synthetic city in Guangzhou (adcode 4401). One station open around the clock at A, one open by day at
# D, ~6 km apart; B and C are far from both; E is far too but has fewer than k searches.
A = (23.1300, 113.3200)
B = (23.2000, 113.2700)
C = (23.2000, 113.4000)
D = (23.1000, 113.2700)
E = (23.0500, 113.4500)
CITY = [
    StationRecord(code="SYN-A", name="A 24h", lat=A[0], lon=A[1], opening_hours="24/7", region="440106"),
    StationRecord(
        code="SYN-D", name="D by day", lat=D[0], lon=D[1], opening_hours="Mo-Su 08:00-20:00", region="440104"
    ),
]
#: (where, when, amenities, how many searches)
SEARCHES = [
    (A, NOON, (), 30),  # met: a station right there
    (A, NOON, ("toilet",), 6),  # unmet: no station with a toilet anywhere
    (B, NOON, (), 20),
    (C, NOON, (), 40),
    (D, NOON, (), 10),  # met by day
    (D, NIGHT, (), 12),  # unmet at night: D's station is closed, A is 6 km away
    (E, NOON, (), K_ANONYMITY - 1),  # unmet, but too few to show
]


def cell(point: tuple[float, float]) -> str:
    return h3.latlng_to_cell(point[0], point[1], RESOLUTION)


def sqlite_settings_at(path: Path, **extra: Any) -> Settings:
    return Settings(database_url=f"sqlite+aiosqlite:///{path}", _env_file=None, **extra)  # type: ignore[call-arg]


async def search_the_city(core: Core, searches: list[tuple[Any, datetime, tuple[str, ...], int]]) -> None:
    """The searches as the bot makes them: a first page of results each, counted as the bot's."""
    nearby = NearbyService(core.search, core.stations, demand=core.demand.counter, channel=Channel.BOT)
    for point, at, amenities, times in searches:
        for _ in range(times):
            await results_page(nearby, GeoPoint(*point), page=0, amenities=amenities, at=at)


@pytest.fixture
async def city(tmp_path: Path) -> AsyncIterator[Core]:
    async with open_core(sqlite_settings_at(tmp_path / "city.db")) as core:
        await core.stations.save_records(CITY)
        await core.reload_index()
        await search_the_city(core, SEARCHES)
        await core.demand.flush()
        yield core


# ------------------------------------------------------------------------------------------------ counting


def test_bands_and_night_are_the_documented_ones() -> None:
    assert [band_of(d) for d in (0, 499.9, 500, 999, 1000, 1499, 1500, 2999, 3000, 50_000)] == [
        0, 0, 1, 1, 2, 2, 3, 3, 4, 4,
    ]  # fmt: skip
    assert band_of(None) == FAR_BAND
    assert unmet_bands(1500) == (3, 4)
    assert unmet_bands(500) == (1, 2, 3, 4)
    with pytest.raises(ValueError):
        unmet_bands(1200)
    assert [h for h in range(24) if is_night(h)] == [0, 1, 2, 3, 4, 5, 22, 23]
    assert is_night(24 * 6 + 23) and not is_night(24 * 6 + 12)


def test_a_search_is_keyed_by_cell_local_hour_channel_amenities_and_band_and_nothing_else() -> None:
    counter = DemandCounter("Asia/Shanghai")
    counter.count(23.13, 113.26, NOON, "bot", ("toilet", "drinking_water"), 1700.0)
    counter.count(23.13, 113.26, NOON, "bot", ["drinking_water", "toilet"], 2900.0)
    counter.count(23.13, 113.26, NIGHT, "h5", (), None)
    counts = counter.take()
    assert counts == {
        (date(2025, 6, 3), int(cell((23.13, 113.26)), 16), 1 * 24 + 12, "bot", "drinking_water,toilet", 3): 2,
        (date(2025, 6, 3), int(cell((23.13, 113.26)), 16), 1 * 24 + 23, "h5", "", FAR_BAND): 1,
    }
    assert counter.take() == {}


def test_local_day_follows_the_timezone_not_utc() -> None:
    counter = DemandCounter("Asia/Shanghai")
    # 2025-06-01 17:30 UTC is Monday 01:30 in China: the day and hour of week are China's.
    counter.count(23.13, 113.26, datetime(2025, 6, 1, 17, 30, tzinfo=UTC), "api", (), 100.0)
    ((day, _, hour_of_week, *_),) = counter.take()
    assert (day, hour_of_week) == (date(2025, 6, 2), 1)


def test_the_same_instant_in_any_offset_is_the_same_slot_and_given_back_counts_return() -> None:
    from zoneinfo import ZoneInfo

    counter = DemandCounter("Asia/Shanghai")
    counter.count(23.13, 113.26, NOON, "bot", ("toilet",), 100.0)
    counter.count(23.13, 113.26, NOON.astimezone(ZoneInfo("Asia/Shanghai")), "bot", ["toilet"], 100.0)
    counter.count(23.13, 113.26, NOON + timedelta(minutes=59), "bot", ("toilet",), 100.0)
    counter.count(23.13, 113.26, NOON, "fax", (), 100.0)  # not a channel: not counted
    counts = counter.take()
    assert counts == {(date(2025, 6, 3), int(cell((23.13, 113.26)), 16), 36, "bot", "toilet", 0): 3}
    counter.give_back(counts)
    counter.count(23.13, 113.26, NOON, "bot", ("toilet",), 100.0)
    assert counter.pending == 4
    assert list(counter.take().values()) == [4]
    # Each filter has a key of its own.
    many = DemandCounter()
    for i in range(3):
        many.count(23.13, 113.26, NOON, "api", (f"x{i}",), 100.0)
    assert len(many.take()) == 3


def test_a_disabled_counter_counts_nothing() -> None:
    counter = DemandCounter(enabled=False)
    counter.count(23.13, 113.26, NOON, "bot", (), 100.0)
    assert counter.take() == {}


def test_the_search_paths_one_call_counts_what_count_counts() -> None:
    """`count_nearest` (the usual search's hits, nearest first) keys every search as `count` does: each
    band edge, no hits, a filter, another quarter hour and day, an unknown channel, a disabled counter."""
    from types import SimpleNamespace

    searches = []
    for i, metres in enumerate([0.0, 499.9, 500.0, 999.0, 1000.0, 1499.0, 1500.0, 2999.0, 3000.0, 9e9, None]):
        point = SimpleNamespace(lat=23.13 + i / 200, lon=113.26 - i / 300)
        hits = [] if metres is None else [SimpleNamespace(distance_m=metres), SimpleNamespace(distance_m=9e9)]
        at = NOON + timedelta(minutes=37 * i)
        amenities = ("toilet", "drinking_water") if i % 3 == 0 else ()
        searches.append((point, at, ("bot", "api", "h5", "fax")[i % 4], amenities, hits, metres))
    one, two = DemandCounter("Asia/Shanghai"), DemandCounter("Asia/Shanghai")
    for _round in range(2):
        for point, at, channel, amenities, hits, metres in searches:
            one.count_nearest(point, at, channel, amenities, hits)
            two.count(point.lat, point.lon, at, channel, amenities, metres)
    counted = one.take()
    assert counted == two.take()
    assert sum(counted.values()) == 2 * 9  # two of the eleven are by "fax", not a channel
    assert {key[5] for key in counted} == {0, 1, 2, 3, FAR_BAND}
    off = DemandCounter(enabled=False)
    off.count_nearest(*searches[1][:5])
    assert off.take() == {} and off.pending == 0
    off.enabled = True
    off.count_nearest(*searches[1][:5])
    assert off.pending == 1


async def test_the_bot_counts_a_search_once_and_not_its_other_pages(env: Env) -> None:
    from botkit import HOME, button_data, is_results

    rider = 918_273_645
    mark = env.api.mark()
    await env.api.send_location(rider, *HOME, language_code="en")
    await env.api.wait_for(lambda: any(is_results(m) for m in env.api.changes_since(rider, mark)[0]))
    results = next(m for m in env.api.changes_since(rider, mark)[0] if is_results(m))
    more = [d for d in button_data(results, "r:") if d.split(":")[3] == "1"]
    assert more, button_data(results, "r:")
    mark = env.api.mark()
    await env.api.press(rider, results.message_id, more[0], language_code="en")
    await env.api.wait_for(lambda: env.api.changes_since(rider, mark)[0])
    await env.settle()
    counts = env.core.demand.counter.take()
    assert list(counts.values()) == [1]
    ((day, cell_id, how, channel, amenities, band),) = counts
    assert (day, cell_id, how, channel, amenities, band) == (
        date(2025, 6, 3),
        int(cell(HOME), 16),
        36,
        "bot",
        "",
        0,
    )


# ------------------------------------------------------------------------------------------------ durability


async def test_flush_writes_and_a_failed_flush_keeps_the_counts(settings: Settings) -> None:
    async with open_core(settings, load_index=False) as core:
        counter = core.demand.counter
        for _ in range(7):
            counter.count(23.13, 113.26, NOON, "bot", (), 100.0)
        sessions = core.demand.sessions

        def broken() -> Any:
            raise ConnectionError("database away")

        core.demand.sessions = broken  # type: ignore[assignment]
        with pytest.raises(ConnectionError):
            await core.demand.flush()
        assert counter.pending == 7
        core.demand.sessions = sessions
        counter.count(23.13, 113.26, NOON, "bot", (), 100.0)
        assert await core.demand.flush() == 8
        assert await core.demand.flush() == 0
        async with core.sessions() as session:
            assert await AnalyticsRepository(session).total() == 8


async def test_a_clean_stop_loses_nothing(settings: Settings) -> None:
    """A long flush interval: everything counted is written when the core closes."""
    settings = settings.model_copy(update={"analytics_flush_s": 300.0})
    async with open_core(settings, load_index=False, flush_demand=True) as core:
        for i in range(1000):
            core.demand.counter.count(23.0 + i / 1000, 113.0, NOON, "api", (), float(i * 5))
        await asyncio.sleep(0)
    async with open_core(settings, load_index=False) as core, core.sessions() as session:
        assert await AnalyticsRepository(session).total() == 1000


def stream(n: int, seed: int = 7) -> list[tuple[float, float, datetime, str, tuple[str, ...], float | None]]:
    rnd = random.Random(seed)
    searches = []
    for _ in range(n):
        searches.append(
            (
                23.0 + rnd.random() * 0.2,
                113.2 + rnd.random() * 0.2,
                NOON + timedelta(hours=rnd.randrange(48)),
                rnd.choice(list(Channel)).value,
                rnd.choice([(), ("toilet",), ("toilet", "drinking_water")]),
                rnd.choice([None, 200.0, 800.0, 1300.0, 2000.0, 5000.0]),
            )
        )
    return searches


async def table_rows(core: Core) -> list[tuple[Any, ...]]:
    async with core.engine.connect() as conn:
        result = await conn.execute(
            text("SELECT day, cell, hour_of_week, channel, amenities, band, count FROM search_demand")
        )
        return sorted(tuple(row) for row in result)


async def test_two_replicas_sharing_the_database_count_what_one_process_counts(settings: Settings) -> None:
    searches = stream(6000)
    async with open_core(settings, load_index=False) as one:
        for search in searches:
            one.demand.counter.count(*search)
        await one.demand.flush()
        expected = await table_rows(one)
        async with one.engine.begin() as conn:
            await conn.execute(text("DELETE FROM search_demand"))
    assert sum(row[-1] for row in expected) == len(searches)
    fast = settings.model_copy(update={"analytics_flush_s": 0.01})
    # Two cores with their own engines and flushers, counting interleaved halves while both flush.
    async with (
        open_core(fast, load_index=False, flush_demand=True) as first,
        open_core(fast, load_index=False, flush_demand=True, migrate=False) as second,
    ):
        for i, search in enumerate(searches):
            (first if i % 2 else second).demand.counter.count(*search)
            if i % 500 == 0:
                await asyncio.sleep(0.02)  # let both flushers write meanwhile
    async with open_core(settings, load_index=False) as check:
        assert await table_rows(check) == expected


async def test_retention_deletes_old_days_and_keeps_recent_ones(settings: Settings) -> None:
    settings = settings.model_copy(update={"analytics_retention_days": 30})
    async with open_core(settings, load_index=False) as core:
        old, recent = NOON - timedelta(days=31), NOON - timedelta(days=29)
        core.demand.counter.count(23.13, 113.26, old, "bot", (), 100.0)
        core.demand.counter.count(23.13, 113.26, recent, "bot", (), 100.0)
        await core.demand.flush()
        stop = asyncio.Event()
        job = asyncio.create_task(core.privacy.run_retention(lambda: NOON, stop))
        for _ in range(100):
            await asyncio.sleep(0.02)
            async with core.sessions() as session:
                if await AnalyticsRepository(session).total() == 1:
                    break
        stop.set()
        await job
        assert [str(row[0]) for row in await table_rows(core)] == [str(recent.date())]


def test_settings_refuse_a_walkable_distance_between_bands(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANALYTICS_WALKABLE_M", "1200")
    with pytest.raises(ValueError, match="ANALYTICS_WALKABLE_M"):
        Settings(_env_file=None)  # type: ignore[call-arg]
    monkeypatch.setenv("ANALYTICS_WALKABLE_M", "1000")
    monkeypatch.setenv("ANALYTICS_FLUSH_S", "0")
    with pytest.raises(ValueError):
        Settings(_env_file=None)  # type: ignore[call-arg]


# ------------------------------------------------------------------------------------------------ channels


async def test_the_api_counts_its_searches_and_the_h5_pages_as_the_pages(tmp_path: Path) -> None:
    settings = sqlite_settings_at(tmp_path / "api.db", api_rate_limit=0)
    async with open_core(settings) as core:
        await core.stations.save_records(CITY)
        await core.reload_index()
        app = build_web_app(core, clock=lambda: NOON)
        async with TestClient(TestServer(app)) as client:
            query = {"lat": str(B[0]), "lon": str(B[1])}
            for headers in (
                {},
                {"X-Yizhan-Channel": "h5"},
                {"X-Yizhan-Channel": "H5"},
                {"X-Yizhan-Channel": "x"},
            ):
                async with client.get("/api/v1/stations/nearby", params=query, headers=headers) as response:
                    assert response.status == 200
            # A question about another instant is planning, not a rider looking now: not counted.
            async with client.get("/api/v1/stations/nearby", params={**query, "at": NIGHT.isoformat()}) as r:
                assert r.status == 200
        counts = core.demand.counter.take()
    by_channel: dict[str, int] = {}
    for (_, cell_id, how, channel, _, band), n in counts.items():
        assert cell_id == int(cell(B), 16) and how == 36 and band == FAR_BAND
        by_channel[channel] = by_channel.get(channel, 0) + n
    assert by_channel == {"api": 2, "h5": 2}


# ------------------------------------------------------------------------------------------------ privacy


async def test_no_table_holds_a_user_id_or_a_position_next_to_a_cell(env: Env) -> None:
    from botkit import HOME, is_results

    rider = 918_273_645
    mark = env.api.mark()
    await env.api.send_location(rider, *HOME, language_code="en")
    await env.api.wait_for(lambda: any(is_results(m) for m in env.api.changes_since(rider, mark)[0]))
    await env.settle()
    assert await env.core.demand.flush() >= 1
    async with env.core.engine.connect() as conn:
        columns = await conn.run_sync(
            lambda sync: [c["name"] for c in inspect(sync).get_columns("search_demand")]
        )
        rows = (await conn.execute(text("SELECT * FROM search_demand"))).all()
    assert sorted(columns) == sorted(["day", "cell", "hour_of_week", "channel", "amenities", "band", "count"])
    dumped = repr([tuple(r) for r in rows])
    assert str(rider) not in dumped and str(env.user_id) not in dumped
    assert not re.search(r"23\.13|113\.26", dumped)
    assert [(r.channel, r.cell, r.count) for r in rows] == [("bot", int(cell(HOME), 16), 1)]


# ------------------------------------------------------------------------------------------------ reports


async def test_demand_of_the_synthetic_city_shows_each_cell_with_k_or_more(
    city: Core, region_lookup: Any
) -> None:
    city.demand.regions = region_lookup
    period = city.demand.period(PERIOD["since"], PERIOD["until"], date(2025, 6, 30))
    report = await city.demand.demand("4401", period)
    got = {h3.int_to_str(c.cell): (c.searches, c.day, c.night) for c in report.cells}
    assert got == {cell(A): (36, 36, 0), cell(B): (20, 20, 0), cell(C): (40, 40, 0), cell(D): (22, 10, 12)}
    assert report.hidden_cells == 1
    assert all(c.region.startswith("4401") for c in report.cells)
    # Another city holds none of them, and says nothing of these cells.
    elsewhere = await city.demand.demand("4403", period)
    assert elsewhere.cells == [] and elsewhere.hidden_cells == 0
    # A period without the searches is empty.
    before = city.demand.period(date(2025, 5, 1), date(2025, 5, 31), date(2025, 6, 30))
    assert (await city.demand.demand("4401", before)).cells == []


async def test_gaps_of_the_synthetic_city_are_the_known_ones(city: Core, region_lookup: Any) -> None:
    city.demand.regions = region_lookup
    period = city.demand.period(PERIOD["since"], PERIOD["until"], date(2025, 6, 30))
    gaps = (await city.demand.gaps("4401", period)).cells
    assert [(h3.int_to_str(c.cell), c.unmet, c.unmet_day, c.unmet_night) for c in gaps] == [
        (cell(C), 40, 40, 0),
        (cell(B), 20, 20, 0),
        (cell(D), 12, 0, 12),  # the night gap: a 24-hour station is missing there
        (cell(A), 6, 6, 0),
    ]
    assert gaps[-1].unmet_by_amenity == {"toilet": 6}
    assert all(not c.unmet_by_amenity for c in gaps[:-1])


async def test_suggestions_for_the_synthetic_city_cover_the_biggest_gaps_first(
    city: Core, region_lookup: Any
) -> None:
    city.demand.regions = region_lookup
    period = city.demand.period(PERIOD["since"], PERIOD["until"], date(2025, 6, 30))
    report = await city.demand.suggest("4401", period, 2)
    assert report.unmet_total == 78
    assert [(h3.int_to_str(s.cell), s.covered) for s in report.suggestions] == [(cell(C), 40), (cell(B), 20)]
    assert report.suggestions[0].share == pytest.approx(40 / 78)
    assert report.suggestions[1].cumulative_share == pytest.approx(60 / 78)
    everything = await city.demand.suggest("4401", period, 10)
    # Four gap cells, each beyond walking distance of the others: four sites cover all, then nothing more.
    assert [s.covered for s in everything.suggestions] == [40, 20, 12, 6]
    assert everything.suggestions[-1].cumulative_share == pytest.approx(1.0)
    # Candidate host sites: one 600 m from C serves C; one outside the region is left out.
    near_c = Candidate("银行网点", C[0] + 0.0054, C[1])
    shenzhen = Candidate("深圳网点", 22.54, 114.06)
    far = Candidate("远处", 23.30, 113.30)
    given = await city.demand.suggest("4401", period, 3, [far, near_c, shenzhen])
    assert given.outside_region == 1 and given.candidates == 2
    assert [(s.name, s.covered) for s in given.suggestions] == [("银行网点", 40)]
    with pytest.raises(AnalyticsError):
        await city.demand.suggest("", period, 2)
    with pytest.raises(AnalyticsError):
        await city.demand.suggest("4401", period, 0)
    with pytest.raises(AnalyticsError):
        await city.demand.demand("44'; DROP", period)


def brute_force(covers: list[list[int]], weights: list[int], n: int) -> int:
    best = 0
    for chosen in itertools.combinations(range(len(covers)), min(n, len(covers))):
        covered = set().union(*(covers[i] for i in chosen))
        best = max(best, sum(weights[j] for j in covered))
    return best


@pytest.mark.parametrize("seed", range(12))
def test_greedy_coverage_is_within_5_percent_of_the_optimum(seed: int) -> None:
    """Small real instances (gap cells of a random city, sites at their centres) against brute force."""
    from bot.services.analytics import CellDemand

    rnd = random.Random(seed)
    origin = h3.latlng_to_cell(23.13, 113.26, RESOLUTION)
    cells = rnd.sample(sorted(h3.grid_disk(origin, 6)), 30)
    demand = []
    for c in cells:
        lat, lon = h3.cell_to_latlng(c)
        demand.append(CellDemand(int(c, 16), lat, lon, "440104", unmet=rnd.choice([1, 2, 5, 8, 13, 40])))
    sites = [Candidate(str(i), d.lat, d.lon) for i, d in enumerate(demand[:14])]
    covers = coverage_sets(sites, demand, 1500)
    weights = [d.unmet for d in demand]
    for n in (2, 3, 4):
        got = sum(gain for _, gain in greedy_max_coverage(covers, weights, n))
        assert got >= 0.95 * brute_force(covers, weights, n), (seed, n)


def test_greedy_counts_overlap_once() -> None:
    """Two sets sharing their heavy element: the second pick must be the disjoint set, not the overlap."""
    covers = [[0, 1], [0, 2], [3]]
    weights = [10, 1, 1, 5]
    assert greedy_max_coverage(covers, weights, 2) == [(0, 11), (2, 5)]
    assert greedy_max_coverage(covers, weights, 5) == [(0, 11), (2, 5), (1, 1)]
    assert greedy_max_coverage([[0], [0]], [3], 2) == [(0, 3)]


def test_coverage_reaches_the_walkable_distance_and_no_farther() -> None:
    from bot.services.analytics import CellDemand

    origin = h3.latlng_to_cell(45.7, 126.6, RESOLUTION)  # Harbin: small cells for res 8
    cells = []
    for c in h3.grid_disk(origin, 8):
        lat, lon = h3.cell_to_latlng(c)
        cells.append(CellDemand(int(c, 16), lat, lon, "2301", unmet=1))
    site = Candidate("x", *h3.cell_to_latlng(origin))
    (covered,) = coverage_sets([site], cells, 1500)
    distance = [h3.great_circle_distance((site.lat, site.lon), (c.lat, c.lon), unit="m") for c in cells]
    assert sorted(covered) == sorted(i for i, d in enumerate(distance) if d <= 1500)
    assert 7 < len(covered) < 61


def test_candidate_files_are_read_and_bad_ones_refused(tmp_path: Path) -> None:
    good = tmp_path / "sites.csv"
    good.write_text("\ufeffName,Lat,Lon\n工商银行,23.2,113.4\n", encoding="utf-8")
    assert read_candidates(good) == [Candidate("工商银行", 23.2, 113.4)]
    for body in (
        "name,x,y\na,1,2\n",
        "name,lat,lon\na,north,2\n",
        "name,lat,lon\na,91,2\n",
        "name,lat,lon\na,nan,2\n",
    ):
        bad = tmp_path / "bad.csv"
        bad.write_text(body, encoding="utf-8")
        with pytest.raises(AnalyticsError):
            read_candidates(bad)
    with pytest.raises(AnalyticsError):
        read_candidates(tmp_path / "missing.csv")


# ------------------------------------------------------------------------------------------------ exports


def run_cli(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(args)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture
def city_database(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, region_lookup: Any) -> Path:
    path = tmp_path / "cli.db"

    async def prepare() -> None:
        async with open_core(sqlite_settings_at(path)) as core:
            await core.stations.save_records(CITY)
            await core.reload_index()
            await search_the_city(core, SEARCHES)

    run_in_thread(prepare)
    monkeypatch.setenv("DATABASE_URL", f"sqlite+aiosqlite:///{path}")
    if region_lookup.cache_dir is not None:
        monkeypatch.setenv("REGION_CACHE_DIR", str(region_lookup.cache_dir))
    return path


def hidden_marks() -> list[str]:
    """What would betray the cell under k: its id, its centre."""
    lat, lon = h3.cell_to_latlng(cell(E))
    return [cell(E), f"{lat:.4f}", f"{lon:.4f}"]


@pytest.mark.parametrize("report", ["demand", "gaps", "suggest"])
@pytest.mark.parametrize("fmt", ["table", "csv", "xlsx", "geojson"])
def test_no_output_format_shows_a_cell_under_k(
    report: str, fmt: str, city_database: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / f"out.{fmt}"
    args = ["analytics", report, "--region", "4401", "--since", "2025-06-01", "--until", "2025-06-30"]
    args += ["--format", fmt, "--out", str(out)] + (["-n", "10"] if report == "suggest" else [])
    code, _, err = run_cli(args, capsys)
    assert code == 0, err
    if fmt == "xlsx":
        sheet = load_workbook(out, read_only=True).worksheets[0]
        body = "\n".join(
            ",".join("" if v is None else str(v) for v in row) for row in sheet.iter_rows(values_only=True)
        )
    else:
        body = out.read_text(encoding="utf-8")
    for mark in hidden_marks():
        assert mark not in body, (report, fmt, mark)
    shown = {cell(A), cell(B), cell(C), cell(D)}
    if fmt == "geojson":
        features = json.loads(body)["features"]
        assert {f["properties"]["cell"] for f in features} == (
            shown if report != "suggest" else {cell(C), cell(B), cell(D), cell(A)}
        )
        if report != "suggest":
            assert all(f["geometry"]["type"] == "Polygon" for f in features)
    else:
        for c in shown:
            assert c in body, (report, fmt, c)
    if fmt == "csv":
        rows = list(csv.DictReader(io.StringIO(body)))
        key = "covered" if report == "suggest" else "searches"
        assert all(int(r[key]) >= 1 for r in rows)
        if report != "suggest":
            assert all(int(r["searches"]) >= K_ANONYMITY for r in rows)
    if report != "suggest":
        assert "1 cells with fewer than 5" in err or "1 个网格" in err or "1 個網格" in err or "1" in err


def test_cli_refuses_bad_arguments_clearly(city_database: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_cli(["analytics", "demand", "--region", "44x"], capsys)
    assert code == 1 and "44x" in err
    code, _, err = run_cli(["analytics", "gaps", "--since", "2025-07-01", "--until", "2025-06-01"], capsys)
    assert code == 1 and "2025-07-01" in err
    with pytest.raises(SystemExit):
        main(["analytics", "demand", "--since", "yesterday"])
    code, _, err = run_cli(["analytics", "suggest", "-n", "3"], capsys)
    assert code == 1


def test_cli_table_to_the_terminal(city_database: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(
        ["analytics", "gaps", "--region", "4401", "--since", "2025-06-01", "--until", "2025-06-30"], capsys
    )
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split()[:3] == ["cell", "region", "region_name"]
    assert [line.split()[0] for line in lines[1:]] == [cell(C), cell(B), cell(D), cell(A)]


def test_yizhan_serve_writes_its_counts_when_stopped(tmp_path: Path) -> None:
    """The process's lifecycle: a long flush interval, so only the flush at SIGTERM can write them."""
    import os
    import signal
    import subprocess
    import sys
    import urllib.request

    database = tmp_path / "serve.db"
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite+aiosqlite:///{database}",
        "LANGUAGE": "en",
        "STATION_CACHE_SIZE": "0",
        "ANALYTICS_FLUSH_S": "300",
    }
    server = subprocess.Popen(
        [sys.executable, "-m", "bot", "serve", "--port", "0"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert server.stdout is not None
        lines = [server.stdout.readline() for _ in range(3)]
        api = re.search(r"API:\s+(http://\S+)", "".join(lines))
        assert api, lines
        for i in range(7):
            request = urllib.request.Request(
                f"{api.group(1)}stations/nearby?lat={B[0]}&lon={B[1]}",
                headers={"X-Yizhan-Channel": "h5"} if i < 2 else {},
            )
            with urllib.request.urlopen(request, timeout=10) as response:
                assert response.status == 200
    finally:
        server.send_signal(signal.SIGTERM)
        assert server.wait(30) == 0

    async def written() -> list[tuple[Any, ...]]:
        async with open_core(sqlite_settings_at(database), load_index=False) as core:
            return await table_rows(core)

    rows = run_in_thread(written)
    assert sorted((r[3], r[1], r[-1]) for r in rows) == [
        ("api", int(cell(B), 16), 5),
        ("h5", int(cell(B), 16), 2),
    ]
