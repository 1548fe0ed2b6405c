"""Every test runs the real CLI against a real store: an SQLite file in its own temporary
directory, or (modules marked `backends("sqlite", "postgresql")`, which then run on both) a fresh
schema of a real PostgreSQL server, dropped after the test.

The server is ESET2FA_TEST_PG_DSN when set (.ci/run starts one), else a throwaway cluster this
session starts (tests/pg_cluster.py). The PostgreSQL runs are skipped with a message only when no
server can be started; under CI=true that is a failure.
"""

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

# Where the tests' temporary directories go. Every write commits with synchronous=FULL and every
# CLI run checkpoints on close: on a disk the suite spent about a third of its time in fsync. A
# RAM-backed directory (Linux's /dev/shm) keeps every behaviour under test (files, modes, WAL,
# processes, signals) but the wait for the disk, which no test can observe. `--basetemp DIR`
# puts them elsewhere (on a disk: `--basetemp "$(mktemp -d)/t"`).
_RAM_DIR = Path("/dev/shm")
_RAM_DIR_MIN_FREE = 2 << 30  # the suite writes a few hundred MB at most; leave room to spare


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config):
    _register_markers(config)
    if config.option.basetemp or not (_RAM_DIR.is_dir() and os.access(_RAM_DIR, os.W_OK)):
        return
    import shutil

    if shutil.disk_usage(_RAM_DIR).free < _RAM_DIR_MIN_FREE:  # e.g. a container's 64 MB default
        return
    import tempfile

    config.option.basetemp = tempfile.mkdtemp(prefix="eset2fa-tests-", dir=_RAM_DIR)
    config.stash[_ram_basetemp] = config.option.basetemp


def pytest_unconfigure(config):
    made = config.stash.get(_ram_basetemp, None)
    if made is not None:  # pytest keeps an explicit --basetemp; this one is ours: remove it
        import shutil

        shutil.rmtree(made, ignore_errors=True)


_ram_basetemp = pytest.StashKey[str]()


@pytest.fixture(autouse=True)
def isolated_environment(tmp_path, monkeypatch):
    """No ESET2FA_* from the developer's shell, data dir in tmp_path, a plain terminal."""
    for name in list(os.environ):
        if name.startswith("ESET2FA_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("ESET2FA_HOME", str(tmp_path / "home"))
    # Stores made by the tests hash passwords with the cheap Argon2 profile (the suite made ~700
    # stores, ~65 s of Argon2 at the default cost). Read only when a store is created; tests of
    # the real cost take `production_argon2`.
    monkeypatch.setenv("ESET2FA_ARGON2_PROFILE", "test")
    monkeypatch.setenv("NO_COLOR", "1")
    monkeypatch.setenv("TERM", "dumb")
    monkeypatch.setenv("COLUMNS", "200")
    for proxy in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy"):
        monkeypatch.delenv(proxy, raising=False)


@pytest.fixture
def production_argon2(monkeypatch):
    """Stores created in this test get the default (production) Argon2 profile: request it
    before `store` (or any fixture that creates one)."""
    monkeypatch.delenv("ESET2FA_ARGON2_PROFILE")


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


def _register_markers(config) -> None:
    config.addinivalue_line(
        "markers", "backends(*names): run the module's store tests on these backends"
    )


# ESET2FA_TEST_BACKENDS=sqlite,postgresql runs every store test on the backends named (a
# developer's check of a module not marked; the suite's own choice is the marker).
_FORCED_BACKENDS = [b for b in os.environ.get("ESET2FA_TEST_BACKENDS", "").split(",") if b]


def pytest_generate_tests(metafunc):
    if "backend" in metafunc.fixturenames:
        marker = metafunc.definition.get_closest_marker("backends")
        if _FORCED_BACKENDS:
            metafunc.parametrize("backend", _FORCED_BACKENDS, indirect=True)
        elif marker is not None:
            metafunc.parametrize("backend", list(marker.args), indirect=True)


@pytest.fixture
def backend(request) -> str:
    """ "sqlite" (the default), or "postgresql" in modules marked to run on both."""
    return getattr(request, "param", "sqlite")


# Read at import: the autouse fixture below removes every ESET2FA_* variable from each test.
_GIVEN_PG_SERVER = os.environ.get("ESET2FA_TEST_PG_DSN")


@pytest.fixture(scope="session")
def pg_server():
    """The URL of a PostgreSQL server's database the tests may create schemas in."""
    given = _GIVEN_PG_SERVER
    if given:
        yield given
        return
    import pg_cluster

    try:
        cluster = pg_cluster.start()
    except Exception as exc:  # no initdb, no psycopg, a server that does not start
        message = f"no PostgreSQL server could be started for the tests: {exc}"
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI must run the PostgreSQL tests: {message}")
        pytest.skip(message)
    try:
        yield cluster.dsn
    finally:
        cluster.stop()


def drop_schema(server: str, schema: str) -> None:
    import psycopg

    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


@pytest.fixture
def pg_url(request, tmp_path, monkeypatch):
    """A PostgreSQL store URL with a fresh schema of its own, dropped after the test.

    A PostgreSQL store keeps no key file beside it: unless the test sets ESET2FA_KEY, the key is
    created in ESET2FA_KEY_FILE (here, in tmp_path), as on a node without a keyring.
    """
    import uuid

    monkeypatch.setenv("ESET2FA_KEY_FILE", str(tmp_path / "store.key"))
    server = request.getfixturevalue("pg_server")
    schema = f"t_{uuid.uuid4().hex[:16]}"
    sep = "&" if "?" in server else "?"
    yield f"{server}{sep}schema={schema}"
    drop_schema(server, schema)


@pytest.fixture
def db_path(tmp_path, backend, request) -> Path | str:
    """The store's --db: a file in tmp_path, or a PostgreSQL URL (backend "postgresql")."""
    if backend == "postgresql":
        return request.getfixturevalue("pg_url")
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


# Stores made by `init` once per session, by what decides their content (the key in ESET2FA_KEY,
# the Argon2 profile): the `store` fixture copies one (a copy takes ~1 ms, `init` ~60 ms of
# migrations and fsyncs, for ~700 stores).
_store_templates: dict[tuple, Path] = {}


def _keyring_usable() -> bool:
    from eset2fa.secrets import keys

    return keys._keyring() is not None


@pytest.fixture(scope="session")
def _template_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("store-templates")


@pytest.fixture
def store(cli, db_path, _template_dir) -> Path:
    """A created store with the Administrator (generated password); returns its path.

    `init` makes it: a --db path is created by nothing else (reads never create a store). The
    session's first store of each kind is made by `init` in a directory of its own and copied
    (with its key file, mode 0600) for the others; where a usable keyring would hold the key,
    every store is made by `init` itself.
    """
    if isinstance(db_path, str):  # PostgreSQL: a fresh schema per test, made by init
        assert cli("init").exit_code == 0
        return db_path
    key = os.environ.get("ESET2FA_KEY")
    if key is None and _keyring_usable():
        assert cli("init").exit_code == 0
        return db_path
    kind = (key, os.environ.get("ESET2FA_ARGON2_PROFILE"))
    template = _store_templates.get(kind)
    if template is None:
        template = _template_dir / f"kind{len(_store_templates)}" / "store.db"
        template.parent.mkdir()
        assert cli("init", db=template).exit_code == 0
        _store_templates[kind] = template
    db_path.parent.mkdir(parents=True, exist_ok=True)
    for source, dest in ((template, db_path), (_key_file(template), _key_file(db_path))):
        if source.exists():
            fd = os.open(dest, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
            with os.fdopen(fd, "wb") as out:
                out.write(source.read_bytes())
            os.chmod(dest, 0o600)
    return db_path


def _key_file(db: Path) -> Path:
    return db.with_name(db.name + ".key")


def audit_dump(sql) -> str:
    """Every audit row as JSON text (the chain's 32-byte links in hex): to search it for secrets."""
    return json.dumps([dict(row) for row in sql("SELECT * FROM audit")], default=bytes.hex)


@pytest.fixture
def sql(db_path):
    """Query the store directly, as a second opinion on what the CLI reports."""

    def query(statement: str, params: tuple = ()) -> list[sqlite3.Row]:
        if isinstance(db_path, str):  # PostgreSQL: the same SQL, through the store's adapter
            from eset2fa.db.location import PgLocation
            from eset2fa.db.pg import connect

            pg = connect(PgLocation(db_path))
            try:
                cursor = pg.execute(statement, params)
                return cursor.fetchall() if cursor.description else []
            finally:
                pg.close()
        conn = sqlite3.connect(db_path)
        conn.row_factory = sqlite3.Row
        try:
            rows = conn.execute(statement, params).fetchall()
            conn.commit()  # an UPDATE given here is kept, as on PostgreSQL (autocommit)
            return rows
        finally:
            conn.close()

    return query


# Every test that starts a process bounds every wait on it, fails with a message when the bound is
# reached, and kills the process in a `finally`; pytest-timeout (pyproject.toml) is only the net.
PROCESS_TIMEOUT = 60  # seconds for one CLI process; the slowest takes a few


def run_process(
    *args: str, input: str | None = None, env: dict | None = None, timeout=PROCESS_TIMEOUT
):
    """The CLI as a separate process (`python -m eset2fa`), for multi-process and signal tests.

    subprocess.run kills the process when `timeout` passes and raises TimeoutExpired.
    """
    return subprocess.run(
        [sys.executable, "-m", "eset2fa", *args],
        input=input,
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=timeout,
    )


def end_process(proc: subprocess.Popen) -> None:
    """For a `finally`: kill the process if it still runs, reap it, close its pipes."""
    if proc.poll() is None:
        proc.kill()
    try:
        proc.wait(timeout=10)
    finally:
        for stream in (proc.stdin, proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()


def read_line(proc: subprocess.Popen, timeout: float = 30, waiting_for: str = "a line") -> str:
    """The next line of the process's stdout; after `timeout` s the process is killed and the
    test fails with a message (a bare readline waits for ever on a process that hangs)."""
    from concurrent.futures import ThreadPoolExecutor
    from concurrent.futures import TimeoutError as Timeout

    with ThreadPoolExecutor(1) as pool:
        line = pool.submit(proc.stdout.readline)
        try:
            return line.result(timeout)
        except Timeout:
            proc.kill()  # ends the readline: the pipe reaches EOF
            raise AssertionError(
                f"no line from {proc.args!r} within {timeout} s (waiting for {waiting_for})"
            ) from None


def sigint_as_on_a_terminal() -> None:
    """In a child before exec: SIGINT back to its default, as a person's shell gives it.

    A suite started in the background by a non-interactive shell (`pytest &`, some CI wrappers)
    runs with SIGINT ignored, and an ignored signal stays ignored across exec: Python then
    installs no KeyboardInterrupt handler and a Ctrl-C sent to the CLI does nothing at all.
    """
    import signal

    signal.signal(signal.SIGINT, signal.SIG_DFL)


def sigkill_after(args: list[str], delay: float) -> bool:
    """Run `python -m eset2fa ARGS`, SIGKILL it after `delay` s; True if the kill cut it short."""
    import signal
    import time

    proc = subprocess.Popen(
        [sys.executable, "-m", "eset2fa", *args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        time.sleep(delay)
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
        return proc.wait(timeout=PROCESS_TIMEOUT) == -signal.SIGKILL
    finally:
        end_process(proc)
