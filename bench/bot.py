"""End-to-end bot benchmark: a location update in, the results message out.

The real bot (`build_bot` + `build_dispatcher`, aiogram's aiohttp session, long polling with
`tasks_concurrency_limit=64`, `tune_runtime()`) runs in this process against the local Bot API server
(`localapi.LocalBotAPI`), which runs in a *separate* process so its CPU does not share the bot's event
loop. The server gets two extra routes, mounted here on `api.app`:

  POST /bench/run  {"mode": "seq"|"burst", "items": [[user_id, lat, lon, language_code], ...]}

"seq" queues one location, waits for the bot's sendMessage to that chat, then queues the next; "burst"
queues them all at once. Latency per update = from the update being queued (server clock) to the bot's
sendMessage for that chat arriving at the server (same clock). Throughput (burst) = N / (last reply −
first queued).

The same harness then drives a do-nothing aiogram echo bot (stock `Bot` and session, one handler:
`message.answer("ok")`), same
polling settings, same run; the target compares throughput(yizhan) / throughput(echo).

    python -m bench.bot            # 186,100 stations, full run (a few minutes)
    python -m bench.bot --quick    # 2,000 stations, 100 updates
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import io
import logging
import multiprocessing as mp
import os
import platform
import pstats
import shutil
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "bench" / "out"
TARGET_N = 186_100
TARGET_P99_MS = 15.0
TARGET_RATIO = 0.60
LANGS = ("zh-hans", "zh-hant", "en")


# ---------------------------------------------------------------------------------------------- server


def _server_main(conn: Any) -> None:
    """Child process: the local Bot API server plus the /bench/run control route."""
    with contextlib.suppress(ImportError):
        import uvloop

        uvloop.install()
    logging.basicConfig(level=logging.WARNING)
    asyncio.run(_serve(conn))


async def _serve(conn: Any) -> None:
    from aiohttp import web

    from localapi import LocalBotAPI

    api = LocalBotAPI()
    waiting: dict[int, tuple[int, asyncio.Future[int]]] = {}
    name, send_message = api._methods["sendmessage"]

    async def timed_send_message(params: dict[str, Any], files: Any) -> Any:
        arrived = time.perf_counter_ns()
        try:
            chat_id = int(params.get("chat_id"))  # type: ignore[arg-type]
        except (TypeError, ValueError):
            chat_id = 0
        entry = waiting.pop(chat_id, None)
        if entry is not None and not entry[1].done():
            entry[1].set_result(arrived)
        return await send_message(params, files)

    api._methods["sendmessage"] = (name, timed_send_message)

    async def queue(item: list[Any]) -> tuple[int, asyncio.Future[int]]:
        user_id, lat, lon, lang = item
        future: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        queued = time.perf_counter_ns()
        waiting[int(user_id)] = (queued, future)
        await api.send_location(int(user_id), float(lat), float(lon), language_code=lang)
        return queued, future

    async def run(request: web.Request) -> web.Response:
        body = await request.json()
        items = body["items"]
        timeout = float(body.get("timeout", 150))
        latencies: list[int] = []
        first = last = 0
        if body["mode"] == "seq":
            for item in items:
                queued, future = await queue(item)
                first = first or queued
                arrived = await asyncio.wait_for(future, timeout)
                latencies.append(arrived - queued)
                last = arrived
        else:
            pending = [await queue(item) for item in items]
            first = pending[0][0]
            arrivals = await asyncio.wait_for(asyncio.gather(*(f for _, f in pending)), timeout)
            latencies = [a - q for (q, _), a in zip(pending, arrivals, strict=True)]
            last = max(arrivals)
        # Keep the server's bookkeeping small between rounds.
        api.calls.clear()
        api._chats.clear()
        return web.json_response({"lat_ns": latencies, "span_ns": last - first, "n": len(items)})

    api.app.router.add_post("/bench/run", run)
    url = await api.start()
    conn.send(url)
    # Run until the parent closes the pipe.
    loop = asyncio.get_running_loop()
    closed = asyncio.Event()
    loop.add_reader(conn.fileno(), closed.set)
    await closed.wait()
    await api.stop()


# ---------------------------------------------------------------------------------------------- data


def _alembic_head() -> str:
    from alembic.script import ScriptDirectory

    from storage.db import alembic_config

    return ScriptDirectory.from_config(alembic_config()).get_current_head() or "none"


async def _seed(path: Path, n: int, seed: int) -> None:
    from bot.app import open_core
    from bot.config import Settings

    settings = Settings(database_url=f"sqlite+aiosqlite:///{path}", _env_file=None)  # type: ignore[call-arg]
    async with open_core(settings, load_index=False) as core:
        report = await core.stations.seed(n, seed)
        if report.inserted != n:
            raise RuntimeError(f"seeded {report.inserted} of {n} stations")


def prepare_db(n: int, seed: int) -> Path:
    """A cached seeded SQLite file, copied to a scratch file so bench users never reach the cache."""
    OUT.mkdir(parents=True, exist_ok=True)
    cached = OUT / f"bot-{n}-seed{seed}-{_alembic_head()}.db"
    if not cached.exists():
        tmp = cached.with_suffix(".tmp.db")
        for leftover in (tmp, Path(f"{tmp}-wal"), Path(f"{tmp}-shm")):
            leftover.unlink(missing_ok=True)
        started = time.perf_counter()
        asyncio.run(_seed(tmp, n, seed))
        tmp.replace(cached)
        print(f"prepared {cached.name} in {time.perf_counter() - started:.0f} s", flush=True)
    else:
        print(f"using cached bench/out/{cached.name}", flush=True)
    work = OUT / "bot-run.db"
    for leftover in (work, Path(f"{work}-wal"), Path(f"{work}-shm")):
        leftover.unlink(missing_ok=True)
    shutil.copyfile(cached, work)
    return work


def query_points(
    stations: list[tuple[float, float]], count: int, rng: np.random.Generator
) -> list[tuple[float, float]]:
    """Points within ~1.5 km of random stations: where riders actually are."""
    idx = rng.integers(0, len(stations), count)
    out = []
    for i in idx:
        lat, lon = stations[int(i)]
        out.append((round(lat + rng.uniform(-0.012, 0.012), 6), round(lon + rng.uniform(-0.012, 0.012), 6)))
    return out


# ---------------------------------------------------------------------------------------------- client


def echo_dispatcher() -> Any:
    from aiogram import Dispatcher, Router
    from aiogram.types import Message

    router = Router()

    @router.message()
    async def echo(message: Message) -> None:
        await message.answer("ok")

    dp = Dispatcher()
    dp.include_router(router)
    return dp


class ErrorCount(logging.Handler):
    """Counts the bot's "update … failed" log records (those get an apology, not results)."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.count = 0
        self.last = ""

    def emit(self, record: logging.LogRecord) -> None:
        self.count += 1
        self.last = record.getMessage()[:160]


ERRORS = ErrorCount()


class Harness:
    def __init__(self, url: str) -> None:
        self.url = url

    async def run(self, mode: str, items: list[list[Any]]) -> dict[str, Any]:
        from aiohttp import ClientSession, ClientTimeout

        async with ClientSession(timeout=ClientTimeout(total=300)) as http:
            async with http.post(f"{self.url}/bench/run", json={"mode": mode, "items": items}) as resp:
                resp.raise_for_status()
                return await resp.json()


async def _with_polling(
    dp: Any, url: str, token: str, body: Any, concurrency: int = 64, stock: bool = False
) -> Any:
    """Poll with `dp` while `body` runs: yizhan's own Bot (`build_bot`), or with `stock` a Bot exactly as
    aiogram makes it (its form-encoding session), which the echo reference uses."""
    if stock:
        from aiogram import Bot
        from aiogram.client.session.aiohttp import AiohttpSession
        from aiogram.client.telegram import TelegramAPIServer

        bot = Bot(token, session=AiohttpSession(api=TelegramAPIServer.from_base(url)))
    else:
        from bot.telegram import build_bot

        bot = build_bot(token, url)
    task = asyncio.create_task(
        dp.start_polling(bot, handle_signals=False, tasks_concurrency_limit=concurrency)
    )
    try:
        await asyncio.sleep(0.3)  # getMe + first getUpdates
        return await body()
    finally:
        await dp.stop_polling()
        await asyncio.wait_for(task, 15)


def _items(points: list[tuple[float, float]], first_user: int) -> list[list[Any]]:
    return [[first_user + i, lat, lon, LANGS[i % 3]] for i, (lat, lon) in enumerate(points)]


async def measure(args: argparse.Namespace, db: Path, url: str, token: str) -> dict[str, Any]:
    from bot.app import open_core
    from bot.config import Settings
    from bot.telegram import build_dispatcher, tune_runtime

    settings = Settings(database_url=f"sqlite+aiosqlite:///{db}", _env_file=None)  # type: ignore[call-arg]
    harness = Harness(url)
    rng = np.random.default_rng(7)
    results: dict[str, Any] = {
        "yizhan": {"seq": [], "burst": [], "tput": []},
        "echo": {"seq": [], "burst": [], "tput": []},
    }
    async with open_core(settings, warm_cache=True) as core:
        if core.warming is not None:
            await core.warming  # production processes fill the station cache right after start-up
        index = core.search.index
        station_pts = await _station_points(core)
        print(f"stations in the database: {len(station_pts)}, in the search index: {len(index)}", flush=True)
        if len(station_pts) != args.stations:
            raise RuntimeError(f"the database holds {len(station_pts)} stations, expected {args.stations}")
        seq_pts = query_points(station_pts, args.seq, rng)
        burst_pts = query_points(station_pts, args.burst, rng)
        warm_pts = query_points(station_pts, min(args.burst, 500), rng)

        yizhan = build_dispatcher(core)  # production throttle defaults (3/s, burst 8)
        echo = echo_dispatcher()
        tune_runtime()

        # Users: a "seq" pool of 1..seq and a "burst" pool; a warm-up registers them all (first-seen inserts
        # happen once), so the measured rounds are returning riders, each sending one location per round.
        seq_users = _items(seq_pts, 10_000)
        burst_users = _items(burst_pts, 100_000)
        warm = _items(warm_pts, 100_000)

        async def one_round(which: str, dp: Any, rnd: int) -> None:
            async def body() -> None:
                if rnd == 0:
                    await harness.run("burst", warm)
                    await harness.run("burst", _items(seq_pts, 10_000))
                    await harness.run("burst", burst_users[len(warm) :] or burst_users[:1])
                    await asyncio.sleep(1.0)  # throttle buckets refill
                errors_before = ERRORS.count
                seq = await harness.run("seq", seq_users)
                await asyncio.sleep(0.5)
                burst = await harness.run("burst", burst_users)
                results[which]["seq"].extend(seq["lat_ns"])
                results[which]["burst"].extend(burst["lat_ns"])
                tput = burst["n"] / (burst["span_ns"] / 1e9)
                results[which]["tput"].append(tput)
                failed = ERRORS.count - errors_before
                results[which].setdefault("errors", 0)
                results[which]["errors"] += failed
                if failed:
                    print(f"  round {rnd} {which}: {failed} updates FAILED (last: {ERRORS.last})", flush=True)
                s = np.percentile(np.array(seq["lat_ns"]) / 1e6, [50, 99])
                b = np.percentile(np.array(burst["lat_ns"]) / 1e6, [50, 99])
                print(
                    f"  round {rnd} {which:6s}: seq p50 {s[0]:6.2f} ms p99 {s[1]:6.2f} ms | burst {burst['n']} "
                    f"in {burst['span_ns'] / 1e9:5.2f} s = {tput:7.0f} updates/s (p50 {b[0]:.0f} ms, p99 {b[1]:.0f} ms)",
                    flush=True,
                )

            await _with_polling(dp, url, token, body, args.concurrency, stock=which == "echo")

        for rnd in range(args.rounds):
            # Alternate which bot goes first so drift in machine load hits both alike.
            order = (
                [("yizhan", yizhan), ("echo", echo)] if rnd % 2 == 0 else [("echo", echo), ("yizhan", yizhan)]
            )
            for which, dp in order:
                await one_round(which, dp, rnd)
                await asyncio.sleep(1.0)

        if args.profile:
            results["profile"] = await _profile(yizhan, url, token, harness, burst_users, args.concurrency)
    return results


async def _station_points(core: Any) -> list[tuple[float, float]]:
    from sqlalchemy import text

    async with core.sessions() as session:
        rows = (await session.execute(text("SELECT lat, lon FROM stations"))).all()
    return [(float(a), float(b)) for a, b in rows]


async def _profile(
    dp: Any, url: str, token: str, harness: Harness, burst: list[list[Any]], concurrency: int
) -> str:
    prof = cProfile.Profile()

    async def body() -> None:
        prof.enable()
        await harness.run("burst", burst)
        prof.disable()

    await asyncio.sleep(1.0)
    await _with_polling(dp, url, token, body, concurrency)
    prof.dump_stats(
        str(OUT / "bot-burst.prof")
    )  # for a closer look: python -m pstats bench/out/bot-burst.prof
    buf = io.StringIO()
    stats = pstats.Stats(prof, stream=buf).sort_stats("cumulative")
    stats.print_stats(45)
    buf.write("\n--- by own time ---\n")
    stats.sort_stats("tottime").print_stats(30)
    return buf.getvalue()


# ---------------------------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.bot", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="2,000 stations, 100 updates")
    parser.add_argument("--stations", type=int, default=None)
    parser.add_argument("--seed", type=int, default=2024)
    parser.add_argument("--seq", type=int, default=None, help="sequential updates per round")
    parser.add_argument("--burst", type=int, default=None, help="updates queued at once per round")
    parser.add_argument("--rounds", type=int, default=None)
    parser.add_argument(
        "--concurrency", type=int, default=64, help="aiogram tasks_concurrency_limit (production: 64)"
    )
    parser.add_argument("--profile", action="store_true", help="cProfile one extra yizhan burst")
    args = parser.parse_args(argv)
    args.stations = args.stations or (2_000 if args.quick else TARGET_N)
    args.seq = args.seq or (100 if args.quick else 500)
    args.burst = args.burst or (100 if args.quick else 2_000)
    args.rounds = args.rounds or (1 if args.quick else 3)

    logging.basicConfig(level=logging.CRITICAL)  # tracebacks off; failures are counted instead
    logging.getLogger().addHandler(ERRORS)
    with contextlib.suppress(ImportError):
        import uvloop

        uvloop.install()
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    print("# bench.bot — location update in, results message out (aiogram polling vs local Bot API)")
    print(
        f"machine: nproc={usable}, python={platform.python_version()}, loop={asyncio.get_event_loop_policy().__class__.__module__}"
    )
    print(f"load average (start): {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(
        f"stations={args.stations}, sequential={args.seq}/round, burst={args.burst}/round, rounds={args.rounds}, "
        f"tasks_concurrency_limit={args.concurrency}",
        flush=True,
    )

    db = prepare_db(args.stations, args.seed)
    ctx = mp.get_context("spawn")
    parent, child = ctx.Pipe()
    server = ctx.Process(target=_server_main, args=(child,), daemon=True)
    server.start()
    try:
        if not parent.poll(60):
            raise RuntimeError("local Bot API server did not start")
        url = parent.recv()
        token = "42:LOCAL-TEST-TOKEN"  # LocalBotAPI's default
        started = time.perf_counter()
        results = asyncio.run(measure(args, db, url, token))
        elapsed = time.perf_counter() - started
    finally:
        parent.close()
        server.join(10)
        if server.is_alive():
            server.terminate()

    def pct(ns: list[int], q: float) -> float:
        return float(np.percentile(np.array(ns) / 1e6, q))

    print("\n## results (all rounds pooled; throughput = median of rounds)")
    print("| bot | seq p50 ms | seq p99 ms | burst p50 ms | burst p99 ms | throughput updates/s | failed |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    tputs = {}
    for which in ("yizhan", "echo"):
        r = results[which]
        tputs[which] = statistics.median(r["tput"])
        print(
            f"| {which} | {pct(r['seq'], 50):.2f} | {pct(r['seq'], 99):.2f} | {pct(r['burst'], 50):.0f} | "
            f"{pct(r['burst'], 99):.0f} | {tputs[which]:.0f} ({', '.join(f'{t:.0f}' for t in r['tput'])}) | {r.get('errors', 0)} |"
        )
    ratio = tputs["yizhan"] / tputs["echo"]
    p99 = pct(results["yizhan"]["seq"], 99)
    print(f"\nthroughput ratio yizhan/echo: {ratio:.2f}")
    print(f"load average (end): {' '.join(f'{x:.2f}' for x in os.getloadavg())}; measured in {elapsed:.0f} s")
    print("\n## targets")
    full = args.stations == TARGET_N
    note = "" if full else f" (only {args.stations} stations: not the target size)"
    print(
        f"p99 (sequential) {p99:.2f} ms <= {TARGET_P99_MS:.0f} ms: {'MET' if p99 <= TARGET_P99_MS else 'MISSED'}{note}"
    )
    print(
        f"throughput ratio {ratio:.2f} >= {TARGET_RATIO:.2f}: {'MET' if ratio >= TARGET_RATIO else 'MISSED'}{note}"
    )
    if "profile" in results:
        print("\n## cProfile of one yizhan burst (bot process)")
        print(results["profile"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
