"""(f) A crowded server: admission control, the bot's own lane, bounded memory, slow clients.

One `yizhan serve` process (uvloop, production settings, `API_RATE_LIMIT=0`: every load comes from
127.0.0.1, so a per-client limit would refuse it all with 429s and measure nothing else) on the seeded
186,100 stations of bench.api (the same cached file). The load comes from child processes speaking raw
HTTP/1.1 over keep-alive connections (a few microseconds a request, so the client is not the bottleneck),
to 127.0.0.1 only, every loop bounded. Phases, all in the same run:

1. **baseline**: 8 connections, closed loop for `--seconds`, half `GET /api/v1/stations/nearby` (random
   points near random stations, a fixed weekday morning) and half `GET /api/v1/stations/{code}` (random
   codes); the best of two trials is the reference throughput.
2. **flood**: 2,000 connections opened first, then each sends 20 requests of the same mix back to back,
   all starting together. `hostile` clients send the next request as soon as an answer arrives, whatever
   it is; `polite` ones wait the `Retry-After` of a refusal first (what the H5 page and well-behaved
   clients do). Reported: answers by status, p50/p99 of admitted (200) and refused (503/429) answers,
   admitted throughput against the baseline.
3. **bot lane** (with `--webhook`): the same hostile flood against `yizhan run` in webhook mode (a local
   Bot API server in another process), while location updates are posted to the webhook one after the
   other; p50/p99 of an update's round trip (handled, results sent, 200 returned).
4. **geojson**: 40 readers of `/api/v1/stations.geojson` reading 16 KiB every 10 ms for `--seconds`, with
   and without gzip; the server's RSS sampled every 50 ms, growth over its RSS before.
5. **half-sent**: 3,000 connections send a request line and one header and never finish; meanwhile 8
   connections run the closed loop; then how long until the server has closed every half-sent one.

With two CPUs or more the server is pinned to one (`taskset`) and every load generator to another, so that
the generator's own work is not queued in the server's figures (the machine's other work still shares
both); `--nice -10` puts both ahead of that other work. `--h2load` adds a baseline and a hostile flood
from h2load (Debian's `nghttp2-client`, a C generator). `--flood-only` stops after the floods (and
`--compare`).

    python -m bench.overload                # 186,100 stations
    python -m bench.overload --quick        # 2,000 stations, 400 connections, short phases
    python -m bench.overload --webhook      # also phase 3
    python -m bench.overload --compare REV  # also the flood against `yizhan serve` as of git revision REV
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import multiprocessing as mp
import os
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from bench._common import OUT, ROOT, percentiles_us, print_load, print_machine, table, verdict
from bench.api import DAY, TARGET_N, free_port, nearby_paths, prepare_db, station_points

SECRET = "bench-overload-webhook-secret-0123456789"
#: With two CPUs or more, the server runs on one and the load generators on another, so that neither's
#: queueing is in the other's figures (the machine's other work still shares both).
_CPUS = sorted(os.sched_getaffinity(0))
SERVER_CPU, LOAD_CPU = (_CPUS[1], _CPUS[0]) if len(_CPUS) >= 2 else (None, None)
LOAD_PIN = ["taskset", "-c", str(LOAD_CPU)] if LOAD_CPU is not None and shutil.which("taskset") else []
#: `--nice`: the server's and the load generators' niceness (a child reads it from its arguments).
NICE = 0
REFUSED = (429, 503)
FLOOD_HEADERS = [
    "flood",
    "answers",
    "by status",
    "broken conns",
    "200 p50/p99 ms",
    "refused p50/p99 ms",
    "admitted/s",
    "× baseline",
    "s",
    "load CPU",
]


# ------------------------------------------------------------------------------------------ servers


@dataclass
class Process:
    process: subprocess.Popen[bytes]
    url: str

    @property
    def port(self) -> int:
        return int(self.url.rsplit(":", 1)[1])

    def rss_kb(self) -> int:
        try:
            for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        except OSError:
            pass
        return 0

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def wait_ready(url: str, limit_s: float = 300.0) -> None:
    """Until `/healthz` is ready and every indexed station's details are cached (the steady state)."""
    started = time.monotonic()
    while time.monotonic() - started < limit_s:
        with contextlib.suppress(OSError, ValueError):
            with urllib.request.urlopen(url + "/healthz", timeout=5) as response:
                health = json.loads(response.read())
            if health["ready"] and health["cached"] >= health["stations"]:
                return
        time.sleep(0.3)
    raise RuntimeError(f"{url} did not get ready in {limit_s:.0f} s")


def start(argv: Sequence[str], db: Path, port: int | None = None, root: Path = ROOT, **env: str) -> Process:
    """`python -m bot ARGV` from the code at `root` (this checkout, or an older one to compare with)."""
    port = port or free_port()
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST", "REDIS_URL"))}
    environ.update(
        DATABASE_URL=f"sqlite+aiosqlite:///{db}",
        PYTHONPATH=str(root),
        LANGUAGE="en",
        API_RATE_LIMIT="0",
        **env,
    )
    full = [sys.executable, "-m", "bot", *argv, "--host", "127.0.0.1", "--port", str(port)]
    # The server's log goes to a file: the bot logs every update it handles.
    OUT.mkdir(parents=True, exist_ok=True)
    if SERVER_CPU is not None:
        full = ["taskset", "-c", str(SERVER_CPU), *full]
    if NICE:
        full = ["nice", "-n", str(NICE), *full]
    with open(OUT / f"overload-{argv[0]}.log", "ab") as log:
        process = subprocess.Popen(full, cwd=root, env=environ, stdout=subprocess.DEVNULL, stderr=log)
    server = Process(process, f"http://127.0.0.1:{port}")
    try:
        wait_ready(server.url)
    except BaseException:
        server.stop()
        raise
    return server


def _local_bot_api(conn: Any) -> None:
    from localapi import LocalBotAPI

    async def serve() -> None:
        api = LocalBotAPI()
        url = await api.start()
        conn.send((url, api.token))
        await asyncio.Event().wait()

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve())


# ------------------------------------------------------------------------------------------ load


@dataclass
class Answers:
    """Per answer: status and latency (ns); `seconds` from the start signal to the last answer."""

    statuses: list[int] = field(default_factory=list)
    latencies_ns: list[int] = field(default_factory=list)
    seconds: float = 0.0
    failures: int = 0  # connections that broke (reset, closed) before their requests were done
    #: Share of one CPU the load generator used meanwhile (near 1: its own queueing is in the latencies).
    load_cpu: float = float("nan")

    def of(self, wanted: Sequence[int]) -> list[int]:
        return [ns for status, ns in zip(self.statuses, self.latencies_ns, strict=True) if status in wanted]


async def _exchange(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes
) -> tuple[int, dict[str, str]]:
    writer.write(request)
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    headers = {}
    for line in lines[1:]:
        if ":" in line:
            name, value = line.split(":", 1)
            headers[name.strip().lower()] = value.strip()
    await reader.readexactly(int(headers.get("content-length", "0")))
    return status, headers


def _request(path: str, extra: str = "") -> bytes:
    return f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{extra}\r\n".encode()


async def _open(port: int, count: int) -> list[tuple[asyncio.StreamReader, asyncio.StreamWriter]]:
    # At most 100 connecting at once: the listen backlog is aiohttp's default (128).
    gate = asyncio.Semaphore(100)

    async def one() -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        async with gate:
            return await asyncio.open_connection("127.0.0.1", port, limit=1 << 20)

    return list(await asyncio.gather(*(one() for _ in range(count))))


class _Client(asyncio.Protocol):
    """One keep-alive connection sending its requests one after the other and parsing the answers as they
    arrive. A protocol, not asyncio's streams: a few microseconds of the generator's CPU an answer instead
    of tens, so that under a flood the generator's own queueing stays out of the latencies it measures
    (the `load CPU` column says how busy it was)."""

    def __init__(
        self,
        requests: list[bytes],
        answers: Answers,
        polite: bool,
        deadline: float | None,
        done: asyncio.Future[None],
    ) -> None:
        self.requests, self.answers, self.polite, self.deadline, self.done = (
            requests,
            answers,
            polite,
            deadline,
            done,
        )
        self.loop = asyncio.get_running_loop()
        self.transport: asyncio.Transport | None = None
        self.buffer = b""
        self.sent = 0
        self.started = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def send(self) -> None:
        assert self.transport is not None
        finished = (
            self.sent == len(self.requests) if self.deadline is None else time.perf_counter() >= self.deadline
        )
        if finished or self.transport.is_closing():
            self.transport.close()
            return
        self.started = time.perf_counter_ns()
        self.transport.write(self.requests[self.sent % len(self.requests)])
        self.sent += 1

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        end = self.buffer.find(b"\r\n\r\n")
        if end < 0:
            return
        head = self.buffer[:end].lower()
        at = head.find(b"\r\ncontent-length:")
        length = int(head[at + 17 : head.find(b"\r", at + 2)]) if at >= 0 else 0
        if len(self.buffer) < end + 4 + length:
            return
        self.buffer = self.buffer[end + 4 + length :]
        status = int(head[9:12])
        self.answers.latencies_ns.append(time.perf_counter_ns() - self.started)
        self.answers.statuses.append(status)
        if self.polite and status in REFUSED:
            at = head.find(b"\r\nretry-after:")
            wait = float(head[at + 14 : head.find(b"\r", at + 2)]) if at >= 0 else 1.0
            self.loop.call_later(wait, self.send)
        else:
            self.send()

    def connection_lost(self, exc: Exception | None) -> None:
        finished = (
            self.sent == len(self.requests) if self.deadline is None else time.perf_counter() >= self.deadline
        )
        if not finished or self.buffer:
            self.answers.failures += 1
        if not self.done.done():
            self.done.set_result(None)


async def _clients(
    port: int, paths: list[str], connections: int, polite: bool, per_connection: int = 0, seconds: float = 0.0
) -> Answers:
    """`connections` clients, opened first, then started together: `per_connection` requests each, or a
    closed loop for `seconds`. Each connection's paths are drawn from `paths` with its own seed."""
    loop = asyncio.get_running_loop()
    answers = Answers()
    gate = asyncio.Semaphore(100)  # at most 100 connecting at once

    async def open_one(n: int) -> tuple[_Client, asyncio.Future[None]]:
        rng = random.Random(n)
        count = per_connection or 4096
        requests = [_request(paths[rng.randrange(len(paths))]) for _ in range(count)]
        done: asyncio.Future[None] = loop.create_future()
        async with gate:
            _, client = await loop.create_connection(
                lambda: _Client(requests, answers, polite, None, done), "127.0.0.1", port
            )
        return client, done

    opened = await asyncio.gather(*(open_one(n) for n in range(connections)))
    await asyncio.sleep(0.2)
    started, cpu = time.perf_counter(), time.process_time()
    for client, _ in opened:
        if seconds:
            client.deadline = started + seconds
        client.send()
    await asyncio.gather(*(done for _, done in opened))
    answers.seconds = time.perf_counter() - started
    answers.load_cpu = (time.process_time() - cpu) / answers.seconds
    return answers


async def _flood(port: int, paths: list[str], connections: int, per_connection: int, polite: bool) -> Answers:
    return await _clients(port, paths, connections, polite, per_connection=per_connection)


async def _closed_loop(port: int, paths: list[str], connections: int, seconds: float) -> Answers:
    return await _clients(port, paths, connections, False, seconds=seconds)


async def _bot_updates(port: int, path: str, count: int, gap_s: float, points: np.ndarray) -> Answers:
    """Location updates posted to the webhook one after the other (like Telegram does per bot)."""
    ((reader, writer),) = await _open(port, 1)
    answers = Answers()
    rng = np.random.default_rng(7)
    started = time.perf_counter()
    for n in range(count):
        lat, lon = points[rng.integers(len(points))] + rng.uniform(-0.01, 0.01, 2)
        user = 10_000 + n % 50
        update = {
            "update_id": 1_000_000 + n,
            "message": {
                "message_id": n + 1,
                "date": int(time.time()),
                "chat": {"id": user, "type": "private"},
                "from": {"id": user, "is_bot": False, "first_name": "r", "language_code": "zh-hans"},
                "location": {"latitude": round(float(lat), 6), "longitude": round(float(lon), 6)},
            },
        }
        body = json.dumps(update).encode()
        request = (
            f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            f"X-Telegram-Bot-Api-Secret-Token: {SECRET}\r\nContent-Length: {len(body)}\r\n\r\n"
        ).encode() + body
        sent = time.perf_counter_ns()
        status, _ = await _exchange(reader, writer, request)
        answers.latencies_ns.append(time.perf_counter_ns() - sent)
        answers.statuses.append(status)
        await asyncio.sleep(gap_s)
    answers.seconds = time.perf_counter() - started
    writer.close()
    return answers


async def _geojson_readers(port: int, readers: int, gzipped: bool, seconds: float) -> int:
    """Bytes read by `readers` slow readers in `seconds` (each: 16 KiB every 10 ms, then hangs up)."""
    streams = await _open(port, readers)
    extra = "Accept-Encoding: gzip\r\n" if gzipped else "Accept-Encoding: identity\r\n"
    total = 0
    deadline = time.perf_counter() + seconds

    async def reader_task(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal total
        writer.write(_request("/api/v1/stations.geojson", extra))
        await reader.readuntil(b"\r\n\r\n")
        while time.perf_counter() < deadline:
            chunk = await reader.read(16 * 1024)
            if not chunk:
                break
            total += len(chunk)
            await asyncio.sleep(0.01)
        writer.close()

    await asyncio.gather(*(reader_task(r, w) for r, w in streams))
    return total


async def _half_sent(
    port: int, count: int, paths: list[str], seconds: float, limit_s: float
) -> dict[str, Any]:
    streams = await _open(port, count)
    sent = time.perf_counter()
    for _reader, writer in streams:
        writer.write(b"GET /api/v1/stations/nearby?lat=23.13&lon=113.26 HTTP/1.1\r\nHost: 127.0.0.1\r\n")
    normal = await _closed_loop(port, paths, 8, seconds)
    closed_at: list[float] = []

    async def wait_closed(reader: asyncio.StreamReader) -> None:
        with contextlib.suppress(OSError):
            while await reader.read(4096):
                pass
        closed_at.append(time.perf_counter() - sent)

    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(limit_s):
            await asyncio.gather(*(wait_closed(r) for r, _ in streams))
    for _, writer in streams:
        writer.close()
    return {"normal": normal, "closed": len(closed_at), "last_closed_s": max(closed_at, default=float("nan"))}


def h2load(
    port: int, paths: list[str], connections: int, *, requests: int = 0, seconds: float = 0
) -> Answers:
    """The same closed loop from h2load (nghttp2's load generator, C: a microsecond or two an answer where
    the Python client spends tens), on the load generator's CPU. Every connection walks `paths` in order
    (h2load's `-i`), half searches and half stations by code; `requests` in all, or for `seconds`. Each
    answer's status and latency come from its per-request log; a connection the server closed is opened
    again for the requests left, and its connect time is part of the next answer's latency."""
    with tempfile.TemporaryDirectory() as tmp:
        uris = Path(tmp) / "uris.txt"
        uris.write_text("".join(f"http://127.0.0.1:{port}{path}\n" for path in paths))
        log = Path(tmp) / "log.tsv"
        command = [
            *(["nice", "-n", str(NICE)] if NICE else []),
            *LOAD_PIN,
            "h2load",
            "--h1",
            "-c",
            str(connections),
            "-i",
            str(uris),
            f"--log-file={log}",
        ]
        command += ["-n", str(requests)] if requests else ["-D", f"{seconds:g}"]
        # 2,000 connections need as many descriptors and a little more.
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        rows = [line.split("\t") for line in log.read_text().splitlines() if line.strip()]
    answers = Answers()
    if not rows:
        raise RuntimeError(f"h2load answered nothing: {done.stdout[-2000:]} {done.stderr[-2000:]}")
    first_start = min(int(row[0]) for row in rows)
    last_end = max(int(row[0]) + int(row[2]) for row in rows)
    for row in rows:
        answers.statuses.append(int(row[1]))
        answers.latencies_ns.append(int(row[2]) * 1000)
    answers.seconds = (last_end - first_start) / 1e6
    for line in done.stdout.splitlines():
        if line.startswith("requests:"):
            # "requests: N total, N started, N done, N succeeded, N failed, N errored, N timeout"
            numbers = [int(part.split()[0]) for part in line.split(":", 1)[1].split(",")]
            answers.failures = numbers[5]
    return answers


def _child(job: tuple[str, tuple[Any, ...], int], conn: Any) -> None:
    import uvloop

    if LOAD_CPU is not None:
        os.sched_setaffinity(0, {LOAD_CPU})
    name, args, niceness = job
    if niceness:
        os.nice(niceness)

    function = {
        "flood": _flood,
        "closed_loop": _closed_loop,
        "bot_updates": _bot_updates,
        "geojson": _geojson_readers,
        "half_sent": _half_sent,
    }[name]
    conn.send(uvloop.run(function(*args)))


def in_child(name: str, *args: Any, ahead: int = 0) -> Any:
    """Run a load function in a process of its own (its own CPU and file descriptors) and return its result;
    `ahead`: niceness steps ahead of the other load generators on the same CPU."""
    parent, child = mp.Pipe(duplex=False)
    process = mp.get_context("spawn").Process(target=_child, args=((name, args, NICE - ahead), child))
    process.start()
    result = parent.recv()
    process.join()
    return result


def start_child(name: str, *args: Any) -> tuple[Any, Any]:
    parent, child = mp.Pipe(duplex=False)
    process = mp.get_context("spawn").Process(target=_child, args=((name, args, NICE), child))
    process.start()
    return process, parent


# ------------------------------------------------------------------------------------------ report


def ms(values: Sequence[int], key: str) -> float:
    return percentiles_us(values)[key] / 1e3 if values else float("nan")


def flood_row(label: str, answers: Answers, best_rps: float) -> list[object]:
    ok = answers.of((200,))
    refused = answers.of(REFUSED)
    counts = {status: answers.statuses.count(status) for status in sorted(set(answers.statuses))}
    admitted_rps = len(ok) / answers.seconds if answers.seconds else float("nan")
    return [
        label,
        len(answers.statuses),
        " ".join(f"{s}:{c}" for s, c in counts.items()),
        answers.failures,
        f"{ms(ok, 'p50'):.1f} / {ms(ok, 'p99'):.1f}",
        f"{ms(refused, 'p50'):.1f} / {ms(refused, 'p99'):.1f}",
        f"{admitted_rps:.0f}",
        f"{admitted_rps / best_rps:.2f}",
        f"{answers.seconds:.1f}",
        f"{answers.load_cpu:.0%}",
    ]


class Report(list[str]):
    """The report's sections, each printed as soon as it is measured (a later phase may fail)."""

    def append(self, section: str) -> None:
        print(section, flush=True)
        super().append(section)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true")
    parser.add_argument(
        "--webhook", action="store_true", help="also the bot-lane phase (yizhan run, webhook)"
    )
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--connections", type=int, default=2000)
    parser.add_argument("--half-sent", type=int, default=3000)
    parser.add_argument("--seed", type=int, default=2024)
    parser.add_argument(
        "--compare", metavar="REV", help="also flood `yizhan serve` as of git revision REV (the code before)"
    )
    parser.add_argument(
        "--nice",
        type=int,
        default=0,
        help="niceness of the server and the load generators (negative: ahead of the machine's other work)",
    )
    parser.add_argument("--flood-only", action="store_true", help="only the baselines and the floods")
    parser.add_argument(
        "--h2load",
        action="store_true",
        help="also a baseline and a hostile flood from h2load (Debian's nghttp2-client)",
    )
    args = parser.parse_args(argv)
    global NICE
    NICE = args.nice
    n = 2000 if args.quick else TARGET_N
    connections = 400 if args.quick else args.connections
    half_sent = 300 if args.quick else args.half_sent
    seconds = 2.0 if args.quick else args.seconds
    print_machine("bench.overload")
    # The same loop on the server's CPU: how fast the (shared, virtual) machine is during this run; runs
    # on different days compare only as far as this figure does.
    probe = subprocess.run(
        [
            *(["taskset", "-c", str(SERVER_CPU)] if SERVER_CPU is not None else []),
            sys.executable,
            "-m",
            "timeit",
            "sum(range(10000))",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    print(f"CPU probe on the server's CPU: {probe.stdout.strip()}", flush=True)
    print(f"file descriptors: {os.sysconf('SC_OPEN_MAX')}", flush=True)
    print_load("before")
    db = prepare_db(n, args.seed)
    rng = np.random.default_rng(args.seed)
    points = station_points(db)
    with contextlib.closing(sqlite3.connect(db)) as conn:
        codes = [row[0] for row in conn.execute("SELECT code FROM stations WHERE status = 'active'")]
    searches = nearby_paths(points, 5000, rng, DAY)
    by_code = [f"/api/v1/stations/{c}" for c in rng.choice(codes, 5000)]
    paths = searches + by_code
    # h2load's connections all walk one list: alternating, each makes as many searches as look-ups.
    walked = [path for pair in zip(searches, by_code, strict=True) for path in pair]
    report = Report()
    report.append(
        f"{n:,} stations, one `yizhan serve` process; load from child processes on 127.0.0.1"
        + (
            f"; server on CPU {SERVER_CPU}, load generators on CPU {LOAD_CPU}"
            if SERVER_CPU is not None
            else ""
        )
        + (f"; both at nice {args.nice}" if args.nice else "")
        + "."
    )

    server = start(["serve"], db)
    try:
        # 1. baseline, per load generator (a flood is compared with the baseline of its own generator)
        generators = ["h2load", "Python"] if args.h2load and shutil.which("h2load") else ["Python"]
        baselines: dict[str, float] = {}
        for generator in generators:
            if generator == "h2load":
                trials = [h2load(server.port, walked, 8, seconds=seconds) for _ in range(2)]
            else:
                trials = [in_child("closed_loop", server.port, paths, 8, seconds) for _ in range(2)]
            best = max(trials, key=lambda a: len(a.statuses) / a.seconds)
            baselines[generator] = len(best.statuses) / best.seconds
            report.append(
                f"\nbaseline ({generator}), 8 connections, {seconds:.0f} s (best of 2): "
                f"{baselines[generator]:.0f} requests/s, p50 {ms(best.latencies_ns, 'p50'):.2f} ms, "
                f"p99 {ms(best.latencies_ns, 'p99'):.2f} ms, non-200: {sum(s != 200 for s in best.statuses)}"
            )
        # 2. flood
        rows = []
        floods: dict[str, tuple[Answers, float]] = {}
        for generator in generators:
            if generator == "h2load":
                floods["hostile, h2load"] = (
                    h2load(server.port, walked, connections, requests=connections * 20),
                    baselines[generator],
                )
                continue
            for label, polite in (("hostile", False), ("polite", True)):
                floods[f"{label}, Python"] = (
                    in_child("flood", server.port, paths, connections, 20, polite),
                    baselines[generator],
                )
        for label, (answers, base_rps) in floods.items():
            rows.append(flood_row(f"{label}, {connections} × 20", answers, base_rps))
        report.append("\n" + table(FLOOD_HEADERS, rows))
        targets = [("zero 500s (every flood)", all(500 not in f.statuses for f, _ in floods.values()))]
        for label, (answers, base_rps) in floods.items():
            refused = answers.of(REFUSED)
            ok = answers.of((200,))
            targets += [
                (f"refusals p99 ≤ 50 ms ({label})", ms(refused, "p99") <= 50),
                (f"admitted p99 ≤ 50 ms ({label})", ms(ok, "p99") <= 50),
                (
                    f"admitted throughput ≥ 0.8 × baseline ({label})",
                    len(ok) / answers.seconds >= 0.8 * base_rps,
                ),
            ]
        if not args.flood_only:
            # 4. geojson readers
            with urllib.request.urlopen(
                urllib.request.Request(
                    server.url + "/api/v1/stations.geojson", headers={"Accept-Encoding": "gzip"}
                ),
                timeout=300,
            ) as response:
                response.read()  # the document is built once per version: not part of what readers cost
            geo_rows = []
            for gzipped in (True, False):
                time.sleep(1.0)
                before_kb = server.rss_kb()
                process, pipe = start_child("geojson", server.port, 40, gzipped, seconds * 2)
                peak_kb = before_kb
                while not pipe.poll(0.05):
                    peak_kb = max(peak_kb, server.rss_kb())
                total = pipe.recv()
                process.join()
                growth_mb = (peak_kb - before_kb) / 1024
                geo_rows.append(
                    [
                        "gzip" if gzipped else "identity",
                        40,
                        f"{before_kb / 1024:.0f}",
                        f"{peak_kb / 1024:.0f}",
                        f"{growth_mb:.0f}",
                        f"{total / 1e6:.0f}",
                    ]
                )
                targets.append(
                    (f"geojson {'gzip' if gzipped else 'identity'}: RSS growth ≤ 300 MB", growth_mb <= 300)
                )
            report.append(
                "\n"
                + table(
                    ["geojson", "readers", "RSS before MB", "RSS peak MB", "growth MB", "MB read"], geo_rows
                )
            )
            # 5. half-sent requests (HTTP_HEADER_TIMEOUT is 10 s by default)
            half = in_child("half_sent", server.port, half_sent, paths, seconds, 30.0)
            normal = half["normal"]
            report.append(
                f"\nhalf-sent: {half_sent} connections held; meanwhile 8 connections: "
                f"{len(normal.statuses) / normal.seconds:.0f} requests/s, p50 {ms(normal.latencies_ns, 'p50'):.2f} ms, "
                f"p99 {ms(normal.latencies_ns, 'p99'):.2f} ms; {half['closed']} of {half_sent} closed by the server, "
                f"the last {half['last_closed_s']:.1f} s after it was sent"
            )
            targets.append(("half-sent: normal p99 ≤ 10 ms", ms(normal.latencies_ns, "p99") <= 10))
            targets.append(
                (
                    "half-sent: all closed within 10 s (+1 s)",
                    half["closed"] == half_sent and half["last_closed_s"] <= 11,
                )
            )
    finally:
        server.stop()

    if args.webhook and not args.flood_only:
        # 3. Telegram's updates during a flood, webhook mode
        parent, child = mp.Pipe(duplex=False)
        api = mp.get_context("spawn").Process(target=_local_bot_api, args=(child,), daemon=True)
        api.start()
        if not parent.poll(60):
            raise RuntimeError("the local Bot API server did not start")
        api_url, token = parent.recv()
        port_hint = free_port()
        hook = "/webhook"
        bot: Process | None = None
        try:
            bot = start(
                ["run"],
                db,
                port_hint,
                BOT_TOKEN=token,
                TELEGRAM_API_URL=api_url,
                WEBHOOK_URL=f"http://127.0.0.1:{port_hint}{hook}",
                WEBHOOK_SECRET=SECRET,
            )
            # The updates' client stands in for Telegram, which is on another machine: it shares the load
            # CPU with the flood's generator, so it runs ahead of it, or its own wait for that CPU would
            # be counted as the bot's.
            quiet = in_child("bot_updates", bot.port, hook, 200, 0.01, points, ahead=5)
            process, pipe = start_child("flood", bot.port, paths, connections, 20, False)
            time.sleep(1.0)  # connections open, flood under way
            during = in_child("bot_updates", bot.port, hook, 200, 0.01, points, ahead=5)
            flood = pipe.recv()
            process.join()
            report.append(
                "\n"
                + table(
                    ["bot updates (webhook)", "updates", "non-200", "p50 ms", "p99 ms"],
                    [
                        [
                            "alone",
                            len(quiet.statuses),
                            sum(s != 200 for s in quiet.statuses),
                            f"{ms(quiet.latencies_ns, 'p50'):.1f}",
                            f"{ms(quiet.latencies_ns, 'p99'):.1f}",
                        ],
                        [
                            f"during a hostile flood ({connections} × 20)",
                            len(during.statuses),
                            sum(s != 200 for s in during.statuses),
                            f"{ms(during.latencies_ns, 'p50'):.1f}",
                            f"{ms(during.latencies_ns, 'p99'):.1f}",
                        ],
                    ],
                )
            )
            report.append(
                "\n"
                + table(
                    ["flood during the updates", *FLOOD_HEADERS[1:]],
                    [flood_row("hostile", flood, baselines["Python"])],
                )
            )
            targets.append(
                ("bot updates during the flood: p99 ≤ 50 ms", ms(during.latencies_ns, "p99") <= 50)
            )
        finally:
            if bot is not None:
                bot.stop()
            api.terminate()

    if args.compare:
        # The same hostile flood against the code of REV, from a temporary worktree, same database.
        before = OUT / "overload-before"
        subprocess.run(["git", "worktree", "remove", "--force", str(before)], cwd=ROOT, capture_output=True)
        subprocess.run(
            ["git", "worktree", "add", "--detach", str(before), args.compare], cwd=ROOT, check=True
        )
        old: Process | None = None
        try:
            # A copy of the data as it was: the older code may not know this checkout's migrations, nor
            # this one the older's.
            old_db = OUT / "overload-before.db"
            shutil.copyfile(prepare_db(n, args.seed), old_db)
            old = start(["serve"], old_db, root=before)
            trials = [in_child("closed_loop", old.port, paths, 8, seconds) for _ in range(2)]
            old_best = max(len(a.statuses) / a.seconds for a in trials)
            old_flood = in_child("flood", old.port, paths, connections, 20, False)
            report.append(
                f"\nthe same as of {args.compare}: baseline {old_best:.0f} requests/s\n\n"
                + table(FLOOD_HEADERS, [flood_row(f"hostile, {connections} × 20", old_flood, old_best)])
            )
        finally:
            if old is not None:
                old.stop()
            subprocess.run(
                ["git", "worktree", "remove", "--force", str(before)], cwd=ROOT, capture_output=True
            )

    return finish(report, targets, args.quick)


def finish(report: Report, targets: list[tuple[str, bool]], quick: bool) -> int:
    report.append("\n" + table(["target", "result"], [[name, verdict(ok)] for name, ok in targets]))
    text = "\n".join(report)
    print_load("after")
    out = OUT / ("README-overload-quick.md" if quick else "README-overload-last.md")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
