"""find_nearest_open must equal a brute-force geodesic scan, always."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.services.search import SearchService, brute_force_nearest_open
from domain.values import AMENITY_KEYS, GeoPoint
from storage.spatial import IndexEntry, SpatialIndex

HOURS = [
    "24/7",
    "Mo-Su 08:00-20:00",
    "Mo-Fr 09:00-18:00; PH off",
    "Mo-Su 22:00-06:00",
    "Mo-Su 08:00-18:00; PH 09:00-16:00",
    "Mo-Fr 08:30-17:30; Sa,Su 09:00-17:00",
    "",
]
STATUSES = ["active", "active", "active", "temporarily_closed", "closed"]
# Centres across China, its far north and far south included.
CENTRES = [(52.97, 122.54), (18.25, 109.51), (23.13, 113.26), (43.83, 87.62), (29.65, 91.13), (39.90, 116.40)]


def station_strategy(centre: tuple[float, float]) -> st.SearchStrategy[tuple]:
    lat0, lon0 = centre
    return st.tuples(
        st.floats(lat0 - 0.3, lat0 + 0.3),
        st.floats(lon0 - 0.3, lon0 + 0.3),
        st.sampled_from(STATUSES),
        st.lists(st.sampled_from(AMENITY_KEYS[:5]), max_size=4, unique=True),
        st.sampled_from(HOURS),
        st.sampled_from([None, None, "Asia/Urumqi"]),
    )


@st.composite
def scenario(draw: st.DrawFn) -> tuple:
    centre = draw(st.sampled_from(CENTRES))
    raw = draw(st.lists(station_strategy(centre), min_size=0, max_size=60))
    # Co-located stations exercise the tie-break by code.
    if raw and draw(st.booleans()):
        raw.append(raw[0])
    entries = [
        IndexEntry(i + 1, f"C{draw(st.integers(0, 99)):02d}{i:03d}", lat, lon, status, tuple(am), hours, tz)
        for i, (lat, lon, status, am, hours, tz) in enumerate(raw)
    ]
    qlat = draw(st.floats(centre[0] - 0.4, centre[0] + 0.4))
    qlon = draw(st.floats(centre[1] - 0.4, centre[1] + 0.4))
    k = draw(st.integers(1, 7))
    wanted = draw(st.lists(st.sampled_from(AMENITY_KEYS[:5]), max_size=2, unique=True))
    at = datetime(2024, 1, 1, tzinfo=UTC) + timedelta(minutes=draw(st.integers(0, 3 * 365 * 24 * 60)))
    include_closed = draw(st.booleans())
    return entries, GeoPoint(qlat, qlon), k, wanted, at, include_closed


def reference(
    entries: list[IndexEntry], point: GeoPoint, k: int, wanted: list[str], at: datetime, include_closed: bool
) -> list[tuple[str, float]]:
    rows = [(e.code, e.lat, e.lon, e.status, e.amenities, e.opening_hours, e.timezone) for e in entries]
    return brute_force_nearest_open(rows, point, k, wanted, at, include_closed=include_closed)


def assert_same(got: list, expected: list[tuple[str, float]]) -> None:
    assert [h.code for h in got] == [code for code, _ in expected]
    for hit, (_, distance) in zip(got, expected, strict=True):
        assert hit.distance_m == pytest.approx(distance, abs=1e-6)


#: The ways a search finds candidates: the whole index; the k-d tree of the stations open at the instant,
#: thinned by the amenity filter; or a tree of the stations open with the amenities asked for. The trees are
#: built synchronously here, for every instant and filter, however many stations they hold.
MODES = {
    "whole index": {"subset_share": 0.0},
    "open-now subset": {"subset_share": 1.0, "subset_after": 1 << 30, "background": False},
    "subset per filter": {"subset_share": 1.0, "subset_after": 1, "background": False},
}


@pytest.mark.parametrize("mode", MODES)
@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenario())
def test_find_nearest_open_equals_brute_force_geodesic_scan(mode: str, case: tuple) -> None:
    entries, point, k, wanted, at, include_closed = case
    search = SearchService(SpatialIndex(entries), **MODES[mode])
    got = search.find_nearest_open(point, k, wanted, at, include_closed)
    assert_same(got, reference(entries, point, k, wanted, at, include_closed))


@pytest.mark.parametrize("mode", MODES)
@settings(max_examples=100, deadline=None)
@given(scenario(), st.data())
def test_patched_index_answers_like_a_fresh_one(mode: str, case: tuple, data: st.DataObject) -> None:
    entries, point, k, wanted, at, include_closed = case
    index = SpatialIndex(entries)
    search = SearchService(index, **MODES[mode])
    # A search before the patches: the open-now subset, when there is one, predates them and must catch
    # up from the index's log of touched slots.
    search.find_nearest_open(point, k, wanted, at, include_closed)
    current = {e.id: e for e in entries}
    for entry in list(entries)[: data.draw(st.integers(0, len(entries)))]:
        change = data.draw(st.sampled_from(["move", "status", "remove", "hours"]))
        if change == "move":
            moved = IndexEntry(
                entry.id,
                entry.code,
                point.lat + data.draw(st.floats(-0.01, 0.01)),
                point.lon,
                "active",
                entry.amenities,
                "24/7",
                None,
            )
            index.upsert(moved)
            current[entry.id] = moved
        elif change == "status":
            changed = IndexEntry(
                entry.id,
                entry.code,
                entry.lat,
                entry.lon,
                "active",
                entry.amenities,
                entry.opening_hours,
                entry.timezone,
            )
            index.upsert(changed)
            current[entry.id] = changed
        elif change == "hours":
            changed = IndexEntry(
                entry.id,
                entry.code,
                entry.lat,
                entry.lon,
                entry.status,
                entry.amenities,
                "Mo-Su 00:00-12:00",
                entry.timezone,
            )
            index.upsert(changed)
            current[entry.id] = changed
        else:
            index.remove(entry.id)
            del current[entry.id]
    expected = reference(list(current.values()), point, k, wanted, at, include_closed)
    assert_same(search.find_nearest_open(point, k, wanted, at, include_closed), expected)
    index.compact()
    assert_same(search.find_nearest_open(point, k, wanted, at, include_closed), expected)


def test_rider_sees_only_open_stations_sorted_by_distance() -> None:
    at = datetime(2025, 10, 2, 12, 0, tzinfo=UTC)  # 20:00 in Guangzhou on a National Day holiday
    entries = [
        IndexEntry(
            1, "A", 23.1300, 113.2600, "active", ("drinking_water",), "Mo-Fr 09:00-18:00; PH off", None
        ),
        IndexEntry(2, "B", 23.1310, 113.2600, "active", ("drinking_water",), "24/7", None),
        IndexEntry(3, "C", 23.1400, 113.2600, "active", ("toilet",), "Mo-Su 08:00-22:00", None),
        IndexEntry(4, "D", 23.1305, 113.2600, "temporarily_closed", ("drinking_water",), "24/7", None),
        IndexEntry(5, "E", 23.1500, 113.2600, "active", ("drinking_water", "toilet"), "", None),
    ]
    search = SearchService(SpatialIndex(entries))
    point = GeoPoint(23.13, 113.26)
    assert [h.code for h in search.find_nearest_open(point, 5, (), at)] == ["B", "C"]
    assert [h.code for h in search.find_nearest_open(point, 5, ["toilet"], at)] == ["C"]
    everything = search.find_nearest_open(point, 5, (), at, include_closed=True)
    assert [h.code for h in everything] == ["A", "D", "B", "C", "E"]
    assert [h.open_now for h in everything] == [False, False, True, True, None]


def test_widening_finds_a_rare_amenity_far_away() -> None:
    entries = [
        IndexEntry(i, f"N{i:05d}", 23.0 + i * 1e-4, 113.0, "active", ("drinking_water",), "24/7", None)
        for i in range(1, 3000)
    ]
    entries.append(IndexEntry(5000, "FAR", 25.0, 113.0, "active", ("legal_aid",), "24/7", None))
    search = SearchService(SpatialIndex(entries))
    hits = search.find_nearest_open(GeoPoint(23.0, 113.0), 3, ["legal_aid"], datetime(2025, 1, 6, tzinfo=UTC))
    assert [h.code for h in hits] == ["FAR"]
    assert hits[0].distance_m == pytest.approx(221_400, rel=0.01)


def test_empty_index_and_unknown_amenity() -> None:
    from domain.values import UnknownAmenity

    search = SearchService(SpatialIndex())
    assert search.find_nearest_open(GeoPoint(0, 0), 5, (), datetime(2025, 1, 1, tzinfo=UTC)) == []
    with pytest.raises(UnknownAmenity):
        search.find_nearest_open(GeoPoint(0, 0), 5, ["beer"], datetime(2025, 1, 1, tzinfo=UTC))
    with pytest.raises(ValueError):
        search.find_nearest_open(GeoPoint(0, 0), 5, (), datetime(2025, 1, 1))


def test_a_reloaded_index_with_other_expressions_is_evaluated_with_its_own_hours() -> None:
    at = datetime(2025, 1, 6, 4, 0, tzinfo=UTC)  # Monday noon in China
    first = [IndexEntry(1, "A", 23.13, 113.26, "active", (), "Mo-Su 00:00-01:00", None)]
    search = SearchService(SpatialIndex(first))
    assert search.find_nearest_open(GeoPoint(23.13, 113.26), 1, (), at) == []
    # The new index numbers its expressions differently: "24/7" is now reference 0.
    search.index = SpatialIndex([IndexEntry(2, "B", 23.13, 113.26, "active", (), "24/7", None)])
    assert [h.code for h in search.find_nearest_open(GeoPoint(23.13, 113.26), 1, (), at)] == ["B"]


def _night_network(n: int = 2000) -> list[IndexEntry]:
    """Stations on a grid around Guangzhou; one in ten open at night."""
    return [
        IndexEntry(
            i,
            f"G{i:05d}",
            23.0 + (i % 50) * 0.002,
            113.0 + (i // 50) * 0.002,
            "active",
            ("drinking_water",),
            "24/7" if i % 10 == 0 else "Mo-Su 08:00-20:00",
            None,
        )
        for i in range(1, n + 1)
    ]


NIGHT = datetime(2025, 6, 17, 19, 0, tzinfo=UTC)  # 03:00 in China


def _codes(search: SearchService, point: GeoPoint, k: int = 5) -> list[str]:
    return [h.code for h in search.find_nearest_open(point, k, (), NIGHT)]


def test_few_open_stations_get_a_tree_of_their_own_built_in_the_background() -> None:
    entries = _night_network()
    search = SearchService(SpatialIndex(entries), subset_share=0.3)
    point = GeoPoint(23.03, 113.03)
    expected = [code for code, _ in reference(entries, point, 5, [], NIGHT, False)]
    # The first search answers from the whole index and starts the build.
    assert _codes(search, point) == expected
    assert search._building is not None
    search._building.join(10)
    subset = search._subsets[(False, 0)]
    assert subset is not None and len(subset) == 200
    assert _codes(search, point) == expected
    # In the daytime most stations are open: no subset is used, the answer is still right.
    day = datetime(2025, 6, 18, 4, 0, tzinfo=UTC)
    hits = search.find_nearest_open(point, 5, (), day)
    assert [h.code for h in hits] == [code for code, _ in reference(entries, point, 5, [], day, False)]


def test_a_filter_asked_for_often_gets_a_tree_of_its_own() -> None:
    # By day most stations are open, but few have both amenities: one in twenty here.
    entries = [
        replace(e, amenities=("ebike_charging", "toilet") if e.id % 20 == 0 else (), opening_hours="24/7")
        for e in _night_network()
    ]
    search = SearchService(SpatialIndex(entries), subset_share=0.3, subset_after=3)
    day = datetime(2025, 6, 18, 4, 0, tzinfo=UTC)
    wanted = ("ebike_charging", "toilet")
    point = GeoPoint(23.03, 113.03)
    expected = [code for code, _ in reference(entries, point, 5, list(wanted), day, False)]

    def codes() -> list[str]:
        return [h.code for h in search.find_nearest_open(point, 5, wanted, day)]

    # Asked for once or twice, a filter thins the whole index out; from the third time, a tree is built.
    assert codes() == expected and codes() == expected
    assert search._building is None
    assert codes() == expected
    assert search._building is not None
    search._building.join(10)
    subset = search._subsets[(False, search._wanted_mask(wanted))]
    assert len(subset) == 100
    assert codes() == expected
    # A tree for the stations open now is not worth it by day: most are.
    assert (False, 0) not in search._subsets


def test_subset_trees_hold_no_more_stations_than_the_index() -> None:
    entries = [
        replace(e, amenities=AMENITY_KEYS[: 1 + e.id % 3], opening_hours="24/7") for e in _night_network(300)
    ]
    search = SearchService(SpatialIndex(entries), subset_share=1.0, subset_after=1, background=False)
    point = GeoPoint(23.03, 113.03)
    for wanted in (AMENITY_KEYS[:1], AMENITY_KEYS[:2], AMENITY_KEYS[:3], ()):
        hits = search.find_nearest_open(point, 5, wanted, NIGHT, include_closed=True)
        expected = reference(entries, point, 5, list(wanted), NIGHT, True)
        assert [h.code for h in hits] == [code for code, _ in expected]
        assert sum(len(s) for s in search._subsets.values()) <= 300
    # The newest stays; the oldest went first.
    assert (True, 0) in search._subsets and (
        True,
        search._wanted_mask(AMENITY_KEYS[:1]),
    ) not in search._subsets


def test_the_open_subset_catches_up_with_patches_made_while_it_was_built() -> None:
    entries = _night_network()
    index = SpatialIndex(entries)
    search = SearchService(index, subset_share=1.0, background=False)
    point = GeoPoint(23.0, 113.0)
    table = search._open_by_ref(NIGHT.timestamp(), search._hours_table())
    # As a builder thread would: the log position first, then the columns, and a patch in between.
    touched_from = len(index.touched)
    nearest_day_only = IndexEntry(2, "G00002", entries[1].lat, entries[1].lon, "active", (), "24/7", None)
    index.upsert(nearest_day_only)  # now open at night: not in the member slots below, but in the log
    moved = IndexEntry(9999, "NEW", 23.0, 113.0001, "active", (), "24/7", None)
    index.upsert(moved)  # a new station: the overlay
    index.remove(10)  # a member that goes away
    member = (index.status[: index.slot_count] == 0) & table[index.hours_ref[: index.slot_count]]
    member[index.slot_of(2)] = False  # what the builder read before the patch
    member[index.slot_of(9999)] = False
    search._subsets = {(False, 0): index.subset(np.flatnonzero(member), key=table, touched_from=touched_from)}
    current = [e for e in entries if e.id not in (2, 10)] + [nearest_day_only, moved]
    expected = [code for code, _ in reference(current, point, 5, [], NIGHT, False)]
    assert "NEW" in expected and "G00002" in expected and "G00010" not in expected
    assert _codes(search, point) == expected
    assert search._subsets[(False, 0)].usable_for(index)
    # A compaction renumbers the slots: the subset is dropped and rebuilt.
    index.compact()
    assert not search._subsets[(False, 0)].usable_for(index)
    assert _codes(search, point) == expected
    assert search._subsets[(False, 0)].usable_for(index)


# Opening tables (which expressions are open in a window) are interned: the same content is the same array,
# so the tree of the stations open at night is found again by identity the next night, and a tree kept for
# the night costs the day's searches no comparison of tables.
DAY = NIGHT + timedelta(hours=8)
TABLES_POINT = GeoPoint(23.03, 113.03)


def _expected(entries: list[IndexEntry], at: datetime) -> list[str]:
    return [code for code, _ in reference(entries, TABLES_POINT, 5, [], at, False)]


def _codes_at(search: SearchService, at: datetime) -> list[str]:
    return [hit.code for hit in search.find_nearest_open(TABLES_POINT, 5, (), at)]


def test_the_night_tree_serves_the_next_night_and_the_day_searches_the_whole_index() -> None:
    entries = _night_network(1000)
    search = SearchService(SpatialIndex(entries), background=False)
    assert _codes_at(search, NIGHT) == _expected(entries, NIGHT)
    night_tree = search._subsets[(False, 0)]
    night_table = night_tree.key
    assert _codes_at(search, DAY) == _expected(entries, DAY)
    day_table = search._open_by_ref(DAY.timestamp(), search._hours_table())
    assert day_table is not night_table
    assert search._current_subset(day_table, 0) is None  # most stations are open: no tree by day
    assert _codes_at(search, NIGHT + timedelta(days=1)) == _expected(entries, NIGHT)
    assert search._open_by_ref((NIGHT + timedelta(days=1)).timestamp(), search._hours_table()) is night_table
    assert search._subsets[(False, 0)] is night_tree  # not rebuilt


def test_a_reloaded_index_gets_tables_of_its_own() -> None:
    entries = _night_network(200)
    search = SearchService(SpatialIndex(entries), background=False)
    before = search._open_by_ref(NIGHT.timestamp(), search._hours_table())
    # Other expressions, open and closed at night like the first index's: the same bytes, other meaning.
    reloaded = [
        replace(e, opening_hours="Mo-Su 09:00-17:00" if e.id % 10 else "Mo-Su 20:00-06:00") for e in entries
    ]
    search.index = SpatialIndex(reloaded)
    after = search._open_by_ref(NIGHT.timestamp(), search._hours_table())
    assert after.tobytes() == before.tobytes()
    assert after is not before
    assert _codes_at(search, NIGHT) == _expected(reloaded, NIGHT)
