"""Where riders look and find nothing: search demand counted privately, coverage gaps, and where N new
stations would serve the most unmet searches.

Counting. Every search of the bot, the API and the H5 page adds one to an in-memory counter keyed by a
coarse hexagonal cell (H3, resolution 8, ~0.7 km²), the local day and hour of the week, the channel, the
amenity filter and the band of the distance to the nearest open station (`domain/demand.py`). No user id,
no point and no per-search row exist anywhere: the point becomes a cell on the search path and is dropped.
The counter costs the search a cell computed by h3's C binding and one dict increment (bench/analytics.py).

Durability. `DemandService.run_flusher` moves the counters into `search_demand` every ANALYTICS_FLUSH_S
seconds, adding to the rows other replicas write (storage/analytics_repo.py), and `flush` runs once more
when the process stops cleanly; a crash loses at most one interval. The hourly retention job deletes
days older than ANALYTICS_RETENTION_DAYS.

Reports. `cells` is the one place that reads the counters for a report, and it drops every cell with
fewer than `K_ANONYMITY` searches in the period before anything else sees it: demand, gaps, suggestions
and every export format are built from what it returns.
"""

from __future__ import annotations

import asyncio
import csv
import heapq
import io
import json
import logging
import math
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import IO, Any
from zoneinfo import ZoneInfo

import h3.api.basic_int as h3
import numpy as np
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from domain.clock import DEFAULT_TZ
from domain.demand import (
    BAND_LABELS,
    FAR_BAND,
    HOURS_A_WEEK,
    K_ANONYMITY,
    Channel,
    amenity_key,
    band_of,
    unmet_bands,
)
from domain.text import N_
from domain.values import AMENITY_KEYS, YizhanError
from storage.analytics_repo import AnalyticsRepository, DemandKey
from storage.regions import RegionLookup

try:
    # The C binding itself: the API module's wrapper adds ~0.6 µs a call on the search path.
    from h3._cy import latlng_to_cell as _cell_of
except ImportError:  # pragma: no cover - another h3 4.x layout
    _cell_of = h3.latlng_to_cell

log = logging.getLogger(__name__)

HOURS_OF_WEEK = 7 * 24
#: H3 resolution of the demand cells: ~0.74 km² hexagons, edges of ~0.5 km.
RESOLUTION = 8
#: Each H3 ring at resolution 8 lies at least this much farther out (metres; ~670 in Heilongjiang, ~770 in
#: Guangdong): rings enough that no cell within the walkable distance of a site is missed, whichever part
#: of its own cell the site is in (then filtered by exact distance).
_MIN_RING_SPACING_M = 650.0
EARTH_RADIUS_M = 6_371_008.8
#: Rows of a candidate sites file read at most.
MAX_CANDIDATES = 100_000
MAX_SUGGESTIONS = 1000
_REGION = re.compile(r"^[0-9]{2,6}$")
#: Counters the process keeps before a flush (a bound on memory should the database be away for long).
MAX_PENDING_KEYS = 1_000_000


class AnalyticsError(YizhanError):
    """A report cannot be made as asked (a bad region, period or candidates file). `template` (marked for
    the catalogues) and `params` let an edge word it in its reader's language; the message is English."""

    def __init__(self, template: str, **params: Any) -> None:
        super().__init__(template.format(**params))
        self.template = template
        self.params = params


# ------------------------------------------------------------------------------------------------ counting


#: The in-memory counters are one dict per lane (the local day and hour, the channel, the amenity filter and
#: the band) keyed by the bare cell: the search path indexes its lane in a list by band and increments one
#: entry keyed by the int h3 returns (no key built, hashed or allocated; see bench/README-analytics.md).
#: A lane's code packs slot, channel, the filter's number in this process and band into one int.
_BANDS = 8
_AMENITY_IDS = 1 << 20
_CHANNELS = tuple(c.value for c in Channel)
#: Distinct amenity filters one process numbers (every combination of today's amenities fits).
MAX_AMENITY_FILTERS = 100_000
_NEVER = datetime.min.replace(tzinfo=UTC)


class DemandCounter:
    """The process's counters since the last flush. `count` and `count_nearest` run on the search path
    (the event loop's thread): no lock, no I/O; `take` swaps the lanes out for the flusher."""

    __slots__ = (
        "_amenity_ids",
        "_amenity_names",
        "_amenity_numbers",
        "_enabled",
        "_from",
        "_lanes",
        "_plain",
        "_returned",
        "_size",
        "_slot_code",
        "_tz",
        "_until",
        "dropped",
    )

    def __init__(self, default_tz: str = DEFAULT_TZ, *, enabled: bool = True) -> None:
        #: Lane code -> {cell: searches}.
        self._lanes: dict[int, dict[int, int]] = {}
        #: Cells counted in all lanes (bounded by MAX_PENDING_KEYS).
        self._size = 0
        #: Counts a failed flush gave back, already unpacked.
        self._returned: dict[DemandKey, int] = {}
        self._tz = ZoneInfo(default_tz)
        # The quarter hour of the last search, [from, until) in UTC: every real UTC offset is a multiple
        # of 15 minutes, so one local day and hour serve it all. Compared with a UTC `at` (the bot's and
        # the API's clock) by fields, which is cheaper than converting `at` each time. A disabled counter
        # keeps an empty quarter, so that the one comparison also tells it is disabled.
        self._from = self._until = _NEVER
        self._slot_code = 0
        #: Per channel, the current quarter's lanes without an amenity filter, by band.
        self._plain: dict[str, list[dict[int, int]]] = {}
        self._amenity_ids: dict[tuple[str, ...], int] = {(): 0}
        self._amenity_names: list[str] = [""]
        self._amenity_numbers: dict[str, int] = {"": 0}
        self._enabled = enabled
        #: Searches not counted: the pending counters were full (the database away for long), or too many
        #: distinct amenity filters.
        self.dropped = 0

    @property
    def enabled(self) -> bool:
        return self._enabled

    @enabled.setter
    def enabled(self, value: bool) -> None:
        self._enabled = value
        self._from = self._until = _NEVER

    def count(
        self,
        lat: float,
        lon: float,
        at: datetime,
        channel: str,
        amenities: Sequence[str],
        nearest_open_m: float | None,
    ) -> None:
        """One search at (lat, lon) at the instant `at`, whose nearest open station (with the amenities
        asked for) was `nearest_open_m` metres away, or None when none was open."""
        if not self._from <= at < self._until and not self._enter_quarter(at):
            return
        if amenities:
            self._count_filtered(lat, lon, channel, amenities, band_of(nearest_open_m))
            return
        plain = self._plain.get(channel)
        if plain is None:
            return  # not a channel (the edges pass `Channel` values)
        try:
            cell = _cell_of(lat, lon, RESOLUTION)
        except Exception:  # a point h3 refuses (the search validated it): nothing to count
            return
        self._add(plain[band_of(nearest_open_m)], cell)

    def count_nearest(
        self, point: Any, at: datetime, channel: str, amenities: Sequence[str], hits: Sequence[Any]
    ) -> None:
        """`count` for the usual search: `hits` are open stations (with the amenities), nearest first, and
        `point` has `lat` and `lon`."""
        self.count(point.lat, point.lon, at, channel, amenities, hits[0].distance_m if hits else None)

    def _count_filtered(
        self, lat: float, lon: float, channel: str, amenities: Sequence[str], band: int
    ) -> None:
        if channel not in self._plain:
            return
        wanted = amenities if type(amenities) is tuple else tuple(amenities)
        amenity = self._amenity_ids.get(wanted)
        if amenity is None:
            amenity = self._number_amenities(wanted)
            if amenity is None:
                self.dropped += 1
                return
        try:
            cell = _cell_of(lat, lon, RESOLUTION)
        except Exception:
            return
        self._add(self._lane(_CHANNELS.index(channel), amenity, band), cell)

    def _add(self, cells: dict[int, int], cell: int) -> None:
        n = cells.get(cell)
        if n is not None:
            cells[cell] = n + 1
        elif self._size < MAX_PENDING_KEYS:
            cells[cell] = 1
            self._size += 1
        else:
            self.dropped += 1

    def _lane(self, channel: int, amenity: int, band: int) -> dict[int, int]:
        code = ((self._slot_code * len(_CHANNELS) + channel) * _AMENITY_IDS + amenity) * _BANDS + band
        cells = self._lanes.get(code)
        if cells is None:
            cells = self._lanes[code] = {}
        return cells

    def _enter_quarter(self, at: datetime) -> bool:
        """Make the quarter hour of `at` the current one; False when the counter is disabled."""
        if not self._enabled:
            return False
        utc = at.astimezone(UTC)
        start = utc.replace(minute=utc.minute - utc.minute % 15, second=0, microsecond=0)
        local = start.astimezone(self._tz)
        self._slot_code = local.toordinal() * HOURS_A_WEEK + local.weekday() * 24 + local.hour
        self._from, self._until = start, start + timedelta(minutes=15)
        self._plain = {
            name: [self._lane(i, 0, band) for band in range(FAR_BAND + 1)] for i, name in enumerate(_CHANNELS)
        }
        return True

    def _number_amenities(self, wanted: tuple[str, ...]) -> int | None:
        key = amenity_key(wanted)
        number = self._amenity_numbers.get(key)
        if number is None:
            if len(self._amenity_names) >= min(MAX_AMENITY_FILTERS, _AMENITY_IDS):
                return None
            number = self._amenity_numbers[key] = len(self._amenity_names)
            self._amenity_names.append(key)
        if len(self._amenity_ids) < MAX_AMENITY_FILTERS:
            self._amenity_ids[wanted] = number
        return number

    def _unpack(self, code: int) -> tuple[date, int, str, str, int]:
        code, band = divmod(code, _BANDS)
        code, amenity = divmod(code, _AMENITY_IDS)
        slot, channel = divmod(code, len(_CHANNELS))
        day, hour_of_week = divmod(slot, HOURS_A_WEEK)
        # `slot` was made from the local day's ordinal and the hour of the week.
        return date.fromordinal(day), hour_of_week, _CHANNELS[channel], self._amenity_names[amenity], band

    def take(self) -> dict[DemandKey, int]:
        """The counts so far, by (day, cell, hour of week, channel, amenity key, band); the counter starts
        again from nothing."""
        lanes, self._lanes = self._lanes, {}
        self._size = 0
        # The next search makes the current quarter's lanes again, in the new dict.
        self._from = self._until = _NEVER
        counts, self._returned = self._returned, {}
        for code, cells in lanes.items():
            if not cells:
                continue
            day, hour_of_week, channel, amenity, band = self._unpack(code)
            for cell, n in cells.items():
                key = (day, cell, hour_of_week, channel, amenity, band)
                counts[key] = counts.get(key, 0) + n
        return counts

    def give_back(self, counts: dict[DemandKey, int]) -> None:
        """Counts a flush could not write: added back, to be written next time."""
        mine = self._returned
        for key, n in counts.items():
            mine[key] = mine.get(key, 0) + n

    @property
    def pending(self) -> int:
        return sum(sum(cells.values()) for cells in self._lanes.values()) + sum(self._returned.values())


def nearest_open_distance(hits: Sequence[Any], include_closed: bool) -> tuple[bool, float | None]:
    """(known, metres) of the nearest open station among a search's hits, nearest first. A search for
    open stations answers it directly; one that included closed stations knows it only when an open one
    is among its hits (else the nearest open one may lie beyond them: not known)."""
    if not include_closed:
        return True, (hits[0].distance_m if hits else None)
    for hit in hits:
        if hit.open_now:
            return True, hit.distance_m
    return False, None


# ------------------------------------------------------------------------------------------------ reports


@dataclass(slots=True)
class CellDemand:
    """One cell's searches in a period (only cells with at least `K_ANONYMITY` of them exist)."""

    cell: int
    lat: float
    lon: float
    region: str
    searches: int = 0
    night: int = 0
    by_channel: dict[str, int] = field(default_factory=dict)
    by_band: list[int] = field(default_factory=lambda: [0] * (FAR_BAND + 1))
    unmet: int = 0
    unmet_night: int = 0
    #: Unmet searches that asked for each amenity (a search asking for two counts for both).
    unmet_by_amenity: dict[str, int] = field(default_factory=dict)

    @property
    def day(self) -> int:
        return self.searches - self.night

    @property
    def unmet_day(self) -> int:
        return self.unmet - self.unmet_night


@dataclass(frozen=True, slots=True)
class Period:
    since: date
    until: date

    @property
    def days(self) -> int:
        return (self.until - self.since).days + 1


@dataclass(frozen=True, slots=True)
class DemandReport:
    region: str
    period: Period
    cells: list[CellDemand]
    #: Cells left out because they had fewer than K_ANONYMITY searches (how many, never which).
    hidden_cells: int


@dataclass(frozen=True, slots=True)
class Candidate:
    name: str
    lat: float
    lon: float


@dataclass(frozen=True, slots=True)
class Suggestion:
    rank: int
    name: str
    lat: float
    lon: float
    cell: int
    region: str
    #: Unmet searches within the walkable distance not covered by an earlier suggestion.
    covered: int
    #: `covered` as a share of the region's unmet searches, and the running total of shares.
    share: float
    cumulative_share: float
    cells: int


@dataclass(frozen=True, slots=True)
class SuggestReport:
    region: str
    period: Period
    walkable_m: int
    unmet_total: int
    suggestions: list[Suggestion]
    candidates: int
    #: Candidate sites given in a file but lying outside the region, left out.
    outside_region: int = 0


def validate_region(region: str) -> str:
    region = region.strip()
    if region and not _REGION.fullmatch(region):
        raise AnalyticsError(
            N_("the region must be an adcode prefix of 2 to 6 digits, e.g. 4401, not {region}"), region=region
        )
    return region


def cell_centre(cell: int) -> tuple[float, float]:
    lat, lon = h3.cell_to_latlng(cell)
    return float(lat), float(lon)


def haversine_m(lat1: np.ndarray, lon1: np.ndarray, lat2: float, lon2: float) -> np.ndarray:
    p1, p2 = np.radians(lat1), math.radians(lat2)
    dphi = p2 - p1
    dlam = math.radians(lon2) - np.radians(lon1)
    a = np.sin(dphi / 2) ** 2 + np.cos(p1) * math.cos(p2) * np.sin(dlam / 2) ** 2
    return 2 * EARTH_RADIUS_M * np.arcsin(np.minimum(1.0, np.sqrt(a)))


def greedy_max_coverage(
    covers: Sequence[Sequence[int]], weights: Sequence[int], n: int
) -> list[tuple[int, int]]:
    """Pick up to `n` of the sets `covers` (indices into `weights`) that cover the most total weight.

    Greedy first: each step takes the set adding the most weight not yet covered (lazily re-evaluated: a
    set's gain only shrinks, so a stale gain is an upper bound). Then swaps: while exchanging one chosen
    set for one not chosen covers more, the best such exchange is made (greedy alone can fall ~10 % short
    on small instances; tests/test_analytics.py compares with brute force). Returns (set index, weight it
    adds) in greedy order over the final choice; stops early when nothing more can be covered."""
    w = np.asarray(weights, dtype=np.int64)
    arrays = [np.asarray(c, dtype=np.intp) for c in covers]
    chosen = _greedy(arrays, w, n, range(len(arrays)))
    if chosen:
        chosen = _improve_by_swaps(arrays, w, chosen)
    return [(i, gain) for i, gain in _ordered(arrays, w, chosen)]


def _greedy(arrays: list[np.ndarray], w: np.ndarray, n: int, among: Iterable[int]) -> list[int]:
    covered = np.zeros(len(w), dtype=bool)
    heap = [(-int(w[arrays[i]].sum()), i) for i in among]
    heapq.heapify(heap)
    chosen: list[int] = []
    while heap and len(chosen) < n:
        _, i = heapq.heappop(heap)
        a = arrays[i]
        gain = int(w[a[~covered[a]]].sum())
        if gain <= 0:
            continue
        if heap and -heap[0][0] > gain:
            heapq.heappush(heap, (-gain, i))
            continue
        chosen.append(i)
        covered[a] = True
    return chosen


#: Exchanges tried at most (each one a sparse product over every candidate per chosen site).
_MAX_SWAPS = 200


def _improve_by_swaps(arrays: list[np.ndarray], w: np.ndarray, chosen: list[int]) -> list[int]:
    from scipy.sparse import csr_matrix

    lengths = np.fromiter((len(a) for a in arrays), dtype=np.intp, count=len(arrays))
    indptr = np.concatenate(([0], np.cumsum(lengths)))
    indices = np.concatenate(arrays) if len(arrays) else np.zeros(0, dtype=np.intp)
    matrix = csr_matrix((np.ones(len(indices), dtype=np.int64), indices, indptr), shape=(len(arrays), len(w)))
    chosen = list(chosen)
    times = np.zeros(len(w), dtype=np.int64)  # how many chosen sets cover each element
    for i in chosen:
        times[arrays[i]] += 1
    for _ in range(_MAX_SWAPS):
        best = (0, -1, -1)
        for position, i in enumerate(chosen):
            a = arrays[i]
            loss = int(w[a[times[a] == 1]].sum())
            times[a] -= 1
            gains = matrix @ (w * (times == 0))
            times[a] += 1
            gains[chosen] = -1
            j = int(np.argmax(gains))
            delta = int(gains[j]) - loss
            if delta > best[0]:
                best = (delta, position, j)
        delta, position, j = best
        if delta <= 0:
            break
        times[arrays[chosen[position]]] -= 1
        times[arrays[j]] += 1
        chosen[position] = j
    return chosen


def _ordered(arrays: list[np.ndarray], w: np.ndarray, chosen: list[int]) -> list[tuple[int, int]]:
    """The chosen sets, each next the one adding the most, with what it adds (ties: lower index)."""
    covered = np.zeros(len(w), dtype=bool)
    left = sorted(chosen)
    result = []
    while left:
        gains = [int(w[arrays[i][~covered[arrays[i]]]].sum()) for i in left]
        k = int(np.argmax(gains))
        if gains[k] <= 0:
            break
        i = left.pop(k)
        covered[arrays[i]] = True
        result.append((i, gains[k]))
    return result


class DemandService:
    """Flushes the process's counters and answers the demand, gaps and suggestion reports."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        counter: DemandCounter,
        regions: RegionLookup,
        *,
        walkable_m: int = 1500,
        retention: timedelta = timedelta(days=400),
        default_tz: str = DEFAULT_TZ,
    ) -> None:
        self.sessions = sessions
        self.counter = counter
        self.regions = regions
        self.walkable_m = walkable_m
        self.retention = retention
        self.tz = ZoneInfo(default_tz)
        self._flush_lock = asyncio.Lock()
        #: Cell → district adcode ("" outside China), filled as reports look cells up.
        self._cell_regions: dict[int, str] = {}

    # --- durability

    async def flush(self) -> int:
        """Write the counts gathered so far; returns the searches written. On failure the counts go back
        to the counter (written by the next flush) and the error is raised."""
        async with self._flush_lock:
            counts = self.counter.take()
            if not counts:
                return 0
            try:
                async with self.sessions() as session, session.begin():
                    await AnalyticsRepository(session).add_counts(counts)
            except BaseException:
                self.counter.give_back(counts)
                raise
            return sum(counts.values())

    async def run_flusher(self, interval_s: float, stop: asyncio.Event) -> None:
        """Flush every `interval_s` seconds until `stop`, then once more. A failed flush is logged and its
        counts kept for the next one."""
        while not stop.is_set():
            try:
                await asyncio.wait_for(stop.wait(), interval_s)
            except TimeoutError:
                pass
            try:
                await self.flush()
            except Exception:
                log.exception(
                    "search counters: flush failed; %d searches kept for the next one", self.counter.pending
                )

    async def purge_expired(self, at: datetime) -> int:
        """Delete the counters of days before the retention period; returns the rows deleted."""
        first_kept = at.astimezone(self.tz).date() - self.retention
        async with self.sessions() as session, session.begin():
            return await AnalyticsRepository(session).purge_before(first_kept)

    # --- reports

    def period(self, since: date | None, until: date | None, today: date) -> Period:
        until = until or today
        since = since or until - timedelta(days=29)
        if since > until:
            raise AnalyticsError(
                N_("the period starts ({since}) after it ends ({until})"), since=since, until=until
            )
        return Period(since, until)

    async def cells(
        self, region: str, period: Period, by_channel: bool = False
    ) -> tuple[list[CellDemand], int]:
        """The cells of the region (an adcode prefix; "" for all) with their searches in the period
        (split by channel too with `by_channel`), and how many cells were left out for having fewer than
        K_ANONYMITY searches. Every report reads the counters through here: no cell below the threshold
        leaves this method."""
        region = validate_region(region)
        async with self.sessions() as session:
            sums = await AnalyticsRepository(session).sums(period.since, period.until, by_channel)
        unmet = set(unmet_bands(self.walkable_m))
        by_cell: dict[int, CellDemand] = {}
        for cell_id, night, amenities, band, channel, count in sums:
            cell = by_cell.get(cell_id)
            if cell is None:
                cell = by_cell[cell_id] = CellDemand(cell_id, 0.0, 0.0, "")
            cell.searches += count
            if by_channel:
                cell.by_channel[channel] = cell.by_channel.get(channel, 0) + count
            cell.by_band[band] += count
            if night:
                cell.night += count
            if band in unmet:
                cell.unmet += count
                if night:
                    cell.unmet_night += count
                for key in amenities.split(",") if amenities else ():
                    cell.unmet_by_amenity[key] = cell.unmet_by_amenity.get(key, 0) + count
        kept = [c for c in by_cell.values() if c.searches >= K_ANONYMITY]
        hidden = len(by_cell) - len(kept)
        await self._locate(kept)
        if region:
            # Hidden cells are counted over the region too, so that the number says nothing about others.
            hidden_in_region = await self._count_in_region(
                [c for c in by_cell.values() if c.searches < K_ANONYMITY], region
            )
            kept = [c for c in kept if c.region.startswith(region)]
            hidden = hidden_in_region
        kept.sort(key=lambda c: (-c.searches, c.cell))
        return kept, hidden

    async def _count_in_region(self, cells: list[CellDemand], region: str) -> int:
        await self._locate(cells)
        return sum(1 for c in cells if c.region.startswith(region))

    async def _locate(self, cells: list[CellDemand]) -> None:
        """Each cell's centre and district (cached per cell; new cells looked up in one batch)."""
        for c in cells:
            c.lat, c.lon = cell_centre(c.cell)
        unknown = [c for c in cells if c.cell not in self._cell_regions]
        if unknown:
            lats = np.array([c.lat for c in unknown])
            lons = np.array([c.lon for c in unknown])
            adcodes = await asyncio.to_thread(self._adcodes, lats, lons)
            if len(self._cell_regions) > 2_000_000:
                self._cell_regions.clear()
            for c, adcode in zip(unknown, adcodes, strict=True):
                self._cell_regions[c.cell] = adcode
        for c in cells:
            c.region = self._cell_regions[c.cell]

    def _adcodes(self, lats: np.ndarray, lons: np.ndarray) -> list[str]:
        index = self.regions.index()
        return [r.adcode if r is not None else "" for r in index.regions_of(lats, lons)]

    def region_name(self, adcode: str) -> str:
        if not adcode:
            return ""
        return self.regions.index().name_of(adcode) or ""

    async def demand(self, region: str, period: Period) -> DemandReport:
        cells, hidden = await self.cells(region, period, by_channel=True)
        return DemandReport(region, period, cells, hidden)

    async def by_hour_of_week(self, region: str, period: Period) -> list[int]:
        """The region's searches by local hour of the week (Monday 0:00 first, 168 of them), summed over
        the cells `cells` keeps: a cell below K_ANONYMITY adds nothing."""
        kept, _hidden = await self.cells(region, period)
        shown = {c.cell for c in kept}
        async with self.sessions() as session:
            rows = await AnalyticsRepository(session).hourly_sums(period.since, period.until)
        hours = [0] * HOURS_OF_WEEK
        for cell, hour, count in rows:
            if cell in shown and 0 <= hour < HOURS_OF_WEEK:
                hours[hour] += count
        return hours

    async def gaps(self, region: str, period: Period) -> DemandReport:
        """The cells whose riders searched and found the nearest open station beyond the walkable
        distance, most unmet searches first."""
        cells, hidden = await self.cells(region, period)
        gaps = [c for c in cells if c.unmet > 0]
        gaps.sort(key=lambda c: (-c.unmet, c.cell))
        return DemandReport(region, period, gaps, hidden)

    async def suggest(
        self, region: str, period: Period, n: int, candidates: Sequence[Candidate] | None = None
    ) -> SuggestReport:
        """Up to `n` sites that together cover the most unmet searches of the region: greedy maximum
        coverage, a site covering the gap cells whose centres lie within the walkable distance. Sites are
        the gap cells' centres, or the `candidates` given (those outside the region left out)."""
        if not 1 <= n <= MAX_SUGGESTIONS:
            raise AnalyticsError(
                N_("the number of stations must be between 1 and {most}"), most=MAX_SUGGESTIONS
            )
        if not validate_region(region):
            raise AnalyticsError(N_("suggestions need a region (--region, an adcode prefix, e.g. 4401)"))
        gaps = (await self.gaps(region, period)).cells
        return await asyncio.to_thread(self._suggest, region, period, n, gaps, candidates)

    def _suggest(
        self,
        region: str,
        period: Period,
        n: int,
        gaps: list[CellDemand],
        candidates: Sequence[Candidate] | None,
    ) -> SuggestReport:
        unmet_total = sum(c.unmet for c in gaps)
        outside = 0
        if candidates is None:
            sites = [Candidate(h3.int_to_str(c.cell), c.lat, c.lon) for c in gaps]
            site_regions = [c.region for c in gaps]
        else:
            site_regions = (
                self._adcodes(np.array([c.lat for c in candidates]), np.array([c.lon for c in candidates]))
                if candidates
                else []
            )
            sites = [c for c, r in zip(candidates, site_regions, strict=True) if r.startswith(region)]
            site_regions = [r for r in site_regions if r.startswith(region)]
            outside = len(candidates) - len(sites)
        covers = coverage_sets(sites, gaps, self.walkable_m)
        chosen = greedy_max_coverage(covers, [c.unmet for c in gaps], n)
        suggestions = []
        running = 0
        for rank, (i, gain) in enumerate(chosen, 1):
            site = sites[i]
            running += gain
            suggestions.append(
                Suggestion(
                    rank,
                    site.name,
                    site.lat,
                    site.lon,
                    h3.latlng_to_cell(site.lat, site.lon, RESOLUTION),
                    site_regions[i],
                    gain,
                    gain / unmet_total if unmet_total else 0.0,
                    running / unmet_total if unmet_total else 0.0,
                    len(covers[i]),
                )
            )
        return SuggestReport(region, period, self.walkable_m, unmet_total, suggestions, len(sites), outside)


def coverage_sets(
    sites: Sequence[Candidate], cells: Sequence[CellDemand], walkable_m: int
) -> list[list[int]]:
    """For each site, the indices of `cells` whose centres lie within `walkable_m` of it: the cells of
    the H3 rings around the site's cell (enough rings to reach that far), filtered by exact distance."""
    position = {c.cell: i for i, c in enumerate(cells)}
    lats = np.array([c.lat for c in cells])
    lons = np.array([c.lon for c in cells])
    rings = math.ceil(walkable_m / _MIN_RING_SPACING_M) + 1
    covers = []
    for site in sites:
        origin = h3.latlng_to_cell(site.lat, site.lon, RESOLUTION)
        near = [position[c] for c in h3.grid_disk(origin, rings) if c in position]
        if near:
            idx = np.array(near, dtype=np.intp)
            within = haversine_m(lats[idx], lons[idx], site.lat, site.lon) <= walkable_m
            near = idx[within].tolist()
        covers.append(near)
    return covers


def read_candidates(path: Path) -> list[Candidate]:
    """Candidate host sites from a CSV file with columns name, lat, lon (WGS-84; a header row)."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise AnalyticsError(N_("cannot read {path}: {reason}"), path=path, reason=exc) from None
    reader = csv.DictReader(io.StringIO(text))
    fields = [f.strip().lower() for f in reader.fieldnames or []]
    if not {"name", "lat", "lon"} <= set(fields):
        raise AnalyticsError(N_("{path}: the header must name the columns name, lat and lon"), path=path)
    reader.fieldnames = fields
    sites = []
    for line, row in enumerate(reader, 2):
        if len(sites) >= MAX_CANDIDATES:
            raise AnalyticsError(
                N_("{path}: more than {most} candidate sites"), path=path, most=MAX_CANDIDATES
            )
        try:
            lat, lon = float(row["lat"]), float(row["lon"])
        except (TypeError, ValueError):
            raise AnalyticsError(
                N_("{path}, line {line}: lat and lon must be numbers"), path=path, line=line
            ) from None
        if not (-90 <= lat <= 90 and -180 <= lon <= 180) or not (math.isfinite(lat) and math.isfinite(lon)):
            raise AnalyticsError(
                N_("{path}, line {line}: no such position ({lat}, {lon})"),
                path=path,
                line=line,
                lat=lat,
                lon=lon,
            )
        sites.append(Candidate((row["name"] or "").strip()[:200], lat, lon))
    return sites


# ------------------------------------------------------------------------------------------------ exports

FORMATS = ("table", "csv", "xlsx", "geojson")


def demand_rows(report: DemandReport, region_name: Callable[[str], str]) -> tuple[list[str], list[list[Any]]]:
    columns = ["cell", "region", "region_name", "lat", "lon", "searches", "day", "night"]
    columns += [f"channel_{c.value}" for c in Channel]
    columns += [f"band_{label}" for label in BAND_LABELS]
    rows = []
    for c in report.cells:
        rows.append(
            [h3.int_to_str(c.cell), c.region, region_name(c.region), round(c.lat, 6), round(c.lon, 6)]
            + [c.searches, c.day, c.night]
            + [c.by_channel.get(ch.value, 0) for ch in Channel]
            + list(c.by_band)
        )
    return columns, rows


def gap_rows(report: DemandReport, region_name: Callable[[str], str]) -> tuple[list[str], list[list[Any]]]:
    columns = ["cell", "region", "region_name", "lat", "lon", "searches", "unmet", "unmet_share"]
    columns += ["unmet_day", "unmet_night"] + [f"unmet_{key}" for key in AMENITY_KEYS]
    rows = []
    for c in report.cells:
        rows.append(
            [h3.int_to_str(c.cell), c.region, region_name(c.region), round(c.lat, 6), round(c.lon, 6)]
            + [c.searches, c.unmet, round(c.unmet / c.searches, 3), c.unmet_day, c.unmet_night]
            + [c.unmet_by_amenity.get(key, 0) for key in AMENITY_KEYS]
        )
    return columns, rows


def suggestion_rows(
    report: SuggestReport, region_name: Callable[[str], str]
) -> tuple[list[str], list[list[Any]]]:
    columns = ["rank", "name", "lat", "lon", "cell", "region", "region_name", "covered", "share"]
    columns += ["cumulative_share", "gap_cells"]
    rows = [
        [
            s.rank,
            s.name,
            round(s.lat, 6),
            round(s.lon, 6),
            h3.int_to_str(s.cell),
            s.region,
            region_name(s.region),
            s.covered,
            round(s.share, 4),
            round(s.cumulative_share, 4),
            s.cells,
        ]
        for s in report.suggestions
    ]
    return columns, rows


def write_report(
    columns: list[str],
    rows: list[list[Any]],
    fmt: str,
    out: IO[Any],
    *,
    geometry: Callable[[list[Any]], dict[str, Any]] | None = None,
) -> None:
    """Write rows as a text table, CSV, XLSX (binary `out`) or GeoJSON (each row a feature whose geometry
    `geometry` gives from the row, the columns its properties)."""
    if fmt == "csv":
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(columns)
        writer.writerows(rows)
    elif fmt == "table":
        cells = [columns] + [["" if v is None else str(v) for v in row] for row in rows]
        widths = [max(_width(r[i]) for r in cells) for i in range(len(columns))]
        for row in cells:
            out.write("  ".join(v + " " * (w - _width(v)) for v, w in zip(row, widths, strict=True)).rstrip())
            out.write("\n")
    elif fmt == "xlsx":
        from openpyxl import Workbook

        book = Workbook(write_only=True)
        sheet = book.create_sheet()
        sheet.append(columns)
        for row in rows:
            sheet.append(row)
        book.save(out)
    elif fmt == "geojson":
        if geometry is None:
            raise AnalyticsError(N_("this report has no geometry"))
        features = [
            {"type": "Feature", "geometry": geometry(row), "properties": dict(zip(columns, row, strict=True))}
            for row in rows
        ]
        json.dump({"type": "FeatureCollection", "features": features}, out, ensure_ascii=False)
        out.write("\n")
    else:
        raise AnalyticsError(
            N_("unknown format {format}; one of {formats}"), format=fmt, formats=", ".join(FORMATS)
        )


def _width(text: str) -> int:
    """Columns a string takes in a terminal: CJK characters take two."""
    return sum(2 if ord(ch) >= 0x1100 and _wide(ch) else 1 for ch in text)


def _wide(ch: str) -> bool:
    import unicodedata

    return unicodedata.east_asian_width(ch) in ("W", "F")


def cell_polygon(cell_hex: str) -> dict[str, Any]:
    """GeoJSON polygon of a cell (lon, lat; closed ring)."""
    ring = [[round(lon, 6), round(lat, 6)] for lat, lon in h3.cell_to_boundary(h3.str_to_int(cell_hex))]
    ring.append(ring[0])
    return {"type": "Polygon", "coordinates": [ring]}


def point_geometry(lat: float, lon: float) -> dict[str, Any]:
    return {"type": "Point", "coordinates": [lon, lat]}
