"""Child process of bench.coldstart: import, open the core, load the index, answer one query; print timings.

Reads DATABASE_URL like the product and BENCH_SPAWN_NS (the parent's time.time_ns() just before spawning)
so that each milestone can be given as time since the process was spawned. Prints one JSON line.
"""

import os
import time

_T0_NS = time.time_ns()
_SPAWN_NS = int(os.environ.get("BENCH_SPAWN_NS", _T0_NS))


def _since_spawn() -> float:
    return (time.time_ns() - _SPAWN_NS) / 1e9


marks: dict[str, float] = {"interpreter_s": (_T0_NS - _SPAWN_NS) / 1e9}
_p = time.perf_counter()

import asyncio  # noqa: E402
import json  # noqa: E402
from datetime import UTC, datetime  # noqa: E402

import bot.cli  # noqa: E402, F401  - what `python -m bot nearby` imports first
from bot.app import install_event_loop_policy, open_core  # noqa: E402
from bot.config import Settings  # noqa: E402
from bot.services.nearby import NearbyService  # noqa: E402
from domain.values import GeoPoint  # noqa: E402
from storage.spatial import SpatialIndex  # noqa: E402

marks["import_s"] = time.perf_counter() - _p
marks["imported_since_spawn_s"] = _since_spawn()

_build = {"s": 0.0}
_from_columns = SpatialIndex.from_columns.__func__  # type: ignore[attr-defined]


def _timed_from_columns(cls, *args, **kwargs):  # type: ignore[no-untyped-def]
    started = time.perf_counter()
    try:
        return _from_columns(cls, *args, **kwargs)
    finally:
        _build["s"] += time.perf_counter() - started


SpatialIndex.from_columns = classmethod(_timed_from_columns)  # type: ignore[method-assign]


async def _run() -> int:
    p = time.perf_counter()
    async with open_core(Settings(), load_index=False) as core:  # engine + migration check
        marks["migrate_s"] = time.perf_counter() - p
        p = time.perf_counter()
        index = await core.reload_index()
        marks["index_load_s"] = time.perf_counter() - p
        marks["index_build_s"] = _build["s"]
        marks["ready_since_spawn_s"] = _since_spawn()
        p = time.perf_counter()
        service = NearbyService(core.search, core.stations)
        results = await service.nearby(GeoPoint(23.13, 113.26), k=5, amenities=(), at=datetime.now(UTC))
        marks["first_answer_s"] = time.perf_counter() - p
        marks["answered_since_spawn_s"] = _since_spawn()
        p = time.perf_counter()
    marks["close_s"] = time.perf_counter() - p
    marks["stations"] = len(index)
    marks["results"] = len(results)
    return 0


install_event_loop_policy()
asyncio.run(_run())
marks["loop_closed_since_spawn_s"] = _since_spawn()  # after asyncio.run's own teardown
print(json.dumps(marks), flush=True)
