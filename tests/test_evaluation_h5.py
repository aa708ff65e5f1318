"""The H5 page's part of the station evaluation, in headless Chromium against the API: the cards a rider
saw and the map and call links they tapped reach the server's counts, and nothing else does."""

from __future__ import annotations

import asyncio

import pytest
from cdp import Chromium, require_chromium  # tests/ is on sys.path (rootdir conftest)
from test_evaluation import usage_rows
from test_h5 import Site, open_page, site, texts, wait_for_names

__all__ = ["site"]  # a fixture, imported for pytest


async def counts_reach(site: Site, predicate: object, tries: int = 100) -> dict[str, tuple[int, int, int]]:
    """The usage counts by station code once `predicate(counts)` holds (flushing what the server holds)."""
    counts: dict[str, tuple[int, int, int]] = {}
    for _ in range(tries):
        await site.core.evaluation.counter.flush()
        counts = {code: value for (code, _day), value in (await usage_rows(site.core)).items()}
        if predicate(counts):  # type: ignore[operator]
            return counts
        await asyncio.sleep(0.1)
    raise AssertionError(f"counts never matched: {counts}")


@pytest.mark.browser
async def test_cards_seen_and_links_tapped_are_counted(site: Site) -> None:
    binary = require_chromium()
    async with Chromium(binary) as browser:
        page = await open_page(browser, site)
        await wait_for_names(page, await site.expected())
        codes = await texts(page, "[data-testid=station]", "data-code")
        first = codes[0]
        # The map apps are not opened in the test: a listener after the page's own cancels the navigation.
        await page.evaluate(
            "document.addEventListener('click', e => {"
            " if (e.target.closest('a.action')) e.preventDefault(); })"
        )
        card = f"[data-testid=station][data-code={first}]"
        await page.click(f"{card} [data-testid=nav-amap]")
        await page.click(f"{card} [data-testid=nav-baidu]")
        await page.click(f"{card} [data-testid=station-call]")
        counts = await counts_reach(site, lambda c: c.get(first, (0, 0, 0))[1:] == (2, 1))
        # The first card was on screen: seen once, however often it was tapped.
        assert counts[first] == (1, 2, 1)
        # Cards below the fold count when they are scrolled into view, once per answer.
        last = codes[-1]
        await page.evaluate(
            f"document.querySelector('[data-testid=station][data-code={last}]').scrollIntoView()"
        )
        counts = await counts_reach(site, lambda c: c.get(last, (0, 0, 0))[0] == 1)
        await page.evaluate(
            f"document.querySelector('[data-testid=station][data-code={first}]').scrollIntoView()"
        )
        await asyncio.sleep(2.5)  # longer than the page waits to send views
        counts = await counts_reach(site, lambda c: True)
        assert counts[first] == (1, 2, 1)
        assert set(counts) <= set(codes)
        assert page.errors == []
