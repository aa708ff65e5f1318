"""The bot's HTTP session sends JSON bodies (files still as multipart) and reads what the API sends."""

from __future__ import annotations

import orjson
from aiogram import Bot
from aiogram.methods import SendMessage, SendPhoto
from aiogram.types import BufferedInputFile, InlineKeyboardButton, InlineKeyboardMarkup

from bot.session import JsonAiohttpSession, _loads

TOKEN = "42:TEST"


def test_a_message_goes_as_one_json_object_with_nested_objects_as_objects() -> None:
    session = JsonAiohttpSession()
    bot = Bot(TOKEN, session=session)
    keyboard = InlineKeyboardMarkup(
        inline_keyboard=[[InlineKeyboardButton(text="地图", callback_data="s:1")]]
    )
    method = SendMessage(chat_id=7, text="附近的驿站：\n1. 天河站", reply_markup=keyboard)
    body = session.build_json_body(bot, method)
    assert body is not None
    payload = orjson.loads(body)
    assert payload["chat_id"] == 7
    assert payload["text"] == "附近的驿站：\n1. 天河站"
    assert payload["reply_markup"] == {"inline_keyboard": [[{"text": "地图", "callback_data": "s:1"}]]}
    assert "天河" in body.decode()  # UTF-8 as it is, no escapes


def test_an_upload_is_left_to_the_multipart_form() -> None:
    session = JsonAiohttpSession()
    bot = Bot(TOKEN, session=session)
    method = SendPhoto(chat_id=7, photo=BufferedInputFile(b"\x89PNG", filename="p.png"))
    assert session.build_json_body(bot, method) is None


def test_responses_beyond_strict_json_are_still_read() -> None:
    assert _loads('{"ok": true, "result": [1, 2]}') == {"ok": True, "result": [1, 2]}
    nan = _loads('{"latitude": NaN}')["latitude"]
    assert nan != nan


async def test_call_json_answers_like_aiogram_and_raises_its_exceptions() -> None:
    import pytest
    from aiogram.client.telegram import TelegramAPIServer
    from aiogram.exceptions import TelegramBadRequest, TelegramForbiddenError, TelegramNetworkError

    from localapi import LocalBotAPI

    async with LocalBotAPI() as api:
        session = JsonAiohttpSession(api=TelegramAPIServer.from_base(api.url))
        bot = Bot(api.token, session=session)
        try:
            await api.send_text(7001, "你好")
            markup = {"inline_keyboard": [[{"text": "1. 天河站", "callback_data": "st:1:23.1:113.2"}]]}
            params = {"chat_id": 7001, "text": "<b>附近</b>", "parse_mode": "HTML", "reply_markup": markup}
            result = await session.call_json(bot, SendMessage, params)
            sent = api.last_bot_message(7001)
            assert sent is not None and result["message_id"] == sent.message_id
            assert sent.buttons == [{"text": "1. 天河站", "callback_data": "st:1:23.1:113.2"}]
            with pytest.raises(TelegramBadRequest, match="chat not found"):
                await session.call_json(bot, SendMessage, {**params, "chat_id": 99999})
            await api.block(7001)
            with pytest.raises(TelegramForbiddenError):
                await session.call_json(bot, SendMessage, params)
        finally:
            await session.close()
    # The server is gone: a network error, as aiogram reports it.
    closed = JsonAiohttpSession(api=TelegramAPIServer.from_base(api.url))
    try:
        with pytest.raises(TelegramNetworkError):
            await closed.call_json(Bot(api.token, session=closed), SendMessage, params)
    finally:
        await closed.close()
