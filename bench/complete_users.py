"""TAB completion of a user NAME from a 100,000-user store (target: under 150 ms).

Times exactly what bash runs on TAB after `eset2fa user status us`:

    _ESET2FA_COMPLETE=complete_bash COMP_WORDS='eset2fa user status us' COMP_CWORD=3 eset2fa

with ESET2FA_DB naming the store, against `python -c "import typer"` (what any Typer CLI pays
to start), alternately in the same loop. Prints the medians, the 90th percentile of the
completion, and their ratio. The store holds USERS users named user000000..., so the prefix
`us` matches all of them and the completion returns its limit of 50.

    python bench/complete_users.py [--users 100000] [--runs 41]
"""

from __future__ import annotations

import argparse
import os
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TARGET_MS = 150


def timed(cmd: list[str], env: dict) -> tuple[float, str]:
    start = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, check=True)
    return time.perf_counter() - start, done.stdout


def make_store(exe: str, path: Path, users: int) -> None:
    """A real store (created by eset2fa itself), then `users` rows in one transaction."""
    env = {**os.environ, "ESET2FA_DB": str(path)}
    subprocess.run([exe, "user", "list"], env=env, check=True, capture_output=True)
    conn = sqlite3.connect(path)
    with conn:
        conn.executemany(
            "INSERT INTO users (name, group_name, created_at, state)"
            " VALUES (?, 'staff', '2026-01-01T00:00:00Z', 'active')",
            ((f"user{i:06d}",) for i in range(users)),
        )
    conn.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=41)
    args = parser.parse_args()
    exe = shutil.which("eset2fa", path=str(Path(sys.executable).parent)) or "eset2fa"
    with tempfile.TemporaryDirectory() as tmp:
        store = Path(tmp) / "bench.db"
        make_store(exe, store, args.users)
        env = {
            **os.environ,
            "ESET2FA_DB": str(store),
            "_ESET2FA_COMPLETE": "complete_bash",
            "COMP_WORDS": "eset2fa user status us",
            "COMP_CWORD": "3",
        }
        complete_cmd = [exe]
        baseline_cmd = [sys.executable, "-c", "import typer"]
        _, names = timed(complete_cmd, env)
        shown = names.split()
        assert len(shown) == 50 and shown[0] == "user000000", names[:200]
        for _ in range(3):  # warm the page cache
            timed(baseline_cmd, env), timed(complete_cmd, env)
        base, complete = [], []
        for _ in range(args.runs):
            base.append(timed(baseline_cmd, env)[0])
            complete.append(timed(complete_cmd, env)[0])
    b, c = statistics.median(base), statistics.median(complete)
    p90 = statistics.quantiles(complete, n=10)[-1]
    print(f"python -c 'import typer'                        median {b * 1000:6.1f} ms")
    print(
        f"TAB after 'eset2fa user status us' ({args.users:,} users) median {c * 1000:6.1f} ms,"
        f" p90 {p90 * 1000:6.1f} ms (target < {TARGET_MS} ms)"
    )
    print(f"ratio {c / b:.2f}, {args.runs} alternating runs each, 50 names returned")


if __name__ == "__main__":
    main()
