"""The bounded cache with expiry behind the user and station caches."""

from __future__ import annotations

import time

import pytest

from bot.services.cache import TtlCache


def test_get_many_returns_fresh_values_and_the_keys_without_one(monkeypatch: pytest.MonkeyPatch) -> None:
    now = [1000.0]
    monkeypatch.setattr(time, "monotonic", lambda: now[0])
    cache: TtlCache[int, str] = TtlCache(ttl=60, max_size=3)
    cache.put(1, "one")
    now[0] += 50
    cache.put(2, "two")
    cache.put(3, "three")
    now[0] += 20  # 1 is 70 s old: expired
    assert cache.get_many([3, 1, 4, 2]) == ({3: "three", 2: "two"}, [1, 4])
    # Reads count as use: 3 and 2 were read last, so 1 goes first when the cache is full.
    cache.put(5, "five")
    assert cache.get_many([1, 2, 3, 5]) == ({2: "two", 3: "three", 5: "five"}, [1])
    assert cache.get(2) == "two" and len(cache) == 3
