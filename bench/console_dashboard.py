"""The console's region dashboard (`DashboardService.summary`) on the national network seeded into SQLite,
for an admin (every station) and for Guangzhou's staff (prefix 4401), and what one Argon2id login check
costs with argon2-cffi's default parameters; medians.

    flock /tmp/yizhan-bench.lock .venv/bin/python -m bench.console_dashboard [--rows 186100] [--runs 5]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from collections.abc import Sequence
from datetime import UTC, datetime

from argon2 import PasswordHasher

from bench._common import OUT, print_load, print_machine
from bot.app import open_core
from bot.config import Settings
from bot.services.roles import Access, Role

CASES = (
    ("admin (every region)", Access(-1, ((Role.ADMIN, ""),))),
    ("staff of 4401 (Guangzhou)", Access(-2, ((Role.STAFF, "4401"),))),
)


async def run(rows: int, runs: int) -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    path = OUT / f"console-dashboard-{rows}.db"
    settings = Settings(database_url=f"sqlite+aiosqlite:///{path}", _env_file=None)  # type: ignore[call-arg]
    async with open_core(settings, load_index=False) as core:
        if await core.stations.count() != rows:
            await core.stations.seed(rows, 2024)
        print(f"\n## dashboard summary, SQLite, {await core.stations.count():,} stations, median of {runs}")
        print_load("dashboard")
        for name, access in CASES:
            times = []
            for _ in range(runs):
                started = time.perf_counter()
                summary = await core.dashboard.summary(access, datetime.now(UTC))
                times.append(time.perf_counter() - started)
            print(
                f"{name}: {statistics.median(times) * 1000:.0f} ms ({summary.stations:,} stations in scope)"
            )
    hasher = PasswordHasher()
    stored = hasher.hash("correct horse battery")
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        hasher.verify(stored, "correct horse battery")
        times.append(time.perf_counter() - started)
    print(f"\n## Argon2id verify (t={hasher.time_cost}, m={hasher.memory_cost} KiB, p={hasher.parallelism})")
    print_load("argon2")
    print(f"median of {runs}: {statistics.median(times) * 1000:.0f} ms")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench.console_dashboard")
    parser.add_argument("--rows", type=int, default=186_100)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args(argv)
    print_machine("bench.console_dashboard")
    asyncio.run(run(args.rows, args.runs))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
