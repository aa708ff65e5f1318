"""aiogram's HTTP session, sending JSON bodies.

Stock aiogram posts every method as a form: without a file, aiohttp url-encodes it, and Python's
percent-encoding runs byte by byte, so a results message (a kilobyte of Chinese text and an inline
keyboard, three bytes a character) costs about 0.2 ms of CPU to encode, more than the search that
produced it. The Bot API accepts the same parameters as a JSON object, which orjson writes in a few
microseconds; nested objects (`reply_markup`, `entities`) go as JSON objects rather than as strings holding
JSON. Methods that upload a file still go as multipart forms, as aiogram sends them. Responses are decoded
with orjson too.

`call_json` is for the one reply sent on most updates (the results of a shared location): its parameters
go out as plain JSON values and its result comes back as the decoded object, skipping aiogram's models
both ways (the method object, a keyboard of nine buttons, the `Message` of the answer: about 0.3 ms of
pydantic per update). Failures raise exactly what `await bot(method)` raises.
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
from aiohttp import ClientError, ClientTimeout

JSON_HEADERS = {"Content-Type": "application/json"}


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

    async def call_json(
        self,
        bot: Bot,
        method: type[TelegramMethod[Any]],
        params: dict[str, Any],
        timeout: float | None = None,  # noqa: ASYNC109 - as aiogram's make_request
    ) -> Any:
        """Call `method` with `params` already in JSON shape; return the decoded `result`."""
        session = await self.create_session()
        url = self.api.api_url(token=bot.token, method=method.__api_method__)
        try:
            async with session.post(
                url,
                data=orjson.dumps(params),
                headers=JSON_HEADERS,
                timeout=ClientTimeout(total=self.timeout if timeout is None else timeout),
            ) as resp:
                raw_result = await resp.read()
        except TimeoutError as e:
            raise TelegramNetworkError(method=method(**params), message="Request timeout error") from e
        except ClientError as e:
            raise TelegramNetworkError(method=method(**params), message=f"{type(e).__name__}: {e}") from e
        try:
            answer = _loads(raw_result)
        except ValueError:
            answer = None
        if (
            resp.status == 200
            and isinstance(answer, dict)
            and answer.get("ok") is True
            and "result" in answer
        ):
            return answer["result"]
        # Anything else goes through aiogram's own checks, which raise the exception it stands for.
        self.check_response(
            bot=bot, method=method(**params), status_code=resp.status, content=raw_result.decode()
        )
        raise TelegramNetworkError(method=method(**params), message=f"unexpected answer: HTTP {resp.status}")

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
                headers=JSON_HEADERS,
                timeout=ClientTimeout(total=self.timeout if timeout is None else timeout),
            ) as resp:
                raw_result = await resp.text()
        except TimeoutError as e:
            raise TelegramNetworkError(method=method, message="Request timeout error") from e
        except ClientError as e:
            raise TelegramNetworkError(method=method, message=f"{type(e).__name__}: {e}") from e
        response = self.check_response(bot=bot, method=method, status_code=resp.status, content=raw_result)
        return cast(TelegramType, response.result)
