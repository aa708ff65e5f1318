"""Privacy: no raw rider position outlives the request that needed it, conversations expire, /forget
deletes a rider's data, and report comments and photos are purged after the retention period."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiogram.fsm.storage.base import StorageKey
from botkit import Env, button_data, env
from conftest import REDIS_URL, service_missing
from sqlalchemy import select

from bot.app import Core, open_core
from bot.config import Settings
from bot.telegram import build_dispatcher
from domain.values import GeoPoint, StationRecord
from storage.memory_state import FSM_TTL_S, ExpiringMemoryStorage
from storage.models import BotBlockRow, RatingRow, ReportRow, StaffDigestRow, UserRow
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

    forgotten = await core.privacy.forget(RIDER)

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
    # Forgetting twice (or someone unknown) is harmless.
    assert (await core.privacy.forget(RIDER)).deleted == 0


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
