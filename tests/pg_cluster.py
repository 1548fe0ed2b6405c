"""A throwaway PostgreSQL cluster for the tests and the benchmarks (initdb + pg_ctl).

`ESET2FA_TEST_PG_DSN` (set by .ci/run, which starts its own cluster) is used when given; otherwise
`start()` makes a cluster in a temporary directory, listening on 127.0.0.1 at a free port with
password authentication (the tests cover wrong passwords), as an unprivileged user when this
process runs as root (PostgreSQL refuses root): `postgres` if it exists, else `nobody`.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

PASSWORD = "test-only-pw"
ROLE = "eset2fa"


@dataclass
class Cluster:
    dsn: str  # postgresql://eset2fa:PASSWORD@127.0.0.1:PORT/eset2fa
    host: str
    port: int
    stop: callable


def _binaries() -> Path | None:
    found = shutil.which("initdb")
    if found:
        return Path(found).parent
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    return Path(candidates[-1]).parent if candidates else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(*, durable: bool = False) -> Cluster:
    """Start a cluster; RuntimeError saying why when none can be started here."""
    bindir = _binaries()
    if bindir is None:
        raise RuntimeError("no initdb found (install PostgreSQL, e.g. Debian's postgresql)")
    top = Path(tempfile.mkdtemp(prefix="eset2fa-pg-"))
    data, sockets = top / "data", top / "sock"
    sockets.mkdir()
    as_user: list[str] = []
    if os.geteuid() == 0:
        user = "postgres"
        try:
            pwd.getpwnam(user)
        except KeyError:
            user = "nobody"
        entry = pwd.getpwnam(user)
        os.chown(top, entry.pw_uid, entry.pw_gid)
        os.chown(sockets, entry.pw_uid, entry.pw_gid)
        as_user = ["runuser", "-u", user, "--"]
    pwfile = top / "pw"
    pwfile.write_text(PASSWORD + "\n")
    if as_user:
        os.chown(pwfile, entry.pw_uid, entry.pw_gid)
    port = _free_port()
    run = {"capture_output": True, "text": True, "timeout": 120, "cwd": top}
    init = subprocess.run(
        [
            *as_user,
            str(bindir / "initdb"),
            "-D",
            str(data),
            "-U",
            ROLE,
            f"--pwfile={pwfile}",
            "--auth=scram-sha-256",
            "--encoding=UTF8",
            "--locale=C.UTF-8",
        ],
        **run,
    )
    if init.returncode != 0:
        shutil.rmtree(top, ignore_errors=True)
        raise RuntimeError(f"initdb failed: {init.stderr.strip()[-300:]}")
    settings = [
        f"-c port={port}",
        "-c listen_addresses=127.0.0.1",
        f"-c unix_socket_directories={sockets}",
        "-c max_connections=200",
        "-c shared_buffers=64MB",
    ]
    if not durable:  # the tests: nothing to keep across a crash
        settings += ["-c fsync=off", "-c synchronous_commit=off", "-c full_page_writes=off"]
    started = subprocess.run(
        [
            *as_user,
            str(bindir / "pg_ctl"),
            "-D",
            str(data),
            "-l",
            str(top / "log"),
            "-w",
            "-t",
            "60",
            "-o",
            " ".join(settings),
            "start",
        ],
        **run,
    )
    if started.returncode != 0:
        log = (top / "log").read_text() if (top / "log").exists() else ""
        shutil.rmtree(top, ignore_errors=True)
        raise RuntimeError(f"pg_ctl start failed: {(started.stderr + log).strip()[-300:]}")

    def stop() -> None:
        subprocess.run(
            [*as_user, str(bindir / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop"],
            **run,
        )
        shutil.rmtree(top, ignore_errors=True)

    dsn = f"postgresql://{ROLE}:{PASSWORD}@127.0.0.1:{port}/postgres"
    try:
        import psycopg

        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {ROLE}")
    except Exception:
        stop()
        raise
    return Cluster(
        f"postgresql://{ROLE}:{PASSWORD}@127.0.0.1:{port}/{ROLE}", "127.0.0.1", port, stop
    )
