"""(b) Cold start: from process start to the first answer, on SQLite files of 186,100 and 1,000,000 stations.

Per size a SQLite file is prepared once (`open_core` + `core.stations.seed(n, seed)`) and cached under
bench/out/ (its name carries the size, the seed and the alembic head, so a schema change rebuilds it).
Then, each `--runs` times, in this order:

* `python -m bot nearby 23.13 113.26 --json` with DATABASE_URL pointing at the file: wall clock from
  spawn to exit (the output is checked to be the JSON contract with results);
* `python -m bench._coldstart_probe`: the same steps inside one process with timings of import,
  engine + migration check, index load (and of it the `SpatialIndex.from_columns` build), first answer,
  and the time since spawn at which the index was ready and the first answer was computed;
* in the first `--evict-runs` (2) rounds, the probe again after evicting the database file from the page
  cache (posix_fadvise DONTNEED), so the file is read from disk (Python's own modules stay cached).

References in the same run: `python -c pass` (the interpreter alone) and `python -c "import bot.cli"`.

Run: python -m bench.coldstart [--quick] [--sizes 186100,1000000] [--runs 5]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench._common import OUT, ROOT, print_load, print_machine, table, verdict, wait_for_quiet

TARGET_READY_S = 3.0
TARGET_N = 186_100


def alembic_head() -> str:
    from alembic.script import ScriptDirectory

    from storage.db import alembic_config

    return ScriptDirectory.from_config(alembic_config()).get_current_head() or "none"


def sqlite_url(path: Path) -> str:
    return f"sqlite+aiosqlite:///{path}"


async def _seed(path: Path, n: int, seed: int) -> None:
    from bot.app import open_core
    from bot.config import Settings

    settings = Settings(database_url=sqlite_url(path), _env_file=None)  # type: ignore[call-arg]
    async with open_core(settings, load_index=False) as core:
        report = await core.stations.seed(n, seed)
        if report.inserted != n:
            raise RuntimeError(f"seeded {report.inserted} of {n} stations")


def prepare(out: Path, n: int, seed: int, rebuild: bool) -> Path:
    path = out / f"coldstart-{n}-seed{seed}-{alembic_head()}.db"
    if path.exists() and not rebuild:
        print(f"using cached {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}")
        return path
    for stale in out.glob(f"coldstart-{n}-seed{seed}-*.db"):  # made with an older schema
        if stale != path and not stale.name.endswith(".tmp.db"):
            stale.unlink(missing_ok=True)
    tmp = path.with_suffix(".tmp.db")
    for leftover in (tmp, Path(f"{tmp}-wal"), Path(f"{tmp}-shm")):
        leftover.unlink(missing_ok=True)
    started = time.perf_counter()
    asyncio.run(_seed(tmp, n, seed))
    tmp.replace(path)
    print(
        f"prepared {path.name} ({path.stat().st_size / 1e6:.0f} MB) in {time.perf_counter() - started:.0f} s"
    )
    return path


def evict(path: Path) -> bool:
    """Drop the file's pages from the page cache (clean pages only; no privileges needed)."""
    if not hasattr(os, "posix_fadvise"):
        return False
    for p in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
        if p.exists():
            fd = os.open(p, os.O_RDONLY)
            try:
                os.fsync(fd)
                os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
            finally:
                os.close(fd)
    return True


def spawn(argv: list[str], env: dict[str, str]) -> tuple[float, subprocess.CompletedProcess[str]]:
    env = {**env, "BENCH_SPAWN_NS": str(time.time_ns())}
    started = time.perf_counter()
    proc = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, check=False)
    return time.perf_counter() - started, proc


def _env(url: str | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST")}
    env["PYTHONPATH"] = str(ROOT) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    if url:
        env["DATABASE_URL"] = url
    return env


def summary(values: Sequence[float]) -> dict[str, float]:
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def reference_runs(runs: int, warm: bool = True) -> dict[str, dict[str, float]]:
    env = _env()
    out: dict[str, dict[str, float]] = {}
    for label, argv in (
        ("python -c pass", [sys.executable, "-c", "pass"]),
        ('python -c "import bot.cli"', [sys.executable, "-c", "import bot.cli"]),
    ):
        if warm:
            spawn(argv, env)  # warm the page cache for the modules
        times = []
        for _ in range(runs):
            elapsed, proc = spawn(argv, env)
            if proc.returncode != 0:
                raise RuntimeError(f"{label} failed: {proc.stderr[-2000:]}")
            times.append(elapsed)
        out[label] = summary(times)
    return out


def size_runs(path: Path, runs: int, evict_runs: int) -> dict[str, Any]:
    env = _env(sqlite_url(path))
    cli = [sys.executable, "-m", "bot", "nearby", "23.13", "113.26", "--json"]
    probe = [sys.executable, "-m", "bench._coldstart_probe"]
    cli_times: list[float] = []
    probes: list[dict[str, float]] = []
    cold_probes: list[dict[str, float]] = []
    results = 0
    for run in range(runs):
        elapsed, proc = spawn(cli, env)
        if proc.returncode != 0:
            raise RuntimeError(f"yizhan nearby failed ({proc.returncode}): {proc.stderr[-2000:]}")
        answer = json.loads(proc.stdout)
        results = len(answer["results"])
        cli_times.append(elapsed)
        for target, do_evict in ((probes, False), (cold_probes, True)):
            if do_evict and run >= evict_runs:
                continue
            if do_evict:
                evict(path)
            elapsed, proc = spawn(probe, env)
            if proc.returncode != 0:
                raise RuntimeError(f"probe failed ({proc.returncode}): {proc.stderr[-2000:]}")
            marks = json.loads(proc.stdout.strip().splitlines()[-1])
            marks["wall_s"] = elapsed
            target.append(marks)
    return {"cli": summary(cli_times), "results": results, "probe": probes, "cold_probe": cold_probes}


PROBE_FIELDS = [
    ("interpreter_s", "interpreter"),
    ("import_s", "import"),
    ("migrate_s", "engine+migrate check"),
    ("index_load_s", "index load"),
    ("index_build_s", "of it: from_columns"),
    ("first_answer_s", "first answer"),
    ("close_s", "engine dispose"),
    ("ready_since_spawn_s", "spawn → index ready"),
    ("answered_since_spawn_s", "spawn → first answer"),
    ("loop_closed_since_spawn_s", "spawn → event loop closed"),
    ("wall_s", "spawn → exit"),
]


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.coldstart", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one small size, two runs")
    parser.add_argument("--sizes", type=lambda s: [int(x) for x in s.split(",")], default=None)
    parser.add_argument("--runs", type=int, default=None)
    parser.add_argument("--seed", type=int, default=2024)
    parser.add_argument("--out", type=Path, default=OUT, help="where the SQLite files are cached")
    parser.add_argument("--rebuild", action="store_true", help="rebuild the cached SQLite files")
    parser.add_argument("--no-evict", action="store_true", help="skip the runs with the file evicted")
    parser.add_argument("--evict-runs", type=int, default=2, help="probe runs with the file evicted (2)")
    parser.add_argument("--wait-quiet", type=float, default=0.0, help="wait up to S seconds for load < 1")
    args = parser.parse_args(argv)
    args.sizes = args.sizes or ([20_000] if args.quick else [186_100, 1_000_000])
    args.runs = args.runs or (2 if args.quick else 5)
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    print_machine("bench.coldstart: process start to first answer (SQLite)")
    started = time.perf_counter()
    args.out.mkdir(parents=True, exist_ok=True)
    print("\n## preparing SQLite files")
    paths = {n: prepare(args.out, n, args.seed, args.rebuild) for n in args.sizes}
    if args.wait_quiet:
        wait_for_quiet(args.wait_quiet)
    print_load("before references")
    refs = reference_runs(args.runs, warm=not args.quick)
    per_size = {}
    for n, path in paths.items():
        print_load(f"before n={n:,}")
        per_size[n] = size_runs(path, args.runs, 0 if args.no_evict else args.evict_runs)

    print(f"\n## reference process starts (s), {args.runs} runs each")
    print(
        table(
            ["command", "median", "min", "max"],
            [[label, s["median"], s["min"], s["max"]] for label, s in refs.items()],
        )
    )
    base = refs["python -c pass"]["median"]
    print(f"\n## yizhan nearby --json, spawn → exit (s), {args.runs} runs; x = ratio to `python -c pass`")
    print(
        table(
            ["n", "db MB", "results", "median", "min", "max", "x pass"],
            [
                [
                    n,
                    paths[n].stat().st_size / 1e6,
                    r["results"],
                    r["cli"]["median"],
                    r["cli"]["min"],
                    r["cli"]["max"],
                    r["cli"]["median"] / base,
                ]
                for n, r in per_size.items()
            ],
        )
    )
    for key, title in (("probe", "page cache warm"), ("cold_probe", "database file evicted from page cache")):
        rows = []
        for n, r in per_size.items():
            if not r[key]:
                continue
            for field, label in PROBE_FIELDS:
                values = [m[field] for m in r[key]]
                rows.append([n, label, statistics.median(values), min(values), max(values)])
        if rows:
            count = max(len(r[key]) for r in per_size.values())
            print(f"\n## probe phases (s), {title}, median of {count} runs")
            print(table(["n", "phase", "median", "min", "max"], rows))

    print("\n## targets")
    if TARGET_N in per_size:
        r = per_size[TARGET_N]
        ready = statistics.median(m["ready_since_spawn_s"] for m in r["probe"])
        answered = statistics.median(m["answered_since_spawn_s"] for m in r["probe"])
        print(
            f"cold start to ready ≤ {TARGET_READY_S:.0f} s at {TARGET_N:,}: "
            f"spawn → index ready {ready:.2f} s → {verdict(ready <= TARGET_READY_S)}; "
            f"spawn → first answer {answered:.2f} s → {verdict(answered <= TARGET_READY_S)}; "
            f"whole CLI (spawn → exit) {r['cli']['median']:.2f} s → "
            f"{verdict(r['cli']['median'] <= TARGET_READY_S)}"
        )
        if r["cold_probe"]:
            cold = statistics.median(m["answered_since_spawn_s"] for m in r["cold_probe"])
            print(
                f"  with the database file evicted: spawn → first answer {cold:.2f} s → "
                f"{verdict(cold <= TARGET_READY_S)}"
            )
    else:
        print(f"(the target is at n = {TARGET_N:,}; not in this run's sizes)")
    print_load("end")
    print(f"total {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
