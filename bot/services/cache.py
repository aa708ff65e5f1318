"""A bounded in-process cache with expiry: least recently used entries go first, old ones expire.

Processes answer riders from such caches (users, station details) and patch them on every change they
make; the expiry bounds how long a change made by another process can stay unseen.
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from collections.abc import Iterable
from typing import Generic, TypeVar

K = TypeVar("K")
V = TypeVar("V")


class TtlCache(Generic[K, V]):
    def __init__(self, ttl: float = math.inf, max_size: int = 100_000) -> None:
        self.ttl = ttl
        self.max_size = max_size
        self._entries: OrderedDict[K, tuple[float, V]] = OrderedDict()

    def get(self, key: K) -> V | None:
        entry = self._entries.get(key)
        if entry is None or time.monotonic() - entry[0] > self.ttl:
            return None
        self._entries.move_to_end(key)
        return entry[1]

    def get_many(self, keys: Iterable[K]) -> tuple[dict[K, V], list[K]]:
        """The fresh values of `keys`, and the keys with none (one clock read for all: the API looks up
        every hit of a search at once)."""
        entries, oldest = self._entries, time.monotonic() - self.ttl
        found: dict[K, V] = {}
        missing: list[K] = []
        for key in keys:
            entry = entries.get(key)
            if entry is None or entry[0] < oldest:
                missing.append(key)
            else:
                entries.move_to_end(key)
                found[key] = entry[1]
        return found, missing

    def put(self, key: K, value: V) -> None:
        if self.max_size <= 0:
            return
        self._entries[key] = (time.monotonic(), value)
        self._entries.move_to_end(key)
        if len(self._entries) > self.max_size:
            self._entries.popitem(last=False)

    def discard(self, key: K) -> None:
        self._entries.pop(key, None)

    def clear(self) -> None:
        self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)
