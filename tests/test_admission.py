"""A crowded server answers fast and never with a 500: admission control (503 with Retry-After), database
waits bounded, per-client rate limits (429 with RateLimit headers, X-Forwarded-For believed only from
trusted proxies), the header timeout, the GeoJSON document streamed in bounded memory, and the metrics.

Real servers on real sockets (the production runner of bot/web/server.py where its behaviour matters),
real SQLite, real Redis.
"""

from __future__ import annotations

import asyncio
import gzip
import json
import time
import tracemalloc
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from conftest import REDIS_URL, service_missing
from prometheus_client.parser import text_string_to_metric_families

from bot.app import Core, open_core
from bot.config import Settings
from bot.web import build_web_app
from bot.web.admission import client_address, trusted_networks
from bot.web.keys import ADMISSION
from bot.web.server import runner as web_runner
from domain.values import StationRecord
from storage.seed import generate_stations

STATIONS = [
    StationRecord(code="GZ001", name="天河驿站", lat=23.1301, lon=113.2601, opening_hours="24/7"),
    StationRecord(code="GZ002", name="岗顶驿站", lat=23.1330, lon=113.2630, opening_hours="24/7"),
]
NEARBY = "/api/v1/stations/nearby?lat=23.13&lon=113.26"
GEOJSON = "/api/v1/stations.geojson"


def make_settings(tmp_path: Path, **values: Any) -> Settings:
    values.setdefault("api_rate_limit", 0)
    return Settings(database_url=f"sqlite+aiosqlite:///{tmp_path / 'yizhan.db'}", _env_file=None, **values)  # type: ignore[call-arg]


@asynccontextmanager
async def core_with(
    settings: Settings, records: list[StationRecord] = STATIONS, api_pool: bool = False
) -> AsyncIterator[Core]:
    async with open_core(settings, api_pool=api_pool) as core:
        await core.stations.save_records(records)
        await core.reload_index()
        yield core


@dataclass
class Served:
    core: Core
    app: web.Application
    url: str


@asynccontextmanager
async def served(core: Core, setup: Any = None) -> AsyncIterator[Served]:
    """The web app over `core` on 127.0.0.1 through the production runner (header timeout, refusals as
    requests are read)."""
    app = build_web_app(core)
    if setup is not None:
        setup(app)
    runner = web_runner(app, core.settings)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield Served(core, app, f"http://127.0.0.1:{port}")
    finally:
        await runner.cleanup()


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


async def metrics_of(
    http: aiohttp.ClientSession, url: str
) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    async with http.get(url + "/metrics") as response:
        return samples(await response.text())


def assert_refusal(status: int, headers: Any, body: dict[str, Any], code: str) -> None:
    assert status == 503
    assert headers["Retry-After"] == "1"
    assert headers["Content-Type"] == "application/json; charset=utf-8"
    assert headers["Access-Control-Allow-Origin"] == "*"
    assert body["error"]["code"] == code
    assert "Retry-After" in body["error"]["message"]


# ------------------------------------------------------------------------------------------ admission


async def test_a_full_lane_refuses_at_once_with_a_json_503_and_retry_after(tmp_path: Path) -> None:
    release = asyncio.Event()
    entered = asyncio.Event()

    async def hold(request: web.Request) -> web.Response:
        entered.set()
        await release.wait()
        return web.json_response({"held": True})

    def setup(app: web.Application) -> None:
        app.router.add_get("/api/v1/hold", hold)

    settings = make_settings(tmp_path, http_max_in_flight=1)
    async with core_with(settings) as core, served(core, setup) as server, aiohttp.ClientSession() as http:
        held = asyncio.ensure_future(http.get(server.url + "/api/v1/hold"))
        await asyncio.wait_for(entered.wait(), 10)
        started = time.monotonic()
        async with http.get(server.url + NEARBY) as response:
            assert_refusal(response.status, response.headers, await response.json(), "overloaded")
        assert time.monotonic() - started < 5  # refused, not queued behind the held request
        async with http.get(server.url + "/healthz") as response:
            assert response.status == 200  # probes are never refused
        counted = await metrics_of(http, server.url)
        assert counted[("yizhan_http_in_flight", (("lane", "public"),))] == 1
        release.set()
        async with await held as response:
            assert response.status == 200
        async with http.get(server.url + NEARBY) as response:
            assert response.status == 200
        counted = await metrics_of(http, server.url)
    assert counted[("yizhan_http_refused_total", (("reason", "overloaded"),))] == 1
    assert (
        counted[("yizhan_http_requests_total", (("route", "/api/v1/stations/nearby"), ("status", "503")))]
        == 1
    )
    assert (
        counted[("yizhan_http_requests_total", (("route", "/api/v1/stations/nearby"), ("status", "200")))]
        == 1
    )
    assert counted[("yizhan_http_requests_total", (("route", "/api/v1/hold"), ("status", "200")))] == 1
    assert counted[("yizhan_http_in_flight", (("lane", "public"),))] == 0
    assert counted[("yizhan_errors_total", (("where", "web"),))] == 0


async def read_answer(reader: asyncio.StreamReader) -> tuple[int, dict[str, str], bytes]:
    head = (await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)).decode("latin-1").split("\r\n")
    headers = dict(line.split(": ", 1) for line in head[1:] if line)
    body = await reader.readexactly(int(headers["Content-Length"]))
    return int(head[0].split(" ")[1]), headers, body


async def test_new_requests_beyond_the_turns_budget_are_refused_as_they_are_read(tmp_path: Path) -> None:
    async with core_with(make_settings(tmp_path)) as core, served(core) as server:
        server.app[ADMISSION].max_new_per_turn = 3
        port = int(server.url.rsplit(":", 1)[1])
        streams = [await asyncio.open_connection("127.0.0.1", port) for _ in range(20)]
        await asyncio.sleep(0.2)  # every connection's handler waits for its first request
        request = f"GET {NEARBY} HTTP/1.1\r\nHost: x\r\n\r\n".encode()
        for _, writer in streams:
            writer.write(request)
        # All 20 requests are in the server's sockets before its loop reads any: one turn reads them all.
        time.sleep(0.05)  # noqa: ASYNC251 - the loop must not run meanwhile
        answers = [await read_answer(reader) for reader, _ in streams]
        statuses = [status for status, _, _ in answers]
        assert sorted(statuses) == [200] * 3 + [503] * 17
        for status, headers, body in answers:
            if status == 503:
                assert headers["Retry-After"] == "1"
                assert headers["Content-Type"] == "application/json; charset=utf-8"
                assert headers["Access-Control-Allow-Origin"] == "*"
                assert json.loads(body)["error"]["code"] == "overloaded"
        # The refused connections stay open and are served once the crowd is gone.
        for (reader, writer), status in zip(streams, statuses, strict=True):
            if status == 503:
                writer.write(request)
                assert (await read_answer(reader))[0] == 200
        for _, writer in streams:
            writer.close()
        async with aiohttp.ClientSession() as http:
            counted = await metrics_of(http, server.url)
    assert counted[("yizhan_http_refused_total", (("reason", "overloaded"),))] == 17
    assert counted[("yizhan_http_requests_total", (("route", "unrouted"), ("status", "503")))] == 17
    assert (
        counted[("yizhan_http_requests_total", (("route", "/api/v1/stations/nearby"), ("status", "200")))]
        == 20
    )


async def test_requests_the_connection_cannot_refuse_as_read_still_count_against_the_turns_budget(
    tmp_path: Path,
) -> None:
    """Requests that reach the app without the read-time check (pipelined ones; one that arrives while its
    connection is still finishing the answer before, which a client resending at once does under a flood)
    are refused by the app's own count of the turn, with the same 503: no way around the budget."""
    async with core_with(make_settings(tmp_path)) as core, served(core) as server:
        server.app[ADMISSION].max_new_per_turn = 0
        port = int(server.url.rsplit(":", 1)[1])
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        request = f"GET {NEARBY} HTTP/1.1\r\nHost: x\r\n\r\n".encode()
        writer.write(request * 3)
        answers = [await read_answer(reader) for _ in range(3)]
        assert [status for status, _, _ in answers] == [503, 503, 503]
        for _, headers, body in answers:
            assert headers["Retry-After"] == "1"
            assert json.loads(body)["error"]["code"] == "overloaded"
        # Probes are never refused by the budget.
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n" * 2)
        assert [(await read_answer(reader))[0] for _ in range(2)] == [200, 200]
        writer.close()
        async with aiohttp.ClientSession() as http:
            counted = await metrics_of(http, server.url)
    assert counted[("yizhan_http_refused_total", (("reason", "overloaded"),))] == 3
    assert counted[("yizhan_errors_total", (("where", "web"),))] == 0


async def test_a_database_wait_ends_in_a_503_while_cached_answers_need_no_database(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, db_pool_timeout=0.2)
    async with core_with(settings, api_pool=True) as core, served(core) as server, AsyncExitStack() as stack:
        assert core.api_engine is not None
        pool = core.api_engine.sync_engine.pool
        # Every connection of the API's pool taken (SQLite: 20 and 20 overflow), as by slow queries.
        while pool.checkedout() < pool.size() + pool._max_overflow:  # type: ignore[attr-defined]
            await stack.enter_async_context(core.api_engine.connect())
        async with aiohttp.ClientSession() as http:
            started = time.monotonic()
            async with http.get(server.url + "/api/v1/stations", params={"limit": "10"}) as response:
                assert_refusal(response.status, response.headers, await response.json(), "database_busy")
            assert time.monotonic() - started < 5
            # The station's details and a search come from the index and the station cache.
            async with http.get(server.url + "/api/v1/stations/GZ001") as response:
                assert response.status == 200
                assert (await response.json())["code"] == "GZ001"
            async with http.get(server.url + NEARBY) as response:
                assert response.status == 200
                assert [r["code"] for r in (await response.json())["results"]] == ["GZ001", "GZ002"]
            # The health check reads through the main pool, which the API's flood cannot take.
            async with http.get(server.url + "/healthz") as response:
                assert response.status == 200
            counted = await metrics_of(http, server.url)
    assert counted[("yizhan_http_refused_total", (("reason", "database_busy"),))] == 1
    assert counted[("yizhan_db_pool_timeouts_total", ())] == 1
    assert counted[("yizhan_errors_total", (("where", "web"),))] == 0
    # The API pool's checkouts are timed: the test's own, then the sync page's wait that ended in the 503.
    waits = counted[("yizhan_db_pool_wait_seconds_count", (("pool", "api"),))]
    assert waits == pool.size() + pool._max_overflow + 1  # type: ignore[attr-defined]
    quick = counted[("yizhan_db_pool_wait_seconds_bucket", (("le", "0.1"), ("pool", "api")))]
    assert quick == waits - 1  # only the wait for a connection that never came took DB_POOL_TIMEOUT
    assert counted[("yizhan_db_pool_wait_seconds_sum", (("pool", "api"),))] >= 0.2
    # The health check's reads went through the main pool, timed under its own label.
    assert counted[("yizhan_db_pool_wait_seconds_count", (("pool", "main"),))] >= 1


async def test_webhook_mode_gives_the_api_a_pool_of_its_own(tmp_path: Path) -> None:
    async with open_core(make_settings(tmp_path), api_pool=True) as core:
        assert core.api_stations is not core.stations
        assert core.api_stations is not None
        assert core.api_stations.cache is core.stations.cache
        await core.api_stations.count()
        async with core.engine.connect():
            assert core.engine.sync_engine.pool.checkedout() == 1
        counted = samples(core.metrics.exposition().decode()) if core.metrics else {}
    assert ("yizhan_db_pool_checked_out", (("pool", "api"),)) in counted


async def test_telegram_updates_keep_their_lane_when_the_public_one_is_full(tmp_path: Path) -> None:
    release = asyncio.Event()
    entered = asyncio.Event()

    async def hold(request: web.Request) -> web.Response:
        entered.set()
        await release.wait()
        return web.json_response({})

    async def update(request: web.Request) -> web.Response:
        return web.json_response({"ok": True})

    settings = make_settings(tmp_path, http_max_in_flight=1)
    async with core_with(settings) as core:
        app = build_web_app(core, bot_path="/webhook")
        app.router.add_get("/api/v1/hold", hold)
        app.router.add_post("/webhook", update)
        async with TestClient(TestServer(app)) as client:
            held = asyncio.ensure_future(client.get("/api/v1/hold"))
            await asyncio.wait_for(entered.wait(), 10)
            async with client.get(NEARBY) as response:
                assert response.status == 503
            async with client.post("/webhook", json={"update_id": 1}) as response:
                assert response.status == 200
            release.set()
            (await held).close()


# ------------------------------------------------------------------------------------------ rate limits


async def rate_limit_run(
    settings: Settings, headers: dict[str, str] | None = None
) -> list[aiohttp.ClientResponse]:
    async with core_with(settings) as core, served(core) as server, aiohttp.ClientSession() as http:
        answers = []
        for _ in range(3):
            async with http.get(server.url + NEARBY, headers=headers) as response:
                await response.read()
                answers.append(response)
        return answers


def assert_limited_after_burst_of_two(answers: list[aiohttp.ClientResponse]) -> None:
    assert [a.status for a in answers] == [200, 200, 429]
    assert [a.headers["RateLimit-Remaining"] for a in answers] == ["1", "0", "0"]
    assert all(a.headers["RateLimit-Limit"] == "2" for a in answers)
    refused = answers[2]
    assert refused.headers["Retry-After"] == "1"  # one request a second: the next slot is < 1 s away
    assert 1 <= int(refused.headers["RateLimit-Reset"]) <= 2
    assert refused.headers["Content-Type"] == "application/json; charset=utf-8"
    assert "RateLimit-Remaining" in refused.headers["Access-Control-Expose-Headers"]


async def test_a_client_over_its_rate_gets_429_with_ratelimit_headers(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, api_rate_limit=1, api_rate_burst=2)
    assert_limited_after_burst_of_two(await rate_limit_run(settings))


async def test_the_rate_limit_is_shared_through_redis(tmp_path: Path) -> None:
    from redis.asyncio import Redis

    redis = Redis.from_url(REDIS_URL, socket_connect_timeout=2)
    try:
        await redis.delete("yizhan:rate:api:127.0.0.1")
    except Exception as exc:
        service_missing("Redis", exc)
    # One request a minute: starting the second core cannot take long enough to earn a slot back.
    settings = make_settings(tmp_path, api_rate_limit=1 / 60, api_rate_burst=2, redis_url=REDIS_URL)
    try:
        assert [a.status for a in await rate_limit_run(settings)] == [200, 200, 429]
        # The schedule lives in Redis: another process (a second core) finds this client's burst spent.
        tmp2 = tmp_path / "other"
        tmp2.mkdir()
        other = make_settings(tmp2, api_rate_limit=1 / 60, api_rate_burst=2, redis_url=REDIS_URL)
        assert (await rate_limit_run(other))[0].status == 429
        assert await redis.exists("yizhan:rate:api:127.0.0.1")
    finally:
        await redis.delete("yizhan:rate:api:127.0.0.1")
        await redis.aclose()


async def test_forwarded_clients_have_their_own_limit_only_behind_a_trusted_proxy(tmp_path: Path) -> None:
    trusted = make_settings(tmp_path, api_rate_limit=1, api_rate_burst=1, trusted_proxies="127.0.0.1/32")
    async with core_with(trusted) as core, served(core) as server, aiohttp.ClientSession() as http:
        for client in ("203.0.113.5", "203.0.113.6", "2001:db8::1"):
            async with http.get(server.url + NEARBY, headers={"X-Forwarded-For": client}) as response:
                assert response.status == 200, client
        # A client cannot escape its limit by writing an address of its own left of the real one.
        spoofed = {"X-Forwarded-For": "198.51.100.9, 203.0.113.5"}
        async with http.get(server.url + NEARBY, headers=spoofed) as response:
            assert response.status == 429

    tmp2 = tmp_path / "untrusted"
    tmp2.mkdir()
    untrusted = make_settings(tmp2, api_rate_limit=1, api_rate_burst=1)
    async with core_with(untrusted) as core, served(core) as server, aiohttp.ClientSession() as http:
        async with http.get(server.url + NEARBY, headers={"X-Forwarded-For": "203.0.113.5"}) as response:
            assert response.status == 200
        # From an untrusted peer the header is the client's own claim: ignored, the peer is the client.
        async with http.get(server.url + NEARBY, headers={"X-Forwarded-For": "203.0.113.6"}) as response:
            assert response.status == 429


@pytest.mark.parametrize(
    ("peer", "forwarded", "client"),
    [
        ("10.0.0.2", "203.0.113.5", "203.0.113.5"),
        ("10.0.0.2", "198.51.100.9, 203.0.113.5, 10.0.0.3", "203.0.113.5"),  # two proxies of ours
        ("10.0.0.2", "", "10.0.0.2"),
        ("10.0.0.2", "not an address", "10.0.0.2"),
        ("192.0.2.1", "203.0.113.5", "192.0.2.1"),  # not a proxy of ours: its header proves nothing
    ],
)
def test_client_address_reads_x_forwarded_for_from_the_right(peer: str, forwarded: str, client: str) -> None:
    from aiohttp.test_utils import make_mocked_request

    class Transport:
        def get_extra_info(self, name: str, default: Any = None) -> Any:
            return (peer, 1234) if name == "peername" else default

    headers = {"X-Forwarded-For": forwarded} if forwarded else {}
    request = make_mocked_request("GET", "/", headers=headers, transport=Transport())
    assert client_address(request, trusted_networks(["10.0.0.0/8"])) == client


# ------------------------------------------------------------------------------------------ sync pages


@asynccontextmanager
async def counting_statements(core: Core) -> AsyncIterator[list[str]]:
    """The SQL statements the core's engine runs meanwhile."""
    from sqlalchemy import event

    statements: list[str] = []

    def seen(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        statements.append(statement)

    event.listen(core.engine.sync_engine, "before_cursor_execute", seen)
    try:
        yield statements
    finally:
        event.remove(core.engine.sync_engine, "before_cursor_execute", seen)


async def test_a_repeated_sync_page_of_an_unchanged_network_needs_no_database(tmp_path: Path) -> None:
    async with (
        core_with(make_settings(tmp_path)) as core,
        served(core) as server,
        aiohttp.ClientSession() as http,
    ):
        page = server.url + "/api/v1/stations?limit=1"

        async def read(url: str) -> dict[str, Any]:
            async with http.get(url) as response:
                assert response.status == 200
                assert response.headers["Cache-Control"] == "no-cache"
                return dict(await response.json())

        since = page + "&since=2000-01-01T00:00:00%2B00:00"
        async with counting_statements(core) as statements:
            first = await read(page)
        one_reading = len(statements)
        assert one_reading > 0  # the first reading of a page queries the database
        assert [s["code"] for s in first["stations"]] == ["GZ001"]
        second_url = page + "&cursor=" + first["next_cursor"]
        async with counting_statements(core) as statements:
            assert await read(page) == first
            second = await read(second_url)
            assert [s["code"] for s in second["stations"]] == ["GZ002"]
            assert await read(second_url) == second
        assert len(statements) == one_reading  # the second page only, once
        # Concurrent readers of a page not yet cached share one reading.
        async with counting_statements(core) as statements:
            together = await asyncio.gather(*(read(since) for _ in range(5)))
        assert len(statements) == one_reading
        assert all(answer == together[0] for answer in together)
        async with counting_statements(core) as statements:
            await read(page)
            await read(second_url)
            await read(since)
        assert statements == []  # every page above answered from memory

        # A change made through this process: every page is read afresh and shows it.
        await core.stations.update("GZ002", name="岗顶驿站（新）")
        async with counting_statements(core) as statements:
            changed = await read(server.url + "/api/v1/stations?limit=10&since=2000-01-01T00:00:00%2B00:00")
        assert statements
        assert {s["code"]: s["name"] for s in changed["stations"]}["GZ002"] == "岗顶驿站（新）"

        # A change another process announces (the change feed) moves the pages on too.
        generation = core.stations.generation
        await core.stations.apply_remote_changes([(await core.stations.get("GZ001")).id])
        assert core.stations.generation != generation
        async with counting_statements(core) as statements:
            await read(page)
        assert statements


async def test_sync_pages_are_not_kept_when_the_cache_is_off(tmp_path: Path) -> None:
    async with (
        core_with(make_settings(tmp_path, sync_cache_seconds=0)) as core,
        served(core) as server,
        aiohttp.ClientSession() as http,
    ):
        for _ in range(2):
            async with (
                counting_statements(core) as statements,
                http.get(server.url + "/api/v1/stations") as response,
            ):
                assert response.status == 200
                assert len((await response.json())["stations"]) == 2
            assert statements


# ------------------------------------------------------------------------------------------ body timeout


async def test_a_body_that_does_not_arrive_in_time_gets_a_408_and_the_connection_closed(
    tmp_path: Path,
) -> None:
    settings = make_settings(tmp_path, http_body_timeout=0.3)
    async with core_with(settings) as core, served(core) as server:
        port = int(server.url.rsplit(":", 1)[1])
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        body = json.dumps({"station": "GZ001", "kind": "closed", "device": "d" * 32}).encode()
        writer.write(
            b"POST /api/v1/reports HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            + f"Content-Length: {len(body)}\r\n\r\n".encode()
            + body[:10]  # and the rest never comes
        )
        status, headers, answer = await read_answer(reader)
        assert status == 408
        assert headers["Connection"] == "close"
        assert headers["Content-Type"] == "application/json; charset=utf-8"
        assert json.loads(answer)["error"]["code"] == "body_timeout"
        assert await asyncio.wait_for(reader.read(), 10) == b""  # closed, not lingering over the body
        writer.close()
        # A whole body in time is read as before (here: refused for what it says, not for its pace).
        async with aiohttp.ClientSession() as http:
            async with http.post(
                server.url + "/api/v1/reports", data=b"[1]", headers={"Content-Type": "application/json"}
            ) as response:
                assert response.status == 400
                assert (await response.json())["error"]["code"] == "bad_request"
            async with http.post(server.url + "/api/v1/reports", data=b"x" * 20000) as response:
                assert response.status == 413
            counted = await metrics_of(http, server.url)
    assert counted[("yizhan_http_requests_total", (("route", "/api/v1/reports"), ("status", "408")))] == 1
    assert counted[("yizhan_errors_total", (("where", "web"),))] == 0


# ------------------------------------------------------------------------------------------ header timeout


async def test_a_half_sent_request_is_closed_after_the_header_timeout(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, http_header_timeout=0.5)
    async with core_with(settings) as core, served(core) as server:
        port = int(server.url.rsplit(":", 1)[1])
        silent = await asyncio.open_connection("127.0.0.1", port)
        half = await asyncio.open_connection("127.0.0.1", port)
        half[1].write(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")  # no blank line: the headers never end
        drip = await asyncio.open_connection("127.0.0.1", port)
        started = time.monotonic()

        async def trickle() -> None:
            for byte in b"GET /healthz HTTP/1.1\r\nX-Slow: " + b"a" * 100:
                drip[1].write(bytes([byte]))
                await asyncio.sleep(0.05)

        trickling = asyncio.ensure_future(trickle())
        async with aiohttp.ClientSession() as http, http.get(server.url + NEARBY) as response:
            assert response.status == 200  # the server still answers others meanwhile
        for reader, _ in (silent, half, drip):
            assert await asyncio.wait_for(reader.read(), 10) == b""  # closed by the server
        closed_after = time.monotonic() - started
        trickling.cancel()
        for _, writer in (silent, half, drip):
            writer.close()
    assert closed_after < 5


async def test_the_listening_socket_takes_a_crowd_connecting_at_once(tmp_path: Path) -> None:
    from bot.web.server import LISTEN_BACKLOG, site

    async with core_with(make_settings(tmp_path)) as core:
        runner = web_runner(build_web_app(core), core.settings)
        await runner.setup()
        try:
            await site(runner, "127.0.0.1", 0).start()
            port = runner.addresses[0][1]
            # For a listening socket, ss's Send-Q column is the backlog it was given.
            ss = await asyncio.create_subprocess_exec(
                "ss", "-ltnH", f"sport = :{port}", stdout=asyncio.subprocess.PIPE
            )
            listed = (await ss.communicate())[0].decode().split()
            assert ss.returncode == 0
            assert listed[0] == "LISTEN"
            assert int(listed[2]) == LISTEN_BACKLOG > 128  # aiohttp's own default is 128
            # And it answers.
            async with (
                aiohttp.ClientSession() as http,
                http.get(f"http://127.0.0.1:{port}{NEARBY}") as response,
            ):
                assert response.status == 200
        finally:
            await runner.cleanup()


async def test_the_production_runner_keeps_answering_kept_alive_clients(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, http_header_timeout=2)
    async with core_with(settings) as core, served(core) as server, aiohttp.ClientSession() as http:
        for _ in range(3):
            async with http.get(server.url + NEARBY) as response:
                assert response.status == 200


# ------------------------------------------------------------------------------------------ GeoJSON


async def test_geojson_is_streamed_without_materialising_the_document(tmp_path: Path) -> None:
    records = list(generate_stations(3000, seed=7))
    async with core_with(make_settings(tmp_path), records) as core, served(core) as server:
        async with aiohttp.ClientSession(auto_decompress=False) as http:
            async with http.get(server.url + GEOJSON, headers={"Accept-Encoding": "gzip"}) as response:
                gzipped = await response.read()
            document = gzip.decompress(gzipped)
            assert len(document) > 1_000_000  # large enough for a whole copy to show
            tracemalloc.start()
            try:
                for encoding in ("identity", "gzip"):
                    received = bytearray() if encoding == "identity" else None
                    async with http.get(
                        server.url + GEOJSON, headers={"Accept-Encoding": encoding}
                    ) as response:
                        assert response.status == 200
                        expected = len(document) if encoding == "identity" else len(gzipped)
                        assert response.content_length == expected
                        size = 0
                        async for chunk in response.content.iter_chunked(64 * 1024):
                            size += len(chunk)
                            if received is not None and size <= 200_000:
                                received += chunk
                        assert size == expected
                    if received is not None:
                        assert bytes(received) == document[: len(received)]
                _, peak = tracemalloc.get_traced_memory()
            finally:
                tracemalloc.stop()
    # The server sent a 1+ MB document (and the client read it) while both held at most a few chunks.
    assert peak < len(document) // 2, (peak, len(document))
    assert json.loads(document)["type"] == "FeatureCollection"


async def test_without_redis_the_rate_limit_falls_back_on_the_process_own(unused_tcp_port: int) -> None:
    from redis.asyncio import Redis

    from storage.ratelimit import RedisClientRateLimiter

    gone = Redis.from_url(f"redis://127.0.0.1:{unused_tcp_port}/0", socket_connect_timeout=0.5)
    limiter = RedisClientRateLimiter(gone, rate=1, burst=2, fallback_s=60)
    try:
        decisions = [await limiter.check("203.0.113.5") for _ in range(3)]
    finally:
        await gone.aclose()
    # Neither refused for Redis's sake nor unlimited: this process's own GCRA answers meanwhile.
    assert [d.allowed for d in decisions] == [True, True, False]
    assert decisions[2].retry_after_s > 0
