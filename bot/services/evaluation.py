"""Station evaluation: how riders use each station, and a region's report for the yearly evaluation.

The bot's station card and its navigation and call buttons, and the H5 page's cards and links (through a
small beacon), each add one to a station's count for the day, the day of the station's own timezone
(DEFAULT_TZ when it has none; every caller holds the station, or the cache or the beacon's one query gives
its timezone with its id, so this costs nothing). Counting is a dictionary increment in
memory (`UsageCounter.record`); a background task adds the counts to the database in batches every
EVALUATION_FLUSH_S seconds, with an additive upsert, so replicas share the totals and a crash loses at
most one interval. A clean stop flushes what is left (`close`, called by `open_core`). Nothing about
the rider is kept: no user, no position, no time of day, only counts per station per day.

`EvaluationService.evaluate` joins those counts with ratings, closure reports and their outcomes, and the
days since each station was last verified, and ranks a region's stations so that the ones that serve least
or fail most come first.
"""

from __future__ import annotations

import asyncio
import csv
import enum
import io
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any, BinaryIO, TextIO
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.services.roles import Access
from domain.clock import utc_now
from domain.text import N_
from storage.evaluation_repo import EvaluationRepository, StationFacts, UsageCounts, UsageRepository

log = logging.getLogger(__name__)

#: Distinct (station, day) counts one process holds between flushes; beyond it (a database down for long,
#: with traffic on every station) new counts are dropped and logged rather than growing without bound.
MAX_PENDING = 200_000
#: Events one beacon of the H5 page may carry.
MAX_BEACON_EVENTS = 20
#: A station not verified for this many days is stale (the console's dashboard says the same).
STALE_DAYS = 180
#: A rating average below this, over at least `LOW_RATING_MIN` ratings, is a concern.
LOW_RATING = 3.0
LOW_RATING_MIN = 3
#: Prune old counts at most this often.
PRUNE_EVERY = timedelta(hours=6)


class UsageKind(enum.StrEnum):
    """What a rider did with a station (the beacon's `kind`)."""

    VIEW = "view"
    NAVIGATE = "navigate"
    CALL = "call"


class Concern(enum.StrEnum):
    """Why a station stands out in its region's evaluation (the report's `concerns`)."""

    CLOSURE_CONFIRMED = "closure_confirmed"
    CLOSURE_REPORTED = "closure_reported"
    LOW_RATING = "low_rating"
    UNUSED = "unused"
    STALE = "stale"


#: What each concern weighs in the ranking: a confirmed closure most, then what riders say and do.
CONCERN_WEIGHTS: dict[Concern, int] = {
    Concern.CLOSURE_CONFIRMED: 3,
    Concern.LOW_RATING: 2,
    Concern.UNUSED: 2,
    Concern.CLOSURE_REPORTED: 1,
    Concern.STALE: 1,
}

#: Each concern in words (the edges translate them).
CONCERN_LABELS: dict[Concern, str] = {
    Concern.CLOSURE_CONFIRMED: N_("closure confirmed"),
    Concern.CLOSURE_REPORTED: N_("closure reported, undecided"),
    Concern.LOW_RATING: N_("low rating"),
    Concern.UNUSED: N_("not used in the period"),
    Concern.STALE: N_("not verified for 180 days"),
}


class UsageCounter:
    """Counts in memory, added to the database in batches by a task started with the first count."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        tz: str,
        flush_s: float = 5.0,
        retention_days: int = 800,
        max_pending: int = MAX_PENDING,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self.sessions = sessions
        self.tz = ZoneInfo(tz)
        self.flush_s = flush_s
        self.retention_days = retention_days
        self.max_pending = max_pending
        self.clock = clock
        #: (station id, day) → [views, navigations, calls] not written yet.
        self.pending: dict[tuple[int, date], list[int]] = {}
        # Per station timezone (None: DEFAULT_TZ), the local day of the last quarter hour seen (every real
        # UTC offset is a multiple of 15 minutes), so that a count rarely converts a time.
        self._days: dict[str | None, tuple[int, date]] = {}
        self.dropped = 0
        self.flushed = 0
        self._task: asyncio.Task[None] | None = None
        self._stop = asyncio.Event()
        self._lock = asyncio.Lock()
        self._pruned_at: datetime | None = None
        self._closed = False

    def record(self, station_id: int, kind: UsageKind, at: datetime, tz: str | None = None) -> bool:
        """Count one use of a station on the day of `at` in the station's timezone `tz` (DEFAULT_TZ when
        it has none). False when dropped."""
        quarter = int(at.timestamp() // 900)
        seen = self._days.get(tz)
        if seen is not None and seen[0] == quarter:
            day = seen[1]
        else:
            day = at.astimezone(self._zone(tz)).date()
            self._days[tz] = (quarter, day)
        key = (station_id, day)
        current = self.pending.get(key)
        if current is None:
            if len(self.pending) >= self.max_pending:
                self.dropped += 1
                if self.dropped == 1 or self.dropped % 10_000 == 0:
                    log.warning(
                        "station usage: %d counts dropped, %d waiting", self.dropped, len(self.pending)
                    )
                return False
            current = self.pending[key] = [0, 0, 0]
        # Identity tests: hashing an enum member costs a Python call.
        current[0 if kind is UsageKind.VIEW else 1 if kind is UsageKind.NAVIGATE else 2] += 1
        if self._task is None and not self._closed:
            self._start()
        return True

    def _zone(self, tz: str | None) -> ZoneInfo:
        if tz is None:
            return self.tz
        try:
            return ZoneInfo(tz)  # ZoneInfo keeps the zones it has loaded
        except (ValueError, ZoneInfoNotFoundError):
            log.warning("station usage: unknown timezone %r, counted in %s", tz[:64], self.tz.key)
            return self.tz

    def _start(self) -> None:
        try:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="station-usage-flush")
        except RuntimeError:  # no loop (a synchronous caller): the caller flushes or closes itself
            self._closed = True

    async def _run(self) -> None:
        while not self._stop.is_set():
            try:
                await asyncio.wait_for(self._stop.wait(), self.flush_s)
            except TimeoutError:
                pass
            await self.flush()
            await self._prune_now_and_then()

    async def flush(self) -> int:
        """Add what is waiting to the database; on failure it waits for the next flush. Rows written."""
        async with self._lock:
            if not self.pending:
                return 0
            batch, self.pending = self.pending, {}
            try:
                async with self.sessions() as session, session.begin():
                    written = await UsageRepository(session).add(
                        {key: UsageCounts(*counts) for key, counts in batch.items()}
                    )
            except Exception:
                log.exception("station usage: %d counts not written, kept for the next flush", len(batch))
                for key, counts in batch.items():
                    current = self.pending.setdefault(key, [0, 0, 0])
                    for slot, count in enumerate(counts):
                        current[slot] += count
                return 0
            self.flushed += written
            return written

    async def _prune_now_and_then(self) -> None:
        now = self.clock()
        if self._pruned_at is not None and now - self._pruned_at < PRUNE_EVERY:
            return
        self._pruned_at = now
        before = now.astimezone(self.tz).date() - timedelta(days=self.retention_days)
        try:
            async with self.sessions() as session, session.begin():
                removed = await UsageRepository(session).prune(before)
        except Exception:
            log.exception("station usage: pruning counts before %s failed", before)
            return
        if removed:
            log.info("station usage: %d daily counts before %s removed", removed, before)

    async def close(self) -> None:
        """Stop the flushing task and write what is left (a clean stop loses nothing)."""
        self._closed = True
        self._stop.set()
        if self._task is not None:
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        await self.flush()


@dataclass(frozen=True, slots=True)
class StationEvaluation:
    """One station's line of its region's report."""

    rank: int
    code: str
    name: str
    region: str
    host: str
    status: str
    views: int
    navigations: int
    calls: int
    ratings: int
    rating_average: float | None
    closure_reports: int
    closures_confirmed: int
    closures_rejected: int
    closures_open: int
    verified_at: datetime | None
    days_since_verified: int | None
    concerns: tuple[Concern, ...]

    def as_json(self) -> dict[str, Any]:
        return {
            "rank": self.rank,
            "code": self.code,
            "name": self.name,
            "region": self.region,
            "host": self.host,
            "status": self.status,
            "views": self.views,
            "navigations": self.navigations,
            "calls": self.calls,
            "ratings": self.ratings,
            "rating_average": round(self.rating_average, 2) if self.rating_average is not None else None,
            "closure_reports": self.closure_reports,
            "closures_confirmed": self.closures_confirmed,
            "closures_rejected": self.closures_rejected,
            "closures_open": self.closures_open,
            "verified_at": self.verified_at.isoformat() if self.verified_at else None,
            "days_since_verified": self.days_since_verified,
            "concerns": [concern.value for concern in self.concerns],
        }


@dataclass(frozen=True, slots=True)
class RegionEvaluation:
    region: str
    since: date
    #: The last day included.
    until: date
    stations: tuple[StationEvaluation, ...]

    def as_json(self, offset: int = 0, limit: int | None = None) -> dict[str, Any]:
        """The report, or with `offset`/`limit` one page of its ranked stations and how many there are."""
        end = None if limit is None else offset + limit
        return {
            "region": self.region,
            "since": self.since.isoformat(),
            "until": self.until.isoformat(),
            "total": len(self.stations),
            "offset": offset,
            "limit": limit,
            "stations": [station.as_json() for station in self.stations[offset:end]],
        }


def concerns_of(facts: StationFacts, days_since_verified: int | None) -> tuple[Concern, ...]:
    found = []
    if facts.closures_confirmed:
        found.append(Concern.CLOSURE_CONFIRMED)
    if facts.closures_open:
        found.append(Concern.CLOSURE_REPORTED)
    if (
        facts.rating_average is not None
        and facts.ratings >= LOW_RATING_MIN
        and facts.rating_average < LOW_RATING
    ):
        found.append(Concern.LOW_RATING)
    if facts.status == "active" and not facts.usage.total:
        found.append(Concern.UNUSED)
    if days_since_verified is None or days_since_verified > STALE_DAYS:
        found.append(Concern.STALE)
    return tuple(found)


def rank(facts: Sequence[StationFacts], now: datetime) -> list[StationEvaluation]:
    """Stations with the heaviest concerns first (`CONCERN_WEIGHTS`); among equals, the least used
    (navigation and call taps, then card views), then the lowest rated."""
    scored = []
    for item in facts:
        days = (now - item.verified_at).days if item.verified_at is not None else None
        concerns = concerns_of(item, days)
        key = (
            -sum(CONCERN_WEIGHTS[concern] for concern in concerns),
            item.usage.navigations + item.usage.calls,
            item.usage.views,
            item.rating_average if item.rating_average is not None else 6.0,
            item.code,
        )
        scored.append((key, item, days, concerns))
    scored.sort(key=lambda entry: entry[0])
    return [
        StationEvaluation(
            rank=position,
            code=item.code,
            name=item.name,
            region=item.region,
            host=item.host,
            status=item.status,
            views=item.usage.views,
            navigations=item.usage.navigations,
            calls=item.usage.calls,
            ratings=item.ratings,
            rating_average=item.rating_average,
            closure_reports=item.closure_reports,
            closures_confirmed=item.closures_confirmed,
            closures_rejected=item.closures_rejected,
            closures_open=item.closures_open,
            verified_at=item.verified_at,
            days_since_verified=days,
            concerns=concerns,
        )
        for position, (_key, item, days, concerns) in enumerate(scored, start=1)
    ]


class InvalidPeriod(ValueError):
    """The period asked for is empty or reversed."""


class EvaluationService:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        counter: UsageCounter,
        tz: str,
        find_station: Callable[[str], tuple[int, str | None] | None] | None = None,
    ) -> None:
        self.sessions = sessions
        self.counter = counter
        self.tz = ZoneInfo(tz)
        #: A station's id and timezone by code from memory (the station cache), before the database is asked.
        self.find_station = find_station

    def record(self, station_id: int, kind: UsageKind, at: datetime, tz: str | None = None) -> bool:
        """Count one use of a station on its own calendar (`tz`, the station's timezone; None: DEFAULT_TZ)."""
        return self.counter.record(station_id, kind, at, tz)

    async def record_codes(self, events: Sequence[tuple[str, UsageKind]], at: datetime) -> int:
        """Count the events of one beacon (station code and kind; the same pair counts once), codes not
        in memory looked up together. Unknown codes are ignored. Returns how many were counted."""
        unique = list(dict.fromkeys(events))[:MAX_BEACON_EVENTS]
        found: dict[str, tuple[int, str | None]] = {}
        missing = []
        for code, _kind in unique:
            known = self.find_station(code) if self.find_station is not None else None
            if known is not None:
                found[code] = known
            elif code not in found:
                missing.append(code)
        if missing:
            async with self.sessions() as session:
                found.update(await UsageRepository(session).stations_by_code(missing))
        counted = 0
        for code, kind in unique:
            station = found.get(code)
            if station is not None and self.counter.record(station[0], kind, at, station[1]):
                counted += 1
        return counted

    def period(self, since: date | None, until: date | None, now: datetime) -> tuple[date, date]:
        """The days of a report: `until` (default today) back to `since` (default a year before)."""
        last = until or now.astimezone(self.tz).date()
        first = since or last - timedelta(days=364)
        if first > last:
            raise InvalidPeriod(f"the period starts ({first}) after it ends ({last})")
        return first, last

    async def evaluate(
        self,
        region: str,
        now: datetime,
        since: date | None = None,
        until: date | None = None,
        access: Access | None = None,
    ) -> RegionEvaluation:
        """The report of `region` (an adcode prefix) over the days `since`..`until`, both included. With
        `access` (the console), the region must be one its holder manages; None is the operator's
        command line."""
        if access is not None:
            access.require_staff_for(region)
        first, last = self.period(since, until, now)
        start = datetime.combine(first, time(), self.tz)
        end = datetime.combine(last + timedelta(days=1), time(), self.tz)
        # Counts still in this process's memory belong in the report too.
        await self.counter.flush()
        async with self.sessions() as session:
            facts = await EvaluationRepository(session).facts(
                region, start, end, first, last + timedelta(days=1)
            )
        return RegionEvaluation(region, first, last, tuple(rank(facts, now)))


# -- export -----------------------------------------------------------------------------------------------

#: The report's columns, in order: (key of `StationEvaluation.as_json`, English header for gettext).
COLUMNS: tuple[tuple[str, str], ...] = (
    ("rank", N_("Rank")),
    ("code", N_("Code")),
    ("name", N_("Name")),
    ("region", N_("Region")),
    ("status", N_("Status")),
    ("views", N_("Card views")),
    ("navigations", N_("Navigation taps")),
    ("calls", N_("Call taps")),
    ("ratings", N_("Ratings")),
    ("rating_average", N_("Average stars")),
    ("closure_reports", N_("Closure reports")),
    ("closures_confirmed", N_("Closures confirmed")),
    ("closures_rejected", N_("Closures rejected")),
    ("closures_open", N_("Closures open")),
    ("days_since_verified", N_("Days since verified")),
    ("concerns", N_("Concerns")),
)
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _cell(value: Any, gettext: Callable[[str], str]) -> Any:
    if isinstance(value, list):
        return "; ".join(gettext(CONCERN_LABELS[Concern(item)]) for item in value)
    if isinstance(value, str) and value.lstrip("'").startswith(_FORMULA_START):
        return "'" + value  # no spreadsheet runs a station's name as a formula
    return value


def table_rows(
    evaluation: RegionEvaluation, gettext: Callable[[str], str]
) -> tuple[list[str], list[list[Any]]]:
    """The report as a header and rows in the reader's language (CSV, XLSX, the terminal)."""
    header = [gettext(title) for _key, title in COLUMNS]
    rows = []
    for station in evaluation.stations:
        data = station.as_json()
        rows.append([_cell(data[key], gettext) for key, _title in COLUMNS])
    return header, rows


def write_csv(header: Sequence[str], rows: Sequence[Sequence[Any]], out: TextIO) -> None:
    """CSV with a BOM, so that Excel in China opens it as UTF-8."""
    out.write("\ufeff")
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(header)
    for row in rows:
        writer.writerow(["" if cell is None else cell for cell in row])


def write_xlsx(header: Sequence[str], rows: Sequence[Sequence[Any]], out: BinaryIO, title: str) -> None:
    import openpyxl
    from openpyxl.styles import Font

    workbook = openpyxl.Workbook(write_only=False)
    sheet = workbook.active
    sheet.title = title[:31]
    sheet.append(list(header))
    for cell in sheet[1]:
        cell.font = Font(bold=True)
    for row in rows:
        sheet.append(list(row))
    for row in sheet.iter_rows(min_row=2):
        for cell in row:
            if isinstance(cell.value, str):
                cell.data_type = "s"  # text stays text, whatever it starts with
    sheet.freeze_panes = "A2"
    buffer = io.BytesIO()
    workbook.save(buffer)
    out.write(buffer.getvalue())
