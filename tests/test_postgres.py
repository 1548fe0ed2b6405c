"""The PostgreSQL backend (issue 10): the same store on a real server, shared by several processes
and "nodes", and every kind of bad input refused in one line, exit 9, with nothing changed.

Each test gets a fresh schema of the session's server (conftest `pg_url`); the server is the one
.ci/run started (ESET2FA_TEST_PG_DSN) or a throwaway cluster started for this session.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest
from conftest import run_process
from totp_helpers import enroll, totp_now

pytestmark = pytest.mark.backends("postgresql")

PROCESSES = 8


def wrong_code(secret: str) -> str:
    valid = {totp_now(secret, k) for k in range(-3, 4)}
    return next(c for c in ("000000", "111111", "222222", "333333") if c not in valid)


def errors_in(run) -> list[str]:
    return [line for line in run.stderr.splitlines() if line.strip()]


def pg_relations(server: str, schema: str) -> list[str]:
    import psycopg

    with psycopg.connect(server, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
            " WHERE n.nspname = %s ORDER BY 1",
            (schema,),
        ).fetchall()
    return [r[0] for r in rows]


def schema_of(url: str) -> str:
    return url.rsplit("schema=", 1)[1]


def test_every_command_of_a_session_works_and_the_password_never_shows(cli, store, sql):
    secret = enroll(cli, "alice", group="ops")
    assert cli("auth", "verify", "alice", totp_now(secret)).exit_code == 0
    assert cli("user", "status", "alice", "--json").json()["state"] == "active"
    assert cli("user", "add", "ALICE").exit_code != 0  # names are case-insensitive, as on SQLite
    assert cli("user", "status", "Alice", "--json").json()["state"] == "active"
    listed = cli("user", "list", "--json").json()
    assert [u["name"] for u in listed] == ["Administrator", "alice"]
    audit = cli("audit", "list", "--user", "ALICE", "--json").json()
    assert {row["action"] for row in audit} >= {"user.add", "user.enable", "auth.verify"}
    assert cli("audit", "verify").exit_code == 0
    check = cli("db", "check", "--json").json()
    assert check["ok"] and check["users"] == 2
    doctor = cli("doctor", "--json")
    assert doctor.exit_code == 0, doctor.stdout
    everything = "".join(
        cli(*args).stdout + cli(*args).stderr
        for args in (("db", "check"), ("doctor",), ("audit", "list", "--json"))
    )
    assert "test-only-pw" not in everything and "postgresql://eset2fa@" in everything
    # The secret is sealed at rest, as on SQLite.
    stored = sql("SELECT secret FROM users WHERE name = 'alice'")[0][0]
    assert isinstance(stored, bytes) and secret.encode() not in stored


def test_eight_processes_of_wrong_codes_lock_at_exactly_ten_and_lose_nothing(cli, store, sql):
    secret = enroll(cli)
    assert cli("auth", "verify", "alice", totp_now(secret)).exit_code == 0  # active
    bad = wrong_code(secret)
    per_process = 2

    def attempt(_):
        runs = []
        for _ in range(per_process):
            args = ("--db", str(store), "auth", "verify", "alice", bad, "--json")
            runs.append(run_process(*args, timeout=120))
        return runs

    with ThreadPoolExecutor(PROCESSES) as pool:
        runs = [r for batch in pool.map(attempt, range(PROCESSES)) for r in batch]
    assert all(r.returncode != 0 for r in runs)
    assert not any("Traceback" in r.stderr for r in runs), [r.stderr for r in runs]
    row = sql("SELECT locked, fail_count FROM users WHERE name = 'alice'")[0]
    assert (row["locked"], row["fail_count"]) == (1, 10)
    attempts = sql("SELECT count(*) FROM audit WHERE action = 'auth.verify'")[0][0]
    assert attempts == 1 + PROCESSES * per_process  # every attempt recorded, none lost
    assert cli("audit", "verify").exit_code == 0  # one chain: no fork under concurrency
    assert cli("auth", "verify", "alice", totp_now(secret)).exit_code != 0  # locked


def test_one_correct_code_sent_by_eight_processes_is_accepted_once(cli, store, sql):
    secret = enroll(cli)
    code = totp_now(secret)

    def attempt(_):
        args = ("--db", str(store), "auth", "verify", "alice", code, "--json")
        return run_process(*args, timeout=120)

    with ThreadPoolExecutor(PROCESSES) as pool:
        runs = list(pool.map(attempt, range(PROCESSES)))
    assert sorted(r.returncode for r in runs) == [0] + [1] * (PROCESSES - 1), [
        r.stderr for r in runs
    ]
    assert [json.loads(r.stdout)["accepted"] for r in runs].count(True) == 1
    results = sorted(r[0] for r in sql("SELECT result FROM audit WHERE action = 'auth.verify'"))
    assert results == ["accepted"] + ["rejected"] * (PROCESSES - 1)


def test_two_nodes_with_their_own_key_file_see_each_other_at_once(cli, store, tmp_path):
    """Two "nodes": processes in different working directories, each with its own copy of the
    key file; one locks a user, the other then refuses that user's correct code."""
    secret = enroll(cli)
    assert cli("config", "set", "lockout.max_failures", "3").exit_code == 0
    key_file = Path(os.environ["ESET2FA_KEY_FILE"])
    nodes = []
    for name in ("node-a", "node-b"):
        home = tmp_path / name
        home.mkdir()
        shutil.copy2(key_file, home / "eset2fa.key")
        nodes.append({"cwd": home, "env": {"ESET2FA_KEY_FILE": str(home / "eset2fa.key")}})
    key_file.unlink()  # neither node reads the first one

    def on(node, *args):
        return subprocess.run(
            [sys.executable, "-m", "eset2fa", "--db", str(store), *args],
            capture_output=True,
            text=True,
            cwd=node["cwd"],
            env={**os.environ, **node["env"]},
            timeout=60,
        )

    a, b = nodes
    assert on(a, "user", "add", "bob").returncode == 0
    assert "bob" in on(b, "user", "list").stdout  # B sees A's user at once
    bad = wrong_code(secret)
    for _ in range(3):
        assert on(a, "auth", "verify", "alice", bad).returncode != 0
    refused = on(b, "auth", "verify", "alice", totp_now(secret), "--json")
    assert refused.returncode == 4, refused.stdout  # locked, however right the code
    assert json.loads(refused.stdout)["error"]["code"] == "locked"
    assert on(b, "user", "unlock", "alice").returncode == 0
    assert on(a, "auth", "verify", "alice", totp_now(secret)).returncode == 0


def test_a_node_with_another_key_is_told_by_doctor_and_refused(cli, store, tmp_path):
    enroll(cli)
    other = tmp_path / "other.key"
    from eset2fa.secrets.keys import encode_key

    other.write_text(encode_key(os.urandom(32)) + "\n")
    other.chmod(0o600)
    env = {"ESET2FA_KEY_FILE": str(other)}
    doctor = run_process("--db", str(store), "doctor", "--json", env=env)
    assert doctor.returncode != 0
    key_check = next(c for c in json.loads(doctor.stdout)["checks"] if c["check"] == "key")
    assert key_check["status"] == "failed" and "not this store's key" in key_check["detail"]
    enable = run_process("--db", str(store), "user", "add", "carol", env=env)
    assert enable.returncode == 9, enable.stderr  # the encryption key error, nothing written
    assert "carol" not in cli("user", "list").stdout


def test_init_without_any_place_for_the_key_says_where_it_may_come_from(
    pg_url, pg_server, monkeypatch
):
    monkeypatch.delenv("ESET2FA_KEY_FILE")
    run = run_process("--db", pg_url, "init", env={"PYTHON_KEYRING_BACKEND": _NULL_KEYRING})
    assert run.returncode == 9, run.stderr
    assert "ESET2FA_KEY_FILE" in run.stderr and "Traceback" not in run.stderr
    assert pg_relations(pg_server, schema_of(pg_url)) == []  # refused before creating anything


_NULL_KEYRING = "keyring.backends.null.Keyring"


def _with_netloc(url: str, netloc: str | None = None, path: str | None = None) -> str:
    parts = urlsplit(url)
    return urlunsplit(
        parts._replace(netloc=netloc or parts.netloc, path=path if path is not None else parts.path)
    )


def _bad_urls(pg_url: str) -> dict[str, str]:
    parts = urlsplit(pg_url)
    user = parts.username
    return {
        "unreachable": _with_netloc(pg_url, f"{user}:test-only-pw@127.0.0.1:1"),
        "wrong password": _with_netloc(
            pg_url, f"{user}:not-the-password@{parts.hostname}:{parts.port}"
        ),
        "missing database": _with_netloc(pg_url, path="/no_such_database"),
    }


@pytest.mark.parametrize("case", ["unreachable", "wrong password", "missing database"])
@pytest.mark.parametrize("command", [("init",), ("user", "list"), ("user", "add", "bob")])
def test_bad_connections_are_one_line_exit_9_and_no_password(pg_url, case, command):
    url = _bad_urls(pg_url)[case]
    run = run_process("--db", url, *command, env={"ESET2FA_KEY": "x" * 43})
    assert run.returncode == 9, run.stderr
    lines = errors_in(run)
    assert lines[0].startswith("Error: ") and len(lines) == 2 and lines[1].startswith("Hint: ")
    assert "password" not in lines[0].lower() or case == "wrong password"
    assert "test-only-pw" not in run.stderr + run.stdout
    assert "not-the-password" not in run.stderr + run.stdout
    assert "Traceback" not in run.stderr


def test_the_password_is_also_taken_from_pgpassword(pg_url, cli):
    parts = urlsplit(pg_url)
    bare = _with_netloc(pg_url, f"{parts.username}@{parts.hostname}:{parts.port}")
    run = run_process("--db", bare, "init", env={"PGPASSWORD": parts.password})
    assert run.returncode == 0, run.stderr
    assert parts.password not in run.stdout + run.stderr
    assert run_process("--db", bare, "user", "list", env={"PGPASSWORD": "nope"}).returncode == 9


def test_a_schema_holding_tables_eset2fa_did_not_create_is_refused_untouched(pg_url, pg_server):
    import psycopg

    schema = schema_of(pg_url)
    with psycopg.connect(pg_server, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
        conn.execute(f"CREATE TABLE {schema}.invoices (id int, amount int)")
    before = pg_relations(pg_server, schema)
    for command in (("init",), ("user", "list"), ("user", "add", "bob")):
        run = run_process("--db", pg_url, *command)
        assert run.returncode == 9, run.stderr
        assert "did not create" in run.stderr and "invoices" in run.stderr
        assert len(errors_in(run)) == 2
    assert pg_relations(pg_server, schema) == before == ["invoices"]


def test_an_extra_table_beside_a_store_and_a_newer_schema_are_refused(cli, store, pg_server):
    import psycopg

    schema = schema_of(store)
    with psycopg.connect(pg_server, autocommit=True) as conn:
        conn.execute(f"CREATE TABLE {schema}.notes (x int)")
    run = run_process("--db", str(store), "user", "list")
    assert run.returncode == 9 and "notes" in run.stderr
    with psycopg.connect(pg_server, autocommit=True) as conn:
        conn.execute(f"DROP TABLE {schema}.notes")
        conn.execute(f"UPDATE {schema}.store_identity SET schema_version = 999")
    before = pg_relations(pg_server, schema)
    run = run_process("--db", str(store), "user", "add", "bob")
    assert run.returncode == 9 and "schema version 999" in run.stderr
    assert pg_relations(pg_server, schema) == before


def test_init_refuses_an_existing_store_and_reads_never_create_one(cli, pg_url, pg_server):
    schema = schema_of(pg_url)
    assert cli("user", "list").exit_code == 9
    assert pg_relations(pg_server, schema) == []  # nothing created by a read
    assert cli("init").exit_code == 0
    assert cli("init").exit_code == 6


def test_without_psycopg_one_line_names_the_extra(tmp_path, pg_url):
    blocker = tmp_path / "no_psycopg"
    blocker.mkdir()
    (blocker / "psycopg.py").write_text("raise ImportError('psycopg is not installed')\n")
    pythonpath = os.pathsep.join(filter(None, [str(blocker), os.environ.get("PYTHONPATH")]))
    run = run_process("--db", pg_url, "user", "list", env={"PYTHONPATH": pythonpath})
    assert run.returncode == 9
    lines = errors_in(run)
    assert len(lines) == 2 and "eset2fa[postgres]" in run.stderr


def test_user_names_complete_from_a_postgresql_store(cli, store):
    from test_completion import complete

    for name in ("alice", "alina", "bob"):
        assert cli("user", "add", name).exit_code == 0
    result = complete("user", "status", "al", env={"ESET2FA_DB": str(store)})
    assert result.returncode == 0 and result.stderr == ""
    assert result.stdout.split() == ["alice", "alina"]
    wrong = str(store).replace(schema_of(str(store)), "nothing_here")  # no store there: no names
    assert complete("user", "status", "al", env={"ESET2FA_DB": wrong}).stdout.split() == []


def test_an_import_of_several_batches_parsed_in_a_child_process(cli, store, sql):
    """`user import` forks its parser (twofactor/parse_ahead.py) while the PostgreSQL
    connection is open in the importer; the child never uses it. Three batches, one transaction."""
    import base64

    secrets = [base64.b32encode(os.urandom(20)).decode() for _ in range(12_000)]
    lines = "".join(
        f"otpauth://totp/Old:u{i:05d}?secret={secret}&issuer=Old\n"
        for i, secret in enumerate(secrets)
    )
    lines += "otpauth://hotp/Old:u00000?secret=JBSWY3DPEHPK3PXP&counter=1\n"  # a refusal, last
    imported = cli("--json", "user", "import", "--otpauth", "-", "--create-users", input=lines)
    assert imported.exit_code == 0, imported.stderr
    document = imported.json()
    assert document["counts"] == {"imported": 12_000, "skipped": 1}
    assert [r["name"] for r in document["results"][:2]] == ["u00000", "u00001"]
    assert sql("SELECT count(*) FROM users WHERE state = 'active'")[0][0] == 12_000
    assert cli("auth", "verify", "u11999", totp_now(secrets[-1])).exit_code == 0
    assert cli("audit", "verify").exit_code == 0


def _without_password(url: str) -> tuple[str, str]:
    """(the URL without its password, a .pgpass line for it)."""
    parts = urlsplit(url)
    netloc = f"{parts.username}@{parts.hostname}:{parts.port}"
    pgpass = f"{parts.hostname}:{parts.port}:{parts.path.lstrip('/')}:{parts.username}:"
    return urlunsplit(parts._replace(netloc=netloc)), pgpass + (parts.password or "")


def test_eset2fa_pam_on_a_postgresql_store_with_its_key_file(cli, store, sql, tmp_path):
    """pam_exec's line names the store by a URL without its password (in root's ~/.pgpass;
    here PGPASSFILE stands for it) and the key by --key-file."""
    from test_pam import run_pam

    secret = enroll(cli, "alice")
    key_file = os.environ["ESET2FA_KEY_FILE"]  # conftest pg_url: where init put the key
    url, pgpass_line = _without_password(store)
    pgpass = tmp_path / "pgpass"
    pgpass.write_text(pgpass_line + "\n")
    pgpass.chmod(0o600)
    env = {"PGPASSFILE": str(pgpass)}
    args = ("--db", url, "--key-file", key_file)
    accepted = run_pam(None, "alice", totp_now(secret).encode() + b"\0", *args, env=env)
    assert accepted.returncode == 0, accepted.stderr
    wrong = run_pam(None, "alice", wrong_code(secret).encode() + b"\0", *args, env=env)
    assert wrong.returncode == 1 and b"wrong code" in wrong.stderr
    rows = sql("SELECT actor, action, result FROM audit WHERE action = 'pam.verify' ORDER BY id")
    assert [tuple(r) for r in rows] == [
        ("pam:testsvc", "pam.verify", "accepted"),
        ("pam:testsvc", "pam.verify", "rejected"),
    ]
    # Refused, exit 2, before anything is opened: a password on the PAM line (every user can
    # read /etc/pam.d), or no key file named.
    exposed = run_pam(None, "alice", b"123456\0", "--db", store, "--key-file", key_file)
    assert exposed.returncode == 2 and b".pgpass" in exposed.stderr
    assert b"test-only-pw" not in exposed.stderr
    keyless = run_pam(None, "alice", b"123456\0", "--db", url, env=env)
    assert keyless.returncode == 2 and b"--key-file" in keyless.stderr
    # A key file others can read is refused (exit 9), as beside a database file.
    os.chmod(key_file, 0o644)
    try:
        shared = run_pam(None, "alice", totp_now(secret).encode() + b"\0", *args, env=env)
    finally:
        os.chmod(key_file, 0o600)
    assert shared.returncode == 9 and b"readable by group or others" in shared.stderr
    assert len(sql("SELECT id FROM audit WHERE action = 'pam.verify'")) == 2  # nothing more
