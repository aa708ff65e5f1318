"""Logs and metrics as operators see them: JSON log lines that name the update and the user, Prometheus
metrics at `/metrics`, and `/healthz` telling a load balancer whether this process can serve.

The bot side runs through the real dispatcher against the local Bot API server (tests/botkit.py); the web
side through aiohttp's TestServer over the same core.
"""

from __future__ import annotations

import asyncio
import io
import json
import logging
import re
import socket
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from botkit import STATIONS, Env, env
from conftest import REDIS_URL, service_missing
from prometheus_client.parser import text_string_to_metric_families

from bot.app import Core, open_core
from bot.broadcast import build_broadcaster
from bot.config import Settings
from bot.observability import (
    ContextFilter,
    JsonFormatter,
    Metrics,
    TextFormatter,
    configure_logging,
    log_context,
)
from bot.services.announcements import Audience
from bot.telegram import build_bot, build_i18n
from bot.web import build_web_app
from domain.values import StationRecord
from localapi import LocalBotAPI

__all__ = ["env"]


# ------------------------------------------------------------------------------------------ harness


@contextmanager
def captured_logs(formatter: logging.Formatter, *loggers_at_info: str) -> Iterator[io.StringIO]:
    """Everything logged at INFO and above, formatted as the process would write it to stderr. Some
    chatty loggers (SQLAlchemy's SQL) are switched on to prove that lines of other libraries carry the
    context too."""
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(formatter)
    handler.addFilter(ContextFilter())
    root = logging.getLogger()
    saved = root.level, {name: logging.getLogger(name).level for name in loggers_at_info}
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    for name in loggers_at_info:
        logging.getLogger(name).setLevel(logging.INFO)
    try:
        yield out
    finally:
        root.removeHandler(handler)
        root.setLevel(saved[0])
        for name, level in saved[1].items():
            logging.getLogger(name).setLevel(level)


@asynccontextmanager
async def web_client(core: Core) -> AsyncIterator[TestClient[web.Request, web.Application]]:
    client = TestClient(TestServer(build_web_app(core)))
    await client.start_server()
    try:
        yield client
    finally:
        await client.close()


async def scrape(
    client: TestClient[web.Request, web.Application],
) -> dict[tuple[str, tuple[Any, ...]], float]:
    """`/metrics` as {(sample name, sorted labels): value}."""
    async with client.get("/metrics") as response:
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/plain; version=")
        text = await response.text()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


async def health(core: Core) -> tuple[int, dict[str, Any]]:
    async with web_client(core) as client, client.get("/healthz") as response:
        return response.status, await response.json()


def sqlite(tmp_path: Path, **kw: Any) -> Settings:
    return Settings(database_url=f"sqlite+aiosqlite:///{tmp_path / 'o.db'}", _env_file=None, **kw)  # type: ignore[call-arg]


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# ------------------------------------------------------------------------------------------ logs


async def test_json_log_lines_name_the_update_and_the_user_while_it_is_handled(env: Env) -> None:
    with captured_logs(JsonFormatter(), "sqlalchemy.engine") as out:
        await env.location("en")
        await env.settle()
    entries = [json.loads(line) for line in out.getvalue().splitlines()]
    assert entries
    for entry in entries:
        assert {"time", "level", "logger", "message"} <= entry.keys()
        assert datetime.fromisoformat(entry["time"]).utcoffset() == UTC.utcoffset(None)
    # aiogram's summary line, written when the update is done, names the update it was.
    handled = {
        int(match.group(1))
        for entry in entries
        if (match := re.match(r"Update id=(\d+) is handled", entry["message"]))
    }
    assert handled
    during = [entry for entry in entries if "update_id" in entry]
    assert {entry["update_id"] for entry in during} <= handled
    assert {entry["user_id"] for entry in during} == {env.user_id}
    # Lines written by other libraries during the update carry the context too: SQLAlchemy's SQL.
    assert any(entry["logger"].startswith("sqlalchemy") for entry in during)
    # Outside an update nothing claims one (the polling loop, aiogram's summary).
    assert all("update_id" not in entry for entry in entries if entry["message"].startswith("Update id="))


async def test_a_handler_error_is_one_json_line_with_the_exception_the_update_and_the_user(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("index exploded")

    monkeypatch.setattr(env.core.search, "find_nearest_open", broken)
    with captured_logs(JsonFormatter()) as out:
        await env.location("zh-hans")
    errors = [json.loads(line) for line in out.getvalue().splitlines() if '"ERROR"' in line]
    failed = [entry for entry in errors if entry["logger"] == "bot.telegram"]
    assert len(failed) == 1
    entry = failed[0]
    assert entry["user_id"] == env.user_id and isinstance(entry["update_id"], int)
    assert "index exploded" in entry["message"]
    assert "Traceback" in entry["exception"] and "RuntimeError: index exploded" in entry["exception"]


async def test_text_lines_show_the_update_and_the_user(env: Env) -> None:
    with captured_logs(TextFormatter(), "sqlalchemy.engine") as out:
        await env.location("en")
        await env.settle()
    lines = out.getvalue().splitlines()
    tagged = [line for line in lines if re.search(rf"\[update \d+ user {env.user_id}\]: ", line)]
    assert tagged
    assert re.match(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} INFO sqlalchemy\.engine", tagged[0])


def test_json_lines_escape_newlines_and_keep_chinese_readable() -> None:
    out = io.StringIO()
    handler = configure_logging("json", stream=out)
    root = logging.getLogger()
    level = root.level
    try:
        with log_context(7, 42):
            logging.getLogger("yizhan.test").warning("第一行\nsecond line")
        logging.getLogger("yizhan.test").warning("outside")
    finally:
        root.removeHandler(handler)
        root.setLevel(level)
    first, second = (json.loads(line) for line in out.getvalue().splitlines())
    assert first["message"] == "第一行\nsecond line" and "第一行" in out.getvalue()
    assert (first["update_id"], first["user_id"], first["level"]) == (7, 42, "WARNING")
    assert "update_id" not in second and "user_id" not in second


def test_auto_is_json_off_a_terminal_and_calling_again_replaces_the_handler() -> None:
    out = io.StringIO()
    root = logging.getLogger()
    level = root.level
    first = configure_logging("auto", stream=io.StringIO())
    second = configure_logging("auto", stream=out)
    try:
        assert first not in root.handlers and second in root.handlers
        logging.getLogger("yizhan.test").info("hello")
    finally:
        root.removeHandler(second)
        root.setLevel(level)
    assert json.loads(out.getvalue())["message"] == "hello"
    with pytest.raises(ValueError, match="log format"):
        configure_logging("xml")


# ------------------------------------------------------------------------------------------ metrics


async def test_metrics_count_updates_handling_time_and_searches(env: Env) -> None:
    async with web_client(env.core) as client:
        await env.location("en")
        await env.settle()
        samples = await scrape(client)
    assert samples[("yizhan_updates_total", (("type", "message"),))] >= 1
    assert samples[("yizhan_handler_seconds_count", ())] >= 1
    assert samples[("yizhan_handler_seconds_bucket", (("le", "2.5"),))] >= 1
    assert samples[("yizhan_search_seconds_count", ())] >= 1
    assert samples[("yizhan_index_stations", ())] == len(STATIONS)
    assert samples[("yizhan_errors_total", (("where", "bot"),))] == 0
    for status in ("sent", "failed", "blocked", "retry"):
        assert ("yizhan_announcements_sent_total", (("status", status),)) in samples


async def test_errors_are_counted_for_the_bot_and_for_web_500s(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("index exploded")

    async with web_client(env.core) as client:
        before = await scrape(client)
        monkeypatch.setattr(env.core.search, "find_nearest_open", broken)
        await env.location("zh-hans")
        with captured_logs(JsonFormatter()):  # the 500's traceback stays out of the test output
            async with client.get("/api/v1/stations/nearby", params={"lat": "23.13", "lon": "113.26"}) as r:
                assert r.status == 500
        after = await scrape(client)
    for where in ("bot", "web"):
        key = ("yizhan_errors_total", (("where", where),))
        assert after[key] == before[key] + 1, where


async def test_announcement_deliveries_are_counted_by_outcome(tmp_path: Path) -> None:
    staff = 11
    async with open_core(sqlite(tmp_path)) as core, LocalBotAPI() as api:
        assert core.metrics is not None
        await core.stations.save_records(
            [StationRecord(code="GZ1", name="广州驿站", lat=23.13, lon=113.26, region="440106")]
        )
        await core.roles.grant(staff, "staff", "44")
        for user_id in range(300, 305):
            await core.subscriptions.subscribe_region(user_id, "4401", datetime.now(UTC))
            await api.send_text(user_id, "/start")
        await api.block(303)
        await core.announcements.create(
            await core.roles.access(staff), "通知", Audience("44"), datetime.now(UTC)
        )
        bot = build_bot(api.token, api.url)
        try:
            await build_broadcaster(core, bot, build_i18n(), lambda: datetime.now(UTC)).run_once()
        finally:
            await bot.session.close()
        counter = core.metrics.announcements_sent
        assert counter.labels("sent")._value.get() == 4
        assert counter.labels("blocked")._value.get() == 1


def test_each_metrics_object_has_a_registry_of_its_own() -> None:
    one, two = Metrics(), Metrics()
    one.error("web")
    assert b'yizhan_errors_total{where="web"} 1.0' in one.exposition()
    assert b'yizhan_errors_total{where="web"} 0.0' in two.exposition()
    two.delivery("pending")
    assert b'yizhan_announcements_sent_total{status="retry"} 1.0' in two.exposition()


# ------------------------------------------------------------------------------------------ health


async def test_healthz_says_redis_is_disabled_without_redis_url(tmp_path: Path) -> None:
    async with open_core(sqlite(tmp_path)) as core:
        status, body = await health(core)
    assert status == 200
    assert body == {
        "status": "ok",
        "stations": 0,
        "database": "ok",
        "redis": "disabled",
        "index": 0,
        "cached": 0,
        "ready": True,
    }


@pytest.mark.redis
async def test_healthz_says_redis_is_ok_when_it_answers(tmp_path: Path) -> None:
    from redis.asyncio import Redis

    probe = Redis.from_url(REDIS_URL, socket_connect_timeout=2)
    try:
        await probe.ping()
    except Exception as exc:
        service_missing("Redis", exc)
    finally:
        await probe.aclose()
    async with open_core(sqlite(tmp_path, redis_url=REDIS_URL)) as core:
        await core.stations.save_records(STATIONS[:2])
        await core.reload_index()
        status, body = await health(core)
    assert status == 200
    assert (body["redis"], body["database"], body["index"], body["ready"]) == ("ok", "ok", 2, True)


async def test_healthz_is_503_when_redis_does_not_answer(tmp_path: Path) -> None:
    async with open_core(sqlite(tmp_path, redis_url=f"redis://127.0.0.1:{closed_port()}/0")) as core:
        with captured_logs(JsonFormatter()) as out:
            status, body = await health(core)
    assert status == 503
    assert (body["status"], body["redis"], body["database"], body["ready"]) == ("error", "error", "ok", False)
    assert "Redis check failed" in out.getvalue()


async def test_healthz_is_503_until_the_index_is_loaded(tmp_path: Path) -> None:
    async with open_core(sqlite(tmp_path), load_index=False) as core:
        status, body = await health(core)
        assert (status, body["ready"]) == (503, False)
        await core.reload_index()
        status, body = await health(core)
        assert (status, body["ready"]) == (200, True)


async def test_health_checks_are_reused_for_a_second_and_failures_never(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with open_core(sqlite(tmp_path)) as core:
        calls = 0
        answer = True
        original = core.stations.database_ok

        async def counted(limit_s: float) -> bool:
            nonlocal calls
            calls += 1
            await asyncio.sleep(0.01)
            return answer and await original(limit_s)

        monkeypatch.setattr(core.stations, "database_ok", counted)
        # Concurrent probes share one check; a recent success answers the next ones.
        first = await asyncio.gather(*(core.check_health(max_age=60) for _ in range(5)))
        assert calls == 1 and all(h.ready for h in first)
        assert (await core.check_health(max_age=60)).ready and calls == 1
        # Without max_age every probe checks.
        assert (await core.check_health()).ready and calls == 2
        answer = False
        core.forget_health()
        assert (await core.check_health(max_age=60)).database == "error" and calls == 3
        assert (await core.check_health(max_age=60)).database == "error" and calls == 4
        answer = True
        assert (await core.check_health(max_age=60)).ready and calls == 5
        # The index is read live even when the services' result is reused.
        await core.stations.save_records(STATIONS[:2])
        await core.reload_index()
        assert (await core.check_health(max_age=60)).stations == 2 and calls == 5
