"""Two bot processes in webhook mode over PostgreSQL+PostGIS and Redis, behind a small load balancer.

The local Bot API server posts updates to the balancer, which spreads them over the two replicas; the
tests check that conversations, station changes and redelivered updates behave as one service.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import socket
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from conftest import REDIS_URL, empty_postgres, service_missing

from bot.app import open_core
from bot.config import Settings
from domain.values import StationRecord
from localapi import LocalBotAPI

pytestmark = pytest.mark.postgres
ROOT = Path(__file__).resolve().parent.parent
SECRET = "replica-secret-shared-by-every-replica-0123"
STAFF = 900


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Balancer:
    backends: list[str]
    hits: dict[str, int] = field(default_factory=dict)
    pinned: str | None = None

    def __post_init__(self) -> None:
        self._next = itertools.cycle(self.backends)

    async def handle(self, request: web.Request) -> web.Response:
        backend = self.pinned or next(self._next)
        self.hits[backend] = self.hits.get(backend, 0) + 1
        body = await request.read()
        headers = {
            k: v
            for k, v in request.headers.items()
            if k.lower() in ("content-type", "x-telegram-bot-api-secret-token")
        }
        async with aiohttp.ClientSession() as http:
            async with http.post(backend + request.path, data=body, headers=headers) as response:
                return web.Response(
                    status=response.status, body=await response.read(), content_type=response.content_type
                )


@dataclass
class Cluster:
    api: LocalBotAPI
    balancer: Balancer
    lb_url: str
    replicas: list[str]
    settings: Settings


@pytest.fixture(scope="module")
async def cluster(postgres_url: str) -> AsyncIterator[Cluster]:
    """Started once for the module: replicas take seconds to start (imports, migrations, index)."""
    from redis.asyncio import Redis

    redis = Redis.from_url(REDIS_URL)
    try:
        await redis.flushdb()
    except Exception as exc:
        service_missing("Redis", exc)
    await empty_postgres(postgres_url)
    settings = Settings(database_url=postgres_url, redis_url=REDIS_URL, _env_file=None)  # type: ignore[call-arg]
    async with open_core(settings) as core:
        await core.stations.save_records(
            [
                StationRecord(
                    code="C1",
                    name="一号驿站",
                    lat=23.131,
                    lon=113.26,
                    region="440106",
                    opening_hours="24/7",
                    amenities=("drinking_water", "toilet"),
                ),
                StationRecord(
                    code="C2", name="二号驿站", lat=23.136, lon=113.26, region="440106", opening_hours="24/7"
                ),
            ]
        )
        await core.roles.grant(STAFF, "staff", "4401")
    api = LocalBotAPI()
    await api.start()
    ports = [free_port(), free_port()]
    replicas = [f"http://127.0.0.1:{port}" for port in ports]
    balancer = Balancer(replicas)
    lb_app = web.Application()
    lb_app.router.add_post("/webhook", balancer.handle)
    lb_runner = web.AppRunner(lb_app)
    await lb_runner.setup()
    lb_port = free_port()
    await web.TCPSite(lb_runner, "127.0.0.1", lb_port).start()
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "DATABASE_URL": postgres_url,
        "REDIS_URL": REDIS_URL,
        "BOT_TOKEN": api.token,
        "TELEGRAM_API_URL": api.url,
        "WEBHOOK_URL": f"http://127.0.0.1:{lb_port}/webhook",
        "WEBHOOK_SECRET": SECRET,
    }
    procs = [
        await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bot",
            "run",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            cwd=ROOT,
            env=env,
            stdout=asyncio.subprocess.DEVNULL,
        )
        for port in ports
    ]
    try:
        async with aiohttp.ClientSession() as http:
            for replica in replicas:
                for _ in range(1200):  # 2 minutes: importing aiogram alone takes ~10 s of CPU
                    try:
                        async with http.get(replica + "/healthz") as response:
                            if response.status == 200:
                                break
                    except aiohttp.ClientError:
                        pass
                    await asyncio.sleep(0.1)
                else:
                    raise RuntimeError(f"replica {replica} did not start")
        await api.wait_for(lambda: api.calls_to("setWebhook"), timeout=10)
        yield Cluster(api, balancer, f"http://127.0.0.1:{lb_port}", replicas, settings)
    finally:
        for proc in procs:
            if proc.returncode is None:
                proc.terminate()
        for proc in procs:
            try:
                await asyncio.wait_for(proc.wait(), 10)
            except TimeoutError:
                proc.kill()
        await lb_runner.cleanup()
        await api.stop()
        await redis.aclose()


async def newest(api: LocalBotAPI, user: int, after: int, needle: str) -> Any:
    return await api.wait_for(
        lambda: next(
            (m for m in reversed(api.bot_messages(user)) if m.message_id > after and needle in str(m.raw)),
            None,
        ),
        timeout=10,
    )


def top(api: LocalBotAPI, user: int) -> int:
    return max((m.message_id for m in api.chat(user)), default=0)


async def test_the_webhook_is_set_once_and_a_conversation_hops_between_replicas(cluster: Cluster) -> None:
    api, user = cluster.api, 501
    assert len(api.calls_to("setWebhook")) == 1
    mark = top(api, user)
    await api.send_location(user, 23.13, 113.26, language_code="en")
    results = await newest(api, user, mark, "Nearest open stations")
    station = next(
        b["callback_data"] for b in results.buttons if b.get("callback_data", "").startswith("st:")
    )
    mark = top(api, user)
    await api.press(user, results.message_id, station, language_code="en")
    card = await newest(api, user, mark, "rp:s:")
    await api.wait_for(lambda: api.bot_messages(user)[-1].venue, timeout=10)
    mark = top(api, user)
    await api.press(
        user,
        card.message_id,
        next(b["callback_data"] for b in card.buttons if b.get("callback_data", "").startswith("rp:s:")),
        language_code="en",
    )
    kinds = await newest(api, user, mark, "rp:k:")
    mark = top(api, user)
    await api.press(
        user,
        kinds.message_id,
        next(b["callback_data"] for b in kinds.buttons if b["callback_data"].endswith(":wrong_hours")),
        language_code="en",
    )
    await newest(api, user, mark, "opening hours")
    mark = top(api, user)
    await api.send_text(user, "Mo-Su 07:00-19:00", language_code="en")  # the FSM state lives in Redis
    extras = await newest(api, user, mark, "rp:go:")
    mark = top(api, user)
    await api.press(
        user,
        extras.message_id,
        next(b["callback_data"] for b in extras.buttons if b["callback_data"].startswith("rp:go:")),
        language_code="en",
    )
    await api.wait_for(lambda: any("Thank you" in m.text for m in api.bot_messages(user)), timeout=10)
    assert all(cluster.balancer.hits.get(r, 0) >= 2 for r in cluster.replicas), cluster.balancer.hits
    async with open_core(cluster.settings, load_index=False) as core:
        cases, _ = await core.reports.open_cases(await core.roles.access(STAFF))
    assert [case.proposal for case in cases] == ["Mo-Su 07:00-19:00"]


async def test_a_station_closed_through_one_replica_leaves_the_others_results_within_a_second(
    cluster: Cluster,
) -> None:
    api = cluster.api
    a, b = cluster.replicas
    cluster.balancer.pinned = a
    await api.send_text(STAFF, "/station C1", language_code="en")
    card = await api.wait_for(
        lambda: next((m for m in api.bot_messages(STAFF) if "sf:tc:" in str(m.raw)), None), timeout=10
    )
    close = next(
        b_["callback_data"] for b_ in card.buttons if b_.get("callback_data", "").startswith("sf:tc:")
    )
    query = await api.press(STAFF, card.message_id, close, language_code="en")
    await api.wait_for(lambda: api.callback_answers.get(query), timeout=10)
    loop = asyncio.get_running_loop()
    closed_at = loop.time()
    async with aiohttp.ClientSession() as http:
        while True:
            async with http.get(
                b + "/api/v1/stations/nearby", params={"lat": "23.13", "lon": "113.26", "k": "2"}
            ) as r:
                codes = [s["code"] for s in (await r.json())["results"]]
            if "C1" not in codes:
                break
            assert loop.time() - closed_at < 1.0, "replica B still shows the closed station after 1 s"
            await asyncio.sleep(0.02)


async def test_the_same_update_delivered_twice_is_handled_once(cluster: Cluster) -> None:
    api, user = cluster.api, 777
    await api.send_text(user, "/help", language_code="en")
    await api.wait_for(lambda: api.bot_messages(user), timeout=10)
    update = {
        "update_id": 31337,
        "message": {
            "message_id": 50,
            "date": 0,
            "chat": {"id": user, "type": "private"},
            "from": {"id": user, "is_bot": False, "first_name": "x", "language_code": "en"},
            "text": "/help",
            "entities": [{"type": "bot_command", "offset": 0, "length": 5}],
        },
    }
    before = len(api.bot_messages(user))
    async with aiohttp.ClientSession() as http:
        for _ in range(2):  # round robin: once to each replica
            async with http.post(
                cluster.lb_url + "/webhook", json=update, headers={"X-Telegram-Bot-Api-Secret-Token": SECRET}
            ) as response:
                assert response.status == 200
    await asyncio.sleep(0.5)
    assert len(api.bot_messages(user)) == before + 1


async def test_a_language_chosen_through_one_replica_is_used_by_all_of_them(cluster: Cluster) -> None:
    api, user = cluster.api, 502
    # Two searches: the balancer alternates, so each replica now has the user in its cache.
    for _ in cluster.replicas:
        mark = top(api, user)
        await api.send_location(user, 23.13, 113.26, language_code="en")
        await newest(api, user, mark, "Nearest open stations")
    mark = top(api, user)
    await api.send_text(user, "/language", language_code="en")
    menu = await newest(api, user, mark, "lang:")
    mark = top(api, user)
    await api.press(user, menu.message_id, "lang:zh_Hant", language_code="en")
    await api.wait_for(lambda: api.callback_answers, timeout=10)
    # Whichever replica answers, it answers in the language chosen (the other dropped its cached copy).
    for _ in cluster.replicas:
        mark = top(api, user)
        await api.send_location(user, 23.13, 113.26, language_code="en")
        await newest(api, user, mark, "附近正在開放的驛站")
