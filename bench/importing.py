"""(c) Import of a 186,100-row CSV via `StationService.import_file`, into SQLite and PostgreSQL.

The CSV is written once by `storage.importers.write_csv` from `generate_stations(n, seed)` and cached
under bench/out/. Each backend gets a fresh database (a new SQLite file; a new PostgreSQL database on the
local server, created and dropped here), migrated by `open_core(..., load_index=False)` before the clock
starts, so the index starts empty as in `yizhan stations import`... except that the service here holds a
SearchService, so the bulk refresh of the index after the commit is part of the figure (as in a running
bot). Phases are timed by wrapping, in this process only, `parse_station_file` (as the service calls it),
`StationRepository.by_codes`, `StationRepository.upsert_many` and `StationService.load_index`; "other" is
the rest (comparison with the existing rows, transaction, commit). Then the same file is imported again
(every row unchanged) as a second figure. Reference: `parse_station_file` alone, in the same run.

Run: python -m bench.importing [--quick] [--rows 186100] [--no-postgres]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import os
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from bench._common import OUT, ROOT, print_load, print_machine, table, verdict, wait_for_quiet

PG_ADMIN_URL = os.environ.get("BENCH_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test")
TARGET_S = 30.0
TARGET_N = 186_100


def prepare_csv(out: Path, n: int, seed: int) -> Path:
    from storage.importers import write_csv
    from storage.seed import generate_stations

    # The generator names its version: a cache written by an older one (other codes and names) is not reused.
    path = out / f"import-{n}-seed{seed}-regions.csv"
    if path.exists():
        print(f"using cached {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}")
        return path
    started = time.perf_counter()
    tmp = path.with_suffix(".tmp")
    with tmp.open("w", encoding="utf-8", newline="") as f:
        write_csv(generate_stations(n, seed), f)
    tmp.replace(path)
    print(f"wrote {path.name} ({path.stat().st_size / 1e6:.1f} MB) in {time.perf_counter() - started:.1f} s")
    return path


class Phases:
    """Accumulated seconds per wrapped callable."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    def wrap_async(self, name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        async def wrapper(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return await fn(*args, **kwargs)
            finally:
                self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - started

        return wrapper

    def wrap_sync(self, name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - started

        return wrapper


@contextlib.contextmanager
def instrumented(phases: Phases) -> Iterator[None]:
    import bot.services.stations as stations_mod
    from storage.stations_repo import StationRepository

    saved = (
        stations_mod.parse_station_file,
        StationRepository.by_codes,
        StationRepository.upsert_many,
        stations_mod.StationService.load_index,
    )
    stations_mod.parse_station_file = phases.wrap_sync("parse", saved[0])  # type: ignore[assignment]
    StationRepository.by_codes = phases.wrap_async("by_codes lookup", saved[1])  # type: ignore[method-assign]
    StationRepository.upsert_many = phases.wrap_async("upsert_many", saved[2])  # type: ignore[method-assign]
    stations_mod.StationService.load_index = phases.wrap_async("index refresh", saved[3])  # type: ignore[method-assign]
    try:
        yield
    finally:
        (
            stations_mod.parse_station_file,
            StationRepository.by_codes,
            StationRepository.upsert_many,
            stations_mod.StationService.load_index,
        ) = saved  # type: ignore[method-assign]


PHASES = ("parse", "by_codes lookup", "upsert_many", "other", "index refresh")


async def import_twice(url: str, csv_path: Path) -> list[dict[str, Any]]:
    from bot.app import open_core
    from bot.config import Settings

    settings = Settings(database_url=url, _env_file=None)  # type: ignore[call-arg]
    out = []
    started = time.perf_counter()
    async with open_core(settings, load_index=False) as core:
        migrate_s = time.perf_counter() - started
        for label in ("first import", "re-import (unchanged)"):
            gc.collect()
            phases = Phases()
            with instrumented(phases):
                started = time.perf_counter()
                report = await core.stations.import_file(csv_path)
                total = time.perf_counter() - started
            s = phases.seconds
            s["other"] = total - sum(s.get(p, 0.0) for p in PHASES if p != "other")
            out.append(
                {
                    "label": label,
                    "total": total,
                    "migrate": migrate_s,
                    **{p: s.get(p, 0.0) for p in PHASES},
                    "inserted": report.inserted,
                    "updated": report.updated,
                    "unchanged": report.unchanged,
                    "rejected": report.rejected,
                    "indexed": len(core.search.index),
                }
            )
            print(
                f"  {label}: {total:.1f} s ({report.inserted:,} new, {report.unchanged:,} unchanged, "
                f"{report.rejected} rejected)",
                flush=True,
            )
    return out


async def _pg_admin(sql: str) -> None:
    from sqlalchemy import text

    from storage.db import create_engine

    engine = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as conn:
            await conn.execute(text(sql))
    finally:
        await engine.dispose()


def run_sqlite(out: Path, csv_path: Path) -> list[dict[str, Any]]:
    db = out / f"import-bench-{os.getpid()}.db"
    files = [db, Path(f"{db}-wal"), Path(f"{db}-shm")]
    for f in files:
        f.unlink(missing_ok=True)
    try:
        return asyncio.run(import_twice(f"sqlite+aiosqlite:///{db}", csv_path))
    finally:
        for f in files:
            f.unlink(missing_ok=True)


def run_postgres(csv_path: Path) -> list[dict[str, Any]] | str:
    from sqlalchemy.engine import make_url

    name = f"yizhan_bench_{uuid.uuid4().hex[:10]}"
    try:
        asyncio.run(_pg_admin(f'CREATE DATABASE "{name}"'))
    except Exception as exc:
        return f"skipped: PostgreSQL not reachable at {PG_ADMIN_URL} ({exc.__class__.__name__})"
    try:
        url = make_url(PG_ADMIN_URL).set(database=name).render_as_string(hide_password=False)
        return asyncio.run(import_twice(url, csv_path))
    finally:
        asyncio.run(_pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.importing", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="20,000 rows")
    parser.add_argument("--rows", type=int, default=None)
    parser.add_argument("--seed", type=int, default=2024)
    parser.add_argument("--out", type=Path, default=OUT, help="where the CSV is cached")
    parser.add_argument("--no-postgres", action="store_true")
    parser.add_argument("--wait-quiet", type=float, default=0.0, help="wait up to S seconds for load < 1")
    args = parser.parse_args(argv)
    args.rows = args.rows or (20_000 if args.quick else TARGET_N)
    return args


def main(argv: Sequence[str] | None = None) -> int:
    from storage.importers import parse_station_file

    args = parse_args(argv)
    print_machine(f"bench.importing: CSV import of {args.rows:,} rows")
    started = time.perf_counter()
    args.out.mkdir(parents=True, exist_ok=True)
    csv_path = prepare_csv(args.out, args.rows, args.seed)
    if args.wait_quiet:
        wait_for_quiet(args.wait_quiet)

    print_load("before parse reference")
    parse_runs = []
    for _ in range(2):  # the first run also warms the caches (compiled opening hours, time zones)
        parse_started = time.perf_counter()
        parsed = parse_station_file(csv_path)
        parse_runs.append(time.perf_counter() - parse_started)
        records, rejected = len(parsed.records), len(parsed.errors)
        del parsed
        gc.collect()
    parse_alone = parse_runs[-1]
    print(
        f"parse alone: {parse_alone:.2f} s warm (first run {parse_runs[0]:.2f} s), {records:,} records, "
        f"{rejected} rejected"
    )

    results: dict[str, list[dict[str, Any]] | str] = {}
    print_load("before SQLite")
    results["sqlite"] = run_sqlite(args.out, csv_path)
    if args.no_postgres:
        results["postgresql"] = "skipped (--no-postgres)"
    else:
        print_load("before PostgreSQL")
        results["postgresql"] = run_postgres(csv_path)

    print(f"\n## import of {args.rows:,} rows (s); reference: parse alone {parse_alone:.2f} s")
    rows = []
    for backend, runs in results.items():
        if isinstance(runs, str):
            print(f"{backend}: {runs}")
            continue
        for r in runs:
            rows.append(
                [
                    backend,
                    r["label"],
                    r["total"],
                    *(r[p] for p in PHASES),
                    r["total"] / parse_alone,
                    args.rows / r["total"],
                    f"{r['inserted']:,}/{r['unchanged']:,}/{r['rejected']}",
                ]
            )
    print(table(["backend", "run", "total", *PHASES, "x parse", "rows/s", "new/unchanged/rejected"], rows))
    migrations = [[b, runs[0]["migrate"]] for b, runs in results.items() if not isinstance(runs, str)]
    print(
        "\nschema migration of the fresh database (not in the figures above): "
        + ", ".join(f"{b} {s:.2f} s" for b, s in migrations)
    )

    print("\n## targets")
    sqlite_first = results["sqlite"][0] if not isinstance(results["sqlite"], str) else None
    if args.rows == TARGET_N and sqlite_first:
        total = sqlite_first["total"]
        print(
            f"import of {TARGET_N:,} rows ≤ {TARGET_S:.0f} s on SQLite: {total:.1f} s → "
            f"{verdict(total <= TARGET_S)}"
        )
    else:
        print(f"(the target is at {TARGET_N:,} rows; this run imported {args.rows:,})")
    print_load("end")
    print(f"total {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
