"""Reports, moderation, roles, lifecycle and ratings against real SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from bot.app import Core, open_core
from bot.config import Settings
from bot.services.ratings import InvalidRating
from bot.services.reports import (
    AlreadyDecided,
    Evidence,
    InvalidReport,
    ReportLimitReached,
    ReportTooSoon,
    SiteEvidence,
    TrustPolicy,
)
from bot.services.roles import InvalidGrant, NotAllowed
from bot.services.station_admin import InvalidEdit
from domain.hours_zh import UnreadableHours
from domain.values import GeoPoint, StationRecord, StationStatus
from storage.models import ReporterRow, ReportRow, SubscriptionOfferRow, UserRow
from storage.reports_repo import ReportRepository

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


async def trusted(core: Core, *user_ids: int, at: datetime = AT) -> None:
    """Riders the bot has known for two days, who searched the day before `at`."""
    async with core.sessions() as session, session.begin():
        for user_id in user_ids:
            seen = at - timedelta(days=2)
            session.add(
                UserRow(id=user_id, first_name="", amenity_filter=[], created_at=seen, updated_at=seen)
            )
            session.add(SubscriptionOfferRow(user_id=user_id, offered_at=at - timedelta(days=1)))


async def at_station(core: Core, code: str, at: datetime = AT, metres: float = 100.0) -> SiteEvidence:
    """The evidence of a location message shared `metres` north of a station at `at`."""
    station = await core.stations.get(code)
    return await core.reports.locate(station.id, GeoPoint(station.lat + metres / 111_000, station.lon), at)


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


async def test_a_report_within_300_m_is_on_site_and_keeps_only_distance_and_time(core: Core) -> None:
    station = await sid(core, "GZ1")
    near = await core.reports.submit(101, station, "closed_now", AT, evidence=await at_station(core, "GZ1"))
    far = await core.reports.submit(
        102, station, "closed_now", AT, evidence=await at_station(core, "GZ1", metres=400)
    )
    assert (near.on_site, near.evidence, far.on_site, far.evidence) == (
        True,
        Evidence.ON_SITE,
        False,
        Evidence.OFF_SITE,
    )
    async with core.sessions() as session:
        rows = (await session.execute(select(ReportRow).order_by(ReportRow.id))).scalars().all()
    assert [(round(r.distance_m, -1), r.located_at, r.on_site) for r in rows] == [
        (100, AT, True),
        (400, AT, False),
    ]


async def test_a_location_older_than_30_minutes_or_shared_for_another_station_is_no_evidence(
    core: Core,
) -> None:
    await trusted(core, 101, 102)
    station = await sid(core, "GZ1")
    stale = await core.reports.submit(
        101, station, "closed_now", AT, evidence=await at_station(core, "GZ1", AT - timedelta(minutes=31))
    )
    elsewhere = await core.reports.submit(
        102, station, "closed_now", AT, evidence=await at_station(core, "GZ2")
    )
    assert (stale.evidence, stale.weight, stale.on_site) == (Evidence.STALE, 0.0, False)
    assert (elsewhere.evidence, elsewhere.weight) == (Evidence.NONE, 0.0)


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


async def test_three_trusted_riders_on_site_hide_the_station_until_staff_decide(core: Core) -> None:
    station = await sid(core, "GZ1")
    await trusted(core, 101, 102, 103)
    for reporter in (101, 102):
        result = await core.reports.submit(
            reporter, station, "closed_now", AT, evidence=await at_station(core, "GZ1")
        )
        assert not result.auto_hidden and result.weight == 1.0
    assert nearest(core)[0] == "GZ1"
    later = AT + timedelta(hours=2)
    third = await core.reports.submit(
        103, station, "closed_permanently", later, evidence=await at_station(core, "GZ1", later)
    )
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


async def test_closure_reports_at_the_same_moment_count_each_other(
    core: Core, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two trusted riders on site report at the same moment, after a first: together they reach the
    threshold, so the station is hidden, even when each counts the evidence as the other is writing
    (held here at that point until both are there, or a second has passed)."""
    station = await sid(core, "GZ1")
    await trusted(core, 101, 102, 103)
    await core.reports.submit(101, station, "closed_now", AT, evidence=await at_station(core, "GZ1"))
    counting = ReportRepository.closure_evidence_since
    arrived: list[int] = []
    both = asyncio.Event()

    async def meet_then_count(self: ReportRepository, *args: Any) -> float:
        arrived.append(1)
        if len(arrived) == 2:
            both.set()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(both.wait(), 1.0)
        return await counting(self, *args)

    monkeypatch.setattr(ReportRepository, "closure_evidence_since", meet_then_count)
    evidence = await at_station(core, "GZ1")
    results = await asyncio.gather(
        core.reports.submit(102, station, "closed_now", AT, evidence=evidence),
        core.reports.submit(103, station, "closed_permanently", AT, evidence=evidence),
    )
    assert sorted(r.auto_hidden for r in results) == [False, True]
    assert (await core.stations.get("GZ1")).status is StationStatus.TEMPORARILY_CLOSED


async def test_closure_reports_without_evidence_or_from_untrusted_accounts_hide_nothing(
    core: Core,
) -> None:
    station = await sid(core, "GZ1")
    await trusted(core, 101, 102, 103)
    # Trusted riders, but no location: the reports reach staff and weigh nothing.
    for reporter in (101, 102, 103):
        result = await core.reports.submit(reporter, station, "closed_now", AT)
        assert (result.evidence, result.weight, result.auto_hidden) == (Evidence.NONE, 0.0, False)
    # On site, but first seen an hour ago, or never searched.
    async with core.sessions() as session, session.begin():
        fresh = AT - timedelta(hours=1)
        session.add(UserRow(id=201, first_name="", amenity_filter=[], created_at=fresh, updated_at=fresh))
        session.add(SubscriptionOfferRow(user_id=201, offered_at=fresh))
        old = AT - timedelta(days=30)
        session.add(UserRow(id=202, first_name="", amenity_filter=[], created_at=old, updated_at=old))
    for reporter in (201, 202, 203):  # 203: never seen at all
        result = await core.reports.submit(
            reporter, station, "closed_now", AT, evidence=await at_station(core, "GZ1")
        )
        assert (result.on_site, result.weight, result.auto_hidden) == (True, 0.0, False)
    assert nearest(core)[0] == "GZ1"
    cases, total = await core.reports.open_cases(await core.roles.access(STAFF_GZ))
    assert total == 1 and cases[0].reporters == 6 and cases[0].weight == 0.0


async def test_reports_spread_over_more_than_a_day_do_not_trigger_the_safety_net(core: Core) -> None:
    station = await sid(core, "GZ1")
    await trusted(core, 101, 102, 103)
    for n, reporter in enumerate((101, 102, 103)):
        at = AT + timedelta(hours=13 * n)
        result = await core.reports.submit(
            reporter, station, "closed_now", at, evidence=await at_station(core, "GZ1", at)
        )
        assert result.weight == 1.0
    assert not result.auto_hidden


@pytest.mark.parametrize(
    "kind,detail,check",
    [
        ("closed_now", "", lambda s: s.status is StationStatus.TEMPORARILY_CLOSED),
        ("closed_permanently", "", lambda s: s.status is StationStatus.CLOSED),
        ("amenity_broken", "toilet", lambda s: s.amenities == ("drinking_water",)),
        ("wrong_location", "23.131,113.261", lambda s: (s.lat, s.lon) == (23.131, 113.261)),
        ("wrong_hours", "Mo-Fr 09:00-17:00", lambda s: s.opening_hours == "Mo-Fr 09:00-17:00"),
        (
            "wrong_hours",
            "周一至周五 9:00-17:00，节假日休息",
            lambda s: (
                (s.opening_hours, s.opening_hours_text)
                == ("Mo-Fr 09:00-17:00; PH off", "周一至周五 9:00-17:00，节假日休息")
            ),
        ),
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


async def test_staff_edit_hours_as_written_in_chinese(core: Core) -> None:
    staff = await core.roles.access(STAFF_GZ)
    station = await sid(core, "GZ1")
    await core.station_admin.edit_hours(station, "每天 8:00-9:00", staff, AT)
    after = await core.stations.get("GZ1")
    assert (after.opening_hours, after.opening_hours_text) == ("Mo-Su 08:00-09:00", "每天 8:00-9:00")
    assert "GZ1" not in nearest(core)  # noon: closed by its new hours
    with pytest.raises(InvalidEdit) as caught:
        await core.station_admin.edit_hours(station, "春节期间休息", staff, AT)
    assert isinstance(caught.value.hours_error, UnreadableHours)
    await core.station_admin.edit_hours(station, "24/7", staff, AT)
    after = await core.stations.get("GZ1")
    assert (after.opening_hours, after.opening_hours_text) == ("24/7", "")  # no stale original
    entry = (await core.station_admin.history(station, staff))[0]
    assert entry.before["opening_hours_text"] == "每天 8:00-9:00"


async def test_a_report_of_unreadable_chinese_hours_is_refused(core: Core) -> None:
    station = await sid(core, "GZ1")
    with pytest.raises(InvalidReport):
        await core.reports.submit(101, station, "wrong_hours", AT, detail="周一至周五")


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
    assert list(due) == [STAFF_GZ] and len(due[STAFF_GZ].cases) == 1 and due[STAFF_GZ].pauses == []
    await core.reports.digest_sent(STAFF_GZ, AT)
    await core.reports.submit(102, await sid(core, "GZ2"), "closed_now", AT + timedelta(minutes=1))
    assert await core.reports.due_digests(moderators, AT + timedelta(minutes=5)) == {}
    # Not recorded as sent (delivery failed): due again on the next round, with everything new.
    assert (await core.reports.due_digests(moderators, AT + timedelta(minutes=5))) == {}
    later = await core.reports.due_digests(moderators, AT + timedelta(minutes=11))
    assert [c.station.code for c in later[STAFF_GZ].cases] == ["GZ2"]


async def hide_by_three(core: Core, code: str, at: datetime, reporters: tuple[int, ...] = (101, 102, 103)):  # type: ignore[no-untyped-def]
    station = await sid(core, code)
    for reporter in reporters:
        result = await core.reports.submit(
            reporter, station, "closed_now", at, evidence=await at_station(core, code, at)
        )
    return result


async def test_one_reporter_sends_at_most_5_closure_reports_a_day_over_all_stations(core: Core) -> None:
    await core.stations.save_records(
        [
            StationRecord(code=f"GZ{n}", name=f"驿站{n}", lat=GZ[0] - 0.01 * n, lon=GZ[1], region="440106")
            for n in range(3, 8)
        ]
    )
    codes = ["GZ1", "GZ2", "GZ3", "GZ4", "GZ5"]
    for n, code in enumerate(codes):
        await core.reports.submit(101, await sid(core, code), "closed_now", AT + timedelta(minutes=n))
    with pytest.raises(ReportLimitReached) as refused:
        await core.reports.submit(101, await sid(core, "GZ6"), "closed_permanently", AT + timedelta(hours=1))
    assert (refused.value.limit, refused.value.closures) == (5, True)
    # Other problems can still be reported, and a day later closures again.
    await core.reports.submit(101, await sid(core, "GZ6"), "other", AT + timedelta(hours=1), text="没水")
    await core.reports.submit(101, await sid(core, "GZ6"), "closed_now", AT + timedelta(hours=24, minutes=1))
    async with core.sessions() as session:
        assert await session.scalar(select(func.count()).select_from(ReportRow)) == 7


async def test_one_reporter_sends_at_most_20_reports_of_any_kind_a_day(core: Core) -> None:
    core.reports.policy = replace(core.reports.policy, daily_reports=3)
    for n, code in enumerate(("GZ1", "GZ2", "SZ1")):
        await core.reports.submit(101, await sid(core, code), "other", AT, text=f"问题{n}")
    with pytest.raises(ReportLimitReached) as refused:
        await core.reports.submit(101, await sid(core, "GZ1"), "other", AT + timedelta(hours=2), text="再")
    assert (refused.value.limit, refused.value.closures) == (3, False)
    assert TrustPolicy().daily_reports == 20 and TrustPolicy().daily_closures == 5


async def test_the_circuit_breaker_pauses_auto_hiding_in_a_region_and_alerts_its_staff(core: Core) -> None:
    core.reports.policy = replace(core.reports.policy, region_hides_per_hour=1)
    await trusted(core, 101, 102, 103, 104, 105, 106)
    moderators = {who: await core.roles.access(who) for who in (STAFF_GZ, STAFF_SZ, STAFF_GD, ADMIN)}
    for who in moderators:
        await core.reports.digest_sent(who, AT - timedelta(minutes=1))
    assert (await hide_by_three(core, "GZ1", AT)).auto_hidden
    later = AT + timedelta(minutes=20)
    held = await hide_by_three(core, "GZ2", later, (104, 105, 106))
    assert (held.auto_hidden, held.paused, held.weight) == (False, True, 1.0)
    assert "GZ2" in [h.code for h in core.search.find_nearest_open(GeoPoint(*GZ), 3, (), later)]
    assert (await core.stations.get("GZ2")).status is StationStatus.ACTIVE
    pause = await core.reports.region_pause("440106", later)
    assert pause is not None and (pause.region, pause.hidden) == ("4401", 1)
    assert pause.until == later + timedelta(hours=24)
    # The region's staff (city, province, admin) are told at once, not after the digest interval.
    due = await core.reports.due_digests(moderators, later)
    assert sorted(due) == sorted([STAFF_GZ, STAFF_GD, ADMIN])
    assert [p.region for p in due[STAFF_GZ].pauses] == ["4401"]
    # Riders still see the warning on the station kept listed.
    note = core.stations.closures.get(await sid(core, "GZ2"), later)
    assert note is not None and note.count == 3
    # Shenzhen is another region: its safety net still works.
    await trusted(core, 107, 108, 109, at=later)
    assert (await hide_by_three(core, "SZ1", later, (107, 108, 109))).auto_hidden


async def test_a_rejected_auto_hide_zeroes_its_reporters_for_30_days(core: Core) -> None:
    await trusted(core, 101, 102, 103)
    assert (await hide_by_three(core, "GZ1", AT)).auto_hidden
    staff = await core.roles.access(STAFF_GZ)
    cases, _ = await core.reports.open_cases(staff)
    await core.reports.decide(cases[0].id, "reject", staff, AT + timedelta(hours=1))
    assert (await core.stations.get("GZ1")).status is StationStatus.ACTIVE
    soon = AT + timedelta(days=29)
    again = await hide_by_three(core, "GZ2", soon)
    assert (again.weight, again.auto_hidden) == (0.0, False)
    # After the suspension they count again, less for the rejection (1 - 0.5).
    after = AT + timedelta(days=31)
    result = await core.reports.submit(
        101, await sid(core, "SZ1"), "closed_now", after, evidence=await at_station(core, "SZ1", after)
    )
    assert result.weight == 0.5


async def test_approvals_raise_a_reporters_weight_and_rejections_lower_it(core: Core) -> None:
    await trusted(core, 101, 102)
    staff = await core.roles.access(STAFF_GD)
    for n in range(2):
        done = await core.reports.submit(
            101, await sid(core, "GZ2"), "other", AT + timedelta(hours=2 * n), text="x"
        )
        await core.reports.decide(done.case_id, "approve", staff, AT + timedelta(hours=2 * n))
        bad = await core.reports.submit(
            102, await sid(core, "GZ2"), "other", AT + timedelta(hours=2 * n), text="y"
        )
        await core.reports.decide(bad.case_id, "reject", staff, AT + timedelta(hours=2 * n))
    at = AT + timedelta(hours=5)
    evidence = await at_station(core, "GZ1", at)
    assert (
        await core.reports.submit(101, await sid(core, "GZ1"), "closed_now", at, evidence=evidence)
    ).weight == 1.5
    assert (
        await core.reports.submit(102, await sid(core, "GZ1"), "closed_now", at, evidence=evidence)
    ).weight == 0.0


async def test_volunteers_weigh_more_than_riders(core: Core) -> None:
    await trusted(core, VOLUNTEER, 101)
    station = await sid(core, "GZ1")
    helper = await core.reports.submit(
        VOLUNTEER, station, "closed_now", AT, evidence=await at_station(core, "GZ1")
    )
    assert (helper.weight, helper.auto_hidden) == (1.5, False)
    rider = await core.reports.submit(101, station, "closed_now", AT, evidence=await at_station(core, "GZ1"))
    assert (rider.weight, rider.auto_hidden) == (1.0, False)
    # A second volunteer completes the evidence of three riders.
    await core.roles.grant(102, "volunteer")
    await trusted(core, 102)
    done = await core.reports.submit(102, station, "closed_now", AT, evidence=await at_station(core, "GZ1"))
    assert done.auto_hidden and "GZ1" not in nearest(core)


async def test_riders_are_told_how_many_reported_a_listed_station_closed_and_when(core: Core) -> None:
    await trusted(core, 101, 102)
    station = await sid(core, "GZ1")
    await core.reports.submit(101, station, "closed_now", AT)  # no evidence: not shown
    assert core.stations.closures.get(station, AT) is None
    at = AT + timedelta(hours=2, minutes=5)
    for reporter in (101, 102):
        await core.reports.submit(
            reporter, station, "closed_now", at, evidence=await at_station(core, "GZ1", at)
        )
    note = core.stations.closures.get(station, at)
    assert note is not None and note.count == 2
    assert note.last_at.strftime("%H:%M") == "14:05"  # 06:05 UTC in Guangzhou
    assert note.as_json() == {"count": 2, "last_at": "2025-06-03T14:05:00+08:00"}
    # Reloaded from the database (another process, or a restart) it is the same.
    await core.stations.closures.load()
    assert core.stations.closures.get(station, at) == note
    # A day later it is old news; once staff decide it is gone.
    assert core.stations.closures.get(station, at + timedelta(hours=25)) is None
    staff = await core.roles.access(STAFF_GZ)
    cases, _ = await core.reports.open_cases(staff)
    await core.reports.decide(cases[0].id, "reject", staff, at)
    assert core.stations.closures.get(station, at) is None


async def test_forgetting_clears_a_reporters_record_but_not_a_suspension_in_force(core: Core) -> None:
    await trusted(core, 101, 102, 103, 104)
    staff = await core.roles.access(STAFF_GZ)
    done = await core.reports.submit(104, await sid(core, "SZ1"), "other", AT, text="没水")
    await core.reports.decide(done.case_id, "approve", await core.roles.access(STAFF_GD), AT)
    assert (await hide_by_three(core, "GZ1", AT)).auto_hidden
    cases, _ = await core.reports.open_cases(staff)
    await core.reports.decide(cases[0].id, "reject", staff, AT)
    for user_id in (101, 104):
        await core.privacy.forget(user_id, AT)
    async with core.sessions() as session:
        kept = {row.user_id: row for row in (await session.execute(select(ReporterRow))).scalars()}
    assert 104 not in kept  # an approval only: nothing about them stays
    assert (kept[101].approved, kept[101].rejected) == (0, 0)
    assert kept[101].suspended_until == AT + timedelta(days=30)
    # Coming back as a new account does not lift it.
    await trusted(core, 101, at=AT + timedelta(days=3))
    later = AT + timedelta(days=3)
    again = await core.reports.submit(
        101, await sid(core, "GZ2"), "closed_now", later, evidence=await at_station(core, "GZ2", later)
    )
    assert again.weight == 0.0
