"""`user show` / `user status` at 1,000,000 users vs 1,000 users (SPEC §6: within 10 %).

The stores are created through the CLI's own schema (first use), then filled with plain SQL inserts
(creating a million users through the CLI is what the bulk benchmarks measure, not this one).
Both sizes are timed alternately in one loop; the figures are medians.

    python bench/status_scale.py [--runs 31] [--users 1000000]
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


def build_store(path: Path, users: int, exe: str) -> None:
    subprocess.run([exe, "--db", str(path), "init"], check=True, capture_output=True)
    conn = sqlite3.connect(path)
    rows = ((f"user{i:07d}", f"group{i % 100}", "2026-11-22T00:00:00Z") for i in range(users))
    conn.executemany("INSERT INTO users (name, group_name, created_at) VALUES (?, ?, ?)", rows)
    conn.commit()
    conn.close()


def timed(cmd: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=31)
    parser.add_argument("--users", type=int, default=1_000_000)
    args = parser.parse_args()
    exe = shutil.which("eset2fa", path=str(Path(sys.executable).parent)) or "eset2fa"
    with tempfile.TemporaryDirectory() as tmp:
        small, big = Path(tmp) / "small.db", Path(tmp) / "big.db"
        build_store(small, 1_000, exe)
        started = time.perf_counter()
        build_store(big, args.users, exe)
        print(f"built a {args.users:,}-user store in {time.perf_counter() - started:.1f} s")
        probe = f"user{args.users // 2:07d}"
        small_probe = "user0000500"
        for command in ("status", "show"):
            times: dict[str, list[float]] = {"small": [], "big": []}
            for _ in range(args.runs):
                times["small"].append(
                    timed([exe, "--db", str(small), "user", command, small_probe, "--json"])
                )
                times["big"].append(
                    timed([exe, "--db", str(big), "user", command, probe, "--json"])
                )
            s, b = statistics.median(times["small"]), statistics.median(times["big"])
            print(
                f"user {command:6s} 1,000 users {s * 1000:6.1f} ms | {args.users:,} users "
                f"{b * 1000:6.1f} ms | ratio {b / s:.3f} (target <= 1.10)"
            )


if __name__ == "__main__":
    main()
