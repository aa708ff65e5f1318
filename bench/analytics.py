"""Search demand: what counting costs the search path, and how long `suggest` takes for a city's month.

1. Search path: the synthetic national network (`generate_stations(186100, 2024)`) in a `SpatialIndex`;
   queries around Guangzhou's stations (jittered ~1 km). Each query is timed twice in the same run,
   alternating which goes first: `SearchService.find_nearest_open(point, 5, (), at)` alone, and the same
   search followed by `NearbyService.count` (the cell by h3's C binding, a dict increment) as the bot and
   the API call it. The overhead is the median of the per-query differences; the counting call is also
   timed alone (its p50 and p99). Since 01:15 UTC on 2026-12-05 each query is also searched and counted
   between two clock reads only (the first overhead includes the clock read that times the call alone);
   both overheads are printed. Target: ≤ 5 µs p50.
2. `suggest`: SEARCHES searches (default 200,000) in Guangzhou (4401) over 30 days, positions drawn around
   a few hundred hot spots and across the city, each searched for real in the index (so that its distance
   band is the network's) and counted at a random hour of the 30 days, channel and amenity filter; flushed
   to a fresh SQLite file (or --database-url). Then `DemandService.suggest("4401", 30 days, n)` is timed
   end to end (the database query, k-anonymity, cells' districts, coverage, greedy + swaps): the first call
   in a fresh service (districts looked up) and a second one. Target: ≤ 5 s.

Run: flock /tmp/yizhan-bench.lock python -m bench.analytics [--searches 200000] [--queries 20000] [-n 10]
     [--wait-quiet S]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import statistics
import tempfile
import time
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import numpy as np

from bench._common import print_load, print_machine, table, verdict, wait_for_quiet

TARGET_OVERHEAD_US = 5.0
TARGET_SUGGEST_S = 5.0
GUANGZHOU = (23.13, 113.30)
AT = datetime(2026, 11, 17, 4, 0, tzinfo=UTC)  # a Tuesday, noon in China
AT_NIGHT = AT + timedelta(hours=11)


def is_night_hour(at: datetime) -> bool:
    from domain.demand import NIGHT_HOURS

    return (at.hour + 8) % 24 in NIGHT_HOURS


def network(count: int, seed: int):  # type: ignore[no-untyped-def]
    from bench.search import build_index, make_dataset
    from bot.services.search import SearchService

    ds = make_dataset(count, seed)
    search = SearchService(build_index(ds), background=False)
    return ds, search


def city_points(ds, count: int, rng: np.random.Generator, jitter_km: float) -> tuple[np.ndarray, np.ndarray]:  # type: ignore[no-untyped-def]
    near = np.flatnonzero((np.abs(ds.lat - GUANGZHOU[0]) < 0.25) & (np.abs(ds.lon - GUANGZHOU[1]) < 0.3))
    pick = rng.choice(near, count)
    lat = ds.lat[pick] + rng.normal(0.0, jitter_km, count) / 111.0
    lon = ds.lon[pick] + rng.normal(0.0, jitter_km, count) / (111.0 * np.cos(np.radians(ds.lat[pick])))
    return lat, lon


#: The orders the three timings of a query take, in turn (0: the search alone, 1: search, clock read,
#: count, 2: search and count), so that none always runs first or last.
_TURNS = ((0, 1, 2), (1, 2, 0), (2, 0, 1), (0, 2, 1), (2, 1, 0), (1, 0, 2))


def bench_search_path(ds, search, queries: int, rng: np.random.Generator) -> dict[str, float]:  # type: ignore[no-untyped-def]
    from bot.services.analytics import DemandCounter
    from bot.services.nearby import NearbyService
    from domain.values import GeoPoint

    counter = DemandCounter("Asia/Shanghai")
    nearby = NearbyService(search, None, demand=counter, channel="bot")  # type: ignore[arg-type]
    lat, lon = city_points(ds, queries, rng, 1.0)
    points = [GeoPoint(float(a), float(b)) for a, b in zip(lat, lon, strict=True)]
    find = search.find_nearest_open
    count = nearby.count
    clock = time.perf_counter_ns
    for p in points[:500]:  # warm: the open table, subsets, the counter's hour
        count(p, (), AT, find(p, 5, (), AT), False)
    from bot.services.analytics import _cell_of

    def noop(*args: object) -> None:
        return None

    alone = np.empty(queries, np.int64)
    counted = np.empty(queries, np.int64)
    counting = np.empty(queries, np.int64)
    # The search and the count between two clock reads only, as the search path runs them (`counted`
    # also reads the clock between the two, to time the counting call alone).
    whole = np.empty(queries, np.int64)
    # Yardsticks timed in the same loop: a Python call doing nothing, and h3's bare point-to-cell call (on
    # a machine shared with other work both grow with the counting call).
    bare_call = np.empty(queries, np.int64)
    bare_cell = np.empty(queries, np.int64)
    gc.collect()
    gc.disable()
    try:
        for i, p in enumerate(points):
            for turn in _TURNS[i % len(_TURNS)]:
                if turn == 0:
                    t0 = clock()
                    find(p, 5, (), AT)
                    alone[i] = clock() - t0
                elif turn == 2:
                    t0 = clock()
                    count(p, (), AT, find(p, 5, (), AT), False)
                    whole[i] = clock() - t0
                else:
                    t0 = clock()
                    hits = find(p, 5, (), AT)
                    t1 = clock()
                    count(p, (), AT, hits, False)
                    t2 = clock()
                    counted[i] = t2 - t0
                    counting[i] = t2 - t1
            t0 = clock()
            noop(p, (), AT, None, False)
            t1 = clock()
            _cell_of(p.lat, p.lon, 8)
            t2 = clock()
            bare_call[i] = t1 - t0
            bare_cell[i] = t2 - t1
    finally:
        gc.enable()
    out = {
        "search_p50_us": float(np.median(alone)) / 1e3,
        "counted_p50_us": float(np.median(counted)) / 1e3,
        "overhead_p50_us": float(np.median(counted - alone)) / 1e3,
        "whole_overhead_p50_us": float(np.median(whole - alone)) / 1e3,
        "count_p50_us": float(np.median(counting)) / 1e3,
        "count_p99_us": float(np.percentile(counting, 99)) / 1e3,
        "keys": len(counter.take()),
        "call_p50_us": float(np.median(bare_call)) / 1e3,
        "cell_p50_us": float(np.median(bare_cell)) / 1e3,
    }
    print(
        f"search path over {queries:,} queries: search alone p50 {out['search_p50_us']:.1f} µs, search + count "
        f"p50 {out['counted_p50_us']:.1f} µs; overhead (median of per-query differences) "
        f"{out['overhead_p50_us']:.2f} µs, without the clock read between search and count "
        f"{out['whole_overhead_p50_us']:.2f} µs; the counting call alone p50 {out['count_p50_us']:.2f} µs, p99 "
        f"{out['count_p99_us']:.2f} µs; yardsticks in the same loop: an empty Python call p50 "
        f"{out['call_p50_us']:.2f} µs, h3's bare latlng_to_cell p50 {out['cell_p50_us']:.2f} µs"
    )
    return out


async def _fill(url: str, ds, search, searches: int, rng: np.random.Generator) -> tuple[int, float]:  # type: ignore[no-untyped-def]
    from bot.app import open_core
    from bot.config import Settings
    from bot.services.nearby import NearbyService
    from domain.demand import Channel
    from domain.values import GeoPoint

    settings = Settings(database_url=url, _env_file=None)  # type: ignore[call-arg]
    # A few hundred hot spots where riders wait for orders, and the rest across the city.
    hot = searches * 7 // 10
    lat_h, lon_h = city_points(ds, 300, rng, 3.0)
    which = rng.integers(0, 300, hot)
    lat = np.concatenate(
        [lat_h[which] + rng.normal(0, 0.004, hot), city_points(ds, searches - hot, rng, 4.0)[0]]
    )
    lon = np.concatenate(
        [lon_h[which] + rng.normal(0, 0.004, hot), city_points(ds, searches - hot, rng, 4.0)[1]]
    )
    # Hours back from noon of the last day: the 30 days of the period.
    hours = rng.integers(0, 29 * 24 + 12, searches)
    channels = rng.choice([c.value for c in Channel], searches, p=[0.6, 0.1, 0.3])
    filters = [(), ("toilet",), ("drinking_water",), ("toilet", "phone_charging")]
    which_filter = rng.choice(len(filters), searches, p=[0.7, 0.15, 0.1, 0.05])
    started = time.perf_counter()
    async with open_core(settings, load_index=False) as core:
        nearby = NearbyService(search, core.stations, demand=core.demand.counter)
        for i in np.argsort(-hours, kind="stable").tolist():
            at = AT - timedelta(hours=int(hours[i]))
            point = GeoPoint(float(lat[i]), float(lon[i]))
            amenities = filters[which_filter[i]]
            # The network as it is at noon or at 23:00 (by the hour's day or night): the distance band is
            # the network's, and the search keeps two tables of what is open instead of one per hour.
            hits = search.find_nearest_open(point, 5, amenities, AT_NIGHT if is_night_hour(at) else AT)
            nearby.count(point, amenities, at, hits, False, str(channels[i]))
        written = await core.demand.flush()
    return written, time.perf_counter() - started


async def _suggest(url: str, n: int) -> dict[str, float]:
    from bot.app import open_core
    from bot.config import Settings

    settings = Settings(database_url=url, _env_file=None)  # type: ignore[call-arg]
    async with open_core(settings, load_index=False) as core:
        service = core.demand
        await asyncio.to_thread(service.regions.index)  # the process's region index, loaded once anyway
        period = service.period(None, AT.date(), date.today())
        started = time.perf_counter()
        first = await service.suggest("4401", period, n)
        first_s = time.perf_counter() - started
        seconds = []
        for _ in range(3):
            started = time.perf_counter()
            again = await service.suggest("4401", period, n)
            seconds.append(time.perf_counter() - started)
        assert [s.cell for s in again.suggestions] == [s.cell for s in first.suggestions]
        cells, hidden = await service.cells("4401", period)
    gaps = sum(1 for c in cells if c.unmet)
    print(
        f"suggest -n {n} for 4401 over {period.since}..{period.until}: first call {first_s:.2f} s, then "
        f"{statistics.median(seconds):.2f} s (median of 3); {len(cells):,} cells shown, {hidden:,} hidden "
        f"(< 5 searches), {gaps:,} gap cells, {first.candidates:,} candidate sites; unmet searches "
        f"{first.unmet_total:,}, the {len(first.suggestions)} sites cover "
        f"{first.suggestions[-1].cumulative_share if first.suggestions else 0:.1%}"
    )
    return {"first_s": first_s, "again_s": statistics.median(seconds)}


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.analytics", description=__doc__.split("\n")[0])
    parser.add_argument("--stations", type=int, default=186_100)
    parser.add_argument("--seed", type=int, default=2024)
    parser.add_argument("--queries", type=int, default=20_000)
    parser.add_argument("--searches", type=int, default=200_000)
    parser.add_argument("-n", type=int, default=10)
    parser.add_argument("--database-url", help="default: a fresh SQLite file")
    parser.add_argument(
        "--wait-quiet",
        type=float,
        default=0.0,
        metavar="S",
        help="wait up to S s for the load to fall below 1",
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    print_machine("bench.analytics")
    if args.wait_quiet:
        wait_for_quiet(args.wait_quiet)
        print_load("after waiting")
    rng = np.random.default_rng(args.seed)
    started = time.perf_counter()
    ds, search = network(args.stations, args.seed)
    print(f"network: {args.stations:,} stations indexed in {time.perf_counter() - started:.1f} s")
    search_path = bench_search_path(ds, search, args.queries, rng)
    with tempfile.TemporaryDirectory() as tmp:
        url = args.database_url or f"sqlite+aiosqlite:///{Path(tmp) / 'demand.db'}"
        written, fill_s = asyncio.run(_fill(url, ds, search, args.searches, rng))
        print(f"{written:,} searches searched, counted and flushed in {fill_s:.1f} s")
        timing = asyncio.run(_suggest(url, args.n))
    print_load("end")
    print()
    print(
        table(
            ["measure", "value", "target", ""],
            [
                ["search alone, p50", f"{search_path['search_p50_us']:.1f} µs", "–", ""],
                [
                    "counting overhead, p50",
                    f"{search_path['overhead_p50_us']:.2f} µs",
                    f"≤ {TARGET_OVERHEAD_US:.0f} µs",
                    verdict(search_path["overhead_p50_us"] <= TARGET_OVERHEAD_US),
                ],
                [
                    "  the same, no clock read between search and count",
                    f"{search_path['whole_overhead_p50_us']:.2f} µs",
                    f"≤ {TARGET_OVERHEAD_US:.0f} µs",
                    verdict(search_path["whole_overhead_p50_us"] <= TARGET_OVERHEAD_US),
                ],
                [
                    "counting call alone, p50 / p99",
                    f"{search_path['count_p50_us']:.2f} / {search_path['count_p99_us']:.2f} µs",
                    "–",
                    "",
                ],
                [
                    f"suggest -n {args.n}, {args.searches:,} searches / 30 days",
                    f"{timing['first_s']:.2f} s",
                    f"≤ {TARGET_SUGGEST_S:.0f} s",
                    verdict(timing["first_s"] <= TARGET_SUGGEST_S),
                ],
            ],
        )
    )
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
