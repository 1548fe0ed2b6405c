"""Push requests: waiting for approval across processes, rejection, expiry, rate limit, and the
single-use approval token (forged, expired, replayed and foreign tokens are denied)."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
import time_machine

from eset2fa.accounts.actors import local_operator
from eset2fa.db import open_store
from eset2fa.errors import PushDenied, PushRateLimited
from eset2fa.twofactor import push_approval
from tests.conftest import end_process

pytestmark = pytest.mark.usefixtures("env_master_key")


@pytest.fixture
def alice(cli, store) -> str:
    assert cli("user", "add", "alice").exit_code == 0
    return "alice"


@pytest.fixture
def core(store):
    opened = open_store(store)
    yield opened
    opened.close()


_STARTED: list[subprocess.Popen] = []


@pytest.fixture(autouse=True)
def _waiting_processes_end_with_their_test():
    """A test that fails before its `communicate(timeout=...)` leaves no `push send` waiting."""
    yield
    while _STARTED:
        end_process(_STARTED.pop())


def start_send(db: Path, *args: str) -> subprocess.Popen:
    proc = subprocess.Popen(
        [sys.executable, "-m", "eset2fa", "--db", str(db), "push", "send", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    _STARTED.append(proc)
    return proc


def wait_for_request(sql, timeout: float = 15.0) -> str:
    """The ID of the request whose push reached the outbox."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        rows = sql("SELECT data FROM outbox WHERE channel = 'push'")
        if rows:
            return json.loads(rows[-1]["data"])["request_id"]
        time.sleep(0.05)
    raise AssertionError("no push reached the outbox")


def test_send_waits_for_an_approval_from_another_process(cli, alice, store, sql):
    waiting = start_send(store, "alice", "--timeout", "30", "--json")
    request_id = wait_for_request(sql)
    assert len(request_id) == 7 and request_id[3] == "-"
    (message,) = sql("SELECT body, data FROM outbox WHERE channel = 'push'")
    assert request_id in message["body"]  # the push carries the ID shown at login
    approved = cli("push", "approve", request_id, "--json")
    assert approved.exit_code == 0, approved.stderr
    out, err = waiting.communicate(timeout=15)
    assert waiting.returncode == 0, err
    assert request_id in err  # announced on stderr while waiting
    result = json.loads(out)
    assert (result["id"], result["state"], result["user"]) == (request_id, "approved", "alice")
    actions = [r["action"] for r in sql("SELECT action FROM audit WHERE action LIKE 'push.%'")]
    assert actions == ["push.request", "push.send", "push.approve"]


def test_reject_ends_the_wait_with_exit_8(cli, alice, store, sql):
    waiting = start_send(store, "alice", "--timeout", "30")
    request_id = wait_for_request(sql)
    assert cli("push", "reject", request_id).exit_code == 0
    _, err = waiting.communicate(timeout=15)
    assert waiting.returncode == 8
    assert "rejected" in err and request_id in err
    assert cli("push", "approve", request_id).exit_code == 6  # no longer pending


def test_no_approval_in_time_is_exit_8_and_expired(cli, alice, sql):
    started = time.monotonic()
    r = cli("push", "send", "alice", "--timeout", "1", "--json")
    assert r.exit_code == 8
    assert 0.9 < time.monotonic() - started < 5
    assert r.json()["error"]["code"] == "push_denied"
    (row,) = sql("SELECT id, state, decided_by FROM push_requests")
    assert (row["state"], row["decided_by"]) == ("expired", "timeout")
    listed = cli("push", "list", "--state", "expired", "--json").json()
    assert [item["id"] for item in listed] == [row["id"]]
    assert cli("push", "list", "--state", "pending", "--json").json() == []
    assert cli("push", "approve", row["id"]).exit_code == 6


def test_default_timeout_is_150_seconds(core, alice):
    request = push_approval.create_request(core, local_operator(), "alice")
    assert request["timeout_seconds"] == 150
    created = push_approval.get_request(core, request["id"])
    assert created["state"] == "pending"


def test_token_approves_once_and_a_replay_is_denied(core, alice, cli, sql):
    request = push_approval.create_request(core, local_operator(), "alice", timeout=60)
    r = cli("push", "approve", request["id"], "--token", request["token"], "--json")
    assert r.exit_code == 0, r.stderr
    assert r.json()["state"] == "approved"
    replay = cli("push", "approve", request["id"], "--token", request["token"], "--json")
    assert replay.exit_code == 8
    assert "already approved" in replay.json()["error"]["message"]
    audit = [dict(row) for row in sql("SELECT * FROM audit WHERE action = 'push.approve'")]
    assert [row["result"] for row in audit] == ["ok", "denied"]
    assert request["token"].split(".")[2] not in json.dumps(audit, default=bytes.hex)  # no nonce
    stored = json.dumps([dict(row) for row in sql("SELECT * FROM push_requests")])
    assert request["token"].split(".")[2] not in stored


def _forgeries(token: str) -> dict[str, str]:
    request_id, expires, nonce, mac = token.split(".")
    flipped = ("A" if mac[0] != "A" else "B") + mac[1:]
    return {
        "bad signature": f"{request_id}.{expires}.{nonce}.{flipped}",
        "later expiry": f"{request_id}.{int(expires) + 3600}.{nonce}.{mac}",
        "other nonce": f"{request_id}.{expires}.{'A' * 22}.{mac}",
        "truncated": token[:-1],
        "empty": "",
        "garbage": "x" * 100,
    }


def test_forged_tokens_are_denied_and_the_request_stays_pending(core, alice):
    request = push_approval.create_request(core, local_operator(), "alice", timeout=60)
    for label, forged in _forgeries(request["token"]).items():
        with pytest.raises(PushDenied):
            push_approval.approve_with_token(core, forged)
        assert push_approval.get_request(core, request["id"])["state"] == "pending", label
    push_approval.approve_with_token(core, request["token"])  # the genuine one still works
    assert push_approval.get_request(core, request["id"])["state"] == "approved"


def test_token_of_another_request_is_denied(core, alice):
    first = push_approval.create_request(core, local_operator(), "alice", timeout=60)
    second = push_approval.create_request(core, local_operator(), "alice", timeout=60)
    with pytest.raises(PushDenied, match="another request"):
        push_approval.approve_with_token(core, first["token"], request_id=second["id"])
    # Splicing one request's nonce and signature onto another's ID fails the HMAC.
    _, expires, nonce, mac = first["token"].split(".")
    with pytest.raises(PushDenied, match="bad signature"):
        push_approval.approve_with_token(core, f"{second['id']}.{expires}.{nonce}.{mac}")


def test_expired_token_is_denied(core, alice, cli):
    with time_machine.travel(time.time(), tick=False) as traveller:
        request = push_approval.create_request(core, local_operator(), "alice", timeout=150)
        traveller.shift(149)
        assert push_approval.get_request(core, request["id"])["state"] == "pending"
        traveller.shift(2)
        assert push_approval.get_request(core, request["id"])["state"] == "expired"
        with pytest.raises(PushDenied, match="expired"):
            push_approval.approve_with_token(core, request["token"])


def test_rate_limit_stops_push_fatigue(core, alice, cli, sql):
    assert cli("config", "set", "push.rate_limit", "2").exit_code == 0
    for _ in range(2):
        push_approval.create_request(core, local_operator(), "alice", timeout=60)
    with pytest.raises(PushRateLimited):
        push_approval.create_request(core, local_operator(), "alice", timeout=60)
    r = cli("push", "send", "alice", "--json")
    assert r.exit_code == 8
    assert r.json()["error"]["code"] == "push_rate_limited"
    assert len(sql("SELECT id FROM push_requests")) == 2  # nothing was created or sent
    assert sql("SELECT count(*) FROM audit WHERE result = 'rate-limited'")[0][0] == 2
    with time_machine.travel(time.time() + 601):
        push_approval.create_request(core, local_operator(), "alice", timeout=60)  # window passed


def test_show_list_and_errors(cli, core, alice):
    request = push_approval.create_request(core, local_operator(), "alice", timeout=60)
    shown = cli("push", "show", request["id"].lower().replace("-", ""), "--json")
    assert shown.exit_code == 0
    assert shown.json()["id"] == request["id"]
    assert "token" not in shown.stdout
    assert cli("push", "list", "--user", "alice", "--json").json()[0]["state"] == "pending"
    assert cli("push", "show", "AAA-AAA").exit_code == 3
    assert cli("push", "list", "--state", "maybe").exit_code == 2
    assert cli("push", "send", "nobody", "--timeout", "1").exit_code == 3
