"""Benchmark: `verify_otp` through the Python API vs a bare SELECT+UPDATE+COMMIT (SPEC §6).

Target: >= 2,000 verifications/s durable (synchronous=FULL, WAL) and <= 1.5x the time of a bare
`BEGIN IMMEDIATE; SELECT; UPDATE; COMMIT` on the same file. Each verification here runs the full
path: well-formedness check, decryption of the user's secret, three HMACs (±1 window), the
fail-count update and the hash-chained audit row, in one transaction. The lockout limit is raised
so the wrong codes never lock the users. Rounds alternate between the two loops; medians reported.

    python bench/verify_rate.py [--ops 2000] [--rounds 5]
"""

from __future__ import annotations

import argparse
import shutil
import sqlite3
import statistics
import tempfile
import time
from pathlib import Path

USERS = 100


def setup(path: Path):
    from eset2fa.accounts.actors import local_operator
    from eset2fa.db import open_store
    from eset2fa.ops import settings
    from eset2fa.twofactor import enrollment

    store = open_store(path)
    actor = local_operator()
    with store.write() as conn:
        conn.executemany(
            "INSERT INTO users (name, created_at) VALUES (?, '2026-01-01T00:00:00Z')",
            [(f"user{i}",) for i in range(USERS)],
        )
    enrollment.enable(store, actor, all_users=True)
    settings.set_value(store, actor, "lockout.max_failures", "1000000000")
    return store


def verify_loop(store, ops: int) -> float:
    from eset2fa.twofactor.totp import verify_otp

    names = [f"user{i}" for i in range(USERS)]
    started = time.perf_counter()
    for i in range(ops):
        verify_otp(store, names[i % USERS], "000000")
    return time.perf_counter() - started


def bare_loop(path: Path, ops: int) -> float:
    conn = sqlite3.connect(path, isolation_level=None, timeout=30)
    conn.execute("PRAGMA synchronous = FULL")
    names = [f"user{i}" for i in range(USERS)]
    started = time.perf_counter()
    for i in range(ops):
        conn.execute("BEGIN IMMEDIATE")
        user_id, count = conn.execute(
            "SELECT id, fail_count FROM users WHERE name = ?", (names[i % USERS],)
        ).fetchone()
        conn.execute("UPDATE users SET fail_count = ? WHERE id = ?", (count + 1, user_id))
        conn.execute("COMMIT")
    elapsed = time.perf_counter() - started
    conn.close()
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--ops", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="eset2fa-bench-"))
    try:
        path = work / "verify.db"
        store = setup(path)
        assert store.conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
        assert store.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        verify_loop(store, 200)  # warm-up: the key is loaded once per store
        ours, bare = [], []
        for _ in range(args.rounds):
            ours.append(verify_loop(store, args.ops))
            bare.append(bare_loop(path, args.ops))
        ours_s, bare_s = statistics.median(ours), statistics.median(bare)
        print(f"ops per round: {args.ops}, rounds: {args.rounds}, file: WAL, synchronous=FULL")
        print(f"verify_otp:           {args.ops / ours_s:8.0f} verifications/s")
        print(f"bare SELECT+UPDATE:   {args.ops / bare_s:8.0f} transactions/s")
        print(f"ratio (time per op):  {ours_s / bare_s:.2f}x")
        store.close()
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
