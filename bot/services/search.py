"""Nearest-open search: the question every rider asks.

`find_nearest_open` answers from the in-process spatial index alone (no I/O), so it is safe to call on the
event loop: a k-d tree query on the sphere fetches candidates, vectorised filters drop stations that are
not active or lack an amenity, exact WGS-84 geodesic distances rank what is left, and opening hours are
checked nearest first until k stations are found. The candidate set widens until the k-th answer is
provably nearer than anything not fetched, so the result always equals a brute-force geodesic scan.

Distances come from pyproj's `Geod.inv` (Karney's algorithm, the one geopy's `geodesic` implements, to
within nanometres) because it is vectorised: about 1 µs a pair instead of geopy's ~190 µs.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

import numpy as np
from pyproj import Geod

from domain.clock import DEFAULT_TZ
from domain.hours import Hours, HoursStatus, OpenState, compile_hours
from domain.values import GeoPoint, InvalidOpeningHours, StationStatus, amenity_mask
from storage.spatial import (
    EARTH_RADIUS_M,
    GEODESIC_LOWER_BOUND,
    GEODESIC_UPPER_BOUND,
    STATUS_CODES,
    SpatialIndex,
    SubsetIndex,
    chord_m,
)

log = logging.getLogger(__name__)
WGS84 = Geod(ellps="WGS84")
#: Up to this many candidates, geodesics are computed one call each (about 1 µs) rather than in one
#: vectorised call (about 20 µs of fixed cost).
_SCALAR_GEODESICS = 24
_ACTIVE = STATUS_CODES[StationStatus.ACTIVE.value]
_TEMPORARILY_CLOSED = STATUS_CODES[StationStatus.TEMPORARILY_CLOSED.value]
_STATUS_ENUM = {code: StationStatus(name) for name, code in STATUS_CODES.items()}
_UNKNOWN = HoursStatus(OpenState.UNKNOWN, None, "")
#: Distinct opening tables remembered (a byte per expression; the seeded national network makes 39 a week).
_MAX_TABLES = 1024


@dataclass(slots=True)
class NearbyHit:
    """One answer of the search: where the station is, how far, and whether it is open at the instant."""

    station_id: int
    code: str
    lat: float
    lon: float
    distance_m: float
    status: StationStatus
    hours: HoursStatus
    #: `open_now(status, hours)`, worked out once: every channel shows it, the bot more than once.
    open_now: bool | None


def open_now(status: StationStatus, hours: HoursStatus) -> bool | None:
    """Whether a station is open: only an active one can be; None when its hours are unknown."""
    if status is not StationStatus.ACTIVE:
        return False
    if hours.state is OpenState.UNKNOWN:
        return None
    return hours.state is OpenState.OPEN


def _eligible_slots(
    index: SpatialIndex, slots: np.ndarray | slice, open_by_ref: np.ndarray | None
) -> np.ndarray:
    """Whether the stations in `slots` can be answers: active and open per `open_by_ref`, or (None) active
    or temporarily closed."""
    status = index.status[slots]
    if open_by_ref is None:
        return (status == _ACTIVE) | (status == _TEMPORARILY_CLOSED)
    return (status == _ACTIVE) & open_by_ref[index.hours_ref[slots]]


def _subset_key(open_by_ref: np.ndarray | None, wanted: int) -> tuple[bool, int]:
    """Which subset tree answers a question: (whatever the hours?, amenity mask)."""
    return open_by_ref is None, wanted


def geodesic_distances(lat: float, lon: float, lats: np.ndarray, lons: np.ndarray) -> np.ndarray:
    n = len(lats)
    if n == 0:
        return np.empty(0)
    _, _, dist = WGS84.inv(np.full(n, lon), np.full(n, lat), lons, lats)
    return np.asarray(dist, dtype=np.float64)


class SearchService:
    """Answers nearest-open questions from a `SpatialIndex`; holds the compiled hours of its stations."""

    def __init__(
        self,
        index: SpatialIndex,
        default_tz: str = DEFAULT_TZ,
        *,
        subset_share: float = 0.3,
        subset_after: int = 32,
        background: bool = True,
    ) -> None:
        self.index = index
        self.default_tz = default_tz
        self._compiled: list[Hours | None] = []
        self._compiled_for = id(index)
        self._shares: dict[tuple[int, int], float] = {}
        self._open_cache: tuple[int, float, float, np.ndarray] | None = None
        #: Every opening table made so far, by content (see `_interned`).
        self._tables: dict[bytes, np.ndarray] = {}
        self._ref_counts: np.ndarray = np.zeros(0, dtype=np.int64)
        self._ref_counts_key: tuple[int, int, int] | None = None
        self._open_share_for: tuple[np.ndarray | None, int, float] = (None, -1, 1.0)
        self._masks: dict[Iterable[str], int] = {}
        self._eligibility: dict[bool, tuple[SpatialIndex, int, np.ndarray | None, int, np.ndarray]] = {}
        #: k-d trees of the stations that can answer some kind of question, by `_subset_key`; oldest first.
        #: Keys are per kind of question; a tree also remembers the opening table it was built for.
        self._subsets: dict[tuple[bool, int], SubsetIndex] = {}
        self._asked: dict[tuple[bool, int], int] = {}
        self._building: threading.Thread | None = None
        #: Below this share of stations that can answer (open now, with the amenities asked for), searches
        #: use a k-d tree of those stations (see `_subset_for`).
        self.subset_share = subset_share
        #: Questions with an amenity filter before the filter gets a tree of its own (a filter asked for
        #: once or twice is not worth a build); questions without one get it at once.
        self.subset_after = subset_after
        self.build_subsets_in_background = background

    def _hours_table(self) -> list[Hours | None]:
        keys = self.index.hours_keys
        if self._compiled_for != id(self.index):
            # A reloaded index numbers its expressions afresh.
            self._compiled = []
            self._open_cache = None
            self._tables.clear()
            self._compiled_for = id(self.index)
        compiled = self._compiled
        if len(compiled) == len(keys):
            return compiled
        # The index only ever appends distinct (expression, tz) pairs, so compiling the new tail suffices.
        for expression, tz in keys[len(compiled) :]:
            if not expression:
                compiled.append(None)
                continue
            try:
                compiled.append(compile_hours(expression, tz or self.default_tz))
            except InvalidOpeningHours:
                # Imports validate hours; a value edited into the database by hand is treated as unknown.
                compiled.append(None)
        return compiled

    def find_nearest_open(
        self,
        point: GeoPoint,
        k: int = 5,
        amenities: Iterable[str] = (),
        at: datetime | None = None,
        include_closed: bool = False,
    ) -> list[NearbyHit]:
        """The k nearest stations open at `at` with every amenity, nearest first (ties by code).

        With `include_closed`, the k nearest active or temporarily closed stations whatever their hours.
        """
        if at is None:
            raise ValueError("find_nearest_open needs the instant to evaluate opening hours at")
        if at.tzinfo is None:
            raise ValueError("`at` must be timezone-aware")
        if k <= 0:
            return []
        wanted = self._wanted_mask(amenities)
        hours_table = self._hours_table()
        index = self.index
        ts = at.timestamp()
        open_by_ref = None if include_closed else self._open_by_ref(ts, hours_table)
        source, share = self._source(open_by_ref, wanted)
        # Fetch enough candidates that one round usually suffices: rare amenities, and the night (when
        # few stations are open), need more of them.
        m = max(16, min(int(2.5 * k / max(share, 1e-4)), 1 << 20))
        eligible = self._eligible(open_by_ref)
        lat, lon = point.lat, point.lon
        while True:
            cand = source.nearest(lat, lon, m)
            slots = cand.slots
            ok = eligible[slots]
            if wanted:
                ok &= (index.amenity[slots] & wanted) == wanted
            chosen = self._rank(lat, lon, slots[ok], cand.chord[ok], k)
            if cand.complete:
                break
            if len(chosen) == k and GEODESIC_LOWER_BOUND * cand.farthest_m > chosen[-1][2]:
                break
            m *= 4
        return self._hits(chosen, ts, hours_table)

    def _rank(
        self, lat: float, lon: float, slots: np.ndarray, chord: np.ndarray, k: int
    ) -> list[tuple[float, bytes, float, int, float, float]]:
        """The k nearest of eligible candidates (ordered by sphere distance) by geodesic distance, as rows
        (millimetres, code, metres, slot, lat, lon); equal distances (to the millimetre) by station code.

        Only candidates that can still be among the k nearest get a geodesic: one whose sphere distance,
        times the smallest ratio of geodesic to sphere distance, exceeds the k-th candidate's sphere distance
        times the largest ratio is provably farther than k others."""
        n = len(slots)
        if n == 0:
            return []
        if n > k:
            # L·s ≤ U·s_k + 1 mm, turned into a chord bound so that no arcsine runs over the candidates.
            reach = GEODESIC_UPPER_BOUND * chord_m(float(chord[k - 1])) + 0.001
            angle = reach / (GEODESIC_LOWER_BOUND * 2.0 * EARTH_RADIUS_M)
            if angle < math.pi / 2:
                n = int(chord.searchsorted(2.0 * math.sin(angle), side="right"))
                slots = slots[:n]
        index = self.index
        lats = index.lat[slots].tolist()
        lons = index.lon[slots].tolist()
        codes = index.codes[slots].tolist()
        if n <= _SCALAR_GEODESICS:
            inv = WGS84.inv
            dist = [inv(lon, lat, lon2, lat2)[2] for lat2, lon2 in zip(lats, lons, strict=True)]
        else:
            dist = geodesic_distances(lat, lon, np.asarray(lats), np.asarray(lons)).tolist()
        # Millimetre rounding makes the order stable against last-bit differences between geodesic
        # implementations; equal distances fall back to the station code.
        rows = sorted(zip([round(d, 3) for d in dist], codes, dist, slots.tolist(), lats, lons, strict=True))
        return rows[:k]

    def _eligible(self, open_by_ref: np.ndarray | None) -> np.ndarray:
        """Per slot, whether its station can be an answer: active and open per `open_by_ref`, or (None)
        active or temporarily closed. One lookup per candidate instead of five array operations; kept
        current from the index's log of touched slots, rebuilt when the table or the slots change."""
        index = self.index
        n = index.slot_count
        cached = self._eligibility.get(open_by_ref is None)
        if (
            cached is not None
            and cached[0] is index
            and cached[1] == index.generation
            and cached[2] is open_by_ref
        ):
            _, _, _, seen, mask = cached
            if seen == len(index.touched) and len(mask) == n:
                return mask
            if len(mask) < n:
                mask = np.concatenate((mask, np.zeros(n - len(mask), bool)))
            fresh = np.asarray(index.touched[seen:], np.intp)
            fresh = np.union1d(fresh, np.arange(len(cached[4]), n, dtype=np.intp))
            mask[fresh] = _eligible_slots(index, fresh, open_by_ref)
        else:
            mask = _eligible_slots(index, slice(0, n), open_by_ref)
        self._eligibility[open_by_ref is None] = (
            index,
            index.generation,
            open_by_ref,
            len(index.touched),
            mask,
        )
        return mask

    def _wanted_mask(self, amenities: Iterable[str]) -> int:
        if not amenities:
            return 0
        key = amenities if isinstance(amenities, (tuple, frozenset)) else tuple(amenities)
        mask = self._masks.get(key)
        if mask is None:
            mask = amenity_mask(frozenset(key))
            if len(self._masks) > 1024:
                self._masks.clear()
            self._masks[key] = mask
        return mask

    # -- k-d trees of the stations that can answer -------------------------------------------------------
    # At night few stations are open, and few have a rare pair of amenities: most candidates the whole
    # index returns are then thrown away (a thousand and more for two amenities at night). A tree of just
    # the stations that can answer returns k candidates that all do.

    def _source(
        self, open_by_ref: np.ndarray | None, wanted: int
    ) -> tuple[SpatialIndex | SubsetIndex, float]:
        """Where to fetch candidates for stations open per `open_by_ref` (None: whatever their hours) with
        the amenities of `wanted`, and the share of its candidates expected to be answers."""
        amenity_share = self._share_with(wanted)
        open_share = 1.0 if open_by_ref is None else self._open_share(open_by_ref)
        if wanted:
            exact = self._subset_for(open_by_ref, wanted, amenity_share * open_share)
            if exact is not None:
                return exact, 1.0  # every member is an answer (but for slots patched since it was built)
        # The tree of the stations open now, when there is one: only the amenities thin it out.
        broader = self._subset_for(open_by_ref, 0, open_share)
        if broader is not None:
            return broader, amenity_share
        return self.index, amenity_share * open_share

    def _subset_for(self, open_by_ref: np.ndarray | None, wanted: int, share: float) -> SubsetIndex | None:
        """The tree of the stations open per `open_by_ref` with the amenities of `wanted`, when one is built
        and current. When there is none and those stations are few, one is built in a worker thread (for a
        filter, once it has been asked for `subset_after` times); the caller searches elsewhere meanwhile."""
        subset = self._current_subset(open_by_ref, wanted)
        if subset is not None or share > self.subset_share:
            return subset
        if wanted:
            key = _subset_key(open_by_ref, wanted)
            asked = self._asked.get(key, 0) + 1
            if asked < self.subset_after:
                if len(self._asked) > 4096:
                    self._asked.clear()
                self._asked[key] = asked
                return None
        building = self._building
        if building is not None and building.is_alive():
            return None
        index = self.index
        if self.build_subsets_in_background:
            thread = threading.Thread(
                target=self._build_subset, args=(index, open_by_ref, wanted), name="subset-index", daemon=True
            )
            self._building = thread
            thread.start()
            return None
        return self._build_subset(index, open_by_ref, wanted)

    def _current_subset(self, open_by_ref: np.ndarray | None, wanted: int) -> SubsetIndex | None:
        """The tree built for this opening table and filter, if there is one still valid for the index."""
        subset = self._subsets.get(_subset_key(open_by_ref, wanted))
        if subset is None or not subset.usable_for(self.index):
            return None
        if open_by_ref is not None and subset.key is not open_by_ref:
            return None  # tables are interned: another object has other content
        return subset

    def _build_subset(
        self, index: SpatialIndex, open_by_ref: np.ndarray | None, wanted: int
    ) -> SubsetIndex | None:
        try:
            started = time.perf_counter()
            n = index.slot_count
            # The subset's log position is read before the columns (SubsetIndex), so a patch racing this
            # read is either seen here or replayed from the log.
            touched_from = len(index.touched)
            member = _eligible_slots(index, slice(0, n), open_by_ref)
            if wanted:
                member &= (index.amenity[:n] & wanted) == wanted
            subset = index.subset(np.flatnonzero(member), key=open_by_ref, touched_from=touched_from)
            self._keep(index, _subset_key(open_by_ref, wanted), subset)
            log.debug(
                "subset index (filter %#x, %s): %d stations in %.3f s",
                wanted,
                "any hours" if open_by_ref is None else "open now",
                len(subset),
                time.perf_counter() - started,
            )
            return subset
        except Exception:
            log.exception("building a subset index failed; searching the whole index")
            return None

    def _keep(self, index: SpatialIndex, key: tuple[bool, int], subset: SubsetIndex) -> None:
        """Add a subset tree, dropping those no longer valid and then the oldest, so that all of them
        together hold no more stations than the index (their memory stays below the index's own)."""
        subsets = {k: s for k, s in self._subsets.items() if k != key and s.usable_for(index)}
        subsets[key] = subset
        budget = max(index.slot_count, len(subset))
        while sum(len(s) for s in subsets.values()) > budget:
            del subsets[next(iter(subsets))]
        self._subsets = subsets  # replaced whole: searches on the event loop read it without a lock

    def subset_memory_bytes(self) -> int:
        """Memory of the subset trees kept now (at most that of the index's own tree and slots)."""
        return sum(subset.memory_bytes() for subset in self._subsets.values())

    def prepare(self, at: datetime, amenities: Iterable[str] = ()) -> None:
        """Build, now and in this thread, what searches at `at` (with `amenities`) would build in the
        background, when they would: benchmarks and tests call it to measure the steady state."""
        building = self._building
        if building is not None:
            building.join()
        table = self._open_by_ref(at.timestamp(), self._hours_table())
        for wanted in {0, self._wanted_mask(amenities)}:
            share = self._share_with(wanted) * self._open_share(table)
            if self._current_subset(table, wanted) is None and share <= self.subset_share:
                self._build_subset(self.index, table, wanted)

    def _open_by_ref(self, ts: float, hours_table: list[Hours | None]) -> np.ndarray:
        """Whether each distinct (expression, timezone) is open at `ts`, as a boolean array indexed like
        `hours_ref`. Evaluated once per window in which no expression changes state."""
        cached = self._open_cache
        if cached is not None:
            size, valid_from, valid_until, table = cached
            if size == len(hours_table) and valid_from <= ts < valid_until:
                return table
        table = np.zeros(max(len(hours_table), 1), dtype=bool)
        valid_from, valid_until = -math.inf, math.inf
        for ref, hours in enumerate(hours_table):
            if hours is None:
                continue  # unknown hours are never reported open
            start, until, state = hours.window_at_timestamp(ts)
            table[ref] = state is OpenState.OPEN
            valid_from = max(valid_from, start)
            valid_until = min(valid_until, until)
        table = self._interned(table)
        self._open_cache = (len(hours_table), valid_from, valid_until, table)
        return table

    def _interned(self, table: np.ndarray) -> np.ndarray:
        """The one array of this content: the same hours give the same table every night, and the trees and
        masks built for it are found again by identity. Comparing tables element by element would cost
        every search a few microseconds whenever a tree for another table is kept (the day's searches, once
        the night has built its tree)."""
        key = table.tobytes()
        known = self._tables.get(key)
        if known is not None:
            return known
        if len(self._tables) >= _MAX_TABLES:
            self._tables.clear()  # the trees of forgotten tables are rebuilt when next needed
        table.flags.writeable = False
        self._tables[key] = table
        return table

    def _open_share(self, open_by_ref: np.ndarray) -> float:
        """Share of stations open now (from how many stations use each expression; a guess suffices)."""
        if self._open_share_for[0] is open_by_ref and self._open_share_for[1] == self.index.version:
            return self._open_share_for[2]
        share = self._compute_open_share(open_by_ref)
        self._open_share_for = (open_by_ref, self.index.version, share)
        return share

    def _compute_open_share(self, open_by_ref: np.ndarray) -> float:
        index = self.index
        key = (id(index), index.version, len(open_by_ref))
        if self._ref_counts_key != key:
            n = index.slot_count
            counts = np.bincount(index.hours_ref[:n], minlength=len(open_by_ref))
            self._ref_counts = counts[: len(open_by_ref)]
            self._ref_counts_key = key
        total = int(self._ref_counts.sum())
        if not total:
            return 1.0
        return max(float(self._ref_counts[open_by_ref[: len(self._ref_counts)]].sum()) / total, 0.001)

    def _share_with(self, mask: int) -> float:
        """Share of stations having every amenity of `mask`, cached per index version (a guess suffices)."""
        if not mask:
            return 1.0
        key = (id(self.index), mask)
        share = self._shares.get(key)
        if share is None:
            index = self.index
            n = index.slot_count
            matching = np.count_nonzero((index.amenity[:n] & mask) == mask) if n else 0
            share = max(matching / n, 0.01) if n else 1.0
            if len(self._shares) > 4096:
                self._shares.clear()
            self._shares[key] = share
        return share

    def _hits(
        self,
        chosen: list[tuple[float, bytes, float, int, float, float]],
        ts: float,
        hours_table: list[Hours | None],
    ) -> list[NearbyHit]:
        """The chosen rows as hits, with their state at the instant `ts` (POSIX seconds)."""
        index = self.index
        picked = np.array([row[3] for row in chosen], np.intp)
        hits = []
        for (_, code, distance, _, lat, lon), station_id, status, ref in zip(
            chosen,
            index.ids[picked].tolist(),
            index.status[picked].tolist(),
            index.hours_ref[picked].tolist(),
            strict=True,
        ):
            hours = hours_table[ref]
            hours_status = hours.status_at_timestamp(ts) if hours is not None else _UNKNOWN
            station_status = _STATUS_ENUM[status]
            # Positional: keywords cost a quarter of a microsecond per hit.
            hits.append(
                NearbyHit(
                    station_id,
                    code.decode(),
                    lat,
                    lon,
                    distance,
                    station_status,
                    hours_status,
                    open_now(station_status, hours_status),
                )
            )
        return hits


def brute_force_nearest_open(
    stations: Iterable[tuple[str, float, float, str, Iterable[str], str, str | None]],
    point: GeoPoint,
    k: int,
    amenities: Iterable[str],
    at: datetime,
    default_tz: str = DEFAULT_TZ,
    include_closed: bool = False,
) -> list[tuple[str, float]]:
    """Reference answer by a full geodesic scan with geopy: (code, distance_m) pairs.

    Slow on purpose and independent of the index; tests and benchmarks compare against it.
    """
    from geopy.distance import geodesic

    wanted = set(amenities)
    rows: list[tuple[float, str, float]] = []
    for code, lat, lon, status, station_amenities, expression, tz in stations:
        if status != StationStatus.ACTIVE.value and not (
            include_closed and status == StationStatus.TEMPORARILY_CLOSED.value
        ):
            continue
        if not wanted <= set(station_amenities):
            continue
        if not include_closed:
            if not expression.strip():
                continue
            if compile_hours(expression, tz or default_tz).status(at).state is not OpenState.OPEN:
                continue
        d = geodesic((point.lat, point.lon), (lat, lon)).meters
        rows.append((round(d, 3), code, d))
    rows.sort()
    return [(code, d) for _, code, d in rows[:k]]
