"""Benchmark: `user list --json` and `audit list --json --limit 0` stream (SPEC §6: at 1,000,000
users <= 2 x `sqlite3 -json` on the same query, peak RSS <= 60 MB and flat from 10,000 up).

On the cached realistic fixtures (bench/fixtures.py: every user enrolled, eleven audit rows per
user), each size's CLI run and the sqlite3 shell's run on the same query alternate ROUNDS times,
output to /dev/null; medians of wall time and of CPU time (user + system: the machine is
shared, and wall time also measures the neighbours), and the CLI's peak RSS (its own, wait4).

    python bench/list_stream.py [--sizes 10000,100000] [--large] [--rounds 3] [--skip-audit]

--large adds 1,000,000 users (building that fixture the first time takes minutes and 3 GB).
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

USER_QUERY = (
    "SELECT id, name, group_name, state, method, locked, fail_count FROM users ORDER BY name"
)
AUDIT_QUERY = "SELECT id, at, actor, action, target, result, details FROM audit ORDER BY id"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="10000,100000")
    parser.add_argument("--large", action="store_true", help="also 1,000,000 users")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--skip-audit", action="store_true")
    args = parser.parse_args()
    sizes = [int(size) for size in args.sizes.split(",")]
    if args.large:
        sizes.append(1_000_000)
    sqlite = shutil.which("sqlite3")
    if sqlite is None:
        sys.exit("the sqlite3 shell is needed for the baseline")
    listings = [("user list --json", ["user", "list", "--json"], USER_QUERY)]
    if not args.skip_audit:
        listings.append(
            (
                "audit list --json --limit 0",
                ["audit", "list", "--json", "--limit", "0"],
                AUDIT_QUERY,
            )
        )
    work = Path(tempfile.mkdtemp(prefix="eset2fa-bench-"))
    print(f"rounds: {args.rounds}; medians; RSS is the CLI process's peak")
    print(
        f"{'listing':28} {'users':>9} {'eset2fa':>8} {'sqlite3':>8} {'ratio':>6}"
        f" {'CPU':>7} {'sqlite3':>7} {'ratio':>6} {'RSS':>6}"
    )
    try:
        peaks: dict[str, list[float]] = {}
        for size in sizes:
            fixture = fixture_store(size)
            env = cli_env(fixture.key, home=work / "home")
            for label, argv, query in listings:
                ours, theirs, our_cpu, their_cpu, rss = [], [], [], [], []
                for _round in range(args.rounds):
                    cli = [sys.executable, "-m", "eset2fa", "--db", str(fixture.path), *argv]
                    seconds, peak, cpu = run(cli, env=env)
                    ours.append(seconds)
                    our_cpu.append(cpu)
                    rss.append(peak)
                    seconds, _peak, cpu = run([sqlite, "-json", str(fixture.path), query])
                    theirs.append(seconds)
                    their_cpu.append(cpu)
                a, b = statistics.median(ours), statistics.median(theirs)
                c, d = statistics.median(our_cpu), statistics.median(their_cpu)
                peaks.setdefault(label, []).append(max(rss))
                print(
                    f"{label:28} {size:>9,} {a:>7.2f}s {b:>7.2f}s {a / b:>5.2f}x"
                    f" {c:>6.2f}s {d:>6.2f}s {c / d:>5.2f}x {max(rss):>4.0f}MB"
                )
        for label, values in peaks.items():
            print(f"{label}: peak RSS {min(values):.0f}-{max(values):.0f} MB over the sizes")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
