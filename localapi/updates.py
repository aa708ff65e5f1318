"""The update queue of the local Bot API: long polling (`getUpdates`), webhooks and queueing updates."""

from __future__ import annotations

import asyncio
import contextlib
import copy
import re
import time
from typing import Any

from aiohttp import BodyPartReader, ClientError, ClientSession, ClientTimeout, MultipartReader

from localapi.state import (
    MAX_POLL_TIMEOUT,
    OPT_IN_UPDATES,
    SECRET_TOKEN_RE,
    ApiError,
    Files,
    Params,
    ServerState,
    bad_request,
    coerce,
    json_dumps,
    log,
)


class UpdateQueue(ServerState):
    """Updates wait here until the bot fetches them or a webhook takes them."""

    # ------------------------------------------------------------------ methods: updates and webhooks

    async def _get_updates(self, params: Params, files: Files) -> Any:
        if self._webhook is not None:
            raise ApiError(
                409,
                "Conflict: can't use getUpdates method while webhook is active; "
                "use deleteWebhook to delete the webhook first",
            )
        if "allowed_updates" in params:
            self._set_allowed_updates(params["allowed_updates"])
        offset = int(params.get("offset") or 0)
        limit = min(max(int(params.get("limit") or 100), 1), 100)
        timeout = min(max(float(params.get("timeout") or 0), 0.0), MAX_POLL_TIMEOUT)
        # Passing an offset confirms every update before it, as in the real API.
        if offset > 0:
            self._updates = [u for u in self._updates if u["update_id"] >= offset]
        elif offset < 0:
            self._updates = self._updates[offset:]
        self._poll_generation += 1
        generation = self._poll_generation
        self._wake()  # an older long poll still waiting learns it was replaced
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            if generation != self._poll_generation:
                raise ApiError(
                    409,
                    "Conflict: terminated by other getUpdates request; "
                    "make sure that only one bot instance is running",
                )
            if self._updates or self._closing:
                return copy.deepcopy(self._updates[:limit])
            remaining = deadline - asyncio.get_running_loop().time()
            if remaining <= 0:
                return []
            await self.wait_change(remaining)

    def _set_allowed_updates(self, allowed: Any) -> None:
        if allowed is None:
            return
        self._allowed_updates = frozenset(allowed) if allowed else None

    async def _set_webhook(self, params: Params, files: Files) -> Any:
        url = str(params.get("url") or "")
        if not url:
            return await self._delete_webhook(params, files)
        if not re.match(r"^https?://", url):
            raise bad_request("bad webhook: An HTTPS URL must be provided for webhook")
        secret = params.get("secret_token")
        if secret is not None and not SECRET_TOKEN_RE.match(str(secret)):
            raise bad_request("secret token contains unallowed characters")
        if params.get("drop_pending_updates"):
            self._updates.clear()
        if "allowed_updates" in params:
            self._set_allowed_updates(params["allowed_updates"])
        await self._stop_webhook()
        self._webhook = {
            "url": url,
            "secret_token": secret,
            "max_connections": int(params.get("max_connections") or 40),
        }
        self._webhook_error = None
        self._webhook_task = asyncio.create_task(self._deliver_webhook(), name="localapi-webhook")
        return True

    async def _delete_webhook(self, params: Params, files: Files) -> Any:
        await self._stop_webhook()
        if params.get("drop_pending_updates"):
            self._updates.clear()
        return True

    async def _stop_webhook(self) -> None:
        task, self._webhook_task = self._webhook_task, None
        self._webhook = None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _get_webhook_info(self, params: Params, files: Files) -> Any:
        info: dict[str, Any] = {
            "url": self._webhook["url"] if self._webhook else "",
            "has_custom_certificate": False,
            "pending_update_count": len(self._updates),
        }
        if self._webhook:
            info["max_connections"] = self._webhook["max_connections"]
            info["ip_address"] = "127.0.0.1"
            if self._allowed_updates is not None:
                info["allowed_updates"] = sorted(self._allowed_updates)
            if self._webhook_error:
                info["last_error_date"], info["last_error_message"] = self._webhook_error
        return info

    async def _deliver_webhook(self) -> None:
        """Push queued updates to the webhook one at a time, in order (max_connections is not simulated)."""
        async with ClientSession(timeout=ClientTimeout(total=10)) as session:
            while True:
                if not self._updates:
                    await self.wait_change(None)
                    continue
                update = self._updates[0]
                await self._post_update(session, update)
                if self._updates and self._updates[0] is update:
                    self._updates.pop(0)

    async def _post_update(self, session: ClientSession, update: dict[str, Any]) -> bool:
        assert self._webhook is not None
        headers = {"Content-Type": "application/json"}
        if self._webhook["secret_token"]:
            headers["X-Telegram-Bot-Api-Secret-Token"] = self._webhook["secret_token"]
        for attempt in range(1, self.webhook_attempts + 1):
            record: dict[str, Any] = {"update_id": update["update_id"], "attempt": attempt}
            try:
                async with session.post(
                    self._webhook["url"], data=json_dumps(update), headers=headers
                ) as resp:
                    record["status"] = resp.status
                    if 200 <= resp.status < 300:
                        self.webhook_deliveries.append(record)
                        await self._run_webhook_reply(resp)
                        return True
                    error = f"Wrong response from the webhook: {resp.status} {resp.reason}"
            except (ClientError, TimeoutError) as exc:
                error = f"Connection failed: {type(exc).__name__}: {exc}"
                record["status"] = None
            record["error"] = error
            self.webhook_deliveries.append(record)
            self._webhook_error = (int(time.time()), error)
            log.warning(
                "webhook delivery of update %s failed (attempt %d): %s", update["update_id"], attempt, error
            )
            await asyncio.sleep(self.webhook_retry_delay * attempt)
        log.error("update %s dropped after %d webhook attempts", update["update_id"], self.webhook_attempts)
        return False

    async def _run_webhook_reply(self, resp: Any) -> None:
        """A webhook may answer with one method call in its body; Telegram runs it (and reports nothing)."""
        params: dict[str, Any] = {}
        files: Files = {}
        if resp.content_type == "application/json":
            with contextlib.suppress(ValueError):
                body = await resp.json()
                if isinstance(body, dict):
                    params = body
        elif resp.content_type == "multipart/form-data":
            reader = MultipartReader.from_response(resp)
            while (part := await reader.next()) is not None:
                if not isinstance(part, BodyPartReader) or not part.name:
                    continue
                if part.filename:
                    files[part.name] = (part.filename, bytes(await part.read()))
                else:
                    params[part.name] = await part.text()
        method = params.pop("method", None)
        if not method:
            return
        try:
            await self.invoke(str(method), {k: coerce(k, v) for k, v in params.items()}, files)
        except ApiError as error:
            log.warning("method %s from a webhook reply failed: %s", method, error.description)

    # ------------------------------------------------------------------ queueing updates

    def _enqueue(self, kind: str, payload: dict[str, Any]) -> dict[str, Any]:
        update = {"update_id": self._next_update_id, kind: copy.deepcopy(payload)}
        self._next_update_id += 1
        allowed = self._allowed_updates
        if (kind in OPT_IN_UPDATES) if allowed is None else (kind not in allowed):
            # The real server never creates updates a bot did not subscribe to.
            log.info("update %s (%s) not queued: the bot did not subscribe to it", update["update_id"], kind)
        else:
            self._updates.append(update)
        self._notify()
        return update

    async def feed(self, update: dict[str, Any]) -> dict[str, Any]:
        """Queue a raw Update (an update_id is assigned when missing)."""
        update = copy.deepcopy(update)
        if "update_id" not in update:
            update["update_id"] = self._next_update_id
        self._next_update_id = max(self._next_update_id, int(update["update_id"]) + 1)
        self._updates.append(update)
        self._notify()
        return update
