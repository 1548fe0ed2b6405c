"""`auth push` and `auth login` for push users: the login shows the request ID, the push carries
it, approval grants access (and activates a pending user), no approval in time means no access."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.conftest import end_process
from tests.test_push import wait_for_request

pytestmark = pytest.mark.usefixtures("env_master_key")


@pytest.fixture
def bob(cli, store) -> str:
    assert cli("user", "add", "bob", "--password-stdin", input="bob-password-1\n").exit_code == 0
    assert cli("user", "enable", "bob", "--method", "push", "--no-qr").exit_code == 0
    return "bob"


_STARTED: list[subprocess.Popen] = []


@pytest.fixture(autouse=True)
def _waiting_processes_end_with_their_test():
    """A test that fails before `finish` leaves no login or push waiting for an approval."""
    yield
    while _STARTED:
        end_process(_STARTED.pop())


def start(db, *args: str, input: str | None = None) -> subprocess.Popen:
    proc = subprocess.Popen(
        [sys.executable, "-m", "eset2fa", "--db", str(db), *args],
        stdin=subprocess.PIPE if input is not None else subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    _STARTED.append(proc)
    if input is not None:
        proc.stdin.write(input)
        proc.stdin.close()
    return proc


def finish(proc: subprocess.Popen) -> tuple[str, str]:
    try:
        proc.wait(timeout=20)  # the outputs are a few lines: no risk of a full pipe
    except subprocess.TimeoutExpired:
        end_process(proc)
        raise AssertionError(f"{proc.args!r} did not end within 20 s") from None
    return proc.stdout.read(), proc.stderr.read()


def test_approved_push_activates_a_pending_user(cli, bob, store, sql):
    assert cli("user", "status", "bob", "--json").json()["state"] == "pending"
    waiting = start(store, "auth", "push", "bob", "--timeout", "30", "--json")
    request_id = wait_for_request(sql)
    assert cli("push", "approve", request_id).exit_code == 0
    out, err = finish(waiting)
    assert waiting.returncode == 0, err
    assert f"Login request ID {request_id}" in err.replace("\n", " ")
    doc = json.loads(out)
    assert (doc["id"], doc["state"]) == (request_id, "active")
    assert cli("user", "status", "bob", "--require", "active").exit_code == 0
    results = [tuple(r) for r in sql("SELECT action, result FROM audit WHERE action = 'auth.push'")]
    assert results == [("auth.push", "ok")]


def test_no_approval_in_time_means_no_access(cli, bob, sql):
    result = cli("auth", "push", "bob", "--timeout", "1", "--json")
    assert result.exit_code == 8
    assert result.json()["error"]["code"] == "push_denied"
    assert cli("user", "status", "bob", "--json").json()["state"] == "pending"
    assert [r[0] for r in sql("SELECT result FROM audit WHERE action = 'auth.push'")] == ["denied"]


def test_rejected_push_is_exit_8(cli, bob, store, sql):
    waiting = start(store, "auth", "push", "bob", "--timeout", "30")
    request_id = wait_for_request(sql)
    assert cli("push", "reject", request_id).exit_code == 0
    finish(waiting)
    assert waiting.returncode == 8


def test_push_refused_for_totp_users_locked_users_and_unknown_names(cli, bob, store, sql):
    cli("user", "add", "carol")
    cli("user", "enable", "carol", "--method", "totp", "--no-qr")
    assert cli("auth", "push", "carol", "--timeout", "1").exit_code == 6
    assert cli("auth", "push", "nobody", "--timeout", "1").exit_code == 3
    import sqlite3

    conn = sqlite3.connect(store)
    conn.execute("UPDATE users SET locked = 1 WHERE name = 'bob'")
    conn.commit()
    conn.close()
    assert cli("auth", "push", "bob", "--timeout", "1").exit_code == 4
    assert sql("SELECT count(*) FROM outbox WHERE channel = 'push'")[0][0] == 0  # nothing sent


def test_login_of_a_push_user_waits_for_the_push(cli, bob, store, sql):
    waiting = start(
        store, "auth", "login", "bob", "--password-stdin", "--json", input="bob-password-1\n"
    )
    request_id = wait_for_request(sql)
    assert cli("push", "approve", request_id).exit_code == 0
    out, err = finish(waiting)
    assert waiting.returncode == 0, err
    assert request_id in err
    assert json.loads(out)["second_factor"] == "push"
