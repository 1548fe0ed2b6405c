"""Cold start of the CLI against `python -c "import typer"`, per install mode (SPEC §6).

Targets: `eset2fa user status NAME --json` <= 1.2 x `import typer`, with `pip install .` and with
`pip install -e .`; `eset2fa auth verify NAME CODE` (human output, in a pipe) <= 1.3 x. Each
virtualenv's commands run alternately with its own `import typer` in the same loop, so machine
noise hits both alike; the figures are medians, and their ratios: wall time (the target), and
the CPU time of each process (user + system), which a loaded machine disturbs less.

    python bench/cold_start.py --build DIR [--runs 31]      # makes DIR/installed, DIR/editable
    python bench/cold_start.py --venv VENV [--venv VENV2]   # measures existing virtualenvs

`--build` creates the two virtualenvs from this checkout with the Python running the script
(`pip install .` and `pip install -e .`; pip needs its usual index) and reuses them when run again.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def timed(cmd: list[str], env: dict) -> tuple[float, float]:
    """(wall seconds, CPU seconds of the child: user + system)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)


def build(directory: Path) -> list[Path]:
    venvs = []
    for name, spec in (("installed", [str(ROOT)]), ("editable", ["-e", str(ROOT)])):
        venv = directory / name
        if not (venv / "bin" / "eset2fa").exists():
            subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
            pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "-q"]
            subprocess.run([*pip, *spec], check=True)
        venvs.append(venv)
    return venvs


def measure(venv: Path, runs: int) -> dict[str, tuple[float, float]]:
    python, exe = str(venv / "bin" / "python"), str(venv / "bin" / "eset2fa")
    with tempfile.TemporaryDirectory() as tmp:
        key = "A" * 43  # a fixed ESET2FA_KEY: the measured commands never look for a keyring
        env = {
            **os.environ,
            "ESET2FA_DB": str(Path(tmp) / "bench.db"),
            "ESET2FA_KEY": key,
            "ESET2FA_ARGON2_PROFILE": "test",
        }
        env.pop("PYTHONDONTWRITEBYTECODE", None)  # byte-compiled once, as an installed tool is
        # Every measured `auth verify` is a wrong code that is counted and audited (a durable
        # write), never the refusal of a user locked by the runs before it.
        for setup in (
            ["init"],
            ["config", "set", "lockout.max_failures", "100000"],
            ["user", "add", "alice"],
            ["user", "enable", "alice"],
        ):
            subprocess.run([exe, *setup], env=env, check=True, capture_output=True)
        commands = {
            "import typer": [python, "-c", "import typer"],
            "user status --json": [exe, "user", "status", "alice", "--json"],
            "auth verify (human)": [exe, "auth", "verify", "alice", "000000"],
        }
        for _ in range(3):  # warm the page cache and write the byte code
            for cmd in commands.values():
                timed(cmd, env)
        times: dict[str, list[tuple[float, float]]] = {name: [] for name in commands}
        for _ in range(runs):
            for name, cmd in commands.items():
                times[name].append(timed(cmd, env))
    return {
        name: (statistics.median(v[0] for v in values), statistics.median(v[1] for v in values))
        for name, values in times.items()
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=31)
    parser.add_argument("--build", type=Path, help="make (or reuse) both virtualenvs here")
    parser.add_argument("--venv", type=Path, action="append", default=[])
    args = parser.parse_args()
    venvs = list(args.venv)
    if args.build:
        venvs += build(args.build)
    if not venvs:
        venvs = [Path(sys.prefix)]
    targets = {"user status --json": 1.2, "auth verify (human)": 1.3}
    for venv in venvs:
        medians = measure(venv, args.runs)
        base, base_cpu = medians["import typer"]
        editable = list((venv / "lib").glob("python*/site-packages/__editable__*"))
        mode = "editable" if editable else ""
        print(f"{venv.name} ({mode or 'pip install .'}), {args.runs} alternating runs, medians:")
        print(
            f"  python -c 'import typer'     {base * 1000:6.1f} ms (CPU {base_cpu * 1000:5.1f} ms)"
        )
        for name, target in targets.items():
            wall, cpu = medians[name]
            print(
                f"  eset2fa {name:<20} {wall * 1000:6.1f} ms  {wall / base:.2f} x (target <="
                f" {target}); CPU {cpu * 1000:5.1f} ms  {cpu / base_cpu:.2f} x"
            )


if __name__ == "__main__":
    main()
