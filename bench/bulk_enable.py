"""Benchmark: `user enable --method totp --all` on 100,000 users (SPEC §6: <= 5 s, <= 150 MB).

Creates a store with N users directly (not timed), then runs the real CLI in a subprocess on a
fresh copy of it, ROUNDS times: wall time (median) and peak RSS of the child process.

    python bench/bulk_enable.py [--users 100000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def build_template(path: Path, users: int) -> None:
    from eset2fa.db import open_store

    store = open_store(path)
    with store.write() as conn:
        conn.executemany(
            "INSERT INTO users (name, group_name, created_at) VALUES (?, ?, ?)",
            ((f"user{i:07d}", f"g{i % 50}", "2026-01-01T00:00:00Z") for i in range(users)),
        )
    store.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    store.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="eset2fa-bench-"))
    try:
        template = work / "template.db"
        build_template(template, args.users)
        env = {k: v for k, v in os.environ.items() if not k.startswith("ESET2FA_")}
        env["ESET2FA_HOME"] = str(work / "home")
        times = []
        for round_number in range(args.rounds):
            db = work / f"round{round_number}.db"
            shutil.copyfile(template, db)
            command = [sys.executable, "-m", "eset2fa", "--db", str(db), "--json"]
            command += ["user", "enable", "--method", "totp", "--all"]
            started = time.perf_counter()
            run = subprocess.run(command, env=env, capture_output=True, text=True)
            times.append(time.perf_counter() - started)
            if run.returncode != 0:
                sys.exit(f"enable failed ({run.returncode}): {run.stderr}")
            if f'"enabled": {args.users}' not in run.stdout:
                sys.exit(f"unexpected result: {run.stdout[:200]}")
        peak_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss  # KiB on Linux
        print(f"users: {args.users}, rounds: {args.rounds}")
        print(
            f"wall time: median {statistics.median(times):.2f} s (all: "
            + ", ".join(f"{t:.2f}" for t in times)
            + ")"
        )
        print(f"peak RSS of the CLI process: {peak_kb / 1024:.0f} MB")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
