"""With Redis: shared FSM state and duplicate-update suppression, and what happens when Redis goes away.

A private redis-server is started on a free port and stopped and restarted during a stream of searches.
"""

from __future__ import annotations

import asyncio
import shutil
import socket
import subprocess
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bot.app import Core, open_core
from bot.config import Settings
from bot.telegram import build_bot, build_dispatcher
from domain.values import StationRecord
from localapi import LocalBotAPI

NOON = datetime(2025, 6, 3, 4, 0, tzinfo=UTC)
STATIONS = [
    StationRecord(
        code="R1",
        name="红星驿站",
        lat=23.131,
        lon=113.26,
        region="440106",
        opening_hours="24/7",
        amenities=("drinking_water",),
    ),
    StationRecord(code="R2", name="蓝天驿站", lat=23.135, lon=113.26, region="440106", opening_hours="24/7"),
]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class RedisServer:
    def __init__(self, port: int, workdir: Path) -> None:
        self.port = port
        self.workdir = workdir
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        binary = shutil.which("redis-server")
        assert binary, "redis-server is needed for this test"
        self.proc = subprocess.Popen(
            [
                binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.workdir),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for _ in range(200):
            with socket.socket() as sock:
                if sock.connect_ex(("127.0.0.1", self.port)) == 0:
                    return
            import time

            time.sleep(0.02)
        raise RuntimeError("redis-server did not start")

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(10)
            self.proc = None


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    if shutil.which("redis-server") is None:
        from conftest import service_missing

        service_missing("redis-server", FileNotFoundError("redis-server"))
    server = RedisServer(free_port(), tmp_path)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@dataclass
class Bot:
    api: LocalBotAPI
    core: Core


@pytest.fixture
async def running(redis_server: RedisServer, tmp_path: Path) -> AsyncIterator[Bot]:
    settings = Settings(
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'r.db'}",
        redis_url=f"redis://127.0.0.1:{redis_server.port}/0",
        _env_file=None,  # type: ignore[call-arg]
    )
    async with open_core(settings, follow_changes=True) as core:
        await core.stations.save_records(STATIONS)
        await core.reload_index()
        async with LocalBotAPI() as api:
            bot = build_bot(api.token, api.url)
            dp = build_dispatcher(core, clock=lambda: NOON, throttle_rate=100, throttle_burst=100)
            task = asyncio.create_task(dp.start_polling(bot, handle_signals=False, polling_timeout=1))
            await api.wait_for(lambda: api.calls_to("getUpdates"))
            try:
                yield Bot(api, core)
            finally:
                await dp.stop_polling()
                await asyncio.wait_for(task, 15)
                await bot.session.close()


async def search(api: LocalBotAPI, user: int) -> str:
    return (await search_message(api, user)).text


async def test_searches_keep_answering_while_redis_restarts_and_fsm_flows_recover(
    running: Bot, redis_server: RedisServer
) -> None:
    api = running.api
    answered = 0
    for round_ in range(30):
        if round_ == 8:
            redis_server.stop()
        if round_ == 20:
            redis_server.start()
            await asyncio.sleep(1.5)  # reconnect
        text = await search(api, 600 + round_ % 3)
        assert "红星驿站" in text
        answered += 1
    assert answered == 30

    # A multi-step flow while Redis is down: told to try again, nothing breaks.
    redis_server.stop()
    reply = await start_hours_report(api, 700)
    assert reply.text == "This step cannot be saved right now. Please try again in a moment."
    redis_server.start()
    await asyncio.sleep(1.5)
    reply = await start_hours_report(api, 700)
    assert "opening hours" in reply.text and "Mo-Fr 08:00-18:00" in reply.text
    mark = api.mark()
    await api.send_text(700, "Mo-Su 06:00-07:00", language_code="en")
    extras = await api.wait_for_change(700, mark)
    assert "Send report" in str(extras.buttons)


async def start_hours_report(api: LocalBotAPI, user: int) -> object:
    results = await search_message(api, user)
    await asyncio.sleep(0.2)  # let a subscription offer, if any, arrive first
    station_button = next(
        b.get("callback_data", "") for b in results.buttons if b.get("callback_data", "").startswith("st:")
    )
    await api.press(user, results.message_id, station_button, language_code="en")
    card = await api.wait_for(
        lambda: next(
            (m for m in reversed(api.bot_messages(user)) if m.buttons and "rp:s:" in str(m.buttons)), None
        )
    )
    await api.wait_for(lambda: api.bot_messages(user)[-1].venue)
    mark = api.mark()
    start = next(
        b.get("callback_data", "") for b in card.buttons if b.get("callback_data", "").startswith("rp:s:")
    )
    await api.press(user, card.message_id, start, language_code="en")
    kinds = await api.wait_for_change(user, mark)
    if "rp:k:" not in str(kinds.buttons):
        return kinds  # the flow could not start
    mark = api.mark()
    hours = next(
        b.get("callback_data", "")
        for b in kinds.buttons
        if b.get("callback_data", "").endswith(":wrong_hours")
    )
    await api.press(user, kinds.message_id, hours, language_code="en")
    return await api.wait_for_change(user, mark)


async def search_message(api: LocalBotAPI, user: int):  # type: ignore[no-untyped-def]
    """The results message answering a new location (other messages, like an offer, may follow it)."""
    seen = max((m.message_id for m in api.chat(user)), default=0)
    await api.send_location(user, 23.13, 113.26, language_code="en")
    return await api.wait_for(
        lambda: next(
            (m for m in api.bot_messages(user) if m.message_id > seen and "Nearest open stations" in m.text),
            None,
        ),
        timeout=10,
    )


async def test_the_same_update_delivered_twice_is_handled_once(running: Bot) -> None:
    api = running.api
    await search_message(api, 800)  # first contact (and the one-time subscription offer) out of the way
    await asyncio.sleep(0.3)
    update = {
        "update_id": 424242,
        "message": {
            "message_id": 99,
            "date": 0,
            "chat": {"id": 800, "type": "private"},
            "from": {"id": 800, "is_bot": False, "first_name": "x", "language_code": "en"},
            "location": {"latitude": 23.13, "longitude": 113.26},
        },
    }
    before = len(api.bot_messages(800))
    await api.feed(update)
    await api.wait_for(lambda: len(api.bot_messages(800)) == before + 1)
    await api.feed(update)
    await api.wait_for(lambda: not api.pending_updates)
    await asyncio.sleep(0.5)
    assert len(api.bot_messages(800)) == before + 1


async def test_a_change_announced_by_another_process_patches_the_index(running: Bot, tmp_path: Path) -> None:
    from domain.values import GeoPoint, StationStatus

    core = running.core
    other = Settings(
        database_url=core.settings.database_url, redis_url=core.settings.redis_url, _env_file=None
    )  # type: ignore[call-arg]
    async with open_core(other, load_index=False) as elsewhere:
        await elsewhere.stations.update("R1", status=StationStatus.TEMPORARILY_CLOSED)
    loop = asyncio.get_running_loop()
    started = loop.time()
    while "R1" in [h.code for h in core.search.find_nearest_open(GeoPoint(23.13, 113.26), 2, (), NOON)]:
        assert loop.time() - started < 1.0, "the change did not arrive within 1 s"
        await asyncio.sleep(0.01)
