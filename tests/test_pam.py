"""The PAM second factor: `eset2fa-pam` under the real PAM stack (pamtester + pam_exec), the same
program as a plain process for every fail-closed case, and `auth verify --code-stdin`.

eset2fa-pam runs as pam_exec runs it: the installed console script (absolute path), an environment
holding only the PAM_* variables (no HOME, no PATH, no ESET2FA_KEY), the code on stdin. The store's
key therefore lives in the key file beside the database: the `file_key` fixture makes sure the key
is created there even on a desktop with an OS keyring.
"""

from __future__ import annotations

import glob
import json
import os
import shutil
import stat
import subprocess
import sys
import uuid
from pathlib import Path

import keyring
import pytest
from conftest import Run
from keyring.backends import null
from totp_helpers import enroll, totp_now

# Absolute (pam_exec needs it), symlinks kept: the venv's python links to the base interpreter.
PAM_BIN = Path(sys.executable).absolute().parent / "eset2fa-pam"
PAM_EXEC_GLOBS = (
    "/lib/*/security/pam_exec.so",
    "/usr/lib/*/security/pam_exec.so",
    "/lib/security/pam_exec.so",
    "/usr/lib/security/pam_exec.so",
    "/usr/lib64/security/pam_exec.so",
)


@pytest.fixture(autouse=True)
def file_key():
    """No usable keyring: the store's key goes to `<database>.key`, where eset2fa-pam finds it."""
    previous = keyring.get_keyring()
    keyring.set_keyring(null.Keyring())
    yield
    keyring.set_keyring(previous)


@pytest.fixture(scope="module")
def enrolled_template(tmp_path_factory) -> tuple[Path, str]:
    """One store with alice enrolled (pending), its key in the key file; copied by each test.

    Made once: creating a store hashes the Administrator's password with Argon2 (~0.5 s).
    """
    from typer.testing import CliRunner

    from eset2fa.cli import app

    db = tmp_path_factory.mktemp("template") / "store.db"
    previous = keyring.get_keyring()
    keyring.set_keyring(null.Keyring())
    try:
        with pytest.MonkeyPatch.context() as env:
            for name in [n for n in os.environ if n.startswith("ESET2FA_")]:
                env.delenv(name)
            env.setenv("ESET2FA_HOME", str(db.parent / "home"))
            runner = CliRunner()

            def cli(*args: str) -> Run:
                result = runner.invoke(app, ["--db", str(db), *args])
                return Run(result.exit_code, result.stdout, result.stderr)

            assert cli("init").exit_code == 0  # only init creates a store at --db (issue 9)
            secret = enroll(cli, "alice")
    finally:
        keyring.set_keyring(previous)
    assert db.with_name(db.name + ".key").is_file()
    return db, secret


@pytest.fixture
def alice(enrolled_template, db_path) -> str:
    """This test's copy of the template store (and its key file); returns alice's secret."""
    template, secret = enrolled_template
    for suffix in ("", ".key"):
        source = template.with_name(template.name + suffix)
        target = db_path.with_name(db_path.name + suffix)
        shutil.copy2(source, target)
    assert not template.with_name(template.name + "-wal").exists()
    return secret


def run_pam(
    db: Path | str | None,
    user: str | None,
    stdin: bytes,
    *args: str,
    env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess:
    """eset2fa-pam as pam_exec starts it: PAM_* variables only, the code on stdin."""
    assert PAM_BIN.is_file(), f"{PAM_BIN} is missing: reinstall with pip install -e '.[test]'"
    environ = {"PAM_SERVICE": "testsvc", "PAM_TYPE": "auth", **(env or {})}
    if user is not None:
        environ["PAM_USER"] = user
    argv = [str(PAM_BIN), *(["--db", str(db)] if db is not None else []), *args]
    result = subprocess.run(argv, input=stdin, capture_output=True, env=environ, timeout=60)
    assert b"Traceback" not in result.stderr, result.stderr
    assert result.stdout == b""
    return result


def user_row(sql, name: str = "alice"):
    return sql("SELECT state, fail_count, locked FROM users WHERE name = ?", (name,))[0]


def pam_audit(sql) -> list[tuple[str, str, str, str]]:
    rows = sql("SELECT actor, action, target, result FROM audit WHERE action LIKE 'pam.%'")
    return [tuple(row) for row in rows]


def wrong_code(secret: str) -> str:
    valid = {totp_now(secret, d) for d in range(-3, 4)}
    return next(c for c in ("000000", "111111", "222222") if c not in valid)


def lock(cli, secret: str, name: str = "alice") -> None:
    assert cli("config", "set", "lockout.max_failures", "1").exit_code == 0
    assert cli("auth", "verify", name, wrong_code(secret)).exit_code == 1  # locks
    assert cli("user", "status", name, "--require", "locked").exit_code == 0


# -- eset2fa-pam as a plain process ----------------------------------------------------------------


@pytest.mark.parametrize(
    "framing",
    [b"%s\0", b"%s\n", b"%s\r\n", b"%s", b"%s\0trailing"],
    ids=["pam_exec-nul", "newline", "crlf", "bare", "nul-then-bytes"],
)
def test_good_code_is_accepted_however_it_is_terminated(alice, db_path, sql, framing):
    result = run_pam(db_path, "alice", framing % totp_now(alice).encode())
    assert result.returncode == 0, result.stderr
    assert result.stderr == b""
    assert user_row(sql)["state"] == "active"
    assert pam_audit(sql) == [("pam:testsvc", "pam.verify", "alice", "accepted")]


def test_runs_without_home_with_a_clean_path_and_without_pam_service(alice, db_path, sql):
    env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin"}
    result = subprocess.run(
        [str(PAM_BIN), "--db", str(db_path)],
        input=totp_now(alice).encode() + b"\0",
        capture_output=True,
        env={**env, "PAM_USER": "alice"},
        cwd="/",
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert pam_audit(sql) == [("pam", "pam.verify", "alice", "accepted")]


def test_wrong_code_fails_and_counts(alice, db_path, sql):
    result = run_pam(db_path, "alice", wrong_code(alice).encode() + b"\0")
    assert result.returncode == 1
    assert b"rejected (wrong code)" in result.stderr
    assert user_row(sql)["fail_count"] == 1
    assert pam_audit(sql) == [("pam:testsvc", "pam.verify", "alice", "rejected")]


def test_replayed_code_fails(alice, db_path):
    code = totp_now(alice).encode() + b"\0"
    assert run_pam(db_path, "alice", code).returncode == 0
    again = run_pam(db_path, "alice", code)
    assert again.returncode == 1
    assert b"code already used" in again.stderr


@pytest.mark.parametrize(
    "typed", [b"12345", b"1234567", b"12 345", b"abcdef", b"\xff\xfe\x00", b"\0", b"\n"]
)
def test_malformed_code_fails_and_counts(alice, db_path, sql, typed):
    result = run_pam(db_path, "alice", typed)
    assert result.returncode == 1
    assert b"not a 6-digit code" in result.stderr
    assert user_row(sql)["fail_count"] == 1


def test_locked_user_fails_even_with_the_right_code(cli, alice, db_path, sql):
    lock(cli, alice)
    result = run_pam(db_path, "alice", totp_now(alice).encode() + b"\0")
    assert result.returncode == 4
    assert b"locked" in result.stderr
    assert user_row(sql)["locked"] == 1
    assert pam_audit(sql) == [("pam:testsvc", "pam.verify", "alice", "locked")]


def test_this_rejection_locks_the_account(cli, alice, db_path):
    assert cli("config", "set", "lockout.max_failures", "1").exit_code == 0
    result = run_pam(db_path, "alice", wrong_code(alice).encode())
    assert result.returncode == 1
    assert b"the account is now locked" in result.stderr


def test_missing_store_fails_and_is_not_created(tmp_path):
    db = tmp_path / "nothing-here" / "eset2fa.db"
    result = run_pam(db, "alice", b"123456\0")
    assert result.returncode == 9  # no store is a storage error, as everywhere (issue 9)
    assert b"No eset2fa database" in result.stderr
    assert not db.parent.exists()


def test_without_db_it_reads_the_system_store_and_never_creates_it():
    from eset2fa.pam import DEFAULT_DB

    if Path(DEFAULT_DB).exists():
        pytest.skip(f"{DEFAULT_DB} exists on this machine; not touching it")
    result = run_pam(None, "alice", b"123456\0")
    assert result.returncode == 9
    assert DEFAULT_DB.encode() in result.stderr
    assert not Path(DEFAULT_DB).exists()


def test_empty_store_file_fails_and_stays_empty(tmp_path):
    db = tmp_path / "empty.db"
    db.touch(mode=0o600)
    result = run_pam(db, "alice", b"123456\0")
    assert result.returncode == 9
    assert b"is empty" in result.stderr
    assert db.stat().st_size == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty.db"]


def test_a_file_that_is_not_a_store_fails(tmp_path):
    db = tmp_path / "notes.db"
    db.write_text("not a database at all, just some text " * 200)
    db.chmod(0o600)
    before = db.read_bytes()
    result = run_pam(db, "alice", b"123456\0")
    assert result.returncode == 9
    assert db.read_bytes() == before


def test_missing_key_fails_and_changes_nothing(alice, db_path, sql):
    db_path.with_name(db_path.name + ".key").unlink()
    result = run_pam(db_path, "alice", totp_now(alice).encode() + b"\0")
    assert result.returncode == 9
    assert b"key" in result.stderr
    assert user_row(sql)["state"] == "pending"
    assert pam_audit(sql) == []  # the attempt's transaction rolled back


def test_wrong_key_fails(alice, db_path):
    key_file = db_path.with_name(db_path.name + ".key")
    key_file.write_text("A" * 43 + "\n")
    result = run_pam(db_path, "alice", totp_now(alice).encode() + b"\0")
    assert result.returncode == 9
    assert b"not this store's key" in result.stderr


def test_store_or_key_open_to_others_is_refused(alice, db_path, sql):
    key_file = db_path.with_name(db_path.name + ".key")
    code = totp_now(alice).encode() + b"\0"
    db_path.chmod(0o620)
    result = run_pam(db_path, "alice", code)
    assert result.returncode == 9
    assert b"writable by group or others" in result.stderr
    db_path.chmod(0o600)
    key_file.chmod(0o644)
    result = run_pam(db_path, "alice", code)
    assert result.returncode == 9
    assert b"readable by group or others" in result.stderr
    key_file.chmod(0o600)
    assert run_pam(db_path, "alice", code).returncode == 0


def test_store_or_key_owned_by_another_user_is_refused(alice, db_path):
    if os.geteuid() != 0:
        pytest.skip("needs root to give the files to another owner")
    key_file = db_path.with_name(db_path.name + ".key")
    code = totp_now(alice).encode() + b"\0"
    os.chown(db_path, 12345, -1)
    result = run_pam(db_path, "alice", code)
    assert result.returncode == 9
    assert b"owned by uid 12345" in result.stderr
    os.chown(db_path, 0, -1)
    os.chown(key_file, 12345, -1)
    assert run_pam(db_path, "alice", code).returncode == 9
    os.chown(key_file, 0, -1)
    assert run_pam(db_path, "alice", code).returncode == 0


def test_unknown_user_fails(alice, db_path, sql):
    result = run_pam(db_path, "mallory", b"123456\0")
    assert result.returncode == 3
    assert pam_audit(sql) == [("pam:testsvc", "pam.verify", "mallory", "unknown_user")]


def test_a_user_name_cannot_forge_log_lines(alice, db_path):
    result = run_pam(db_path, "mallory\neset2fa-pam: root: accepted", b"123456\0")
    assert result.returncode == 3
    assert result.stderr.count(b"\n") == 1
    assert result.stderr.startswith(b"eset2fa-pam: mallory?eset2fa-pam: root: accepted: ")


def test_no_pam_user_fails(alice, db_path):
    result = run_pam(db_path, None, totp_now(alice).encode() + b"\0")
    assert result.returncode == 2
    assert b"PAM_USER" in result.stderr


def test_empty_stdin_fails_without_counting(alice, db_path, sql):
    """pam_exec without expose_authtok gives /dev/null: a configuration error, not a guess."""
    result = run_pam(db_path, "alice", b"")
    assert result.returncode == 2
    assert b"expose_authtok" in result.stderr
    assert user_row(sql)["fail_count"] == 0


def test_code_in_argv_is_refused_and_not_logged(alice, db_path, sql):
    code = totp_now(alice)
    result = run_pam(db_path, "alice", b"", code)
    assert result.returncode == 2
    assert code.encode() not in result.stderr
    assert user_row(sql)["state"] == "pending"


@pytest.mark.parametrize(
    "args",
    [["--db"], ["--db="], ["--db", "relative/store.db"], ["--help"], ["-h"], ["--database=x"]],
)
def test_bad_arguments_fail(alice, args):
    result = run_pam(None, "alice", totp_now(alice).encode() + b"\0", *args)
    assert result.returncode == 2
    assert b"usage:" in result.stderr or b"absolute path" in result.stderr


def test_not_in_the_auth_stack_fails(alice, db_path):
    code = totp_now(alice).encode() + b"\0"
    result = run_pam(db_path, "alice", code, env={"PAM_TYPE": "session"})
    assert result.returncode == 2


def test_user_without_2fa_is_denied_by_default(cli, alice, db_path, sql):
    assert cli("user", "add", "bob").exit_code == 0
    result = run_pam(db_path, "bob", b"123456\0")
    assert result.returncode == 6
    assert b"no one-time password enabled" in result.stderr
    assert pam_audit(sql) == [("pam:testsvc", "pam.verify", "bob", "not_enabled")]


def test_user_without_2fa_passes_when_pam_no_2fa_allows(cli, alice, db_path, sql):
    assert cli("user", "add", "bob").exit_code == 0
    assert cli("config", "set", "pam.no_2fa", "allow").exit_code == 0
    result = run_pam(db_path, "bob", b"\0")
    assert result.returncode == 0, result.stderr
    assert pam_audit(sql) == [
        ("pam:testsvc", "pam.verify", "bob", "not_enabled"),
        ("pam:testsvc", "pam.no_2fa", "bob", "allowed"),
    ]
    # The setting is about users without 2FA only: alice's wrong code still fails.
    assert run_pam(db_path, "alice", wrong_code(alice).encode()).returncode == 1
    # Unknown users are never "without 2FA": they fail closed.
    assert run_pam(db_path, "mallory", b"\0").returncode == 3


def test_push_user_is_denied_even_when_pam_no_2fa_allows(cli, alice, db_path):
    assert cli("user", "add", "carol").exit_code == 0
    assert cli("user", "enable", "carol", "--method", "push").exit_code == 0
    assert cli("config", "set", "pam.no_2fa", "allow").exit_code == 0
    result = run_pam(db_path, "carol", b"123456\0")
    assert result.returncode == 6


def test_pam_no_2fa_is_a_declared_choice(cli, store):
    shown = {row["key"]: row for row in cli("config", "show", "--json").json()}
    assert shown["pam.no_2fa"]["value"] == "deny"
    assert cli("config", "set", "pam.no_2fa", "maybe").exit_code == 2


def test_entry_point_imports_no_cli_library(alice, db_path):
    """The PAM path stays light: no typer/rich/click, nor platformdirs, keyring, requests."""
    probe = (
        "import io, json, sys\n"
        "from eset2fa.pam import run\n"
        "code = io.BytesIO(sys.argv[2].encode() + b'\\0')\n"
        "status = run(['--db', sys.argv[1]], {'PAM_USER': 'alice'}, code)\n"
        "heavy = {'typer', 'rich', 'click', 'platformdirs', 'keyring', 'requests', 'qrcode'}\n"
        "print(json.dumps([status, sorted(m for m in sys.modules if m.split('.')[0] in heavy)]))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe, str(db_path), totp_now(alice)],
        capture_output=True,
        text=True,
        env={"PATH": os.environ.get("PATH", "")},
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == [0, []]


# -- auth verify --code-stdin ----------------------------------------------------------------------


@pytest.mark.parametrize("framing", ["{}\n", "{}", "{}\0", "{}\r\n"])
def test_auth_verify_code_stdin_accepts(cli, alice, sql, framing):
    result = cli(
        "auth", "verify", "alice", "--code-stdin", "--json", input=framing.format(totp_now(alice))
    )
    assert result.exit_code == 0, result.stderr
    assert result.json()["accepted"] is True
    assert user_row(sql)["state"] == "active"
    audit = sql("SELECT action, result FROM audit WHERE action = 'auth.verify'")
    assert [tuple(row) for row in audit] == [("auth.verify", "accepted")]


def test_auth_verify_code_stdin_reads_only_the_first_line(cli, alice, sql):
    result = cli(
        "auth", "verify", "alice", "--code-stdin", input=f"{wrong_code(alice)}\n{totp_now(alice)}\n"
    )
    assert result.exit_code == 1
    assert user_row(sql)["fail_count"] == 1


def test_auth_verify_code_stdin_wrong_locked_and_unknown(cli, alice, sql):
    assert cli("auth", "verify", "alice", "--code-stdin", input="12345\n").exit_code == 1
    assert user_row(sql)["fail_count"] == 1
    lock(cli, alice)
    assert cli("auth", "verify", "alice", "--code-stdin", input=totp_now(alice)).exit_code == 4
    assert cli("auth", "verify", "nobody", "--code-stdin", input="123456\n").exit_code == 3


def test_auth_verify_code_stdin_empty_input_is_a_usage_error(cli, alice, sql):
    result = cli("auth", "verify", "alice", "--code-stdin", input="")
    assert result.exit_code == 2
    assert user_row(sql)["fail_count"] == 0


def test_auth_verify_takes_exactly_one_code_source(cli, alice, sql):
    code = totp_now(alice)
    assert cli("auth", "verify", "alice", code, "--code-stdin", input=code).exit_code == 2
    result = cli("auth", "verify", "alice", "--code-stdin", "--recovery-code", "X", input=code)
    assert result.exit_code == 2
    assert user_row(sql)["state"] == "pending"


def test_auth_verify_never_creates_the_store(cli, tmp_path):
    db = tmp_path / "absent" / "store.db"
    result = cli("auth", "verify", "alice", "--code-stdin", "--json", input="123456\n", db=db)
    assert result.exit_code == 9  # fail closed: no store is a storage error (issue 9)
    assert result.json()["error"]["code"] == "storage"
    assert not db.parent.exists()


# -- the real PAM stack: pamtester -> pam_exec -> eset2fa-pam --------------------------------------


def _pam_prerequisites() -> str | None:
    """Why the PAM stack test cannot run here, or None."""
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        return "needs root (it writes a service file under /etc/pam.d/)"
    if shutil.which("pamtester") is None:
        return "needs pamtester (apt-get install pamtester libpam-modules)"
    if not any(glob.glob(pattern) for pattern in PAM_EXEC_GLOBS):
        return "needs pam_exec.so (apt-get install libpam-modules)"
    return None


@pytest.fixture
def pam_service(db_path):
    """A PAM service whose auth stack is only eset2fa-pam; returns (name, write_line(db))."""
    missing = _pam_prerequisites()
    if missing:
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI must run the PAM stack test: it {missing}")
        pytest.skip(f"PAM stack test {missing}")
    name = f"eset2fa-test-{uuid.uuid4().hex[:12]}"
    path = Path("/etc/pam.d") / name

    def configure(db: Path) -> None:
        line = f"auth required pam_exec.so expose_authtok quiet {PAM_BIN} --db {db}\n"
        path.write_text(line)
        path.chmod(0o644)

    try:
        yield name, configure
    finally:
        path.unlink(missing_ok=True)
    assert not path.exists()


def pamtester(service: str, user: str, typed: str) -> subprocess.CompletedProcess:
    """pamtester asks for the password on stdin; pam_exec hands it to eset2fa-pam."""
    return subprocess.run(
        ["pamtester", service, user, "authenticate"],
        input=typed + "\n",
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_pam_stack_accepts_a_good_code_and_refuses_the_rest(cli, alice, db_path, sql, pam_service):
    service, configure = pam_service
    configure(db_path)
    assert stat.S_IMODE(db_path.stat().st_mode) == 0o600

    wrong = pamtester(service, "alice", wrong_code(alice))
    assert wrong.returncode != 0
    assert "successfully authenticated" not in wrong.stdout
    assert user_row(sql)["fail_count"] == 1

    good = pamtester(service, "alice", totp_now(alice))
    assert good.returncode == 0, (good.stdout, good.stderr)
    assert "successfully authenticated" in good.stdout
    assert user_row(sql)["state"] == "active"
    assert pam_audit(sql) == [
        (f"pam:{service}", "pam.verify", "alice", "rejected"),
        (f"pam:{service}", "pam.verify", "alice", "accepted"),
    ]

    assert pamtester(service, "mallory", "123456").returncode != 0


def test_pam_stack_refuses_a_locked_user(cli, alice, db_path, sql, pam_service):
    service, configure = pam_service
    configure(db_path)
    lock(cli, alice)
    result = pamtester(service, "alice", totp_now(alice))
    assert result.returncode != 0
    assert "successfully authenticated" not in result.stdout
    assert user_row(sql)["state"] == "pending"  # the right code did not activate a locked user


def test_pam_stack_refuses_when_the_store_is_missing(tmp_path, pam_service):
    service, configure = pam_service
    db = tmp_path / "gone" / "eset2fa.db"
    configure(db)
    result = pamtester(service, "alice", "123456")
    assert result.returncode != 0
    assert "successfully authenticated" not in result.stdout
    assert not db.parent.exists()
