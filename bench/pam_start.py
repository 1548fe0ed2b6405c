"""Start-up of `eset2fa-pam` (one whole PAM verification) against `python -c pass` (SPEC §6).

Target: median ratio <= 3.0. Each eset2fa-pam run is what pam_exec waits for: start the console
script, read the code on stdin, open the store, load the key from the key file, verify an
accepted code (decrypt, HMAC, update, hash-chained audit row, durable commit) and exit 0. Every
run uses another user, so no code is a replay. Both commands run alternately in the same loop, so
machine noise hits both alike; the figures are the median of each, and their ratio.

The children get the environment pam_exec gives (PAM_USER, PAM_SERVICE, PAM_TYPE and nothing
else), so in particular PYTHONDONTWRITEBYTECODE is NOT passed on: Python writes and then uses the
.pyc files, as an installed eset2fa-pam does (with it set, every run would compile eset2fa and
cryptography from source). The baseline runs with the same environment.

Run it from a virtualenv with eset2fa installed (`pip install .`; an editable install adds its
import hook to both sides):

    python bench/pam_start.py [--runs 41]
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
from urllib.parse import parse_qs, urlparse

WARMUP = 3
# What no verification of a sealed TOTP secret can do without: a lower bound for eset2fa-pam.
FLOOR = (
    "import sqlite3, hmac, base64; from cryptography.hazmat.primitives.ciphers.aead import AESGCM"
)


def setup(path: Path, users: int) -> list[str]:
    """A store at `path` with `users` pending TOTP users, its key in the key file beside it;
    returns their base32 secrets (user0, user1, ...)."""
    from eset2fa.accounts.actors import local_operator
    from eset2fa.db import open_store
    from eset2fa.twofactor import enrollment

    store = open_store(path)
    actor = local_operator()
    with store.write() as conn:
        conn.executemany(
            "INSERT INTO users (name, created_at) VALUES (?, '2026-01-01T00:00:00Z')",
            [(f"user{i}",) for i in range(users)],
        )
    enrollment.enable(store, actor, all_users=True)
    secrets = []
    for i in range(users):
        uri = enrollment.enrollment_uri(store, actor, f"user{i}")["uri"]
        secrets.append(parse_qs(urlparse(uri).query)["secret"][0])
    store.close()
    if not path.with_name(path.name + ".key").is_file():
        sys.exit("the key did not go to the key file; eset2fa-pam could not read it")
    return secrets


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def timed(cmd: list[str], env: dict, stdin: bytes = b"") -> tuple[float, float]:
    """(wall, CPU) seconds of one run; stops the benchmark unless it exited 0 (accepted)."""
    cpu = _children_cpu()
    start = time.perf_counter()
    done = subprocess.run(cmd, input=stdin, capture_output=True, env=env)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        sys.exit(f"{cmd[0]} exited {done.returncode}: {done.stderr.decode(errors='replace')}")
    return elapsed, _children_cpu() - cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=41)
    args = parser.parse_args()
    pam = shutil.which("eset2fa-pam", path=str(Path(sys.executable).parent))
    if pam is None:
        sys.exit("eset2fa-pam is not installed beside this Python: pip install . first")
    # The setup's key must go to the key file (pam_exec passes no ESET2FA_KEY, and root's
    # keyring is not reachable from it): no keyring backend, no key in the environment.
    os.environ["PYTHON_KEYRING_BACKEND"] = "keyring.backends.null.Keyring"
    os.environ.pop("ESET2FA_KEY", None)
    from eset2fa.twofactor.totp import code_at_step, time_step

    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "eset2fa.db"
        secrets = setup(db, WARMUP + args.runs)
        env = {"PAM_SERVICE": "bench", "PAM_TYPE": "auth"}  # no PYTHONDONTWRITEBYTECODE
        baseline_cmd = [sys.executable, "-c", "pass"]
        floor_cmd = [sys.executable, "-c", FLOOR]
        pam_cmd = [pam, "--db", str(db)]
        base, floor, runs = [], [], []
        for i, secret in enumerate(secrets):
            code = code_at_step(secret, time_step(time.time())).encode() + b"\0"
            b = timed(baseline_cmd, env)
            f = timed(floor_cmd, env)
            p = timed(pam_cmd, {**env, "PAM_USER": f"user{i}"}, code)
            if i >= WARMUP:  # the first runs write the .pyc files and warm the page cache
                base.append(b)
                floor.append(f)
                runs.append(p)
    for what, index in (("wall", 0), ("CPU", 1)):
        b, f, p = (statistics.median(run[index] for run in rows) for rows in (base, floor, runs))
        print(
            f"{what:4s}  python -c pass {b * 1000:5.1f} ms   eset2fa-pam {p * 1000:6.1f} ms "
            f"(ratio {p / b:.2f})   imports floor {f * 1000:5.1f} ms (ratio {f / b:.2f})"
        )
    print(f"medians of {args.runs} alternating runs each; target: wall ratio <= 3.00 (SPEC §6).")
    print("CPU (user+sys of the child) is steadier on a loaded machine. The floor only imports")
    print("what any verification needs (sqlite3, hmac, base64, cryptography's AES-GCM).")


if __name__ == "__main__":
    main()
