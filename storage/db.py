"""Engines, sessions and migrations for the backend `DATABASE_URL` names.

SQLite (the embedded default) gets WAL and sane pragmas; PostgreSQL gets asyncpg. Migrations run through
alembic on a connection we hand it, so `yizhan run` can migrate from inside its event loop.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, event, exc, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.pool import AsyncAdaptedQueuePool, Pool

MIGRATIONS_DIR = Path(__file__).with_name("migrations")
#: What a session's wait for a pooled connection raises after the engine's `pool_timeout` (SQLAlchemy's
#: default is 30 s; the public API's pool waits DB_POOL_TIMEOUT, a second, and refuses instead).
PoolTimeout = exc.TimeoutError


def is_sqlite(url: str) -> bool:
    return make_url(url).get_backend_name() == "sqlite"


def timed_pool(base: type[Pool], observe: Callable[[float], None]) -> type[Pool]:
    """`base` whose checkouts report how long they took: waiting for a free connection (up to the pool's
    timeout), or opening a new one. A class rather than a wrapped instance: `engine.dispose()` rebuilds the
    pool from its class."""

    class TimedPool(base):  # type: ignore[valid-type,misc]
        def connect(self) -> Any:
            started = time.perf_counter()
            try:
                return super().connect()
            finally:
                observe(time.perf_counter() - started)

    return TimedPool


def create_engine(
    url: str, on_pool_wait: Callable[[float], None] | None = None, **kwargs: Any
) -> AsyncEngine:
    """An engine for `url`; `on_pool_wait(seconds)` is told how long each pooled checkout took (metrics)."""
    # A database error's message would otherwise carry the statement's parameters into the logs: a
    # reporter's proposed position among them.
    kwargs.setdefault("hide_parameters", True)
    pooled = True
    if is_sqlite(url):
        database = make_url(url).database
        if not database or database == ":memory:":
            kwargs.pop("pool_timeout", None)  # one connection for everyone (StaticPool): nobody waits for it
            pooled = False
        else:
            Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
            # Every aiosqlite connection is a thread of its own, opened with four PRAGMAs. With the default
            # pool (5, overflow 10) a web process under 8+ concurrent requests opened and closed hundreds
            # of them a second; 20 kept open cover the concurrency of one process (bench/api.py).
            kwargs.setdefault("pool_size", 20)
            kwargs.setdefault("max_overflow", 20)
        if pooled and on_pool_wait is not None:
            kwargs.setdefault("poolclass", timed_pool(AsyncAdaptedQueuePool, on_pool_wait))
        engine = create_async_engine(url, connect_args={"timeout": 30}, **kwargs)
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        return engine
    kwargs.setdefault("pool_pre_ping", True)
    kwargs.setdefault("pool_size", 10)
    if on_pool_wait is not None:
        kwargs.setdefault("poolclass", timed_pool(AsyncAdaptedQueuePool, on_pool_wait))
    return create_async_engine(url, **kwargs)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    # WAL lets readers (the bot) go on while a writer (an import) holds its transaction.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)


#: The newest migration (tests check it against alembic's script directory). A database already there is
#: not handed to alembic at all: importing and running it is a sixth of a command's start-up.
HEAD_REVISION = "0018"


def alembic_config(url: str | None = None) -> Any:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    if url:
        cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


async def upgrade_database(engine: AsyncEngine, revision: str = "head") -> None:
    """Bring the schema to `revision` using the engine's own connection (safe inside a running loop)."""
    if revision == "head" and await _at_head(engine):
        return

    def run(connection: Connection) -> None:
        from alembic import command

        cfg = alembic_config()
        cfg.attributes["connection"] = connection
        command.upgrade(cfg, revision)

    async with engine.begin() as conn:
        await conn.run_sync(run)


async def _at_head(engine: AsyncEngine) -> bool:
    try:
        async with engine.connect() as conn:
            versions = (await conn.execute(text("SELECT version_num FROM alembic_version"))).scalars().all()
    except Exception:  # no table yet (a new database), or one alembic must look at
        return False
    return list(versions) == [HEAD_REVISION]


async def current_revision(engine: AsyncEngine) -> str | None:
    from alembic.runtime.migration import MigrationContext

    def read(connection: Connection) -> str | None:
        return MigrationContext.configure(connection).get_current_revision()

    async with engine.connect() as conn:
        return await conn.run_sync(read)
