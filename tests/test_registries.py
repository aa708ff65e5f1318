"""One concept, one home: a new amenity, language or demo place in its registry reaches every consumer.

Each test adds a row to a registry in a fresh interpreter, before anything else is imported, and then asks
each consumer (the bot's views and command menus, the H5 page, the seed, the importer, the OpenAPI
document, the demo's chat page) for it. A consumer that keeps a list of its own misses the new row and the
test fails; so does one that raises `KeyError` for a row it does not know.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def run_probe(code: str) -> dict[str, object]:
    """Run `code` in a fresh interpreter from the checkout; it prints one JSON object, returned here."""
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    found: dict[str, object] = json.loads(result.stdout.strip().splitlines()[-1])
    return found


def test_a_new_amenity_in_the_registry_reaches_every_consumer(tmp_path: Path) -> None:
    csv = tmp_path / "stations.csv"
    csv.write_text("code,name,lat,lon,amenities\nT1,测试驿站,23.1,113.3,淋浴、饮水\n", encoding="utf-8")
    found = run_probe(
        f"""
        import json
        import domain.amenities as registry
        shower = registry.Amenity("shower", "🚿", "Shower", "淋浴", 0.15)
        registry.AMENITIES = (*registry.AMENITIES, shower)
        registry.AMENITY = {{a.key: a for a in registry.AMENITIES}}

        from aiogram.utils.i18n import I18n
        from bot.telegram import build_i18n
        from bot.web.h5 import ui_catalogue
        from bot.web.openapi import openapi_json
        from domain.values import AMENITY_KEYS, amenity_mask
        from handlers import views
        from storage.importers import parse_station_file
        from storage.seed import generate_stations

        i18n = build_i18n()
        with i18n.context(), i18n.use_locale("en"):
            keyboard = views.filter_keyboard((), 23.1, 113.3, False)
            buttons = [b.text for row in keyboard.inline_keyboard for b in row]
        stations = generate_stations(3000, 11)
        parsed = parse_station_file({str(csv)!r})
        print(json.dumps({{
            "keys": "shower" in AMENITY_KEYS and amenity_mask(["shower"]) > 0,
            "bot_icon": views.AMENITY_ICONS.get("shower"),
            "bot_filter": any("Shower" in text for text in buttons),
            "h5": ui_catalogue("en")["amenities"].get("shower"),
            "openapi": "shower" in json.dumps(json.loads(openapi_json())["components"]["schemas"]["Amenity"]),
            "seed": sum("shower" in s.amenities for s in stations) > 0,
            "import": [list(r.amenities) for r in parsed.records],
        }}, ensure_ascii=False))
        """
    )
    assert found == {
        "keys": True,
        "bot_icon": "🚿",
        "bot_filter": True,
        "h5": "Shower",
        "openapi": True,
        "seed": True,
        "import": [["drinking_water", "shower"]],
    }


def test_a_new_language_in_the_registry_reaches_every_consumer() -> None:
    found = run_probe(
        """
        import asyncio, json
        import domain.languages as registry
        # No catalogue yet: the texts fall back to the English msgids, which is all the test needs.
        japanese = registry.Language("ja", "日本語", "ja", frozenset({"ja-jp"}), ("ja",))
        registry.LANGUAGES = (*registry.LANGUAGES, japanese)
        registry.LOCALES = tuple(language.locale for language in registry.LANGUAGES)
        registry.LANGUAGE = {language.locale: language for language in registry.LANGUAGES}
        registry._BY_TAG["ja-jp"] = registry._BY_TAG["ja"] = "ja"

        from bot.i18n import LOCALES, locale_for
        from bot.telegram import _on_startup, build_bot
        from bot.web.h5 import HTML_LANG, LANGUAGE_NAMES, resolve_locale
        from handlers import views
        from localapi import LocalBotAPI
        from localapi.demo import LANGUAGES as DEMO_LANGUAGES

        async def menus():
            async with LocalBotAPI() as api:
                bot = build_bot(api.token, api.url)
                try:
                    await _on_startup(bot)
                finally:
                    await bot.session.close()
                return sorted(code for _scope, code in api._commands)

        print(json.dumps({
            "locales": "ja" in LOCALES and locale_for("ja-JP") == "ja",
            "bot_keyboard": "日本語" in views.LANGUAGE_NAMES.values(),
            "bot_menus": asyncio.run(menus()),
            "h5": [LANGUAGE_NAMES.get("ja"), HTML_LANG.get("ja"), resolve_locale("JA")],
            "demo": DEMO_LANGUAGES.get("ja"),
        }, ensure_ascii=False))
        """
    )
    assert found == {
        "locales": True,
        "bot_keyboard": True,
        "bot_menus": ["", "en", "ja", "zh"],
        "h5": ["日本語", "ja", "ja"],
        "demo": "日本語",
    }


def test_a_new_demo_place_in_the_registry_reaches_the_pages_and_the_demo_data() -> None:
    found = run_probe(
        """
        import json, math
        import domain.places as registry
        baiyun = registry.DemoPlace("guangzhou_baiyun", "Guangzhou Baiyun", 23.1580, 113.2730,
                                    ("Guangzhou", "30"), "白云")
        registry.DEMO_PLACES = (*registry.DEMO_PLACES, baiyun)

        from bot.web.h5 import ui_catalogue
        from storage.seed import DEMO_GUARANTEED, demo_stations

        def metres(a, b, lat, lon):
            x = math.radians(lon - b) * math.cos(math.radians((a + lat) / 2))
            return 6_371_000 * math.hypot(x, math.radians(lat - a))

        near = [
            s for s in demo_stations()
            if metres(s.lat, s.lon, baiyun.lat, baiyun.lon) <= 1000 and s.opening_hours == "24/7"
            and "drinking_water" in s.amenities
        ]
        print(json.dumps({
            "h5": [p["key"] for p in ui_catalogue("en")["places"]][-1],
            "seed": len(near) >= DEMO_GUARANTEED,
        }))
        """
    )
    assert found == {"h5": "guangzhou_baiyun", "seed": True}
