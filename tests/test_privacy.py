"""Privacy: no raw rider position outlives the request that needed it, conversations expire, /forget
deletes a rider's data, and report comments and photos are purged after the retention period."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from aiogram.fsm.storage.base import StorageKey
from conftest import REDIS_URL, service_missing

from bot.app import open_core
from bot.config import Settings
from bot.telegram import build_dispatcher
from storage.memory_state import FSM_TTL_S, ExpiringMemoryStorage


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
