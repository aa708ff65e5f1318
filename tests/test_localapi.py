"""The local Bot API server, driven by aiogram's real `Bot` and HTTP session, plus its demo page in Chromium.

These tests pin what the end-to-end suites rely on: aiogram parses every answer, errors surface as the same
exceptions as with Telegram, the chat keeps its current state after edits, and the page renders it.
"""

from __future__ import annotations

import asyncio
import html
import json
import struct
import time
import zlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import pytest
from aiogram import Bot, Dispatcher, F, Router
from aiogram.client.default import DefaultBotProperties
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.enums import ParseMode
from aiogram.exceptions import (
    TelegramBadRequest,
    TelegramConflictError,
    TelegramForbiddenError,
    TelegramRetryAfter,
)
from aiogram.filters import CommandStart
from aiogram.types import (
    BotCommand,
    BotCommandScopeAllPrivateChats,
    BufferedInputFile,
    CallbackQuery,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    KeyboardButton,
    LinkPreviewOptions,
    Message,
    ReplyKeyboardMarkup,
    ReplyParameters,
)
from aiogram.webhook.aiohttp_server import SimpleRequestHandler
from aiohttp import web
from cdp import Chromium, require_chromium  # tests/ is on sys.path (rootdir conftest)

from localapi import DEMO_USER_ID, LocalBotAPI

USER = 501
TIANFU = ("tianfu", "天府广场", 30.657, 104.066)
CHUNXI = ("chunxi", "春熙路", 30.6535, 104.081)


# ---------------------------------------------------------------------------- a tiny bot under test


@dataclass
class Seen:
    """What the bot's handlers received, for assertions on the update side."""

    languages: list[str | None] = field(default_factory=list)
    live_positions: list[tuple[float, float]] = field(default_factory=list)
    tracking: dict[int, int] = field(default_factory=dict)
    """user's live-location message id → the bot's reply it keeps editing."""


def again_keyboard() -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(
        inline_keyboard=[
            [InlineKeyboardButton(text="再来一次", callback_data="again")],
            [InlineKeyboardButton(text="地图", url="https://www.openstreetmap.org/")],
        ]
    )


def build_router(seen: Seen) -> Router:
    router = Router(name="echo")

    @router.message(CommandStart())
    async def start_shows_location_keyboard(message: Message) -> None:
        keyboard = ReplyKeyboardMarkup(
            keyboard=[[KeyboardButton(text="发送位置", request_location=True)]], resize_keyboard=True
        )
        await message.answer("欢迎！发送位置查找附近驿站。", reply_markup=keyboard)

    @router.message(F.text)
    async def echo_text(message: Message) -> None:
        assert message.text is not None and message.from_user is not None
        seen.languages.append(message.from_user.language_code)
        await message.answer(
            f"<b>echo</b> [{message.from_user.language_code}]: {html.escape(message.text)}",
            reply_markup=again_keyboard(),
        )

    @router.message(F.location)
    async def location_gets_nearest_station(message: Message) -> None:
        assert message.location is not None
        lat, lon = message.location.latitude, message.location.longitude
        if message.location.live_period:
            reply = await message.answer(f"跟踪中 {lat:.5f}, {lon:.5f}")
            seen.tracking[message.message_id] = reply.message_id
            return
        await message.answer_venue(lat + 0.001, lon, title="春熙路工会驿站", address="锦江区春熙路 1 号")
        await message.answer("最近的驿站已发送。", reply_markup=again_keyboard())

    @router.edited_message(F.location)
    async def live_location_moves_the_tracking_message(message: Message, bot: Bot) -> None:
        assert message.location is not None
        lat, lon = message.location.latitude, message.location.longitude
        seen.live_positions.append((lat, lon))
        await bot.edit_message_text(
            text=f"跟踪中 {lat:.5f}, {lon:.5f}",
            chat_id=message.chat.id,
            message_id=seen.tracking[message.message_id],
        )

    @router.callback_query(F.data == "again")
    async def again_edits_the_message(query: CallbackQuery) -> None:
        await query.answer("好的")
        assert isinstance(query.message, Message)
        await query.message.edit_text("已按下 ✅")

    return router


def make_bot(api: LocalBotAPI) -> Bot:
    return Bot(
        api.token,
        session=AiohttpSession(api=TelegramAPIServer.from_base(api.url)),
        default=DefaultBotProperties(parse_mode=ParseMode.HTML),
    )


@pytest.fixture
async def api() -> AsyncIterator[LocalBotAPI]:
    server = LocalBotAPI(preset_places=[TIANFU, CHUNXI], live_step_seconds=0.05)
    await server.start()
    yield server
    await server.stop()


@pytest.fixture
async def bot(api: LocalBotAPI) -> AsyncIterator[Bot]:
    client = make_bot(api)
    yield client
    await client.session.close()


@pytest.fixture
async def seen(api: LocalBotAPI, bot: Bot) -> AsyncIterator[Seen]:
    """The echo bot polling the local server for the duration of a test."""
    record = Seen()
    dispatcher = Dispatcher()
    dispatcher.include_router(build_router(record))
    polling = asyncio.create_task(
        dispatcher.start_polling(bot, handle_signals=False, close_bot_session=False)
    )
    await api.wait_for(lambda: api.calls_to("getUpdates"))
    yield record
    await dispatcher.stop_polling()
    await polling


def tiny_png(width: int, height: int) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    rows = b"".join(b"\x00" + b"\xff\x80\x00" * width for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


# ---------------------------------------------------------------------------- conversations through aiogram


async def test_text_is_echoed_with_the_users_language(api: LocalBotAPI, seen: Seen) -> None:
    sent = await api.send_text(USER, "你好 <世界> & co", language_code="en")

    reply = await api.wait_for_bot_reply(USER, sent["message_id"])

    assert reply.message_id == sent["message_id"] + 1  # one message counter per chat
    assert reply.text == "echo [en]: 你好 <世界> & co"
    assert reply.html == "<b>echo</b> [en]: 你好 &lt;世界&gt; &amp; co"
    assert reply.raw["entities"] == [{"type": "bold", "offset": 0, "length": 4}]
    assert [b["text"] for b in reply.buttons] == ["再来一次", "地图"]
    assert seen.languages == ["en"]
    assert [m.from_bot for m in api.chat(USER)] == [False, True]


async def test_start_command_sets_a_reply_keyboard_with_a_location_button(
    api: LocalBotAPI, seen: Seen
) -> None:
    sent = await api.send_command(USER, "/start")
    assert sent["entities"] == [{"type": "bot_command", "offset": 0, "length": 6}]

    reply = await api.wait_for_bot_reply(USER, sent["message_id"])

    keyboard = api.reply_keyboard(USER)
    assert keyboard is not None and keyboard["keyboard"][0][0]["request_location"] is True
    assert reply.reply_markup == keyboard
    assert "reply_markup" not in reply.raw  # like Telegram: only inline keyboards belong to a Message


async def test_pressing_an_inline_button_answers_the_query_and_edits_the_message(
    api: LocalBotAPI, seen: Seen
) -> None:
    sent = await api.send_text(USER, "按钮")
    reply = await api.wait_for_bot_reply(USER, sent["message_id"])
    mark = api.mark()

    query_id = await api.press(USER, reply.message_id, "again")
    edited = await api.wait_for_change(USER, mark)

    assert edited.message_id == reply.message_id
    assert edited.text == "已按下 ✅"
    assert edited.edits == 1
    assert edited.reply_markup is None  # an edit without reply_markup drops the keyboard, as in Telegram
    assert api.callback_answers[query_id] == {
        "text": "好的",
        "show_alert": False,
        "url": None,
        "cache_time": 0,
    }
    with pytest.raises(ValueError, match="no button"):
        await api.press(USER, reply.message_id, "again")  # the keyboard is gone


async def test_live_location_updates_arrive_as_edited_messages(api: LocalBotAPI, seen: Seen) -> None:
    shared = await api.send_location(USER, 30.657, 104.066, live_period=900)
    tracking = await api.wait_for_bot_reply(USER, shared["message_id"])
    assert tracking.text == "跟踪中 30.65700, 104.06600"

    for step in (1, 2):
        mark = api.mark()
        moved = await api.update_live_location(USER, shared["message_id"], 30.657 + step * 0.00045, 104.066)
        assert moved["location"]["live_period"] == 900 and moved["edit_date"] >= moved["date"]
        await api.wait_for_change(USER, mark)

    final = api.message(USER, tracking.message_id)
    assert final is not None and final.text == "跟踪中 30.65790, 104.06600" and final.edits == 2
    assert seen.live_positions == [(30.65745, 104.066), (30.6579, 104.066)]
    user_message = api.message(USER, shared["message_id"])
    assert user_message is not None and user_message.location is not None
    assert user_message.location["latitude"] == pytest.approx(30.6579) and user_message.edits == 2


async def test_a_shared_location_gets_a_venue(api: LocalBotAPI, seen: Seen) -> None:
    shared = await api.send_location(USER, 30.657, 104.066)

    text = await api.wait_for(lambda: next((m for m in api.bot_messages(USER) if m.text), None))

    venue = api.bot_messages(USER)[0]
    assert venue.venue == {
        "location": {"latitude": 30.658, "longitude": 104.066},
        "title": "春熙路工会驿站",
        "address": "锦江区春熙路 1 号",
    }
    assert venue.location == venue.venue["location"]
    assert venue.message_id == shared["message_id"] + 1 and text.message_id == venue.message_id + 1


async def test_send_venue_returns_a_message_aiogram_parses(api: LocalBotAPI, bot: Bot) -> None:
    await api.send_text(USER, "hi")

    message = await bot.send_venue(USER, 31.2304, 121.4737, title="人民广场驿站", address="黄浦区人民大道")

    assert message.venue is not None and message.venue.title == "人民广场驿站"
    assert message.location is not None and message.location.latitude == pytest.approx(31.2304)
    stored = api.last_bot_message(USER)
    assert stored is not None and stored.venue is not None and stored.venue["address"] == "黄浦区人民大道"


async def test_identical_edit_raises_message_not_modified(api: LocalBotAPI, bot: Bot) -> None:
    await api.send_text(USER, "hi")
    message = await bot.send_message(USER, "<b>附近</b> 3 个驿站", reply_markup=again_keyboard())

    with pytest.raises(TelegramBadRequest, match="message is not modified"):
        await bot.edit_message_text(
            "<b>附近</b> 3 个驿站", chat_id=USER, message_id=message.message_id, reply_markup=again_keyboard()
        )
    with pytest.raises(TelegramBadRequest, match="message to edit not found"):
        await bot.edit_message_text("x", chat_id=USER, message_id=999)

    # Same text but a different entity is a change, as in Telegram.
    edited = await bot.edit_message_text(
        "<i>附近</i> 3 个驿站", chat_id=USER, message_id=message.message_id, reply_markup=again_keyboard()
    )
    assert isinstance(edited, Message) and edited.edit_date is not None
    assert api.message(USER, message.message_id).edits == 1  # type: ignore[union-attr]


async def test_replies_link_previews_and_deletions_behave_like_telegram(api: LocalBotAPI, bot: Bot) -> None:
    question = await api.send_text(USER, "最近的驿站在哪？")

    answer = await bot.send_message(
        USER,
        "https://www.openstreetmap.org/",
        reply_parameters=ReplyParameters(message_id=question["message_id"]),
        link_preview_options=LinkPreviewOptions(is_disabled=True),
    )

    assert answer.reply_to_message is not None and answer.reply_to_message.text == "最近的驿站在哪？"
    assert answer.link_preview_options is not None and answer.link_preview_options.is_disabled
    with pytest.raises(TelegramBadRequest, match="message to be replied not found"):
        await bot.send_message(USER, "x", reply_parameters=ReplyParameters(message_id=999))
    assert await bot.delete_message(USER, answer.message_id)
    assert [m.message_id for m in api.chat(USER)] == [question["message_id"]]
    with pytest.raises(TelegramBadRequest, match="message to delete not found"):
        await bot.delete_message(USER, answer.message_id)


async def test_rate_limit_surfaces_as_retry_after() -> None:
    async with LocalBotAPI(rate_limit=1.0) as limited:
        client = make_bot(limited)
        try:
            await limited.send_text(USER, "hi")
            await client.send_message(USER, "first")
            with pytest.raises(TelegramRetryAfter) as caught:
                await client.send_message(USER, "second")
            assert caught.value.retry_after == 1
            assert limited.rate_limited_count == 1
            await client.send_chat_action(USER, "typing")  # not a message: not limited
        finally:
            await client.session.close()


async def test_fail_next_injects_one_error(api: LocalBotAPI, bot: Bot) -> None:
    await api.send_text(USER, "hi")
    api.fail_next("sendMessage", 429, "Too Many Requests: retry after 3", retry_after=3)

    with pytest.raises(TelegramRetryAfter) as caught:
        await bot.send_message(USER, "x")
    assert caught.value.retry_after == 3
    assert (await bot.send_message(USER, "y")).text == "y"
    assert api.rate_limited_count == 1


async def test_webhook_posts_updates_with_the_secret_header_and_retries(api: LocalBotAPI, bot: Bot) -> None:
    received: list[tuple[str | None, dict[str, Any]]] = []

    async def receive(request: web.Request) -> web.Response:
        received.append((request.headers.get("X-Telegram-Bot-Api-Secret-Token"), await request.json()))
        return web.Response(status=500 if len(received) == 1 else 200)

    receiver = web.Application()
    receiver.router.add_post("/hook", receive)
    runner = web.AppRunner(receiver, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    try:
        assert await bot.set_webhook(f"http://{host}:{port}/hook", secret_token="s3cr3t-token")
        sent = await api.send_text(USER, "via webhook")

        await api.wait_for(lambda: len(api.webhook_deliveries) == 2)

        assert [secret for secret, _ in received] == ["s3cr3t-token", "s3cr3t-token"]
        assert received[1][1]["message"] == sent
        assert [d["status"] for d in api.webhook_deliveries] == [500, 200]
        with pytest.raises(TelegramConflictError, match="webhook is active"):
            await bot.get_updates()
        info = await bot.get_webhook_info()
        assert info.url.endswith("/hook") and info.pending_update_count == 0
        assert info.last_error_message == "Wrong response from the webhook: 500 Internal Server Error"

        assert await bot.delete_webhook()
        await api.send_text(USER, "polled again")
        updates = await bot.get_updates(timeout=1)
        assert [u.message.text for u in updates if u.message] == ["polled again"]
    finally:
        await runner.cleanup()


async def test_aiogram_webhook_handler_accepts_the_secret_and_its_reply_method_runs(
    api: LocalBotAPI, bot: Bot
) -> None:
    router = Router()

    @router.message(F.text)
    async def answer_in_the_webhook_response(message: Message) -> Any:
        return message.answer(f"webhook: {html.escape(message.text or '')}")  # a method object, not a call

    dispatcher = Dispatcher()
    dispatcher.include_router(router)
    app = web.Application()
    SimpleRequestHandler(dispatcher, bot, handle_in_background=False, secret_token="right-secret").register(
        app, path="/tg"
    )
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    try:
        await bot.set_webhook(f"http://{host}:{port}/tg", secret_token="right-secret")
        sent = await api.send_text(USER, "<hello>")

        reply = await api.wait_for_bot_reply(USER, sent["message_id"])

        assert reply.text == "webhook: <hello>"
        assert [d["status"] for d in api.webhook_deliveries] == [200]
    finally:
        await runner.cleanup()


async def test_get_updates_long_poll_wakes_up_on_a_new_update(api: LocalBotAPI, bot: Bot) -> None:
    waiting = asyncio.create_task(bot.get_updates(timeout=20))
    await asyncio.sleep(0.2)
    assert not waiting.done()

    started = time.monotonic()
    await api.send_text(USER, "wake up")
    updates = await asyncio.wait_for(waiting, 2)

    assert time.monotonic() - started < 1.0
    assert [u.message.text for u in updates if u.message] == ["wake up"]
    # Asking with offset = last id + 1 confirms it: it is not delivered twice.
    assert await bot.get_updates(offset=updates[-1].update_id + 1, timeout=0) == []


async def test_text_length_and_emptiness_are_validated_like_telegram(api: LocalBotAPI, bot: Bot) -> None:
    await api.send_text(USER, "hi")

    with pytest.raises(TelegramBadRequest, match="message is too long"):
        await bot.send_message(USER, "长" * 4097)
    with pytest.raises(TelegramBadRequest, match="message text is empty"):
        await bot.send_message(USER, "<b></b>")
    # The limit applies to the text after entity parsing, in UTF-16 units.
    assert await bot.send_message(USER, "<b>" + "长" * 4096 + "</b>")
    with pytest.raises(TelegramBadRequest, match="message is too long"):
        await bot.send_message(USER, "😀" * 2049)


async def test_markup_and_html_are_validated_like_telegram(api: LocalBotAPI, bot: Bot) -> None:
    await api.send_text(USER, "hi")
    too_long = InlineKeyboardMarkup(
        inline_keyboard=[[InlineKeyboardButton(text="x", callback_data="d" * 65)]]
    )

    with pytest.raises(TelegramBadRequest, match="BUTTON_DATA_INVALID"):
        await bot.send_message(USER, "x", reply_markup=too_long)
    with pytest.raises(TelegramBadRequest, match='Unsupported start tag "br"'):
        await bot.send_message(USER, "第一行<br>第二行")
    with pytest.raises(TelegramBadRequest, match="Can't find end tag corresponding to start tag"):
        await bot.send_message(USER, "<b>未闭合")


async def test_unknown_chat_blocked_user_unknown_token_and_method(api: LocalBotAPI, bot: Bot) -> None:
    with pytest.raises(TelegramBadRequest, match="chat not found"):
        await bot.send_message(999, "x")

    await api.send_text(USER, "hi")
    await api.block(USER)
    with pytest.raises(TelegramForbiddenError, match="bot was blocked by the user"):
        await bot.send_message(USER, "x")
    kicked = api.pending_updates[-1]["my_chat_member"]["new_chat_member"]
    assert kicked["status"] == "kicked"

    async with aiohttp.ClientSession() as http:
        async with http.post(f"{api.url}/bot1:WRONG/getMe") as response:
            assert response.status == 401
            assert await response.json() == {"ok": False, "error_code": 401, "description": "Unauthorized"}
        async with http.post(f"{api.url}/bot{api.token}/sendDice", json={"chat_id": USER}) as response:
            assert response.status == 400
            assert (await response.json())["description"] == "Bad Request: method not found"
    assert api.unknown_methods == ["sendDice"]


async def test_json_and_form_bodies_are_read_like_multipart(api: LocalBotAPI) -> None:
    await api.send_text(USER, "hi")
    markup = {"inline_keyboard": [[{"text": "a", "callback_data": "a"}]]}

    async with aiohttp.ClientSession() as http:
        url = f"{api.url}/bot{api.token}/sendMessage"
        async with http.post(url, json={"chat_id": USER, "text": "json", "reply_markup": markup}) as response:
            by_json = await response.json()
        form = {"chat_id": str(USER), "text": "form", "reply_markup": json.dumps(markup)}
        async with http.post(url, data=form) as response:
            by_form = await response.json()
        async with http.get(url, params={"chat_id": str(USER), "text": "query"}) as response:
            by_query = await response.json()

    assert by_json["ok"] and by_json["result"]["reply_markup"] == markup
    assert by_form["ok"] and by_form["result"]["reply_markup"] == markup
    assert by_query["ok"] and by_query["result"]["text"] == "query"


async def test_commands_descriptions_and_menu_button_are_stored(api: LocalBotAPI, bot: Bot) -> None:
    await bot.set_my_commands([BotCommand(command="start", description="开始")])
    await bot.set_my_commands([BotCommand(command="start", description="Start")], language_code="en")
    await bot.set_my_commands(
        [BotCommand(command="near", description="附近")], scope=BotCommandScopeAllPrivateChats()
    )
    await bot.set_my_description("查找附近的工会驿站")
    await bot.set_my_short_description("工会驿站")
    await bot.set_chat_menu_button()

    assert api.commands == {
        "": [{"command": "start", "description": "开始"}],
        "en": [{"command": "start", "description": "Start"}],
    }
    assert [c.command for c in await bot.get_my_commands(language_code="en")] == ["start"]
    assert api.scoped_commands({"type": "all_private_chats"}) == [{"command": "near", "description": "附近"}]
    assert (await bot.get_my_description()).description == "查找附近的工会驿站"
    assert api.description("short_description", "en") == "工会驿站"  # falls back to the default language
    with pytest.raises(TelegramBadRequest, match="BOT_COMMAND_INVALID"):
        await bot.set_my_commands([BotCommand(command="Bad-Command", description="x")])


async def test_send_photo_by_upload_and_by_file_id(api: LocalBotAPI, bot: Bot) -> None:
    await api.send_text(USER, "hi")
    png = tiny_png(200, 100)

    message = await bot.send_photo(USER, BufferedInputFile(png, "map.png"), caption="<b>地图</b>")

    assert message.photo is not None and (message.photo[-1].width, message.photo[-1].height) == (200, 100)
    assert message.photo[-1].file_size == len(png)
    assert message.caption == "地图"
    again = await bot.send_photo(USER, message.photo[-1].file_id)
    assert again.photo is not None and again.photo[-1].file_id == message.photo[-1].file_id
    with pytest.raises(TelegramBadRequest, match="wrong file identifier"):
        await bot.send_photo(USER, "no-such-file-id")
    assert api.file_bytes(message.photo[0].file_id) == png


async def test_wait_for_timeout_describes_the_chat(api: LocalBotAPI) -> None:
    await api.send_text(USER, "有人吗")

    with pytest.raises(TimeoutError) as caught:
        await api.wait_for(lambda: api.last_bot_message(USER), timeout=0.05)

    assert "#1 user: 有人吗" in str(caught.value)


async def test_demo_endpoints_long_poll_and_simulate_live_location(api: LocalBotAPI, seen: Seen) -> None:
    async with aiohttp.ClientSession(base_url=api.url) as http:
        async with http.get("/demo/api/config") as response:
            config = await response.json()
        assert [p["key"] for p in config["preset_places"]] == ["tianfu", "chunxi"]

        async with http.get("/demo/api/updates") as response:
            initial = await response.json()
        assert initial["reset"] and initial["messages"] == []

        held = asyncio.create_task(http.get("/demo/api/updates", params={"since": str(initial["version"])}))
        await asyncio.sleep(0.1)
        assert not held.done()
        async with http.post("/demo/api/message", json={"text": "演示"}) as response:
            assert response.status == 200
        async with await held as response:
            woken = await response.json()
        assert woken["messages"][0]["from"] == "user" and woken["messages"][0]["text"] == "演示"

        async with http.post("/demo/api/location", json={"key": "tianfu", "live": True}) as response:
            live = await response.json()
        moved = await api.wait_for(
            lambda: (m := api.message(DEMO_USER_ID, live["message_id"])) is not None and m.edits == 2 and m
        )
        assert moved.location is not None and moved.location["latitude"] == pytest.approx(
            30.657 + 100 / 111_320
        )
        await api.wait_for(lambda: len(seen.live_positions) == 2)

        async with http.post("/demo/api/location", json={"latitude": 91, "longitude": 0}) as response:
            assert response.status == 400


# ---------------------------------------------------------------------------- the demo page in Chromium


@pytest.mark.browser
async def test_demo_page_shares_a_preset_place_and_renders_edits(api: LocalBotAPI, seen: Seen) -> None:
    binary = require_chromium()
    bot_messages = "[data-testid=message][data-from=bot]"
    bot_texts = f"{bot_messages} .text"

    async with Chromium(binary) as browser:
        page = await browser.new_page()
        await page.goto(api.url)
        await page.wait_for("document.body.dataset.ready === '1'")

        await page.click("[data-testid=start]")
        await page.wait_for("!!document.querySelector('[data-testid=reply-button][data-request-location]')")

        await page.type("[data-testid=text-input]", "你好 <b>不是粗体</b>")
        await page.click("[data-testid=send]")
        echo = await page.wait_for(
            f"[...document.querySelectorAll('{bot_messages} .text')].map(e => e.innerHTML)"
            ".find(h => h.includes('echo'))"
        )
        assert echo == "<b>echo</b> [zh-hans]: 你好 &lt;b&gt;不是粗体&lt;/b&gt;"

        await page.click("[data-testid=share-location]")
        await page.click("[data-testid=preset-place][data-key=tianfu]")
        await page.wait_for(
            "!!document.querySelector('[data-testid=message][data-from=user] [data-testid=location]')"
        )
        shared = [m for m in api.chat(DEMO_USER_ID) if m.location and not m.from_bot]
        assert shared and shared[-1].location == {"latitude": 30.657, "longitude": 104.066}

        await page.wait_for(f"!!document.querySelector('{bot_messages} [data-testid=venue]')")
        last_with_buttons = api.wait_for(
            lambda: next(
                (
                    m
                    for m in reversed(api.bot_messages(DEMO_USER_ID))
                    if m.buttons and m.text.startswith("最近")
                ),
                None,
            )
        )
        target = await last_with_buttons
        await page.click(f"#msg-{target.message_id} [data-testid=inline-button][data-callback-data=again]")
        await page.wait_for(f"document.querySelector('#msg-{target.message_id}')?.dataset.edits === '1'")
        assert await page.evaluate(
            f"document.querySelector('#msg-{target.message_id} .text').textContent"
        ) == ("已按下 ✅")
        assert await page.wait_for("document.querySelector('[data-testid=toast]').textContent") == "好的"

        await page.evaluate(
            "(() => { const s = document.querySelector('[data-testid=language]');"
            " s.value = 'en'; s.dispatchEvent(new Event('change')); })()"
        )
        await api.wait_for(lambda: api.demo.language_code == "en")
        await page.type("[data-testid=text-input]", "hello")
        await page.click("[data-testid=send]")
        await page.wait_for(
            f"[...document.querySelectorAll('{bot_texts}')].some(e => e.textContent.includes('[en]'))"
        )

        await page.screenshot("/tmp/demo.png")
        assert page.errors == []
