"""Conversions between WGS-84 and the two Chinese map datums, GCJ-02 and BD-09.

Telegram and GPS give WGS-84; Amap and Tencent publish GCJ-02 ("Mars coordinates"), Baidu publishes BD-09.
yizhan stores WGS-84 only, so anything else is converted on the way in (imports, `--crs`).

Conventions, everywhere in this module:
- arguments and results are **latitude first**: `(lat, lon)` in decimal degrees;
- the forward GCJ-02 obfuscation is the published algorithm (Krasovsky ellipsoid constants) and, as every
  implementation does, leaves points outside the `out_of_china` box unchanged;
- the inverses (`gcj02_to_wgs84`, `bd09_to_gcj02`) are solved by fixed-point iteration on the forward
  function until the residual is below about 1e-9 degrees (0.1 mm); the popular one-step inverse is off by
  up to about 5 m in the north-east (Baidu's one-step BD-09 inverse about 0.2 m), enough to put a station on
  the wrong side of a road.

`gcj02_to_wgs84_many` applies the same formulas to whole arrays at once (numpy), for bulk data such as
administrative boundaries published in GCJ-02.

Pure functions, no state, no I/O.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from domain.values import CRS

if TYPE_CHECKING:
    import numpy as np

__all__ = [
    "bd09_to_gcj02",
    "bd09_to_wgs84",
    "gcj02_to_bd09",
    "gcj02_to_wgs84",
    "gcj02_to_wgs84_many",
    "out_of_china",
    "to_wgs84",
    "wgs84_to_bd09",
    "wgs84_to_gcj02",
]

# Krasovsky 1940 ellipsoid, as used by the GCJ-02 algorithm (not WGS-84's: the constants are part of the
# obfuscation and must match what the map providers use).
_A = 6378245.0
_EE = 0.00669342162296594323
_X_PI = math.pi * 3000.0 / 180.0

_Forward = Callable[[float, float], tuple[float, float]]

# 1e-9 degrees is about 0.1 mm on the ground, far below the 0.01 m the importer promises.
_TOLERANCE_DEG = 1e-9
_MAX_ITERATIONS = 50


def out_of_china(lat: float, lon: float) -> bool:
    """True outside the rough bounding box where GCJ-02 applies (the box every implementation uses)."""
    return not (72.004 <= lon <= 137.8347 and 0.8293 <= lat <= 55.8271)


# The formulas take the module that provides sin, sqrt, fabs and cos: `math` for one point, numpy for
# arrays, so that both paths compute exactly the same expression.


def _transform_lat(x: Any, y: Any, m: Any = math) -> Any:
    ret = -100.0 + 2.0 * x + 3.0 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * m.sqrt(m.fabs(x))
    ret += (20.0 * m.sin(6.0 * x * math.pi) + 20.0 * m.sin(2.0 * x * math.pi)) * 2.0 / 3.0
    ret += (20.0 * m.sin(y * math.pi) + 40.0 * m.sin(y / 3.0 * math.pi)) * 2.0 / 3.0
    ret += (160.0 * m.sin(y / 12.0 * math.pi) + 320.0 * m.sin(y * math.pi / 30.0)) * 2.0 / 3.0
    return ret


def _transform_lon(x: Any, y: Any, m: Any = math) -> Any:
    ret = 300.0 + x + 2.0 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * m.sqrt(m.fabs(x))
    ret += (20.0 * m.sin(6.0 * x * math.pi) + 20.0 * m.sin(2.0 * x * math.pi)) * 2.0 / 3.0
    ret += (20.0 * m.sin(x * math.pi) + 40.0 * m.sin(x / 3.0 * math.pi)) * 2.0 / 3.0
    ret += (150.0 * m.sin(x / 12.0 * math.pi) + 300.0 * m.sin(x / 30.0 * math.pi)) * 2.0 / 3.0
    return ret


def _gcj02_offset(lat: Any, lon: Any, m: Any = math) -> tuple[Any, Any]:
    """The (dlat, dlon) GCJ-02 adds to a WGS-84 point inside China."""
    dlat = _transform_lat(lon - 105.0, lat - 35.0, m)
    dlon = _transform_lon(lon - 105.0, lat - 35.0, m)
    rad_lat = lat / 180.0 * math.pi
    magic = 1.0 - _EE * m.sin(rad_lat) ** 2
    sqrt_magic = m.sqrt(magic)
    dlat = (dlat * 180.0) / ((_A * (1.0 - _EE)) / (magic * sqrt_magic) * math.pi)
    dlon = (dlon * 180.0) / (_A / sqrt_magic * m.cos(rad_lat) * math.pi)
    return dlat, dlon


def wgs84_to_gcj02(lat: float, lon: float) -> tuple[float, float]:
    """WGS-84 → GCJ-02. Points outside China are returned unchanged."""
    if out_of_china(lat, lon):
        return lat, lon
    dlat, dlon = _gcj02_offset(lat, lon)
    return lat + dlat, lon + dlon


def _gcj02_unbounded(lat: float, lon: float) -> tuple[float, float]:
    # The forward shift without the bounding-box test: the iterate may stray just outside the box near
    # its edge, and the inverse must stay continuous there.
    dlat, dlon = _gcj02_offset(lat, lon)
    return lat + dlat, lon + dlon


def _invert(forward: _Forward, lat: float, lon: float, start: tuple[float, float]) -> tuple[float, float]:
    """Solve forward(p) == (lat, lon) for p by fixed-point iteration from `start`.

    The datum shifts are smooth and their derivatives tiny (|J - I| << 1), so p ← p + (target − forward(p))
    is a contraction and gains several digits per step; it converges in 2–4 steps in practice.
    """
    p_lat, p_lon = start
    for _ in range(_MAX_ITERATIONS):
        f_lat, f_lon = forward(p_lat, p_lon)
        d_lat, d_lon = lat - f_lat, lon - f_lon
        p_lat += d_lat
        p_lon += d_lon
        if abs(d_lat) < _TOLERANCE_DEG and abs(d_lon) < _TOLERANCE_DEG:
            break
    return p_lat, p_lon


def gcj02_to_wgs84(lat: float, lon: float) -> tuple[float, float]:
    """GCJ-02 → WGS-84, exact to well under 0.01 m (iterative). Points outside China are unchanged."""
    if out_of_china(lat, lon):
        return lat, lon
    # The one-step inverse (subtract the offset measured at the GCJ-02 point) is the starting guess.
    dlat, dlon = _gcj02_offset(lat, lon)
    return _invert(_gcj02_unbounded, lat, lon, (lat - dlat, lon - dlon))


def gcj02_to_wgs84_many(
    lat: np.ndarray, lon: np.ndarray, tolerance_deg: float = _TOLERANCE_DEG
) -> tuple[np.ndarray, np.ndarray]:
    """`gcj02_to_wgs84` of every point of two arrays: the same formulas and iteration, and by default the
    same tolerance (a coarser one saves iterations when the result is rounded anyway)."""
    import numpy as np

    lat = np.asarray(lat, dtype=np.float64)
    lon = np.asarray(lon, dtype=np.float64)
    # The `out_of_china` box, element by element: points outside it stay as they are.
    inside = (lon >= 72.004) & (lon <= 137.8347) & (lat >= 0.8293) & (lat <= 55.8271)
    out_lat, out_lon = lat.copy(), lon.copy()
    todo = np.flatnonzero(inside)
    t_lat, t_lon = lat[todo], lon[todo]
    dlat, dlon = _gcj02_offset(t_lat, t_lon, np)
    p_lat, p_lon = t_lat - dlat, t_lon - dlon
    for _ in range(_MAX_ITERATIONS):
        if not len(todo):
            break
        f_lat, f_lon = _gcj02_offset(p_lat, p_lon, np)
        d_lat, d_lon = t_lat - (p_lat + f_lat), t_lon - (p_lon + f_lon)
        p_lat += d_lat
        p_lon += d_lon
        # Points that converged are final; the others iterate on.
        done = (np.abs(d_lat) < tolerance_deg) & (np.abs(d_lon) < tolerance_deg)
        out_lat[todo[done]], out_lon[todo[done]] = p_lat[done], p_lon[done]
        keep = ~done
        todo, t_lat, t_lon, p_lat, p_lon = todo[keep], t_lat[keep], t_lon[keep], p_lat[keep], p_lon[keep]
    out_lat[todo], out_lon[todo] = p_lat, p_lon
    return out_lat, out_lon


def gcj02_to_bd09(lat: float, lon: float) -> tuple[float, float]:
    """GCJ-02 → BD-09 (Baidu's published formula)."""
    z = math.hypot(lon, lat) + 0.00002 * math.sin(lat * _X_PI)
    theta = math.atan2(lat, lon) + 0.000003 * math.cos(lon * _X_PI)
    return z * math.sin(theta) + 0.006, z * math.cos(theta) + 0.0065


def _bd09_to_gcj02_one_step(lat: float, lon: float) -> tuple[float, float]:
    x = lon - 0.0065
    y = lat - 0.006
    z = math.hypot(x, y) - 0.00002 * math.sin(y * _X_PI)
    theta = math.atan2(y, x) - 0.000003 * math.cos(x * _X_PI)
    return z * math.sin(theta), z * math.cos(theta)


def bd09_to_gcj02(lat: float, lon: float) -> tuple[float, float]:
    """BD-09 → GCJ-02, refined iteratively from Baidu's approximate inverse (which is up to 0.2 m off)."""
    return _invert(gcj02_to_bd09, lat, lon, _bd09_to_gcj02_one_step(lat, lon))


def bd09_to_wgs84(lat: float, lon: float) -> tuple[float, float]:
    """BD-09 → WGS-84 (through GCJ-02)."""
    return gcj02_to_wgs84(*bd09_to_gcj02(lat, lon))


def wgs84_to_bd09(lat: float, lon: float) -> tuple[float, float]:
    """WGS-84 → BD-09 (through GCJ-02)."""
    return gcj02_to_bd09(*wgs84_to_gcj02(lat, lon))


def to_wgs84(lat: float, lon: float, crs: CRS | str) -> tuple[float, float]:
    """Convert a point given in `crs` to WGS-84 (identity for WGS-84)."""
    crs = CRS(crs)
    if crs is CRS.WGS84:
        return lat, lon
    if crs is CRS.GCJ02:
        return gcj02_to_wgs84(lat, lon)
    return bd09_to_wgs84(lat, lon)
