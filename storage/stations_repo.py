"""Station repository: every SQL statement about stations lives here.

Rows become `domain.values.Station` values on the way out; nothing above this module sees an ORM object.
Bulk writes use the dialect's own `INSERT … ON CONFLICT (code) DO UPDATE` (SQLite and PostgreSQL share
the syntax), and the update only fires when a value really changed, so re-importing an export leaves
`updated_at` alone.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    Integer,
    Row,
    String,
    Table,
    Text,
    and_,
    any_,
    bindparam,
    cast,
    column,
    false,
    func,
    literal,
    literal_column,
    or_,
    select,
    text,
    true,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from domain.clock import utc_now
from domain.values import BBox, Station, StationRecord, StationStatus
from storage.fences import require_fence
from storage.models import StationRow
from storage.spatial import IndexEntry, SpatialIndex

#: Columns an import or an edit may set; identity and bookkeeping columns are the database's.
RECORD_FIELDS: tuple[str, ...] = (
    "name",
    "address",
    "lat",
    "lon",
    "region",
    "host",
    "opening_hours",
    "amenities",
    "phone",
    "manager",
    "status",
    "timezone",
    "verified_at",
    "opening_hours_text",
)
_BATCH = 2000
# SQLite allows 32,766 bound parameters per statement; keep IN lists well under it.
_IN_CHUNK = 5000


# One statement for any number of ids (an expanding parameter), so it is compiled once and cached.
_STATIONS_BY_ID = select(StationRow.__table__).where(
    StationRow.__table__.c.id.in_(bindparam("ids", expanding=True))
)

_STATIONS_BY_CODE = select(StationRow.__table__).where(
    StationRow.__table__.c.code.in_(bindparam("codes", expanding=True))
)
_STATIONS_BY_CODE_ARRAY = select(StationRow.__table__).where(
    StationRow.__table__.c.code == any_(bindparam("codes", type_=postgresql.ARRAY(String)))
)
#: Codes per array parameter on PostgreSQL (one round trip each; the index finds every code).
_ARRAY_CHUNK = 20_000


@dataclass(frozen=True, slots=True)
class StationFilter:
    """Which stations a staff search or export selects. `regions` are adcode prefixes of 2 to 6 digits
    ("" = everywhere; none = nothing), already narrowed to what the searcher may see; `text` is matched as a
    substring of code, name and address, case-insensitively (ASCII); `amenity` is a key of ours."""

    regions: tuple[str, ...]
    text: str = ""
    status: StationStatus | None = None
    amenity: str | None = None
    #: Only stations open around the clock (`24/7`).
    always_open: bool = False
    #: Only stations in service not verified since this instant (never verified included).
    verified_before: datetime | None = None


def _region_range(prefix: str) -> Any:
    """Stations whose region starts with a digit prefix, as a range over the region index. The bounds are
    digit strings of the prefix's length, which sort alike in every collation (a LIKE prefix would skip
    the index on SQLite and on PostgreSQL without a C collation)."""
    if not prefix:
        return true()
    lower = StationRow.region >= prefix
    following = int(prefix) + 1
    if following >= 10 ** len(prefix):
        return lower
    return and_(lower, StationRow.region < str(following).zfill(len(prefix)))


def _like_escaped(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


#: The triggers that keep the SQLite search table in step (as migration 0016 creates them, which a test
#: checks). A bulk write drops them and rebuilds the table once instead: through the triggers a first
#: import of 186,100 stations took 47.9 s instead of 23.0 s (bench/README-console-stations.md).
SEARCH_TRIGGERS: dict[str, str] = {
    "stations_search_insert": (
        "CREATE TRIGGER stations_search_insert AFTER INSERT ON stations BEGIN "
        "INSERT INTO stations_search(rowid, code, name, address) "
        "VALUES (new.id, new.code, new.name, new.address); END"
    ),
    "stations_search_delete": (
        "CREATE TRIGGER stations_search_delete AFTER DELETE ON stations BEGIN "
        "INSERT INTO stations_search(stations_search, rowid, code, name, address) "
        "VALUES ('delete', old.id, old.code, old.name, old.address); END"
    ),
    "stations_search_update": (
        "CREATE TRIGGER stations_search_update AFTER UPDATE OF code, name, address ON stations BEGIN "
        "INSERT INTO stations_search(stations_search, rowid, code, name, address) "
        "VALUES ('delete', old.id, old.code, old.name, old.address); "
        "INSERT INTO stations_search(rowid, code, name, address) "
        "VALUES (new.id, new.code, new.name, new.address); END"
    ),
}
#: Rows from which a bulk write on SQLite rebuilds the search table rather than feeding it row by row.
SEARCH_REBUILD_FROM = 50_000
#: Shortest text the trigram index of SQLite finds (migration 0016); shorter ones are looked for row by row.
_TRIGRAM = 3
_TRIGRAM_MATCH = text("SELECT rowid FROM stations_search WHERE stations_search MATCH :phrase").columns(
    column("rowid", Integer)
)


def _text_match(text: str, dialect: str) -> Any:
    """Stations whose code, name or address contains `text`, case-insensitively (ASCII), from the index of
    migration 0016. On PostgreSQL the expression is written exactly as that index is, so that the planner
    uses it; on SQLite a phrase of the FTS5 trigram table, or for one or two characters (too short for
    trigrams) a search of each row."""
    if dialect == "postgresql":
        searchable = literal_column("(code || E'\\n' || name || E'\\n' || address)", Text)
        return searchable.ilike(f"%{_like_escaped(text)}%", escape="\\")
    if len(text) >= _TRIGRAM:
        phrase = '"' + text.replace('"', '""') + '"'
        return StationRow.id.in_(_TRIGRAM_MATCH.bindparams(phrase=phrase))
    needle = func.lower(literal(text))
    return or_(
        *(
            func.instr(func.lower(column), needle) > 0
            for column in (StationRow.code, StationRow.name, StationRow.address)
        )
    )


def _filtered(stmt: Any, selection: StationFilter, dialect: str) -> Any:
    if "" not in selection.regions:
        stmt = stmt.where(
            or_(*(_region_range(p) for p in selection.regions)) if selection.regions else false()
        )
    if selection.status is not None:
        stmt = stmt.where(StationRow.status == selection.status.value)
    if selection.amenity:
        # Amenities are a JSON list of our keys: the key in quotes is one of its items.
        pattern = f'%"{_like_escaped(selection.amenity)}"%'
        stmt = stmt.where(cast(StationRow.amenities, Text).like(pattern, escape="\\"))
    if selection.text:
        stmt = stmt.where(_text_match(selection.text, dialect))
    if selection.always_open:
        stmt = stmt.where(func.trim(StationRow.opening_hours) == "24/7")
    if selection.verified_before is not None:
        stmt = stmt.where(
            StationRow.status != StationStatus.CLOSED.value,
            or_(StationRow.verified_at.is_(None), StationRow.verified_at < selection.verified_before),
        )
    return stmt


def search_statement(
    selection: StationFilter,
    dialect: str,
    *,
    after: str | None = None,
    before: str | None = None,
    limit: int = 50,
) -> Any:
    """The query of `StationRepository.search_page` (bench.console_stations explains it)."""
    table = StationRow.__table__
    stmt = _filtered(select(table), selection, dialect)
    order: Any = table.c.code
    if dialect == "postgresql" and ("" not in selection.regions or len(selection.text) >= _TRIGRAM):
        # A region's stations, or a text of three characters or more, have an index of their own (region,
        # trigrams): read the few matching rows through it and sort them. Ordered by the column itself,
        # PostgreSQL would walk the whole code index testing each row until it has a page (0.1 s for
        # Guangzhou's 3,730 of 186,100 stations, 0.33 s for a code's 238; bench.console_stations). Other
        # selections (all, a status: its index is in code order; an amenity or a short text, which match
        # many) fill a page fastest in code order.
        order = table.c.code.concat("")
    if before is not None:
        stmt = stmt.where(table.c.code < before).order_by(order.desc())
    else:
        if after is not None:
            stmt = stmt.where(table.c.code > after)
        stmt = stmt.order_by(order)
    return stmt.limit(limit)


def row_to_station(row: StationRow | Row[Any]) -> Station:
    """A Station from an ORM row or a plain result row of the stations table (same attribute names)."""
    return Station(
        id=row.id,
        code=row.code,
        name=row.name,
        address=row.address,
        lat=row.lat,
        lon=row.lon,
        region=row.region,
        host=row.host,
        opening_hours=row.opening_hours,
        opening_hours_text=row.opening_hours_text or "",
        amenities=tuple(row.amenities or ()),
        phone=row.phone,
        manager=row.manager,
        status=StationStatus(row.status),
        timezone=row.timezone,
        verified_at=row.verified_at,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def record_values(record: StationRecord) -> dict[str, Any]:
    values: dict[str, Any] = {name: getattr(record, name) for name in RECORD_FIELDS}
    values["amenities"] = list(record.amenities)
    values["status"] = record.status.value
    values["opening_hours_text"] = record.opening_hours_text or None
    return values


def index_entry(station: Station) -> IndexEntry:
    return IndexEntry(
        id=station.id,
        code=station.code,
        lat=station.lat,
        lon=station.lon,
        status=station.status.value,
        amenities=station.amenities,
        opening_hours=station.opening_hours,
        timezone=station.timezone,
    )


#: Columns of `network_rows`: a StationRecord's fields.
NETWORK_COLUMNS: tuple[str, ...] = ("code", *RECORD_FIELDS)


def _raw_utc(value: datetime | str | None) -> datetime | None:
    """A datetime column read without type processing: SQLite gives UTC text without an offset, asyncpg an
    aware datetime. Returns what `UTCDateTime` would: aware, in UTC."""
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def record_from_raw(row: Sequence[Any]) -> StationRecord:
    """A record from one row of `network_rows` (pure Python, safe to run in a worker thread)."""
    values = dict(zip(NETWORK_COLUMNS, row, strict=True))
    amenities = values["amenities"]
    if isinstance(amenities, str):
        amenities = json.loads(amenities)
    values["amenities"] = tuple(amenities or ())
    values["status"] = StationStatus(values["status"])
    values["verified_at"] = _raw_utc(values["verified_at"])
    values["opening_hours_text"] = values["opening_hours_text"] or ""
    return StationRecord(**values)


class StationRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def count(self, status: StationStatus | None = None) -> int:
        stmt = select(func.count()).select_from(StationRow)
        if status is not None:
            stmt = stmt.where(StationRow.status == status.value)
        return int(await self.session.scalar(stmt) or 0)

    async def province_prefixes(self) -> list[str]:
        """The 2-digit adcode prefixes of the provinces that have stations in service, sorted."""
        prefix = func.substr(StationRow.region, 1, 2)
        stmt = (
            select(prefix)
            .where(StationRow.status != StationStatus.CLOSED.value, func.length(StationRow.region) >= 2)
            .distinct()
        )
        return sorted(p for p in await self.session.scalars(stmt) if p and p.isdigit())

    async def get_by_code(self, code: str) -> Station | None:
        row = await self.session.scalar(select(StationRow).where(StationRow.code == code))
        return row_to_station(row) if row else None

    async def get(self, station_id: int, *, for_update: bool = False) -> Station | None:
        """A station by id; `for_update` locks its row until the transaction ends (PostgreSQL; SQLite's
        writers take turns anyway), so that writes about one station take turns too."""
        row = await self.session.get(StationRow, station_id, with_for_update=for_update or None)
        return row_to_station(row) if row else None

    async def get_many(self, ids: Sequence[int]) -> dict[int, Station]:
        """Stations by id. Every nearby answer calls this, so it reads plain rows, not ORM objects: the
        identity map and attribute instrumentation cost more than the query itself (measured on SQLite:
        about 820 µs of CPU per call through the ORM against 370 µs this way)."""
        if not ids:
            return {}
        result = await self.session.execute(_STATIONS_BY_ID, {"ids": list(ids)})
        return {row.id: row_to_station(row) for row in result}

    async def by_codes(self, codes: Iterable[str]) -> dict[str, Station]:
        """The stations of some codes (an import reads all of its rows' codes), as plain rows (get_many).

        On PostgreSQL the codes go as one array parameter, not an IN list of thousands of parameters (one
        statement to plan and cache, whatever the number of codes)."""
        codes = list(codes)
        found: dict[str, Station] = {}
        if self.session.get_bind().dialect.name == "postgresql":
            statement, chunk_size = _STATIONS_BY_CODE_ARRAY, _ARRAY_CHUNK
        else:
            statement, chunk_size = _STATIONS_BY_CODE, _IN_CHUNK
        for start in range(0, len(codes), chunk_size):
            result = await self.session.execute(statement, {"codes": codes[start : start + chunk_size]})
            found.update((row.code, row_to_station(row)) for row in result)
        return found

    async def stream_current_rows(self, batch: int = 5000) -> AsyncIterator[list[Station]]:
        """Active and temporarily closed stations in id order, in batches of plain rows (cache warm-up)."""
        stmt = (
            select(StationRow.__table__)
            .where(StationRow.__table__.c.status != StationStatus.CLOSED.value)
            .order_by(StationRow.__table__.c.id)
            .execution_options(yield_per=batch)
        )
        result = await self.session.stream(stmt)
        async for partition in result.partitions(batch):
            yield [row_to_station(row) for row in partition]

    def _dialect(self) -> str:
        return self.session.get_bind().dialect.name

    async def count_matching(self, selection: StationFilter, limit: int | None = None) -> int:
        """How many stations a selection holds; with `limit`, at most that many are counted (the reading
        stops there: a count of a text that most stations contain would otherwise read them all)."""
        if limit is None:
            stmt = _filtered(select(func.count()).select_from(StationRow), selection, self._dialect())
        else:
            found = _filtered(select(StationRow.id), selection, self._dialect()).limit(limit).subquery()
            stmt = select(func.count()).select_from(found)
        return int(await self.session.scalar(stmt) or 0)

    async def search_page(
        self,
        selection: StationFilter,
        *,
        after: str | None = None,
        before: str | None = None,
        limit: int = 50,
    ) -> list[Station]:
        """Up to `limit` stations of a selection in code order: the first ones, or those right after the
        code `after`, or right before the code `before` (keyset paging on the unique code index: a page
        costs the same at the end of 186,100 stations as at the start, and no row is skipped or repeated
        when stations are added meanwhile)."""
        stmt = search_statement(selection, self._dialect(), after=after, before=before, limit=limit)
        stations = [row_to_station(row) for row in await self.session.execute(stmt)]
        if before is not None:
            stations.reverse()
        return stations

    async def stream_matching(
        self, selection: StationFilter, batch: int = 5000
    ) -> AsyncIterator[Sequence[Row[Any]]]:
        """Every station of a selection in code order, a batch at a time, as the driver's raw values in
        NETWORK_COLUMNS order (`record_from_raw`, in a worker thread): an export of the whole network
        would otherwise spend seconds of the event loop on type processing (see `network_rows`)."""
        columns: list[Any] = [literal_column(f"stations.{name}") for name in NETWORK_COLUMNS]
        stmt = (
            _filtered(select(*columns).select_from(StationRow.__table__), selection, self._dialect())
            .order_by(StationRow.code)
            .execution_options(yield_per=batch)
        )
        result = await self.session.stream(stmt)
        async for part in result.partitions():
            yield part

    async def stream_all(self, batch: int = _BATCH) -> AsyncIterator[Station]:
        """Every station in code order, streamed (exports of the whole network stay flat in memory)."""
        result = await self.session.stream_scalars(
            select(StationRow).order_by(StationRow.code).execution_options(yield_per=batch)
        )
        async for row in result:
            yield row_to_station(row)

    async def changed_page(
        self,
        *,
        since: datetime | None = None,
        after: tuple[datetime, int] | None = None,
        bbox: BBox | None = None,
        limit: int = 1000,
    ) -> list[Station]:
        """One page of a sync: stations (closed ones too) changed after `since`, ordered by
        (updated_at, id) and starting past the key `after` of the previous page's last row.

        Keyset paging, not OFFSET: a station changed while a client pages moves to the end of the order,
        so it is read on a later page instead of shifting every row and skipping one.
        """
        # Plain rows, not ORM objects: a page holds up to thousands of stations (see get_many).
        stmt = select(StationRow.__table__)
        if since is not None:
            stmt = stmt.where(StationRow.updated_at > since)
        if after is not None:
            after_time, after_id = after
            # The range condition alone can use the updated_at index; the OR only filters ties.
            stmt = stmt.where(
                StationRow.updated_at >= after_time,
                or_(
                    StationRow.updated_at > after_time,
                    and_(StationRow.updated_at == after_time, StationRow.id > after_id),
                ),
            )
        if bbox is not None:
            stmt = stmt.where(
                StationRow.lon.between(bbox.min_lon, bbox.max_lon),
                StationRow.lat.between(bbox.min_lat, bbox.max_lat),
            )
        stmt = stmt.order_by(StationRow.updated_at, StationRow.id).limit(limit)
        return [row_to_station(row) for row in await self.session.execute(stmt)]

    async def network_rows(self, batch: int = 5000) -> AsyncIterator[Sequence[Row[Any]]]:
        """The current network (active and temporarily closed stations) in code order, a batch at a time,
        as the driver's raw values in NETWORK_COLUMNS order; `record_from_raw` makes records of them.

        For the whole network at once: typed rows cost tens of µs each in type processing (dates parsed
        from SQLite text, JSON decoded) on the event loop, seconds for 186,100; raw ones let the caller do
        that work in a thread.
        """
        sql = f"SELECT {', '.join(NETWORK_COLUMNS)} FROM stations WHERE status != 'closed' ORDER BY code"
        result = await self.session.stream(text(sql).execution_options(yield_per=batch))
        async for part in result.partitions():
            yield part

    async def network_version(self) -> tuple[int, datetime | None]:
        """(number of stations, latest updated_at): changes whenever any station is added or changed, so
        it identifies a version of the network without reading it."""
        row = (
            await self.session.execute(
                select(func.count(), func.max(StationRow.updated_at)).select_from(StationRow)
            )
        ).one()
        return int(row[0]), row[1]

    async def ping(self) -> None:
        """A round trip to the database; raises what the driver raises when it is unreachable."""
        await self.session.execute(select(1))

    async def ids_by_code(self, codes: Sequence[str]) -> dict[str, int]:
        """The ids of some codes (those that exist)."""
        table = StationRow.__table__
        found: dict[str, int] = {}
        for start in range(0, len(codes), _IN_CHUNK):
            result = await self.session.execute(
                select(table.c.code, table.c.id).where(table.c.code.in_(codes[start : start + _IN_CHUNK]))
            )
            found.update((code, station_id) for code, station_id in result)
        return found

    async def origins(self, codes: Sequence[str]) -> dict[str, str]:
        """The origin (import, seed, demo) of each stored station among `codes`."""
        found: dict[str, str] = {}
        for start in range(0, len(codes), _IN_CHUNK):
            result = await self.session.execute(
                select(StationRow.code, StationRow.origin).where(
                    StationRow.code.in_(codes[start : start + _IN_CHUNK])
                )
            )
            found.update((code, origin) for code, origin in result)
        return found

    async def upsert_many(self, records: Sequence[StationRecord], origin: str = "import") -> None:
        """Insert new codes, update changed ones, leave identical ones untouched, in a session from
        `station_write` (storage/fences.py), which commits: rows are stamped with the clock read here.
        Inserted and updated rows take `origin`."""
        if not records:
            return
        require_fence(self.session)
        now = utc_now()
        dialect = self.session.get_bind().dialect.name
        insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
        table: Table = StationRow.__table__  # type: ignore[assignment]  # declared as a FromClause
        rebuild = dialect == "sqlite" and len(records) >= SEARCH_REBUILD_FROM
        if rebuild:  # in this transaction: a rollback brings the triggers back
            for name in SEARCH_TRIGGERS:
                await self.session.execute(text(f"DROP TRIGGER IF EXISTS {name}"))
        for start in range(0, len(records), _BATCH):
            rows = [
                {"code": r.code, **record_values(r), "origin": origin, "created_at": now, "updated_at": now}
                for r in records[start : start + _BATCH]
            ]
            stmt = insert(table)
            excluded = stmt.excluded
            changed = or_(
                *(
                    table.c[name].is_distinct_from(excluded[name])
                    for name in RECORD_FIELDS
                    if name != "amenities"
                ),
                # JSON has no equality operator on PostgreSQL; compare its text form.
                cast(table.c.amenities, Text) != cast(excluded.amenities, Text),
            )
            update = {name: excluded[name] for name in RECORD_FIELDS}
            update["origin"] = excluded.origin
            update["updated_at"] = excluded.updated_at
            await self.session.execute(
                stmt.on_conflict_do_update(index_elements=["code"], set_=update, where=changed), rows
            )
        if rebuild:
            for create in SEARCH_TRIGGERS.values():
                await self.session.execute(text(create))
            await self.session.execute(
                text("INSERT INTO stations_search(stations_search) VALUES ('rebuild')")
            )

    async def refresh_statistics(self) -> None:
        """Fresh planner statistics after a bulk write, on PostgreSQL (SQLite plans without them).

        They also make every connection replan its prepared statements: a pooled connection otherwise
        keeps the generic plan it made while the table was small (a first import starts with it empty).
        One such plan, a whole-table scan comparing each row with every code of a lookup, made a
        re-import of 186,100 stations take 17 minutes instead of 20 seconds."""
        if self.session.get_bind().dialect.name == "postgresql":
            await self.session.execute(text("ANALYZE stations"))

    async def update_fields(self, station_id: int, **values: Any) -> Station:
        """Change some fields of a station, in a session from `station_write` (storage/fences.py), which
        commits: the row is stamped with the clock read here, not with the instant the change is about
        (that may be older)."""
        require_fence(self.session)
        row = await self.session.get(StationRow, station_id)
        if row is None:
            raise LookupError(station_id)
        for name, value in values.items():
            if name not in RECORD_FIELDS:
                raise ValueError(f"{name} cannot be edited")
            if name == "status" and isinstance(value, StationStatus):
                value = value.value
            if name == "amenities":
                value = list(value)
            if name == "opening_hours_text":
                value = value or None
            setattr(row, name, value)
        row.updated_at = utc_now()
        await self.session.flush()
        return row_to_station(row)

    async def load_index(self) -> SpatialIndex:
        """Read the columns the index needs in one pass, as the driver's plain tuples: at start-up this is
        most of the time to ready, and SQLAlchemy's row objects would double it."""
        sql = (
            "SELECT id, code, lat, lon, status, CAST(amenities AS TEXT), opening_hours, timezone "
            "FROM stations WHERE status != 'closed' ORDER BY id"
        )
        connection = await self.session.connection()
        raw = await connection.get_raw_connection()
        driver = raw.driver_connection
        if connection.dialect.name == "postgresql":
            rows = await driver.fetch(sql)  # type: ignore[union-attr]
        else:
            async with driver.execute(sql) as cursor:  # type: ignore[union-attr]
                rows = await cursor.fetchall()
        if not rows:
            return SpatialIndex()
        ids, codes, lats, lons, statuses, amenities_json, hours, tzs = zip(*rows, strict=True)
        return SpatialIndex.from_columns(ids, codes, lats, lons, statuses, amenities_json, hours, tzs)
