"""Benchmarks of yizhan; figures, commands and the targets they are held against are in bench/README.md.

Each is a module with a `main(argv)` and runs from the repository root:

    python -m bench.search      # nearest-open latency against the raw k-d tree floor, index memory
    python -m bench.coldstart   # process start to first answer on SQLite files of 186,100 and 1,000,000
    python -m bench.importing   # CSV import of 186,100 rows into SQLite and PostgreSQL, and re-import

`--quick` runs a small, fast version of each (the smoke test in tests/test_bench_smoke.py uses it with
tiny sizes). Every run prints the machine, the load average before each part, medians and tails, and
ratios against a reference measured in the same run, never against figures from another machine.
Generated data (SQLite files, CSV) is cached under bench/out/, which git ignores.
"""
