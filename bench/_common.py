"""Helpers shared by the benchmarks: machine description, load, percentiles, memory, tables."""

from __future__ import annotations

import os
import platform
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "bench" / "out"


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def load_average() -> tuple[float, float, float]:
    try:
        return os.getloadavg()
    except OSError:  # pragma: no cover - not on Linux
        return (float("nan"),) * 3


def print_machine(title: str) -> None:
    print(f"# {title}")
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    print(
        f"machine: nproc={usable}, cpu={cpu_model()!r}, python={platform.python_version()} "
        f"({sys.implementation.name}), numpy={np.__version__}"
    )
    print_load("start")


def print_load(when: str) -> tuple[float, float, float]:
    load = load_average()
    print(f"load average ({when}): {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}", flush=True)
    return load


def wait_for_quiet(limit_s: float, threshold: float = 1.0) -> None:
    """Wait up to `limit_s` for the 1-minute load to drop below `threshold` (other work on the machine)."""
    deadline = time.monotonic() + limit_s
    while load_average()[0] >= threshold and time.monotonic() < deadline:
        time.sleep(5)


def percentiles_us(ns: Sequence[int] | np.ndarray) -> dict[str, float]:
    """p50 / p99 / p99.9 / mean / max of nanosecond samples, in microseconds."""
    a = np.asarray(ns, dtype=np.float64) / 1e3
    if len(a) == 0:
        return {
            "n": 0,
            "p50": float("nan"),
            "p99": float("nan"),
            "p99.9": float("nan"),
            "mean": float("nan"),
            "max": float("nan"),
        }
    p50, p99, p999 = np.percentile(a, [50, 99, 99.9])
    return {
        "n": len(a),
        "p50": p50,
        "p99": p99,
        "p99.9": p999,
        "mean": float(a.mean()),
        "max": float(a.max()),
    }


def proc_status_kb(field: str) -> int:
    """A field of /proc/self/status in kB (VmRSS, VmHWM); -1 where unavailable."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return -1


def reset_peak_rss() -> bool:
    """Reset VmHWM to the current RSS (Linux >= 4.0); False when not possible."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A Markdown table (also readable in a terminal)."""
    cells = [[_fmt(c) for c in row] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) if cells else len(h) for i, h in enumerate(headers)]
    lines = ["| " + " | ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)) + " |"]
    lines.append("| " + " | ".join("-" * w for w in widths) + " |")
    for r in cells:
        lines.append("| " + " | ".join(c.rjust(w) for c, w in zip(r, widths, strict=True)) + " |")
    return "\n".join(lines)


def _fmt(value: object) -> str:
    if isinstance(value, float):
        if value != value:  # NaN
            return "–"
        if abs(value) >= 100:
            return f"{value:,.0f}"
        if abs(value) >= 10:
            return f"{value:.1f}"
        return f"{value:.2f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def verdict(ok: bool) -> str:
    return "MET" if ok else "MISSED"
