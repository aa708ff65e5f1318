"""Shared fixtures: real databases (SQLite files and a fresh PostgreSQL+PostGIS database per run).

With CI=true a missing PostgreSQL or Redis fails the run instead of skipping, so a green CI always means
the suites ran against the real services.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url

from bot.config import Settings
from storage.db import create_engine

ROOT = Path(__file__).resolve().parent.parent
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
PG_ADMIN_URL = os.environ.get("TEST_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test")
T = TypeVar("T")
#: Under pytest-xdist each worker (gw0, gw1, …) flushes a Redis database of its own: 15, 14, ….
_WORKER = int(os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw") or 0)
REDIS_URL = os.environ.get("TEST_REDIS_URL", f"redis://127.0.0.1:6379/{15 - _WORKER}")


def service_missing(what: str, error: BaseException) -> None:
    message = f"{what} is not reachable: {error!r}"
    if IN_CI:
        pytest.fail(message + " (CI=true: tests that need it must run)", pytrace=False)
    pytest.skip(message)


def run_in_thread(coro_factory: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run a coroutine to completion on a loop of its own (fixtures may be set up inside the test loop)."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro_factory()).result()


async def _admin(sql: str) -> None:
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        async with admin.connect() as conn:
            await conn.execute(text(sql))
    finally:
        await admin.dispose()


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A fresh database on the local server for this run, dropped at the end."""
    name = f"yizhan_test_{uuid.uuid4().hex[:10]}"
    try:
        run_in_thread(lambda: _admin(f'CREATE DATABASE "{name}"'))
    except Exception as exc:
        service_missing("PostgreSQL", exc)
    try:
        yield make_url(PG_ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    finally:
        run_in_thread(lambda: _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


async def empty_postgres(url: str) -> None:
    """Empty every table of the run's database (the schema stays; identities restart)."""
    engine = create_engine(url)
    async with engine.begin() as conn:
        if await conn.scalar(text("SELECT to_regclass('public.stations') IS NOT NULL")):
            result = await conn.execute(
                text(
                    "SELECT tablename FROM pg_tables WHERE schemaname = 'public' "
                    "AND tablename NOT IN ('alembic_version', 'spatial_ref_sys')"
                )
            )
            tables = result.scalars().all()
            await conn.execute(text(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE"))
    await engine.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
async def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """Each storage test runs on a new SQLite file and on the run's PostgreSQL database, emptied."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'yizhan.db'}"
        return
    url: str = request.getfixturevalue("postgres_url")
    await empty_postgres(url)
    yield url


@pytest.fixture
def settings(database_url: str) -> Settings:
    return Settings(database_url=database_url, _env_file=None)  # type: ignore[call-arg]


@pytest.fixture
def sqlite_settings(tmp_path: Path) -> Iterator[Settings]:
    yield Settings(database_url=f"sqlite+aiosqlite:///{tmp_path / 'yizhan.db'}", _env_file=None)  # type: ignore[call-arg]


@pytest.fixture(autouse=True)
def event_loop_policy_kept() -> Iterator[None]:
    """`bot.cli.main` installs uvloop's policy for the process; a test that calls it in-process must not
    leave it to the tests after it (uvloop's policy has no child watcher for subprocesses in threads)."""
    policy = asyncio.get_event_loop_policy()
    yield
    asyncio.set_event_loop_policy(policy)


@pytest.fixture(scope="session", autouse=True)
def compiled_catalogues() -> None:
    """Compile the catalogues the way the install step does, so tests see the current translations."""
    from babel.messages.mofile import write_mo
    from babel.messages.pofile import read_po

    for po_path in (ROOT / "locales").glob("*/LC_MESSAGES/messages.po"):
        mo_path = po_path.with_suffix(".mo")
        if mo_path.exists() and mo_path.stat().st_mtime >= po_path.stat().st_mtime:
            continue
        with po_path.open("rb") as po:
            catalog = read_po(po)
        with mo_path.open("wb") as mo:
            write_mo(mo, catalog, use_fuzzy=False)


@pytest.fixture(scope="session")
def region_lookup() -> Any:
    """The administrative-region index of the test session: built from the boundary package once per
    machine (seconds; cached like in production), loaded once per session."""
    from storage.regions import RegionLookup

    lookup = RegionLookup()
    lookup.index()
    return lookup
