"""The console's station list on the national network: `StationConsoleService.search` (a page and its total)
and the exports of a selection, on SQLite and PostgreSQL with 186,100 seeded stations, medians; on
PostgreSQL the plan of each search names the indexes it uses.

    flock /tmp/yizhan-bench.lock .venv/bin/python -m bench.console_stations [--rows 186100] [--postgres URL]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import make_url

from bench._common import OUT, print_load, print_machine
from bot.app import Core, open_core
from bot.config import Settings
from bot.services.roles import Access, Role
from bot.services.station_console import StationQuery
from storage.db import create_engine
from storage.stations_repo import _filtered, search_statement

ADMIN = Access(1, ((Role.ADMIN, ""),))
GUANGZHOU = Access(2, ((Role.STAFF, "4401"),))
CASES: list[tuple[str, Access, dict[str, str]]] = [
    ("admin, first page", ADMIN, {}),
    ("admin, text 2 chars (驿站 in every name)", ADMIN, {"q": "驿站"}),
    ("admin, text 4 chars (a street)", ADMIN, {"q": "发展大道"}),
    ("admin, text 6 chars, rare", ADMIN, {"q": "发展大道684"}),
    ("admin, code start", ADMIN, {"q": "GH440106"}),
    ("admin, amenity legal_aid", ADMIN, {"amenity": "legal_aid"}),
    ("admin, temporarily closed", ADMIN, {"status": "temporarily_closed"}),
    ("staff 4401, first page", GUANGZHOU, {}),
    ("staff 4401, text 2 chars", GUANGZHOU, {"q": "驿站"}),
    ("staff 4401, district 440106 + amenity", GUANGZHOU, {"district": "440106", "amenity": "toilet"}),
]


async def _median(runs: int, call: Callable[[], Awaitable[Any]]) -> float:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        await call()
        times.append(time.perf_counter() - started)
    return statistics.median(times) * 1000


async def _plan(core: Core, access: Access, params: dict[str, str]) -> str:
    from sqlalchemy import func, select

    from storage.models import StationRow

    selection = core.station_console.selection(access, StationQuery.parse(params))
    stmt = search_statement(selection, "postgresql", limit=51)
    count = _filtered(select(func.count()).select_from(StationRow), selection, "postgresql")
    names = set()
    async with core.engine.connect() as conn:
        for statement in (stmt, count):
            compiled = statement.compile(core.engine.sync_engine, compile_kwargs={"literal_binds": True})
            plan = (await conn.execute(text(f"EXPLAIN {compiled}"))).scalars().all()
            for line in plan:
                for word in line.replace("(", " ").split():
                    if word.startswith("ix_") or word.startswith("stations_") or word.startswith("uq_"):
                        names.add(word)
                if "Seq Scan" in line:
                    names.add("seq scan")
    return ", ".join(sorted(names))


async def measure(url: str, rows: int, runs: int, backend: str) -> None:
    settings = Settings(database_url=url, _env_file=None)  # type: ignore[call-arg]
    async with open_core(settings, load_index=False) as core:
        started = time.perf_counter()
        report = await core.stations.seed(rows, 2024)
        print(
            f"{backend}: seeded {report.inserted:,} stations in {time.perf_counter() - started:.1f} s",
            flush=True,
        )
        if backend == "postgresql":
            async with core.engine.begin() as conn:
                await conn.execute(text("ANALYZE stations"))
        service = core.station_console
        print(f"| {backend} search | page (50) + total, ms | found | indexes (PostgreSQL plan) |")
        print("| --- | ---: | ---: | --- |")
        for label, access, params in CASES:
            query = StationQuery.parse(params)
            page = await service.search(access, query)
            ms = await _median(runs, lambda access=access, query=query: service.search(access, query))
            plan = await _plan(core, access, params) if backend == "postgresql" else ""
            found = f"{page.total:,}" + ("+" if page.more_than else "")
            print(f"| {label} | {ms:.1f} | {found} | {plan} |", flush=True)
        # The last page of everything, reached by its key: as cheap as the first.
        last = (await service.search(ADMIN, StationQuery(), before="\uffff", limit=50)).stations
        ms = await _median(runs, lambda: service.search(ADMIN, StationQuery(), after=last[0].code))
        print(f"| admin, last page (keyset) | {ms:.1f} | | |")

        async def csv_all(access: Access) -> int:
            return sum([len(chunk) async for chunk in service.export_csv(access, StationQuery())])

        for label, access in (("CSV, staff 4401", GUANGZHOU), ("CSV, the whole network", ADMIN)):
            started = time.perf_counter()
            size = await csv_all(access)
            print(f"export {label}: {size / 1e6:.1f} MB in {time.perf_counter() - started:.2f} s", flush=True)
        started = time.perf_counter()
        data = await service.export_xlsx(GUANGZHOU, StationQuery())
        print(f"export XLSX, staff 4401: {len(data) / 1e6:.2f} MB in {time.perf_counter() - started:.2f} s")


async def _admin(url: str, sql: str) -> None:
    engine = create_engine(url, isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as conn:
            await conn.execute(text(sql))
    finally:
        await engine.dispose()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=186_100)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--postgres", default="postgresql+asyncpg://postgres@127.0.0.1:5432/test")
    parser.add_argument("--backend", choices=("sqlite", "postgresql", "both"), default="both")
    args = parser.parse_args(argv)
    print_machine(f"console station search, {args.rows:,} stations, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC")
    OUT.mkdir(parents=True, exist_ok=True)
    if args.backend in ("sqlite", "both"):
        db = OUT / f"console-{uuid.uuid4().hex[:8]}.db"
        try:
            asyncio.run(measure(f"sqlite+aiosqlite:///{db}", args.rows, args.runs, "sqlite"))
        finally:
            for f in (db, Path(f"{db}-wal"), Path(f"{db}-shm")):
                f.unlink(missing_ok=True)
    if args.backend in ("postgresql", "both"):
        name = f"yizhan_bench_{uuid.uuid4().hex[:8]}"
        asyncio.run(_admin(args.postgres, f'CREATE DATABASE "{name}"'))
        try:
            url = make_url(args.postgres).set(database=name).render_as_string(hide_password=False)
            asyncio.run(measure(url, args.rows, args.runs, "postgresql"))
        finally:
            asyncio.run(_admin(args.postgres, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    print_load("end")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
