"""Users are cached per process; with Redis, a change made by one process drops the others' copies."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from conftest import REDIS_URL, service_missing

from bot.services.users import UserCache
from domain.values import User
from storage.changes import RedisChangeFeed


async def _redis():  # type: ignore[no-untyped-def]
    from redis.asyncio import Redis

    redis = Redis.from_url(REDIS_URL, socket_connect_timeout=2)
    try:
        await redis.ping()
    except Exception as exc:
        await redis.aclose()
        service_missing("Redis", exc)
    return redis


async def test_without_a_feed_the_cache_keeps_what_this_process_wrote() -> None:
    cache = UserCache()
    await cache.changed(User(1, "甲", locale="en"))
    assert cache.get(1) == User(1, "甲", locale="en")
    await cache.follow(asyncio.Event())  # no feed: returns at once
    await cache.forget([1])
    assert cache.get(1) is None


@pytest.mark.redis
async def test_a_change_in_one_process_drops_the_copy_in_another() -> None:
    redis = await _redis()
    stream = f"yizhan:test:users:{uuid.uuid4().hex}"
    here = UserCache(feed=RedisChangeFeed(redis, stream))
    there = UserCache(feed=RedisChangeFeed(redis, stream))
    stop = asyncio.Event()
    follower = asyncio.create_task(there.follow(stop))
    try:
        there.put(User(7, "乙", locale="zh_Hans"))
        there.put(User(8, "丙"))
        await asyncio.sleep(0.3)  # the follower has taken its place in the stream
        await here.changed(User(7, "乙", locale="en"))
        for _ in range(250):
            if there.get(7) is None:
                break
            await asyncio.sleep(0.02)
        assert there.get(7) is None
        assert there.get(8) == User(8, "丙")  # others stay
        assert here.get(7) == User(7, "乙", locale="en")
    finally:
        stop.set()
        await asyncio.wait_for(follower, 5)
        await redis.delete(stream)
        await redis.aclose()


async def test_a_change_is_kept_locally_when_redis_is_down() -> None:
    from redis.asyncio import Redis

    redis = Redis.from_url("redis://127.0.0.1:9/0", socket_connect_timeout=0.2)
    cache = UserCache(feed=RedisChangeFeed(redis, "yizhan:test:users:down"))
    try:
        await cache.changed(User(9, "丁", amenity_filter=("toilet",)))
        assert cache.get(9) == User(9, "丁", amenity_filter=("toilet",))
    finally:
        await redis.aclose()
