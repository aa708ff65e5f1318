"""aiogram's HTTP session, sending JSON bodies.

Stock aiogram posts every method as a form: without a file, aiohttp url-encodes it, and Python's
percent-encoding runs byte by byte, so a results message (a kilobyte of Chinese text and an inline
keyboard, three bytes a character) costs about 0.2 ms of CPU to encode, more than the search that
produced it. The Bot API accepts the same parameters as a JSON object, which orjson writes in a few
microseconds; nested objects (`reply_markup`, `entities`) go as JSON objects rather than as strings holding
JSON. Methods that upload a file still go as multipart forms, as aiogram sends them. Responses are decoded
with orjson too.
"""

from __future__ import annotations

import json
from typing import Any, cast

import orjson
from aiogram import Bot
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.exceptions import TelegramNetworkError
from aiogram.methods import TelegramMethod
from aiogram.methods.base import TelegramType
from aiohttp import ClientError

_JSON_HEADERS = {"Content-Type": "application/json"}


def _dumps(value: Any) -> str:
    return orjson.dumps(value).decode()


def _loads(text: str | bytes) -> Any:
    # orjson refuses what Python's json module accepts beyond the standard (NaN, Infinity); a server
    # that sends it must not make a whole batch of updates unreadable.
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return json.loads(text)


class JsonAiohttpSession(AiohttpSession):
    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("json_loads", _loads)
        kwargs.setdefault("json_dumps", _dumps)
        super().__init__(**kwargs)

    def build_json_body(self, bot: Bot, method: TelegramMethod[Any]) -> bytes | None:
        """The method's parameters as a JSON object, or None when it carries a file to upload."""
        files: dict[str, Any] = {}
        payload: dict[str, Any] = {}
        for key, value in method.model_dump(warnings=False).items():
            prepared = self.prepare_value(value, bot=bot, files=files, _dumps_json=False)
            if prepared is not None:
                payload[key] = prepared
        if files:
            return None
        return orjson.dumps(payload)

    async def make_request(
        self,
        bot: Bot,
        method: TelegramMethod[TelegramType],
        timeout: int | None = None,  # noqa: ASYNC109 - aiogram's signature
    ) -> TelegramType:
        body = self.build_json_body(bot, method)
        if body is None:
            return await super().make_request(bot, method, timeout)
        session = await self.create_session()
        url = self.api.api_url(token=bot.token, method=method.__api_method__)
        try:
            async with session.post(
                url,
                data=body,
                headers=_JSON_HEADERS,
                timeout=self.timeout if timeout is None else timeout,
            ) as resp:
                raw_result = await resp.text()
        except TimeoutError as e:
            raise TelegramNetworkError(method=method, message="Request timeout error") from e
        except ClientError as e:
            raise TelegramNetworkError(method=method, message=f"{type(e).__name__}: {e}") from e
        response = self.check_response(bot=bot, method=method, status_code=resp.status, content=raw_result)
        return cast(TelegramType, response.result)
