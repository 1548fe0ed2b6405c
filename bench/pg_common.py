"""PostgreSQL for the pg_* benchmarks: ESET2FA_BENCH_PG_DSN, or a throwaway durable cluster.

The cluster is the test suite's (tests/pg_cluster.py) started with fsync and synchronous_commit on
(the defaults), so a commit waits for its WAL flush as a production server's does.
"""

from __future__ import annotations

import contextlib
import os
import sys
import uuid
from pathlib import Path


@contextlib.contextmanager
def server():
    """Yields a server URL (a database the benchmark may create schemas in)."""
    given = os.environ.get("ESET2FA_BENCH_PG_DSN")
    if given:
        yield given
        return
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
    import pg_cluster

    cluster = pg_cluster.start(durable=True)
    try:
        yield cluster.dsn
    finally:
        cluster.stop()


def fresh_schema(url: str) -> str:
    """A store URL naming a new schema of its own."""
    sep = "&" if "?" in url else "?"
    return f"{url}{sep}schema=bench_{uuid.uuid4().hex[:12]}"


def drop_schema(url: str, store_url: str) -> None:
    import psycopg

    schema = store_url.rsplit("schema=", 1)[1]
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def bench_env(home: Path) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ESET2FA_")}
    env["ESET2FA_HOME"] = str(home)
    return env
