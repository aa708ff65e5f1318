"""What the console asks of announcements, on SQLite and PostgreSQL: the text checked as Telegram will read
it, audiences bounded by the staff member's region, schedules honoured by the broadcaster (also after a
restart), pause, resume and cancel by a row change honoured by a broadcaster that is already sending, and
progress with an estimate of the time left."""

from __future__ import annotations

import asyncio
import math
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest

from bot.app import Core, open_core
from bot.broadcast import TelegramTransport
from bot.config import Settings
from bot.i18n import translator
from bot.services.announcements import (
    MAX_TEXT,
    AnnouncementError,
    Audience,
    Broadcaster,
    check_text,
    rider_message,
    station_scope,
)
from bot.services.roles import NotAllowed
from bot.telegram import build_bot, build_i18n
from domain.values import GeoPoint, StationRecord
from localapi import LocalBotAPI
from storage.models import SubscriptionRow
from storage.ratelimit import LocalRateLimiter

STAFF_GZ, STAFF_SZ, ADMIN, VOLUNTEER = 21, 22, 23, 24
T0 = datetime(2026, 7, 1, 1, 0, tzinfo=UTC)
TEXT = "<b>夏季送清凉</b>：驿站免费绿豆汤"


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


STATIONS = [
    StationRecord(code="GZ1", name="广州驿站", lat=23.13, lon=113.26, region="440106", opening_hours="24/7"),
    StationRecord(code="GZ2", name="越秀驿站", lat=23.13, lon=113.27, region="440104", opening_hours="24/7"),
    StationRecord(code="SZ1", name="深圳驿站", lat=22.54, lon=114.05, region="440304", opening_hours="24/7"),
    StationRecord(
        code="XJ1",
        name="和田驿站",
        lat=37.11,
        lon=79.93,
        region="653201",
        opening_hours="24/7",
        timezone="Asia/Urumqi",
    ),
]


async def _prepare(core: Core) -> None:
    await core.stations.save_records(STATIONS)
    await core.reload_index()
    await core.roles.grant(STAFF_GZ, "staff", "4401")
    await core.roles.grant(STAFF_SZ, "staff", "4403")
    await core.roles.grant(ADMIN, "admin")
    await core.roles.grant(VOLUNTEER, "volunteer")


@pytest.fixture
async def core(settings: Settings) -> AsyncIterator[Core]:
    async with open_core(settings) as core:
        await _prepare(core)
        yield core


async def subscribe(core: Core, api: LocalBotAPI | None, users: range, region: str = "440106") -> None:
    for user_id in users:
        await core.subscriptions.subscribe_region(user_id, region, T0)
        if api is not None:
            await api.send_text(user_id, "/start", language_code="zh-hans")


def received(api: LocalBotAPI, users: range) -> int:
    return sum(1 for u in users for m in api.bot_messages(u) if "夏季送清凉" in m.text)


def broadcaster(core: Core, api: LocalBotAPI, clock: Clock, rate: float = 200.0) -> Broadcaster:
    bot = build_bot(api.token, api.url)
    return Broadcaster(
        core.sessions,
        TelegramTransport(bot, core, build_i18n()),
        LocalRateLimiter(rate),
        rate,
        clock=clock,
        idle_poll=0.05,
    )


async def _close(b: Broadcaster) -> None:
    await b.transport.bot.session.close()  # type: ignore[attr-defined]


# -- the text ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("   ", AnnouncementError.EMPTY),
        ("<b> </b>", AnnouncementError.EMPTY),
        ("x" * (MAX_TEXT + 1), AnnouncementError.TOO_LONG),
        ("第一行<br>第二行", AnnouncementError.MARKUP),
        ("<div>驿站</div>", AnnouncementError.MARKUP),
        ("<b>没有结束", AnnouncementError.MARKUP),
        ("<b><i>交叉</b></i>", AnnouncementError.MARKUP),
        ('<span class="x">x</span>', AnnouncementError.MARKUP),
    ],
)
def test_a_text_telegram_would_refuse_is_refused_before_anything_is_queued(text: str, code: str) -> None:
    with pytest.raises(AnnouncementError) as refused:
        check_text(text)
    assert refused.value.code == code


def test_the_text_is_read_as_telegram_reads_it() -> None:
    parsed = check_text('<b>夏季</b> &amp; <a href="https://example.org/a?b=1&amp;c=2">详情</a>')
    assert parsed.text == "夏季 & 详情"
    assert parsed.entities == [
        {"type": "bold", "offset": 0, "length": 2},
        {"type": "text_link", "offset": 5, "length": 2, "url": "https://example.org/a?b=1&c=2"},
    ]


async def test_create_refuses_invalid_html_and_queues_nothing(core: Core) -> None:
    await subscribe(core, None, range(100, 103))
    staff = await core.roles.access(STAFF_GZ)
    with pytest.raises(AnnouncementError) as refused:
        await core.announcements.create(staff, "第一行<br>第二行", Audience("4401"), T0)
    assert refused.value.code == AnnouncementError.MARKUP
    assert await core.announcements.list(staff) == []


def test_the_riders_message_carries_the_unsubscribe_button_in_their_language() -> None:
    for locale, label in (("en", "🔕 Unsubscribe"), ("zh_Hans", "🔕 退订")):
        message = rider_message(TEXT, None, translator(locale).gettext)
        assert message.text == TEXT and message.photo_file_id is None
        assert [[(b.text, b.callback_data) for b in row] for row in message.keyboard] == [[(label, "unsub")]]
    hant = rider_message(TEXT, None, translator("zh_Hant").gettext).keyboard[0][0].text
    assert hant not in ("🔕 Unsubscribe", "🔕 退订") and hant.startswith("🔕")


# -- the audience --------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "audience",
    [
        Audience("44"),
        Audience("4403"),
        Audience(""),
        Audience("440304"),
        Audience("4403", GeoPoint(22.54, 114.05), 5.0),
    ],
)
async def test_staff_cannot_address_another_region(core: Core, audience: Audience) -> None:
    staff = await core.roles.access(STAFF_GZ)
    with pytest.raises(NotAllowed):
        await core.announcements.audience_size(staff, audience)
    with pytest.raises(NotAllowed):
        await core.announcements.create(staff, TEXT, audience, T0)
    assert await core.announcements.list(await core.roles.access(ADMIN)) == []


@pytest.mark.parametrize(
    ("region", "radius"),
    [("4401%", None), ("4401_1", None), ("44010", None), ("4401", 0.0), ("4401", 500.5), ("4401", math.nan)],
)
async def test_malformed_audiences_are_refused(core: Core, region: str, radius: float | None) -> None:
    staff = await core.roles.access(STAFF_GZ)
    point = GeoPoint(23.13, 113.26) if radius is not None else None
    with pytest.raises(AnnouncementError):
        await core.announcements.audience_size(staff, Audience(region, point, radius))


async def test_volunteers_and_riders_are_no_staff(core: Core) -> None:
    for user_id in (VOLUNTEER, 999):
        access = await core.roles.access(user_id)
        with pytest.raises(NotAllowed):
            await core.announcements.audience_size(access, Audience("4401"))
        with pytest.raises(NotAllowed):
            await core.announcements.list(access)
        with pytest.raises(NotAllowed):
            await core.announcements.districts(access)


async def test_an_audience_around_a_station_by_district_and_its_size(core: Core) -> None:
    staff = await core.roles.access(STAFF_GZ)
    near, far = GeoPoint(23.131, 113.262), GeoPoint(23.5, 113.26)  # about 41 km north
    await core.subscriptions.subscribe_near(301, near, T0)
    await core.subscriptions.subscribe_near(302, far, T0)
    await core.subscriptions.subscribe_region(303, "440106", T0)
    station = await core.stations.get("GZ1")
    assert station_scope(staff.regions, station.region) == "4401"
    assert station_scope(staff.regions, "440304") == "440304"
    around = Audience(station_scope(staff.regions, station.region), GeoPoint(station.lat, station.lon), 5.0)
    assert await core.announcements.recipients(staff, around) == [301]
    assert await core.announcements.audience_size(staff, Audience("4401")) == 3
    async with core.sessions() as session:
        district = (await session.get(SubscriptionRow, 301)).region  # type: ignore[union-attr]
    assert len(district) == 6 and district.startswith("4401")
    assert await core.announcements.recipients(staff, Audience(district)) == (
        [301, 303] if district == "440106" else [301]
    )
    # The size the console shows as the form is typed is the number of recipients a send would queue.
    for audience in (
        around,
        Audience("4401"),
        Audience(district),
        Audience("4401", near, 50.0),
        Audience("4401", far, 1.0),
    ):
        assert await core.announcements.audience_size(staff, audience) == len(
            await core.announcements.recipients(staff, audience)
        ), audience
    assert [code for code, _ in await core.announcements.districts(staff)] == ["440104", "440106"]
    admin = await core.roles.access(ADMIN)
    assert [code for code, _ in await core.announcements.districts(admin)] == [
        "440104",
        "440106",
        "440304",
        "653201",
    ]


async def test_a_regions_timezone_is_its_stations(core: Core) -> None:
    assert (await core.announcements.timezone_of("6532")).key == "Asia/Urumqi"
    assert (await core.announcements.timezone_of("4401")).key == "Asia/Shanghai"
    assert (await core.announcements.timezone_of("9999")).key == "Asia/Shanghai"


# -- ownership -----------------------------------------------------------------------------------------------
async def test_staff_of_another_region_cannot_read_or_change_an_announcement(core: Core) -> None:
    await subscribe(core, None, range(100, 103))
    owner, other = await core.roles.access(STAFF_GZ), await core.roles.access(STAFF_SZ)
    view = await core.announcements.create(owner, TEXT, Audience("4401"), T0, scheduled_at=T0 + timedelta(1))
    for change in (core.announcements.get, core.announcements.pause, core.announcements.cancel):
        with pytest.raises(NotAllowed):
            await change(view.id, other)
    with pytest.raises(NotAllowed):
        await core.announcements.resume(view.id, other, T0)
    with pytest.raises(NotAllowed):
        await core.announcements.progress(view.id, other, T0, 25.0)
    assert await core.announcements.list(other) == []
    assert [v.id for v in await core.announcements.list(owner)] == [view.id]
    with pytest.raises(AnnouncementError) as missing:
        await core.announcements.get(view.id + 1, owner)
    assert missing.value.code == AnnouncementError.MISSING
    assert (await core.announcements.get(view.id, owner)).status == "scheduled"


async def test_the_list_pages_newest_first(core: Core) -> None:
    await subscribe(core, None, range(100, 101))
    staff = await core.roles.access(STAFF_GZ)
    ids = [
        (
            await core.announcements.create(staff, f"{TEXT} {n}", Audience("4401"), T0 + timedelta(minutes=n))
        ).id
        for n in range(5)
    ]
    assert [v.id for v in await core.announcements.list(staff, limit=2)] == ids[::-1][:2]
    assert [v.id for v in await core.announcements.list(staff, limit=2, offset=4)] == [ids[0]]


# -- schedules -----------------------------------------------------------------------------------------------
async def test_nothing_goes_out_before_its_time_also_after_a_restart(settings: Settings) -> None:
    users = range(600, 606)
    clock = Clock(T0)
    async with LocalBotAPI() as api:
        async with open_core(settings) as core:
            await _prepare(core)
            await subscribe(core, api, users)
            staff = await core.roles.access(STAFF_GZ)
            at = T0 + timedelta(hours=2)
            view = await core.announcements.create(staff, TEXT, Audience("4401"), T0, scheduled_at=at)
            first = broadcaster(core, api, clock)
            try:
                assert not await first.run_once()
                clock.now = at - timedelta(seconds=1)
                assert not await first.run_once()
            finally:
                await _close(first)
        assert received(api, users) == 0
        # A new process: what it knows of the schedule is what the database holds.
        async with open_core(settings) as core:
            second = broadcaster(core, api, clock)
            stop = asyncio.Event()
            task = asyncio.create_task(second.run(stop))
            try:
                await asyncio.sleep(0.5)
                assert received(api, users) == 0
                staff = await core.roles.access(STAFF_GZ)
                assert (await core.announcements.get(view.id, staff)).status == "scheduled"
                clock.now = at
                await api.wait_for(lambda: received(api, users) == len(users))
                done = await _wait_status(core, view.id, STAFF_GZ, "done")
                assert done.counts.sent == len(users) and done.started_at == at
            finally:
                stop.set()
                await asyncio.wait_for(task, 10)
                await _close(second)
        assert [received(api, range(u, u + 1)) for u in users] == [1] * len(users)


async def test_resuming_before_the_scheduled_time_waits_for_it(core: Core) -> None:
    users = range(700, 703)
    clock = Clock(T0)
    async with LocalBotAPI() as api:
        await subscribe(core, api, users)
        staff = await core.roles.access(STAFF_GZ)
        at = T0 + timedelta(hours=1)
        view = await core.announcements.create(staff, TEXT, Audience("4401"), T0, scheduled_at=at)
        assert await core.announcements.pause(view.id, staff)
        assert await core.announcements.resume(view.id, staff, T0 + timedelta(minutes=1))
        assert (await core.announcements.get(view.id, staff)).status == "scheduled"
        b = broadcaster(core, api, clock)
        try:
            assert not await b.run_once()
            assert received(api, users) == 0
            clock.now = at
            assert await b.run_once()
        finally:
            await _close(b)
        assert received(api, users) == len(users)
        # Paused after its time, resuming sends it at once.
        late = await core.announcements.create(
            staff, TEXT, Audience("4401"), at, scheduled_at=at + timedelta(1)
        )
        assert await core.announcements.pause(late.id, staff)
        assert await core.announcements.resume(late.id, staff, at + timedelta(days=2))
        assert (await core.announcements.get(late.id, staff)).status == "sending"


# -- pause, resume and cancel while sending ------------------------------------------------------------------
async def _wait_status(core: Core, announcement_id: int, user_id: int, status: str) -> object:
    access = await core.roles.access(user_id)
    for _ in range(400):
        view = await core.announcements.get(announcement_id, access)
        if view.status == status:
            return view
        await asyncio.sleep(0.05)
    raise AssertionError(f"announcement {announcement_id} never became {status}")


async def test_a_pause_and_a_cancel_written_elsewhere_stop_a_sending_broadcaster(core: Core) -> None:
    """The broadcaster reads the announcement's status with every window it claims: a pause written by
    another process (the console) stops it within two windows, resume continues without a second copy,
    and cancel leaves the rest cancelled."""
    users = range(800, 860)
    rate = 20.0  # a window of one: at most two deliveries after the pause is written
    clock = Clock(T0)
    async with LocalBotAPI() as api:
        await subscribe(core, api, users)
        staff = await core.roles.access(STAFF_GZ)
        b = broadcaster(core, api, clock, rate)
        stop = asyncio.Event()
        task = asyncio.create_task(b.run(stop))
        try:
            view = await core.announcements.create(staff, TEXT, Audience("4401"), T0)
            await api.wait_for(lambda: received(api, users) >= 10)
            assert await core.announcements.pause(view.id, staff)
            at_pause = received(api, users)
            await asyncio.sleep(0.6)
            settled = received(api, users)
            assert settled - at_pause <= 2
            await asyncio.sleep(0.6)
            assert received(api, users) == settled
            paused = await core.announcements.progress(view.id, staff, T0, rate)
            assert paused.view.status == "paused" and paused.eta_s is None
            assert paused.view.counts.sent == settled and paused.view.counts.left == len(users) - settled
            assert await core.announcements.resume(view.id, staff, T0)
            await api.wait_for(lambda: received(api, users) >= settled + 10)
            assert await core.announcements.cancel(view.id, staff)
            at_cancel = received(api, users)
            await asyncio.sleep(0.6)
            final = received(api, users)
            assert final - at_cancel <= 2
            await asyncio.sleep(0.4)
            assert received(api, users) == final < len(users)
        finally:
            stop.set()
            await asyncio.wait_for(task, 10)
            await _close(b)
        report = await core.announcements.get(view.id, staff)
        assert report.status == "cancelled"
        assert (report.counts.sent, report.counts.cancelled) == (final, len(users) - final)
        assert report.counts.left == 0
        assert all(received(api, range(u, u + 1)) <= 1 for u in users)
        assert not await core.announcements.resume(view.id, staff, T0)  # cancelled for good


async def test_progress_estimates_the_time_left_from_the_recent_pace(core: Core) -> None:
    users = range(900, 940)
    rate = 20.0
    clock = Clock(datetime.now(UTC))
    async with LocalBotAPI() as api:
        await subscribe(core, api, users)
        staff = await core.roles.access(STAFF_GZ)
        view = await core.announcements.create(staff, TEXT, Audience("4401"), clock())
        before = await core.announcements.progress(view.id, staff, clock(), rate)
        assert before.view.status == "sending" and before.eta_s is None  # not started yet
        b = broadcaster(core, api, clock, rate)
        stop = asyncio.Event()

        def tick() -> datetime:
            clock.now = datetime.now(UTC)
            return clock.now

        b.clock = tick
        task = asyncio.create_task(b.run(stop))
        try:
            await api.wait_for(lambda: received(api, users) >= 25)
            progress = await core.announcements.progress(view.id, staff, tick(), rate)
            left = progress.view.counts.left
            assert progress.view.status == "sending" and 0 < left <= len(users) - 20
            assert progress.eta_s is not None and 5.0 <= progress.rate <= 25.0
            assert progress.eta_s == pytest.approx(left / progress.rate)
            done = await _wait_status(core, view.id, STAFF_GZ, "done")
        finally:
            stop.set()
            await asyncio.wait_for(task, 10)
            await _close(b)
        final = await core.announcements.progress(view.id, staff, tick(), rate)
        assert final.eta_s is None and final.view.counts.sent == len(users)
        assert done.finished_at is not None  # type: ignore[attr-defined]
