"""WGS-84 ↔ GCJ-02 ↔ BD-09 conversions: published vectors, exact inverses, and why the iteration matters."""

from __future__ import annotations

import pytest
from geopy.distance import geodesic
from hypothesis import given, settings
from hypothesis import strategies as st

from domain import coords
from domain.coords import (
    bd09_to_gcj02,
    bd09_to_wgs84,
    gcj02_to_bd09,
    gcj02_to_wgs84,
    out_of_china,
    to_wgs84,
    wgs84_to_bd09,
    wgs84_to_gcj02,
)
from domain.values import CRS

#: WGS-84 (lat, lon) of places spread over China, from the far north to Hainan and from Xinjiang to the coast.
CHINA_POINTS: dict[str, tuple[float, float]] = {
    "Mohe": (52.97, 122.54),
    "Sanya": (18.25, 109.51),
    "Urumqi": (43.8256, 87.6168),
    "Kashgar": (39.4704, 75.9898),
    "Guangzhou": (23.1291, 113.2644),
    "Shanghai": (31.2304, 121.4737),
    "Lhasa": (29.6520, 91.1721),
    "Beijing": (39.9042, 116.4074),
    "Harbin": (45.8038, 126.5350),
    "Fuyuan": (48.3646, 134.2896),
    "Chengdu": (30.5728, 104.0668),
    "Kunming": (24.8801, 102.8329),
    "Xining": (36.6171, 101.7782),
    "Hohhot": (40.8424, 111.7490),
    "Fuzhou": (26.0745, 119.2965),
    "Guyuan": (36.0160, 106.2425),
    "Wuhan": (30.5928, 114.3055),
    "Xian": (34.3416, 108.9398),
    "Hefei": (31.8206, 117.2272),
    "Shenzhen": (22.5431, 114.0579),
    "Zhanjiang": (21.2707, 110.3594),
}

_CHINA_LAT = st.floats(min_value=18.0, max_value=53.5)
_CHINA_LON = st.floats(min_value=73.5, max_value=135.0)


def metres(a: tuple[float, float], b: tuple[float, float]) -> float:
    return float(geodesic(a, b).m)


def one_step_gcj02_to_wgs84(lat: float, lon: float) -> tuple[float, float]:
    """The popular approximation: subtract the offset measured at the GCJ-02 point itself."""
    dlat, dlon = coords._gcj02_offset(lat, lon)
    return lat - dlat, lon - dlon


@pytest.mark.parametrize(
    ("wgs", "gcj"),
    [
        # Published test vectors of the eviltransform implementations (Shanghai, Shenzhen, Beijing).
        ((31.1774276, 121.5272106), (31.17530398364597, 121.531541859215)),
        ((22.543847, 113.912316), (22.540796131694766, 113.9171764808363)),
        ((39.911954, 116.377817), (39.91334545536069, 116.38404722455657)),
    ],
)
def test_wgs84_to_gcj02_matches_published_vectors(wgs: tuple[float, float], gcj: tuple[float, float]) -> None:
    assert wgs84_to_gcj02(*wgs) == pytest.approx(gcj, abs=1e-12)


@pytest.mark.parametrize("name", sorted(CHINA_POINTS))
def test_gcj02_to_wgs84_inverts_to_under_a_centimetre(name: str) -> None:
    truth = CHINA_POINTS[name]
    assert metres(gcj02_to_wgs84(*wgs84_to_gcj02(*truth)), truth) < 0.01


@pytest.mark.parametrize("name", sorted(CHINA_POINTS))
def test_bd09_to_wgs84_inverts_to_under_a_centimetre(name: str) -> None:
    truth = CHINA_POINTS[name]
    assert metres(bd09_to_wgs84(*wgs84_to_bd09(*truth)), truth) < 0.01


def test_gcj02_offset_is_hundreds_of_metres_so_conversion_is_not_optional() -> None:
    beijing = CHINA_POINTS["Beijing"]
    assert 100 < metres(wgs84_to_gcj02(*beijing), beijing) < 1000
    assert 100 < metres(wgs84_to_bd09(*beijing), beijing) < 2000


def test_one_step_inverse_is_more_than_half_a_metre_off_where_iteration_is_exact() -> None:
    # Scan a grid over the GCJ-02 area: the one-step inverse errs by metres in places (worst in the
    # north-east), the iterative one nowhere by more than a millimetre.
    worst_one_step, worst_point = 0.0, (0.0, 0.0)
    for lat10 in range(185, 535, 10):
        for lon10 in range(740, 1350, 10):
            truth = (lat10 / 10, lon10 / 10)
            gcj = wgs84_to_gcj02(*truth)
            error = metres(one_step_gcj02_to_wgs84(*gcj), truth)
            if error > worst_one_step:
                worst_one_step, worst_point = error, truth
    assert worst_one_step > 0.5
    assert metres(gcj02_to_wgs84(*wgs84_to_gcj02(*worst_point)), worst_point) < 0.001


@settings(max_examples=300, deadline=None)
@given(lat=_CHINA_LAT, lon=_CHINA_LON)
def test_gcj02_round_trip_within_five_centimetres(lat: float, lon: float) -> None:
    assert metres(gcj02_to_wgs84(*wgs84_to_gcj02(lat, lon)), (lat, lon)) < 0.05


@settings(max_examples=200, deadline=None)
@given(lat=_CHINA_LAT, lon=_CHINA_LON)
def test_bd09_gcj02_round_trip_within_five_centimetres(lat: float, lon: float) -> None:
    assert metres(bd09_to_gcj02(*gcj02_to_bd09(lat, lon)), (lat, lon)) < 0.05


@pytest.mark.parametrize(
    ("lat", "lon", "outside"),
    [
        (39.9042, 116.4074, False),  # Beijing
        (52.97, 122.54, False),  # Mohe
        (51.5074, -0.1278, True),  # London
        (35.6762, 139.6503, True),  # Tokyo, east of the box
        (-33.8688, 151.2093, True),  # Sydney
        (56.0, 100.0, True),  # north of the box
    ],
)
def test_out_of_china_uses_the_usual_bounding_box(lat: float, lon: float, outside: bool) -> None:
    assert out_of_china(lat, lon) is outside


def test_points_outside_china_are_left_unchanged() -> None:
    london = (51.5074, -0.1278)
    assert wgs84_to_gcj02(*london) == london
    assert gcj02_to_wgs84(*london) == london


def test_to_wgs84_dispatches_on_crs() -> None:
    truth = CHINA_POINTS["Guangzhou"]
    assert to_wgs84(*truth, CRS.WGS84) == truth
    assert metres(to_wgs84(*wgs84_to_gcj02(*truth), CRS.GCJ02), truth) < 0.01
    assert metres(to_wgs84(*wgs84_to_bd09(*truth), CRS.BD09), truth) < 0.01
    assert metres(to_wgs84(*wgs84_to_gcj02(*truth), "gcj02"), truth) < 0.01
