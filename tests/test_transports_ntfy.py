"""ntfy push round trip against a small ntfy look-alike on loopback: the test reads the published
JSON and replays the Approve action exactly as the phone app would."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time

import pytest
import requests
from conftest import audit_dump
from werkzeug.wrappers import Response

from eset2fa.transports.ntfy import user_topic
from tests.conftest import end_process

PUBLISH, REPLY, POLL = "pub-token-111111", "reply-token-222222", "poll-token-333333"


pytestmark = pytest.mark.usefixtures("env_master_key")


class FakeNtfy:
    """Just enough of ntfy: JSON publishing, a reply topic with its ACL, and `poll=1` reads."""

    def __init__(self, httpserver) -> None:
        self.published: list[dict] = []
        self.replies: list[dict] = []
        self.lock = threading.Lock()
        httpserver.expect_request("/", method="POST").respond_with_handler(self.publish)
        httpserver.expect_request("/eset2fa_reply", method="POST").respond_with_handler(self.reply)
        httpserver.expect_request("/eset2fa_reply/json", method="GET").respond_with_handler(
            self.poll
        )

    @staticmethod
    def _denied(request, token: str) -> Response | None:
        if request.headers.get("Authorization") != f"Bearer {token}":
            return Response('{"code":40301,"error":"forbidden"}', status=403)
        return None

    def publish(self, request):
        if denied := self._denied(request, PUBLISH):
            return denied
        with self.lock:
            self.published.append(json.loads(request.get_data()))
        return Response(json.dumps({"id": f"pub{len(self.published)}"}), status=200)

    def reply(self, request):
        if denied := self._denied(request, REPLY):
            return denied
        with self.lock:
            event = {
                "id": f"msg{len(self.replies) + 1}",
                "time": int(time.time()),
                "event": "message",
                "topic": "eset2fa_reply",
                "message": request.get_data(as_text=True),
            }
            self.replies.append(event)
        return Response(json.dumps(event))

    def poll(self, request):
        if denied := self._denied(request, POLL):
            return denied
        assert request.args.get("poll") == "1"
        since = request.args.get("since", "all")
        with self.lock:
            events = list(self.replies)
        ids = [event["id"] for event in events]
        if since in ids:
            events = events[ids.index(since) + 1 :]
        elif since.isdigit():
            events = [event for event in events if event["time"] >= int(since)]
        return Response("".join(json.dumps(event) + "\n" for event in events))

    def wait_for_publish(self, timeout: float = 15.0) -> dict:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            with self.lock:
                if self.published:
                    return self.published[-1]
            time.sleep(0.05)
        raise AssertionError("nothing was published")


@pytest.fixture
def ntfy(cli, store, httpserver) -> FakeNtfy:
    fake = FakeNtfy(httpserver)
    for key, value in (
        ("push.transport", "ntfy"),
        ("ntfy.server", httpserver.url_for("/").rstrip("/")),
        ("ntfy.poll_interval", "0.1"),
    ):
        assert cli("config", "set", key, value).exit_code == 0
    for key, value in (
        ("ntfy.publish_token", PUBLISH),
        ("ntfy.reply_token", REPLY),
        ("ntfy.poll_token", POLL),
    ):
        assert cli("config", "set-secret", key, input=value + "\n").exit_code == 0
    assert cli("user", "add", "alice").exit_code == 0
    return fake


def press(action: dict) -> requests.Response:
    """What the ntfy app does when the button is pressed."""
    return requests.request(
        action.get("method", "POST"),
        action["url"],
        headers=action.get("headers", {}),
        data=action.get("body", ""),
        timeout=5,
    )


def test_round_trip_approve_from_the_published_action(cli, ntfy, store, sql):
    waiting = subprocess.Popen(
        [sys.executable, "-m", "eset2fa", "--db", str(store), "push", "send", "alice", "--json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        message = ntfy.wait_for_publish()
        (request_id,) = [row["id"] for row in sql("SELECT id FROM push_requests")]
        assert message["topic"] == "eset2fa-alice"
        assert request_id in message["title"] and request_id in message["message"]
        approve, reject = message["actions"]
        what = (approve["action"], approve["label"], approve["method"])
        assert what == ("http", "Approve", "POST")
        assert approve["url"] == ntfy_url(cli, "/eset2fa_reply")
        assert approve["headers"] == {"Authorization": f"Bearer {REPLY}"}
        assert approve["body"].startswith(request_id + ".")
        assert reject["label"] == "Reject" and reject["action"] != "http" and "url" not in reject

        # Someone with the write-only reply token posts a forged approval first: it is ignored.
        forged = dict(approve, body=approve["body"][:-4] + "AAAA")
        assert press(forged).status_code == 200
        time.sleep(0.4)
        assert waiting.poll() is None
        assert press(approve).status_code == 200
        out, err = waiting.communicate(timeout=15)
    finally:
        end_process(waiting)  # even when an assertion failed: it would wait 150 s
    assert waiting.returncode == 0, err
    assert json.loads(out)["state"] == "approved"
    assert request_id in err
    results = [
        row["result"] for row in sql("SELECT result FROM audit WHERE action = 'push.approve'")
    ]
    assert results == ["denied", "ok"]

    replay = cli("push", "approve", request_id, "--token", approve["body"])
    assert replay.exit_code == 8  # the token was consumed
    assert approve["body"] not in replay.stderr


def ntfy_url(cli, path: str) -> str:
    server = next(r for r in cli("config", "show", "--json").json() if r["key"] == "ntfy.server")
    return server["value"] + path


def test_reject_sends_nothing_and_the_request_expires(cli, ntfy, sql):
    started = time.monotonic()
    r = cli("push", "send", "alice", "--timeout", "1")
    assert r.exit_code == 8
    assert time.monotonic() - started < 5
    assert ntfy.replies == []  # pressing Reject would not have reached the server either
    assert sql("SELECT state FROM push_requests")[0]["state"] == "expired"


def test_publish_refused_is_exit_7_and_no_token_leaks(cli, ntfy, sql):
    assert (
        cli("config", "set-secret", "ntfy.publish_token", input="wrong-token-444\n").exit_code == 0
    )
    r = cli("push", "send", "alice", "--json")
    assert r.exit_code == 7
    error = r.json()["error"]
    assert "HTTP 403" in error["message"] and "credentials" in error["hint"]
    for secret in ("wrong-token-444", REPLY, POLL):
        assert secret not in r.stdout + r.stderr
    (row,) = sql("SELECT state, decided_by FROM push_requests")
    assert (row["state"], row["decided_by"]) == ("expired", "delivery failed")
    audit = audit_dump(sql)
    assert "wrong-token-444" not in audit and REPLY not in audit


def test_user_topics_are_distinct_and_valid():
    assert user_topic("eset2fa-", "alice") == "eset2fa-alice"
    assert user_topic("p-", "a.b") != user_topic("p-", "a_b")
    assert user_topic("p-", "j.doe@corp") == "p-j_2edoe_40corp"
