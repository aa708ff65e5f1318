"""The staff console in headless Chromium at a phone's size: a clerk logs in (the session cookie out of
the page's reach), finds the navigation behind the menu button, logs out; a session that ends while a form
is being typed asks for a login and gives the typed form back."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from aiohttp.test_utils import TestServer
from argon2 import PasswordHasher
from cdp import Chromium, Page, require_chromium  # tests/ is on sys.path (rootdir conftest)

from bot.app import Core, open_core
from bot.config import Settings
from bot.web import build_web_app
from bot.web.console.base import CONSOLE
from domain.values import StationRecord

pytestmark = pytest.mark.browser

PASSWORD = "correct horse battery"


class FakeClock:
    def __init__(self) -> None:
        self.at = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.at


@dataclass
class Site:
    url: str
    core: Core
    clock: FakeClock


@pytest.fixture
async def site(tmp_path: Path) -> AsyncIterator[Site]:
    settings = Settings(database_url=f"sqlite+aiosqlite:///{tmp_path / 'console.db'}", _env_file=None)  # type: ignore[call-arg]
    clock = FakeClock()
    async with open_core(settings) as core:
        core.console.hasher = PasswordHasher(time_cost=1, memory_cost=8 * 1024, parallelism=1)
        await core.stations.save_records(
            [
                StationRecord(
                    code="GZ1", name="天河驿站", lat=23.13, lon=113.32, region="440106", opening_hours="24/7"
                )
            ]
        )
        await core.console.create("clerk", "staff", "4401", clock(), password=PASSWORD)
        await core.console.create("boss", "admin", "", clock(), password=PASSWORD)
        app = build_web_app(core, secure_cookies=False)
        for resource in app.router.resources():
            sub = getattr(resource, "_app", None)
            if sub is not None and CONSOLE in sub:
                sub[CONSOLE].clock = clock
        async with TestServer(app, host="127.0.0.1") as server:
            yield Site(str(server.make_url("/console/")), core, clock)


async def log_in(page: Page, username: str) -> None:
    await page.wait_for("location.pathname === '/console/login' && document.readyState === 'complete'")
    await page.type("input[name=username]", username)
    await page.type("input[name=password]", PASSWORD)
    await page.click('[data-testid="login"]')


async def test_a_clerk_logs_in_on_a_phone_and_out_again(site: Site) -> None:
    async with Chromium(require_chromium()) as browser:
        page = await browser.new_page()
        await page.send("Network.enable")
        await page.send("Emulation.setLocaleOverride", {"locale": "zh-CN"})
        await page.send(
            "Network.setUserAgentOverride", {"userAgent": "yizhan-test", "acceptLanguage": "zh-CN"}
        )
        await page.goto(site.url)
        await log_in(page, "clerk")
        await page.wait_for("location.pathname === '/console/' && !!document.querySelector('h1')")
        assert await page.evaluate("document.querySelector('h1').textContent") == "总览"
        assert (
            await page.evaluate("document.querySelector('[data-testid=always-open] .figure').textContent")
            == "1"
        )
        # The session is out of the page's scripts' reach, and sent to this site's console only.
        assert "yizhan_console" not in await page.evaluate("document.cookie")
        cookies = (await page.send("Network.getCookies", {"urls": [site.url]}))["cookies"]
        session = next(cookie for cookie in cookies if cookie["name"] == "yizhan_console")
        assert session["httpOnly"] is True
        assert session["sameSite"] == "Lax"
        assert session["path"] == "/console/"
        # htmx is loaded and sends the CSRF token with its requests.
        assert await page.evaluate("typeof htmx === 'object' && htmx.version.startsWith('2.')")
        assert "X-CSRF-Token" in await page.evaluate("document.body.getAttribute('hx-headers')")
        # At a phone's width the navigation waits behind the menu button.
        assert not await page.evaluate("document.querySelector('.nav').offsetHeight")
        await page.click(".nav-button")
        await page.wait_for("document.querySelector('.nav').offsetHeight > 0")
        assert not await page.evaluate("document.querySelector('[data-nav=audit]')")  # staff, not admin
        await page.click('[data-testid="user-menu"]')
        await page.click('[data-testid="logout"]')
        await page.wait_for("location.pathname === '/console/login'")
        await page.goto(site.url)
        await page.wait_for("location.pathname === '/console/login'")


async def test_an_expired_session_asks_to_log_in_again_and_keeps_the_typed_form(site: Site) -> None:
    async with Chromium(require_chromium(), width=1280, height=900, scale=1, mobile=False) as browser:
        page = await browser.new_page()
        await page.send("Network.setUserAgentOverride", {"userAgent": "yizhan-test", "acceptLanguage": "en"})
        await page.goto(site.url + "accounts")
        await log_in(page, "boss")
        await page.wait_for(
            "location.pathname === '/console/accounts' && !!document.getElementById('new-account')"
        )
        await page.type("#new-account input[name=username]", "zhang-san")
        role = "document.querySelector('#new-account select[name=role]')"
        await page.evaluate(f"{role}.value = 'staff'")
        await page.evaluate(f"{role}.dispatchEvent(new Event('change', {{bubbles: true}}))")
        await page.type("#new-account input[name=region]", "4403")
        # The clerk is called away; the session ends meanwhile.
        site.clock.at += timedelta(minutes=31)
        await page.click("#new-account button[type=submit]")
        await page.wait_for("location.pathname === '/console/login'")
        # The address changes before the login page's document is parsed: wait for its notice.
        await page.wait_for("document.querySelector('[data-testid=notice]') !== null")
        assert "session has ended" in await page.evaluate(
            "document.querySelector('[data-testid=notice]').textContent"
        )
        assert await site.core.console.by_username("zhang-san") is None  # nothing was done
        await log_in(page, "boss")
        await page.wait_for(
            "location.pathname === '/console/accounts' && !!document.getElementById('new-account')"
        )
        await page.wait_for(
            "document.querySelector('#new-account input[name=username]').value === 'zhang-san'"
        )
        assert (
            await page.evaluate("document.querySelector('#new-account input[name=region]').value") == "4403"
        )
        assert (
            await page.evaluate("document.querySelector('#new-account select[name=role]').value") == "staff"
        )
        assert (
            await page.evaluate("document.querySelector('#new-account input[name=username]').value")
            == "zhang-san"
        )
        await page.click("#new-account button[type=submit]")
        await page.wait_for("!!document.querySelector('[data-testid=message]')")
        assert await site.core.console.by_username("zhang-san") is not None
        # Sent and answered: the draft is gone, and no password was ever kept.
        assert await page.evaluate("document.querySelector('#new-account input[name=username]').value") == ""
        stored = await page.evaluate("JSON.stringify(Object.assign({}, sessionStorage))")
        assert PASSWORD not in stored and "zhang-san" not in stored
