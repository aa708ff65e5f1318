"""(g) Administrative regions: index load, look-ups, the import's cost of deriving regions, and seeding.

1. Load: `RegionIndex.load` of the cached index file (median of 7, in this process), and a fresh process's
   `import storage.regions` + load, against `python -c pass` (median of 5 each).
2. Look-ups: the 186,100 positions of the national set, (a) as one vectorised batch, per point, after a
   first batch has decoded the polygons it needs (median of 7), and (b) one point at a time (2,000 points,
   p50 and p99), the way a subscription asks.
3. Import: the same 186,100-row CSV as `bench.importing` (`prepare_csv`), imported into a fresh SQLite
   file with region derivation and with `derive_regions` replaced by a pass-through (the import as it was
   before regions), interleaved A B A B; medians and their ratio. And `derive_regions` alone over the
   parsed rows (median of 3, a freshly loaded index each time), the part the two imports differ by.
4. Seeding: `generate_stations(186100, 2024)` (median of 3; the same list every time), and
   `StationService.seed` into a fresh SQLite file (generation, comparison and write).

Run: python -m bench.regions [--rows 186100] [--no-import]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from bench._common import OUT, ROOT, print_load, print_machine, table, verdict

TARGET_LOOKUP_US = 20.0
TARGET_LOAD_S = 0.3
TARGET_IMPORT_RATIO = 1.20
TARGET_SEED_S = 15.0


def _median_s(fn, runs: int) -> tuple[float, list[float]]:  # type: ignore[no-untyped-def]
    times = []
    for _ in range(runs):
        gc.collect()
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times), times


def bench_load() -> dict[str, float]:
    from storage.regions import RegionIndex, RegionLookup, _cache_path, boundaries_version, default_cache_dir

    RegionLookup().index()  # builds the cache file if this machine has none
    path = _cache_path(default_cache_dir(), boundaries_version())
    load_s, _ = _median_s(lambda: RegionIndex.load(path), 7)
    code = (
        "from storage.regions import RegionIndex, _cache_path, boundaries_version, default_cache_dir;"
        "RegionIndex.load(_cache_path(default_cache_dir(), boundaries_version()))"
    )

    def spawn(source: str) -> float:
        started = time.perf_counter()
        subprocess.run([sys.executable, "-c", source], check=True, cwd=ROOT)
        return time.perf_counter() - started

    process = statistics.median(spawn(code) for _ in range(5))
    floor = statistics.median(spawn("import numpy") for _ in range(5))
    print(
        f"index file {path.stat().st_size / 1e6:.1f} MB; load {load_s * 1000:.1f} ms (median of 7); fresh "
        f"process import + load {process:.2f} s against `import numpy` {floor:.2f} s"
    )
    return {"load": load_s, "process": process, "floor": floor}


def bench_lookups(lat: np.ndarray, lon: np.ndarray) -> dict[str, float]:
    from storage.regions import RegionLookup

    index = RegionLookup().index()
    started = time.perf_counter()
    first = index.lookup_many(lat, lon)
    cold = time.perf_counter() - started
    batch_s, _ = _median_s(lambda: index.lookup_many(lat, lon), 7)
    assert (index.lookup_many(lat, lon) == first).all()
    rng = np.random.default_rng(1)
    pick = rng.choice(len(lat), size=2000, replace=False)
    ns = []
    for i in pick.tolist():
        a, b = float(lat[i]), float(lon[i])
        started_ns = time.perf_counter_ns()
        index.lookup(a, b)
        ns.append(time.perf_counter_ns() - started_ns)
    single = np.array(ns) / 1000
    out = {
        "cold_batch_s": cold,
        "batch_us": batch_s / len(lat) * 1e6,
        "single_p50_us": float(np.percentile(single, 50)),
        "single_p99_us": float(np.percentile(single, 99)),
        "found": float((first >= 0).mean()),
    }
    print(
        f"look-ups: first batch (decodes polygons) {cold:.2f} s; warm batch {out['batch_us']:.2f} µs/point "
        f"(median of 7 over {len(lat):,}); one at a time p50 {out['single_p50_us']:.0f} µs, p99 "
        f"{out['single_p99_us']:.0f} µs; {out['found']:.4%} found"
    )
    return out


async def _import_once(url: str, csv_path: Path, derive: bool) -> float:
    import bot.services.stations as stations_mod
    from bot.app import open_core
    from bot.config import Settings
    from bot.services.regions import RegionCheck

    saved = stations_mod.derive_regions
    if not derive:

        def pass_through(records, rows, index, unit="row", strict=False):  # type: ignore[no-untyped-def]
            return RegionCheck(list(records), list(rows))

        stations_mod.derive_regions = pass_through  # type: ignore[assignment]
    try:
        settings = Settings(database_url=url, _env_file=None)  # type: ignore[call-arg]
        async with open_core(settings, load_index=False) as core:
            core.stations.regions.index()  # loaded before the clock starts, as the CLI's first use would
            gc.collect()
            started = time.perf_counter()
            report = await core.stations.import_file(csv_path)
            elapsed = time.perf_counter() - started
            assert report.rejected == 0 and report.inserted > 0, report
    finally:
        stations_mod.derive_regions = saved
    return elapsed


def bench_derive(csv_path: Path) -> float:
    """`derive_regions` alone over the parsed file, with a freshly loaded index each time (its polygons
    decoded again, as in a new import process)."""
    from bot.services.regions import derive_regions
    from storage.importers import parse_station_file
    from storage.regions import RegionIndex, _cache_path, boundaries_version, default_cache_dir

    parsed = parse_station_file(csv_path)
    path = _cache_path(default_cache_dir(), boundaries_version())
    times = []
    for _ in range(3):
        index = RegionIndex.load(path)
        gc.collect()
        started = time.perf_counter()
        check = derive_regions(parsed.records, parsed.rows, index)
        times.append(time.perf_counter() - started)
        assert not check.errors and len(check.records) == len(parsed.records)
    derive_s = statistics.median(times)
    print(
        f"derive_regions alone over {len(parsed.records):,} records: {derive_s:.2f} s (median of 3: "
        f"{', '.join(f'{t:.2f}' for t in times)}), {derive_s / len(parsed.records) * 1e6:.1f} µs/record"
    )
    return derive_s


def bench_import(out: Path, csv_path: Path, rounds: int) -> dict[str, float]:
    times: dict[str, list[float]] = {"with regions": [], "without": []}
    for n in range(rounds):
        for label, derive in (("with regions", True), ("without", False)):
            db = out / f"regions-bench-{os.getpid()}.db"
            files = [db, Path(f"{db}-wal"), Path(f"{db}-shm")]
            for f in files:
                f.unlink(missing_ok=True)
            try:
                elapsed = asyncio.run(_import_once(f"sqlite+aiosqlite:///{db}", csv_path, derive))
            finally:
                for f in files:
                    f.unlink(missing_ok=True)
            times[label].append(elapsed)
            print(f"  round {n + 1} {label}: {elapsed:.2f} s", flush=True)
    with_s, without_s = statistics.median(times["with regions"]), statistics.median(times["without"])
    print(f"import: with regions {with_s:.2f} s, without {without_s:.2f} s, ratio {with_s / without_s:.3f}")
    return {"with": with_s, "without": without_s, "ratio": with_s / without_s}


def bench_seed(out: Path, rows: int) -> dict[str, float]:
    from storage.regions import RegionLookup
    from storage.seed import generate_stations

    regions = RegionLookup().index()
    lists = []

    def generate() -> None:
        lists.append(generate_stations(rows, 2024, regions=regions))

    gen_s, runs = _median_s(generate, 3)
    same = all(other == lists[0] for other in lists[1:])
    del lists[:]

    async def seed_command() -> float:
        from bot.app import open_core
        from bot.config import Settings

        db = out / f"regions-seed-{os.getpid()}.db"
        settings = Settings(database_url=f"sqlite+aiosqlite:///{db}", _env_file=None)  # type: ignore[call-arg]
        try:
            async with open_core(settings, load_index=False) as core:
                core.stations.regions.index()
                started = time.perf_counter()
                report = await core.stations.seed(rows, 2024)
                elapsed = time.perf_counter() - started
                assert report.inserted == rows
        finally:
            for f in (db, Path(f"{db}-wal"), Path(f"{db}-shm")):
                f.unlink(missing_ok=True)
        return elapsed

    seed_s = asyncio.run(seed_command())
    print(
        f"seeding: generate_stations({rows:,}) {gen_s:.2f} s (median of 3: "
        f"{', '.join(f'{t:.2f}' for t in runs)}), identical lists: {same}; StationService.seed into a fresh "
        f"SQLite file {seed_s:.2f} s"
    )
    return {"generate": gen_s, "seed": seed_s, "same": float(same)}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.regions", description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=186_100)
    parser.add_argument("--rounds", type=int, default=2, help="A/B rounds of the import")
    parser.add_argument("--no-import", action="store_true")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    print_machine(f"bench.regions: {args.rows:,} positions")

    from bench.importing import prepare_csv
    from storage.importers import parse_station_file

    csv_path = prepare_csv(args.out, args.rows, 2024)
    parsed = parse_station_file(csv_path)
    lat = np.array([r.lat for r in parsed.records])
    lon = np.array([r.lon for r in parsed.records])
    del parsed

    print_load("before load")
    load = bench_load()
    print_load("before look-ups")
    lookups = bench_lookups(lat, lon)
    imported = None
    if not args.no_import:
        print_load("before derive")
        derive_s = bench_derive(csv_path)
        print_load("before import")
        imported = bench_import(args.out, csv_path, args.rounds)
        imported["derive"] = derive_s
    print_load("before seeding")
    seeding = bench_seed(args.out, args.rows)
    print_load("end")

    rows = [
        [
            "index load (in process)",
            f"{load['load'] * 1000:.1f} ms",
            f"≤ {TARGET_LOAD_S * 1000:.0f} ms",
            verdict(load["load"] <= TARGET_LOAD_S),
        ],
        [
            "look-up, batched, per point",
            f"{lookups['batch_us']:.2f} µs",
            f"≤ {TARGET_LOOKUP_US:.0f} µs",
            verdict(lookups["batch_us"] <= TARGET_LOOKUP_US),
        ],
        ["look-up, one point, p50", f"{lookups['single_p50_us']:.0f} µs", "–", ""],
    ]
    if imported:
        rows.append(
            [
                "import with / without regions",
                f"{imported['with']:.2f} / {imported['without']:.2f} s = {imported['ratio']:.3f}",
                f"≤ {TARGET_IMPORT_RATIO:.2f}",
                verdict(imported["ratio"] <= TARGET_IMPORT_RATIO),
            ]
        )
    rows.append(
        [
            f"generate_stations({args.rows:,})",
            f"{seeding['generate']:.2f} s",
            f"≤ {TARGET_SEED_S:.0f} s",
            verdict(seeding["generate"] <= TARGET_SEED_S and bool(seeding["same"])),
        ]
    )
    rows.append([f"stations seed {args.rows:,} (SQLite)", f"{seeding['seed']:.2f} s", "–", ""])
    print(table(["measure", "value", "target", ""], rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
