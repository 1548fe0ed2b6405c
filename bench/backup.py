"""Benchmark: `eset2fa db backup` of a 1,000,000-user store vs the same work in the sqlite3 shell.

SPEC §6 target: `db backup` <= 1.5 x `sqlite3 DB ".backup FILE" ".open FILE" "PRAGMA
quick_check;"`. Both copy with SQLite's online backup API and quick_check the copy; `db backup`
also hashes it (SHA-256 for the manifest, while the check runs), writes the manifest and its audit
row, and pays Python's start-up. `--full-check` (integrity_check, what restore runs) and the copy
step alone are timed too, so the figures say where the time goes.

The store holds users only (no 2FA, no audit rows): bench/fixtures.py's realistic stores were
not in this tree when this was written.

    python bench/backup.py [--users 1000000] [--runs 3] [--keep-dir DIR]
"""

from __future__ import annotations

import argparse
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def build_store(db: Path, users: int) -> None:
    from eset2fa.db import open_store

    store = open_store(db)
    store.close()
    conn = sqlite3.connect(db, isolation_level=None)
    conn.execute("PRAGMA synchronous = OFF")  # building the fixture only; not what is measured
    conn.execute("BEGIN")
    conn.executemany(
        "INSERT INTO users (name, group_name, created_at) VALUES (?, ?, '2026-01-01T00:00:00Z')",
        ((f"user{i:07d}", f"group{i % 100}") for i in range(users)),
    )
    conn.execute("COMMIT")
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # both tools then read the same main file
    conn.close()


def timed(command: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True)
    return time.perf_counter() - start


def median_of(runs: int, command_for, cleanup) -> float:
    times = []
    for i in range(runs):
        times.append(timed(command_for(i)))
        cleanup()
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--keep-dir", type=Path, help="build the store here and keep it")
    args = parser.parse_args()

    sqlite_cli = shutil.which("sqlite3")
    work = args.keep_dir or Path(tempfile.mkdtemp(prefix="eset2fa-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    db = work / "bench.db"
    out = work / "out"
    out.mkdir(exist_ok=True)
    if not db.exists():
        start = time.perf_counter()
        build_store(db, args.users)
        print(f"built {args.users:,} users in {time.perf_counter() - start:.1f} s", flush=True)
    size_mb = db.stat().st_size / 1e6

    def clean() -> None:
        for entry in out.iterdir():
            entry.unlink()

    eset2fa = [sys.executable, "-m", "eset2fa", "--db", str(db), "db", "backup", "--to", str(out)]
    if sqlite_cli:
        # The same work with the sqlite3 shell: the online backup, then quick_check of the copy.
        baseline_name = "sqlite3 .backup + quick_check"
        baseline = median_of(
            args.runs,
            lambda i: [
                sqlite_cli,
                str(db),
                f".backup {out / f'cli{i}.db'}",
                f".open {out / f'cli{i}.db'}",
                "PRAGMA quick_check;",
            ],
            clean,
        )
    else:  # no shell installed: the same API in one step from Python (start-up included)
        baseline_name = "python sqlite3 backup + quick_check"
        script = (
            "import sqlite3,sys; s=sqlite3.connect(sys.argv[1]); d=sqlite3.connect(sys.argv[2]);"
            " s.backup(d); d.execute('PRAGMA quick_check').fetchall(); d.close()"
        )
        baseline = median_of(
            args.runs,
            lambda i: [sys.executable, "-c", script, str(db), str(out / f"py{i}.db")],
            clean,
        )
    # The same work with Python's sqlite3 (start-up included): a stricter floor where the shell's
    # own build is slower (here its quick_check took ~3 x as long as the library's in Python).
    script = (
        "import sqlite3,sys; s=sqlite3.connect(sys.argv[1]); d=sqlite3.connect(sys.argv[2]);"
        " s.backup(d); d.execute('PRAGMA quick_check').fetchall(); d.close()"
    )
    floor = median_of(
        args.runs, lambda i: [sys.executable, "-c", script, str(db), str(out / f"py{i}.db")], clean
    )
    results = {}
    results["eset2fa db backup (quick_check)"] = median_of(args.runs, lambda i: eset2fa, clean)
    results["eset2fa db backup --full-check"] = median_of(
        args.runs, lambda i: [*eset2fa, "--full-check"], clean
    )

    from eset2fa.db.snapshot import copy_snapshot

    copies = []
    for i in range(args.runs):
        start = time.perf_counter()
        copy_snapshot(db, out / f"copy{i}.db")
        copies.append(time.perf_counter() - start)
    clean()
    results["copy step alone (in-process)"] = statistics.median(copies)

    print(f"store: {args.users:,} users, {size_mb:.0f} MB; median of {args.runs} runs")
    print(f"  {baseline_name:<40} {baseline:6.2f} s   1.00 x  (the baseline; target <= 1.5 x)")
    floor_name = "python sqlite3 backup + quick_check"
    print(f"  {floor_name:<40} {floor:6.2f} s  {floor / baseline:5.2f} x")
    for name, seconds in results.items():
        print(
            f"  {name:<40} {seconds:6.2f} s  {seconds / baseline:5.2f} x"
            f"  ({seconds / floor:.2f} x the python floor)"
        )
    if not args.keep_dir:
        shutil.rmtree(work)


if __name__ == "__main__":
    main()
