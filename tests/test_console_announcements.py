"""The console's announcements through a real server: composing with the live preview and audience size,
sending now or at a time in the region's timezone, the list, progress, pause, resume and cancel honoured by
a broadcaster that is sending, and crafted requests from another region refused. The preview is compared
with what the broadcaster delivers through the local Bot API server; a headless Chromium composes, sends and
watches the progress."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from html import unescape
from typing import Any

import pytest
from aiohttp import ClientSession
from aiohttp.test_utils import TestServer
from argon2 import PasswordHasher
from botkit import NOON, Env, env
from cdp import Chromium, require_chromium
from markupsafe import escape
from sqlalchemy import select
from test_console import PASSWORD, Console, FakeClock, add_account, csrf_of, login, make_console

from bot.app import Core
from bot.broadcast import TelegramTransport
from bot.config import Settings
from bot.i18n import translator
from bot.services.announcements import Audience, Broadcaster, rider_message
from bot.telegram import build_bot, build_i18n
from bot.web import build_web_app
from bot.web.console.base import CONSOLE
from bot.web.message_preview import rider_message_html, telegram_message_html
from domain.languages import LOCALES
from domain.values import StationRecord
from localapi import LocalBotAPI
from storage.models import AnnouncementRow, ConsoleEventRow
from storage.ratelimit import LocalRateLimiter

__all__ = ["env"]

T0 = datetime(2026, 12, 5, 2, 0, tzinfo=UTC)
RICH = (
    "<b>夏季送清凉</b> &amp; <i>免费<u>绿豆汤</u></i>\n"
    '<a href="https://www.acftu.org/x?a=1&amp;b=2">详情</a> <code>GZ1</code> '
    '<span class="tg-spoiler">惊喜</span>\n<blockquote>7 月 1 日起</blockquote>'
)
PREVIEW = re.compile(
    r'<figure class="tg-preview" data-testid="preview-(\w+)"[^>]*>\s*'
    r"<figcaption>[^<]*</figcaption>\s*(.*?)\s*</figure>",
    re.S,
)


def preview_of(html: str) -> dict[str, str]:
    return dict(PREVIEW.findall(html))


def text_of(html: str, name: str) -> str:
    match = re.search(rf'data-testid="{name}"[^>]*>([^<]*)<', html)
    assert match, name
    return unescape(match.group(1)).strip()


async def staff_client(site: Console, username: str, region: str) -> ClientSession:
    await add_account(site.core, username, "staff", region)
    client = site.client()
    assert (await login(site, client, username)).status == 303
    return client


async def post(
    site: Console, client: ClientSession, path: str, data: dict[str, str], token: str | None = None
) -> tuple[int, str, str]:
    token = token if token is not None else await csrf_of(client, site.url("/console/announcements/new"))
    async with client.post(
        site.url(path), data={**data, "csrf_token": token}, allow_redirects=False
    ) as response:
        return response.status, response.headers.get("Location", ""), await response.text()


def compose(text: str = RICH, **fields: str) -> dict[str, str]:
    return {"text": text, "audience": "region", "region": "4401", "when": "now", **fields}


async def subscribe(core: Core, users: range, region: str = "440106") -> None:
    for user_id in users:
        await core.subscriptions.subscribe_region(user_id, region, T0)


async def announcements_in_db(core: Core) -> list[AnnouncementRow]:
    async with core.sessions() as session:
        return list((await session.scalars(select(AnnouncementRow).order_by(AnnouncementRow.id))).all())


@pytest.fixture
async def console(settings: Settings) -> AsyncIterator[Console]:
    async for site in make_console(settings):
        await site.core.stations.save_records(
            [
                StationRecord(
                    code="XJ1", name="和田驿站", lat=37.11, lon=79.93, region="653201", timezone="Asia/Urumqi"
                )
            ]
        )
        await site.core.reload_index()
        yield site


# -- composing -----------------------------------------------------------------------------------------------
async def test_the_preview_shows_the_message_in_each_language_and_the_audience_size(console: Console) -> None:
    await subscribe(console.core, range(100, 103))
    await subscribe(console.core, range(200, 204), "440304")
    async with await staff_client(console, "clerk", "4401") as client:
        async with client.get(console.url("/console/announcements/new")) as page:
            html = await page.text()
            assert page.status == 200 and 'hx-post="/console/announcements/preview"' in html
            assert (
                '<option value="440106"' in html and "440304" not in html
            )  # districts of the clerk's region
        status, _, fragment = await post(console, client, "/console/announcements/preview", compose())
        assert status == 200 and text_of(fragment, "audience-size") == "3"
        previews = preview_of(fragment)
        assert set(previews) == set(LOCALES)
        for locale in LOCALES:
            assert previews[locale] == rider_message_html(
                rider_message(RICH, None, translator(locale).gettext)
            )
        assert '<a href="https://www.acftu.org/x?a=1&amp;b=2" rel="noopener noreferrer nofollow"' in fragment
        assert "🔕 Unsubscribe" in previews["en"] and "🔕 退订" in previews["zh_Hans"]
        # By district, and around a station.
        status, _, fragment = await post(
            console, client, "/console/announcements/preview", compose(audience="district", district="440106")
        )
        assert text_of(fragment, "audience-size") == "3"
        status, _, fragment = await post(
            console,
            client,
            "/console/announcements/preview",
            compose(audience="station", station="GZ1", radius="5"),
        )
        assert text_of(fragment, "audience-size") == "0"  # region subscribers have no cell to be near
        status, _, fragment = await post(
            console,
            client,
            "/console/announcements/preview",
            compose(audience="station", station="NOPE", radius="5"),
        )
        assert "No station with the code NOPE." in fragment


@pytest.mark.parametrize(
    ("fields", "error"),
    [
        ({"text": "第一行<br>第二行"}, "Telegram cannot read this formatting"),
        ({"text": "<b>没有结束"}, "Telegram cannot read this formatting"),
        ({"text": "  "}, "The announcement has no text."),
        ({"text": "x" * 4097}, "Too long: at most 4096 characters"),
        ({"audience": "station", "station": "GZ1", "radius": "0"}, "Type a distance in km"),
        ({"audience": "station", "station": "GZ1", "radius": "501"}, "Type a distance in km"),
        ({"audience": "station", "station": "GZ1", "radius": "nan"}, "Type a distance in km"),
        ({"when": "at", "at": "2026-12-05 09:00"}, "Choose the date and time."),
        ({"when": "at", "at": "2026-12-05T09:59"}, "That time has passed."),  # T0 is 10:00 in Beijing
        ({"when": "at", "at": "2028-12-05T09:59"}, "At most a year ahead."),
        ({"audience": "everyone"}, "Choose who gets it."),
    ],
)
async def test_a_refused_form_comes_back_whole_with_the_reason_and_nothing_is_created(
    console: Console, fields: dict[str, str], error: str
) -> None:
    await subscribe(console.core, range(100, 103))
    async with await staff_client(console, "clerk", "4401") as client:
        data = compose(**fields)
        status, _, html = await post(console, client, "/console/announcements", data)
        assert status == 400 and error in unescape(html)
        if len(data["text"]) < 200 and data["text"].strip():
            assert f">{escape(data['text'])}</textarea>" in html
    assert await announcements_in_db(console.core) == []


async def test_sending_now_and_at_a_time_in_the_regions_timezone(console: Console) -> None:
    await subscribe(console.core, range(100, 103))
    await subscribe(console.core, range(300, 302), "653201")
    async with await staff_client(console, "clerk", "4401") as client:
        status, location, _ = await post(console, client, "/console/announcements", compose())
        assert status == 303 and location == "/console/announcements/1"
        async with client.get(console.url(location)) as page:
            html = await page.text()
        assert text_of(html, "status") == "Sending" and text_of(html, "total") == "3"
        assert preview_of(html)["en"] == rider_message_html(
            rider_message(RICH, None, translator("en").gettext)
        )
        status, location, _ = await post(
            console, client, "/console/announcements", compose(when="at", at="2026-12-05T18:30")
        )
        assert status == 303
        async with client.get(console.url(location)) as page:
            html = await page.text()
        assert text_of(html, "status") == "Scheduled" and "18:30 (Asia/Shanghai)" in html
        async with client.get(console.url("/console/announcements")) as page:
            listing = await page.text()
        assert 'data-testid="announcement-1"' in listing and 'data-testid="announcement-2"' in listing
    async with await staff_client(console, "xj", "6532") as client:
        status, location, _ = await post(
            console,
            client,
            "/console/announcements",
            compose("和田通知", region="6532", when="at", at="2026-12-05T18:30"),
        )
        assert status == 303
    rows = await announcements_in_db(console.core)
    assert rows[0].status == "sending" and rows[0].scheduled_at is None and rows[0].total == 3
    assert rows[1].scheduled_at == datetime(2026, 12, 5, 10, 30, tzinfo=UTC)  # 18:30 in Beijing
    assert rows[2].scheduled_at == datetime(2026, 12, 5, 12, 30, tzinfo=UTC)  # 18:30 in Urumqi
    assert rows[2].total == 2
    async with console.core.sessions() as session:
        events = (
            await session.scalars(
                select(ConsoleEventRow).where(ConsoleEventRow.action == "announcement_create")
            )
        ).all()
    assert sorted((e.username, e.target) for e in events) == [("clerk", "1"), ("clerk", "2"), ("xj", "3")]


async def test_a_form_sent_twice_creates_one_announcement(console: Console) -> None:
    await subscribe(console.core, range(100, 103))
    async with await staff_client(console, "clerk", "4401") as client:
        token = await csrf_of(client, console.url("/console/announcements/new"))
        data = compose(key="k" * 22)
        answers = await asyncio.gather(
            *(post(console, client, "/console/announcements", data, token) for _ in range(3))
        )
        assert all(status == 303 for status, _, _ in answers)
        status, location, _ = await post(console, client, "/console/announcements", data, token)
    # One announcement, and the form sent again leads to it. (Its id is not always 1 on PostgreSQL: a
    # losing concurrent insert may have used a value of the sequence.)
    (created,) = await announcements_in_db(console.core)
    assert (status, location) == (303, f"/console/announcements/{created.id}")


# -- region scope --------------------------------------------------------------------------------------------
async def test_crafted_requests_cannot_read_change_or_target_another_region(console: Console) -> None:
    core = console.core
    await subscribe(core, range(100, 103))
    await subscribe(core, range(200, 204), "440304")
    await core.roles.grant(4403, "staff", "4403")
    theirs = await core.announcements.create(
        await core.roles.access(4403), "深圳通知", Audience("4403"), T0, scheduled_at=T0 + timedelta(days=1)
    )
    async with await staff_client(console, "clerk", "4401") as client:
        for path in (f"/console/announcements/{theirs.id}", f"/console/announcements/{theirs.id}/progress"):
            async with client.get(console.url(path), allow_redirects=False) as page:
                assert page.status == 403, path
                assert "深圳通知" not in await page.text()
        for action in ("pause", "resume", "cancel"):
            status, _, html = await post(console, client, f"/console/announcements/{theirs.id}/{action}", {})
            assert status == 403, action
        for path in ("/console/announcements/999", "/console/announcements/99999999999999999999"):
            async with client.get(console.url(path), allow_redirects=False) as page:
                assert page.status == 404, path
        async with client.get(console.url("/console/announcements")) as page:
            assert "深圳通知" not in await page.text()
        for fields in (
            {"region": "4403"},
            {"region": "44"},
            {"region": ""},
            {"audience": "district", "district": "440304"},
            {"audience": "station", "station": "SZ1", "radius": "5"},
            {"region": "4401%"},
        ):
            status, _, html = await post(console, client, "/console/announcements", compose(**fields))
            assert status == 400, fields
            assert (
                "You can only address subscribers in your region: 4401." in html or "cannot be used" in html
            )
            status, _, fragment = await post(
                console, client, "/console/announcements/preview", compose(**fields)
            )
            assert 'data-testid="audience-size"' not in fragment, fields
        # Without the CSRF token nothing changes either.
        async with client.post(
            console.url("/console/announcements"), data=compose(), allow_redirects=False
        ) as refused:
            assert refused.status == 403
    assert [(row.id, row.status) for row in await announcements_in_db(core)] == [(theirs.id, "scheduled")]


# -- progress, pause, resume, cancel while a broadcaster sends ----------------------------------------------
@dataclass
class Sending:
    site: Console
    api: LocalBotAPI
    riders: range

    def received(self) -> int:
        return sum(1 for u in self.riders for m in self.api.bot_messages(u) if m.buttons)


@pytest.fixture
async def sending(sqlite_settings: Settings) -> AsyncIterator[Sending]:
    """A console and, on the same database, a broadcaster sending through the local Bot API server at 20
    messages a second, as the bot or `yizhan worker` would in another process."""
    riders = range(1000, 1060)
    async for site in make_console(sqlite_settings):
        site.clock.at = datetime.now(UTC)
        async with LocalBotAPI() as api:
            for rider in riders:
                await api.send_text(rider, "/start", language_code="zh-hans")
            await subscribe(site.core, riders)
            bot = build_bot(api.token, api.url)
            broadcaster = Broadcaster(
                site.core.sessions,
                TelegramTransport(bot, site.core, build_i18n()),
                LocalRateLimiter(20.0),
                20.0,
                clock=lambda: datetime.now(UTC),
                idle_poll=0.05,
            )
            stop = asyncio.Event()
            task = asyncio.create_task(broadcaster.run(stop))
            try:
                yield Sending(site, api, riders)
            finally:
                stop.set()
                await asyncio.wait_for(task, 10)
                await bot.session.close()


async def progress_of(site: Console, client: ClientSession, announcement_id: int) -> str:
    site.clock.at = datetime.now(UTC)
    async with client.get(
        site.url(f"/console/announcements/{announcement_id}/progress"), headers={"HX-Request": "true"}
    ) as fragment:
        assert fragment.status == 200
        return await fragment.text()


async def test_pause_resume_and_cancel_from_the_page_are_honoured_by_the_sending_broadcaster(
    sending: Sending,
) -> None:
    site, api = sending.site, sending.api
    async with await staff_client(site, "clerk", "4401") as client:
        status, location, _ = await post(site, client, "/console/announcements", compose("<b>夏季送清凉</b>"))
        assert status == 303
        await api.wait_for(lambda: sending.received() >= 10)
        fragment = await progress_of(site, client, 1)
        assert text_of(fragment, "status") == "Sending" and 'hx-trigger="every 2s"' in fragment
        assert "min" in text_of(fragment, "eta")
        status, location, _ = await post(site, client, "/console/announcements/1/pause", {})
        assert (status, location) == (303, "/console/announcements/1?done=paused")
        at_pause = sending.received()
        await asyncio.sleep(0.6)
        settled = sending.received()
        assert settled - at_pause <= 2
        await asyncio.sleep(0.6)
        assert sending.received() == settled
        fragment = await progress_of(site, client, 1)
        assert text_of(fragment, "status") == "Paused" and text_of(fragment, "sent") == str(settled)
        assert 'data-testid="resume"' in fragment and 'data-testid="eta"' not in fragment
        async with client.get(site.url(location)) as page:
            assert "Paused: no more messages go out" in await page.text()
        status, location, _ = await post(site, client, "/console/announcements/1/pause", {})
        assert location.endswith("done=unchanged")
        status, location, _ = await post(site, client, "/console/announcements/1/resume", {})
        assert location.endswith("done=resumed")
        await api.wait_for(lambda: sending.received() >= settled + 10)
        status, location, _ = await post(site, client, "/console/announcements/1/cancel", {})
        assert location.endswith("done=cancelled")
        at_cancel = sending.received()
        await asyncio.sleep(0.8)
        final = sending.received()
        assert final - at_cancel <= 2 and final < len(sending.riders)
        fragment = await progress_of(site, client, 1)
        assert text_of(fragment, "status") == "Cancelled" and "hx-trigger" not in fragment
        assert text_of(fragment, "sent") == str(final)
        assert text_of(fragment, "cancelled") == str(len(sending.riders) - final)
        assert 'data-testid="report"' in fragment
    async with site.core.sessions() as session:
        actions = (await session.scalars(select(ConsoleEventRow.action).order_by(ConsoleEventRow.id))).all()
    assert [a for a in actions if a.startswith("announcement_")] == [
        "announcement_create",
        "announcement_pause",
        "announcement_resume",
        "announcement_cancel",
    ]


async def test_a_clerk_composes_sends_and_watches_the_progress_in_a_browser(sending: Sending) -> None:
    require_chromium()
    site = sending.site
    await add_account(site.core, "clerk", "staff", "4401")
    async with Chromium() as browser:
        page = await browser.new_page()
        await page.goto(site.url("/console/login?lang=en"))
        await page.type('input[name="username"]', "clerk")
        await page.type('input[name="password"]', PASSWORD)
        await page.click('[data-testid="login"]')
        await page.wait_for("location.pathname === '/console/' && document.readyState === 'complete'")
        await page.goto(site.url("/console/announcements/new"))
        await page.wait_for("document.querySelector('[data-testid=text]') !== null")
        await page.type('[data-testid="text"]', "<b>夏季送清凉</b>：驿站免费绿豆汤")
        await page.wait_for(
            "document.querySelector('[data-testid=audience-size]')?.textContent === '60'", timeout=15
        )
        await page.wait_for(
            "document.querySelector('[data-testid=preview-en] .tg-text b')?.textContent === '夏季送清凉'"
        )
        assert (
            await page.evaluate(
                "document.querySelector('[data-testid=preview-zh_Hans] .tg-button').textContent"
            )
            == "🔕 退订"
        )
        await page.click('[data-testid="send"]')
        await page.wait_for("location.pathname === '/console/announcements/1'")
        # The progress updates by itself until the final report.
        await page.wait_for(
            "Number(document.querySelector('[data-testid=sent]')?.textContent) > 0 &&"
            " document.querySelector('[data-testid=progress]').dataset.status === 'sending'",
            timeout=15,
        )
        await page.wait_for("document.querySelector('[data-testid=report]') !== null", timeout=30)
        assert await page.evaluate("document.querySelector('[data-testid=sent]').textContent") == "60"
        assert await page.evaluate("document.querySelector('[data-testid=left]').textContent") == "0"
        assert page.errors == []
    assert sending.received() == 60


# -- the preview is what riders receive ----------------------------------------------------------------------
async def test_the_pages_preview_in_each_language_is_what_the_broadcaster_delivers(env: Env) -> None:
    """The bot (its dispatcher and broadcaster) delivers through the local Bot API server; the message each
    rider got, read back from the server (text, entities, buttons), renders to exactly the page's preview
    in the rider's language."""
    core = env.core
    core.console.hasher = PasswordHasher(time_cost=1, memory_cost=8 * 1024, parallelism=1)
    riders = {"zh_Hans": 601, "zh_Hant": 602, "en": 603}
    tags = {"zh_Hans": "zh-hans", "zh_Hant": "zh-hant", "en": "en"}
    for locale, rider in riders.items():
        await env.act(env.api.send_text(rider, "/start", language_code=tags[locale]), rider)
        await core.subscriptions.subscribe_region(rider, "440106", NOON)
    app = build_web_app(core, secure_cookies=False)
    console_app = next(r._app for r in app.router.resources() if hasattr(r, "_app") and CONSOLE in r._app)
    console_app[CONSOLE].clock = FakeClock(NOON)
    async with TestServer(app, host="127.0.0.1") as server:
        site = Console(core, server, FakeClock(NOON))
        async with await staff_client(site, "clerk", "4401") as client:
            status, _, fragment = await post(site, client, "/console/announcements/preview", compose())
            previews = preview_of(fragment)
            assert len(set(previews.values())) == 3
            status, _location, _ = await post(site, client, "/console/announcements", compose())
            assert status == 303
    for locale, rider in riders.items():
        got: Any = await env.api.wait_for(
            lambda r=rider: next((m for m in env.api.bot_messages(r) if m.buttons), None)
        )
        rows = (got.reply_markup or {})["inline_keyboard"]
        delivered = telegram_message_html(
            got.raw["text"],
            got.raw.get("entities", []),
            [[(b["text"], b["callback_data"]) for b in row] for row in rows],
        )
        assert delivered == previews[locale], locale
