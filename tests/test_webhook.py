"""Webhook mode: updates arrive by HTTP, the secret token is checked on every request."""

from __future__ import annotations

import asyncio
import socket
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
from pydantic import SecretStr

from bot.app import open_core
from bot.config import Settings
from bot.domain import StationRecord
from bot.localapi import LocalBotAPI
from bot.telegram import build_bot, build_dispatcher, serve_webhook


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_webhook_mode_answers_and_refuses_a_wrong_secret(tmp_path: Path) -> None:
    port = free_port()
    settings = Settings(
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'w.db'}",
        webhook_url=f"http://127.0.0.1:{port}/tg/hook",
        webhook_secret=SecretStr("s3cret-token"),
        _env_file=None,  # type: ignore[call-arg]
    )
    async with open_core(settings) as core:
        await core.stations.save_records(
            [StationRecord(code="W1", name="网钩驿站", lat=23.131, lon=113.26, opening_hours="24/7")]
        )
        await core.reload_index()
        api = LocalBotAPI()
        url = await api.start()
        bot = build_bot(api.token, url)
        dp = build_dispatcher(core, clock=lambda: datetime(2025, 6, 3, 4, tzinfo=UTC))
        ready = asyncio.Event()
        server = asyncio.create_task(serve_webhook(core, bot, dp, "127.0.0.1", port, ready))
        try:
            await asyncio.wait_for(ready.wait(), 10)
            assert api.calls_to("setWebhook")[-1]["secret_token"] == "s3cret-token"
            await api.send_location(7, 23.13, 113.26, language_code="en")
            # The results (the one-time subscription offer follows them).
            await api.wait_for(lambda: any("网钩驿站" in m.text for m in api.bot_messages(7)), timeout=10)
            async with aiohttp.ClientSession() as http:
                update = {
                    "update_id": 999,
                    "message": {
                        "message_id": 1,
                        "date": 0,
                        "chat": {"id": 8, "type": "private"},
                        "from": {"id": 8, "is_bot": False, "first_name": "x"},
                        "text": "/start",
                    },
                }
                for headers in ({}, {"X-Telegram-Bot-Api-Secret-Token": "wrong"}):
                    async with http.post(
                        f"http://127.0.0.1:{port}/tg/hook", json=update, headers=headers
                    ) as r:
                        assert r.status == 401
            await asyncio.sleep(0.2)
            assert api.bot_messages(8) == []
        finally:
            server.cancel()
            await asyncio.gather(server, return_exceptions=True)
            await bot.session.close()
            await api.stop()


def test_run_without_a_token_exits_with_a_clear_message(capsys, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from bot.cli import main

    monkeypatch.delenv("BOT_TOKEN", raising=False)
    monkeypatch.setattr("bot.app.install_event_loop_policy", lambda: None)
    monkeypatch.chdir(Path(__file__).parent)
    assert main(["run"]) == 2
    assert "BOT_TOKEN" in capsys.readouterr().err


def test_admin_grant_and_revoke_on_the_command_line(tmp_path: Path, capsys, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from bot.cli import main

    monkeypatch.setenv("DATABASE_URL", f"sqlite+aiosqlite:///{tmp_path / 'a.db'}")
    monkeypatch.setattr("bot.app.install_event_loop_policy", lambda: None)
    monkeypatch.chdir(tmp_path)
    assert main(["admin", "grant", "42", "--role", "staff", "--region", "4401"]) == 0
    assert main(["admin", "grant", "42", "--role", "staff", "--region", "4401"]) == 0
    assert main(["admin", "grant", "43", "--role", "staff"]) == 2
    assert main(["admin", "revoke", "42", "--role", "staff"]) == 0
    out = capsys.readouterr()
    from bot.cli import _ as t

    assert out.out.splitlines() == [t("granted"), t("already granted"), t("revoked {count}").format(count=1)]
    assert "region" in out.err
