"""Benchmark: `db backup` of a PostgreSQL store of 100,000 enrolled users vs `pg_dump` (issue 10).

`db backup` on PostgreSQL writes the schema, read in one REPEATABLE READ transaction, as an SQLite
backup file and checks it (quick_check, schema, manifest); `pg_dump -Fc -n SCHEMA` of the same
schema is the baseline (what the alternative would cost, before any check). Both in the same run,
alternated; medians of --rounds.

    python bench/pg_backup.py [--users 100000] [--rounds 3]
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

import pg_bulk
import pg_common


def pg_dump_binary() -> str:
    found = shutil.which("pg_dump")
    if found:
        return found
    import glob

    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_dump"))
    if not candidates:
        sys.exit("no pg_dump found")
    return candidates[-1]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="eset2fa-bench-"))
    env = pg_common.bench_env(work / "home")
    env["ESET2FA_KEY"] = pg_bulk.KEY
    os.environ.update({"ESET2FA_KEY": pg_bulk.KEY, "ESET2FA_HOME": str(work / "home")})
    try:
        template = work / "template.db"
        pg_bulk.build_sqlite(template, args.users, env)
        pg_bulk.cli(env, str(template), "user", "enable", "--method", "totp", "--all")
        with pg_common.server() as server:
            url = pg_common.fresh_schema(server)
            try:
                pg_bulk.cli(env, str(template), "db", "copy", "--to", url)
                from eset2fa.db.location import PgLocation

                location = PgLocation(url)
                ours, dumps = [], []
                size = dump_size = 0
                for round_number in range(args.rounds):
                    ours.append(pg_bulk.cli(env, url, "db", "backup", "--to", str(work)))
                    size = max(p.stat().st_size for p in work.glob("*.db") if p != template)
                    out = work / f"dump{round_number}.pgdump"
                    started = time.perf_counter()
                    subprocess.run(
                        [pg_dump_binary(), "-Fc", "-n", location.schema, "-f", str(out),
                         "-d", location.dsn],
                        check=True,
                        capture_output=True,
                    )  # fmt: skip
                    dumps.append(time.perf_counter() - started)
                    dump_size = out.stat().st_size
            finally:
                pg_common.drop_schema(server, url)
        med = statistics.median
        print(f"users: {args.users}, rounds: {args.rounds}")
        print(
            f"db backup (snapshot as a checked SQLite file): {med(ours):6.2f} s, "
            f"{size / 1e6:.0f} MB"
        )
        print(
            f"pg_dump -Fc of the schema:                    {med(dumps):6.2f} s, "
            f"{dump_size / 1e6:.0f} MB"
        )
        print(f"ratio: {med(ours) / med(dumps):.2f}x")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
