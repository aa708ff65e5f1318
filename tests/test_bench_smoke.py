"""The benchmarks still run: each main() in --quick mode with tiny sizes; no timing is asserted."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench import coldstart, console_dashboard, importing, regions, search


def test_search_benchmark_runs(capsys: pytest.CaptureFixture[str]) -> None:
    assert (
        search.main(
            [
                "--quick",
                "--sizes",
                "2000",
                "--queries",
                "20",
                "--agreement",
                "12",
                "--brute-queries",
                "3",
                "--no-tracemalloc",
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    for heading in (
        "# bench.search",
        "## nearest-open latency",
        "## floor",
        "## numpy brute-force scan",
        "## index memory and build",
        "## targets",
    ):
        assert heading in out
    assert "agreement: 12/12" in out


def test_coldstart_benchmark_runs(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert (
        coldstart.main(["--quick", "--sizes", "2000", "--runs", "1", "--no-evict", "--out", str(tmp_path)])
        == 0
    )
    out = capsys.readouterr().out
    for heading in (
        "# bench.coldstart",
        "## reference process starts",
        "## yizhan nearby --json",
        "## probe phases",
        "spawn → index ready",
        "## targets",
    ):
        assert heading in out


def test_importing_benchmark_runs(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert importing.main(["--quick", "--rows", "2000", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    for heading in (
        "# bench.importing",
        "parse alone",
        "## import of 2,000 rows",
        "re-import (unchanged)",
        "## targets",
    ):
        assert heading in out
    assert "2,000/0/0" in out and "0/2,000/0" in out


def test_regions_benchmark_runs(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert regions.main(["--rows", "2000", "--rounds", "1", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    for line in (
        "# bench.regions",
        "index file",
        "look-ups:",
        "derive_regions alone over 2,000 records",
        "import: with regions",
        "identical lists: True",
        "import with / without regions |",
    ):
        assert line in out


def test_analytics_benchmark_runs(capsys: pytest.CaptureFixture[str]) -> None:
    from bench import analytics

    assert analytics.main(["--stations", "3000", "--queries", "300", "--searches", "2000", "-n", "2"]) == 0
    out = capsys.readouterr().out
    expected = ("# bench.analytics", "search path over 300 queries", "2,000 searches", "suggest -n 2")
    for line in expected:
        assert line in out


def test_console_stations_benchmark_runs(capsys: pytest.CaptureFixture[str]) -> None:
    from bench import console_stations

    assert console_stations.main(["--rows", "2000", "--runs", "1", "--backend", "sqlite"]) == 0
    out = capsys.readouterr().out
    assert "| sqlite search | page (50) + total, ms |" in out
    assert "export CSV, the whole network" in out and "export XLSX, staff 4401" in out


def test_console_dashboard_benchmark_runs(capsys: pytest.CaptureFixture[str]) -> None:
    assert console_dashboard.main(["--rows", "2000", "--runs", "1"]) == 0
    out = capsys.readouterr().out
    for heading in ("# bench.console_dashboard", "## dashboard summary", "## Argon2id verify"):
        assert heading in out
    assert "staff of 4401" in out


def test_audience_benchmark_runs(capsys: pytest.CaptureFixture[str]) -> None:
    from bench import audience

    assert audience.main(["--subscribers", "500", "--runs", "1", "--backend", "sqlite"]) == 0
    out = capsys.readouterr().out
    assert "| region 4401 | 500 |" in out and "| within 5 km of a point |" in out
