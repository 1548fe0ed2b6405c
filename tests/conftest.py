"""Every test runs the real CLI against a real SQLite file in its own temporary directory."""

from __future__ import annotations

import base64
import json
import os
import sqlite3
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from typer.testing import CliRunner

from eset2fa.cli import app


@pytest.fixture(autouse=True)
def isolated_environment(tmp_path, monkeypatch):
    """No ESET2FA_* from the developer's shell, data dir in tmp_path, a plain terminal."""
    for name in list(os.environ):
        if name.startswith("ESET2FA_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("ESET2FA_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("NO_COLOR", "1")
    monkeypatch.setenv("TERM", "dumb")
    monkeypatch.setenv("COLUMNS", "200")
    for proxy in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy"):
        monkeypatch.delenv(proxy, raising=False)


@pytest.fixture
def env_master_key(monkeypatch):
    """Keep keys out of the developer's OS keyring: the store's key comes from ESET2FA_KEY.

    Test modules that need it say so with `pytestmark = pytest.mark.usefixtures(...)`.
    """
    key = base64.urlsafe_b64encode(os.urandom(32)).decode().rstrip("=")
    monkeypatch.setenv("ESET2FA_KEY", key)


@dataclass
class Run:
    exit_code: int
    stdout: str
    stderr: str

    def json(self):
        return json.loads(self.stdout)


@pytest.fixture
def db_path(tmp_path) -> Path:
    return tmp_path / "store.db"


@pytest.fixture
def cli(db_path):
    """Run `eset2fa --db <tmp store> ARGS...` in-process; returns exit code, stdout, stderr."""
    runner = CliRunner()

    def run(*args: str, input: str | None = None, db: Path | None = None) -> Run:
        result = runner.invoke(app, ["--db", str(db or db_path), *args], input=input)
        if result.exception and not isinstance(result.exception, SystemExit):
            raise result.exception
        return Run(result.exit_code, result.stdout, result.stderr)

    return run


@pytest.fixture
def store(cli, db_path) -> Path:
    """A created store with the Administrator (generated password); returns its path.

    `init` makes it: a --db path is created by nothing else (reads never create a store).
    """
    assert cli("init").exit_code == 0
    return db_path


@pytest.fixture
def sql(db_path):
    """Query the store directly, as a second opinion on what the CLI reports."""

    def query(statement: str, params: tuple = ()) -> list[sqlite3.Row]:
        conn = sqlite3.connect(db_path)
        conn.row_factory = sqlite3.Row
        try:
            return conn.execute(statement, params).fetchall()
        finally:
            conn.close()

    return query


def run_process(*args: str, input: str | None = None, env: dict | None = None, timeout=60):
    """The CLI as a separate process (`python -m eset2fa`), for multi-process and signal tests."""
    return subprocess.run(
        [sys.executable, "-m", "eset2fa", *args],
        input=input,
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=timeout,
    )


def sigkill_after(args: list[str], delay: float) -> bool:
    """Run `python -m eset2fa ARGS`, SIGKILL it after `delay` s; True if the kill cut it short."""
    import signal
    import time

    proc = subprocess.Popen(
        [sys.executable, "-m", "eset2fa", *args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    time.sleep(delay)
    if proc.poll() is None:
        os.kill(proc.pid, signal.SIGKILL)
    return proc.wait() == -signal.SIGKILL
