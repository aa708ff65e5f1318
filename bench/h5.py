"""(h) The H5 page on a cheap phone with a weak signal, in headless Chromium.

A first visit with the network throttled (400 kbit/s both ways, 400 ms round trips) and the CPU slowed 4×,
the location granted at once: the time from navigation to the nearest stations listed, and the bytes
transferred by then (page, styles, scripts, API answers; `total_kb` adds what follows the list: Leaflet
and the stations of the area kept for offline use; map tiles come from a closed local port and are
left out, since they depend on the provider). Then a repeat visit with the network off: the time to the list
answered from the service worker's copy of the page and the kept area. The reference is the same first
visit unthrottled, in the same run. Medians of `--runs` fresh browser profiles.

Targets: first visit ≤ 3 s and ≤ 120 KB; repeat visit offline ≤ 1 s.

Run: flock /tmp/yizhan-bench.lock python -m bench.h5 [--runs 3]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

from bench._common import ROOT, print_load, print_machine, table, verdict

sys.path.insert(0, str(ROOT / "tests"))
from cdp import Chromium, Page, find_chromium

TARGET_FIRST_S = 3.0
TARGET_FIRST_KB = 120.0
TARGET_OFFLINE_S = 1.0
THROTTLE = {
    "offline": False,
    "latency": 400,
    "downloadThroughput": 400_000 / 8,
    "uploadThroughput": 400_000 / 8,
}
OFFLINE = {"offline": True, "latency": 0, "downloadThroughput": -1, "uploadThroughput": -1}
# Records when the list first shows stations, in the page's own clock (ms since navigation started).
PROBE = """new MutationObserver(function (changes, observer) {
  if (document.body && Number(document.body.dataset.results) > 0) {
    window.__listed = performance.now(); observer.disconnect();
  }
}).observe(document, {subtree: true, attributes: true, attributeFilter: ["data-results"]});"""
# Bytes transferred (headers included) by responses complete by `until` ms; `Infinity` for all so far.
TRANSFERRED = """(function (until) {
  return performance.getEntriesByType("navigation").concat(performance.getEntriesByType("resource"))
    .filter(function (e) { return e.responseEnd <= until; })
    .reduce(function (sum, e) { return sum + e.transferSize; }, 0);
})"""


async def visit(page: Page, url: str, wait: str, limit_s: float = 60.0) -> tuple[float, int]:
    await page.goto(url, timeout=limit_s)
    await page.wait_for(f"window.__listed !== undefined && ({wait})", timeout=limit_s)
    listed = await page.evaluate("window.__listed")
    return listed / 1000, await page.evaluate(f"{TRANSFERRED}(window.__listed)")


async def one_run(url: str, origin: str, at: tuple[float, float], throttled: bool) -> dict[str, float]:
    async with Chromium(find_chromium()) as browser:
        page = await browser.new_page()
        await page.send("Network.enable")
        await page.send("Network.setBlockedURLs", {"urls": ["*:9/*"]})
        await page.send("Page.addScriptToEvaluateOnNewDocument", {"source": PROBE})
        await page.send(
            "Browser.setPermission",
            {"permission": {"name": "geolocation"}, "setting": "granted", "origin": origin},
        )
        await page.send(
            "Emulation.setGeolocationOverride", {"latitude": at[0], "longitude": at[1], "accuracy": 10}
        )
        if throttled:
            await page.send("Network.emulateNetworkConditions", THROTTLE)
            await page.send("Emulation.setCPUThrottlingRate", {"rate": 4})
        first_s, first_bytes = await visit(page, url, "true")
        await page.wait_for("document.body.dataset.area === '1'", timeout=60)
        await page.wait_for("navigator.serviceWorker.controller !== null", timeout=60)
        await page.wait_for("document.querySelector('#map .pin') !== null", timeout=60)
        total_bytes = await page.evaluate(f"{TRANSFERRED}(Infinity)")
        await page.send("Network.emulateNetworkConditions", OFFLINE)
        offline_s, _ = await visit(page, url, "document.body.dataset.offline === '1'")
        return {
            "first_s": first_s,
            "first_kb": first_bytes / 1024,
            "total_kb": total_bytes / 1024,
            "offline_s": offline_s,
        }


async def measure(runs: int) -> list[list[dict[str, float]]]:
    from aiohttp.test_utils import TestServer

    from bot.app import open_core
    from bot.config import Settings
    from bot.web.app import build_web_app
    from bot.web.h5 import setup_h5
    from domain.places import DEMO_PLACES

    with tempfile.TemporaryDirectory(prefix="yizhan-bench-h5-") as directory:
        settings = Settings(database_url=f"sqlite+aiosqlite:///{Path(directory) / 'h5.db'}", _env_file=None)  # type: ignore[call-arg]
        async with open_core(settings) as core:
            await core.stations.seed_demo()
            await core.reload_index()
            app = build_web_app(core)
            setup_h5(app, tile_url="http://127.0.0.1:9/{z}/{x}/{y}.png")
            place = DEMO_PLACES[0]
            async with TestServer(app, host="127.0.0.1") as server:
                url = str(server.make_url("/"))
                results: list[list[dict[str, float]]] = [[], []]
                for _ in range(runs):  # interleaved: reference, throttled
                    for index, throttled in enumerate((False, True)):
                        run = await one_run(url, url.rstrip("/"), (place.lat, place.lon), throttled)
                        print(f"  {'throttled' if throttled else 'reference'}: {run}", flush=True)
                        results[index].append(run)
                return results


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args(argv)
    print_machine("bench.h5")
    print_load("before")
    reference, throttled = asyncio.run(measure(args.runs))

    def median(runs: list[dict[str, Any]], key: str) -> float:
        return statistics.median(run[key] for run in runs)

    rows = []
    targets: tuple[tuple[str, str, float | None], ...] = (
        ("first_s", "s", TARGET_FIRST_S),
        ("first_kb", "KB", TARGET_FIRST_KB),
        ("total_kb", "KB", None),
        ("offline_s", "s", TARGET_OFFLINE_S),
    )
    for key, unit, target in targets:
        slow, fast = median(throttled, key), median(reference, key)
        ratio = slow / fast if fast else float("nan")
        rows.append(
            [
                key,
                f"{fast:.2f} {unit}",
                f"{slow:.2f} {unit}",
                f"{ratio:.2f}×",
                "—" if target is None else f"≤ {target} {unit}",
                "" if target is None else verdict(slow <= target),
            ]
        )
    print_load("after")
    print(table(["measure", "unthrottled (ref)", "throttled", "ratio", "target", ""], rows))


if __name__ == "__main__":
    main()
