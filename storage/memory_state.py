"""Conversation (FSM) state of a single process that forgets itself, like the Redis one does.

aiogram's `MemoryStorage` keeps a conversation's state and data until the process ends: a report abandoned
half-way would keep what it collected for weeks. `ExpiringMemoryStorage` drops a conversation untouched for
`ttl_s` (a day, `FSM_TTL_S`, the same as `ResilientRedisStorage`'s key expiry), checked whenever the
conversation is read or written, and sweeps every stale conversation at most every `ttl_s / 24`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

from aiogram.fsm.storage.base import StateType, StorageKey
from aiogram.fsm.storage.memory import MemoryStorage

#: How long an untouched conversation's state and data are kept (both storages).
FSM_TTL_S = 86_400


class ExpiringMemoryStorage(MemoryStorage):
    def __init__(self, ttl_s: float = FSM_TTL_S, clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__()
        self.ttl_s = ttl_s
        self.clock = clock
        self._touched: dict[StorageKey, float] = {}
        self._next_sweep = clock() + ttl_s / 24

    def _expire(self, key: StorageKey) -> None:
        now = self.clock()
        touched = self._touched.get(key)
        if touched is not None and now - touched >= self.ttl_s:
            self._forget(key)
        if now >= self._next_sweep:
            self._next_sweep = now + self.ttl_s / 24
            # Reads create empty records (a defaultdict): they go too.
            for stale in [k for k in self.storage if now - self._touched.get(k, -self.ttl_s) >= self.ttl_s]:
                self._forget(stale)

    def _forget(self, key: StorageKey) -> None:
        self.storage.pop(key, None)
        self._touched.pop(key, None)

    def _touch(self, key: StorageKey) -> None:
        record = self.storage.get(key)
        if record is None or (record.state is None and not record.data):
            self._forget(key)
        else:
            self._touched[key] = self.clock()

    async def set_state(self, key: StorageKey, state: StateType = None) -> None:
        self._expire(key)
        await super().set_state(key, state)
        self._touch(key)

    async def set_data(self, key: StorageKey, data: Mapping[str, Any]) -> None:
        self._expire(key)
        await super().set_data(key, data)
        self._touch(key)

    async def get_state(self, key: StorageKey) -> str | None:
        self._expire(key)
        return await super().get_state(key)

    async def get_data(self, key: StorageKey) -> dict[str, Any]:
        self._expire(key)
        return await super().get_data(key)

    async def get_value(self, storage_key: StorageKey, dict_key: str, default: Any | None = None) -> Any:
        self._expire(storage_key)
        return await super().get_value(storage_key, dict_key, default)
