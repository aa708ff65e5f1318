"""Station use cases: import, export, seed, look-up, sync, and keeping the in-process index in step.

Every write goes through here so that the spatial index of this process reflects it as soon as the
transaction commits. Parsing and generation are CPU work and run in a worker thread. `station_json` and
`StationDetail.as_json` are the JSON shapes of a stored station for every channel that speaks JSON.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import enum
import functools
import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, TextIO

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.services.cache import TtlCache
from bot.services.closures import ClosureBoard, ClosureNote
from bot.services.regions import RegionCheck, RegionScope, derive_regions
from bot.services.search import SearchService, open_now
from domain.clock import DEFAULT_TZ, utc_now
from domain.hours import Hours, HoursStatus, OpenState, hours_of
from domain.values import CRS, BBox, InvalidCursor, Station, StationNotFound, StationRecord
from storage.fences import station_write, sync_horizon
from storage.importers import (
    GEOJSON_HEAD,
    GEOJSON_SEPARATOR,
    GEOJSON_TAIL,
    ImportLimits,
    RowError,
    geojson_feature,
    parse_station_file,
    write_csv,
    write_geojson,
)
from storage.regions import RegionLookup
from storage.reports_repo import AuditRepository
from storage.spatial import SpatialIndex
from storage.stations_repo import RECORD_FIELDS, StationRepository, index_entry, record_from_raw

Progress = Callable[[int, int], None]
log = logging.getLogger(__name__)
#: Origins of a station (`stations.origin`).
IMPORTED, SEEDED, DEMO = "import", "seed", "demo"
_UNKNOWN_HOURS = HoursStatus(OpenState.UNKNOWN, None, "")
#: Most stations a sync page may hold: a page is built in memory and sent in one response.
MAX_SYNC_PAGE = 5000


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


@functools.cache
def _province_names() -> dict[str, str]:
    # Imported on first use: the seed module loads the GeoNames tables, which only seeding needs.
    from storage.seed_data import PROVINCES

    return {f"{p.adcode:02d}": p.name for p in PROVINCES.values()}


def province_name(adcode: str) -> str:
    """The Chinese name of a province by its 2-digit adcode prefix; the code itself when unknown."""
    return _province_names().get(adcode[:2], adcode) if len(adcode) == 2 else adcode


def station_json(station: Station) -> dict[str, Any]:
    """Every field of a stored station, as docs/ARCHITECTURE.md's contracts list them (times as ISO 8601,
    coordinates WGS-84)."""
    return {
        "code": station.code,
        "name": station.name,
        "address": station.address,
        "lat": station.lat,
        "lon": station.lon,
        "region": station.region,
        "host": station.host,
        "opening_hours": station.opening_hours,
        "amenities": list(station.amenities),
        "phone": station.phone,
        "manager": station.manager,
        "status": station.status.value,
        "timezone": station.timezone,
        "verified_at": _iso(station.verified_at),
        "created_at": _iso(station.created_at),
        "updated_at": _iso(station.updated_at),
    }


@dataclass(frozen=True, slots=True)
class StationDetail:
    """A station with its state at one instant, for a station page."""

    station: Station
    hours: HoursStatus
    #: People who reported it closed, while it stays listed (bot/services/closures.py).
    closure: ClosureNote | None = None
    #: The station's week (Monday first) around the instant, in its own timezone; None when hours are unknown.
    week: dict[str, Any] | None = None

    @property
    def open_now(self) -> bool | None:
        return open_now(self.station.status, self.hours)

    def as_json(self) -> dict[str, Any]:
        # Same meaning as in a nearby result, so that a client renders both with one code path.
        next_change = self.hours.next_change
        return {
            **station_json(self.station),
            "open_now": self.open_now,
            "next_change": next_change.isoformat() if next_change else None,
            "closure_reports": self.closure.as_json() if self.closure is not None else None,
            "week": self.week,
        }


def week_json(hours: Hours, at: datetime) -> dict[str, Any]:
    """The seven local days, Monday to Sunday, of the week holding `at`, with their open (and unknown)
    intervals as `HH:MM` in the station's timezone; `end` 24:00 means until midnight. Holidays count.

    Shared by every station with the same hours on the same day (`compile_hours` shares `hours`): it was
    half the cost of a station's details (bench/README-overload.md). Callers only read it."""
    return _week_json(hours, at.astimezone(hours.tz).date())


@functools.lru_cache(maxsize=8192)
def _week_json(hours: Hours, today: date) -> dict[str, Any]:
    monday = today - timedelta(days=today.weekday())
    days = []
    for offset in range(7):
        day = monday + timedelta(days=offset)
        intervals = [
            {
                "start": start.strftime("%H:%M"),
                "end": end.strftime("%H:%M") if end is not None else "24:00",
                "state": state.value,
            }
            for start, end, state in hours.day_intervals(day)
        ]
        days.append({"date": day.isoformat(), "intervals": intervals})
    return {"today": today.isoformat(), "days": days}


@dataclass(frozen=True, slots=True)
class SyncCursor:
    """Where a sync page ended: the (updated_at, id) key of its last station.

    Clients get it as an opaque URL-safe string; its content may change between versions of the service.
    """

    updated_at: datetime
    id: int

    def encode(self) -> str:
        raw = f"{self.updated_at.astimezone(UTC).isoformat()}|{self.id}".encode()
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    @classmethod
    def decode(cls, text: str) -> SyncCursor:
        try:
            raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
            when, _, number = raw.decode("ascii").partition("|")
            updated_at = datetime.fromisoformat(when)
            station_id = int(number)
        except (binascii.Error, UnicodeDecodeError, ValueError):
            raise InvalidCursor("not a cursor this service handed out") from None
        # Both limits keep a forged cursor from reaching the database as an error (BIGINT, UTC shift).
        if updated_at.utcoffset() != timedelta(0) or not 0 <= station_id < 2**63:
            raise InvalidCursor("not a cursor this service handed out")
        return cls(updated_at, station_id)


@dataclass(frozen=True, slots=True)
class ChangesPage:
    """One page of a sync. `server_time` was read before the query and is no later than the start of any
    station write still in progress (storage/fences.py), so a client that syncs next with
    `since=server_time` of its last page misses no change, however long the transaction that made it."""

    server_time: datetime
    stations: list[Station]
    next_cursor: SyncCursor | None


@dataclass(frozen=True, slots=True)
class NetworkVersion:
    """Identifies one state of the network cheaply: the station count and the latest change."""

    count: int
    last_change: datetime | None

    @property
    def token(self) -> str:
        last = self.last_change.astimezone(UTC).strftime("%Y%m%dT%H%M%S%f") if self.last_change else "0"
        return f"{self.count}-{last}"


@dataclass(slots=True)
class ImportReport:
    total_rows: int
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    #: Codes left alone because a station of another origin holds them (seeding only).
    skipped: list[str] = field(default_factory=list)
    errors: list[RowError] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    dry_run: bool = False
    #: The catalogue for this file's messages: the language of its header (see storage/importers.py).
    lang: str = "en"
    #: The districts of the stations the file holds (those not rejected), when known.
    regions: list[str] = field(default_factory=list)

    @property
    def rejected(self) -> int:
        return len(self.errors)


def _json_value(value: Any) -> Any:
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, tuple):
        return list(value)
    if isinstance(value, datetime):
        return value.isoformat()
    return value


@dataclass(frozen=True, slots=True)
class ImportAudit:
    """Who imports (their audit identity) and what (`reason`, e.g. the run and file name): each station an
    import changes gets an audit row saying so."""

    actor_id: int
    reason: str
    at: datetime
    action: str = "import"

    def row(self, station_id: int, record: StationRecord, before: Station | None) -> dict[str, Any]:
        fields = [
            name for name in RECORD_FIELDS if before is None or getattr(record, name) != getattr(before, name)
        ]
        return {
            "station_id": station_id,
            "actor_id": self.actor_id,
            "action": self.action,
            "before": {n: _json_value(getattr(before, n)) for n in fields} if before is not None else {},
            "after": {n: _json_value(getattr(record, n)) for n in fields},
            "reason": self.reason,
            "case_id": None,
            "created_at": self.at,
        }


def _same(record: StationRecord, station: Station) -> bool:
    return all(getattr(record, name) == getattr(station, name) for name in RECORD_FIELDS)


class StationCache(TtlCache[int, Station]):
    """Station details by id, and the ids of the codes it has seen, so that `GET /stations/{code}` is
    answered from memory like a search."""

    def __init__(self, ttl: float, max_size: int) -> None:
        super().__init__(ttl, max_size)
        # Codes never change (imports upsert by code), so an id found here is checked, never stale.
        self._ids: dict[str, int] = {}
        #: Bumped whenever this process learns that stations changed (its own writes, the change feed, a
        #: reload): what is derived from the network, such as a rendered sync page, is keyed by it.
        self.generation = 0

    def changed(self) -> None:
        self.generation += 1

    def put(self, key: int, value: Station) -> None:
        super().put(key, value)
        if self.max_size > 0:
            self._ids[value.code] = key

    def by_code(self, code: str) -> Station | None:
        station_id = self._ids.get(code)
        if station_id is None:
            return None
        station = self.get(station_id)
        return station if station is not None and station.code == code else None

    def id_and_timezone(self, code: str) -> tuple[int, str | None] | None:
        """The id and timezone of a station held here (None when its details have left the cache)."""
        station = self.by_code(code)
        return (station.id, station.timezone) if station is not None else None

    def clear(self) -> None:
        super().clear()
        self._ids.clear()
        self.changed()


def station_cache(ttl: float = 3600.0, max_size: int = 250_000) -> StationCache:
    """Station details by id, so that answering a rider needs no database round trip. Every change made
    through this process refreshes it (`StationService.reflect`); changes of other processes arrive on
    the change feed, and the expiry bounds the rest."""
    return StationCache(ttl, max_size)


class StationService:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        search: SearchService | None = None,
        default_tz: str = DEFAULT_TZ,
        cache: StationCache | None = None,
        import_limits: ImportLimits | None = None,
        regions: RegionLookup | None = None,
    ) -> None:
        self.sessions = sessions
        self.import_limits = import_limits or ImportLimits()
        self.search = search
        self.default_tz = default_tz
        self.cache = cache if cache is not None else station_cache()
        #: Closure reports shown on stations still listed (bot/services/closures.py).
        self.closures = ClosureBoard(sessions, default_tz)
        self.regions = regions if regions is not None else RegionLookup()
        # Set when several processes share the data (Redis): changes are announced to the others.
        self.change_feed: Any = None
        self._unpublished: set[int] = set()
        self._publishing: asyncio.Task[None] | None = None

    # -- reading ----------------------------------------------------------------------------------------
    @property
    def generation(self) -> int:
        """Changes when a station changes as far as this process knows (shared by `reader`s): the same
        value means the same network, unless another process changed it without announcing it (no Redis)."""
        return self.cache.generation

    def reader(self, sessions: async_sessionmaker[AsyncSession]) -> StationService:
        """A service for reads only over other `sessions` (a pool of their own), sharing this one's index
        and cache: the public API's, so that its traffic cannot take the bot's connections."""
        return StationService(sessions, self.search, self.default_tz, self.cache)

    async def get(self, code: str) -> Station:
        """A station by code as the database holds it now (for decisions that change it)."""
        async with self.sessions() as session:
            station = await StationRepository(session).get_by_code(code)
        if station is None:
            raise StationNotFound(code)
        return station

    async def get_cached(self, code: str) -> Station:
        """A station by code from this process's cache when it holds it (as fresh as a search's hits),
        else from the database."""
        station = self.cache.by_code(code)
        if station is None:
            station = await self.get(code)
            self.cache.put(station.id, station)
        return station

    async def get_by_id(self, station_id: int) -> Station:
        station = (await self.get_many([station_id])).get(station_id)
        if station is None:
            raise StationNotFound(str(station_id))
        return station

    async def get_many(self, ids: Sequence[int]) -> dict[int, Station]:
        found, missing = self.cache.get_many(ids)
        if missing:
            async with self.sessions() as session:
                fetched = await StationRepository(session).get_many(missing)
            for station in fetched.values():
                self.cache.put(station.id, station)
            found.update(fetched)
        return found

    async def count(self) -> int:
        async with self.sessions() as session:
            return await StationRepository(session).count()

    async def provinces(self) -> list[tuple[str, str]]:
        """(2-digit adcode, name) of the provinces that have stations in service, by adcode."""
        async with self.sessions() as session:
            prefixes = await StationRepository(session).province_prefixes()
        return [(prefix, province_name(prefix)) for prefix in prefixes]

    async def warm_cache(self) -> int:
        """Fill the station cache with the current network (as far as it holds), so that answers need no
        database read. Runs in the background after start-up; yields to the loop between batches."""
        loaded = 0
        async with self.sessions() as session:
            async for batch in StationRepository(session).stream_current_rows():
                for station in batch:
                    if self.cache.get(station.id) is None:
                        self.cache.put(station.id, station)
                loaded += len(batch)
                if loaded >= self.cache.max_size:
                    break
                await asyncio.sleep(0)
        return loaded

    async def load_index(self) -> SpatialIndex:
        async with self.sessions() as session:
            return await StationRepository(session).load_index()

    async def detail(self, code: str, at: datetime) -> StationDetail:
        """A station by code with whether it is open at `at` and when that changes."""
        station = await self.get_cached(code)
        hours = hours_of(station, self.default_tz)
        if hours is None:
            return StationDetail(station, _UNKNOWN_HOURS, self.closures.get(station.id, at))
        return StationDetail(
            station, hours.status(at), self.closures.get(station.id, at), week_json(hours, at)
        )

    async def changes(
        self,
        *,
        since: datetime | None = None,
        bbox: BBox | None = None,
        limit: int = 1000,
        after: SyncCursor | None = None,
    ) -> ChangesPage:
        """Stations changed after `since` (all when None), closed ones included so that copies drop them,
        inside `bbox` when given, ordered by (updated_at, id), `limit` at a time from `after`."""
        if not 1 <= limit <= MAX_SYNC_PAGE:
            raise ValueError(f"limit must be between 1 and {MAX_SYNC_PAGE}")
        # The clock the writers stamp updated_at with, then the writes in progress, then the rows: see
        # ChangesPage and storage/fences.py.
        now = utc_now()
        async with self.sessions() as session:
            server_time = await sync_horizon(session, now)
            stations = await StationRepository(session).changed_page(
                since=since,
                after=(after.updated_at, after.id) if after else None,
                bbox=bbox,
                limit=limit + 1,  # one more tells whether another page follows
            )
        more = len(stations) > limit
        del stations[limit:]
        last = stations[-1] if more else None
        next_cursor = SyncCursor(last.updated_at, last.id) if last and last.updated_at else None
        return ChangesPage(server_time, stations, next_cursor)

    async def network_version(self) -> NetworkVersion:
        async with self.sessions() as session:
            count, last_change = await StationRepository(session).network_version()
        return NetworkVersion(count, last_change)

    async def network_geojson(self) -> bytes:
        """The current network (active and temporarily closed stations) as the GeoJSON of an export, UTF-8.

        Built batch by batch: raw rows from the database, each batch turned into features in a worker thread
        and kept only as bytes. For the national network that is seconds of CPU which must not stall the
        event loop, and holding every row and record at once would make each garbage collection pass
        walk millions of objects while the loop waits for it.
        """

        def render(rows: Sequence[Any]) -> bytes:
            return GEOJSON_SEPARATOR.join(
                json.dumps(geojson_feature(record_from_raw(row)), ensure_ascii=False) for row in rows
            ).encode()

        chunks: list[bytes] = []
        async with self.sessions() as session:
            async for batch in StationRepository(session).network_rows():
                chunks.append(await asyncio.to_thread(render, batch))
        # The bytes write_geojson would write, joined in one copy rather than one per concatenation.
        parts = [GEOJSON_HEAD.encode()]
        for n, chunk in enumerate(chunks):
            parts += (b"\n" if n == 0 else GEOJSON_SEPARATOR.encode(), chunk)
        parts.append(GEOJSON_TAIL.encode())
        return b"".join(parts)

    async def database_ok(self, limit_s: float = 2.0) -> bool:
        """Whether the database answers within `limit_s` seconds; a failure is logged, not raised
        (health checks report it, and a hung database must not hang them)."""
        try:
            async with asyncio.timeout(limit_s), self.sessions() as session:
                await StationRepository(session).ping()
        except Exception:
            log.exception("database check failed")
            return False
        return True

    # -- writing ----------------------------------------------------------------------------------------
    async def import_file(
        self,
        path: Path,
        crs: CRS = CRS.WGS84,
        dry_run: bool = False,
        progress: Progress | None = None,
        strict: bool = False,
        scope: RegionScope | None = None,
        audit: ImportAudit | None = None,
    ) -> ImportReport:
        """Parse, derive every station's region from its position (`strict`: reject a position with none),
        then save. With `scope`, rows of stations outside it (where they stand, or where the station of
        their code stands now) are rejected, each with its reason."""
        parsed = await asyncio.to_thread(parse_station_file, path, crs, None, progress, self.import_limits)
        unit = "feature" if Path(path).suffix.lower() in (".geojson", ".json") else "row"
        # A scope goes by the derived region: a position with none cannot be in it (the sheet's is kept).
        strict = strict or (scope is not None and not scope.everywhere)

        def derive() -> RegionCheck:
            check = derive_regions(parsed.records, parsed.rows, self.regions.index(), unit, strict)
            if scope is not None:
                check = scope.restrict(check, self.regions.index(), unit)
            return check

        check = await asyncio.to_thread(derive)
        report = ImportReport(
            total_rows=parsed.total_rows,
            errors=[*parsed.errors, *check.errors],
            warnings=[*parsed.warnings, *check.warnings],
            dry_run=dry_run,
            lang=parsed.lang,
        )
        records = check.records
        if scope is not None:
            records = await self._outside_scope(records, check.rows, scope, report, unit)
        report.errors.sort(key=lambda e: e.row)
        report.regions = sorted({r.region for r in records if r.region})
        await self.save_records(records, report, dry_run=dry_run, audit=audit)
        return report

    async def _outside_scope(
        self,
        records: list[StationRecord],
        rows: list[int],
        scope: RegionScope,
        report: ImportReport,
        unit: str,
    ) -> list[StationRecord]:
        """The records whose code no station outside `scope` holds; a row error for each of the others."""
        async with self.sessions() as session:
            existing = await StationRepository(session).by_codes(r.code for r in records)
        kept: list[StationRecord] = []
        for record, row in zip(records, rows, strict=True):
            before = existing.get(record.code)
            if before is not None and not scope.allows(before.region):
                index = self.regions.index()
                report.errors.append(scope.foreign_code(record.code, before.region, row, unit, index))
            else:
                kept.append(record)
        return kept

    async def save_records(
        self,
        records: Sequence[StationRecord],
        report: ImportReport | None = None,
        dry_run: bool = False,
        origin: str = IMPORTED,
        audit: ImportAudit | None = None,
    ) -> ImportReport:
        """Upsert by code in one transaction; a dry run counts what would change and writes nothing.

        Imported records (`origin` import) replace whatever holds their code; synthetic ones (seed, demo)
        never replace a station of another origin: those codes are skipped and listed in the report.
        With `audit`, every station changed gets an audit row (its changed fields before and after) in the
        same transaction."""
        report = report or ImportReport(total_rows=len(records), dry_run=dry_run)
        async with station_write(self.sessions, "import", fenced=not dry_run) as session:
            repo = StationRepository(session)
            existing = await repo.by_codes(r.code for r in records)
            foreign: set[str] = set()
            if origin != IMPORTED and existing:
                origins = await repo.origins(list(existing))
                foreign = {code for code, held_by in origins.items() if held_by != origin}
            changed: list[StationRecord] = []
            for record in records:
                before = existing.get(record.code)
                if record.code in foreign:
                    report.skipped.append(record.code)
                elif before is None:
                    report.inserted += 1
                    changed.append(record)
                elif _same(record, before):
                    report.unchanged += 1
                else:
                    report.updated += 1
                    changed.append(record)
            if dry_run or not changed:
                await session.rollback()
                return report
            await repo.upsert_many(changed, origin)
            if audit is not None:
                ids = await repo.ids_by_code([r.code for r in changed])
                await AuditRepository(session).add_many(
                    [audit.row(ids[r.code], r, existing.get(r.code)) for r in changed]
                )
        if len(changed) > SpatialIndex.OVERLAY_LIMIT:
            async with self.sessions() as session, session.begin():
                await StationRepository(session).refresh_statistics()
        await self._refresh_index([r.code for r in changed])
        return report

    async def seed(self, count: int, seed: int, progress: Progress | None = None) -> ImportReport:
        """Add the synthetic national set (see `storage.seed`); stations of another origin are kept."""
        from storage.seed import generate_stations

        def generate() -> list[StationRecord]:
            return generate_stations(count, seed, progress, self.regions.index())

        records = await asyncio.to_thread(generate)
        return await self.save_records(records, origin=SEEDED)

    async def seed_demo(self) -> ImportReport:
        """Add the demo set (see `storage.seed`); stations of another origin are kept."""
        from storage.seed import demo_stations

        records = await asyncio.to_thread(lambda: demo_stations(regions=self.regions.index()))
        return await self.save_records(records, origin=DEMO)

    async def _refresh_index(self, codes: Sequence[str]) -> None:
        if self.search is None:
            return
        index = self.search.index
        if len(codes) > SpatialIndex.OVERLAY_LIMIT:
            # A bulk change is cheaper to reload than to patch slot by slot.
            self.search.index = await self.load_index()
            self.cache.clear()
            if self.change_feed is not None:
                try:
                    await self.change_feed.publish_reload()
                except Exception:
                    log.warning("could not announce a bulk change", exc_info=True)
            return
        async with self.sessions() as session:
            stations = await StationRepository(session).by_codes(codes)
        for station in stations.values():
            self.reflect(station)
        if index.needs_compaction:
            await asyncio.to_thread(index.compact)

    def reflect(self, station: Station) -> None:
        """Patch this process's index and cache with a station changed in a committed transaction, and
        tell the other processes."""
        self.cache.put(station.id, station)
        self.cache.changed()
        if self.search is not None:
            self.search.index.upsert(index_entry(station))
        self.announce(station.id)

    def announce(self, station_id: int) -> None:
        """Tell the other processes that something about a station changed (they read it afresh)."""
        if self.change_feed is not None:
            self._unpublished.add(station_id)
            if self._publishing is None or self._publishing.done():
                self._publishing = asyncio.get_running_loop().create_task(self._publish())

    async def closure_reports_changed(self, station_id: int) -> None:
        """A report or a decision changed what riders are told about a station's closure."""
        await self.closures.refresh([station_id])
        self.announce(station_id)

    async def _publish(self) -> None:
        while self._unpublished:
            ids = sorted(self._unpublished)
            self._unpublished.clear()
            try:
                await self.change_feed.publish(ids)
            except Exception:
                # The other processes resynchronise from the database when Redis comes back.
                log.warning("could not announce changes of %d stations", len(ids), exc_info=True)
                return

    async def flush_changes(self) -> None:
        """Wait until every change is announced (before a short-lived process exits)."""
        if self._publishing is not None:
            await self._publishing

    async def apply_remote_changes(self, station_ids: Sequence[int]) -> None:
        """Changes announced by another process: read them afresh and patch index and cache."""
        self.cache.changed()
        async with self.sessions() as session:
            fresh = await StationRepository(session).get_many(list(station_ids))
        for station_id in station_ids:
            station = fresh.get(station_id)
            if station is None:
                if self.search is not None:
                    self.search.index.remove(station_id)
                continue
            self.cache.put(station.id, station)
            if self.search is not None:
                self.search.index.upsert(index_entry(station))
        await self.closures.refresh(station_ids)

    async def update(self, code: str, **values: Any) -> Station:
        """Change some fields of one station and patch the index."""
        async with station_write(self.sessions, "edit station") as session:
            repo = StationRepository(session)
            station = await repo.get_by_code(code)
            if station is None:
                raise StationNotFound(code)
            updated = await repo.update_fields(station.id, **values)
        self.reflect(updated)
        return updated

    # -- exporting --------------------------------------------------------------------------------------
    async def export(self, out: TextIO, fmt: str = "csv") -> int:
        records: list[StationRecord] = []
        async with self.sessions() as session:
            async for station in StationRepository(session).stream_all():
                records.append(as_record(station))
        writer = write_geojson if fmt == "geojson" else write_csv
        await asyncio.to_thread(writer, records, out)
        return len(records)


def as_record(station: Station) -> StationRecord:
    return StationRecord(**{name: getattr(station, name) for name in ("code", *RECORD_FIELDS)})
