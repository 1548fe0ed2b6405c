"""Benchmarks: bulk enable of 100,000 users and `db copy` of 100,000 users (issue 10).

Targets: `user enable --method totp --all` on a PostgreSQL store of 100,000 users <= 10 s;
`db copy --to postgresql://...` of a 100,000-user SQLite store (TOTP enrolled, sealed secrets,
keyed audit chain) <= 15 s. Both run the real CLI in a subprocess; the stores are built first
(not timed). Baselines in the same run: the same bulk enable on SQLite, and a bare psycopg COPY of
the same rows into the same tables (what any copy must at least do). Medians of --rounds.

    python bench/pg_bulk.py [--users 100000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pg_common

KEY = "x" * 43


def build_sqlite(path: Path, users: int, env: dict) -> None:
    from eset2fa.db import open_store

    store = open_store(path)
    with store.write() as conn:
        conn.executemany(
            "INSERT INTO users (name, group_name, created_at) VALUES (?, ?, ?)",
            ((f"user{i:07d}", f"g{i % 50}", "2026-01-01T00:00:00Z") for i in range(users)),
        )
    store.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    store.close()


def cli(env: dict, db: str, *args: str) -> float:
    command = [sys.executable, "-m", "eset2fa", "--db", db, "--json", *args]
    started = time.perf_counter()
    run = subprocess.run(command, env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - started
    if run.returncode != 0:
        sys.exit(f"{' '.join(args)} failed ({run.returncode}): {run.stderr[-500:]}")
    return elapsed


def bare_copy(source: Path, url: str) -> float:
    """psycopg COPY of every table's rows into a migrated, empty store (the floor of a copy)."""
    import psycopg

    from eset2fa.db import open_store, tables
    from eset2fa.db.location import PgLocation

    location = PgLocation(url)
    open_store(location, create=True).close()
    src = sqlite3.connect(source)
    started = time.perf_counter()
    with psycopg.connect(location.dsn, options=f"-c search_path={location.schema}") as conn:
        with conn.cursor() as cursor:
            for table in tables.layout():
                cursor.execute(f"DELETE FROM {table.name}")
                columns = ", ".join(table.columns)
                with cursor.copy(f"COPY {table.name} ({columns}) FROM STDIN") as copy:
                    for row in src.execute(f"SELECT {columns} FROM {table.name}"):
                        copy.write_row(row)
    elapsed = time.perf_counter() - started
    src.close()
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="eset2fa-bench-"))
    env = pg_common.bench_env(work / "home")
    env["ESET2FA_KEY"] = KEY
    import os

    os.environ.update({"ESET2FA_KEY": KEY, "ESET2FA_HOME": str(work / "home")})
    try:
        template = work / "template.db"
        build_sqlite(template, args.users, env)
        enrolled = work / "enrolled.db"
        shutil.copyfile(template, enrolled)
        cli(env, str(enrolled), "user", "enable", "--method", "totp", "--all")
        with pg_common.server() as server:
            pg_enable, sqlite_enable, copies, bares = [], [], [], []
            for round_number in range(args.rounds):
                # bulk enable: PostgreSQL store of N disabled users, then the same on SQLite
                url = pg_common.fresh_schema(server)
                bare_url = pg_common.fresh_schema(server)
                copy_url = pg_common.fresh_schema(server)
                try:
                    cli(env, str(template), "db", "copy", "--to", url)
                    pg_enable.append(cli(env, url, "user", "enable", "--method", "totp", "--all"))
                    db = work / f"round{round_number}.db"
                    shutil.copyfile(template, db)
                    sqlite_enable.append(
                        cli(env, str(db), "user", "enable", "--method", "totp", "--all")
                    )
                    db.unlink()
                    copies.append(cli(env, str(enrolled), "db", "copy", "--to", copy_url))
                    bares.append(bare_copy(enrolled, bare_url))
                finally:
                    for each in (url, bare_url, copy_url):
                        pg_common.drop_schema(server, each)
        med = statistics.median
        print(f"users: {args.users}, rounds: {args.rounds}")
        enable_ratio = med(pg_enable) / med(sqlite_enable)
        print(
            f"user enable --all on PostgreSQL: {med(pg_enable):6.2f} s "
            f"(same on SQLite {med(sqlite_enable):.2f} s, ratio {enable_ratio:.2f}x)"
        )
        print(
            f"db copy SQLite -> PostgreSQL:    {med(copies):6.2f} s "
            f"(bare COPY of the rows {med(bares):.2f} s, ratio {med(copies) / med(bares):.2f}x)"
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
