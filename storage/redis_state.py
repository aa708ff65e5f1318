"""Redis-backed state shared by every bot process, built to degrade rather than fail.

- `ResilientRedisStorage`: aiogram's RedisStorage for FSM state, whose keys expire a day after their last
  write (`FSM_TTL_S`); while Redis is unreachable, reading a state answers "none" (so searches go on) and
  writing one raises `StateUnavailable` (so a multi-step flow tells the user to try again in a moment).
- `ResilientEventIsolation`: RedisEventIsolation, but without Redis updates proceed unlocked.
- `UpdateLedger`: remembers handled update ids, so an update Telegram delivers twice is handled once.
- `RedisBuckets`: per-user token buckets shared by all processes, falling back to local buckets.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncGenerator, Mapping
from contextlib import asynccontextmanager
from typing import Any

from aiogram.fsm.storage.base import DefaultKeyBuilder, StateType, StorageKey
from aiogram.fsm.storage.redis import RedisEventIsolation, RedisStorage
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from domain.values import YizhanError
from storage.memory_state import FSM_TTL_S

log = logging.getLogger(__name__)
REDIS_DOWN = (RedisConnectionError, RedisTimeoutError, ConnectionError, OSError)


class StateUnavailable(YizhanError):
    """Conversation state cannot be saved right now (Redis is unreachable)."""


def key_builder() -> DefaultKeyBuilder:
    return DefaultKeyBuilder(with_bot_id=True, with_destiny=True)


class _Warn:
    """Logs an outage once, and its end once."""

    def __init__(self, what: str) -> None:
        self.what = what
        self.down = False

    def failed(self, exc: BaseException) -> None:
        if not self.down:
            self.down = True
            log.warning("%s: Redis unreachable (%r); degrading", self.what, exc)

    def ok(self) -> None:
        if self.down:
            self.down = False
            log.warning("%s: Redis is back", self.what)


class ResilientRedisStorage(RedisStorage):
    def __init__(self, redis: Any, **kwargs: Any) -> None:
        # An abandoned conversation (a report left half-way) must not keep what it collected for ever.
        kwargs.setdefault("state_ttl", FSM_TTL_S)
        kwargs.setdefault("data_ttl", FSM_TTL_S)
        super().__init__(redis, key_builder=key_builder(), **kwargs)
        self._warn = _Warn("FSM storage")

    async def get_state(self, key: StorageKey) -> str | None:
        try:
            state = await super().get_state(key)
        except REDIS_DOWN as exc:
            self._warn.failed(exc)
            return None
        self._warn.ok()
        return state

    async def get_data(self, key: StorageKey) -> dict[str, Any]:
        try:
            data = await super().get_data(key)
        except REDIS_DOWN as exc:
            self._warn.failed(exc)
            return {}
        self._warn.ok()
        return data

    async def set_state(self, key: StorageKey, state: StateType = None) -> None:
        try:
            await super().set_state(key, state)
        except REDIS_DOWN as exc:
            self._warn.failed(exc)
            raise StateUnavailable("conversation state cannot be saved now") from exc

    async def set_data(self, key: StorageKey, data: Mapping[str, Any]) -> None:
        try:
            await super().set_data(key, data)
        except REDIS_DOWN as exc:
            self._warn.failed(exc)
            raise StateUnavailable("conversation state cannot be saved now") from exc


class ResilientEventIsolation(RedisEventIsolation):
    def __init__(self, redis: Any) -> None:
        super().__init__(redis, key_builder=key_builder())
        self._warn = _Warn("event isolation")

    @asynccontextmanager
    async def lock(self, key: StorageKey) -> AsyncGenerator[None, None]:
        try:
            lock = self.redis.lock(name=self.key_builder.build(key, "lock"), **self.lock_kwargs)
            acquired = await lock.acquire()
        except REDIS_DOWN as exc:
            self._warn.failed(exc)
            yield
            return
        self._warn.ok()
        try:
            yield
        finally:
            if acquired:
                try:
                    await lock.release()
                except Exception:  # an expired or lost lock must not fail the update
                    log.debug("event lock release failed", exc_info=True)


class UpdateLedger:
    """Update ids being handled or handled (24 h). `claim` is True for exactly one delivery of an id;
    `release` after a failure lets Telegram's redelivery be handled."""

    def __init__(self, redis: Any, ttl_s: int = 86_400, claim_s: int = 120) -> None:
        self.redis = redis
        self.prefix = "yizhan:update:"
        self.ttl_s = ttl_s
        self.claim_s = claim_s
        self._warn = _Warn("update ledger")

    async def claim(self, bot_id: int, update_id: int) -> bool:
        try:
            claimed = await self.redis.set(
                f"{self.prefix}{bot_id}:{update_id}", "1", nx=True, ex=self.claim_s
            )
        except REDIS_DOWN as exc:
            self._warn.failed(exc)
            return True  # without Redis, better to risk handling a redelivery twice than to drop it
        self._warn.ok()
        return bool(claimed)

    async def done(self, bot_id: int, update_id: int) -> None:
        try:
            await self.redis.set(f"{self.prefix}{bot_id}:{update_id}", "2", ex=self.ttl_s)
        except REDIS_DOWN as exc:
            self._warn.failed(exc)

    async def release(self, bot_id: int, update_id: int) -> None:
        try:
            await self.redis.delete(f"{self.prefix}{bot_id}:{update_id}")
        except REDIS_DOWN as exc:
            self._warn.failed(exc)


# KEYS[1] = bucket key; ARGV = interval_us, burst; a GCRA: allow while the schedule is at most
# (burst - 1) intervals ahead of now.
_TAKE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
tat = math.max(tat, now)
if tat - now > (burst - 1) * interval then
  return 0
end
redis.call('SET', KEYS[1], tat + interval, 'PX', math.ceil((tat + interval - now) / 1000) + 1000)
return 1
"""


class RedisBuckets:
    def __init__(self, redis: Any, rate: float, burst: float, fallback: Any, name: str = "throttle") -> None:
        self.redis = redis
        self.interval_us = int(1_000_000 / rate)
        self.burst = burst
        self.fallback = fallback
        self.prefix = f"yizhan:{name}:"
        self._take = redis.register_script(_TAKE)
        self._warn = _Warn("throttling")

    async def allow(self, key: int) -> bool:
        try:
            allowed = bool(
                await self._take(keys=[self.prefix + str(key)], args=[self.interval_us, self.burst])
            )
        except REDIS_DOWN as exc:
            self._warn.failed(exc)
            return bool(await self.fallback.allow(key))
        self._warn.ok()
        return allowed
