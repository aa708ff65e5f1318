"""The demo's chat page follows the language a user picks in the bot with /language."""

from __future__ import annotations

import asyncio
from pathlib import Path

import aiohttp

from bot.app import open_core
from bot.cli import chosen_locale_reader
from bot.config import Settings
from bot.telegram import build_bot, build_dispatcher
from domain.places import DEMO_PLACES
from handlers.callbacks import LanguageCb
from localapi import DEMO_USER_ID, LocalBotAPI


async def test_the_demo_page_and_its_language_selector_follow_the_language_command(tmp_path: Path) -> None:
    settings = Settings(database_url=f"sqlite+aiosqlite:///{tmp_path / 'demo.db'}", _env_file=None)  # type: ignore[call-arg]
    async with open_core(settings) as core:
        api = LocalBotAPI(
            preset_places=[(place.key, place.label, place.lat, place.lon) for place in DEMO_PLACES],
            chosen_locale=chosen_locale_reader(core),
        )
        url = await api.start()
        bot = build_bot(api.token, url)
        dp = build_dispatcher(core)
        task = asyncio.create_task(dp.start_polling(bot, handle_signals=False, polling_timeout=1))
        try:
            async with aiohttp.ClientSession(base_url=url) as http:
                async with http.get("/demo/api/config") as response:
                    config = await response.json()
                assert config["user"]["language_code"] == "zh-hans"
                assert config["strings"]["zh-hans"]["start"] == "开始"
                assert config["strings"]["en"]["start"] == "Start"
                assert config["preset_places"][0]["labels"]["en"] == "Guangzhou Tianhe"
                async with http.get("/demo/api/updates") as response:
                    version = (await response.json())["version"]

                async with http.post("/demo/api/message", json={"text": "/language"}) as response:
                    sent = (await response.json())["message_id"]
                picker = await api.wait_for_bot_reply(DEMO_USER_ID, sent, timeout=10)
                english = LanguageCb(locale="en").pack()
                assert english in [button.get("callback_data") for button in picker.buttons]
                async with http.post(
                    "/demo/api/press", json={"message_id": picker.message_id, "callback_data": english}
                ) as response:
                    assert response.status == 200

                # The page long-polls; the bot's answer wakes it, and the language comes with it.
                language = None
                for _ in range(20):
                    async with http.get(
                        "/demo/api/updates", params={"since": str(version), "wait": "5"}
                    ) as r:
                        update = await r.json()
                    version, language = update["version"], update["language_code"]
                    if language == "en":
                        break
                assert language == "en"
                async with http.get("/demo/api/config") as response:
                    assert (await response.json())["user"]["language_code"] == "en"

                # The selector still works afterwards: the page's own choice is not overridden.
                async with http.post("/demo/api/language", json={"language_code": "zh-hant"}) as response:
                    assert response.status == 200
                async with http.get("/demo/api/updates") as response:
                    assert (await response.json())["language_code"] == "zh-hant"
        finally:
            await dp.stop_polling()
            await asyncio.wait_for(task, 10)
            await bot.session.close()
            await api.stop()
