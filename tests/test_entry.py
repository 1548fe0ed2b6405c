"""The direct entry (commands/entry.py): `auth verify NAME CODE` and `user status NAME` run without
the typer app, with the same output, exit codes and store changes as through it.

Each case runs the real `python -m eset2fa` (the direct entry) and the typer app in a process of
its own, on two copies of one store, from directories where the store has the same relative
name, and compares everything a caller sees: exit code, stdout, stderr, and what the store holds
afterwards (users and audit rows, without times and hashes).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from totp_helpers import enroll, totp_now

from eset2fa.commands.entry import plan

TYPER = "import sys; from eset2fa.cli import app; app(prog_name='eset2fa')"
LOADED_AT_EXIT = (
    "import atexit, json, sys\n"
    "atexit.register(lambda: print(json.dumps(sorted(sys.modules)), file=sys.stderr))\n"
    "sys.argv = ['eset2fa', *sys.argv[1:]]\n"
    "from eset2fa.commands.entry import main\n"
    "main()\n"
)


def _run(argv: list[str], cwd: Path, env: dict | None = None) -> tuple[int, str, str]:
    done = subprocess.run(
        argv, cwd=cwd, env={**os.environ, **(env or {})}, capture_output=True, text=True, timeout=60
    )
    return done.returncode, done.stdout, done.stderr


def _state(db: Path) -> tuple[list, list]:
    import sqlite3

    if not db.exists() or db.read_bytes()[:16] != b"SQLite format 3\x00":
        return [], []
    with sqlite3.connect(db) as conn:
        users = conn.execute(
            "SELECT name, state, method, fail_count, locked, last_step FROM users ORDER BY id"
        ).fetchall()
        audit = conn.execute(
            "SELECT actor, action, target, result, details FROM audit ORDER BY id"
        ).fetchall()
    conn.close()
    return users, audit


@pytest.fixture
def template(cli, store, tmp_path) -> tuple[Path, str]:
    """A store with alice active (TOTP), bob without 2FA and carol locked; alice's secret."""
    secret = enroll(cli, "alice")
    assert cli("auth", "verify", "alice", totp_now(secret, -1)).exit_code == 0  # active
    assert cli("user", "add", "bob").exit_code == 0
    enroll(cli, "carol")
    assert cli("config", "set", "lockout.max_failures", "1").exit_code == 0
    assert cli("auth", "verify", "carol", "12345x").exit_code == 1  # locked
    assert cli("config", "set", "lockout.max_failures", "10").exit_code == 0
    return store, secret


def _copies(template: Path, tmp_path: Path) -> tuple[Path, Path]:
    dirs = []
    for way in ("direct", "typer"):
        target = tmp_path / way
        target.mkdir()
        for suffix in ("", ".key"):
            source = template.with_name(template.name + suffix)
            if source.exists():
                shutil.copy2(source, target / ("store.db" + suffix))
        dirs.append(target)
    return dirs[0], dirs[1]


def _both(args: list[str], direct: Path, typer: Path, env: dict | None = None) -> tuple:
    """(direct's result, typer's result)."""
    return (
        _run([sys.executable, "-m", "eset2fa", *args], direct, env),
        _run([sys.executable, "-c", TYPER, *args], typer, env),
    )


WRONG = "000000"


@pytest.mark.parametrize(
    ("args", "env", "exit_code"),
    [
        (["auth", "verify", "alice", "{code}"], None, 0),
        (["auth", "verify", "alice", "{code}", "--json"], None, 0),
        (["--db=store.db", "auth", "verify", "alice", "{code}"], None, 0),
        (["auth", "verify", "alice", WRONG], None, 1),
        (["--json", "auth", "verify", "alice", WRONG], None, 1),
        (["auth", "verify", "alice", "12"], None, 1),
        (["auth", "verify", "nobody", "123456", "--json"], None, 3),
        (["auth", "verify", "bob", "123456"], None, 6),
        (["auth", "verify", "carol", "123456"], None, 4),
        (["auth", "verify", "carol", "123456"], {"ESET2FA_JSON": "yes"}, 4),
        (["user", "status", "alice"], None, 0),
        (["user", "status", "carol", "--json"], None, 0),
        (["user", "status", "nobody"], None, 3),
        (["user", "status", "alice"], {"ESET2FA_JSON": "maybe"}, 2),  # click's refusal
        (["--db", "missing.db", "auth", "verify", "alice", "123456"], None, 9),
        (["--json", "--db", "missing.db", "user", "status", "alice"], None, 9),
    ],
)
def test_the_direct_forms_answer_as_the_typer_app_does(template, tmp_path, args, env, exit_code):
    db, secret = template
    direct, typer = _copies(db, tmp_path)
    code = totp_now(secret)
    args = [arg.replace("{code}", code) for arg in args]
    if "--db" not in " ".join(args):
        args = ["--db", "store.db", *args]
    got, expected = _both(args, direct, typer, env)
    assert got == expected
    assert got[0] == exit_code, got
    assert "Traceback" not in got[2]
    assert _state(direct / "store.db") == _state(typer / "store.db")


def test_a_replayed_code_and_a_corrupt_store_answer_alike(template, tmp_path):
    db, secret = template
    direct, typer = _copies(db, tmp_path)
    args = ["--db", "store.db", "auth", "verify", "alice", totp_now(secret, 1)]
    first = _both(args, direct, typer)
    second = _both(args, direct, typer)  # the same code again: a replay
    assert first[0] == first[1] and first[0][0] == 0
    assert second[0] == second[1] and second[0][0] == 1 and "already used" in second[0][1]
    for place in (direct, typer):
        with (place / "store.db").open("r+b") as handle:
            handle.write(b"not a database at all")
        (place / "store.db-wal").unlink(missing_ok=True)
    corrupt = _both(["--db", "store.db", "--json", "user", "status", "alice"], direct, typer)
    assert corrupt[0] == corrupt[1]
    assert corrupt[0][0] == 9 and json.loads(corrupt[0][1])["error"]["exit_code"] == 9


def _loaded(args: list[str], cwd: Path) -> set[str]:
    exit_code, _out, err = _run([sys.executable, "-c", LOADED_AT_EXIT, *args], cwd)
    assert exit_code in (0, 1, 4), err
    return set(json.loads(err.strip().splitlines()[-1]))


def test_the_direct_forms_never_import_typer_and_the_others_do(template, tmp_path):
    db, secret = template
    base = ["--db", str(db)]
    for args in (
        ["user", "status", "alice", "--json"],
        ["auth", "verify", "alice", WRONG],
        ["auth", "verify", "carol", WRONG],  # locked: the error, in a pipe, without rich too
    ):
        loaded = _loaded([*base, *args], tmp_path)
        assert not loaded & {"typer", "click", "rich", "rich.console"}, args
        assert "eset2fa.cli" not in loaded
    loaded = _loaded([*base, "user", "status", "alice", "--require", "active"], tmp_path)
    assert {"typer", "eset2fa.cli"} <= loaded


@pytest.mark.parametrize(
    ("argv", "env", "expected"),
    [
        (["user", "status", "alice"], {}, (("user", "status", "alice"), False, None)),
        (
            ["user", "status", "alice", "--json", "--db", "x.db"],
            {},
            (("user", "status", "alice"), True, "x.db"),
        ),
        (
            ["auth", "verify", "alice", "123456"],
            {"ESET2FA_DB": "e.db", "ESET2FA_JSON": " On "},
            (("auth", "verify", "alice", "123456"), True, "e.db"),
        ),
        (
            ["--db", "", "auth", "verify", "a", "1"],
            {"ESET2FA_DB": "e.db", "ESET2FA_JSON": ""},
            (("auth", "verify", "a", "1"), False, ""),
        ),
        (["auth", "verify", "alice"], {}, None),  # no code: typer's usage error
        (["auth", "verify", "alice", "1", "2"], {}, None),
        (["auth", "verify", "alice", "--code-stdin"], {}, None),
        (["auth", "verify", "alice", "--recovery-code", "X"], {}, None),
        (["auth", "verify", "-alice", "1"], {}, None),
        (["auth", "verify", "alice", "1", "--yes"], {}, None),
        (["--as", "bob", "user", "status", "alice"], {}, None),
        (["user", "status", "alice"], {"ESET2FA_AS": "bob"}, None),
        (["user", "status", "alice"], {"ESET2FA_JSON": "maybe"}, None),
        (["user", "status", "alice"], {"_ESET2FA_COMPLETE": "bash_complete"}, None),
        (["user", "status", "--", "alice"], {}, None),
        (["user", "status", "alice", "--help"], {}, None),
        (["user", "status", "alice", "--db"], {}, None),
        (["user", "list"], {}, None),
        ([], {}, None),
    ],
)
def test_which_arguments_take_the_direct_way(argv, env, expected):
    assert plan(argv, env) == expected
