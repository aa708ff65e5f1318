"""The composition root: builds settings, engine, index and services once and hands them out.

Nothing else in the code base creates an engine or an index; commands, the bot and the web app all start
from `open_core`.
"""

from __future__ import annotations

import asyncio
import logging
import tempfile
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from bot.config import Settings
from bot.observability import Metrics
from bot.services.analytics import DemandCounter, DemandService
from bot.services.announcements import AnnouncementService, SubscriptionService
from bot.services.console_accounts import ConsoleAccountService, LoginPolicy
from bot.services.console_dashboard import DashboardService
from bot.services.evaluation import EvaluationService, UsageCounter
from bot.services.imports import ImportService
from bot.services.privacy import PrivacyService
from bot.services.ratings import RatingService
from bot.services.reports import ReportService, TrustPolicy
from bot.services.roles import RoleService
from bot.services.search import SearchService
from bot.services.station_admin import StationAdminService
from bot.services.station_console import StationConsoleService
from bot.services.stations import StationService, station_cache
from storage.changes import RedisChangeFeed
from storage.db import create_engine, session_factory, upgrade_database
from storage.importers import ImportLimits
from storage.ratelimit import (
    ClientRateLimiter,
    LocalClientRateLimiter,
    LocalRateLimiter,
    RateLimiter,
    RedisClientRateLimiter,
    RedisRateLimiter,
)
from storage.regions import RegionLookup
from storage.spatial import SpatialIndex

log = logging.getLogger(__name__)


@dataclass(slots=True)
class Core:
    settings: Settings
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    search: SearchService
    stations: StationService
    roles: RoleService
    reports: ReportService
    station_admin: StationAdminService
    ratings: RatingService
    subscriptions: SubscriptionService
    announcements: AnnouncementService
    privacy: PrivacyService
    #: The staff console's accounts and logins, and its region dashboard.
    console: ConsoleAccountService
    dashboard: DashboardService
    broadcast_limiter: RateLimiter
    #: Station files uploaded in the console (dry run, commit, history).
    imports: ImportService
    #: Station evaluation: usage counts (flushed in batches) and the regions' reports.
    evaluation: EvaluationService
    #: Search demand: the process's counters, their flushes and the reports (`yizhan analytics`).
    demand: DemandService
    #: API_RATE_LIMIT per client of the public API (None when 0): shared through Redis when there is one.
    api_limiter: ClientRateLimiter | None = None
    #: WEB_REPORT_RATE per client of the H5 page's reports (None when 0).
    web_report_limiter: ClientRateLimiter | None = None
    redis: Any = None
    #: The background fill of the station cache, when this process warms it.
    warming: asyncio.Task[int] | None = None
    metrics: Metrics | None = None
    #: The public API's reads: `stations` itself, or (webhook mode) a reader over a pool of its own, so
    #: that API traffic cannot take the connections Telegram's updates need.
    api_stations: StationService | None = None
    api_engine: AsyncEngine | None = None
    index_loaded: bool = False
    #: (monotonic time, database, redis) of the last check that found both well, and the check running.
    _health_ok: tuple[float, str, str] | None = None
    _health_check: asyncio.Task[tuple[str, str]] | None = None

    @property
    def station_console(self) -> StationConsoleService:
        """The console's station work, over this core's station and lifecycle services."""
        return StationConsoleService(self.sessions, self.stations, self.station_admin)

    async def resync(self) -> None:
        """After missed change notifications: reload everything derived from the stations table."""
        await self.reload_index()
        self.stations.cache.clear()
        await self.stations.closures.load()

    async def reload_index(self) -> SpatialIndex:
        started = time.perf_counter()
        index = await self.stations.load_index()
        self.search.index = index
        self.index_loaded = True
        log.info("index loaded: %d stations in %.2f s", len(index), time.perf_counter() - started)
        return index

    async def check_health(self, limit_s: float = 1.0, max_age: float = 0.0) -> Health:
        """Whether this process can serve: the database answers, the index is loaded, and Redis (when
        configured) answers, each within `limit_s` seconds, checked concurrently.

        With `max_age`, a successful check of the database and Redis that recent is reused (so a flood of
        probes costs one round trip a period), and concurrent callers share one check. A failure is never
        reused: the next probe checks again. The index's state is always read live."""
        cached = self._health_ok
        if cached is not None and time.monotonic() - cached[0] < max_age:
            database, redis = cached[1], cached[2]
        else:
            task = self._health_check
            if task is None or task.done():
                task = self._health_check = asyncio.ensure_future(self._check_services(limit_s))
            database, redis = await asyncio.shield(task)
        return Health(database, redis, len(self.search.index), self.index_loaded, len(self.stations.cache))

    def forget_health(self) -> None:
        """Drop the reusable result of the last check (the next `check_health` asks the services)."""
        self._health_ok = None

    async def _check_services(self, limit_s: float) -> tuple[str, str]:
        started = time.monotonic()
        ok, redis = await asyncio.gather(self.stations.database_ok(limit_s), self._redis_state(limit_s))
        database = "ok" if ok else "error"
        self._health_ok = (started, database, redis) if ok and redis in ("ok", "disabled") else None
        return database, redis

    async def _redis_state(self, limit_s: float) -> str:
        if self.redis is None:
            return "disabled"
        try:
            async with asyncio.timeout(limit_s):
                await self.redis.ping()
        except Exception as exc:
            log.warning("Redis check failed: %r", exc)
            return "error"
        return "ok"


@dataclass(frozen=True, slots=True)
class Health:
    database: str  # ok | error
    redis: str  # ok | error | disabled
    stations: int
    index_loaded: bool
    cached: int = 0

    @property
    def ready(self) -> bool:
        return self.database == "ok" and self.index_loaded and self.redis in ("ok", "disabled")

    def as_json(self) -> dict[str, Any]:
        """`GET /healthz`'s body: `stations` and `index` are both the index's size (`stations` came first)."""
        return {
            "status": "ok" if self.ready else "error",
            "stations": self.stations,
            "database": self.database,
            "redis": self.redis,
            "index": self.stations,
            "cached": self.cached,
            "ready": self.ready,
        }


@asynccontextmanager
async def open_core(
    settings: Settings | None = None,
    *,
    migrate: bool = True,
    load_index: bool = True,
    follow_changes: bool = False,
    warm_cache: bool = False,
    api_pool: bool = False,
    flush_demand: bool = False,
) -> AsyncIterator[Core]:
    """The core of one process. With REDIS_URL, station changes are announced to other processes, and
    with `follow_changes` (the bot and web processes) this one follows theirs. With `api_pool` the public
    API reads through a connection pool of its own (`Core.api_stations`, `Core.api_engine`) whose waits end
    after DB_POOL_TIMEOUT: `serve`, and `run` in webhook mode. With `flush_demand` (processes that serve
    searches) the search counters are written every ANALYTICS_FLUSH_S seconds; whatever is left is written
    when the core closes, whichever the process."""
    settings = settings or Settings()
    # The bot and the other jobs wait for a connection as long as SQLAlchemy lets them (an update is
    # better late than lost); the public API's own pool refuses after DB_POOL_TIMEOUT.
    # One registry per process: each replica is scraped on its own.
    metrics = Metrics()
    engine = create_engine(settings.database_url, on_pool_wait=metrics.pool_wait("main"))
    api_engine = None
    if api_pool:
        api_engine = create_engine(
            settings.database_url,
            on_pool_wait=metrics.pool_wait("api"),
            pool_timeout=settings.db_pool_timeout,
        )
    core: Core | None = None
    follower: asyncio.Task[None] | None = None
    warmer: asyncio.Task[int] | None = None
    flusher: asyncio.Task[None] | None = None
    stop_following = asyncio.Event()
    stop_flushing = asyncio.Event()
    try:
        if migrate:
            await upgrade_database(engine)
        sessions = session_factory(engine)
        search = SearchService(SpatialIndex(), default_tz=settings.default_tz)
        metrics.track_index(lambda: len(search.index))
        regions = RegionLookup(settings.region_cache_dir)
        stations = StationService(
            sessions,
            search,
            default_tz=settings.default_tz,
            cache=station_cache(max_size=settings.station_cache_size),
            import_limits=ImportLimits(
                max_bytes=settings.import_max_bytes,
                max_rows=settings.import_max_rows,
                max_line=settings.import_max_line,
                max_xlsx_uncompressed=settings.import_max_xlsx_uncompressed,
                max_zip_ratio=settings.import_max_zip_ratio,
            ),
            regions=regions,
        )
        roles = RoleService(sessions)
        core = Core(
            settings,
            engine,
            sessions,
            search,
            stations,
            roles=roles,
            reports=ReportService(sessions, stations, TrustPolicy.from_settings(settings)),
            station_admin=StationAdminService(sessions, stations),
            ratings=RatingService(sessions),
            subscriptions=SubscriptionService(sessions, search, regions),
            announcements=AnnouncementService(sessions, default_tz=settings.default_tz, regions=regions),
            privacy=PrivacyService(sessions, timedelta(days=settings.report_retention_days)),
            console=ConsoleAccountService(
                sessions,
                roles,
                LoginPolicy(
                    max_failures=settings.console_max_failures,
                    lock=timedelta(minutes=settings.console_lock_minutes),
                    address_max_failures=settings.console_address_max_failures,
                ),
                events_retention=(
                    timedelta(days=settings.console_events_retention_days)
                    if settings.console_events_retention_days
                    else None
                ),
            ),
            dashboard=DashboardService(sessions),
            broadcast_limiter=LocalRateLimiter(settings.broadcast_rate),
            imports=ImportService(
                sessions,
                stations,
                settings.console_import_dir or Path(tempfile.gettempdir()) / "yizhan-imports",
                timedelta(minutes=settings.console_import_ttl_min),
            ),
            evaluation=EvaluationService(
                sessions,
                UsageCounter(
                    sessions,
                    settings.default_tz,
                    flush_s=settings.evaluation_flush_s,
                    retention_days=settings.evaluation_retention_days,
                ),
                settings.default_tz,
                find_station=stations.cache.id_and_timezone,
            ),
            demand=DemandService(
                sessions,
                DemandCounter(settings.default_tz, enabled=settings.analytics_enabled),
                regions,
                walkable_m=settings.analytics_walkable_m,
                retention=timedelta(days=settings.analytics_retention_days),
                default_tz=settings.default_tz,
            ),
            metrics=metrics,
        )
        core.privacy.also_purge(core.demand.purge_expired)
        if core.console.events_retention is not None:
            core.privacy.also_purge(core.console.purge_expired_events, "console events")
        core.api_stations = stations.reader(session_factory(api_engine)) if api_engine else stations
        core.api_engine = api_engine
        metrics.track_pool("main", engine.sync_engine.pool)
        if api_engine is not None:
            metrics.track_pool("api", api_engine.sync_engine.pool)
        if settings.redis_url:
            from redis.asyncio import Redis

            core.redis = Redis.from_url(settings.redis_url, socket_timeout=2, socket_connect_timeout=2)
            # Every process shares one schedule, so together they stay under BROADCAST_RATE.
            core.broadcast_limiter = RedisRateLimiter(core.redis, settings.broadcast_rate)
            stations.change_feed = RedisChangeFeed(core.redis)
        core.api_limiter = client_rate_limiter(settings, core.redis)
        core.web_report_limiter = web_report_limiter(settings, core.redis)
        if settings.admin_ids:
            await core.roles.ensure_admins(settings.admin_ids)
        if load_index:
            await core.reload_index()
            await stations.closures.load()
        if follow_changes and core.redis is not None:
            follower = asyncio.create_task(
                stations.change_feed.follow(stations.apply_remote_changes, core.resync, stop_following)
            )
        if warm_cache and load_index and stations.cache.max_size:
            # Long-running processes (bot, web) answer from memory once this finishes; ready before it.
            warmer = core.warming = asyncio.create_task(stations.warm_cache())
        if flush_demand:
            flusher = asyncio.create_task(core.demand.run_flusher(settings.analytics_flush_s, stop_flushing))
        yield core
        await stations.flush_changes()
    finally:
        if warmer is not None and not warmer.done():
            warmer.cancel()
            await asyncio.gather(warmer, return_exceptions=True)
        stop_following.set()
        if follower is not None:
            await asyncio.gather(follower, return_exceptions=True)
        stop_flushing.set()
        if flusher is not None:
            await asyncio.gather(flusher, return_exceptions=True)
        if core is not None:
            await _last_flush(core)
            await core.imports.close()
            # A clean stop keeps every usage count this process still holds.
            await core.evaluation.counter.close()
        if core is not None and core.redis is not None:
            await core.redis.aclose()
        if api_engine is not None:
            await api_engine.dispose()
        await engine.dispose()


async def _last_flush(core: Core) -> None:
    """Write the search counts still in memory before the engine goes (a clean stop loses none)."""
    try:
        written = await core.demand.flush()
    except Exception:
        log.exception("search counters: the last flush failed; %d searches lost", core.demand.counter.pending)
        return
    if written:
        log.info("search counters: %d searches written at stop", written)


def client_rate_limiter(settings: Settings, redis: Any = None) -> ClientRateLimiter | None:
    """API_RATE_LIMIT per client: shared through Redis when there is one, else this process's own."""
    if settings.api_rate_limit <= 0:
        return None
    burst = max(1, int(settings.api_rate_burst))
    if redis is not None:
        return RedisClientRateLimiter(redis, settings.api_rate_limit, burst)
    return LocalClientRateLimiter(settings.api_rate_limit, burst)


def web_report_limiter(settings: Settings, redis: Any = None) -> ClientRateLimiter | None:
    """WEB_REPORT_RATE reports an hour per client of the H5 page, WEB_REPORT_BURST at once."""
    if settings.web_report_rate <= 0:
        return None
    rate, burst = settings.web_report_rate / 3600, max(1, int(settings.web_report_burst))
    if redis is not None:
        return RedisClientRateLimiter(redis, rate, burst, name="web_reports")
    return LocalClientRateLimiter(rate, burst)


def install_event_loop_policy() -> None:
    """uvloop where available: the bot's own overhead dominates its latency, not the search."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover - Windows
        return
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
