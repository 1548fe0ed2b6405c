"""Cold start of `eset2fa user status NAME --json` against `python -c "import typer"` (SPEC §6).

Target: median ratio <= 1.3. Both commands run alternately in the same loop, so machine noise hits
both alike; the figure quoted is the median of each, and their ratio.

    python bench/cold_start.py [--runs 41]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def timed(cmd: list[str], env: dict) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, check=True)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=41)
    args = parser.parse_args()
    exe = shutil.which("eset2fa", path=str(Path(sys.executable).parent)) or "eset2fa"
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "ESET2FA_DB": str(Path(tmp) / "bench.db")}
        subprocess.run([exe, "init"], env=env, check=True, capture_output=True)
        baseline_cmd = [sys.executable, "-c", "import typer"]
        status_cmd = [exe, "user", "status", "Administrator", "--json"]
        for _ in range(3):  # warm the page cache
            timed(baseline_cmd, env), timed(status_cmd, env)
        base, status = [], []
        for _ in range(args.runs):
            base.append(timed(baseline_cmd, env))
            status.append(timed(status_cmd, env))
    b, s = statistics.median(base), statistics.median(status)
    print(f"python -c 'import typer'              median {b * 1000:6.1f} ms")
    print(f"eset2fa user status Administrator --json median {s * 1000:6.1f} ms")
    print(f"ratio {s / b:.2f} (target <= 1.30), {args.runs} alternating runs each")


if __name__ == "__main__":
    main()
