"""Headless Chromium driven over the Chrome DevTools Protocol, with nothing but aiohttp's websocket client.

Browser tests need a handful of things (open a page, click, evaluate JS, wait for a condition, take a
screenshot); the DevTools protocol does all of them, so no Playwright or Selenium download is needed.

    async with Chromium() as browser:
        page = await browser.new_page()
        await page.goto(url)
        await page.click('[data-testid="send"]')
        await page.wait_for("document.querySelectorAll('[data-testid=message]').length > 1")

`require_chromium()` finds the binary or skips the test (fails it under CI=true, where it must run).
"""

# ruff: noqa: ASYNC109 - `timeout` arguments here are polling deadlines, the API the tests read best

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import aiohttp

__all__ = ["CDPError", "Chromium", "Page", "require_chromium"]

CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


class CDPError(RuntimeError):
    """A DevTools command failed, or page JavaScript threw."""


def find_chromium() -> str | None:
    explicit = os.environ.get("CHROMIUM")
    if explicit:
        return shutil.which(explicit)
    for name in CANDIDATES:
        path = shutil.which(name)
        if path:
            return path
    return None


def require_chromium() -> str:
    """The Chromium binary; skips the calling test when there is none (fails it when CI=true)."""
    import pytest

    path = find_chromium()
    if path is None:
        message = "headless Chromium is not installed (apt-get install chromium)"
        if IN_CI:
            pytest.fail(message + " (CI=true: browser tests must run)", pytrace=False)
        pytest.skip(message)
    return path


class Page:
    """One tab, driven over its own DevTools websocket."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self._ws = ws
        self._ids = itertools.count(1)
        self._pending: dict[int, asyncio.Future[Any]] = {}
        self._listeners: dict[str, list[asyncio.Future[dict[str, Any]]]] = {}
        self.console: list[str] = []
        """console.* lines, as "level: text"."""
        self.errors: list[str] = []
        """Uncaught exceptions in the page; a browser test usually asserts this stays empty."""
        self._reader = asyncio.create_task(self._read(), name="cdp-reader")

    async def _read(self) -> None:
        async for frame in self._ws:
            if frame.type != aiohttp.WSMsgType.TEXT:
                continue
            message = json.loads(frame.data)
            if "id" in message:
                future = self._pending.pop(message["id"], None)
                if future is not None and not future.done():
                    if "error" in message:
                        future.set_exception(CDPError(f"{message['error']}"))
                    else:
                        future.set_result(message.get("result", {}))
                continue
            method, params = message.get("method"), message.get("params", {})
            if method == "Runtime.consoleAPICalled":
                text = " ".join(str(arg.get("value", arg.get("description", ""))) for arg in params["args"])
                self.console.append(f"{params['type']}: {text}")
            elif method == "Runtime.exceptionThrown":
                details = params["exceptionDetails"]
                self.errors.append(details.get("exception", {}).get("description") or details.get("text", ""))
            for future in self._listeners.pop(method, []):
                if not future.done():
                    future.set_result(params)
        for future in self._pending.values():
            if not future.done():
                future.set_exception(CDPError("the DevTools connection closed"))

    async def send(self, method: str, params: dict[str, Any] | None = None, timeout: float = 30.0) -> Any:
        """One DevTools command; returns its result."""
        message_id = next(self._ids)
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending[message_id] = future
        await self._ws.send_str(json.dumps({"id": message_id, "method": method, "params": params or {}}))
        return await asyncio.wait_for(future, timeout)

    def _next_event(self, method: str) -> asyncio.Future[dict[str, Any]]:
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._listeners.setdefault(method, []).append(future)
        return future

    async def goto(self, url: str, timeout: float = 30.0) -> None:
        """Navigate and wait for the load event."""
        loaded = self._next_event("Page.loadEventFired")
        result = await self.send("Page.navigate", {"url": url})
        if result.get("errorText"):
            raise CDPError(f"navigation to {url} failed: {result['errorText']}")
        await asyncio.wait_for(loaded, timeout)

    async def evaluate(self, expression: str) -> Any:
        """The value of a JS expression (promises are awaited); raises CDPError if it throws."""
        result = await self.send(
            "Runtime.evaluate",
            {"expression": expression, "returnByValue": True, "awaitPromise": True, "userGesture": True},
        )
        if "exceptionDetails" in result:
            details = result["exceptionDetails"]
            text = details.get("exception", {}).get("description") or details.get("text")
            raise CDPError(f"{expression!r} threw: {text}")
        return result["result"].get("value")

    async def click(self, selector: str, timeout: float = 5.0) -> None:
        """Click the centre of the first element matching `selector` with real mouse events.

        Real events (rather than `element.click()`) catch a button hidden behind another element.
        """
        probe = f"""(() => {{
            const node = document.querySelector({json.dumps(selector)});
            if (!node) return null;
            node.scrollIntoView({{block: "center", inline: "center"}});
            const box = node.getBoundingClientRect();
            if (box.width === 0 || box.height === 0) return null;
            return {{x: box.left + box.width / 2, y: box.top + box.height / 2}};
        }})()"""
        try:
            point = await self.wait_for(probe, timeout)
        except TimeoutError:
            raise CDPError(f"no visible element matches {selector!r}") from None
        for kind in ("mouseMoved", "mousePressed", "mouseReleased"):
            await self.send(
                "Input.dispatchMouseEvent",
                {"type": kind, "x": point["x"], "y": point["y"], "button": "left", "clickCount": 1},
            )

    async def type(self, selector: str, text: str) -> None:
        """Focus an input and type `text` into it (as an IME would insert it)."""
        await self.evaluate(f"document.querySelector({json.dumps(selector)}).focus()")
        await self.send("Input.insertText", {"text": text})

    async def wait_for(self, js_predicate: str, timeout: float = 10.0) -> Any:
        """Poll a JS expression every 50 ms until it is truthy; returns its value."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            value = await self.evaluate(js_predicate)
            if value:
                return value
            if loop.time() >= deadline:
                raise TimeoutError(
                    f"{js_predicate!r} still false after {timeout} s; page errors: {self.errors}; "
                    f"console: {self.console[-5:]}"
                )
            await asyncio.sleep(0.05)

    async def screenshot(self, path: str | Path) -> Path:
        data = await self.send("Page.captureScreenshot", {"format": "png"})
        target = Path(path)
        await asyncio.to_thread(target.write_bytes, base64.b64decode(data["data"]))
        return target

    async def close(self) -> None:
        await self._ws.close()
        self._reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._reader


class Chromium:
    """A headless Chromium process with remote debugging on a free port; killed on exit."""

    def __init__(
        self,
        binary: str | None = None,
        *,
        width: int = 390,
        height: int = 844,
        scale: float = 2.0,
        mobile: bool = True,
    ) -> None:
        self.binary = binary or find_chromium() or "chromium"
        self.viewport = {"width": width, "height": height, "deviceScaleFactor": scale, "mobile": mobile}
        self._process: asyncio.subprocess.Process | None = None
        self._profile: tempfile.TemporaryDirectory[str] | None = None
        self._session: aiohttp.ClientSession | None = None
        self._pages: list[Page] = []
        self.port = 0

    async def __aenter__(self) -> Chromium:
        self._profile = tempfile.TemporaryDirectory(prefix="yizhan-chromium-")
        profile = Path(self._profile.name)
        self._process = await asyncio.create_subprocess_exec(
            self.binary,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-extensions",
            "--no-first-run",
            "--no-default-browser-check",
            "--mute-audio",
            # Port 0: Chromium picks a free port and writes it to DevToolsActivePort, so no race.
            "--remote-debugging-port=0",
            "--remote-allow-origins=*",
            f"--user-data-dir={profile}",
            "about:blank",
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )
        try:
            self.port = await self._wait_for_port(profile / "DevToolsActivePort")
            self._session = aiohttp.ClientSession()
        except BaseException:
            await self._shutdown()
            raise
        return self

    async def _wait_for_port(self, marker: Path, timeout: float = 20.0) -> int:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while loop.time() < deadline:
            if self._process is not None and self._process.returncode is not None:
                raise CDPError(f"{self.binary} exited with status {self._process.returncode}")
            with contextlib.suppress(FileNotFoundError, ValueError, IndexError):
                return int((await asyncio.to_thread(marker.read_text)).splitlines()[0])
            await asyncio.sleep(0.05)
        raise CDPError(f"{self.binary} did not open its DevTools port within {timeout} s")

    async def new_page(self) -> Page:
        """A tab with a phone-sized viewport, console and exceptions recorded."""
        assert self._session is not None
        base = f"http://127.0.0.1:{self.port}"
        async with self._session.put(f"{base}/json/new?about:blank") as response:
            target = await response.json(content_type=None)
        ws = await self._session.ws_connect(target["webSocketDebuggerUrl"], max_msg_size=0)
        page = Page(ws)
        self._pages.append(page)
        await page.send("Page.enable")
        await page.send("Runtime.enable")
        await page.send("Emulation.setDeviceMetricsOverride", self.viewport)
        return page

    async def _shutdown(self) -> None:
        for page in self._pages:
            with contextlib.suppress(Exception):
                await page.close()
        if self._session is not None:
            await self._session.close()
        process, self._process = self._process, None
        if process is not None and process.returncode is None:
            process.kill()
            with contextlib.suppress(ProcessLookupError):
                await process.wait()
        if self._profile is not None:
            # Chromium may still be flushing its profile for a moment after the kill.
            with contextlib.suppress(OSError):
                self._profile.cleanup()
            self._profile = None

    async def __aexit__(self, *exc_info: object) -> None:
        await self._shutdown()
