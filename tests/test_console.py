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
from conftest import REDIS_URL, service_missing
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
    assert re.search(r'data-testid="stale">\s*<span class="figure">2<', html)  # never verified
    assert re.search(r'data-testid="open-cases">\s*<span class="figure">0<', html)
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


async def attempt(site: Console, username: str, password: str, address: str) -> tuple[int, str]:
    """One login from `address` in a new browser: the answer's status and Retry-After."""
    async with site.client(address) as client:
        response = await login(site, client, username, password)
    return response.status, response.headers.get("Retry-After", "")


async def test_wrong_passwords_for_an_account_slow_down_then_lock_it(console: Console) -> None:
    """Each attempt from another address, so that only the account's own limit is at work."""
    await add_account(console.core, "clerk")
    policy = console.core.console.policy
    addresses = (f"203.0.113.{n}" for n in range(1, 100))
    for failures in range(policy.max_failures):
        wait = policy.delay_after(failures)
        if wait:
            console.clock.advance(seconds=wait - 0.5)
            status, retry_after = await attempt(console, "clerk", "wrong password!", next(addresses))
            assert (status, retry_after) == (429, "1"), failures  # too soon: refused, not counted
            console.clock.advance(seconds=0.5)
        assert (await attempt(console, "clerk", "wrong password!", next(addresses)))[0] == 401
    # Locked: even the right password is refused for CONSOLE_LOCK_MINUTES.
    console.clock.advance(minutes=14)
    status, retry_after = await attempt(console, "clerk", PASSWORD, next(addresses))
    assert status == 429 and 50 <= int(retry_after) <= 60
    console.clock.advance(minutes=1, seconds=1)
    assert (await attempt(console, "clerk", PASSWORD, next(addresses)))[0] == 303
    account = await console.core.console.by_username("clerk")
    assert account is not None and account.failed_count == 0 and account.locked_until is None
    async with console.core.sessions() as session:
        actions = [
            e.action for e in await session.scalars(select(ConsoleEventRow).order_by(ConsoleEventRow.id))
        ]
    assert actions.count("login_failed") == policy.max_failures
    assert actions.count("login_refused") == 4
    assert actions[-1] == "login"


async def test_wrong_passwords_from_one_address_slow_it_down_then_lock_it(console: Console) -> None:
    """Guessing across many usernames from one address: the address's own limit, while the office next
    door logs in as usual."""
    await add_account(console.core, "clerk")
    policy = console.core.console.policy
    attacker, office = "198.51.100.7", "198.51.100.8"
    for failures in range(policy.address_max_failures):
        wait = policy.delay_after(failures)
        if wait and failures in (2, 7):
            console.clock.advance(seconds=wait / 2)
            status, retry_after = await attempt(console, f"guess{failures}", "password123", attacker)
            assert status == 429 and int(retry_after) >= 1
            console.clock.advance(seconds=wait / 2)
        else:
            console.clock.advance(seconds=wait)
        assert (await attempt(console, f"guess{failures}", "password123", attacker))[0] == 401
    console.clock.advance(seconds=policy.delay_after(policy.address_max_failures))
    status, retry_after = await attempt(console, "clerk", PASSWORD, attacker)
    assert status == 429 and int(retry_after) > 60  # locked, not merely slowed down
    assert (await attempt(console, "clerk", PASSWORD, office))[0] == 303
    console.clock.advance(minutes=policy.lock.total_seconds() / 60)
    assert (await attempt(console, "clerk", PASSWORD, attacker))[0] == 303


async def post_form(site: Console, client: ClientSession, path: str, data: dict[str, str]) -> tuple[int, str]:
    token = await csrf_of(client, site.url("/console/"))
    async with client.post(site.url(path), data={**data, "csrf_token": token}) as response:
        return response.status, await response.text()


async def test_admins_create_accounts_with_setup_links_and_read_the_audit(console: Console) -> None:
    await add_account(console.core, "boss", "admin", "")
    await add_account(console.core, "clerk")
    async with console.client("192.0.2.1") as admin, console.client("192.0.2.2") as staff:
        await login(console, admin, "boss")
        await login(console, staff, "clerk")
        # Staff reach neither page nor action, whatever they craft.
        for path in ("/console/audit", "/console/accounts"):
            async with staff.get(console.url(path)) as page:
                assert page.status == 403
        status, _ = await post_form(console, staff, "/console/accounts/boss/disable", {})
        assert status == 403
        status, _ = await post_form(
            console, staff, "/console/accounts", {"username": "mole", "role": "admin", "region": ""}
        )
        assert status == 403
        assert await console.core.console.by_username("mole") is None

        status, html = await post_form(
            console, admin, "/console/accounts", {"username": "li", "role": "staff", "region": "4403"}
        )
        assert status == 200
        link = re.search(r"/console/setup\?token=([\w-]+)", html)
        assert link, html
        status, html = await post_form(
            console, admin, "/console/accounts", {"username": "wu", "role": "staff", "region": ""}
        )
        assert status == 400 and "Staff need a region" in html
        status, html = await post_form(
            console, admin, "/console/accounts/clerk/link", {"telegram_id": "4242"}
        )
        assert status == 200 and "4242" in html
        assert (await console.core.roles.access(4242)).regions == ("4401",)

    # The new colleague chooses a password through the link, once, and logs in.
    async with console.client() as newcomer:
        token = link.group(1)
        async with newcomer.get(console.url(f"/console/setup?token={token}")) as page:
            assert page.status == 200 and "li" in await page.text()
            assert page.headers["Referrer-Policy"] == "same-origin"
        csrf = await csrf_of(newcomer, console.url(f"/console/setup?token={token}"))
        form = {"token": token, "password": "a long new secret", "password2": "a long new secret"}
        async with newcomer.post(
            console.url("/console/setup"), data={**form, "csrf_token": csrf}, allow_redirects=False
        ) as response:
            assert response.status == 303
        async with newcomer.post(
            console.url("/console/setup"), data={**form, "csrf_token": csrf}, allow_redirects=False
        ) as again:
            assert again.status == 400  # spent
        assert (await login(console, newcomer, "li", "a long new secret")).status == 303

    async with console.client("192.0.2.1") as admin:
        await login(console, admin, "boss")
        async with admin.get(console.url("/console/audit")) as page:
            html = await page.text()
    actions = re.findall(r'<tr data-action="([a-z_]+)"', html)
    for action in ("login", "account_created", "account_linked", "password_set"):
        assert action in actions
    assert "console:boss" in html


async def test_with_redis_a_session_lives_there_and_logging_out_ends_it_for_every_copy(
    settings: Settings,
) -> None:
    from redis.asyncio import Redis

    redis = Redis.from_url(REDIS_URL, socket_connect_timeout=2)
    try:
        await redis.ping()
    except Exception as exc:
        service_missing("Redis", exc)
    settings = settings.model_copy(update={"redis_url": REDIS_URL})
    try:
        async for site in make_console(settings):
            await add_account(site.core, "clerk")
            async with site.client() as client:
                response = await login(site, client, "clerk")
                key = response.cookies["yizhan_console"].value
                assert len(key) == 32  # an identity only: the session itself is in Redis
                assert await redis.exists(f"yizhan_console_{key}")
                async with client.get(site.url("/console/"), allow_redirects=False) as page:
                    assert page.status == 200
                token = await csrf_of(client, site.url("/console/"))
                async with client.post(
                    site.url("/console/logout"), data={"csrf_token": token}, allow_redirects=False
                ) as out:
                    assert out.status == 303
            # A copy of the cookie taken before the logout opens nothing.
            async with site.client() as thief:
                thief.cookie_jar.update_cookies({"yizhan_console": key}, response.url)
                async with thief.get(site.url("/console/"), allow_redirects=False) as page:
                    assert page.status == 303
    finally:
        keys = [k async for k in redis.scan_iter("yizhan_console_*")]
        if keys:
            await redis.delete(*keys)
        await redis.aclose()


async def test_the_session_cookie_is_https_only_unless_told_otherwise(sqlite_settings: Settings) -> None:
    settings = sqlite_settings.model_copy(update={"console_secure_cookies": True})
    async for site in make_console(settings, secure_cookies=False):
        await add_account(site.core, "clerk")
        async with site.client() as client:
            async with client.get(site.url("/console/login")) as page:
                cookie = page.headers["Set-Cookie"]
    assert "Secure" in cookie and "HttpOnly" in cookie and "SameSite=Lax" in cookie


async def test_a_file_is_read_for_logged_in_staff_only_and_needs_the_csrf_token(console: Console) -> None:
    """Uploads skip the edge's body timeout (an office line is slow); so no one without a session gets a
    byte of theirs read, and the token travels in the form like any other field."""
    import aiohttp

    await add_account(console.core, "clerk")
    big = b"x" * (3 * 1024 * 1024)  # more than aiohttp's default 1 MiB

    def form(token: str | None) -> aiohttp.FormData:
        data = aiohttp.FormData()
        if token is not None:
            data.add_field("csrf_token", token)
        data.add_field("locale", "en")
        data.add_field("next", "/console/")
        data.add_field("file", big, filename="stations.csv", content_type="text/csv")
        return data

    async with console.client() as client:
        token = await csrf_of(client, console.url("/console/login"))
        async with client.post(
            console.url("/console/language"), data=form(token), allow_redirects=False
        ) as anon:
            assert anon.status == 303
            assert anon.headers["Location"].startswith("/console/login")
        await login(console, client, "clerk")
        async with client.post(
            console.url("/console/language"), data=form(None), allow_redirects=False
        ) as bad:
            assert bad.status == 403
        token = await csrf_of(client, console.url("/console/"))
        async with client.post(
            console.url("/console/language"), data=form(token), allow_redirects=False
        ) as ok:
            assert ok.status == 303
            assert ok.headers["Location"] == "/console/"


async def test_the_console_has_a_lane_of_its_own_apart_from_the_public_api(console: Console) -> None:
    from bot.web.keys import ADMISSION

    admission = console.server.app[ADMISSION]
    assert admission.console is not None
    admission.public.in_flight = admission.public.limit  # the riders' lane is full
    try:
        async with console.client() as client:
            async with client.get(console.url("/api/v1/stations")) as api:
                assert api.status == 503
            async with client.get(console.url("/console/login")) as page:
                assert page.status == 200
            admission.console.in_flight = admission.console.limit
            async with client.get(console.url("/console/login")) as page:
                assert page.status == 503
    finally:
        admission.public.in_flight = 0
        admission.console.in_flight = 0


async def _events_left_after_a_retention_round(core: Core) -> list[str]:
    await core.privacy.retention_round(lambda: T0)
    async with core.sessions() as session:
        return list(await session.scalars(select(ConsoleEventRow.target).order_by(ConsoleEventRow.at)))


async def test_the_retention_job_deletes_console_events_past_their_time(settings: Settings) -> None:
    settings = settings.model_copy(update={"console_events_retention_days": 30})
    async with open_core(settings, load_index=False) as core:
        for days, target in ((31, "old"), (29, "recent"), (0, "today")):
            await core.console.record(
                T0 - timedelta(days=days), "station.verify", account_id=1, target=target
            )
        assert await _events_left_after_a_retention_round(core) == ["recent", "today"]


async def test_console_events_are_kept_for_ever_when_their_retention_is_zero(settings: Settings) -> None:
    settings = settings.model_copy(update={"console_events_retention_days": 0})
    async with open_core(settings, load_index=False) as core:
        await core.console.record(T0 - timedelta(days=3000), "station.verify", account_id=1, target="old")
        assert await core.console.purge_expired_events(T0) == 0
        assert await _events_left_after_a_retention_round(core) == ["old"]


def test_a_negative_console_events_retention_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CONSOLE_EVENTS_RETENTION_DAYS", "-1")
    with pytest.raises(ValueError, match="console_events_retention_days"):
        Settings(_env_file=None)  # type: ignore[call-arg]
    monkeypatch.setenv("CONSOLE_EVENTS_RETENTION_DAYS", "0")
    assert Settings(_env_file=None).console_events_retention_days == 0  # type: ignore[call-arg]
