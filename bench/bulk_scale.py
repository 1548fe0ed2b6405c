"""Benchmark: bulk disable, import and enable at 100,000 and 1,000,000 users (SPEC §6: 100,000
users <= 3 s; peak RSS flat, 1,000,000 within 20 % of 100,000 and <= 150 MB; time linear,
1,000,000 <= 11 x 100,000).

Each round works on a fresh copy of the cached realistic fixture (bench/fixtures.py: every user
enrolled, eleven audit rows per user) and runs the real CLI in a child process, with --json:
  1. `user disable --all --yes`                      (every user enrolled -> disabled)
  2. `user import --otpauth FILE`                    (an otpauth URI per user -> active)
  3. `user disable --all --yes` again, not timed
  4. `user enable --method totp --all`               (every user disabled -> pending)
Wall time and CPU time (user + system) of the child (medians of the rounds), and its own peak
RSS (wait4; the largest of the rounds). The baseline of each larger size is the smallest size's
figure scaled by the user count; the machine is shared, so the CPU-time ratio is the steadier
measure of linearity.

    python bench/bulk_scale.py [--sizes 10000,100000] [--large] [--rounds 3]

--large adds 1,000,000 users (its fixture takes minutes to build the first time, and 3 GB).
"""

from __future__ import annotations

import argparse
import base64
import os
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _measure import run  # noqa: E402
from fixtures import cli_env, fixture_store, user_name  # noqa: E402

STEPS = {
    "disable --all": ["user", "disable", "--all", "--yes"],
    "import --otpauth": ["user", "import", "--otpauth", "{uris}"],
    "enable --all": ["user", "enable", "--method", "totp", "--all"],
}


def write_uris(path: Path, users: int) -> None:
    with path.open("w") as out:
        for index in range(users):
            secret = base64.b32encode(os.urandom(20)).decode()
            out.write(f"otpauth://totp/Old:{user_name(index)}?secret={secret}&issuer=Old\n")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="10000,100000")
    parser.add_argument("--large", action="store_true", help="also 1,000,000 users")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    sizes = [int(size) for size in args.sizes.split(",")]
    if args.large:
        sizes.append(1_000_000)
    work = Path(tempfile.mkdtemp(prefix="eset2fa-bench-"))
    figures: dict[tuple[str, int], tuple[float, float, float]] = {}
    try:
        for size in sizes:
            fixture = fixture_store(size)
            env = cli_env(fixture.key, home=work / "home")
            uris = work / f"uris{size}.txt"
            write_uris(uris, size)
            times: dict[str, list[float]] = {step: [] for step in STEPS}
            cpus: dict[str, list[float]] = {step: [] for step in STEPS}
            peaks: dict[str, float] = dict.fromkeys(STEPS, 0.0)
            for _round in range(args.rounds):
                db = fixture.copy_to(work / "round.db")
                base = [sys.executable, "-m", "eset2fa", "--db", str(db), "--json"]
                for step, argv in STEPS.items():
                    if step == "enable --all":
                        run(base + STEPS["disable --all"], env=env)  # not timed
                    command = base + [str(uris) if a == "{uris}" else a for a in argv]
                    seconds, peak, cpu = run(command, env=env)
                    times[step].append(seconds)
                    cpus[step].append(cpu)
                    peaks[step] = max(peaks[step], peak)
                db.unlink()
                for leftover in work.glob("round.db-*"):
                    leftover.unlink()
            for step in STEPS:
                figures[step, size] = (
                    statistics.median(times[step]),
                    statistics.median(cpus[step]),
                    peaks[step],
                )
            uris.unlink()
        smallest = sizes[0]
        print(f"rounds: {args.rounds}; medians; RSS: the CLI process's own peak")
        print(
            f"{'step':18} {'users':>9} {'wall':>8} {'baseline':>9} {'ratio':>6}"
            f" {'CPU':>8} {'baseline':>9} {'ratio':>6} {'RSS':>6} {'ratio':>6}"
        )
        for step in STEPS:
            base_time, base_cpu, base_rss = figures[step, smallest]
            for size in sizes:
                seconds, cpu, rss = figures[step, size]
                linear_time, linear_cpu = base_time * size / smallest, base_cpu * size / smallest
                print(
                    f"{step:18} {size:>9,} {seconds:>7.2f}s {linear_time:>8.2f}s"
                    f" {seconds / linear_time:>5.2f}x {cpu:>7.2f}s {linear_cpu:>8.2f}s"
                    f" {cpu / linear_cpu:>5.2f}x {rss:>4.0f}MB {rss / base_rss:>5.2f}x"
                )
        print(
            "baseline: the smallest size's figure scaled by the user count (ratio 1.00 = linear);"
            " RSS ratio: against the smallest size's"
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
