"""Announcement delivery benchmark: the real Broadcaster + TelegramTransport against the local Bot API.

The sender (`Broadcaster(sessions, TelegramTransport(bot, core, i18n), LocalRateLimiter(rate), rate)` and
`.run_once()`, the bot's aiohttp session, uvloop, `tune_runtime()`) runs in a *spawned child process* per
scenario, so its peak RSS is its own; the local Bot API server (`LocalBotAPI`) runs in another spawned
child so its CPU does not share the sender's event loop. The server gets extra control routes on
`api.app`:

  POST /bench/reset     {"rate_limit": float|null}   forget chats/calls/counters, set the global limit
  POST /bench/register  {"start": int, "n": int}     create n private chats start..start+n-1 in one call
                                                     (then frozen out of the server's collector)
  GET  /bench/stats                                  successful sendMessage count, copies per chat,
                                                     first/last arrival (server clock), 429 count,
                                                     arrival gaps > 3 ms, the server's collector pauses

Each scenario uses a fresh SQLite file under bench/out/ (git-ignored): staff 11 holds staff rights for
"44", recipients are subscribed to region "4401" (bulk-inserted rows, the same the repository writes),
a 10-recipient warm-up announcement to "4402" is sent first (not measured), then
`AnnouncementService.create(access, TEXT, Audience("4401"), at)` and `Broadcaster.run_once()`. During
`run_once` the sender reads its own and the server's CPU time (user + system, all threads) from
/proc/<pid>/stat, to tell which side a message costs more. After the 10,000 run two references are
measured in the same process, without the database: aiogram's `bot.send_message` and the transport's
`deliver`, each paced by LocalRateLimiter(1000) with up to a window in flight.

Targets: (1) 10,000 recipients at BROADCAST_RATE=1000: rate measured on the server (recipients / (last −
first arrival)) within 3 % of the limit; (2) sender peak-RSS growth flat in recipients (10,000 vs
100,000; ≤ 50 MB at 100,000), create-time and send-time growth reported apart; (3) at the default 25/s
against a server enforcing 30/s, zero 429s — and, beside it, 60/s against the same server: 429s > 0 and
still exactly one copy per recipient.

    python -m bench.broadcast                  # full run (~3 min)
    python -m bench.broadcast --quick          # 500 at 1000/s and 150 at 25/s / 60/s; no 100k run
    python -m bench.broadcast --only rate-1000 --n 3000   # one scenario, another size (while iterating)

Run it alone on the machine (`flock /tmp/bench.lock python -m bench.broadcast`): the 1000/s scenario
needs about 1.1 CPU between the two processes, and other work on the 2 vCPUs shows as lost rate.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import logging
import multiprocessing as mp
import os
import platform
import sys
import threading
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "bench" / "out"
TOKEN = "42:LOCAL-TEST-TOKEN"  # LocalBotAPI's default
STAFF = 11
REGION = "4401"
WARM_REGION = "4402"
WARM_USERS = range(1_000, 1_010)
FIRST_USER = 1_000_000
TEXT = "<b>夏季送清凉</b>：7 月 1 日起各驿站免费提供绿豆汤。"
RATE_TOLERANCE = 0.03
MEM_LIMIT_MB = 50.0
MiB = 1024 * 1024


def now() -> datetime:
    return datetime.now(UTC)


# ---------------------------------------------------------------------------------------------- server


def _server_main(conn: Any) -> None:
    with contextlib.suppress(ImportError):
        import uvloop

        uvloop.install()
    logging.basicConfig(level=logging.WARNING)
    asyncio.run(_serve(conn))


async def _serve(conn: Any) -> None:
    from aiohttp import web

    from localapi import LocalBotAPI
    from localapi.state import TokenBucket

    api = LocalBotAPI()
    name, send_message = api._methods["sendmessage"]
    state: dict[str, Any] = {"copies": {}, "first": 0, "last": 0, "n": 0, "measure_from": 0, "gaps": []}
    # Collector pauses of this process: a pause here stalls every reply, so it shows as a sender stall.
    pauses: list[float] = []
    gc_started = [0.0]

    def on_gc(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            gc_started[0] = time.perf_counter()
        else:
            pauses.append(time.perf_counter() - gc_started[0])

    gc.callbacks.append(on_gc)

    async def counted_send_message(params: dict[str, Any], files: Any) -> Any:
        result = await send_message(params, files)  # raises ApiError (no count) when it fails
        arrived = time.perf_counter_ns()
        chat_id = int(params["chat_id"])
        copies = state["copies"]
        copies[chat_id] = copies.get(chat_id, 0) + 1
        if chat_id >= state["measure_from"]:  # the sender's warm-up chats are not timed
            if state["last"]:
                state["gaps"].append(arrived - state["last"])
            state["first"] = state["first"] or arrived
            state["last"] = arrived
            state["n"] += 1
        # Keep the server small: the benchmark only needs counts, not the stored message history nor the
        # log of calls (which would otherwise grow by one entry per message until /bench/stats).
        chat = api._chats.get(chat_id)
        if chat is not None:
            chat.messages.clear()
        if len(api.calls) > 1_000:
            api.calls.clear()
        return result

    api._methods["sendmessage"] = (name, counted_send_message)

    async def reset(request: web.Request) -> web.Response:
        body = await request.json()
        rate = body.get("rate_limit")
        api.rate_limit = rate
        api._bucket = TokenBucket(rate) if rate else None
        gc.unfreeze()  # the previous scenario's chats go now
        api._chats.clear()
        api._users.clear()
        api.calls.clear()
        api.errors.clear()
        api._updates.clear()
        api.rate_limited_count = 0
        state.update(copies={}, first=0, last=0, n=0, measure_from=int(body.get("measure_from", 0)), gaps=[])
        pauses.clear()
        return web.json_response({"ok": True})

    async def register(request: web.Request) -> web.Response:
        body = await request.json()
        start, n = int(body["start"]), int(body["n"])
        for user_id in range(start, start + n):
            api._user_chat(api._user(user_id, "zh-hans", "测试"), None, "private")
        # The chats live for the whole scenario: out of the collector's sight, as the bot's own start-up
        # objects are (`tune_runtime`). Otherwise each full collection walks every chat, and at 10,000
        # chats one took 220-240 ms, during which nothing was answered (a stall of the stand-in for
        # Telegram, not of the sender).
        gc.collect()
        gc.freeze()
        pauses.clear()  # that collection was ours, not part of a run
        return web.json_response({"ok": True, "chats": len(api._chats)})

    async def stats(request: web.Request) -> web.Response:
        api.calls.clear()
        low = state["measure_from"]
        copies = {chat: c for chat, c in state["copies"].items() if chat >= low}
        return web.json_response(
            {
                "received": state["n"],
                "distinct": len(copies),
                "max_copies": max(copies.values(), default=0),
                "dup_chats": sum(1 for c in copies.values() if c > 1),
                "first_ns": state["first"],
                "last_ns": state["last"],
                "rate_limited": api.rate_limited_count,
                # Arrival gaps beyond 3 intervals at 1000/s: time the sender left unused (or the server lost).
                "long_gaps_ms": sorted((g / 1e6 for g in state["gaps"] if g > 3_000_000), reverse=True),
                "gc_pauses_ms": sorted((p * 1000 for p in pauses if p > 0.005), reverse=True),
            }
        )

    api.app.router.add_post("/bench/reset", reset)
    api.app.router.add_post("/bench/register", register)
    api.app.router.add_get("/bench/stats", stats)
    url = await api.start()
    conn.send(url)
    loop = asyncio.get_running_loop()
    closed = asyncio.Event()
    loop.add_reader(conn.fileno(), closed.set)
    await closed.wait()
    await api.stop()


async def _control(url: str, method: str, path: str, body: Any = None) -> dict[str, Any]:
    from aiohttp import ClientSession, ClientTimeout

    async with ClientSession(timeout=ClientTimeout(total=120)) as http:
        async with http.request(method, f"{url}{path}", json=body) as resp:
            resp.raise_for_status()
            return await resp.json()


# ---------------------------------------------------------------------------------------------- data


def _settings(db: Path) -> Any:
    from bot.config import Settings

    return Settings(database_url=f"sqlite+aiosqlite:///{db}", _env_file=None)  # type: ignore[call-arg]


async def _prepare(db: Path, n: int) -> float:
    """Fresh database: staff role, 10 warm-up subscribers and n recipients (bulk insert). Returns seconds."""
    from bot.app import open_core
    from storage.models import SubscriptionRow

    started = time.perf_counter()
    for leftover in (db, Path(f"{db}-wal"), Path(f"{db}-shm"), Path(f"{db}-journal")):
        leftover.unlink(missing_ok=True)
    async with open_core(_settings(db), load_index=False) as core:
        await core.roles.grant(STAFF, "staff", "44")
        for user_id in WARM_USERS:
            await core.subscriptions.subscribe_region(user_id, WARM_REGION, now())
        at = now()
        table = SubscriptionRow.__table__
        async with core.sessions() as session, session.begin():
            for start in range(FIRST_USER, FIRST_USER + n, 5_000):
                rows = [
                    {
                        "user_id": u,
                        "active": True,
                        "cell": "",
                        "region": REGION,
                        "created_at": at,
                        "updated_at": at,
                    }
                    for u in range(start, min(start + 5_000, FIRST_USER + n))
                ]
                await session.execute(table.insert(), rows)
    return time.perf_counter() - started


# ---------------------------------------------------------------------------------------------- sender


class PeakRSS:
    """Peak RSS since `reset()`: VmHWM after clearing it (/proc/self/clear_refs "5") where the kernel
    allows, otherwise (and in addition) a 10 ms sampling thread."""

    def __init__(self) -> None:
        self._max = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self.hwm_ok = False

    @staticmethod
    def status(key: str) -> int:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1]) * 1024
        return 0

    @staticmethod
    def rss() -> int:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")

    def _sample(self) -> None:
        while not self._stop.wait(0.01):
            self._max = max(self._max, self.rss())

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    def reset(self) -> int:
        try:
            Path("/proc/self/clear_refs").write_text("5")
            self.hwm_ok = True
        except OSError:
            self.hwm_ok = False
        current = self.rss()
        self._max = current
        return current

    def peak(self) -> int:
        peak = max(self._max, self.rss())
        if self.hwm_ok:
            peak = max(peak, self.status("VmHWM"))
        return peak


def cpu_seconds(pid: int | str = "self") -> float:
    """User + system CPU time of a whole process (all its threads) from /proc/<pid>/stat."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class CpuMeter:
    """CPU time the sender (this process) and the server process spend between `start()` and `stop()`."""

    def __init__(self, server_pid: int) -> None:
        self.server_pid = server_pid
        self._t0 = self._sender0 = self._server0 = 0.0

    def start(self) -> None:
        self._t0 = time.perf_counter()
        self._sender0 = cpu_seconds()
        self._server0 = cpu_seconds(self.server_pid)

    def stop(self, messages: int) -> dict[str, float]:
        wall = time.perf_counter() - self._t0
        sender = cpu_seconds() - self._sender0
        server = cpu_seconds(self.server_pid) - self._server0
        return {
            "wall_s": wall,
            "sender_s": sender,
            "server_s": server,
            "sender_us_per_msg": sender / messages * 1e6,
            "server_us_per_msg": server / messages * 1e6,
            "sender_util": sender / wall,
            "server_util": server / wall,
        }


class Phases:
    """Wall time inside wrapped awaitables (this process only; product code is not changed). Deliveries
    overlap (a window of them is gathered at once), so per-delivery figures are latencies, not shares."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self.calls: dict[str, int] = {}
        self.keys: list[str] = []  # in the order wrapped

    def wrap(self, owner: Any, attr: str, key: str) -> None:
        original = getattr(owner, attr, None)
        if original is None:  # not in this version of the code
            return
        self.keys.append(key)

        async def timed(*args: Any, **kwargs: Any) -> Any:
            t0 = time.perf_counter()
            try:
                return await original(*args, **kwargs)
            finally:
                self.seconds[key] = self.seconds.get(key, 0.0) + time.perf_counter() - t0
                self.calls[key] = self.calls.get(key, 0) + 1

        setattr(owner, attr, timed)


async def _reference(
    send: Callable[[int], Awaitable[Any]], rate: float, in_flight: int, count: int, server_pid: int
) -> dict[str, float]:
    """`send(chat_id)` paced by LocalRateLimiter(rate) with at most `in_flight` sends at once (a sliding
    window: the next one starts as soon as any finishes), no database: what the HTTP client and the
    server manage on this machine now. Sent to the warm-up chats. Returns msg/s, mean latency and CPU."""
    from storage.ratelimit import LocalRateLimiter

    limiter = LocalRateLimiter(rate)
    slots = asyncio.Semaphore(in_flight)
    chats = list(WARM_USERS)
    stamps: list[float] = []
    latency = [0.0]

    async def one(i: int) -> None:
        try:
            await limiter.acquire()
            t0 = time.perf_counter()
            await send(chats[i % len(chats)])
            stamps.append(time.perf_counter())
            latency[0] += stamps[-1] - t0
        finally:
            slots.release()

    cpu = CpuMeter(server_pid)
    cpu.start()
    tasks = []
    for i in range(count):
        await slots.acquire()
        tasks.append(asyncio.create_task(one(i)))
    await asyncio.gather(*tasks)
    used = cpu.stop(count)
    return {
        "rate": count / (max(stamps) - min(stamps)),
        "latency_ms": latency[0] / count * 1000,
        "sender_us_per_msg": used["sender_us_per_msg"],
        "server_us_per_msg": used["server_us_per_msg"],
    }


async def _references(
    bot: Any, transport: Any, view: Any, rate: float, in_flight: int, count: int, server_pid: int
) -> dict[str, dict[str, float]]:
    """The same announcement by aiogram's `bot.send_message` (text + inline keyboard) and by the
    broadcaster's transport (`TelegramTransport.deliver`, locale lookup included)."""
    from aiogram.types import InlineKeyboardButton, InlineKeyboardMarkup

    keyboard = InlineKeyboardMarkup(
        inline_keyboard=[[InlineKeyboardButton(text="🔕", callback_data="unsub")]]
    )

    async def by_aiogram(chat_id: int) -> None:
        await bot.send_message(chat_id, TEXT, reply_markup=keyboard)

    async def by_transport(chat_id: int) -> None:
        await transport.deliver(chat_id, view)

    await transport.prepare(list(WARM_USERS))  # as the broadcaster does for each window

    return {
        "aiogram bot.send_message": await _reference(by_aiogram, rate, in_flight, count, server_pid),
        "TelegramTransport.deliver": await _reference(by_transport, rate, in_flight, count, server_pid),
    }


def _sender_main(
    conn: Any, db: str, url: str, server_pid: int, rate: float, n: int, profile: bool, breakdown: int
) -> None:
    from bot.app import install_event_loop_policy

    install_event_loop_policy()
    logging.basicConfig(level=logging.WARNING)
    try:
        conn.send(asyncio.run(_send(Path(db), url, server_pid, rate, n, profile, breakdown)))
    except BaseException as exc:
        conn.send({"error": repr(exc)})
        raise


async def _send(
    db: Path, url: str, server_pid: int, rate: float, n: int, profile: bool, breakdown: int
) -> dict[str, Any]:
    from bot.app import open_core
    from bot.broadcast import TelegramTransport
    from bot.services.announcements import Audience, Broadcaster
    from bot.telegram import build_bot, build_i18n, tune_runtime
    from storage.ratelimit import LocalRateLimiter

    mem = PeakRSS()
    mem.start()
    out: dict[str, Any] = {"loop": type(asyncio.get_running_loop()).__module__}
    async with open_core(_settings(db), load_index=False) as core:
        bot = build_bot(TOKEN, url)
        try:
            broadcaster = Broadcaster(
                core.sessions,
                TelegramTransport(bot, core, build_i18n()),
                LocalRateLimiter(rate),
                rate,
                clock=now,
            )
            staff = await core.roles.access(STAFF)
            # Warm-up (not measured): aiogram session, SQL compilation caches, i18n catalogues.
            await core.announcements.create(staff, TEXT, Audience(WARM_REGION), now())
            await broadcaster.run_once()
            tune_runtime()
            gc.collect()
            phases = Phases()
            if breakdown:
                from storage.announcements_repo import AnnouncementRepository

                phases.wrap(broadcaster, "_load", "load (get + counts)")
                phases.wrap(broadcaster, "_record_and_claim", "record + status + claim, per window")
                phases.wrap(AnnouncementRepository, "finish", "  of which finish (bulk UPDATE)")
                phases.wrap(AnnouncementRepository, "claim", "  of which claim (select + update)")
                phases.wrap(broadcaster.transport, "prepare", "languages of a window (one SELECT)")
            if breakdown > 1:  # a wrapper per delivery costs the sender CPU: not in the measured run
                phases.wrap(broadcaster, "_attempt", "delivery incl. limiter wait")
                phases.wrap(broadcaster.limiter, "acquire", "limiter wait")
                phases.wrap(broadcaster.transport, "deliver", "transport deliver (HTTP)")

            base = mem.reset()
            out["rss_base_mb"] = base / MiB
            t0 = time.perf_counter()
            view = await core.announcements.create(staff, TEXT, Audience(REGION), now())
            out["create_s"] = time.perf_counter() - t0
            out["create_peak_mb"] = (mem.peak() - base) / MiB
            out["after_create_mb"] = (mem.rss() - base) / MiB

            base2 = mem.reset()
            prof = None
            if profile:
                import cProfile

                prof = cProfile.Profile()
                prof.enable()
            cpu = CpuMeter(server_pid)
            cpu.start()
            await broadcaster.run_once()
            out["cpu"] = cpu.stop(n)
            out["send_s"] = out["cpu"]["wall_s"]
            if prof is not None:
                prof.disable()
                import io
                import pstats

                buf = io.StringIO()
                pstats.Stats(prof, stream=buf).sort_stats("tottime").print_stats(25)
                out["profile"] = buf.getvalue()
            peak = mem.peak()
            out["send_peak_mb"] = (peak - base2) / MiB
            out["send_peak_vs_base_mb"] = (peak - base) / MiB
            out["hwm_reset"] = mem.hwm_ok
            if breakdown:
                out["phases"] = {
                    k: (phases.seconds[k], phases.calls[k]) for k in phases.keys if k in phases.calls
                }
                out["window"] = broadcaster.window
                out["references"] = await _references(
                    bot, broadcaster.transport, view, rate, broadcaster.window, min(n, 3_000), server_pid
                )
            final = await core.announcements.get(view.id, staff)
            out["total"] = final.counts.total
            out["sent"] = final.counts.sent
            out["status"] = final.status
            out["left"] = final.counts.left
        finally:
            await bot.session.close()
    mem.stop()
    return out


# ---------------------------------------------------------------------------------------------- scenarios


def scenario(
    name: str,
    url: str,
    server_pid: int,
    n: int,
    rate: float,
    server_limit: float | None,
    profile: bool = False,
    breakdown: int = 0,
) -> dict[str, Any]:
    db = OUT / f"broadcast-{name}.db"
    prep_s = asyncio.run(_prepare(db, n))
    asyncio.run(
        _control(url, "POST", "/bench/reset", {"rate_limit": server_limit, "measure_from": FIRST_USER})
    )
    asyncio.run(_control(url, "POST", "/bench/register", {"start": WARM_USERS.start, "n": len(WARM_USERS)}))
    t0 = time.perf_counter()
    asyncio.run(_control(url, "POST", "/bench/register", {"start": FIRST_USER, "n": n}))
    register_s = time.perf_counter() - t0
    ctx = mp.get_context("spawn")
    parent, child = ctx.Pipe()
    proc = ctx.Process(
        target=_sender_main, args=(child, str(db), url, server_pid, rate, n, profile, breakdown), daemon=True
    )
    load0 = os.getloadavg()[0]
    proc.start()
    proc.join()
    if not parent.poll(1):
        raise RuntimeError(f"scenario {name}: the sender died (exit code {proc.exitcode})")
    result: dict[str, Any] = parent.recv()
    if "error" in result:
        raise RuntimeError(f"scenario {name}: {result['error']}")
    stats = asyncio.run(_control(url, "GET", "/bench/stats"))
    result.update(
        name=name,
        n=n,
        rate=rate,
        server_limit=server_limit,
        prep_s=prep_s,
        register_s=register_s,
        received=stats["received"],
        distinct=stats["distinct"],
        max_copies=stats["max_copies"],
        dup_chats=stats["dup_chats"],
        rate_limited=stats["rate_limited"],
        long_gaps_ms=stats["long_gaps_ms"],
        server_gc_ms=stats["gc_pauses_ms"],
        load_1m=(load0, os.getloadavg()[0]),
    )
    result["span_s"] = (stats["last_ns"] - stats["first_ns"]) / 1e9
    result["achieved"] = n / result["span_s"] if result["span_s"] > 0 else float("nan")
    result["ratio"] = result["achieved"] / rate
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.broadcast", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="500 at 1000/s, 150 at 25/s and 60/s; no 100k")
    parser.add_argument(
        "--big-rate",
        type=float,
        default=5000.0,
        help="BROADCAST_RATE of the 100,000 run (default 5000: at 1000/s it would not fit the time budget)",
    )
    parser.add_argument("--profile", action="store_true", help="cProfile the 10,000 run's sending (slows it)")
    parser.add_argument(
        "--per-delivery",
        action="store_true",
        help="also time each delivery, limiter wait and HTTP call of the 10,000 run (costs the sender CPU)",
    )
    parser.add_argument(
        "--n",
        type=int,
        default=None,
        help="recipients of the rate-1000 scenario (while iterating; default 10,000)",
    )
    parser.add_argument(
        "--only",
        default="",
        help="comma-separated scenarios to run (rate-1000, mem-100k, default-25, fast-60)",
    )
    args = parser.parse_args(argv)

    print("# bench.broadcast — announcement delivery through the outbox against the local Bot API")
    usable = len(os.sched_getaffinity(0))
    print(
        f"machine: nproc={usable}, python={platform.python_version()}, sender loop: uvloop (install_event_loop_policy)"
    )
    load_start = os.getloadavg()
    print(f"load average (start): {' '.join(f'{x:.2f}' for x in load_start)}", flush=True)
    OUT.mkdir(parents=True, exist_ok=True)

    ctx = mp.get_context("spawn")
    parent, child = ctx.Pipe()
    server = ctx.Process(target=_server_main, args=(child,), daemon=True)
    server.start()
    results: dict[str, dict[str, Any]] = {}
    started = time.perf_counter()
    try:
        if not parent.poll(60):
            raise RuntimeError("local Bot API server did not start")
        url = parent.recv()
        plan = (
            [("rate-1000", 500, 1000.0, None), ("default-25", 150, 25.0, 30.0), ("fast-60", 150, 60.0, 30.0)]
            if args.quick
            else [
                ("rate-1000", 10_000, 1000.0, None),
                ("mem-100k", 100_000, args.big_rate, None),
                ("default-25", 600, 25.0, 30.0),
                ("fast-60", 600, 60.0, 30.0),
            ]
        )
        if args.n is not None:
            plan = [
                (name, args.n if name == "rate-1000" else n, rate, limit) for name, n, rate, limit in plan
            ]
        if args.only:
            wanted = set(args.only.split(","))
            plan = [step for step in plan if step[0] in wanted]
        for name, n, rate, limit in plan:
            print(f"\n## {name}: {n:,} recipients at {rate:g}/s, server limit {limit or 'none'}", flush=True)
            r = scenario(
                name,
                url,
                server.pid,
                n,
                rate,
                limit,
                profile=args.profile and name == "rate-1000",
                breakdown=(2 if args.per_delivery else 1) if name == "rate-1000" else 0,
            )
            results[name] = r
            print(
                f"  prepare {r['prep_s']:.1f} s, register {n:,} chats {r['register_s'] * 1000:.0f} ms; "
                f"create {r['create_s']:.2f} s; run_once {r['send_s']:.2f} s; status {r['status']}, "
                f"sent {r['sent']}/{r['total']}, left {r['left']}",
                flush=True,
            )
            print(
                f"  server: received {r['received']:,} (distinct chats {r['distinct']:,}, max copies "
                f"{r['max_copies']}, chats with >1 copy {r['dup_chats']}), 429s {r['rate_limited']}; "
                f"first→last {r['span_s']:.2f} s = {r['achieved']:.1f} msg/s ({r['ratio']:.3f} of {rate:g})",
                flush=True,
            )
            print(
                f"  sender RSS: base {r['rss_base_mb']:.1f} MiB; create peak +{r['create_peak_mb']:.1f} MiB "
                f"(after +{r['after_create_mb']:.1f}); send peak +{r['send_peak_mb']:.1f} MiB "
                f"(+{r['send_peak_vs_base_mb']:.1f} vs before create); VmHWM reset: {r['hwm_reset']}; "
                f"load 1m {r['load_1m'][0]:.2f}→{r['load_1m'][1]:.2f}",
                flush=True,
            )
            gaps, pauses = r["long_gaps_ms"], r["server_gc_ms"]
            print(
                f"  arrival gaps > 3 ms: {len(gaps)} totalling {sum(gaps):.0f} ms (largest "
                f"{', '.join(f'{g:.0f}' for g in gaps[:5]) or '—'} ms); server collector pauses > 5 ms: "
                f"{len(pauses)} totalling {sum(pauses):.0f} ms (largest {', '.join(f'{p:.0f}' for p in pauses[:5]) or '—'} ms)",
                flush=True,
            )
            c = r["cpu"]
            print(
                f"  CPU during run_once ({c['wall_s']:.2f} s): sender {c['sender_s']:.2f} s = "
                f"{c['sender_us_per_msg']:.0f} µs/msg ({c['sender_util']:.0%} of a CPU), server "
                f"{c['server_s']:.2f} s = {c['server_us_per_msg']:.0f} µs/msg ({c['server_util']:.0%} of a CPU)",
                flush=True,
            )
            if "phases" in r:
                windows = r["phases"].get("record + status + claim, per window", (0, 1))[1]
                print(
                    f"  where the time goes (window {r['window']}, {windows} windows, run_once {r['send_s']:.2f} s):"
                )
                for key, (sec, calls) in r["phases"].items():
                    print(
                        f"    {key:42s} {sec:8.2f} s total, {sec / calls * 1000:8.2f} ms per call ({calls} calls)"
                    )
                for label, ref in r["references"].items():
                    print(
                        f"  reference after the run, no database: {label} paced at {rate:g}/s, up to "
                        f"{r['window']} in flight: {ref['rate']:.0f} msg/s, latency {ref['latency_ms']:.2f} ms, "
                        f"CPU sender {ref['sender_us_per_msg']:.0f} µs/msg, server {ref['server_us_per_msg']:.0f} µs/msg",
                        flush=True,
                    )
            if "profile" in r:
                print(r["profile"])
    finally:
        parent.close()
        server.join(10)
        if server.is_alive():
            server.terminate()
    load_end = os.getloadavg()
    elapsed = time.perf_counter() - started

    print("\n## results")
    print(
        "| scenario | recipients | rate /s | server limit /s | sent | received | max copies | 429s | span s "
        "| achieved /s | ratio | create s | create peak MiB | send peak MiB | sender CPU µs/msg | server CPU µs/msg |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in results.values():
        print(
            f"| {r['name']} | {r['n']:,} | {r['rate']:g} | {r['server_limit'] or '—'} | {r['sent']:,} | {r['received']:,} | "
            f"{r['max_copies']} | {r['rate_limited']} | {r['span_s']:.2f} | {r['achieved']:.1f} | {r['ratio']:.3f} | "
            f"{r['create_s']:.2f} | {r['create_peak_mb']:.1f} | {r['send_peak_mb']:.1f} | "
            f"{r['cpu']['sender_us_per_msg']:.0f} | {r['cpu']['server_us_per_msg']:.0f} |"
        )
    print(f"\nload average (end): {' '.join(f'{x:.2f}' for x in load_end)}; total {elapsed:.0f} s")

    print("\n## targets")
    if "rate-1000" in results:
        r1 = results["rate-1000"]
        note = f" ({r1['n']:,} recipients, not the target size)" if r1["n"] != 10_000 else ""
        ok1 = abs(r1["ratio"] - 1) <= RATE_TOLERANCE and r1["received"] == r1["n"] and r1["max_copies"] == 1
        print(
            f"1. rate at BROADCAST_RATE=1000: {r1['achieved']:.1f}/s, ratio {r1['ratio']:.3f} (within ±3 %: "
            f"{'MET' if ok1 else 'MISSED'}){note}"
        )
    else:
        print("1. rate at BROADCAST_RATE=1000: not run")
    if "mem-100k" in results and "rate-1000" in results:
        small, big = results["rate-1000"], results["mem-100k"]
        grow = max(big["create_peak_mb"], big["send_peak_mb"])
        ok2 = grow <= MEM_LIMIT_MB
        print(
            f"2. peak RSS growth {small['n']:,} → {big['n']:,}: create +{small['create_peak_mb']:.1f} → "
            f"+{big['create_peak_mb']:.1f} MiB, send +{small['send_peak_mb']:.1f} → +{big['send_peak_mb']:.1f} MiB "
            f"(100k rate {big['rate']:g}/s); ≤ {MEM_LIMIT_MB:.0f} MB at 100,000: {'MET' if ok2 else 'MISSED'}"
        )
    else:
        print("2. memory 10,000 vs 100,000: not run")
    if "default-25" in results and "fast-60" in results:
        d, f = results["default-25"], results["fast-60"]
        note = " (quick: not the target size)" if d["n"] != 600 else ""
        ok3 = d["rate_limited"] == 0 and d["received"] == d["n"] and d["max_copies"] == 1
        ok3b = (
            f["rate_limited"] > 0 and f["received"] == f["n"] and f["max_copies"] == 1 and f["sent"] == f["n"]
        )
        print(
            f"3. default 25/s vs server 30/s: {d['rate_limited']} × 429, {d['received']}/{d['n']} delivered once: "
            f"{'MET' if ok3 else 'MISSED'}; control 60/s: {f['rate_limited']} × 429 (> 0), {f['received']}/{f['n']} "
            f"delivered, max copies {f['max_copies']}: {'MET' if ok3b else 'MISSED'}{note}"
        )
    else:
        print("3. 25/s and 60/s against a 30/s server: not run")
    return 0


if __name__ == "__main__":
    sys.exit(main())
