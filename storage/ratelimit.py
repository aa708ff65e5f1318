"""Rate limiters for sending: a process-local one and a Redis one shared by every process.

Both are GCRA schedulers (a token bucket with a burst of one): each `acquire` reserves the next free slot
`1/rate` after the previous one and sleeps until it, so the achieved rate converges on the limit without
bursts. `pause(seconds)` stops every caller (in every process, for Redis) until the pause ends, which is
how a `retry_after` from Telegram is honoured.
"""

from __future__ import annotations

import asyncio
import time
from typing import Protocol


class RateLimiter(Protocol):
    async def acquire(self) -> None: ...

    async def pause(self, seconds: float) -> None: ...


class LocalRateLimiter:
    def __init__(self, rate: float) -> None:
        if rate <= 0:
            raise ValueError("rate must be positive")
        self.interval = 1.0 / rate
        self._tat = 0.0  # theoretical arrival time of the next slot
        self._paused_until = 0.0

    async def acquire(self) -> None:
        now = time.monotonic()
        start = max(self._tat, now, self._paused_until)
        self._tat = start + self.interval
        if start > now:
            await asyncio.sleep(start - now)
        # A pause that began while we slept pushes us (and everyone after us) back.
        while (delay := self._paused_until - time.monotonic()) > 0:  # noqa: ASYNC110 - a deadline that can move
            await asyncio.sleep(delay)

    async def pause(self, seconds: float) -> None:
        until = time.monotonic() + seconds
        self._paused_until = max(self._paused_until, until)
        self._tat = max(self._tat, self._paused_until)


# KEYS[1] = the schedule key, KEYS[2] = the pause key; ARGV[1] = interval in microseconds.
# Returns how many microseconds the caller waits for its slot. Redis's own clock is the time base, so
# processes on different machines agree.
_ACQUIRE = """
local now_parts = redis.call('TIME')
local now = tonumber(now_parts[1]) * 1000000 + tonumber(now_parts[2])
local interval = tonumber(ARGV[1])
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
local paused = tonumber(redis.call('GET', KEYS[2]) or '0')
local start = math.max(tat, now, paused)
redis.call('SET', KEYS[1], start + interval, 'PX', math.ceil((start + interval - now) / 1000) + 1000)
return start - now
"""

_PAUSE = """
local now_parts = redis.call('TIME')
local now = tonumber(now_parts[1]) * 1000000 + tonumber(now_parts[2])
local until_ = now + tonumber(ARGV[1])
local current = tonumber(redis.call('GET', KEYS[1]) or '0')
if until_ > current then
  redis.call('SET', KEYS[1], until_, 'PX', math.ceil(tonumber(ARGV[1]) / 1000) + 1000)
end
return until_
"""

_PAUSED_FOR = """
local now_parts = redis.call('TIME')
local now = tonumber(now_parts[1]) * 1000000 + tonumber(now_parts[2])
local paused = tonumber(redis.call('GET', KEYS[1]) or '0')
return math.max(0, paused - now)
"""


class RedisRateLimiter:
    """The same scheduler with its state in Redis, so N processes together keep to `rate`."""

    def __init__(self, redis: object, rate: float, name: str = "broadcast") -> None:
        if rate <= 0:
            raise ValueError("rate must be positive")
        self.redis = redis
        self.interval_us = int(1_000_000 / rate)
        self.keys = [f"yizhan:rate:{name}:tat", f"yizhan:rate:{name}:paused"]
        self._acquire = redis.register_script(_ACQUIRE)  # type: ignore[attr-defined]
        self._pause = redis.register_script(_PAUSE)  # type: ignore[attr-defined]
        self._paused_for = redis.register_script(_PAUSED_FOR)  # type: ignore[attr-defined]

    async def acquire(self) -> None:
        wait_us = int(await self._acquire(keys=self.keys, args=[self.interval_us]))
        if wait_us > 0:
            await asyncio.sleep(wait_us / 1_000_000)
        while (paused_us := int(await self._paused_for(keys=[self.keys[1]]))) > 0:  # noqa: ASYNC110
            await asyncio.sleep(paused_us / 1_000_000)

    async def pause(self, seconds: float) -> None:
        await self._pause(keys=[self.keys[1]], args=[int(seconds * 1_000_000)])
