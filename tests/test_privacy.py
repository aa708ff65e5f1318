"""Privacy: no raw rider position outlives the request that needed it, conversations expire, /forget
deletes a rider's data, and report comments and photos are purged after the retention period."""

from __future__ import annotations

import asyncio
import io
import logging
import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiogram.fsm.storage.base import StorageKey
from botkit import NOON, STATIONS, Clock, Env, button_data, env, is_offer, is_results
from conftest import REDIS_URL, service_missing
from sqlalchemy import select

from bot.app import Core, open_core
from bot.config import Settings
from bot.observability import configure_logging
from bot.telegram import build_bot, build_dispatcher
from domain.values import GeoPoint, StationRecord
from localapi import LocalBotAPI
from storage.memory_state import FSM_TTL_S, ExpiringMemoryStorage
from storage.models import BotBlockRow, RatingRow, ReporterRow, ReportRow, StaffDigestRow, UserRow
from storage.privacy_repo import PERSONAL_ROWS

__all__ = ["env"]


def fsm_key(user_id: int) -> StorageKey:
    return StorageKey(bot_id=1, chat_id=user_id, user_id=user_id)


async def flushed_redis_url() -> str:
    from redis.asyncio import Redis

    redis = Redis.from_url(REDIS_URL)
    try:
        await redis.flushdb()
    except Exception as exc:
        service_missing("Redis", exc)
    finally:
        await redis.aclose()
    return REDIS_URL


async def test_conversation_keys_in_redis_expire_after_a_day(tmp_path: Path) -> None:
    settings = Settings(
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'f.db'}",
        redis_url=await flushed_redis_url(),
        _env_file=None,  # type: ignore[call-arg]
    )
    async with open_core(settings, load_index=False) as core:
        storage = build_dispatcher(core).storage
        await storage.set_state(fsm_key(7), "ReportForm:extras")
        await storage.set_data(fsm_key(7), {"report": {"station": 1, "kind": "closed_now"}})
        keys = [key async for key in core.redis.scan_iter("fsm:*")]
        assert len(keys) == 2, keys
        for key in keys:
            assert 0 < await core.redis.ttl(key) <= FSM_TTL_S == 86_400


async def test_conversations_in_memory_expire_after_a_day(tmp_path: Path) -> None:
    settings = Settings(database_url=f"sqlite+aiosqlite:///{tmp_path / 'f.db'}", _env_file=None)  # type: ignore[call-arg]
    async with open_core(settings, load_index=False) as core:
        storage = build_dispatcher(core).storage
    assert isinstance(storage, ExpiringMemoryStorage)
    now = [1000.0]
    storage.clock = lambda: now[0]
    await storage.set_state(fsm_key(7), "ReportForm:extras")
    await storage.set_data(fsm_key(7), {"report": {"station": 1}})
    await storage.set_data(fsm_key(8), {"live": {"5": [6, 0]}})
    now[0] += FSM_TTL_S - 1
    assert await storage.get_state(fsm_key(7)) == "ReportForm:extras"
    await storage.set_data(fsm_key(7), {"report": {"station": 2}})  # touched: a day from now again
    now[0] += 2
    assert await storage.get_data(fsm_key(7)) == {"report": {"station": 2}}
    assert await storage.get_data(fsm_key(8)) == {}
    assert await storage.get_value(fsm_key(8), "live") is None
    now[0] += FSM_TTL_S
    assert await storage.get_state(fsm_key(7)) is None
    assert await storage.get_data(fsm_key(7)) == {}
    # Nothing of either conversation is left behind in memory, not even empty records.
    await storage.get_state(fsm_key(9))
    now[0] += FSM_TTL_S
    await storage.get_state(fsm_key(10))
    assert fsm_key(7) not in storage.storage and fsm_key(8) not in storage.storage
    assert fsm_key(9) not in storage.storage


@pytest.mark.parametrize("ttl", [1.0, 3600.0])
async def test_memory_storage_keeps_live_conversations(ttl: float) -> None:
    now = [0.0]
    storage = ExpiringMemoryStorage(ttl_s=ttl, clock=lambda: now[0])
    for step in range(50):
        await storage.set_data(fsm_key(1), {"step": step})
        now[0] += ttl / 2
        assert await storage.get_data(fsm_key(1)) == {"step": step}


async def test_access_log_names_the_path_but_never_the_position(tmp_path: Path, caplog) -> None:  # type: ignore[no-untyped-def]
    import logging

    import aiohttp
    from aiohttp import web

    from bot.web import access_log_options, build_web_app

    settings = Settings(
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'a.db'}",
        access_log=True,
        _env_file=None,  # type: ignore[call-arg]
    )
    async with open_core(settings) as core:
        runner = web.AppRunner(build_web_app(core), **access_log_options(settings))
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = runner.addresses[0][1]
        try:
            with caplog.at_level(logging.INFO, logger="aiohttp.access"):
                async with aiohttp.ClientSession() as http:
                    url = f"http://127.0.0.1:{port}/api/v1/stations/nearby?lat=23.139876&lon=113.269876"
                    async with http.get(url) as response:
                        assert response.status == 200
                    # Logged after the answer is written.
                    for _ in range(100):
                        if caplog.records:
                            break
                        await asyncio.sleep(0.01)
        finally:
            await runner.cleanup()
    lines = [r.getMessage() for r in caplog.records if r.name == "aiohttp.access"]
    assert any("GET /api/v1/stations/nearby" in line for line in lines), lines
    assert not any("23.13" in line or "113.26" in line or "lat=" in line for line in lines), lines


# -- /forget, proposals and retention against SQLite and PostgreSQL ------------------------------------------

AT = datetime(2025, 6, 3, 4, 0, tzinfo=UTC)
RIDER, OTHER, STAFF = 15, 16, 11


@pytest.fixture
async def core(settings: Settings) -> AsyncIterator[Core]:
    async with open_core(settings) as core:
        await core.stations.save_records(
            [
                StationRecord(
                    code=f"GZ{n}",
                    name=f"广州驿站{n}",
                    lat=23.13 + n / 100,
                    lon=113.26,
                    region="440106",
                    opening_hours="24/7",
                )
                for n in (1, 2)
            ]
        )
        await core.reload_index()
        await core.roles.grant(STAFF, "staff", "4401")
        yield core


async def rows(core: Core, model: Any, **where: Any) -> list[Any]:
    async with core.sessions() as session:
        stmt = select(model).filter_by(**where)
        return list(await session.scalars(stmt))


async def test_forget_deletes_the_riders_rows_and_unlinks_reports_and_ratings(core: Core) -> None:
    from bot.services.users import UserService

    gz1, gz2 = (await core.stations.get("GZ1")).id, (await core.stations.get("GZ2")).id
    for user in (RIDER, OTHER):
        async with core.sessions() as session:
            await UserService(session).seen(user, "骑手", None, "zh-hans")
        await core.reports.submit(user, gz1, "closed_now", AT, text="关门了", photo_file_id=f"photo-{user}")
        await core.ratings.rate(user, gz1, 4, AT)
        await core.ratings.comment(user, gz1, "不错", AT)
        await core.subscriptions.subscribe_near(user, GeoPoint(23.1327, 113.2627), AT)
        await core.subscriptions.offer_once(user, AT)
    await core.ratings.rate(RIDER, gz2, 5, AT)
    async with core.sessions() as session, session.begin():
        session.add(ReporterRow(user_id=RIDER, approved=2, rejected=0, suspended_until=None, updated_at=AT))
        suspended = AT + timedelta(days=10)
        session.add(
            ReporterRow(user_id=OTHER, approved=0, rejected=3, suspended_until=suspended, updated_at=AT)
        )

    forgotten = await core.privacy.forget(RIDER, AT)

    assert (forgotten.reports_unlinked, forgotten.ratings_unlinked) == (1, 2)
    for model, column in PERSONAL_ROWS:
        assert await rows(core, model, **{column.key: RIDER}) == [], model
        assert await rows(core, model, **{column.key: OTHER}) != [] or model in (BotBlockRow, StaffDigestRow)
    assert await rows(core, ReportRow, reporter_id=RIDER) == []
    assert await rows(core, RatingRow, user_id=RIDER) == []
    # Kept for the stations, without the person: the count of reporters, the average, the comment.
    unlinked = await rows(core, ReportRow, reporter_id=None)
    assert [(r.station_id, r.text) for r in unlinked] == [(gz1, "关门了")]
    assert len(await rows(core, RatingRow, user_id=None)) == 2
    assert (await core.ratings.summary(gz1)).count == 2
    case = (await core.reports.open_cases(await core.roles.access(STAFF)))[0][0]
    assert case.reporters == 2
    decided = await core.reports.decide(case.id, "reject", await core.roles.access(STAFF), AT)
    assert decided.reporters == (OTHER,)  # the forgotten rider is not told: nobody to tell
    assert await rows(core, ReporterRow, user_id=RIDER) == []
    # A suspension in force outlives /forget (or forgetting would lift it); the rest of the person goes.
    await core.privacy.forget(OTHER, AT)
    assert [r.suspended_until for r in await rows(core, ReporterRow, user_id=OTHER)] == [suspended]
    assert await rows(core, UserRow, id=OTHER) == []
    await core.privacy.forget(OTHER, suspended)
    assert await rows(core, ReporterRow, user_id=OTHER) == []
    # Forgetting twice (or someone unknown) is harmless.
    assert (await core.privacy.forget(RIDER, AT)).deleted == 0


async def test_a_proposed_location_is_kept_only_until_the_case_is_decided(core: Core) -> None:
    gz1 = (await core.stations.get("GZ1")).id
    staff = await core.roles.access(STAFF)
    first = await core.reports.submit(RIDER, gz1, "wrong_location", AT, detail="23.139876,113.269876")
    await core.reports.submit(OTHER, gz1, "wrong_location", AT, detail="23.138765,113.268765")
    case = await core.reports.case(first.case_id, staff)
    assert case.proposal == "23.138765,113.268765"  # staff need it to decide
    await core.reports.decide(first.case_id, "ask", staff, AT)  # still undecided: still needed
    assert (await core.reports.case(first.case_id, staff)).proposal
    await core.reports.decide(first.case_id, "reject", staff, AT)
    assert (await core.reports.case(first.case_id, staff)).proposal == ""
    assert {r.detail for r in await rows(core, ReportRow, case_id=first.case_id)} == {""}
    # Approved: the station moves there (that position is the station's now), the proposals go.
    third = await core.reports.submit(
        RIDER, gz1, "wrong_location", AT + timedelta(hours=2), detail="23.1351,113.2651"
    )
    result = await core.reports.decide(third.case_id, "approve", staff, AT + timedelta(hours=2))
    assert result.station_after is not None and (result.station_after.lat, result.station_after.lon) == (
        23.1351,
        113.2651,
    )
    assert (await core.reports.case(third.case_id, staff)).proposal == ""
    assert {r.detail for r in await rows(core, ReportRow, case_id=third.case_id)} == {""}


async def test_retention_empties_old_comments_and_photos_and_keeps_recent_ones(core: Core) -> None:
    gz1, gz2 = (await core.stations.get("GZ1")).id, (await core.stations.get("GZ2")).id
    old = AT - timedelta(days=181)
    recent = AT - timedelta(days=179)
    await core.reports.submit(RIDER, gz1, "other", old, text="old words", photo_file_id="old-photo")
    await core.reports.submit(OTHER, gz1, "other", recent, text="recent words", photo_file_id="recent-photo")
    await core.reports.submit(RIDER, gz2, "closed_now", old, photo_file_id="old-photo-2")
    assert core.privacy.retention == timedelta(days=180)

    assert await core.privacy.purge_expired(AT) == 2
    assert await core.privacy.purge_expired(AT) == 0  # nothing left to purge

    kept = {(r.reporter_id, r.station_id): (r.text, r.photo_file_id) for r in await rows(core, ReportRow)}
    assert kept == {
        (RIDER, gz1): ("", None),
        (OTHER, gz1): ("recent words", "recent-photo"),
        (RIDER, gz2): ("", None),
    }


async def test_retention_empties_old_rating_comments_too_and_keeps_the_stars(core: Core) -> None:
    """What a rider wrote about a station is kept as long as what they wrote in a report; the stars stay,
    they carry no words."""
    gz1 = (await core.stations.get("GZ1")).id
    old, recent = AT - timedelta(days=181), AT - timedelta(days=179)
    await core.ratings.rate(RIDER, gz1, 4, old)
    await core.ratings.comment(RIDER, gz1, "热水很方便，老板人很好", old)
    await core.ratings.rate(OTHER, gz1, 2, recent)
    await core.ratings.comment(OTHER, gz1, "厕所坏了", recent)

    assert await core.privacy.purge_expired(AT) == 1
    assert await core.privacy.purge_expired(AT) == 0
    kept = {r.user_id: (r.stars, r.comment) for r in await rows(core, RatingRow)}
    assert kept == {RIDER: (4, ""), OTHER: (2, "厕所坏了")}


async def test_retention_forgets_browsers_that_sent_no_report_within_it(core: Core) -> None:
    """An H5 browser's token ties its reports together; one that sent nothing for the retention period is
    forgotten as if it had asked (reports unlinked, token deleted), one still in use is not."""
    from bot.services.web_reports import WebReportService
    from storage.models import WebDeviceRow

    web = WebReportService(core.sessions, core.reports, core.stations)
    old, recent = AT - timedelta(days=200), AT - timedelta(days=10)
    gone = (await web.submit(None, "GZ1", "closed_now", old)).new_token
    kept = (await web.submit(None, "GZ1", "closed_now", recent)).new_token
    back = (await web.submit(None, "GZ2", "closed_now", old)).new_token
    await web.submit(back, "GZ1", "other", recent, text="又来了")
    assert gone and kept and back

    await core.privacy.purge_expired(AT)
    assert await web.reports_of(gone) == []
    assert len(await web.reports_of(kept)) == 1 and len(await web.reports_of(back)) == 2
    assert len(await rows(core, WebDeviceRow)) == 2
    assert len(await rows(core, ReportRow)) == 4  # the reports stay with staff
    assert sum(r.device_id is None for r in await rows(core, ReportRow)) == 1


async def test_the_retention_job_runs_in_the_background_until_stopped(core: Core) -> None:
    gz1 = (await core.stations.get("GZ1")).id
    await core.reports.submit(RIDER, gz1, "other", AT - timedelta(days=200), text="old words")
    stop = asyncio.Event()
    job = asyncio.create_task(core.privacy.run_retention(lambda: AT, stop))
    for _ in range(200):
        if not (await rows(core, ReportRow))[0].text:
            break
        await asyncio.sleep(0.02)
    stop.set()
    await asyncio.wait_for(job, 5)
    assert (await rows(core, ReportRow))[0].text == ""


def test_retention_days_are_configurable_and_positive(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("REPORT_RETENTION_DAYS", "30")
    assert Settings(_env_file=None).report_retention_days == 30  # type: ignore[call-arg]
    monkeypatch.setenv("REPORT_RETENTION_DAYS", "0")
    with pytest.raises(ValueError, match="REPORT_RETENTION_DAYS"):
        Settings(_env_file=None)  # type: ignore[call-arg]


# -- /privacy and /forget in the bot ---------------------------------------------------------------------


@pytest.mark.parametrize("lang", ["zh-hans", "zh-hant", "en"])
async def test_privacy_says_what_is_kept_in_the_riders_language(env: Env, lang: str) -> None:
    reply = await env.act(env.api.send_command(env.user_id, "/privacy", language_code=lang))
    assert (
        env.tr(lang, "<b>🔒 What this bot keeps about you</b>").replace("<b>", "").replace("</b>", "")
        in reply.text
    )
    days = env.tr(
        lang,
        "• Reports and ratings: kept for the stations; their comments and photos are deleted after "
        "{days} days. /forget removes your name from them.",
    ).format(days=180)
    assert days in reply.text
    help_reply = await env.act(env.api.send_command(env.user_id, "/help", language_code=lang))
    assert env.tr(lang, "/privacy: what the bot keeps about you; /forget deletes it.") in help_reply.text


async def test_privacy_and_forget_are_in_every_command_menu(env: Env) -> None:
    await env.api.wait_for(lambda: env.api.commands_for("en"))
    for language_code in ("", "zh", "en"):
        commands = [c["command"] for c in env.api.commands_for(language_code)]
        assert {"privacy", "forget"} <= set(commands), (language_code, commands)


async def test_forget_asks_first_and_cancelling_keeps_everything(env: Env) -> None:
    await env.location("en")
    ask = await env.act(env.api.send_command(env.user_id, "/forget", language_code="en"))
    assert button_data(ask, "fg:")
    no = next(d for d in button_data(ask, "fg:") if d.endswith(":no"))
    done = await env.press("en", ask.message_id, no)
    assert done.text == env.tr("en", "Nothing was deleted.")
    assert await rows(env.core, UserRow, id=env.user_id)
    # Someone else's button (a forged press on another chat's message) deletes nothing.
    yes = next(d for d in button_data(ask, "fg:") if d.endswith(":yes"))
    await env.api.press(502, ask.message_id, yes, chat_id=env.user_id, forged=True, language_code="en")
    await env.settle()
    assert await rows(env.core, UserRow, id=env.user_id)


# -- the whole journey, then a search for positions in everything kept -----------------------------------

RIDER_A, RIDER_B = 501, 502
#: Where the journey happens. No station shares the first three decimals of any of these latitudes, and the
#: stations' longitude (113.26) has two, so any number that starts like one of these is a leak.
SEARCH = (23.1336, 113.2634)
MOVED = (23.1352, 113.2647)  # where the live location moves to
AT_STATION = (23.1327, 113.2612)  # about 160 m from GZ0001: on site
PROPOSED = (23.1367, 113.2672)  # the right place of GZ0002, says rider A
SUBSCRIBED_AT = (23.1263, 113.2519)
B_SEARCH = (23.1293, 113.2583)
B_AT_STATION = (23.1329, 113.2593)  # rider B's abandoned report
JOURNEY = (SEARCH, MOVED, AT_STATION, PROPOSED, SUBSCRIBED_AT, B_SEARCH, B_AT_STATION)

# A clock's seconds ("02:20:23.126Z" in a log line) are not a coordinate.
_NUMBER = re.compile(r"(?<![\d.:])-?\d{1,3}\.\d{3,}")


def positions_in(text: str, points: tuple[tuple[float, float], ...] = JOURNEY) -> list[str]:
    """Numbers in `text` that give one of `points`' latitudes or longitudes to more than two decimals
    (finer than the ~5 km subscription cell)."""
    prefixes = {f"{value:.6f}"[: f"{value:.6f}".index(".") + 4] for point in points for value in point}
    found = []
    for match in _NUMBER.finditer(text):
        number = match.group().lstrip("-")
        if number[: number.index(".") + 4] in prefixes:
            found.append(text[max(0, match.start() - 60) : match.end() + 20])
    return found


def test_the_position_scanner_finds_positions_in_any_spelling() -> None:
    assert positions_in('{"here": [23.1327, 113.2612]}')
    assert positions_in("detail=23.136700,113.267200")
    assert positions_in("lat=23.13361&lon=1")
    assert positions_in("x 113.2519 y")
    assert not positions_in("23.13, 113.26 and 23.131802 and 1748923200.123 and 12.1336")
    assert not positions_in("ws0e9 440104 23.1")
    assert not positions_in('{"time": "2026-12-05T02:20:23.126Z"}')


async def dump_database(core: Core) -> str:
    """Every row of every table, every column."""
    from sqlalchemy import inspect, text

    async with core.engine.connect() as conn:
        tables = await conn.run_sync(lambda sync: inspect(sync).get_table_names())
        lines = []
        for table in tables:
            result = await conn.execute(text(f'SELECT * FROM "{table}"'))
            lines += [f"{table}: {dict(row._mapping)!r}" for row in result]
    assert any(line.startswith("stations:") for line in lines)
    return "\n".join(lines)


async def dump_redis(redis: Any) -> str:
    """Every key of the database with its value, whatever its type."""
    lines = []
    async for key in redis.scan_iter("*"):
        kind = (await redis.type(key)).decode()
        if kind == "string":
            value: Any = await redis.get(key)
        elif kind == "hash":
            value = await redis.hgetall(key)
        elif kind == "list":
            value = await redis.lrange(key, 0, -1)
        elif kind == "set":
            value = await redis.smembers(key)
        elif kind == "zset":
            value = await redis.zrange(key, 0, -1, withscores=True)
        elif kind == "stream":
            value = await redis.xrange(key)
        else:
            value = kind
        lines.append(f"{key!r} ({kind}, ttl {await redis.ttl(key)}): {value!r}")
    return "\n".join(lines)


@pytest.fixture
async def redis_env(tmp_path: Path) -> AsyncIterator[tuple[Env, io.StringIO]]:
    """The bot as in production: conversation state, isolation and caches in Redis; JSON logs captured."""
    settings = Settings(
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'journey.db'}",
        redis_url=await flushed_redis_url(),
        _env_file=None,  # type: ignore[call-arg]
    )
    logs = io.StringIO()
    root = logging.getLogger()
    levels = {name: logging.getLogger(name).level for name in ("", "alembic", "aiosqlite")}
    # The production logging at its most verbose (`yizhan run -v`).
    handler = configure_logging("json", level=logging.DEBUG, stream=logs)
    try:
        async with open_core(settings) as core:
            await core.stations.save_records(STATIONS)
            await core.reload_index()
            await core.roles.grant(STAFF, "staff", "4401")
            api = LocalBotAPI()
            url = await api.start()
            bot = build_bot(api.token, url)
            dp = build_dispatcher(core, clock=Clock(NOON), throttle_rate=50, throttle_burst=50)
            task = asyncio.create_task(dp.start_polling(bot, handle_signals=False, polling_timeout=1))
            await api.wait_for(lambda: api.calls_to("getUpdates"))
            try:
                yield Env(api, core, dp["clock"], dp, user_id=RIDER_A), logs
            finally:
                await dp.stop_polling()
                await asyncio.wait_for(task, 10)
                await bot.session.close()
                await api.stop()
    finally:
        root.removeHandler(handler)
        for name, level in levels.items():
            logging.getLogger(name).setLevel(level)


async def after(env: Env, user: int, action: Any, wanted: Any = None) -> Any:
    """Run a user action; the newest bot message after it in their chat (that `wanted` accepts)."""
    mark = env.api.mark()
    await action

    def found() -> Any:
        fresh = [
            m for m in env.api.changes_since(user, mark)[0] if m.from_bot and (wanted is None or wanted(m))
        ]
        return fresh[-1] if fresh else None

    return await env.api.wait_for(found)


async def open_card(env: Env, user: int, point: tuple[float, float], code: str) -> Any:
    results = await after(env, user, env.api.send_location(user, *point, language_code="en"), is_results)
    station = await env.core.stations.get(code)
    data = next(d for d in button_data(results, "st:") if d.startswith(f"st:{station.id}:"))
    mark = env.api.mark()
    card = await after(
        env, user, env.api.press(user, results.message_id, data, language_code="en"), lambda m: code in m.text
    )
    # The card comes first, then a venue for the map: wait for both.
    await env.api.wait_for(lambda: any(m.venue for m in env.api.changes_since(user, mark)[0]))
    return card


async def start_report(env: Env, user: int, point: tuple[float, float], code: str, kind: str) -> Any:
    card = await open_card(env, user, point, code)
    start = button_data(card, "rp:s:")[0]
    kinds = await after(
        env,
        user,
        env.api.press(user, card.message_id, start, language_code="en"),
        lambda m: button_data(m, "rp:k:"),
    )
    choice = next(d for d in button_data(kinds, "rp:k:") if d.endswith(f":{kind}"))
    return await after(env, user, env.api.press(user, kinds.message_id, choice, language_code="en"))


async def share(env: Env, user: int, point: tuple[float, float]) -> Any:
    """A location in the middle of a step; the bot's answer with the send button."""
    return await after(
        env, user, env.api.send_location(user, *point, language_code="en"), lambda m: button_data(m, "rp:go:")
    )


async def press_go(env: Env, user: int, message: Any) -> Any:
    go = button_data(message, "rp:go:")[0]
    return await after(env, user, env.api.press(user, message.message_id, go, language_code="en"))


async def test_after_a_journey_and_forget_no_position_is_kept_anywhere(
    redis_env: tuple[Env, io.StringIO],
) -> None:
    env, logs = redis_env
    api, core, redis = env.api, env.core, env.core.redis
    a = RIDER_A
    await after(env, a, api.send_command(a, "/start", language_code="en"))
    # A search (and the one-time subscription offer after it).
    await after(env, a, api.send_location(a, *SEARCH, language_code="en"), is_offer)
    # A live location that moves: the results follow it.
    live = await api.send_location(a, *SEARCH, live_period=900, language_code="en")
    await env.settle()
    env.clock.now += timedelta(seconds=31)
    await api.update_live_location(a, live["message_id"], *MOVED)
    await env.settle()
    # A closure report made on site, with its location.
    extras = await start_report(env, a, SEARCH, "GZ0001", "closed_now")
    thanks = await press_go(env, a, await share(env, a, AT_STATION))
    assert env.tr("en", "🙏 Thank you! Union staff will check it.") in thanks.text
    # A wrong-location report, which staff then decide.
    await start_report(env, a, SEARCH, "GZ0002", "wrong_location")
    await press_go(env, a, await share(env, a, PROPOSED))
    staff = await core.roles.access(STAFF)
    cases, _ = await core.reports.open_cases(staff)
    wrong = next(c for c in cases if c.kind.value == "wrong_location")
    assert wrong.proposal == f"{PROPOSED[0]:.6f},{PROPOSED[1]:.6f}"
    await core.reports.decide(wrong.id, "reject", staff, env.clock())
    # A rating with a comment.
    card = await open_card(env, a, SEARCH, "GZ0101")
    station3 = (await core.stations.get("GZ0101")).id
    stars = await after(env, a, api.press(a, card.message_id, f"rt:{station3}:0", language_code="en"))
    await after(env, a, api.press(a, stars.message_id, f"rt:{station3}:4", language_code="en"))
    await after(env, a, api.send_text(a, "热水很方便", language_code="en"))
    # A subscription with the area of a shared location.
    await after(
        env, a, api.send_command(a, "/subscribe", language_code="en"), lambda m: button_data(m, "sb:p:")
    )
    await after(env, a, api.send_location(a, *SUBSCRIBED_AT, language_code="en"), lambda m: "🔔" in m.text)
    assert await core.subscriptions.is_subscribed(a)
    # Rider B leaves a report half-way, after sharing where they stand.
    b = RIDER_B
    await after(env, b, api.send_location(b, *B_SEARCH, language_code="en"), is_offer)
    extras = await start_report(env, b, B_SEARCH, "GZ0001", "closed_now")
    await share(env, b, B_AT_STATION)
    del extras

    # Conversation state in Redis expires, whoever leaves it behind.
    fsm_keys = [key async for key in redis.scan_iter("fsm:*")]
    assert any(f":{b}:".encode() in key for key in fsm_keys)
    for key in fsm_keys:
        # -2: gone since the scan (an update's isolation lock is released when its handler ends).
        ttl = await redis.ttl(key)
        assert ttl == -2 or 0 < ttl <= FSM_TTL_S, (key, ttl)

    # Rider A asks to be forgotten.
    ask = await after(env, a, api.send_command(a, "/forget", language_code="en"))
    yes = next(d for d in button_data(ask, "fg:") if d.endswith(":yes"))
    done = await after(env, a, api.press(a, ask.message_id, yes, language_code="en"))
    assert done.text.startswith(env.tr("en", "Done: your data is deleted.")[:20])
    await env.settle()

    # Their own rows are gone; their reports and ratings stay, unlinked.
    for model, column in PERSONAL_ROWS:
        assert await rows(core, model, **{column.key: a}) == [], model
    assert await rows(core, ReportRow, reporter_id=a) == []
    assert await rows(core, RatingRow, user_id=a) == []
    assert len(await rows(core, ReportRow, reporter_id=None)) == 2
    unlinked_rating = await rows(core, RatingRow, user_id=None)
    assert [(r.stars, r.comment) for r in unlinked_rating] == [(4, "热水很方便")]
    assert not [key async for key in redis.scan_iter(f"fsm:*:{a}:*")]
    assert await rows(core, UserRow, id=b)  # the other rider is untouched

    # The searches' counters too (bot/services/analytics.py): cells, never positions or riders.
    assert await core.demand.flush() > 0
    database, keys, logged = await dump_database(core), await dump_redis(redis), logs.getvalue()
    print(database)
    assert "热水很方便" in database and "yizhan:" in keys and "Update id=" in logged  # the dumps are real
    demand = [line for line in database.splitlines() if line.startswith("search_demand:")]
    assert demand and not any(str(rider) in line for line in demand for rider in (a, b))
    assert positions_in(database) == []
    assert positions_in(keys) == []
    assert positions_in(logged) == []


async def test_a_database_error_in_the_logs_carries_no_parameters(core: Core) -> None:
    from sqlalchemy.exc import DBAPIError, IntegrityError

    gz1 = (await core.stations.get("GZ1")).id
    with pytest.raises(IntegrityError) as failed:
        async with core.sessions() as session, session.begin():
            # No such case: the foreign key refuses the row, and the error names the statement.
            session.add(
                ReportRow(
                    case_id=10_000,
                    station_id=gz1,
                    reporter_id=RIDER,
                    kind="wrong_location",
                    detail="23.139876,113.269876",
                    created_at=AT,
                )
            )
    assert isinstance(failed.value, DBAPIError) and "INSERT INTO reports" in str(failed.value)
    assert positions_in(str(failed.value), ((23.139876, 113.269876),)) == []
