"""The in-process spatial index: a read model of the stations table for nearest-neighbour search.

Points live on the unit sphere as 3-D vectors in a k-d tree (pykdtree), so chord distance orders them
exactly like great-circle distance and nothing breaks at the antimeridian or near the poles. Alongside the
tree sit compact column arrays (id, code, lat/lon, status, amenity bitmask, hours reference) so a query can
filter hundreds of candidates without touching Python objects; names and addresses stay in the database.

Changes are patched in place: a status, amenity or hours change rewrites the station's array slots; a new
or moved station goes to a small overlay scanned by brute force (its old slot is tombstoned) until
`compact()` rebuilds the tree. Nothing here knows about opening-hours syntax: the index only keeps, per
station, a reference into a table of distinct `(expression, timezone)` pairs that the search service
compiles once.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

# pykdtree spreads a query's points over an OpenMP thread team; a single point gains nothing from one and
# its idle threads spin on the other CPUs (4x the CPU time of the query here). One thread unless the
# operator sets it; libgomp reads this when pykdtree loads it, which is just below.
os.environ.setdefault("OMP_NUM_THREADS", "1")
from pykdtree.kdtree import KDTree

from domain.values import AMENITY_BIT, StationStatus

#: Mean Earth radius (IUGG), the sphere the index measures on.
EARTH_RADIUS_M = 6_371_008.8
#: The ellipsoid's radii of curvature range from a(1-e²) = 6,335,439 m (meridian at the equator) to
#: a²/b = 6,399,594 m (at the poles), so any path on WGS-84 is at least 0.99441 times as long as the same
#: path on the index's sphere: a station whose sphere distance is s is at least LOWER_BOUND * s away
#: geodesically. The search uses this to know when the candidates it fetched are provably enough.
GEODESIC_LOWER_BOUND = 0.9944
#: ... and at most GEODESIC_UPPER_BOUND * s (the largest radius of curvature over the sphere's radius,
#: 6,399,594 / 6,371,008.8 = 1.004487, rounded up).
GEODESIC_UPPER_BOUND = 1.0045

STATUS_CODES: dict[str, int] = {
    StationStatus.ACTIVE.value: 0,
    StationStatus.TEMPORARILY_CLOSED.value: 1,
    StationStatus.CLOSED.value: 2,
}
STATUS_REMOVED = 3  # a tombstoned slot: the station moved to the overlay or was deleted


def unit_vectors(lat: NDArray[np.float64], lon: NDArray[np.float64]) -> NDArray[np.float64]:
    phi = np.radians(lat)
    lam = np.radians(lon)
    cos_phi = np.cos(phi)
    return np.column_stack((cos_phi * np.cos(lam), cos_phi * np.sin(lam), np.sin(phi)))


def _factorize(values: Sequence[Any]) -> tuple[NDArray[np.intp], list[Any]]:
    """Codes into the list of distinct values, in first-seen order (a dict is faster than np.unique)."""
    table: dict[Any, int] = {}
    codes = np.fromiter((table.setdefault(v, len(table)) for v in values), np.intp, len(values))
    return codes, list(table)


def _merge(
    chord: NDArray[np.float64],
    slots: NDArray[np.intp],
    extra_chord: NDArray[np.float64],
    extra_slots: NDArray[np.intp],
    limit: float | None,
) -> tuple[NDArray[np.float64], NDArray[np.intp]]:
    """Tree candidates plus brute-force ones, nearest first. `limit` is the chord up to which the tree part
    is known complete (None: it holds every point); extra points beyond it are dropped, since keeping them
    would break "nothing nearer was left out"."""
    if limit is not None:
        keep = extra_chord <= limit
        extra_chord, extra_slots = extra_chord[keep], extra_slots[keep]
    if not len(extra_chord):
        return chord, slots
    chord = np.concatenate((chord, extra_chord))
    slots = np.concatenate((slots, extra_slots))
    order = np.argsort(chord, kind="stable")
    return chord[order], slots[order]


def mask_of(amenities: Iterable[str]) -> int:
    # Unknown keys were rejected on the way into the database; ignore any that slipped in by hand.
    mask = 0
    for key in amenities:
        mask |= AMENITY_BIT.get(key, 0)
    return mask


@dataclass(frozen=True, slots=True)
class IndexEntry:
    """What the index keeps of a station."""

    id: int
    code: str
    lat: float
    lon: float
    status: str
    amenities: tuple[str, ...] | list[str]
    opening_hours: str
    timezone: str | None


@dataclass(frozen=True, slots=True)
class Candidates:
    """Slots nearest a point, ordered by sphere distance; `complete` means there are no others."""

    slots: NDArray[np.intp]
    #: Chord (unit sphere) of each candidate, ascending.
    chord: NDArray[np.float64]
    complete: bool

    @property
    def farthest_m(self) -> float:
        """Sphere distance of the farthest candidate: nothing left out is nearer (when not complete)."""
        return chord_m(float(self.chord[-1])) if len(self.chord) else 0.0


def chord_m(chord: float) -> float:
    """Sphere distance in metres of a chord of the unit sphere."""
    return 2.0 * EARTH_RADIUS_M * math.asin(min(chord, 2.0) / 2.0)


def _unit_vector(lat: float, lon: float) -> NDArray[np.float64]:
    phi = math.radians(lat)
    lam = math.radians(lon)
    cos_phi = math.cos(phi)
    return np.array((cos_phi * math.cos(lam), cos_phi * math.sin(lam), math.sin(phi)))


#: Points per leaf of the k-d trees (measured: 16 beats 8 and 32 for k = 5-200 on 10^5-10^6 points).
LEAF_SIZE = 16


def build_tree(xyz: NDArray[np.float64]) -> KDTree:
    """A k-d tree over unit vectors: pykdtree's, whose single-point query costs a third of scipy's
    `cKDTree.query` (which spends most of its time on argument handling; bench/README.md)."""
    return KDTree(np.ascontiguousarray(xyz, dtype=np.float64), leafsize=LEAF_SIZE)


def tree_bytes(n: int) -> int:
    """Memory of a k-d tree of n points: its own copy of the points, a 4-byte permutation and about
    2n/leaf nodes."""
    return n * 3 * 8 + n * 4 + (2 * n // LEAF_SIZE + 1) * 64


def _tree_query(
    tree: KDTree, q: NDArray[np.float64], take: int
) -> tuple[NDArray[np.float64], NDArray[np.intp]]:
    """The `take` (≥ 1) nearest points of a tree as arrays (chords, point numbers), nearest first."""
    chord, found = tree.query(q.reshape(1, 3), k=take)
    return chord.reshape(-1), found.reshape(-1).astype(np.intp)


class _Columns:
    """Growable parallel arrays, one slot per station version."""

    def __init__(self, capacity: int) -> None:
        capacity = max(capacity, 16)
        self.size = 0
        self.ids = np.empty(capacity, np.int64)
        self.lat = np.empty(capacity, np.float64)
        self.lon = np.empty(capacity, np.float64)
        self.status = np.empty(capacity, np.int8)
        self.amenity = np.empty(capacity, np.uint32)
        self.hours = np.empty(capacity, np.int32)
        self.codes = np.empty(capacity, "S16")

    def _grow(self, needed: int) -> None:
        capacity = len(self.ids)
        if needed <= capacity:
            return
        new_capacity = max(needed, capacity * 2)
        for name in ("ids", "lat", "lon", "status", "amenity", "hours", "codes"):
            old = getattr(self, name)
            new = np.empty(new_capacity, old.dtype)
            new[: self.size] = old[: self.size]
            setattr(self, name, new)

    def _fit_codes(self, encoded: Sequence[bytes]) -> None:
        longest = max((len(c) for c in encoded), default=0)
        if longest > self.codes.dtype.itemsize:
            self.codes = self.codes.astype(f"S{longest}")

    def append_many(
        self,
        ids: NDArray[np.int64],
        lat: NDArray[np.float64],
        lon: NDArray[np.float64],
        status: NDArray[np.int8],
        amenity: NDArray[np.uint32],
        hours: NDArray[np.int32],
        codes: Sequence[bytes],
    ) -> None:
        n = len(ids)
        self._grow(self.size + n)
        self._fit_codes(codes)
        s = slice(self.size, self.size + n)
        self.ids[s] = ids
        self.lat[s] = lat
        self.lon[s] = lon
        self.status[s] = status
        self.amenity[s] = amenity
        self.hours[s] = hours
        self.codes[s] = codes
        self.size += n


class SpatialIndex:
    """Nearest-neighbour read model of the stations; see the module docstring."""

    #: Overlay size beyond which `needs_compaction` says a rebuild is worth it.
    OVERLAY_LIMIT = 2048

    def __init__(self, entries: Sequence[IndexEntry] = ()) -> None:
        self._hours_keys: list[tuple[str, str | None]] = []
        self._hours_ref: dict[tuple[str, str | None], int] = {}
        self._mask_cache: dict[tuple[str, ...], int] = {}
        self._cols = _Columns(len(entries))
        # Slots of the tree part are sorted by id (found by binary search, no per-station Python object);
        # the overlay is small and keeps a dict.
        self._overlay_slot: dict[int, int] = {}
        self._tree: KDTree | None = None
        self._tree_size = 0
        self._overlay_xyz = np.empty((0, 3))
        self.version = 0
        #: Bumped by every rebuild of the tree, which renumbers the slots.
        self.generation = 0
        #: Slots written since the last rebuild (patched in place, tombstoned or appended to the overlay),
        #: in order; read models derived from the columns use it to catch up without a rebuild.
        self.touched: list[int] = []
        self._load(entries)

    # -- building -------------------------------------------------------------------------------------
    @classmethod
    def from_columns(
        cls,
        ids: Sequence[int],
        codes: Sequence[str],
        lat: Sequence[float],
        lon: Sequence[float],
        statuses: Sequence[str],
        amenities: Sequence[Sequence[str] | str],
        opening_hours: Sequence[str],
        timezones: Sequence[str | None],
    ) -> SpatialIndex:
        """Build from parallel columns (what the repository reads), without a Python object per station."""
        index = cls()
        index._append(ids, codes, lat, lon, statuses, amenities, opening_hours, timezones)
        index._rebuild_tree()
        return index

    def _load(self, entries: Sequence[IndexEntry]) -> None:
        if not entries:
            self._rebuild_tree()
            return
        self._append(
            [e.id for e in entries],
            [e.code for e in entries],
            [e.lat for e in entries],
            [e.lon for e in entries],
            [e.status for e in entries],
            [tuple(e.amenities) for e in entries],
            [e.opening_hours for e in entries],
            [e.timezone for e in entries],
        )
        self._rebuild_tree()

    def _hours_slot(self, expression: str, tz: str | None) -> int:
        key = (expression.strip(), tz)
        ref = self._hours_ref.get(key)
        if ref is None:
            ref = len(self._hours_keys)
            self._hours_keys.append(key)
            self._hours_ref[key] = ref
        return ref

    def _mask(self, amenities: Sequence[str]) -> int:
        key = tuple(amenities)
        mask = self._mask_cache.get(key)
        if mask is None:
            mask = self._mask_cache[key] = mask_of(key)
        return mask

    def _append(
        self,
        ids: Sequence[int],
        codes: Sequence[str],
        lat: Sequence[float],
        lon: Sequence[float],
        statuses: Sequence[str],
        amenities: Sequence[Sequence[str] | str],
        opening_hours: Sequence[str],
        timezones: Sequence[str | None],
        overlay: bool = False,
    ) -> None:
        """Append stations. Amenities are key sequences or their JSON text (as the database stores them).
        Status, amenity set and hours repeat a lot, so each distinct value is converted once."""
        start = self._cols.size
        n = len(ids)
        status_codes, status_values = _factorize(statuses)
        amenity_codes, amenity_values = _factorize([a if isinstance(a, str) else tuple(a) for a in amenities])
        hours_codes, hours_values = _factorize(list(zip(opening_hours, timezones, strict=True)))
        status_table = np.array([STATUS_CODES.get(v, 2) for v in status_values], np.int8)
        amenity_table = np.array(
            [self._mask(tuple(json.loads(v)) if isinstance(v, str) else v) for v in amenity_values], np.uint32
        )
        hours_table = np.array([self._hours_slot(h or "", tz) for h, tz in hours_values], np.int32)
        self._cols.append_many(
            np.asarray(ids, np.int64),
            np.asarray(lat, np.float64),
            np.asarray(lon, np.float64),
            status_table[status_codes] if n else np.empty(0, np.int8),
            amenity_table[amenity_codes] if n else np.empty(0, np.uint32),
            hours_table[hours_codes] if n else np.empty(0, np.int32),
            [c.encode() for c in codes],
        )
        if overlay:
            for offset, station_id in enumerate(ids):
                old = self.slot_of(station_id)
                if old is not None:
                    self._cols.status[old] = STATUS_REMOVED
                    self.touched.append(old)
                self._overlay_slot[int(station_id)] = start + offset
                self.touched.append(start + offset)

    def _rebuild_tree(self) -> None:
        """Put every live slot into a fresh tree and drop tombstones and the overlay."""
        cols = self._cols
        live = np.flatnonzero(cols.status[: cols.size] != STATUS_REMOVED)
        live = live[np.argsort(cols.ids[live], kind="stable")]
        if len(live) != cols.size or np.any(live != np.arange(cols.size)):
            compact = _Columns(len(live))
            compact.codes = compact.codes.astype(cols.codes.dtype)
            compact.append_many(
                cols.ids[live],
                cols.lat[live],
                cols.lon[live],
                cols.status[live],
                cols.amenity[live],
                cols.hours[live],
                list(cols.codes[live]),
            )
            self._cols = cols = compact
        self._overlay_slot = {}
        self.generation += 1
        self.touched = []
        n = cols.size
        if n == 0:
            self._tree = None
            self._tree_size = 0
            self._overlay_xyz = np.empty((0, 3))
            self.version += 1
            return
        self._tree = build_tree(unit_vectors(cols.lat[:n], cols.lon[:n]))
        self._tree_size = n
        self._overlay_xyz = np.empty((0, 3))
        self.version += 1

    # -- patching -------------------------------------------------------------------------------------
    def upsert(self, entry: IndexEntry) -> None:
        """Reflect a new or changed station; cheap, no rebuild."""
        cols = self._cols
        slot = self.slot_of(entry.id)
        if slot is not None and cols.lat[slot] == entry.lat and cols.lon[slot] == entry.lon:
            cols.status[slot] = STATUS_CODES.get(entry.status, 2)
            cols.amenity[slot] = self._mask(tuple(entry.amenities))
            cols.hours[slot] = self._hours_slot(entry.opening_hours or "", entry.timezone)
            encoded = entry.code.encode()
            cols._fit_codes([encoded])
            cols.codes[slot] = encoded
            self.touched.append(slot)
        else:
            self._append(
                [entry.id],
                [entry.code],
                [entry.lat],
                [entry.lon],
                [entry.status],
                [tuple(entry.amenities)],
                [entry.opening_hours],
                [entry.timezone],
                overlay=True,
            )
            self._overlay_xyz = unit_vectors(
                self._cols.lat[self._tree_size : self._cols.size],
                self._cols.lon[self._tree_size : self._cols.size],
            )
        self.version += 1

    def remove(self, station_id: int) -> None:
        slot = self.slot_of(station_id)
        self._overlay_slot.pop(station_id, None)
        if slot is not None:
            self._cols.status[slot] = STATUS_REMOVED
            self.touched.append(slot)
            self.version += 1

    @property
    def needs_compaction(self) -> bool:
        return len(self._overlay_xyz) > self.OVERLAY_LIMIT

    def compact(self) -> None:
        """Rebuild the tree with the overlay merged in (CPU-bound: call it from a worker thread)."""
        self._rebuild_tree()

    # -- reading --------------------------------------------------------------------------------------
    def __len__(self) -> int:
        return int(np.count_nonzero(self._cols.status[: self._cols.size] != STATUS_REMOVED))

    @property
    def slot_count(self) -> int:
        return self._cols.size

    @property
    def hours_keys(self) -> list[tuple[str, str | None]]:
        """Distinct `(expression, timezone)` pairs; `hours_ref` of a slot indexes this list."""
        return self._hours_keys

    @property
    def ids(self) -> NDArray[np.int64]:
        return self._cols.ids

    @property
    def codes(self) -> NDArray[np.bytes_]:
        return self._cols.codes

    @property
    def lat(self) -> NDArray[np.float64]:
        return self._cols.lat

    @property
    def lon(self) -> NDArray[np.float64]:
        return self._cols.lon

    @property
    def status(self) -> NDArray[np.int8]:
        return self._cols.status

    @property
    def amenity(self) -> NDArray[np.uint32]:
        return self._cols.amenity

    @property
    def hours_ref(self) -> NDArray[np.int32]:
        return self._cols.hours

    def slot_of(self, station_id: int) -> int | None:
        """The live slot of a station, or None."""
        slot = self._overlay_slot.get(station_id)
        if slot is None:
            ids = self._cols.ids[: self._tree_size]
            i = int(np.searchsorted(ids, station_id))
            if i < len(ids) and ids[i] == station_id:
                slot = i
        if slot is None or self._cols.status[slot] == STATUS_REMOVED:
            return None
        return slot

    def nearest(self, lat: float, lon: float, m: int) -> Candidates:
        """The m slots nearest (lat, lon) on the sphere, tombstones included, nearest first."""
        q = _unit_vector(lat, lon)
        tree_n = self._tree_size
        take = min(m, tree_n)
        if take > 0 and self._tree is not None:
            chord, slots = _tree_query(self._tree, q, take)
        else:
            chord = np.empty(0)
            slots = np.empty(0, np.intp)
        complete = take >= tree_n
        if len(self._overlay_xyz):
            over_chord = np.linalg.norm(self._overlay_xyz - q, axis=1)
            over_slots = np.arange(tree_n, self._cols.size, dtype=np.intp)
            limit = None if complete else float(chord[-1])
            chord, slots = _merge(chord, slots, over_chord, over_slots, limit)
        return Candidates(slots, chord, complete)

    def subset(
        self, slots: NDArray[np.intp], key: Any = None, touched_from: int | None = None
    ) -> SubsetIndex:
        """A k-d tree over some of the current slots (CPU-bound for large subsets: the tree build releases
        the GIL, so a worker thread can do it while the event loop keeps answering). `touched_from` is the
        length of `touched` when the caller read the columns that chose `slots` (default: now)."""
        return SubsetIndex(self, slots, key, touched_from)

    def memory_bytes(self) -> int:
        cols = self._cols
        arrays = (cols.ids, cols.lat, cols.lon, cols.status, cols.amenity, cols.hours, cols.codes)
        total = sum(a.nbytes for a in arrays)
        if self._tree is not None:
            total += tree_bytes(self._tree_size)
        return total


class SubsetIndex:
    """A k-d tree over a subset of an index's slots, answering `nearest` like the index does.

    It is a snapshot: `slots` were the members when it was built. The slots the index has touched since
    (patched, tombstoned, or appended to its overlay) are added to every answer by brute force, so as long
    as membership is a function of the slot's columns, every current member is among the candidates, and
    the caller filters them against the columns as usual. A rebuild of the index (new slot numbers) or a
    long list of touched slots makes it unusable; build a new one then.
    """

    #: Touched slots beyond which scanning them costs more than a rebuild of the subset.
    TOUCHED_LIMIT = 2048

    def __init__(
        self, index: SpatialIndex, slots: NDArray[np.intp], key: Any = None, touched_from: int | None = None
    ) -> None:
        # The log position must be read before the columns: a write after it is in the log, one before it
        # is in the columns.
        self.touched_from = len(index.touched) if touched_from is None else touched_from
        self.generation = index.generation
        self.index = index
        self.key = key
        self.slots = np.asarray(slots, np.intp)
        lat, lon = index.lat[self.slots], index.lon[self.slots]
        self._tree = build_tree(unit_vectors(lat, lon)) if len(self.slots) else None
        self._extra: tuple[int, NDArray[np.intp], NDArray[np.float64]] = (
            self.touched_from,
            np.empty(0, np.intp),
            np.empty((0, 3)),
        )

    def __len__(self) -> int:
        return len(self.slots)

    def memory_bytes(self) -> int:
        return self.slots.nbytes + (tree_bytes(len(self.slots)) if self._tree is not None else 0)

    def usable_for(self, index: SpatialIndex) -> bool:
        return (
            index is self.index
            and index.generation == self.generation
            and len(index.touched) - self.touched_from <= self.TOUCHED_LIMIT
        )

    def _touched(self) -> tuple[NDArray[np.intp], NDArray[np.float64]]:
        index = self.index
        seen, slots, xyz = self._extra
        if seen != len(index.touched):
            seen = len(index.touched)
            slots = np.unique(np.asarray(index.touched[self.touched_from : seen], np.intp))
            xyz = unit_vectors(index.lat[slots], index.lon[slots])
            self._extra = (seen, slots, xyz)
        return slots, xyz

    def nearest(self, lat: float, lon: float, m: int) -> Candidates:
        """The m members nearest (lat, lon), plus the touched slots within their reach, nearest first."""
        q = _unit_vector(lat, lon)
        n = len(self.slots)
        take = min(m, n)
        if take > 0 and self._tree is not None:
            chord, picked = _tree_query(self._tree, q, take)
            slots = self.slots[picked]
        else:
            chord = np.empty(0)
            slots = np.empty(0, np.intp)
        complete = take >= n
        extra_slots, extra_xyz = self._touched()
        if len(extra_slots):
            limit = None if complete else float(chord[-1])
            # A touched slot that is also in the tree would come twice; the tree's copy goes.
            if len(slots):
                fresh = ~np.isin(slots, extra_slots)
                chord, slots = chord[fresh], slots[fresh]
            extra_chord = np.linalg.norm(extra_xyz - q, axis=1)
            chord, slots = _merge(chord, slots, extra_chord, extra_slots, limit)
        return Candidates(slots, chord, complete)
