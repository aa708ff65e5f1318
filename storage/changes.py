"""Change notifications between processes, over Redis streams (stations; users).

A process that commits a station change appends the station id to the stream; every process follows
the stream and patches its index and cache from the database within milliseconds. A follower that lost
its place (Redis restarted or trimmed the stream past it, or it was disconnected) cannot know what it
missed, so it resynchronises: it reloads the whole index from the database.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

log = logging.getLogger(__name__)


@functools.cache
def redis_down() -> tuple[type[BaseException], ...]:
    """The errors of an unreachable Redis. Imported on first need (an `except` clause evaluates its
    expression only when something is raised): commands that never touch Redis skip loading redis-py.
    Kept here rather than in storage.redis_state, which needs aiogram (seconds of start-up)."""
    from redis.exceptions import ConnectionError as RedisConnectionError
    from redis.exceptions import TimeoutError as RedisTimeoutError

    return (RedisConnectionError, RedisTimeoutError, ConnectionError, OSError)


STREAM = "yizhan:stations:changes"
#: The same kind of feed for users (language, amenity filter): followers drop their cached copy.
USERS_STREAM = "yizhan:users:changes"
MAX_LEN = 100_000


class RedisChangeFeed:
    def __init__(self, redis: Any, stream: str = STREAM) -> None:
        self.redis = redis
        self.stream = stream
        self.last_id: str | None = None

    async def publish(self, station_ids: Sequence[int]) -> None:
        if not station_ids:
            return
        pipe = self.redis.pipeline(transaction=False)
        for station_id in station_ids:
            pipe.xadd(self.stream, {"id": str(station_id)}, maxlen=MAX_LEN, approximate=True)
        await pipe.execute()

    async def follow(
        self,
        on_change: Callable[[list[int]], Awaitable[None]],
        resync: Callable[[], Awaitable[None]],
        stop: asyncio.Event,
        block_ms: int = 1000,
    ) -> None:
        """Apply changes as they come; on any gap or outage, resynchronise once Redis answers again."""
        need_resync = False
        while not stop.is_set():
            try:
                if self.last_id is None or need_resync:
                    # Start from "now"; what happened before is covered by the (re)load from the database.
                    info = (
                        await self.redis.xinfo_stream(self.stream)
                        if await self.redis.exists(self.stream)
                        else None
                    )
                    self.last_id = info["last-generated-id"].decode() if info else "0-0"
                    if need_resync:
                        await resync()
                        need_resync = False
                else:
                    first = await self.redis.xrange(self.stream, count=1)
                    if first and self.last_id != "0-0" and _id_lt(self.last_id, first[0][0].decode()):
                        # Entries after our position were trimmed away: we may have missed some.
                        need_resync = True
                        continue
                replies = await self.redis.xread({self.stream: self.last_id}, block=block_ms, count=1000)
            except redis_down() as exc:
                log.warning("change feed: Redis unreachable (%r); will resynchronise", exc)
                need_resync = True
                try:
                    await asyncio.wait_for(stop.wait(), 1.0)
                except TimeoutError:
                    pass
                continue
            for _stream, entries in replies or ():
                ids: list[int] = []
                for entry_id, fields in entries:
                    self.last_id = entry_id.decode()
                    if fields.get(b"reload"):
                        need_resync = True
                    raw = fields.get(b"id")
                    if raw is not None and raw.isdigit():
                        ids.append(int(raw))
                if need_resync:
                    continue
                if ids:
                    try:
                        await on_change(sorted(set(ids)))
                    except Exception:
                        log.exception("applying changes from %s failed; resynchronising", self.stream)
                        need_resync = True

    async def publish_reload(self) -> None:
        """A bulk change: every follower reloads its index from the database."""
        await self.redis.xadd(self.stream, {"reload": "1"}, maxlen=MAX_LEN, approximate=True)


def _id_lt(a: str, b: str) -> bool:
    ams, aseq = (int(x) for x in a.split("-"))
    bms, bseq = (int(x) for x in b.split("-"))
    return (ams, aseq) < (bms, bseq)
