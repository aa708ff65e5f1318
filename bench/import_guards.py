"""What the import limits and guards cost a parse: `parse_station_file` of the same files by the importer of
an older revision (`--before`, loaded from git) and by the current one (or `--after`, another revision),
interleaved in one process, medians. Files: the 186,100-row CSV of `bench.importing` (written by the older revision's
`write_csv`, so both read the same bytes) and an XLSX of its first `--xlsx-rows` rows.
"""

from __future__ import annotations

import argparse
import gc
import importlib.util
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import ModuleType

from bench._common import OUT, ROOT, print_load, print_machine


def load_revision(revision: str, name: str) -> ModuleType:
    source = subprocess.run(
        ["git", "-C", str(ROOT), "show", f"{revision}:storage/importers.py"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    path = Path(tempfile.mkdtemp()) / f"{name}.py"
    path.write_text(source, encoding="utf-8")
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def timed(runs: int, files: Path, modules: dict[str, ModuleType], expected: int) -> dict[str, float]:
    times: dict[str, list[float]] = {name: [] for name in modules}
    for _ in range(runs):
        for name, module in modules.items():
            gc.collect()
            start = time.perf_counter()
            parsed = module.parse_station_file(files)
            times[name].append(time.perf_counter() - start)
            assert len(parsed.records) == expected, (name, len(parsed.records), parsed.errors[:3])
    return {name: statistics.median(values) for name, values in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", default="c37d818", help="revision of the reference importer")
    parser.add_argument("--after", default="", help="revision of the importer measured (default: this tree)")
    parser.add_argument("--rows", type=int, default=186_100)
    parser.add_argument("--xlsx-rows", type=int, default=20_000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()

    import openpyxl

    from storage import importers
    from storage.seed import generate_stations

    print_machine(f"bench.import_guards: parse before ({args.before}) and after ({args.after or 'tree'})")
    before = load_revision(args.before, "importers_before")
    after = load_revision(args.after, "importers_after") if args.after else importers
    OUT.mkdir(parents=True, exist_ok=True)
    records = list(generate_stations(args.rows, 2024))
    csv_path = OUT / f"guards-{args.rows}.csv"
    with csv_path.open("w", encoding="utf-8", newline="") as out:
        before.write_csv(records, out)
    xlsx_path = OUT / f"guards-{args.xlsx_rows}.xlsx"
    workbook = openpyxl.Workbook(write_only=True)
    sheet = workbook.create_sheet()
    sheet.append(list(before.EXPORT_COLUMNS))
    for record in records[: args.xlsx_rows]:
        sheet.append(before._export_row(record))
    workbook.save(xlsx_path)
    modules = {"before": before, "after": after}
    for label, path, rows, runs in (
        (f"CSV {args.rows:,} rows", csv_path, args.rows, args.runs),
        (f"XLSX {args.xlsx_rows:,} rows", xlsx_path, args.xlsx_rows, max(3, args.runs // 2)),
    ):
        print_load(f"before {label}")
        medians = timed(runs, path, modules, rows)
        ratio = medians["after"] / medians["before"]
        print(
            f"{label}: before {medians['before']:.2f} s, after {medians['after']:.2f} s, "
            f"ratio {ratio:.3f} (medians of {runs}, interleaved)"
        )
    print_load("end")


if __name__ == "__main__":
    main()
