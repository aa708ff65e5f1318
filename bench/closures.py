"""What the "reported closed" line costs a search: joining a results page's 5 hits to their details.

The bot's results page joins the hits it shows to their station details (from the warm cache) and, for
the "2 riders reported it closed at 14:05" line, to the in-memory closure board. The join is timed three
ways, interleaved point by point (in rotated order) so that load on the machine hits all of them alike:

  reference   `NearbyService.join(hits)` without an instant: no closure look-up (the path before)
  empty       `join(hits, at)` with no station reported closed (the usual case)
  reported    `join(hits, at)` with every station of the network carrying a closure note (the worst case)

    python -m bench.closures            # 186,100 stations, 2,000 points
    python -m bench.closures --quick    # 5,000 stations, 500 points
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from bench._common import print_load, print_machine


async def run(stations: int, points: int) -> dict[str, float]:
    from bot.app import open_core
    from bot.config import Settings
    from bot.services.closures import ClosureNote
    from bot.services.nearby import NearbyService
    from domain.values import GeoPoint

    at = datetime(2025, 6, 3, 4, 0, tzinfo=UTC)
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(database_url=f"sqlite+aiosqlite:///{Path(tmp) / 'bench.db'}", _env_file=None)  # type: ignore[call-arg]
        async with open_core(settings) as core:
            await core.stations.seed(stations, 2024)
            await core.reload_index()
            await core.stations.warm_cache()
            nearby = NearbyService(core.search, core.stations)
            rng = np.random.default_rng(7)
            index = core.search.index
            chosen = rng.choice(len(index.ids), size=points)
            queries = [GeoPoint(float(index.lat[i]) + 0.003, float(index.lon[i])) for i in chosen]
            board = core.stations.closures
            everywhere = {
                int(station_id): ClosureNote(2, at) for station_id in np.asarray(index.ids).tolist()
            }

            hits = [nearby.find_nearest_open(point, 5, (), at) for point in queries]
            samples: dict[str, list[float]] = {"reference": [], "empty": [], "reported": []}
            for found in hits:  # warm-up
                await nearby.join(found)
            variants = (("reference", {}, False), ("empty", {}, True), ("reported", everywhere, True))
            for n, found in enumerate(hits):
                # Each point runs the three in a rotated order, so that none always goes first.
                for name, notes, with_at in variants[n % 3 :] + variants[: n % 3]:
                    board.notes = notes
                    started = time.perf_counter_ns()
                    await (nearby.join(found, at) if with_at else nearby.join(found))
                    samples[name].append(time.perf_counter_ns() - started)
            board.notes = {}
    return {name: statistics.median(values) / 1e3 for name, values in samples.items()}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="5,000 stations, 500 points")
    args = parser.parse_args(argv)
    stations, points = (5_000, 500) if args.quick else (186_100, 2_000)
    print_machine("closure look-ups on the results page")
    print(f"command: python -m bench.closures{' --quick' if args.quick else ''}")
    medians = asyncio.run(run(stations, points))
    print_load("end")
    reference = medians["reference"]
    print(f"\n{stations:,} stations, {points:,} points, median µs per join (interleaved):\n")
    print("| join of 5 hits | median µs | ratio to reference |")
    print("|---|---:|---:|")
    for name in ("reference", "empty", "reported"):
        print(f"| {name} | {medians[name]:.1f} | {medians[name] / reference:.3f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
