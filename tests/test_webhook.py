"""Webhook mode: updates arrive by HTTP, the secret token is checked on every request."""

from __future__ import annotations

import asyncio
import socket
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
import pytest
from pydantic import SecretStr

from bot.app import open_core
from bot.config import Settings
from bot.telegram import WebhookSecretMissing, build_bot, build_dispatcher, serve_webhook
from domain.values import StationRecord
from localapi import LocalBotAPI


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


SECRET = "Vq7-long_enough_webhook_secret_0123456789"
ADMIN = 4242


def forged_update(update_id: int, user_id: int, text: str) -> dict[str, object]:
    return {
        "update_id": update_id,
        "message": {
            "message_id": update_id,
            "date": 0,
            "chat": {"id": user_id, "type": "private"},
            "from": {"id": user_id, "is_bot": False, "first_name": "x"},
            "text": text,
        },
    }


async def test_webhook_mode_answers_and_refuses_a_forged_update(tmp_path: Path) -> None:
    port = free_port()
    settings = Settings(
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'w.db'}",
        webhook_url=f"http://127.0.0.1:{port}/tg/hook",
        webhook_secret=SecretStr(SECRET),
        admin_ids=(ADMIN,),
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
            assert api.calls_to("setWebhook")[-1]["secret_token"] == SECRET
            await api.send_location(7, 23.13, 113.26, language_code="en")
            # The results (the one-time subscription offer follows them).
            await api.wait_for(lambda: any("网钩驿站" in m.text for m in api.bot_messages(7)), timeout=10)
            hook = f"http://127.0.0.1:{port}/tg/hook"
            async with aiohttp.ClientSession() as http:
                # An admin's id is public enough (it shows in groups): forging their /grant must not work.
                header = "X-Telegram-Bot-Api-Secret-Token"
                for n, headers in enumerate(({}, {header: "wrong"}, {header: ""}, {header: SECRET[:-1]})):
                    forged = (
                        forged_update(900 + n, ADMIN, "/grant 666 admin"),
                        forged_update(990 + n, 8, "/start"),
                    )
                    for update in forged:
                        async with http.post(hook, json=update, headers=headers) as r:
                            assert r.status == 403
            await asyncio.sleep(0.2)
            assert api.bot_messages(8) == []
            assert api.bot_messages(ADMIN) == []
            assert not (await core.roles.access(666)).is_admin
        finally:
            server.cancel()
            await asyncio.gather(server, return_exceptions=True)
            await bot.session.close()
            await api.stop()


@pytest.mark.parametrize("secret", [None, "", "short-secret-of-31-characters-x"])
async def test_webhook_mode_refuses_to_start_without_a_strong_secret(
    tmp_path: Path, secret: str | None
) -> None:
    settings = Settings(
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'w.db'}",
        webhook_url="http://127.0.0.1:9/tg/hook",
        webhook_secret=None if secret is None else SecretStr(secret),
        _env_file=None,  # type: ignore[call-arg]
    )
    async with open_core(settings) as core:
        api = LocalBotAPI()
        url = await api.start()
        bot = build_bot(api.token, url)
        try:
            with pytest.raises(WebhookSecretMissing) as refused:
                await serve_webhook(core, bot, build_dispatcher(core), "127.0.0.1", free_port())
            assert "WEBHOOK_SECRET" in str(refused.value)
            assert "\n" not in str(refused.value)
            assert api.calls_to("setWebhook") == []
        finally:
            await bot.session.close()
            await api.stop()


def test_run_webhook_without_secret_says_so_in_one_line(tmp_path, capsys, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from bot.cli import main

    monkeypatch.setenv("BOT_TOKEN", "1:x")
    monkeypatch.setenv("WEBHOOK_URL", "https://bot.example.org/webhook")
    monkeypatch.setenv("WEBHOOK_SECRET", "")
    monkeypatch.setenv("DATABASE_URL", f"sqlite+aiosqlite:///{tmp_path / 'r.db'}")
    monkeypatch.setattr("bot.app.install_event_loop_policy", lambda: None)
    monkeypatch.chdir(tmp_path)
    assert main(["run"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    assert "WEBHOOK_SECRET" in err
    # Refused before anything was touched.
    assert not (tmp_path / "r.db").exists()


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
