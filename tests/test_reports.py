"""Reports, moderation, roles, lifecycle and ratings against real SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest

from bot.app import Core, open_core
from bot.config import Settings
from bot.services.ratings import InvalidRating
from bot.services.reports import AlreadyDecided, InvalidReport, ReportTooSoon
from bot.services.roles import InvalidGrant, NotAllowed
from bot.services.station_admin import InvalidEdit
from domain.values import GeoPoint, StationRecord, StationStatus

AT = datetime(2025, 6, 3, 4, 0, tzinfo=UTC)
GZ = (23.13, 113.26)
STAFF_GZ, STAFF_SZ, STAFF_GD, VOLUNTEER, RIDER, ADMIN = 11, 12, 13, 14, 15, 16


@pytest.fixture
async def core(settings: Settings) -> AsyncIterator[Core]:
    async with open_core(settings) as core:
        await core.stations.save_records(
            [
                StationRecord(
                    code="GZ1",
                    name="广州驿站",
                    lat=GZ[0],
                    lon=GZ[1],
                    region="440106",
                    opening_hours="24/7",
                    amenities=("drinking_water", "toilet"),
                ),
                StationRecord(
                    code="GZ2",
                    name="广州二号",
                    lat=GZ[0] + 0.01,
                    lon=GZ[1],
                    region="440106",
                    opening_hours="24/7",
                    amenities=("drinking_water",),
                ),
                StationRecord(
                    code="SZ1", name="深圳驿站", lat=22.54, lon=114.05, region="440304", opening_hours="24/7"
                ),
            ]
        )
        await core.reload_index()
        await core.roles.grant(STAFF_GZ, "staff", "4401")
        await core.roles.grant(STAFF_SZ, "staff", "4403")
        await core.roles.grant(STAFF_GD, "staff", "44")
        await core.roles.grant(VOLUNTEER, "volunteer")
        await core.roles.grant(ADMIN, "admin")
        yield core


async def sid(core: Core, code: str) -> int:
    return (await core.stations.get(code)).id


def nearest(core: Core) -> list[str]:
    return [h.code for h in core.search.find_nearest_open(GeoPoint(*GZ), 2, (), AT)]


async def test_reports_about_the_same_problem_merge_into_one_case_with_a_count(core: Core) -> None:
    station = await sid(core, "GZ1")
    first = await core.reports.submit(101, station, "amenity_broken", AT, detail="toilet")
    second = await core.reports.submit(102, station, "amenity_broken", AT, detail="toilet")
    other = await core.reports.submit(103, station, "amenity_broken", AT, detail="drinking_water")
    assert first.case_id == second.case_id != other.case_id
    assert (first.reporters, second.reporters, second.new_case) == (1, 2, False)


async def test_one_person_reports_one_station_at_most_once_an_hour(core: Core) -> None:
    station = await sid(core, "GZ1")
    await core.reports.submit(101, station, "other", AT, text="门锁了")
    with pytest.raises(ReportTooSoon):
        await core.reports.submit(101, station, "closed_now", AT + timedelta(minutes=59))
    later = await core.reports.submit(101, station, "other", AT + timedelta(minutes=61), text="还是锁着")
    assert later.reporters == 1  # the same person does not count twice


async def test_a_report_within_300_m_is_on_site(core: Core) -> None:
    station = await sid(core, "GZ1")
    near = await core.reports.submit(
        101, station, "closed_now", AT, reporter_point=GeoPoint(GZ[0] + 0.002, GZ[1])
    )
    far = await core.reports.submit(
        102, station, "closed_now", AT, reporter_point=GeoPoint(GZ[0] + 0.004, GZ[1])
    )
    assert near.on_site and not far.on_site


@pytest.mark.parametrize(
    "kind,detail,text,reason",
    [
        ("wrong_hours", "Mo-Fx 09:00", "", "expected"),
        ("wrong_hours", "", "", "missing"),
        ("amenity_broken", "beer", "", "unknown amenity"),
        ("amenity_broken", "wifi", "", "does not list"),
        ("wrong_location", "91,113", "", "invalid"),
        ("other", "", "", "describe"),
        ("other", "", "x" * 1001, "longer than"),
        ("teleport", "", "", "unknown problem type"),
    ],
)
async def test_bad_reports_are_refused_with_a_reason_and_change_nothing(
    core: Core, kind: str, detail: str, text: str, reason: str
) -> None:
    with pytest.raises(InvalidReport) as error:
        await core.reports.submit(101, await sid(core, "GZ1"), kind, AT, detail=detail, text=text)
    assert reason in error.value.reason
    cases, total = await core.reports.open_cases(await core.roles.access(ADMIN))
    assert total == 0 and cases == []


async def test_three_people_reporting_closed_hide_the_station_until_staff_decide(core: Core) -> None:
    station = await sid(core, "GZ1")
    for reporter in (101, 102):
        result = await core.reports.submit(reporter, station, "closed_now", AT)
        assert not result.auto_hidden
    assert nearest(core)[0] == "GZ1"
    third = await core.reports.submit(103, station, "closed_permanently", AT + timedelta(hours=2))
    assert third.auto_hidden
    assert "GZ1" not in nearest(core)
    history = await core.station_admin.history(station, await core.roles.access(STAFF_GZ))
    assert history[0].action == "auto_hide" and history[0].actor_id is None
    # Staff reject the closure: the station comes back.
    cases, _ = await core.reports.open_cases(await core.roles.access(STAFF_GZ))
    for case in cases:
        await core.reports.decide(
            case.id, "reject", await core.roles.access(STAFF_GZ), AT + timedelta(hours=3)
        )
    assert nearest(core)[0] == "GZ1"
    assert (await core.stations.get("GZ1")).status is StationStatus.ACTIVE


async def test_reports_spread_over_more_than_a_day_do_not_trigger_the_safety_net(core: Core) -> None:
    station = await sid(core, "GZ1")
    for n, reporter in enumerate((101, 102, 103)):
        result = await core.reports.submit(reporter, station, "closed_now", AT + timedelta(hours=13 * n))
    assert not result.auto_hidden


@pytest.mark.parametrize(
    "kind,detail,check",
    [
        ("closed_now", "", lambda s: s.status is StationStatus.TEMPORARILY_CLOSED),
        ("closed_permanently", "", lambda s: s.status is StationStatus.CLOSED),
        ("amenity_broken", "toilet", lambda s: s.amenities == ("drinking_water",)),
        ("wrong_location", "23.131,113.261", lambda s: (s.lat, s.lon) == (23.131, 113.261)),
        ("wrong_hours", "Mo-Fr 09:00-17:00", lambda s: s.opening_hours == "Mo-Fr 09:00-17:00"),
    ],
)
async def test_approving_applies_the_change_with_an_audit_entry(
    core: Core, kind: str, detail: str, check
) -> None:  # type: ignore[no-untyped-def]
    station = await sid(core, "GZ1")
    submitted = await core.reports.submit(101, station, kind, AT, detail=detail)
    staff = await core.roles.access(STAFF_GZ)
    result = await core.reports.decide(submitted.case_id, "approve", staff, AT)
    assert result.reporters == (101,)
    after = await core.stations.get("GZ1")
    assert check(after)
    entry = (await core.station_admin.history(station, staff))[0]
    assert entry.action == f"approve_{kind}" and entry.actor_id == STAFF_GZ
    assert entry.before != entry.after
    if kind in ("closed_now", "closed_permanently"):
        assert "GZ1" not in nearest(core)


async def test_rejecting_leaves_the_station_as_it_was(core: Core) -> None:
    station = await sid(core, "GZ1")
    submitted = await core.reports.submit(101, station, "closed_now", AT)
    await core.reports.decide(submitted.case_id, "reject", await core.roles.access(STAFF_GD), AT)
    assert (await core.stations.get("GZ1")).status is StationStatus.ACTIVE
    assert nearest(core)[0] == "GZ1"
    with pytest.raises(AlreadyDecided):
        await core.reports.decide(submitted.case_id, "approve", await core.roles.access(STAFF_GD), AT)


async def test_two_staff_approving_at_the_same_moment_apply_it_exactly_once(core: Core) -> None:
    station = await sid(core, "GZ1")
    submitted = await core.reports.submit(101, station, "amenity_broken", AT, detail="toilet")
    deciders = [
        await core.roles.access(STAFF_GZ),
        await core.roles.access(STAFF_GD),
        await core.roles.access(ADMIN),
    ]
    outcomes = await asyncio.gather(
        *(core.reports.decide(submitted.case_id, "approve", who, AT) for who in deciders),
        return_exceptions=True,
    )
    assert sum(not isinstance(o, Exception) for o in outcomes) == 1
    assert sum(isinstance(o, AlreadyDecided) for o in outcomes) == 2
    history = await core.station_admin.history(station, deciders[0])
    assert [e.action for e in history] == ["approve_amenity_broken"]


async def test_privileged_actions_are_refused_outside_role_and_region(core: Core) -> None:
    station = await sid(core, "GZ1")
    submitted = await core.reports.submit(101, station, "closed_now", AT)
    for user in (RIDER, VOLUNTEER, STAFF_SZ):
        access = await core.roles.access(user)
        with pytest.raises(NotAllowed):
            await core.reports.decide(submitted.case_id, "approve", access, AT)
        with pytest.raises(NotAllowed):
            await core.reports.case(submitted.case_id, access)
        with pytest.raises(NotAllowed):
            await core.station_admin.set_status(station, StationStatus.CLOSED, access, AT, reason="x")
        with pytest.raises(NotAllowed):
            await core.station_admin.history(station, access)
        with pytest.raises(NotAllowed):
            await core.roles.grant(RIDER, "staff", "44", by=access)
    for user in (RIDER, VOLUNTEER):
        with pytest.raises(NotAllowed):
            await core.reports.open_cases(await core.roles.access(user))
    # Staff of another region see an empty queue, not the case.
    cases, total = await core.reports.open_cases(await core.roles.access(STAFF_SZ))
    assert (cases, total) == ([], 0)
    assert (await core.stations.get("GZ1")).status is StationStatus.ACTIVE


async def test_grants_are_validated_and_admins_grant_in_the_bot(core: Core) -> None:
    admin = await core.roles.access(ADMIN)
    with pytest.raises(InvalidGrant):
        await core.roles.grant(200, "staff", "", by=admin)
    with pytest.raises(InvalidGrant):
        await core.roles.grant(200, "king", "", by=admin)
    assert await core.roles.grant(200, "staff", "4401", by=admin)
    assert not await core.roles.grant(200, "staff", "4401", by=admin)
    assert (await core.roles.access(200)).can_manage("440106")
    assert await core.roles.revoke(200, "staff", by=admin) == 1
    assert not (await core.roles.access(200)).is_staff


async def test_lifecycle_actions_for_staff(core: Core) -> None:
    staff = await core.roles.access(STAFF_GZ)
    station = await sid(core, "GZ1")
    await core.station_admin.verify(station, staff, AT)
    assert (await core.stations.get("GZ1")).verified_at == AT
    await core.station_admin.set_status(station, StationStatus.TEMPORARILY_CLOSED, staff, AT)
    assert "GZ1" not in nearest(core)
    await core.station_admin.set_status(station, StationStatus.ACTIVE, staff, AT)
    assert nearest(core)[0] == "GZ1"
    with pytest.raises(InvalidEdit):
        await core.station_admin.set_status(station, StationStatus.CLOSED, staff, AT, reason=" ")
    with pytest.raises(InvalidEdit):
        await core.station_admin.edit_hours(station, "Mo-Fx", staff, AT)
    with pytest.raises(InvalidEdit):
        await core.station_admin.edit_phone(station, "call me", staff, AT)
    with pytest.raises(InvalidEdit):
        await core.station_admin.edit_amenities(station, ("beer",), staff, AT)
    await core.station_admin.edit_hours(station, "Mo-Su 08:00-09:00", staff, AT)
    assert "GZ1" not in nearest(core)  # noon: closed by its new hours
    await core.station_admin.edit_phone(station, "020-12345678", staff, AT)
    await core.station_admin.edit_amenities(station, ("wifi", "toilet"), staff, AT)
    after = await core.stations.get("GZ1")
    assert (after.phone, after.amenities) == ("020-12345678", ("toilet", "wifi"))
    actions = [e.action for e in await core.station_admin.history(station, staff)]
    assert actions[:4] == ["edit_amenities", "edit_phone", "edit_hours", "reopen"]


async def test_stale_lists_the_regions_unverified_stations(core: Core) -> None:
    staff = await core.roles.access(STAFF_GZ)
    await core.station_admin.verify(await sid(core, "GZ2"), staff, AT - timedelta(days=10))
    stale = await core.station_admin.stale(staff, AT)
    assert [s.code for s in stale] == ["GZ1"]
    assert {s.code for s in await core.station_admin.stale(await core.roles.access(ADMIN), AT)} == {
        "GZ1",
        "SZ1",
    }


async def test_ratings_are_one_per_rider_and_editable(core: Core) -> None:
    station = await sid(core, "GZ1")
    await core.ratings.rate(101, station, 5, AT)
    await core.ratings.rate(102, station, 2, AT)
    summary = await core.ratings.rate(101, station, 4, AT)
    assert (summary.average, summary.count, summary.mine) == (3.0, 2, 4)
    await core.ratings.comment(101, station, "水很干净", AT)
    with pytest.raises(InvalidRating):
        await core.ratings.rate(101, station, 6, AT)
    with pytest.raises(InvalidRating):
        await core.ratings.comment(103, station, "没评分", AT)
    comments = await core.ratings.recent_comments(station, await core.roles.access(STAFF_GZ), "440106")
    assert [c.text for c in comments] == ["水很干净"]
    with pytest.raises(NotAllowed):
        await core.ratings.recent_comments(station, await core.roles.access(RIDER), "440106")


async def test_staff_digests_come_at_most_every_ten_minutes(core: Core) -> None:
    moderators = {STAFF_GZ: await core.roles.access(STAFF_GZ), STAFF_SZ: await core.roles.access(STAFF_SZ)}
    await core.reports.submit(101, await sid(core, "GZ1"), "closed_now", AT)
    due = await core.reports.due_digests(moderators, AT)
    assert list(due) == [STAFF_GZ] and len(due[STAFF_GZ]) == 1
    await core.reports.digest_sent(STAFF_GZ, AT)
    await core.reports.submit(102, await sid(core, "GZ2"), "closed_now", AT + timedelta(minutes=1))
    assert await core.reports.due_digests(moderators, AT + timedelta(minutes=5)) == {}
    # Not recorded as sent (delivery failed): due again on the next round, with everything new.
    assert (await core.reports.due_digests(moderators, AT + timedelta(minutes=5))) == {}
    later = await core.reports.due_digests(moderators, AT + timedelta(minutes=11))
    assert [c.station.code for c in later[STAFF_GZ]] == ["GZ2"]
