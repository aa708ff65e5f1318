"""Rate limiters for sending: a process-local one and a Redis one shared by every process.

Both are GCRA schedulers (a token bucket with a burst of one): each `acquire` reserves the next free slot
`1/rate` after the previous one and sleeps until it, so the achieved rate converges on the limit without
bursts. `pause(seconds)` stops every caller (in every process, for Redis) until the pause ends, which is
how a `retry_after` from Telegram is honoured.

The client limiters below apply the same algorithm per key (a client of the public API) with a burst, and
refuse instead of waiting.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import Protocol

log = logging.getLogger(__name__)


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


# -- per-client limits -------------------------------------------------------------------------------------
#
# The same GCRA, used the other way round: instead of waiting for its slot, a request that comes before its
# slot is refused. `burst` requests may come at once; after that one every `1/rate` seconds. A client's
# whole state is one timestamp (its theoretical arrival time), so a key per client address stays cheap.


@dataclass(frozen=True, slots=True)
class RateDecision:
    """The outcome of one request against a client's limit, with what the `RateLimit-*` headers say."""

    allowed: bool
    limit: int  # the burst: requests that may come at once
    remaining: int  # requests that may still come at once now
    reset_s: float  # seconds until the client's whole burst is available again
    retry_after_s: float  # seconds until the next request is allowed (0 when this one was)


def _decide(tat: float, now: float, interval: float, burst: int) -> tuple[RateDecision, float | None]:
    """GCRA: (decision, the new theoretical arrival time to store, or None when refused)."""
    tat = max(tat, now)
    new_tat = tat + interval
    allow_at = new_tat - burst * interval
    if now < allow_at:
        return RateDecision(False, burst, 0, tat - now, allow_at - now), None
    remaining = int((now - allow_at) / interval + 1e-9)
    return RateDecision(True, burst, remaining, new_tat - now, 0.0), new_tat


class ClientRateLimiter(Protocol):
    async def check(self, key: str) -> RateDecision: ...


class LocalClientRateLimiter:
    """Per-key limits of one process. Keys whose burst is full again are forgotten, so the table holds
    only clients seen in the last `burst / rate` seconds (at most `max_keys`)."""

    def __init__(self, rate: float, burst: int, max_keys: int = 100_000) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError("rate must be positive and burst at least 1")
        self.interval = 1.0 / rate
        self.burst = burst
        self.max_keys = max_keys
        self._tats: dict[str, float] = {}

    async def check(self, key: str) -> RateDecision:
        return self.check_now(key, time.monotonic())

    def check_now(self, key: str, now: float) -> RateDecision:
        decision, new_tat = _decide(self._tats.get(key, 0.0), now, self.interval, self.burst)
        if new_tat is not None:
            if key not in self._tats and len(self._tats) >= self.max_keys:
                self._forget(now)
            self._tats[key] = new_tat
        return decision

    def _forget(self, now: float) -> None:
        # A key whose TAT has passed is as good as absent; when every key is live (a flood from many
        # addresses), the oldest half goes: at worst those clients get a fresh burst.
        tats = self._tats
        live = {key: tat for key, tat in tats.items() if tat > now}
        if len(live) >= self.max_keys:
            live = dict(list(live.items())[len(live) // 2 :])
        self._tats = live


# KEYS[1] = the client's key; ARGV[1] = interval, ARGV[2] = burst (microseconds, count).
# Returns {allowed, remaining, reset_us, retry_after_us}, on Redis's own clock.
_CHECK = """
local now_parts = redis.call('TIME')
local now = tonumber(now_parts[1]) * 1000000 + tonumber(now_parts[2])
local interval = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local tat = math.max(tonumber(redis.call('GET', KEYS[1]) or '0'), now)
local new_tat = tat + interval
local allow_at = new_tat - burst * interval
if now < allow_at then
  return {0, 0, tat - now, allow_at - now}
end
redis.call('SET', KEYS[1], new_tat, 'PX', math.ceil((new_tat - now) / 1000) + 1)
return {1, math.floor((now - allow_at) / interval), new_tat - now, 0}
"""


class RedisClientRateLimiter:
    """Per-key limits shared by every process through Redis (one script call per request). When Redis
    fails, the process falls back on its own limits for `fallback_s` seconds rather than refuse or wait."""

    def __init__(
        self, redis: object, rate: float, burst: int, name: str = "api", fallback_s: float = 5.0
    ) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError("rate must be positive and burst at least 1")
        self.interval_us = int(1_000_000 / rate)
        self.burst = burst
        self.prefix = f"yizhan:rate:{name}:"
        self.fallback_s = fallback_s
        self.local = LocalClientRateLimiter(rate, burst)
        self._check = redis.register_script(_CHECK)  # type: ignore[attr-defined]
        self._redis_down_until = 0.0

    async def check(self, key: str) -> RateDecision:
        now = time.monotonic()
        if now < self._redis_down_until:
            return self.local.check_now(key, now)
        try:
            allowed, remaining, reset_us, retry_us = await self._check(
                keys=[self.prefix + key], args=[self.interval_us, self.burst]
            )
        except Exception:
            log.warning(
                "Redis rate limits failed; this process's own for %.0f s", self.fallback_s, exc_info=True
            )
            self._redis_down_until = now + self.fallback_s
            return self.local.check_now(key, now)
        return RateDecision(bool(allowed), self.burst, int(remaining), reset_us / 1e6, retry_us / 1e6)
