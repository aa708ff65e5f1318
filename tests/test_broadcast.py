"""Announcement delivery against the local Bot API server: rate, retry_after, blocked users, and crashes.

The sender runs in a real subprocess that is SIGKILLed at random points; the server counts what each
recipient really received.
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import socket
import sys
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from aiogram import Bot
from aiogram.types import InlineKeyboardButton, InlineKeyboardMarkup
from aiohttp import web
from sqlalchemy import select

from bot.app import Core, open_core
from bot.broadcast import TelegramTransport
from bot.config import Settings
from bot.services.announcements import (
    AnnouncementError,
    AnnouncementView,
    Audience,
    Broadcaster,
    DeliveryError,
    PermanentFailure,
    RecipientBlocked,
    RetryLater,
    TransientFailure,
    geohash,
    geohash_centre,
)
from bot.services.roles import NotAllowed
from bot.telegram import build_bot, build_i18n
from domain.values import GeoPoint, StationRecord
from localapi import LocalBotAPI
from storage.announcements_repo import AnnouncementRepository
from storage.models import DeliveryRow
from storage.ratelimit import LocalRateLimiter
from storage.users_repo import UserRepository

ROOT = Path(__file__).resolve().parent.parent
STAFF_GD, STAFF_SZ, VOLUNTEER, RIDER = 11, 12, 13, 14
TEXT = "<b>夏季送清凉</b>：7 月 1 日起各驿站免费提供绿豆汤。"


def now() -> datetime:
    return datetime.now(UTC)


@pytest.fixture
async def core(settings: Settings) -> AsyncIterator[Core]:
    async with open_core(settings) as core:
        await core.stations.save_records(
            [
                StationRecord(
                    code="GZ1", name="广州驿站", lat=23.13, lon=113.26, region="440106", opening_hours="24/7"
                ),
                StationRecord(
                    code="SZ1", name="深圳驿站", lat=22.54, lon=114.05, region="440304", opening_hours="24/7"
                ),
                StationRecord(
                    code="BJ1", name="北京驿站", lat=39.90, lon=116.40, region="110101", opening_hours="24/7"
                ),
            ]
        )
        await core.reload_index()
        await core.roles.grant(STAFF_GD, "staff", "44")
        await core.roles.grant(STAFF_SZ, "staff", "4403")
        await core.roles.grant(VOLUNTEER, "volunteer")
        yield core


async def subscribe_many(core: Core, api: LocalBotAPI | None, users: range, region: str = "4401") -> None:
    for user_id in users:
        await core.subscriptions.subscribe_region(user_id, region, now())
        if api is not None:
            await api.send_text(user_id, "/start", language_code="zh-hans")  # the chat exists on the server


def copies(api: LocalBotAPI, user_id: int) -> int:
    return sum(1 for m in api.bot_messages(user_id) if "夏季送清凉" in m.text)


def test_geohash_cells_are_about_five_km_and_round_trip() -> None:
    cell = geohash(23.1291, 113.2644)
    assert len(cell) == 5 and cell == "ws0e9"
    lat, lon = geohash_centre(cell)
    assert abs(lat - 23.1291) < 0.03 and abs(lon - 113.2644) < 0.03
    assert geohash(lat, lon) == cell


async def test_a_subscription_keeps_a_coarse_cell_and_the_region_never_the_point(core: Core) -> None:
    cell = await core.subscriptions.subscribe_near(RIDER, GeoPoint(23.1301, 113.2611), now())
    async with core.sessions() as session:
        row = await AnnouncementRepository(session).subscription(RIDER)
    assert row is not None and row.active and row.cell == cell and len(cell) == 5
    assert row.region == "440104"  # the district the point lies in (越秀区), whatever stations are near
    assert not hasattr(row, "lat")
    assert await core.subscriptions.unsubscribe(RIDER, now())
    assert not await core.subscriptions.is_subscribed(RIDER)
    assert not await core.subscriptions.unsubscribe(RIDER, now())


async def test_the_subscription_is_offered_once(core: Core) -> None:
    assert await core.subscriptions.offer_once(RIDER, now())
    assert not await core.subscriptions.offer_once(RIDER, now())


async def test_audience_by_region_and_by_radius(core: Core) -> None:
    staff = await core.roles.access(STAFF_GD)
    await core.subscriptions.subscribe_near(1, GeoPoint(23.13, 113.26), now())  # Guangzhou
    await core.subscriptions.subscribe_near(2, GeoPoint(22.54, 114.05), now())  # Shenzhen
    await core.subscriptions.subscribe_near(3, GeoPoint(39.90, 116.40), now())  # Beijing
    await core.subscriptions.subscribe_region(4, "44", now())
    assert await core.announcements.recipients(staff, Audience("44")) == [1, 2, 4]
    assert await core.announcements.recipients(staff, Audience("4401")) == [1]
    near_gz = Audience("44", GeoPoint(23.13, 113.26), 20.0)
    assert await core.announcements.recipients(staff, near_gz) == [1]
    assert await core.announcements.audience_size(await core.roles.access(STAFF_SZ), Audience("4403")) == 1


async def test_riders_and_volunteers_cannot_send_and_staff_stay_in_their_region(core: Core) -> None:
    for user in (RIDER, VOLUNTEER):
        with pytest.raises(NotAllowed):
            await core.announcements.create(await core.roles.access(user), TEXT, Audience("44"), now())
    shenzhen = await core.roles.access(STAFF_SZ)
    for audience in (Audience("44"), Audience("4401"), Audience("")):
        with pytest.raises(NotAllowed):
            await core.announcements.create(shenzhen, TEXT, audience, now())
    with pytest.raises(AnnouncementError):
        await core.announcements.create(shenzhen, " ", Audience("4403"), now())
    with pytest.raises(AnnouncementError):
        await core.announcements.create(
            shenzhen, TEXT, Audience("4403"), now(), scheduled_at=now() - timedelta(1)
        )
    view = await core.announcements.create(shenzhen, TEXT, Audience("4403"), now())
    with pytest.raises(NotAllowed):
        await core.announcements.cancel(view.id, await core.roles.access(RIDER))


async def test_the_outbox_holds_each_recipient_once(core: Core) -> None:
    await subscribe_many(core, None, range(100, 110))
    view = await core.announcements.create(await core.roles.access(STAFF_GD), TEXT, Audience("44"), now())
    async with core.sessions() as session, session.begin():
        await AnnouncementRepository(session).enqueue(view.id, list(range(100, 110)))
    assert (await core.announcements.get(view.id, await core.roles.access(STAFF_GD))).counts.total == 10
    async with core.sessions() as session:
        assert (await AnnouncementRepository(session).counts(view.id)) == {"pending": 10}


async def _deliver(core: Core, api: LocalBotAPI, rate: float = 200.0) -> Broadcaster:
    from bot.broadcast import TelegramProgress, TelegramTransport

    bot = build_bot(api.token, api.url)
    i18n = build_i18n()
    broadcaster = Broadcaster(
        core.sessions,
        TelegramTransport(bot, core, i18n),
        LocalRateLimiter(rate),
        rate,
        progress=TelegramProgress(bot, core, i18n),
        clock=now,
        progress_every=0.2,
    )
    try:
        await broadcaster.run_once()
    finally:
        await bot.session.close()
    return broadcaster


async def test_retry_after_stops_all_sending_then_everyone_gets_one_copy(core: Core) -> None:
    async with LocalBotAPI() as api:
        await subscribe_many(core, api, range(200, 240))
        await api.send_text(STAFF_GD, "/start")
        staff = await core.roles.access(STAFF_GD)
        view = await core.announcements.create(staff, TEXT, Audience("44"), now(), progress_chat_id=STAFF_GD)
        api.fail_next("sendMessage", 429, "Too Many Requests: retry after 2", retry_after=2, times=1)
        started = time.monotonic()
        await _deliver(core, api)
        assert time.monotonic() - started >= 2.0
        assert [copies(api, u) for u in range(200, 240)] == [1] * 40
        final = await core.announcements.get(view.id, staff)
        assert final.status == "done" and final.counts.sent == 40 and final.counts.left == 0
        report = api.last_bot_message(STAFF_GD)
        assert report is not None and "#" + str(view.id) in report.text and "40" in report.text


async def test_blocked_recipients_are_marked_and_skipped_from_then_on(core: Core) -> None:
    async with LocalBotAPI() as api:
        await subscribe_many(core, api, range(300, 310))
        await api.block(303)
        await api.block(307)
        staff = await core.roles.access(STAFF_GD)
        first = await core.announcements.create(staff, TEXT, Audience("44"), now())
        await _deliver(core, api)
        counts = (await core.announcements.get(first.id, staff)).counts
        assert (counts.sent, counts.blocked) == (8, 2)
        second = await core.announcements.create(staff, TEXT, Audience("44"), now())
        assert second.counts.total == 8


async def test_transient_errors_are_retried_with_backoff(core: Core) -> None:
    async with LocalBotAPI() as api:
        await subscribe_many(core, api, range(400, 403))
        api.fail_next("sendMessage", 500, "Internal Server Error", times=1)
        staff = await core.roles.access(STAFF_GD)
        view = await core.announcements.create(staff, TEXT, Audience("44"), now())
        await _deliver(core, api)
        assert [copies(api, u) for u in range(400, 403)] == [1, 1, 1]
        assert (await core.announcements.get(view.id, staff)).counts.sent == 3


WORKER = """
import asyncio, sys
from datetime import UTC, datetime
from bot.app import open_core
from bot.broadcast import TelegramTransport
from bot.config import Settings
from bot.services.announcements import Broadcaster
from bot.telegram import build_bot, build_i18n
from storage.ratelimit import LocalRateLimiter

async def main():
    settings = Settings(database_url=sys.argv[1], _env_file=None)
    async with open_core(settings, load_index=False) as core:
        bot = build_bot(sys.argv[2], sys.argv[3])
        rate = float(sys.argv[4])
        transport = TelegramTransport(bot, core, build_i18n())
        clock = lambda: datetime.now(UTC)  # noqa: E731
        b = Broadcaster(core.sessions, transport, LocalRateLimiter(rate), rate, clock=clock)
        print("READY", flush=True)
        await b.run(asyncio.Event())

asyncio.run(main())
"""


async def test_sigkilled_sender_resumes_without_sending_anyone_a_second_copy(core: Core) -> None:
    rate = 200.0
    recipients = range(10_000, 12_000)
    async with LocalBotAPI() as api:
        await subscribe_many(core, api, recipients)
        staff = await core.roles.access(STAFF_GD)
        view = await core.announcements.create(staff, TEXT, Audience("44"), now())
        rng = random.Random(os.getpid())
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        args = [sys.executable, "-c", WORKER, core.settings.database_url, api.token, api.url, str(rate)]
        for _ in range(3):
            proc = await asyncio.create_subprocess_exec(
                *args, stdout=asyncio.subprocess.PIPE, cwd=ROOT, env=env
            )
            assert proc.stdout is not None
            assert (await asyncio.wait_for(proc.stdout.readline(), 30)).strip() == b"READY"
            await asyncio.sleep(rng.uniform(0.3, 2.5))
            proc.send_signal(signal.SIGKILL)
            await proc.wait()
        proc = await asyncio.create_subprocess_exec(*args, stdout=asyncio.subprocess.PIPE, cwd=ROOT, env=env)
        try:
            deadline = time.monotonic() + 60
            while (await core.announcements.get(view.id, staff)).status != "done":
                assert time.monotonic() < deadline, "the sender did not finish"
                await asyncio.sleep(0.2)
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.kill()
            await proc.wait()
        received = {user_id: copies(api, user_id) for user_id in recipients}
        assert max(received.values()) == 1, "someone got a second copy"
        counts = (await core.announcements.get(view.id, staff)).counts
        async with core.sessions() as session:
            uncertain = set(
                (
                    await session.scalars(
                        select(DeliveryRow.user_id).where(
                            DeliveryRow.announcement_id == view.id, DeliveryRow.status == "uncertain"
                        )
                    )
                ).all()
            )
        missing = {user_id for user_id, n in received.items() if n == 0}
        # Only a delivery caught in flight by a kill can be missing, and the report says so.
        assert missing <= uncertain
        assert len(uncertain) <= 3 * 2 * max(1, int(rate * 0.05))  # two windows in flight per kill
        assert counts.sent + counts.uncertain == len(recipients)
        assert counts.sent == len(recipients) - len(uncertain)


# -- the transport against the local Bot API -------------------------------------------------------------
@pytest.fixture
async def telegram(sqlite_settings: Settings) -> AsyncIterator[tuple[Core, LocalBotAPI, Bot]]:
    async with open_core(sqlite_settings, load_index=False) as core, LocalBotAPI() as api:
        bot = build_bot(api.token, api.url)
        try:
            yield core, api, bot
        finally:
            await bot.session.close()


def announcement(text: str = TEXT, photo_file_id: str | None = None) -> AnnouncementView:
    return AnnouncementView(
        id=1,
        author_id=STAFF_GD,
        text=text,
        photo_file_id=photo_file_id,
        audience=Audience("44"),
        status="sending",
        scheduled_at=None,
        created_at=now(),
    )


async def speaks(core: Core, user_id: int, language_code: str) -> None:
    async with core.sessions() as session, session.begin():
        await UserRepository(session).upsert(user_id, "rider", None, language_code)


async def outcome_of(transport: TelegramTransport, user_id: int, text: str = TEXT) -> DeliveryError | None:
    try:
        await transport.deliver(user_id, announcement(text))
    except DeliveryError as exc:
        return exc
    return None


async def test_the_transport_sends_what_aiogram_sends_with_the_button_in_the_recipients_language(
    telegram: tuple[Core, LocalBotAPI, Bot],
) -> None:
    core, api, bot = telegram
    await speaks(core, 501, "en")
    for user_id in (501, 502, 503):
        await api.send_text(user_id, "/start")
    transport = TelegramTransport(bot, core, build_i18n())
    await transport.prepare([501, 502])
    await transport.deliver(501, announcement())
    await transport.deliver(502, announcement())  # no user row: the default language
    keyboard = InlineKeyboardMarkup(
        inline_keyboard=[[InlineKeyboardButton(text="🔕 Unsubscribe", callback_data="unsub")]]
    )
    await bot.send_message(503, TEXT, reply_markup=keyboard)
    english, chinese, by_aiogram = (api.last_bot_message(u) for u in (501, 502, 503))
    assert english is not None and chinese is not None and by_aiogram is not None
    assert (english.text, english.html, english.buttons) == (
        by_aiogram.text,
        by_aiogram.html,
        by_aiogram.buttons,
    )
    assert english.raw["entities"] == by_aiogram.raw["entities"]  # the bot's default parse mode applied
    assert chinese.buttons == [{"text": "🔕 退订", "callback_data": "unsub"}]
    # The parameters the server read, besides the chat, are the ones aiogram's own call carried.
    sent = {params["chat_id"]: params for params in api.calls_to("sendMessage")}
    assert {k: v for k, v in sent[501].items() if k != "chat_id"} == {
        k: v for k, v in sent[503].items() if k != "chat_id"
    }


async def test_the_transport_sends_a_photo_with_its_caption_and_button(
    telegram: tuple[Core, LocalBotAPI, Bot],
) -> None:
    core, api, bot = telegram
    await api.send_text(601, "/start")
    uploaded = await api.invoke(
        "sendPhoto", {"chat_id": 601, "photo": "attach://p"}, {"p": ("p.png", b"png")}
    )
    file_id = uploaded["photo"][-1]["file_id"]
    transport = TelegramTransport(bot, core, build_i18n())
    await transport.deliver(601, announcement("法律援助日：<b>本周六</b>上午", photo_file_id=file_id))
    got = api.last_bot_message(601)
    assert got is not None and got.photo and got.text == "法律援助日：本周六上午"
    assert got.html == "法律援助日：<b>本周六</b>上午"
    assert got.buttons == [{"text": "🔕 退订", "callback_data": "unsub"}]


async def test_the_transport_maps_each_answer_of_the_bot_api_onto_the_broadcasters_errors(
    telegram: tuple[Core, LocalBotAPI, Bot],
) -> None:
    core, api, bot = telegram
    transport = TelegramTransport(bot, core, build_i18n())
    for user_id in (701, 702):
        await api.send_text(user_id, "/start")
    await api.block(702)

    assert await outcome_of(transport, 701) is None
    blocked = await outcome_of(transport, 702)  # 403 Forbidden: bot was blocked by the user
    assert isinstance(blocked, RecipientBlocked) and "blocked" in str(blocked)
    not_found = await outcome_of(transport, 799)  # nobody ever opened this chat
    assert isinstance(not_found, RecipientBlocked) and "chat not found" in str(not_found)

    api.fail_next("sendMessage", 429, "Too Many Requests: retry after 7", retry_after=7)
    retry = await outcome_of(transport, 701)
    assert isinstance(retry, RetryLater) and retry.seconds == 7.0

    api.fail_next("sendMessage", 400, "Bad Request: user is deactivated")
    assert isinstance(await outcome_of(transport, 701), RecipientBlocked)

    too_long = await outcome_of(transport, 701, "x" * 5000)  # the server's own check, not a scripted fault
    assert isinstance(too_long, PermanentFailure) and "message is too long" in str(too_long)

    api.fail_next("sendMessage", 500, "Internal Server Error")
    server_error = await outcome_of(transport, 701)
    assert isinstance(server_error, TransientFailure) and "500" in str(server_error)

    api.fail_next("sendMessage", 502, "Bad Gateway")
    assert isinstance(await outcome_of(transport, 701), TransientFailure)

    assert [m.text for m in api.bot_messages(701)] == ["夏季送清凉：7 月 1 日起各驿站免费提供绿豆汤。"]


async def test_the_transport_reports_a_closed_port_a_silent_server_and_a_non_json_answer_as_transient(
    sqlite_settings: Settings,
) -> None:
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()  # accepts the request, never answers
        writer.close()

    async def proxy_error(request: web.Request) -> web.Response:
        return web.Response(status=502, text="<html>502 Bad Gateway</html>", content_type="text/html")

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]  # nobody listens once the socket is closed
    silent_server = await asyncio.start_server(silent, "127.0.0.1", 0)
    silent_port = silent_server.sockets[0].getsockname()[1]
    app = web.Application()
    app.router.add_post("/{tail:.*}", proxy_error)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    html_port = runner.addresses[0][1]
    try:
        async with open_core(sqlite_settings, load_index=False) as core:
            for port, expected in (
                (closed_port, "ClientConnectorError"),
                (silent_port, "TimeoutError"),
                (html_port, "502"),
            ):
                bot = build_bot("42:TEST", f"http://127.0.0.1:{port}")
                bot.session.timeout = 0.5
                try:
                    outcome = await outcome_of(TelegramTransport(bot, core, build_i18n()), 1)
                finally:
                    await bot.session.close()
                assert isinstance(outcome, TransientFailure) and expected in str(outcome), (port, outcome)
    finally:
        silent_server.close()
        await runner.cleanup()


class FlakyLimiter(LocalRateLimiter):
    """A shared limiter whose store (Redis) is unreachable for its first `failures` calls."""

    def __init__(self, rate: float, failures: int) -> None:
        super().__init__(rate)
        self.failures = failures

    async def acquire(self) -> None:
        if self.failures > 0:
            self.failures -= 1
            raise ConnectionError("Redis is unreachable")
        await super().acquire()


async def test_a_failing_rate_limiter_delays_deliveries_without_losing_or_repeating_any(
    core: Core, monkeypatch: pytest.MonkeyPatch
) -> None:
    from bot.services import announcements

    monkeypatch.setattr(announcements, "LIMITER_BACKOFF_S", 0.2)
    async with LocalBotAPI() as api:
        await subscribe_many(core, api, range(800, 830))
        staff = await core.roles.access(STAFF_GD)
        view = await core.announcements.create(staff, TEXT, Audience("44"), now())
        bot = build_bot(api.token, api.url)
        try:
            broadcaster = Broadcaster(
                core.sessions,
                TelegramTransport(bot, core, build_i18n()),
                FlakyLimiter(200.0, failures=7),
                200.0,
                clock=now,
            )
            await broadcaster.run_once()
        finally:
            await bot.session.close()
        assert [copies(api, u) for u in range(800, 830)] == [1] * 30
        final = await core.announcements.get(view.id, staff)
        assert final.status == "done" and final.counts.sent == 30
        async with core.sessions() as session:
            attempts = (
                await session.scalars(
                    select(DeliveryRow.attempts).where(DeliveryRow.announcement_id == view.id)
                )
            ).all()
        assert sorted(attempts) == [1] * 30  # a limiter failure is no attempt
