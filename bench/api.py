"""(e) HTTP API v1 throughput and latency: `yizhan serve` on 186,100 stations under a load generator.

The synthetic national data set (`storage.seed.generate_stations` through `StationService.seed`) is saved
into a SQLite file cached under bench/out/ (shared with bench.bot: same name, same content) and copied to a
scratch file. `python -m bot serve` runs on it as a separate process (uvloop, production settings). The load
comes from another process: `wrk` when it is installed (C, closed loop, one connection per simulated
client), else an aiohttp client in a child process. Each run is closed-loop with `c` concurrent
connections for `--duration` seconds after a warm-up; the same run measures

* `GET /api/v1/stations/nearby?lat&lon&at` at random points within ~1.3 km of random stations (k = 5):
  a spatial search, opening-hours checks, and the stations' details from `StationCache` or, on a miss,
  one query to SQLite; `at` is a Wednesday 10:30 in Beijing ("nearby", the target) and 03:00
  ("nearby-night", when most stations are closed and the search widens), fixed so that runs compare;
* `GET /healthz` (routing, middlewares, one `SELECT 1` round trip): the floor of a request that touches the
  database, so the ratio shows what the search and the JSON cost on top;
* `GET /api/v1/openapi.json` (a prebuilt body, no database): the floor of the web stack itself.

Reported per endpoint and concurrency: requests/s, p50/p99 latency (wrk's, or exact percentiles of the
aiohttp client's samples), non-2xx answers, the server's CPU time per request (from /proc) split into the
event loop thread's user and system time and the other threads' (aiosqlite), and how many threads the
server started during the run (new aiosqlite connections). Targets: ≥ 2,000 requests/s with p99 ≤ 10 ms
for nearby, both in the same run. When they are missed (or with `--profile`) the nearby load is repeated
against a server with every station's details in memory, and once more with the event loop in cProfile.

    python -m bench.api            # 186,100 stations
    python -m bench.api --quick    # 2,000 stations, short runs; writes bench/out/README-api-quick.md
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import json
import multiprocessing as mp
import os
import pstats
import re
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from bench._common import (
    OUT,
    ROOT,
    load_average,
    percentiles_us,
    print_load,
    print_machine,
    table,
    verdict,
    wait_for_quiet,
)

TARGET_N = 186_100
TARGET_RPS = 2000.0
TARGET_P99_MS = 10.0
# Fixed instants (an ordinary Wednesday in Beijing time, as in bench.search) so that runs compare: at night
# most stations are closed and the search widens its candidate set several times.
DAY = "2025-06-18T10:30:00%2B08:00"
NIGHT = "2025-06-18T03:00:00%2B08:00"
JITTER_DEG = 0.012  # uniform per axis: up to ~1.3 km from the station, as in bench.bot


# ------------------------------------------------------------------------------------------ data


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
    """The cached seeded file (bench.bot's name, so either benchmark reuses the other's), copied."""
    OUT.mkdir(parents=True, exist_ok=True)
    cached = OUT / f"bot-{n}-seed{seed}-{_alembic_head()}.db"
    if cached.exists():
        print(f"using cached bench/out/{cached.name}", flush=True)
    else:
        tmp = cached.with_suffix(".tmp.db")
        for leftover in (tmp, Path(f"{tmp}-wal"), Path(f"{tmp}-shm")):
            leftover.unlink(missing_ok=True)
        started = time.perf_counter()
        asyncio.run(_seed(tmp, n, seed))
        tmp.replace(cached)
        print(f"prepared bench/out/{cached.name} in {time.perf_counter() - started:.0f} s", flush=True)
    work = OUT / "api-run.db"
    for leftover in (work, Path(f"{work}-wal"), Path(f"{work}-shm")):
        leftover.unlink(missing_ok=True)
    shutil.copyfile(cached, work)
    return work


def station_points(db: Path) -> np.ndarray:
    # Bench code reads the file directly: the points only seed the query generator.
    with contextlib.closing(sqlite3.connect(db)) as conn:
        rows = conn.execute("SELECT lat, lon FROM stations WHERE status = 'active'").fetchall()
    return np.asarray(rows, dtype=np.float64)


def nearby_paths(points: np.ndarray, count: int, rng: np.random.Generator, at: str) -> list[str]:
    picked = points[rng.integers(0, len(points), count)]
    jitter = rng.uniform(-JITTER_DEG, JITTER_DEG, size=picked.shape)
    return [
        f"/api/v1/stations/nearby?lat={lat:.6f}&lon={lon:.6f}&at={at}"
        for lat, lon in np.round(picked + jitter, 6)
    ]


# ------------------------------------------------------------------------------------------ server


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Server:
    process: subprocess.Popen[str]
    url: str
    ready_s: float
    #: Listening → station cache full (`yizhan serve` only).
    warm_s: float = 0.0

    def cpu_s(self) -> float:
        """utime + stime of the server process so far (all threads, exited ones included)."""
        return sum(self.cpu_split(f"/proc/{self.process.pid}/stat"))

    @staticmethod
    def cpu_split(stat_path: str) -> tuple[float, float]:
        """(user, system) seconds of a process or thread from its /proc stat file; zeros once it is gone."""
        try:
            fields = Path(stat_path).read_text().rsplit(")", 1)[1].split()
        except OSError:
            return 0.0, 0.0
        tick = os.sysconf("SC_CLK_TCK")
        return int(fields[11]) / tick, int(fields[12]) / tick

    def loop_cpu(self) -> tuple[float, float]:
        """(user, system) seconds of the main thread: the event loop, where all Python request code runs."""
        pid = self.process.pid
        return self.cpu_split(f"/proc/{pid}/task/{pid}/stat")

    def threads(self) -> set[int]:
        """Ids of the server's threads alive now."""
        try:
            return {int(tid.name) for tid in Path(f"/proc/{self.process.pid}/task").iterdir()}
        except OSError:
            return set()

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def start_server(db: Path) -> Server:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST")}
    env.update(DATABASE_URL=f"sqlite+aiosqlite:///{db}", PYTHONPATH=str(ROOT), LANGUAGE="en")
    argv = [sys.executable, "-m", "bot", "serve", "--host", "127.0.0.1", "--port", str(port)]
    started = time.perf_counter()
    process = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None
    line = process.stdout.readline()
    if "http://" not in line:
        process.kill()
        raise RuntimeError(f"yizhan serve did not start: {line!r}")
    server = Server(process, f"http://127.0.0.1:{port}", time.perf_counter() - started)
    server.warm_s = wait_for_warm_cache(server.url)
    return server


def wait_for_warm_cache(url: str, limit_s: float = 120.0) -> float:
    """Seconds until `/healthz` says every indexed station's details are in memory (the steady state of a
    running process: `serve` fills its cache in the background after it starts listening)."""
    import urllib.request

    started = time.perf_counter()
    while time.perf_counter() - started < limit_s:
        with urllib.request.urlopen(url + "/healthz", timeout=5) as response:
            health = json.loads(response.read())
        if health["cached"] >= health["stations"]:
            break
        time.sleep(0.2)
    return time.perf_counter() - started


# ------------------------------------------------------------------------------------------ load


@dataclass
class LoadResult:
    endpoint: str
    connections: int
    requests: int
    seconds: float
    rps: float
    p50_ms: float
    p99_ms: float
    errors: int
    server_cpu_us: float = float("nan")
    #: Threads the server started during the run: each is a new aiosqlite connection (one thread apiece),
    #: opened because more sessions were wanted at once than the pool keeps.
    threads_started: int = 0
    #: Per request: the event loop thread's user and system CPU, and the CPU of all other threads (the
    #: aiosqlite connection threads, the default executor).
    loop_user_us: float = float("nan")
    loop_system_us: float = float("nan")
    other_threads_us: float = float("nan")


_WRK_SCRIPT = """
local paths = {%s}
local i = math.random(#paths)
request = function()
  i = i + 1
  if i > #paths then i = 1 end
  return wrk.format("GET", paths[i])
end
"""


def _ms(text: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s)", text)
    if not match:
        raise ValueError(text)
    value, unit = float(match.group(1)), match.group(2)
    return value / 1000 if unit == "us" else value * 1000 if unit == "s" else value


def run_wrk(url: str, paths: Sequence[str], connections: int, seconds: float, threads: int) -> dict[str, Any]:
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(_WRK_SCRIPT % ",".join(f'"{p}"' for p in paths))
    try:
        argv = [
            "wrk",
            f"-t{min(threads, connections)}",
            f"-c{connections}",
            f"-d{max(1, round(seconds))}s",
            "--latency",
            "-s",
            script.name,
            url,
        ]
        out = subprocess.run(argv, capture_output=True, text=True, check=True).stdout
    finally:
        os.unlink(script.name)
    done = re.search(r"(\d+) requests in ([\d.]+)(ms|s)", out)
    if done is None:
        raise RuntimeError(f"unexpected wrk output:\n{out}")
    elapsed = float(done.group(2)) / (1000 if done.group(3) == "ms" else 1)
    percent = dict(re.findall(r"^\s+(\d+)%\s+([\d.]+(?:us|ms|s))\s*$", out, re.M))
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    socket_errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    errors = int(non_2xx.group(1)) if non_2xx else 0
    if socket_errors:
        errors += sum(int(g) for g in socket_errors.groups())
    return {
        "requests": int(done.group(1)),
        "seconds": elapsed,
        "p50_ms": _ms(percent["50"]),
        "p99_ms": _ms(percent["99"]),
        "errors": errors,
    }


async def _aiohttp_load(url: str, paths: Sequence[str], connections: int, seconds: float) -> dict[str, Any]:
    import aiohttp

    samples: list[int] = []
    errors = 0
    deadline = time.perf_counter() + seconds
    connector = aiohttp.TCPConnector(limit=connections)
    async with aiohttp.ClientSession(connector=connector) as http:

        async def worker(offset: int) -> None:
            nonlocal errors
            i = offset
            while time.perf_counter() < deadline:
                path = paths[i % len(paths)]
                i += connections
                started = time.perf_counter_ns()
                async with http.get(url + path) as response:
                    await response.read()
                    if response.status != 200:
                        errors += 1
                samples.append(time.perf_counter_ns() - started)

        started = time.perf_counter()
        await asyncio.gather(*(worker(n) for n in range(connections)))
        elapsed = time.perf_counter() - started
    p = percentiles_us(samples)
    return {
        "requests": len(samples),
        "seconds": elapsed,
        "p50_ms": p["p50"] / 1e3,
        "p99_ms": p["p99"] / 1e3,
        "errors": errors,
    }


def _aiohttp_child(args: tuple[str, list[str], int, float], conn: Any) -> None:
    with contextlib.suppress(ImportError):
        import uvloop

        uvloop.install()
    conn.send(asyncio.run(_aiohttp_load(*args)))


def run_aiohttp(url: str, paths: Sequence[str], connections: int, seconds: float) -> dict[str, Any]:
    """The same closed loop from an aiohttp client in its own process (not sharing the bench's loop)."""
    parent, child = mp.get_context("spawn").Pipe()
    process = mp.get_context("spawn").Process(
        target=_aiohttp_child, args=((url, list(paths), connections, seconds), child)
    )
    process.start()
    result: dict[str, Any] = parent.recv()
    process.join()
    return result


def load(
    generator: str,
    server: Server,
    endpoint: str,
    paths: Sequence[str],
    connections: int,
    seconds: float,
    threads: int,
) -> LoadResult:
    initial = server.threads()
    seen = set(initial)
    running = True

    def sample() -> None:
        while running:
            seen.update(server.threads())
            time.sleep(0.01)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    cpu_before, loop_before = server.cpu_s(), server.loop_cpu()
    try:
        if generator == "wrk":
            raw = run_wrk(server.url, paths, connections, seconds, threads)
        else:
            raw = run_aiohttp(server.url, paths, connections, seconds)
    finally:
        running = False
        sampler.join()
    cpu = server.cpu_s() - cpu_before
    loop_after = server.loop_cpu()
    loop_user, loop_system = loop_after[0] - loop_before[0], loop_after[1] - loop_before[1]
    per_request = 1e6 / max(raw["requests"], 1)
    return LoadResult(
        endpoint=endpoint,
        connections=connections,
        requests=raw["requests"],
        seconds=raw["seconds"],
        rps=raw["requests"] / raw["seconds"],
        p50_ms=raw["p50_ms"],
        p99_ms=raw["p99_ms"],
        errors=raw["errors"],
        server_cpu_us=cpu * per_request,
        threads_started=len(seen - initial),
        loop_user_us=loop_user * per_request,
        loop_system_us=loop_system * per_request,
        other_threads_us=(cpu - loop_user - loop_system) * per_request,
    )


# ------------------------------------------------------------------------------------------ report


def _diagnostic_server(db: str, port: int, prof: str, preload_details: bool) -> None:
    """Child process: `yizhan serve`'s steps, plus two diagnostics. SIGUSR1 switches a profiler on and
    SIGUSR2 off (and dumps it), so that the profile holds requests only, not start-up. `preload_details`
    answers the nearby detail look-up from memory instead of the database (an experiment measuring what
    that query costs; the service does not do this)."""
    import cProfile

    from aiohttp import web

    from bot.app import install_event_loop_policy, open_core
    from bot.config import Settings
    from bot.web import build_web_app

    install_event_loop_policy()
    profiler = cProfile.Profile()

    async def serve() -> None:
        settings = Settings(database_url=f"sqlite+aiosqlite:///{db}", _env_file=None)  # type: ignore[call-arg]
        async with open_core(settings) as core:
            if preload_details:
                index = core.search.index
                ids = index.ids[: index.slot_count].tolist()
                details: dict[int, Any] = {}
                for start in range(0, len(ids), 5000):
                    details.update(await core.stations.get_many(ids[start : start + 5000]))

                async def from_memory(wanted: Sequence[int]) -> dict[int, Any]:
                    return {i: details[i] for i in wanted if i in details}

                core.stations.get_many = from_memory  # type: ignore[method-assign]
            runner = web.AppRunner(build_web_app(core))
            await runner.setup()
            await web.TCPSite(runner, "127.0.0.1", port).start()
            stop = asyncio.Event()
            loop = asyncio.get_running_loop()
            loop.add_signal_handler(signal.SIGUSR1, profiler.enable)

            def dump() -> None:
                profiler.disable()
                profiler.dump_stats(prof)

            loop.add_signal_handler(signal.SIGUSR2, dump)
            loop.add_signal_handler(signal.SIGTERM, stop.set)
            print(f"http://127.0.0.1:{port}", flush=True)
            await stop.wait()
            await runner.cleanup()

    asyncio.run(serve())


def start_diagnostic_server(db: Path, prof: Path, preload_details: bool = False) -> Server:
    port = free_port()
    code = (
        "from bench.api import _diagnostic_server; "
        f"_diagnostic_server({str(db)!r}, {port}, {str(prof)!r}, {preload_details})"
    )
    started = time.perf_counter()
    process = subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None
    if "http://" not in process.stdout.readline():
        process.kill()
        raise RuntimeError("the diagnostic server did not start")
    return Server(process, f"http://127.0.0.1:{port}", time.perf_counter() - started)


def without_detail_query(
    db: Path, paths: Sequence[str], generator: str, seconds: float, threads: int, concurrencies: Sequence[int]
) -> list[LoadResult]:
    """Nearby with the station details already in memory: the ceiling of serving nearby with no I/O."""
    server = start_diagnostic_server(db, OUT / "api-unused.prof", preload_details=True)
    try:
        load(generator, server, "warm-up", paths, 16, min(2.0, seconds), threads)
        return [
            load(generator, server, "nearby, details in memory", paths, c, seconds, threads)
            for c in concurrencies
        ]
    finally:
        server.stop()


def profile_nearby(db: Path, paths: Sequence[str], generator: str, seconds: float, threads: int) -> str:
    """Nearby under load (c=8) with the server's request handling in cProfile: where its time goes."""
    prof = OUT / "api-server.prof"
    prof.unlink(missing_ok=True)
    server = start_diagnostic_server(db, prof)
    try:
        load(generator, server, "nearby", paths, 8, 1.0, threads)  # warm-up, unprofiled
        server.process.send_signal(signal.SIGUSR1)
        load(generator, server, "nearby", paths, 8, seconds, threads)
        server.process.send_signal(signal.SIGUSR2)
        deadline = time.monotonic() + 30
        while not prof.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        server.stop()
    stats = pstats.Stats(str(prof))
    lines: list[str] = []
    for sort in ("tottime", "cumulative"):
        buffer = io.StringIO()
        stats.stream = buffer  # type: ignore[attr-defined]
        stats.sort_stats(sort).print_stats(25)
        body = buffer.getvalue()
        start = body.find("   ncalls")
        lines.append(
            f"### server profile under nearby load (c=8), by {sort}\n```\n{body[start:].rstrip()}\n```"
        )
    return "\n\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.api", description=__doc__.split("\n", 1)[0])
    parser.add_argument("--quick", action="store_true", help="2,000 stations, short runs")
    parser.add_argument("--stations", type=int)
    parser.add_argument("--seed", type=int, default=2024)
    parser.add_argument("--duration", type=float, help="seconds per run (default 10; quick 2)")
    parser.add_argument(
        "--connections", help="comma-separated concurrencies (default 1,4,8,16,64; quick 4,16)"
    )
    parser.add_argument(
        "--threads", type=int, default=1, help="wrk threads (default 1: the machine is shared)"
    )
    parser.add_argument("--points", type=int, default=20_000, help="distinct nearby query points")
    parser.add_argument("--load", choices=["auto", "wrk", "aiohttp"], default="auto")
    parser.add_argument("--profile", action="store_true", help="also profile the server under nearby load")
    parser.add_argument("--wait-quiet", type=float, default=0.0, help="wait up to S seconds for load < 1")
    parser.add_argument("--write", type=Path, help="the Markdown section to write (default: see above)")
    args = parser.parse_args(argv)
    n = args.stations or (2000 if args.quick else TARGET_N)
    seconds = args.duration or (2.0 if args.quick else 10.0)
    concurrencies = [
        int(c) for c in (args.connections or ("4,16" if args.quick else "1,4,8,16,64")).split(",")
    ]
    generator = args.load
    if generator == "auto":
        generator = "wrk" if shutil.which("wrk") else "aiohttp"
    write = args.write or (OUT / "README-api-quick.md" if args.quick else ROOT / "bench" / "README-api.md")
    command = "python -m bench.api" + (" " + " ".join(argv if argv is not None else sys.argv[1:])).rstrip()

    print_machine("bench.api")
    print(f"stations: {n:,}; load generator: {generator}; {seconds:g} s per run; connections {concurrencies}")
    db = prepare_db(n, args.seed)
    rng = np.random.default_rng(11)
    points = station_points(db)
    near = nearby_paths(points, args.points, rng, DAY)
    endpoints = {
        "nearby": near,
        "nearby-night": nearby_paths(points, args.points, rng, NIGHT),
        "healthz": ["/healthz"],
        # No database at all: routing, middlewares and a prebuilt 15 kB body, the web stack's floor.
        "openapi.json": ["/api/v1/openapi.json"],
    }

    if args.wait_quiet:
        wait_for_quiet(args.wait_quiet)
    load_before = load_average()
    server = start_server(db)
    results: list[LoadResult] = []
    try:
        print(f"yizhan serve ready in {server.ready_s:.2f} s at {server.url}", flush=True)
        for name, paths in endpoints.items():
            load(generator, server, name, paths, 16, min(2.0, seconds), args.threads)  # warm-up
        for c in concurrencies:
            for name, paths in endpoints.items():
                print_load(f"{name} c={c}")
                result = load(generator, server, name, paths, c, seconds, args.threads)
                print(
                    f"  {name:12s} c={c:<3d} {result.rps:8,.0f} req/s  p50 {result.p50_ms:6.2f} ms  "
                    f"p99 {result.p99_ms:6.2f} ms  errors {result.errors}  server CPU "
                    f"{result.server_cpu_us:,.0f} µs/req",
                    flush=True,
                )
                results.append(result)
    finally:
        server.stop()
    load_after = load_average()

    headers = [
        "endpoint",
        "conns",
        "requests",
        "req/s",
        "p50 ms",
        "p99 ms",
        "errors",
        "server CPU µs/req",
        "threads started",
    ]

    def rows_of(found: Sequence[LoadResult]) -> list[list[object]]:
        return [
            [
                r.endpoint,
                r.connections,
                r.requests,
                r.rps,
                r.p50_ms,
                r.p99_ms,
                r.errors,
                r.server_cpu_us,
                r.threads_started,
            ]
            for r in found
        ]

    rows = rows_of(results)
    by = {(r.endpoint, r.connections): r for r in results}
    split_headers = ["endpoint", "conns", "loop user µs/req", "loop system µs/req", "other threads µs/req"]
    split_rows = [
        [r.endpoint, r.connections, r.loop_user_us, r.loop_system_us, r.other_threads_us] for r in results
    ]
    ratio_rows = []
    for c in concurrencies:
        nb, hz = by[("nearby", c)], by[("healthz", c)]
        ratio_rows.append([c, nb.rps / hz.rps, nb.p99_ms / hz.p99_ms, nb.server_cpu_us / hz.server_cpu_us])
    ratio_headers = ["conns", "req/s nearby/healthz", "p99 nearby/healthz", "CPU/req nearby/healthz"]
    meeting = [
        r for r in results if r.endpoint == "nearby" and r.rps >= TARGET_RPS and r.p99_ms <= TARGET_P99_MS
    ]
    best = max((r for r in results if r.endpoint == "nearby"), key=lambda r: r.rps)
    total_errors = sum(r.errors for r in results)
    target_lines = [
        f"- nearby ≥ {TARGET_RPS:,.0f} req/s and p99 ≤ {TARGET_P99_MS:g} ms in the same run: "
        f"{verdict(bool(meeting))}"
        + (
            f" (c={', '.join(str(r.connections) for r in meeting)})"
            if meeting
            else f" (best: {best.rps:,.0f} req/s at c={best.connections}, p99 {best.p99_ms:.2f} ms)"
        ),
        f"- errors (non-2xx or socket): {total_errors}",
    ]
    diagnosis = ""
    if args.profile or not meeting:
        in_memory = without_detail_query(
            db, near, generator, seconds, args.threads, [c for c in concurrencies if c <= 16]
        )
        total_errors += sum(r.errors for r in in_memory)
        diagnosis = "\n".join(
            [
                "### Diagnosis",
                "",
                "The same nearby load against a server whose detail look-up is always answered from memory "
                "(every station read at start, as if `StationCache` held them all; an experiment), to "
                "measure what the detail queries of cache misses cost:",
                "",
                table(headers, rows_of(in_memory)),
                "",
                profile_nearby(db, near, generator, seconds, args.threads),
            ]
        )

    source = (
        f"wrk (closed loop, {args.threads} thread)" if generator == "wrk" else "an aiohttp client process"
    )
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    section = "\n".join(
        [
            "## HTTP API v1 (`bench/api.py`)",
            "",
            f"Command: `{command}` — {n:,} stations (SQLite), `yizhan serve` (uvloop) in its own process, "
            f"load from {source}, {seconds:g} s per run after a warm-up, server and load generator "
            f"sharing the machine "
            f"(nproc={usable}). Nearby: {args.points:,} random points within ~1.3 km of random stations, "
            "k=5, at = Wednesday 10:30 Beijing time (nearby) or 03:00 (nearby-night). Server CPU per "
            "request (all threads, user+system) from /proc; threads started = new aiosqlite connections "
            "(one thread each) during the run. Load average (1/5/15 min) before the runs "
            f"{' '.join(f'{x:.2f}' for x in load_before)}, after {' '.join(f'{x:.2f}' for x in load_after)}"
            f" (above 0 before the runs: other work shared the {usable} CPUs).",
            "",
            table(headers, rows),
            "",
            "Where the server's CPU goes (event loop thread: Python request code in user time, socket and "
            "wake-up system calls in system time; other threads: SQLite work in the aiosqlite threads "
            "and their hand-offs):",
            "",
            table(split_headers, split_rows),
            "",
            "Ratios in the same run:",
            "",
            table(ratio_headers, ratio_rows),
            "",
            f"`yizhan serve` start to listening (index of {n:,} loaded): {server.ready_s:.2f} s; then "
            f"{server.warm_s:.2f} s until every station's details were in memory (the runs start after).",
            "",
            "Targets:",
            *target_lines,
        ]
    )
    if diagnosis:
        section += "\n\n" + diagnosis
    print()
    print(section)
    write.parent.mkdir(parents=True, exist_ok=True)
    write.write_text(section + "\n", encoding="utf-8")
    print(f"\nwritten to {write.relative_to(ROOT) if write.is_relative_to(ROOT) else write}")
    return 0 if total_errors == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
