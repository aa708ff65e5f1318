"""The staff console's foundation through a real server on SQLite and PostgreSQL (and Redis sessions): logging
in and out, the session cookie's flags, CSRF, idle and absolute expiry, logging out everywhere, login limits
per account and per address, the region dashboard's scope, and console accounts left out of Telegram
digests."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp import ClientSession, CookieJar
from aiohttp.test_utils import TestServer
from argon2 import PasswordHasher
from sqlalchemy import select
from yarl import URL

from bot.app import Core, open_core
from bot.config import Settings
from bot.web import build_web_app
from bot.web.console.base import CONSOLE
from domain.values import StationRecord
from storage.models import ConsoleEventRow

PASSWORD = "correct horse battery"
T0 = datetime(2026, 12, 5, 2, 0, tzinfo=UTC)


class FakeClock:
    """A clock the test moves by hand."""

    def __init__(self, at: datetime) -> None:
        self.at = at

    def __call__(self) -> datetime:
        return self.at

    def advance(self, **delta: float) -> None:
        self.at += timedelta(**delta)


@dataclass
class Console:
    core: Core
    server: TestServer
    clock: FakeClock

    def url(self, path: str) -> str:
        return str(self.server.make_url(path))

    def client(self, address: str | None = None) -> ClientSession:
        headers = {"Accept-Language": "en"}
        if address is not None:
            headers["X-Forwarded-For"] = address
        return ClientSession(cookie_jar=CookieJar(unsafe=True), headers=headers)


STATIONS = [
    StationRecord(code="GZ1", name="Tianhe A", lat=23.13, lon=113.32, region="440106", opening_hours="24/7"),
    StationRecord(
        code="GZ2", name="Tianhe B", lat=23.14, lon=113.33, region="440106", opening_hours="Mo-Fr 08:00-18:00"
    ),
    StationRecord(code="SZ1", name="Futian A", lat=22.54, lon=114.05, region="440304", opening_hours="24/7"),
]


async def make_console(settings: Settings, **secure: Any) -> AsyncIterator[Console]:
    clock = FakeClock(T0)
    async with open_core(settings) as core:
        # Real Argon2id, at a cost that keeps dozens of logins quick on a shared test machine.
        core.console.hasher = PasswordHasher(time_cost=1, memory_cost=8 * 1024, parallelism=1)
        await core.stations.save_records(STATIONS)
        await core.reload_index()
        app = build_web_app(core, secure_cookies=secure.get("secure_cookies", False))
        console_app = next(sub for sub in _subapps(app) if CONSOLE in sub)
        console_app[CONSOLE].clock = clock
        async with TestServer(app, host="127.0.0.1") as server:
            yield Console(core, server, clock)


def _subapps(app: Any) -> list[Any]:
    return [resource._app for resource in app.router.resources() if hasattr(resource, "_app")]


@pytest.fixture
async def console(settings: Settings) -> AsyncIterator[Console]:
    settings = settings.model_copy(update={"trusted_proxies": ("127.0.0.1/32",)})
    async for site in make_console(settings):
        yield site


async def add_account(core: Core, username: str, role: str = "staff", region: str = "4401") -> int:
    account, _ = await core.console.create(username, role, region, T0, password=PASSWORD)
    return account.id


CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


async def csrf_of(client: ClientSession, url: str) -> str:
    async with client.get(url) as response:
        match = CSRF.search(await response.text())
    assert match, "the page has a CSRF field"
    return match.group(1)


async def login(site: Console, client: ClientSession, username: str, password: str = PASSWORD) -> Any:
    token = await csrf_of(client, site.url("/console/login"))
    async with client.post(
        site.url("/console/login"),
        data={"username": username, "password": password, "csrf_token": token, "next": "/console/"},
        allow_redirects=False,
    ) as response:
        await response.read()
        return response


async def test_staff_logs_in_and_sees_the_dashboard_of_their_region(console: Console) -> None:
    await add_account(console.core, "clerk")
    async with console.client() as client:
        async with client.get(console.url("/console/"), allow_redirects=False) as response:
            assert response.status == 303
            assert response.headers["Location"] == "/console/login"
        response = await login(console, client, "clerk")
        assert response.status == 303
        assert response.headers["Location"] == "/console/"
        cookie = response.headers["Set-Cookie"]
        assert "HttpOnly" in cookie
        assert "SameSite=Lax" in cookie
        assert "Path=/console/" in cookie
        async with client.get(console.url("/console/")) as page:
            html = await page.text()
            assert page.status == 200
            assert page.headers["Cache-Control"] == "no-store"
            assert page.headers["X-Frame-Options"] == "DENY"
    # Guangzhou's staff count Guangzhou's stations only (two, one around the clock), not Shenzhen's.
    assert re.search(r'data-testid="status-active">\s*<span class="figure">2<', html)
    assert re.search(r'data-testid="always-open">\s*<span class="figure">1<', html)
    assert 'href="/console/stations?status=active"' in html
    assert 'href="/console/moderation"' in html
    assert "Futian" not in html
    assert 'hx-headers=\'{"X-CSRF-Token": "' in html


async def test_wrong_password_is_refused_and_audited(console: Console) -> None:
    await add_account(console.core, "clerk")
    async with console.client() as client:
        response = await login(console, client, "clerk", "not the password")
        assert response.status == 401
        async with client.get(console.url("/console/"), allow_redirects=False) as page:
            assert page.status == 303
        response = await login(console, client, "nobody", PASSWORD)
        assert response.status == 401
    async with console.core.sessions() as session:
        events = (await session.scalars(select(ConsoleEventRow).order_by(ConsoleEventRow.id))).all()
    failed = [(e.username, e.detail["reason"]) for e in events if e.action == "login_failed"]
    assert failed == [("clerk", "wrong_password"), ("nobody", "unknown_user")]


async def test_a_post_without_the_csrf_token_is_refused(console: Console) -> None:
    await add_account(console.core, "clerk")
    async with console.client() as client:
        await login(console, client, "clerk")
        async with client.post(
            console.url("/console/language"), data={"locale": "zh_Hant", "next": "/console/"}
        ) as refused:
            assert refused.status == 403
            assert "This form has expired" in await refused.text()
        token = await csrf_of(client, console.url("/console/"))
        async with client.post(
            console.url("/console/language"),
            data={"locale": "en", "next": "/console/", "csrf_token": token + "x"},
        ) as forged:
            assert forged.status == 403
        async with client.post(
            console.url("/console/language"),
            data={"locale": "zh_Hant", "next": "/console/"},
            headers={"X-CSRF-Token": token},
        ) as accepted:
            assert accepted.status == 200
            assert "<h1>總覽</h1>" in await accepted.text()
    account = await console.core.console.by_username("clerk")
    assert account is not None and account.locale == "zh_Hant"


async def test_a_session_ends_when_idle_and_after_its_absolute_lifetime(console: Console) -> None:
    await add_account(console.core, "clerk")
    async with console.client() as client:
        await login(console, client, "clerk")
        # Active every 20 minutes: the idle limit (30) never strikes, the absolute one (12 h) does.
        for _ in range(35):
            console.clock.advance(minutes=20)
            async with client.get(console.url("/console/"), allow_redirects=False) as page:
                assert page.status == 200
        console.clock.advance(minutes=21)
        async with client.get(console.url("/console/"), allow_redirects=False) as page:
            assert page.status == 303
            assert page.headers["Location"] == "/console/login?expired=1"
        await login(console, client, "clerk")
        console.clock.advance(minutes=31)
        async with client.get(console.url("/console/stations?status=active"), allow_redirects=False) as page:
            assert page.status == 303
            location = URL(page.headers["Location"])
            assert location.path == "/console/login"
            assert dict(location.query) == {"next": "/console/stations?status=active", "expired": "1"}
        async with client.get(console.url("/console/login?expired=1")) as page:
            assert "Your session has ended" in await page.text()


async def test_an_htmx_request_without_a_session_is_sent_to_the_login_page_whole(console: Console) -> None:
    async with console.client() as client:
        async with client.get(
            console.url("/console/"),
            headers={"HX-Request": "true", "HX-Current-URL": console.url("/console/moderation?page=2")},
            allow_redirects=False,
        ) as response:
            assert response.status == 401
            location = URL(response.headers["HX-Redirect"])
            assert (location.path, dict(location.query)) == (
                "/console/login",
                {"next": "/console/moderation?page=2"},
            )


async def test_logging_out_everywhere_ends_the_other_sessions(console: Console) -> None:
    await add_account(console.core, "clerk")
    async with console.client() as office, console.client() as phone:
        await login(console, office, "clerk")
        await login(console, phone, "clerk")
        console.clock.advance(seconds=5)
        token = await csrf_of(phone, console.url("/console/"))
        async with phone.post(
            console.url("/console/logout-everywhere"), data={"csrf_token": token}, allow_redirects=False
        ) as response:
            assert response.status == 303
        for client in (office, phone):
            async with client.get(console.url("/console/"), allow_redirects=False) as page:
                assert page.status == 303
        console.clock.advance(seconds=5)
        assert (await login(console, office, "clerk")).status == 303
        async with office.get(console.url("/console/"), allow_redirects=False) as page:
            assert page.status == 200


async def test_console_accounts_without_telegram_get_no_digest(console: Console) -> None:
    core = console.core
    console_only = await add_account(core, "clerk")
    await core.roles.grant(777, "staff", "4401")
    moderators = await core.roles.moderators()
    assert 777 in moderators
    assert -console_only not in moderators
    assert all(user_id > 0 for user_id in moderators)
    # Linked, the same person is one moderator under their Telegram id, with the console role moved there.
    await core.console.link("clerk", 888, T0)
    moderators = await core.roles.moderators()
    assert moderators[888].regions == ("4401",)
    assert (await core.roles.access(-console_only)).grants == ()


def test_the_command_line_creates_lists_changes_and_disables_accounts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from bot.cli import main

    monkeypatch.setenv("DATABASE_URL", f"sqlite+aiosqlite:///{tmp_path / 'cli.db'}")
    monkeypatch.setenv("LANGUAGE", "en")
    monkeypatch.setenv("CONSOLE_URL", "https://union.example/console/")
    typed = iter([PASSWORD, PASSWORD, "short", "short", "a new password!", "a different one!"])
    monkeypatch.setattr("getpass.getpass", lambda prompt="": next(typed))

    assert main(["admin", "add-user", "clerk", "--role", "staff", "--region", "4401"]) == 0
    assert main(["admin", "add-user", "boss", "--role", "admin", "--setup-link"]) == 0
    out = capsys.readouterr().out
    assert "clerk" in out
    link = re.search(r"https://union\.example/console/setup\?token=[\w-]{40,}", out)
    assert link, out
    assert main(["admin", "add-user", "clerk", "--role", "staff", "--region", "4401"]) == 2  # exists
    assert main(["admin", "add-user", "nobody", "--role", "staff"]) == 2  # staff without a region
    assert main(["admin", "add-user", "newbie", "--role", "staff", "--region", "4403"]) == 2  # too short
    capsys.readouterr()
    assert main(["admin", "list"]) == 0
    listing = capsys.readouterr().out.splitlines()
    assert listing[0].split("\t")[:3] == ["boss", "admin", "-"]
    assert "setup link" in listing[0]
    assert listing[1].split("\t") == ["clerk", "staff 4401", "-", "enabled"]
    assert main(["admin", "passwd", "clerk"]) == 2  # the two passwords differ
    assert main(["admin", "disable", "clerk"]) == 0
    assert main(["admin", "passwd", "ghost"]) == 2
    capsys.readouterr()
    assert main(["admin", "list"]) == 0
    assert capsys.readouterr().out.splitlines()[1].endswith("disabled")
