"""eset2fa.api, the Python API: the README's examples run as written, the CLI goes through it, and
importing it stays cheap."""

from __future__ import annotations

import ast
import json
import os
import re
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from totp_helpers import enroll, totp_now

import eset2fa
from eset2fa import api
from eset2fa.errors import Locked, NotFound, PermissionDenied, StateConflict, StorageError

ROOT = Path(eset2fa.__file__).resolve().parent.parent
README = ROOT / "README.md"
EXAMPLE_DB = "/var/lib/eset2fa/eset2fa.db"  # the path the README's examples open

pytestmark = pytest.mark.usefixtures("env_master_key")


def readme_python_blocks() -> list[str]:
    text = README.read_text(encoding="utf-8")
    start = text.index("\n## From Python\n")
    end = text.find("\n## ", start + 1)
    section = text[start : end if end != -1 else None]
    return re.findall(r"^```python\n(.*?)^```$", section, flags=re.MULTILINE | re.DOTALL)


def test_readme_examples_run_against_a_store(cli, store, db_path, sql, capsys):
    assert cli("user", "add", "alice").exit_code == 0
    blocks = readme_python_blocks()
    assert len(blocks) >= 4
    assert EXAMPLE_DB in blocks[0]
    namespace: dict = {"__name__": "readme_example"}
    for number, block in enumerate(blocks, 1):
        source = block.replace(EXAMPLE_DB, str(db_path))
        exec(compile(source, f"README.md (From Python, block {number})", "exec"), namespace)
    printed = capsys.readouterr().out.splitlines()
    assert printed[0] == "disabled False 0"
    assert printed[1].startswith("malformed: 9 attempt(s) left")
    assert printed[2] == "{'name': 'alice', 'was_locked': False, 'locked': False}"
    # What the examples did is in the store and its audit log, as if done with the CLI.
    row = sql("SELECT state, secret, fail_count FROM users WHERE name = 'alice'")[0]
    assert (row["state"], row["secret"], row["fail_count"]) == ("disabled", None, 0)
    rows = sql("SELECT action, target, result FROM audit WHERE target IN ('alice', 'mallory')")
    audit = [(r["action"], r["target"], r["result"]) for r in rows]
    assert audit == [
        ("user.add", "alice", "ok"),
        ("user.enable", "alice", "enabled"),
        ("auth.verify", "alice", "accepted"),
        ("auth.verify", "alice", "rejected"),
        ("auth.verify", "mallory", "unknown_user"),
        ("user.unlock", "alice", "unchanged"),
        ("user.disable", "alice", "disabled"),
    ]
    actors = {r["actor"] for r in sql("SELECT actor FROM audit WHERE action LIKE 'user.%able'")}
    assert len(actors) == 1 and actors.pop().startswith("local:")


def test_open_store_never_creates_unless_asked(tmp_path):
    missing = tmp_path / "nowhere" / "eset2fa.db"
    with pytest.raises(StorageError) as error:  # fail closed: no store is exit 9 (issue 9)
        api.open_store(missing)
    assert error.value.exit_code == 9
    assert not missing.exists() and not missing.parent.exists()

    store = api.open_store(missing, create=True, administrator_password="Adm1n-passw0rd!")
    try:
        assert stat.S_IMODE(missing.stat().st_mode) == 0o600
        assert api.status(store, "Administrator")["state"] == "disabled"
    finally:
        store.close()


def test_created_store_is_the_cli_store(tmp_path, cli):
    path = tmp_path / "made-in-python.db"
    api.open_store(path, create=True, administrator_password="Adm1n-passw0rd!").close()
    password = "Adm1n-passw0rd!\n"
    r = cli("auth", "login", "Administrator", "--password-stdin", input=password, db=path)
    assert r.exit_code == 0, r.stderr


def test_verify_lockout_and_unlock(cli, store, db_path):
    assert cli("config", "set", "lockout.max_failures", "3").exit_code == 0
    secret = enroll(cli)
    store_ = api.open_store(db_path)
    try:
        first = api.verify(store_, "alice", totp_now(secret))
        assert isinstance(first, api.VerifyResult)
        assert (first.accepted, first.reason, first.state) == (True, "accepted", "active")
        # a replay of the accepted code is refused but not counted (issue 9)
        assert api.verify(store_, "alice", totp_now(secret)).reason == "replay"
        assert api.verify(store_, "alice", "12345").remaining == 2
        assert api.verify(store_, "alice", "abcdef").remaining == 1
        third = api.verify(store_, "alice", "1234567")
        assert (third.accepted, third.locked, third.fail_count) == (False, True, 3)
        with pytest.raises(Locked) as error:
            api.verify(store_, "alice", totp_now(secret, 1))
        assert error.value.exit_code == 4
        assert api.status(store_, "alice")["locked"] is True
        assert api.unlock(store_, "alice") == {"name": "alice", "was_locked": True, "locked": False}
        assert api.verify(store_, "alice", totp_now(secret, 1)).accepted
    finally:
        store_.close()
    # The CLI sees what the API did.
    r = cli("user", "status", "alice", "--require", "unlocked", "--require", "active")
    assert r.exit_code == 0, r.stderr


def test_errors_are_the_cli_errors(cli, store, db_path):
    assert cli("user", "add", "bob").exit_code == 0
    store_ = api.open_store(db_path)
    try:
        with pytest.raises(NotFound):
            api.status(store_, "nobody")
        with pytest.raises(StateConflict) as error:
            api.verify(store_, "bob", "123456")  # 2FA not enabled
        assert error.value.exit_code == 6 and "user enable bob" in error.value.hint
    finally:
        store_.close()


def test_actor_applies_write_permissions(cli, store, db_path):
    from eset2fa.accounts.acting_user import authenticate_actor

    for name in ("helpdesk", "alice", "bob"):
        r = cli("user", "add", name, "--password-stdin", input=f"{name}-Passw0rd!\n")
        assert r.exit_code == 0, r.stderr
    assert cli("user", "grant", "helpdesk", "--write", "alice").exit_code == 0
    store_ = api.open_store(db_path)
    try:
        helpdesk = authenticate_actor(store_, "helpdesk", "helpdesk-Passw0rd!")
        report = api.enable(store_, ["alice", "bob"], actor=helpdesk)
        assert report.results == [
            {"name": "alice", "result": "enabled"},
            {"name": "bob", "result": "denied"},
        ]
        assert report.uri is None  # several users: no URI (it would be whose?)
        with pytest.raises(PermissionDenied):
            api.unlock(store_, "bob", actor=helpdesk)
        assert api.disable(store_, ["alice", "bob"], actor=helpdesk).counts == {
            "disabled": 1,
            "denied": 1,
        }
    finally:
        store_.close()


def test_enable_one_user_gives_the_uri_and_push_has_none(cli, store, db_path):
    for name in ("alice", "bob"):
        assert cli("user", "add", name).exit_code == 0
    store_ = api.open_store(db_path)
    try:
        report = api.enable(store_, "alice", phone="+420601123456")
        assert report.uri.startswith("otpauth://totp/") and "alice" in report.uri
        assert api.enable(store_, "bob", method=api.Method.push).uri is None
        assert [api.status(store_, n)["method"] for n in ("alice", "bob")] == ["totp", "push"]
        again = api.enable(store_, "alice")
        assert again.results == [{"name": "alice", "result": "already_enabled"}]
    finally:
        store_.close()
    shown = cli("user", "show", "alice", "--json").json()
    assert shown["phone"] == "+420601123456"


def test_importing_the_api_loads_nothing_heavy():
    code = (
        "import sys, json, eset2fa.api\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.startswith("
        "('eset2fa', 'cryptography', 'requests', 'keyring', 'typer', 'rich', 'click', 'pyotp')))))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    ).stdout
    assert json.loads(out) == ["eset2fa", "eset2fa.api"]


def test_lazy_names_resolve_to_the_core_classes():
    from eset2fa.db import Store
    from eset2fa.twofactor.enrollment import BulkReport
    from eset2fa.twofactor.totp import VerifyResult

    assert (api.VerifyResult, api.BulkReport, api.Store) == (VerifyResult, BulkReport, Store)
    with pytest.raises(AttributeError):
        api.no_such_name  # noqa: B018 (the attribute access is what is tested)
    assert set(api.__all__) <= set(dir(api)) | set(api._LAZY)


# Each command and the eset2fa.api function it must call (and the core call it must not make).
# `auth verify` and `user status` run their bodies in checks.py (shared with the direct entry).
THROUGH_API = {
    ("checks.py", "verify"): (
        {"verify", "verify_recovery_code"},
        {"verify_otp", "use_recovery_code"},
    ),
    ("checks.py", "status"): ({"status"}, {"user_status"}),
    ("user_2fa.py", "enable"): ({"enable"}, {"enrollment.enable"}),
    ("user_2fa.py", "disable"): ({"disable"}, {"enrollment.disable"}),
    ("user_2fa.py", "unlock"): ({"unlock"}, {"lockout.unlock", "unlock_user"}),
}


def _calls(function: ast.FunctionDef) -> set[str]:
    names = set()
    for node in ast.walk(function):
        if isinstance(node, ast.Call):
            target = node.func
            if isinstance(target, ast.Attribute) and isinstance(target.value, ast.Name):
                names.add(f"{target.value.id}.{target.attr}")
            elif isinstance(target, ast.Name):
                names.add(target.id)
    return names


@pytest.mark.parametrize(
    ("where", "expected"),
    [pytest.param(where, expected, id=":".join(where)) for where, expected in THROUGH_API.items()],
)
def test_the_cli_commands_call_through_the_api(where, expected):
    filename, command = where
    wanted, forbidden = expected
    tree = ast.parse((ROOT / "eset2fa" / "commands" / filename).read_text(encoding="utf-8"))
    (function,) = [
        node for node in tree.body if isinstance(node, ast.FunctionDef) and node.name == command
    ]
    calls = _calls(function)
    assert {f"api.{name}" for name in wanted} <= calls
    assert not calls & forbidden
    assert not calls & {f"{mod}.{name}" for mod in ("totp", "codes") for name in forbidden}


def test_user_status_and_auth_verify_do_not_import_more_than_before(tmp_path):
    """The cold-start commands import eset2fa.api, which must not bring in the core it wraps
    until called: `user status` still never loads the TOTP or crypto modules."""
    env = {**os.environ, "ESET2FA_DB": str(tmp_path / "s.db")}
    subprocess.run(  # only init creates a store at an explicit path (issue 9)
        [sys.executable, "-m", "eset2fa", "init", "--password-stdin"],
        input="Adm1n-passw0rd!\n",
        text=True,
        env=env,
        check=True,
        timeout=60,
        capture_output=True,
    )
    code = (
        "import sys, json\n"
        "from eset2fa.cli import app\n"
        "try:\n    app(['user', 'status', 'Administrator', '--json'], prog_name='eset2fa')\n"
        "except SystemExit:\n    pass\n"
        "print(json.dumps(sorted(sys.modules)), file=sys.stderr)\n"
    )
    run = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60
    )
    assert json.loads(run.stdout)["state"] == "disabled"
    loaded = set(json.loads(run.stderr.strip().splitlines()[-1]))
    assert "eset2fa.api" in loaded
    assert not loaded & {"eset2fa.twofactor.totp", "eset2fa.twofactor.enrollment", "cryptography"}
