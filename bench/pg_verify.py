"""Benchmark: durable `verify_otp` on PostgreSQL vs a bare transaction on one connection (issue 10).

Target: <= 1.5x the time of a bare `BEGIN; SELECT ... FOR UPDATE; UPDATE; INSERT INTO audit;
COMMIT` over one connection, synchronous_commit=on. Each verification runs the full path: the
store's write lock, the user's row FOR UPDATE, decryption of the secret, three HMACs (±1 window),
the fail-count update and the hash-chained audit row, in one transaction. Rounds alternate between
the two loops; medians reported.

    python bench/pg_verify.py [--ops 1000] [--rounds 5]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import tempfile
import time

import pg_common

USERS = 100


def setup(url: str):
    from eset2fa.accounts.actors import local_operator
    from eset2fa.db import open_store
    from eset2fa.db.location import PgLocation
    from eset2fa.ops import settings
    from eset2fa.twofactor import enrollment

    store = open_store(PgLocation(url))
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


def bare_loop(url: str, ops: int) -> float:
    import psycopg

    from eset2fa.db.location import PgLocation

    location = PgLocation(url)
    conn = psycopg.connect(
        location.dsn, autocommit=True, options=f"-c search_path={location.schema}"
    )
    names = [f"user{i}" for i in range(USERS)]
    started = time.perf_counter()
    for i in range(ops):
        conn.execute("BEGIN")
        user_id, count = conn.execute(
            "SELECT id, fail_count FROM users WHERE name = %s FOR UPDATE", (names[i % USERS],)
        ).fetchone()
        conn.execute("UPDATE users SET fail_count = %s WHERE id = %s", (count + 1, user_id))
        conn.execute(
            "INSERT INTO audit (at, actor, action, target, result, details, prev_hash, hash)"
            " VALUES (%s, 'bench', 'auth.verify', %s, 'rejected', NULL, %s, %s)",
            ("2026-01-01T00:00:00Z", names[i % USERS], "0" * 64, "0" * 64),
        )
        conn.execute("COMMIT")
    elapsed = time.perf_counter() - started
    conn.close()
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--ops", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    os.environ.setdefault("ESET2FA_KEY", "x" * 43)
    home = tempfile.mkdtemp(prefix="eset2fa-bench-")
    os.environ["ESET2FA_HOME"] = home
    try:
        run(args)
    finally:
        shutil.rmtree(home, ignore_errors=True)


def run(args) -> None:
    with pg_common.server() as server:
        url = pg_common.fresh_schema(server)
        store = setup(url)
        try:
            sync = store.conn.execute("SHOW synchronous_commit").fetchone()[0]
            fsync = store.conn.execute("SHOW fsync").fetchone()[0]
            verify_loop(store, 100)  # warm-up: the key is loaded once per store
            bare_loop(url, 100)
            ours, bare = [], []
            for _ in range(args.rounds):
                ours.append(verify_loop(store, args.ops))
                bare.append(bare_loop(url, args.ops))
            ours_s, bare_s = statistics.median(ours), statistics.median(bare)
            print(
                f"ops per round: {args.ops}, rounds: {args.rounds}, "
                f"synchronous_commit={sync}, fsync={fsync}"
            )
            print(f"verify_otp:                   {args.ops / ours_s:8.0f} verifications/s")
            print(f"bare FOR UPDATE+UPDATE+INSERT: {args.ops / bare_s:8.0f} transactions/s")
            print(f"ratio (time per op):          {ours_s / bare_s:.2f}x")
        finally:
            store.close()
            pg_common.drop_schema(server, url)


if __name__ == "__main__":
    main()
