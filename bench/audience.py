"""What the console's live audience size costs: `AnnouncementService.audience_size` for a whole region and for
"within 5 km of a point", with N subscribers spread over a city (~5 km cells), on SQLite and PostgreSQL,
medians. The console asks it as the compose form is typed (debounced 400 ms).

    flock /tmp/yizhan-bench.lock .venv/bin/python -m bench.audience [--subscribers 100000] [--postgres URL]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import time
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime

from sqlalchemy import text
from sqlalchemy.engine import make_url

from bench._common import OUT, print_load, print_machine
from bot.app import open_core
from bot.config import Settings
from bot.services.announcements import Audience, geohash
from bot.services.roles import Access, Role
from domain.values import GeoPoint
from storage.db import create_engine
from storage.models import SubscriptionRow

GUANGZHOU = Access(2, ((Role.STAFF, "4401"),))
CASES = [
    ("region 4401", Audience("4401")),
    ("within 5 km of a point", Audience("4401", GeoPoint(23.13, 113.26), 5.0)),
]


async def measure(url: str, subscribers: int, runs: int, backend: str) -> None:
    settings = Settings(database_url=url, _env_file=None)  # type: ignore[call-arg]
    async with open_core(settings, load_index=False) as core:
        rnd = random.Random(1)
        now = datetime.now(UTC)
        rows = []
        for user_id in range(10_000, 10_000 + subscribers):
            lat, lon = 23.0 + rnd.random() * 0.6, 113.1 + rnd.random() * 0.6
            rows.append(
                {
                    "user_id": user_id,
                    "active": True,
                    "cell": geohash(lat, lon),
                    "region": "440106",
                    "created_at": now,
                    "updated_at": now,
                }
            )
        async with core.sessions() as session, session.begin():
            for start in range(0, len(rows), 5000):
                await session.execute(SubscriptionRow.__table__.insert(), rows[start : start + 5000])
        print_load(f"{backend}, {subscribers:,} subscribers")
        print(f"| {backend} | size | median ms |")
        print("| --- | ---: | ---: |")
        for name, audience in CASES:
            times = []
            for _ in range(runs):
                started = time.perf_counter()
                size = await core.announcements.audience_size(GUANGZHOU, audience)
                times.append(time.perf_counter() - started)
            print(f"| {name} | {size:,} | {statistics.median(times) * 1000:.0f} |")


async def _admin(url: str, sql: str) -> None:
    engine = create_engine(url, isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as conn:
            await conn.execute(text(sql))
    finally:
        await engine.dispose()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.audience", description=__doc__)
    parser.add_argument("--subscribers", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--postgres", default="postgresql+asyncpg://postgres@127.0.0.1:5432/test")
    parser.add_argument("--backend", choices=("sqlite", "postgresql", "both"), default="both")
    args = parser.parse_args(argv)
    print_machine("bench.audience")
    if args.backend in ("sqlite", "both"):
        OUT.mkdir(parents=True, exist_ok=True)
        db = OUT / f"audience-{uuid.uuid4().hex[:8]}.db"
        try:
            asyncio.run(measure(f"sqlite+aiosqlite:///{db}", args.subscribers, args.runs, "sqlite"))
        finally:
            db.unlink(missing_ok=True)
    if args.backend in ("postgresql", "both"):
        name = f"yizhan_bench_{uuid.uuid4().hex[:8]}"
        asyncio.run(_admin(args.postgres, f'CREATE DATABASE "{name}"'))
        try:
            url = make_url(args.postgres).set(database=name).render_as_string(hide_password=False)
            asyncio.run(measure(url, args.subscribers, args.runs, "postgresql"))
        finally:
            asyncio.run(_admin(args.postgres, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
