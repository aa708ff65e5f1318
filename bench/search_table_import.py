"""What the SQLite search table (migration 0016) costs an import: `StationService.save_records` of the same
generated stations into fresh SQLite files, without any search table work (its triggers dropped, no
rebuild) and as shipped (through the triggers below SEARCH_REBUILD_FROM rows, one rebuild from there),
interleaved, medians.

    flock /tmp/yizhan-bench.lock .venv/bin/python -m bench.search_table_import [--rows 186100] [--runs 2]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from collections.abc import Sequence
from pathlib import Path

from sqlalchemy import text

from bench._common import OUT, print_load, print_machine
from bot.app import open_core
from bot.config import Settings
from domain.values import StationRecord
from storage import stations_repo


async def _save(path: Path, records: list[StationRecord], search_table: bool) -> float:
    for f in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
        f.unlink(missing_ok=True)
    settings = Settings(database_url=f"sqlite+aiosqlite:///{path}", _env_file=None)  # type: ignore[call-arg]
    shipped = stations_repo.SEARCH_REBUILD_FROM
    try:
        async with open_core(settings, load_index=False) as core:
            if not search_table:
                stations_repo.SEARCH_REBUILD_FROM = 10**12
                async with core.engine.begin() as conn:
                    for name in stations_repo.SEARCH_TRIGGERS:
                        await conn.execute(text(f"DROP TRIGGER {name}"))
            started = time.perf_counter()
            await core.stations.save_records(records)
            return time.perf_counter() - started
    finally:
        stations_repo.SEARCH_REBUILD_FROM = shipped
        for f in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
            f.unlink(missing_ok=True)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=186_100)
    parser.add_argument("--runs", type=int, default=2)
    args = parser.parse_args(argv)
    from storage.regions import RegionLookup
    from storage.seed import generate_stations

    print_machine(f"search table import cost, {args.rows:,} stations")
    records = generate_stations(args.rows, 2024, regions=RegionLookup().index())
    OUT.mkdir(parents=True, exist_ok=True)
    times: dict[bool, list[float]] = {False: [], True: []}
    for _ in range(args.runs):
        for search_table in (False, True):
            seconds = asyncio.run(_save(OUT / f"search-import-{search_table}.db", records, search_table))
            times[search_table].append(seconds)
    for search_table, label in ((False, "without the search table"), (True, "as shipped")):
        runs = ", ".join(f"{t:.1f}" for t in times[search_table])
        print(f"save_records {args.rows:,} {label}: {statistics.median(times[search_table]):.1f} s ({runs})")
    print_load("end")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
