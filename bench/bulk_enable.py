"""Benchmark: `user enable --method totp --all` on 100,000 users (SPEC §6: <= 3 s, <= 150 MB).

On a fresh copy of the cached realistic fixture (bench/fixtures.py: every user enrolled, eleven
audit rows per user), every user is disabled first (not timed), then the real CLI enables them
all in a child process, ROUNDS times: wall time (median) and the child's own peak RSS (wait4).
bench/bulk_scale.py measures enable, disable and import at two sizes.

    python bench/bulk_enable.py [--users 100000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _measure import run  # noqa: E402
from fixtures import cli_env, fixture_store  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="eset2fa-bench-"))
    try:
        fixture = fixture_store(args.users)
        env = cli_env(fixture.key, home=work / "home")
        times, peaks = [], []
        for _round in range(args.rounds):
            db = fixture.copy_to(work / "round.db")
            base = [sys.executable, "-m", "eset2fa", "--db", str(db), "--json"]
            run(base + ["--yes", "user", "disable", "--all"], env=env)  # not timed
            out = work / "out.json"
            with out.open("w") as stdout:
                seconds, peak, _ = run(
                    base + ["user", "enable", "--method", "totp", "--all"], env=env, stdout=stdout
                )
            text = out.read_text()
            if f'"enabled": {args.users + 1}' not in text:  # and the Administrator
                sys.exit(f"unexpected result: {text[:200]}")
            times.append(seconds)
            peaks.append(peak)
            db.unlink()
        print(f"users: {args.users:,}, rounds: {args.rounds}")
        print(
            f"wall time: median {statistics.median(times):.2f} s (all: "
            + ", ".join(f"{t:.2f}" for t in times)
            + f"); target 3 s: ratio {statistics.median(times) / 3:.2f}"
        )
        print(f"peak RSS of the CLI process: {max(peaks):.0f} MB (target 150 MB)")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
