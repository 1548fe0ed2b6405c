"""The verification API against a real `eset2fa serve` process, with a real HTTP client.

Each outcome of `auth verify` / `auth push` has its status code (README table); bad input and bad
keys change nothing and put nothing secret in the log.
"""

from __future__ import annotations

import os

import pytest
import requests
from server_helpers import http, running_server
from totp_helpers import enroll, totp_now

pytestmark = pytest.mark.usefixtures("env_master_key")


@pytest.fixture
def app_key(cli, store) -> str:
    created = cli("apikey", "create", "webapp", "--json")
    assert created.exit_code == 0, created.stderr
    return created.json()["key"]


@pytest.fixture
def alice(cli, store) -> str:
    """alice, enrolled with TOTP (pending); returns her base32 secret."""
    return enroll(cli, "alice")


def _post(server, key, path, body, **kwargs) -> requests.Response:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    with http() as client:
        return client.post(server.url + path, json=body, headers=headers, timeout=20, **kwargs)


def _get(server, key, path) -> requests.Response:
    with http() as client:
        return client.get(server.url + path, headers={"Authorization": f"Bearer {key}"}, timeout=20)


def _audit(sql, action: str) -> list[tuple]:
    rows = sql("SELECT actor, target, result FROM audit WHERE action = ? ORDER BY id", (action,))
    return [tuple(row) for row in rows]


def _fail_count(sql, name: str) -> int:
    return sql("SELECT fail_count FROM users WHERE name = ?", (name,))[0][0]


def test_verify_answers_like_auth_verify(store, cli, sql, app_key, alice):
    assert cli("user", "add", "carol").exit_code == 0  # no 2FA
    with running_server(store) as server:
        code = totp_now(alice)
        accepted = _post(server, app_key, "/v1/verify", {"user": "alice", "code": code})
        assert accepted.status_code == 200, accepted.text
        assert accepted.json() == {
            "name": "alice", "accepted": True, "reason": "accepted", "state": "active",
            "fail_count": 0, "locked": False, "remaining": 10,
        }  # fmt: skip
        replay = _post(server, app_key, "/v1/verify", {"user": "alice", "code": code})
        assert replay.status_code == 403 and replay.json()["reason"] == "replay"
        wrong = "000000" if code != "000000" else "111111"
        rejected = _post(server, app_key, "/v1/verify", {"user": "alice", "code": wrong})
        assert rejected.status_code == 403
        assert rejected.json()["reason"] == "wrong_code" and rejected.json()["remaining"] == 9
        short = _post(server, app_key, "/v1/verify", {"user": "alice", "code": "12345"})
        assert short.status_code == 403 and short.json()["reason"] == "malformed"
        unknown = _post(server, app_key, "/v1/verify", {"user": "mallory", "code": "123456"})
        assert unknown.status_code == 404
        assert unknown.json()["reason"] == "unknown_user" and not unknown.json()["accepted"]
        off = _post(server, app_key, "/v1/verify", {"user": "carol", "code": "123456"})
        assert off.status_code == 409 and off.json()["reason"] == "not_enabled"
    assert _fail_count(sql, "alice") == 2  # the wrong and the malformed code; not the replay
    rows = _audit(sql, "auth.verify")
    assert rows == [
        ("apikey:webapp", "alice", "accepted"),
        ("apikey:webapp", "alice", "rejected"),
        ("apikey:webapp", "alice", "rejected"),
        ("apikey:webapp", "alice", "rejected"),
        ("apikey:webapp", "mallory", "unknown_user"),
        ("apikey:webapp", "carol", "not_enabled"),
    ]
    assert cli("user", "status", "alice", "--json").json()["state"] == "active"


def test_a_locked_user_is_423_even_with_the_right_code(store, cli, sql, app_key, alice):
    assert cli("config", "set", "lockout.max_failures", "2").exit_code == 0
    with running_server(store) as server:
        for _ in range(2):
            _post(server, app_key, "/v1/verify", {"user": "alice", "code": "00000x"})
        locked = _post(server, app_key, "/v1/verify", {"user": "alice", "code": totp_now(alice)})
        assert locked.status_code == 423
        assert locked.json()["reason"] == "locked" and locked.json()["accepted"] is False
    assert cli("user", "status", "alice", "--json").json()["locked"] is True


def test_without_a_valid_key_nothing_is_said_or_changed(store, cli, sql, app_key, alice):
    assert cli("apikey", "create", "old").exit_code == 0
    old_key = cli("apikey", "create", "older", "--json").json()["key"]
    assert cli("apikey", "revoke", "older").exit_code == 0
    forged = app_key[:-4] + ("AAAA" if not app_key.endswith("AAAA") else "BBBB")
    audit_before = sql("SELECT count(*) FROM audit")[0][0]
    with running_server(store) as server, http() as client:
        answers = []
        for user in ("alice", "mallory"):
            body = {"user": user, "code": totp_now(alice)}
            answers.append(client.post(server.url + "/v1/verify", json=body, timeout=20))
            for header in (
                f"Bearer {old_key}",  # revoked
                f"Bearer {forged}",  # right id, wrong secret
                "Bearer not-a-key",
                f"Basic {app_key}",
                app_key,
            ):
                answers.append(
                    client.post(
                        server.url + "/v1/verify",
                        json=body,
                        headers={"Authorization": header},
                        timeout=20,
                    )
                )
        answers.append(client.get(server.url + "/v1/push/ABC-DEF", timeout=20))
        answers.append(client.post(server.url + "/v1/push", json={"user": "alice"}, timeout=20))
        log = server.log()
    assert {answer.status_code for answer in answers} == {401}
    assert len({answer.text for answer in answers}) == 1  # one body, whoever is named
    assert "alice" not in answers[0].text and "mallory" not in answers[0].text
    assert answers[0].headers["www-authenticate"].startswith("Bearer")
    assert sql("SELECT count(*) FROM audit")[0][0] == audit_before  # no user was looked at
    assert _fail_count(sql, "alice") == 0
    assert app_key not in log and old_key not in log and forged not in log


def test_the_key_s_last_use_is_recorded(store, cli, app_key, alice):
    with running_server(store) as server:
        _post(server, app_key, "/v1/verify", {"user": "alice", "code": "000000"})
    listed = cli("apikey", "list", "--json").json()
    assert listed[0]["name"] == "webapp" and listed[0]["last_used_at"] is not None


JSON_TYPE = {"Content-Type": "application/json"}
FORM_TYPE = {"Content-Type": "application/x-www-form-urlencoded"}


@pytest.mark.parametrize(
    ("send", "status", "code"),
    [
        ({"data": b'{"user": "alice", "code": ', "headers": JSON_TYPE}, 400, "malformed_json"),
        ({"data": b"\xff\xfe{}", "headers": JSON_TYPE}, 400, "malformed_json"),
        ({"json": ["alice", "123456"]}, 400, "bad_request"),
        ({"json": {"user": "alice", "code": 123456}}, 400, "bad_request"),
        ({"json": {"user": "alice"}}, 400, "bad_request"),
        ({"json": {"user": ["alice"], "code": "123456"}}, 400, "bad_request"),
        ({"json": {"user": "a" * 300, "code": "123456"}}, 400, "bad_request"),
        ({"data": b'{"user": "alice", "code": "123456"}'}, 415, "unsupported_media_type"),
        ({"data": b"user=alice&code=123456", "headers": FORM_TYPE}, 415, "unsupported_media_type"),
        ({"json": {"user": "alice", "code": "1" * 17_000}}, 413, "too_large"),
    ],
)
def test_bad_requests_are_clear_errors_that_change_nothing(
    store, cli, sql, app_key, alice, send, status, code
):
    audit_before = sql("SELECT count(*) FROM audit")[0][0]
    with running_server(store) as server:
        send = dict(send)
        headers = {"Authorization": f"Bearer {app_key}", **send.pop("headers", {})}
        with http() as client:
            answer = client.post(server.url + "/v1/verify", headers=headers, timeout=20, **send)
        log = server.wait_for_log(f" POST /v1/verify {status} ")
    assert answer.status_code == status, answer.text
    assert answer.json()["error"]["code"] == code
    assert sql("SELECT count(*) FROM audit")[0][0] == audit_before
    assert _fail_count(sql, "alice") == 0
    assert app_key not in log and "123456" not in log


def test_a_chunked_body_over_16_kb_is_refused_without_reading_it_all(store, app_key, alice):
    sent = []

    def chunks():
        yield b'{"user": "alice", "code": "'
        for _ in range(1000):  # 4 MB if it were all read
            sent.append(1)
            yield b"1" * 4096
        yield b'"}'

    with running_server(store) as server, http() as client:
        try:
            answer = client.post(
                server.url + "/v1/verify",
                data=chunks(),
                headers={"Authorization": f"Bearer {app_key}", "Content-Type": "application/json"},
                timeout=20,
            )
        except requests.ConnectionError:
            answer = None  # the server may close the connection while the client still sends
        log = server.wait_for_log(" POST /v1/verify 413 ")
    if answer is not None:
        assert answer.status_code == 413
    assert " POST /v1/verify 413 " in log


def test_unknown_paths_and_wrong_methods_under_v1(store, app_key):
    with running_server(store) as server, http() as client:
        auth = {"Authorization": f"Bearer {app_key}"}
        assert client.get(server.url + "/v1/verify", headers=auth, timeout=20).status_code == 405
        assert client.put(server.url + "/v1/push", headers=auth, timeout=20).status_code == 405
        assert client.delete(server.url + "/v1/push/X", headers=auth, timeout=20).status_code == 405
        missing = client.post(server.url + "/v1/verify/now", headers=auth, timeout=20)
        assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"


def test_rate_limits_per_key_and_per_user(store, cli, app_key, alice):
    enroll(cli, "bob")
    assert cli("config", "set", "server.user_rate_limit", "2").exit_code == 0
    with running_server(store) as server:
        statuses = [
            _post(server, app_key, "/v1/verify", {"user": "alice", "code": "000000"}).status_code
            for _ in range(3)
        ]
        assert statuses == [403, 403, 429]
        limited = _post(server, app_key, "/v1/verify", {"user": "ALICE", "code": "000000"})
        assert limited.status_code == 429 and int(limited.headers["retry-after"]) >= 1
        assert limited.json()["error"]["code"] == "rate_limited"
        other = _post(server, app_key, "/v1/verify", {"user": "bob", "code": "000000"})
        assert other.status_code == 403  # another user is not held back
    assert cli("user", "status", "alice", "--json").json()["fail_count"] == 2  # 429s not counted

    assert cli("config", "set", "server.key_rate_limit", "3").exit_code == 0
    assert cli("config", "set", "server.user_rate_limit", "100").exit_code == 0
    second_key = cli("apikey", "create", "vpn", "--json").json()["key"]
    with running_server(store) as server:
        statuses = [
            _post(server, app_key, "/v1/verify", {"user": f"u{i}", "code": "000000"}).status_code
            for i in range(4)
        ]
        assert statuses == [404, 404, 404, 429]
        other_key = _post(server, second_key, "/v1/verify", {"user": "u9", "code": "000000"})
        assert other_key.status_code == 404  # another key is not held back


@pytest.fixture
def pusher(cli, store) -> str:
    assert cli("user", "add", "pat").exit_code == 0
    assert cli("user", "enable", "pat", "--method", "push").exit_code == 0
    return "pat"


def test_push_start_poll_and_approve(store, cli, sql, app_key, pusher):
    other_key = cli("apikey", "create", "other", "--json").json()["key"]
    with running_server(store) as server:
        started = _post(server, app_key, "/v1/push", {"user": "pat"})
        assert started.status_code == 202, started.text
        request = started.json()
        assert request["state"] == "pending" and request["user"] == "pat"
        assert "token" not in request
        assert started.headers["location"] == f"/v1/push/{request['id']}"
        pending = _get(server, app_key, started.headers["location"])
        assert pending.status_code == 200 and pending.json()["state"] == "pending"
        assert _get(server, other_key, started.headers["location"]).status_code == 404
        messages = cli("outbox", "--channel", "push", "--json").json()
        assert request["id"] in messages[-1]["body"]

        assert cli("push", "approve", request["id"]).exit_code == 0
        approved = _get(server, app_key, started.headers["location"])
        assert approved.status_code == 200 and approved.json()["state"] == "approved"
        assert _get(server, app_key, "/v1/push/ZZZ-ZZZ").status_code == 404

        second = _post(server, app_key, "/v1/push", {"user": "pat"}).json()
        assert cli("push", "reject", second["id"]).exit_code == 0
        assert _get(server, app_key, f"/v1/push/{second['id']}").json()["state"] == "rejected"
    assert cli("user", "status", "pat", "--json").json()["state"] == "active"
    assert ("apikey:webapp", "pat", "ok") in _audit(sql, "push.request")
    assert ("apikey:webapp", "pat", "ok") in _audit(sql, "auth.push")


def test_push_refusals(store, cli, app_key, pusher, alice):
    assert cli("config", "set", "push.rate_limit", "1").exit_code == 0
    with running_server(store) as server:
        assert _post(server, app_key, "/v1/push", {"user": "nobody"}).status_code == 404
        totp_user = _post(server, app_key, "/v1/push", {"user": "alice"})
        assert totp_user.status_code == 409 and totp_user.json()["error"]["code"] == "not_enabled"
        assert _post(server, app_key, "/v1/push", {"user": "pat"}).status_code == 202
        fatigue = _post(server, app_key, "/v1/push", {"user": "pat"})
        assert fatigue.status_code == 429 and "retry-after" in fatigue.headers
        assert fatigue.json()["error"]["code"] == "push_rate_limited"


def test_push_to_a_locked_user_is_423_and_sends_nothing(store, cli, sql, app_key):
    password = "pat-password-1"
    assert cli("user", "add", "pat", "--password-stdin", input=password + "\n").exit_code == 0
    assert cli("user", "enable", "pat", "--method", "push").exit_code == 0
    assert cli("config", "set", "lockout.max_password_failures", "1").exit_code == 0
    assert cli("config", "set", "lockout.password_delay_seconds", "0").exit_code == 0
    wrong = cli("--as", "pat", "--as-password-stdin", "user", "list", input="not-it-at-all\n")
    assert wrong.exit_code == 5
    assert cli("user", "status", "pat", "--json").json()["locked"] is True
    with running_server(store) as server:
        locked = _post(server, app_key, "/v1/push", {"user": "pat"})
    assert locked.status_code == 423 and locked.json()["error"]["code"] == "locked"
    assert sql("SELECT count(*) FROM push_requests")[0][0] == 0


def test_the_log_holds_no_key_or_code(store, app_key, alice):
    code = totp_now(alice)
    with running_server(store) as server:
        _post(server, app_key, "/v1/verify", {"user": "alice", "code": code})
        log = server.wait_for_log(" POST /v1/verify 200 ")
    assert app_key not in log and code not in log and os.environ["ESET2FA_KEY"] not in log


def test_a_push_that_cannot_be_sent_is_502_and_expired(store, cli, sql, app_key, pusher):
    from server_helpers import free_port

    assert cli("config", "set", "push.transport", "ntfy").exit_code == 0
    assert cli("config", "set", "ntfy.server", f"http://127.0.0.1:{free_port()}").exit_code == 0
    assert cli("config", "set", "http.retries", "0").exit_code == 0
    with running_server(store) as server:
        failed = _post(server, app_key, "/v1/push", {"user": "pat"})
    assert failed.status_code == 502 and failed.json()["error"]["code"] == "delivery_failed"
    assert [tuple(r) for r in sql("SELECT state FROM push_requests")] == [("expired",)]
    assert ("apikey:webapp", "pat", "failed") in _audit(sql, "push.send")


def test_a_started_push_tells_the_application_the_number_and_never_the_token(
    store, cli, app_key, pusher
):
    with running_server(store) as server:
        started = _post(server, app_key, "/v1/push", {"user": "pat"}).json()
    assert 10 <= started["number"] <= 99  # what the login screen shows (number matching)
    assert not {"token", "link", "expires_unix"} & set(started)
    message = cli("outbox", "--channel", "push", "--json").json()[-1]
    text = message["body"].replace(started["id"], "")  # an ID may hold two digits by chance
    assert str(started["number"]) not in text  # the push never carries the number
