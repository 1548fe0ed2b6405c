"""Benchmark: durable `verify_otp` through the Python API against two bare floors (SPEC §6).

Target: <= 1.3 x the bare transaction that also inserts the audit row, on the same file (WAL,
synchronous=FULL):

- floor 1: `BEGIN IMMEDIATE; SELECT; UPDATE; COMMIT` (the count of a wrong code);
- floor 2: the same plus the INSERT of an audit row of the same shape (constant values: no MAC,
  no clock), since every attempt must be audited in its own durable commit.

Each verification runs the full path: well-formedness check, decryption of the user's secret,
three HMACs (±1 window), the fail-count update and the keyed, hash-chained audit row, in one
transaction. The lockout limit is raised so the wrong codes never lock the users. The three loops
alternate in chunks of 50 operations within each round; the medians of the rounds are reported,
with the CPU time per operation of each loop (what the process itself spends; the rest is waiting
for fsync, or for a CPU on a loaded machine). All three make the same system calls per operation
(one fdatasync, about four pwrite64 of WAL frames: checked with strace).

    python bench/verify_rate.py [--ops 2000] [--rounds 5] [--dir DIR]

`--dir` puts the store on another file system (the default is the system's temporary directory).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sqlite3
import statistics
import tempfile
import time
from pathlib import Path

USERS = 100
CHUNK = 50  # operations of one loop before the next loop's turn


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


def verify_loop(store, ops: int) -> tuple[float, float]:
    from eset2fa.twofactor.totp import verify_otp

    names = [f"user{i}" for i in range(USERS)]
    cpu, started = time.process_time(), time.perf_counter()
    for i in range(ops):
        verify_otp(store, names[i % USERS], "000000")
    return time.perf_counter() - started, time.process_time() - cpu


def open_bare(path: Path) -> tuple[sqlite3.Connection, tuple]:
    """The floors' own connection, and the audit row they insert."""
    conn = sqlite3.connect(path, isolation_level=None, timeout=30)
    conn.execute("PRAGMA synchronous = FULL")
    # An audit row as verify_otp writes it for a wrong code: same columns, same sizes, and its
    # hashes stored as the store stores them (32 bytes; 64 hex digits before schema 10).
    (kind,) = conn.execute("SELECT typeof(hash) FROM audit ORDER BY id DESC LIMIT 1").fetchone()
    digest = os.urandom(32) if kind == "blob" else os.urandom(32).hex()
    row = (
        "2026-11-26T01:02:03Z",
        "user00",
        "auth.verify",
        "user00",
        "rejected",
        '{"fail_count": 1, "reason": "wrong_code"}',
        digest,
        digest,
    )
    return conn, row


_INSERT = (
    "INSERT INTO audit (at, actor, action, target, result, details, prev_hash, hash)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
)


def bare_loop(conn: sqlite3.Connection, row: tuple, ops: int, *, audit: bool):
    names = [f"user{i}" for i in range(USERS)]
    cpu, started = time.process_time(), time.perf_counter()
    for i in range(ops):
        conn.execute("BEGIN IMMEDIATE")
        user_id, count = conn.execute(
            "SELECT id, fail_count FROM users WHERE name = ?", (names[i % USERS],)
        ).fetchone()
        conn.execute("UPDATE users SET fail_count = ? WHERE id = ?", (count + 1, user_id))
        if audit:
            conn.execute(_INSERT, row)
        conn.execute("COMMIT")
    return time.perf_counter() - started, time.process_time() - cpu


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--ops", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--dir", type=Path, default=None)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="eset2fa-bench-", dir=args.dir))
    try:
        path = work / "verify.db"
        store = setup(path)
        assert store.conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
        assert store.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        verify_loop(store, 200)  # warm-up: the key is loaded once per store
        conn, row = open_bare(path)
        runs: dict[str, list[tuple[float, float]]] = {"verify": [], "bare": [], "audit": []}
        for _ in range(args.rounds):
            # The three loops alternate in chunks of CHUNK operations, so that the load of a
            # shared machine, which changes from second to second, falls on all three alike.
            totals = {name: [0.0, 0.0] for name in runs}
            for _ in range(max(args.ops // CHUNK, 1)):
                for name, (wall, used) in (
                    ("verify", verify_loop(store, CHUNK)),
                    ("bare", bare_loop(conn, row, CHUNK, audit=False)),
                    ("audit", bare_loop(conn, row, CHUNK, audit=True)),
                ):
                    totals[name][0] += wall
                    totals[name][1] += used
            for name in runs:
                runs[name].append((totals[name][0], totals[name][1]))
        conn.close()
        args.ops = max(args.ops // CHUNK, 1) * CHUNK
        wall = {name: statistics.median(r[0] for r in rounds) for name, rounds in runs.items()}
        cpu = {name: statistics.median(r[1] for r in rounds) for name, rounds in runs.items()}

        def line(label: str, name: str) -> str:
            return (
                f"{label:<34} {args.ops / wall[name]:7.0f}/s"
                f"  {wall[name] / args.ops * 1e6:6.0f} us/op"
                f"  (CPU {cpu[name] / args.ops * 1e6:5.1f} us/op)"
            )

        print(f"ops per round: {args.ops}, rounds: {args.rounds}, WAL, synchronous=FULL, {work}")
        print(line("verify_otp", "verify"))
        print(line("floor 1: SELECT+UPDATE+COMMIT", "bare"))
        print(line("floor 2: + audit INSERT", "audit"))
        print(f"ratio to floor 2 (target <= 1.3):  {wall['verify'] / wall['audit']:.2f}x")
        print(f"ratio to floor 1:                  {wall['verify'] / wall['bare']:.2f}x")
        store.close()
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
