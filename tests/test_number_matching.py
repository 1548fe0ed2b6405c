"""Push answers with number matching: `auth push` shows the request ID and a two-digit number, the
push links to `<public-url>/p/<id>?t=<token>`, and that page (a real `eset2fa serve` process, over
HTTP) approves only the right pick of three; a wrong pick denies, Reject closes, and every invalid
use is one neutral page."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time

import pytest
from server_helpers import http, running_server

from tests.conftest import audit_dump, end_process
from tests.test_push import wait_for_request
from tests.test_transports_ntfy import FakeNtfy

pytestmark = pytest.mark.usefixtures("env_master_key")

PUBLIC = "https://2fa.example.org"
LINK_RE = re.compile(
    r"https://2fa\.example\.org(/p/([0-9A-Z]{3}-[0-9A-Z]{3})\?t=([A-Za-z0-9_.-]+))"
)
NONCE_RE = re.compile(r'nonce="[^"]*"')


def neutral(response) -> tuple[int, str]:
    return response.status_code, NONCE_RE.sub('nonce=""', response.text)


@pytest.fixture
def bob(cli, store) -> str:
    assert cli("config", "set", "server.public_url", PUBLIC).exit_code == 0
    assert cli("user", "add", "bob").exit_code == 0
    assert cli("user", "enable", "bob", "--method", "push", "--no-qr").exit_code == 0
    return "bob"


_STARTED: list[subprocess.Popen] = []


@pytest.fixture(autouse=True)
def _waiting_processes_end_with_their_test():
    yield
    while _STARTED:
        end_process(_STARTED.pop())


def start_push(db, name: str = "bob", timeout: int = 30) -> subprocess.Popen:
    proc = subprocess.Popen(
        [sys.executable, "-m", "eset2fa", "--db", str(db), "auth", "push", name, "--json"]
        + ["--timeout", str(timeout)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    _STARTED.append(proc)
    return proc


def finish(proc: subprocess.Popen) -> tuple[str, str]:
    try:
        out, err = proc.communicate(timeout=20)
    except subprocess.TimeoutExpired:
        end_process(proc)
        raise AssertionError(f"{proc.args!r} did not end within 20 s") from None
    return out, err


def pushed(cli, sql) -> dict:
    """The newest push in the outbox: its request ID, the link's path and token, the number."""
    wait_for_request(sql)
    message = cli("outbox", "--channel", "push", "--json").json()[-1]
    match = LINK_RE.search(message["body"])
    assert match, message["body"]
    path, request_id, token = match.groups()
    shown = cli("push", "show", request_id, "--json").json()
    return {**message, "path": path, "id": request_id, "token": token, "number": shown["number"]}


def choices_of(page_text: str) -> list[int]:
    return [int(n) for n in re.findall(r'name="pick" value="(\d+)"', page_text)]


def test_the_right_pick_approves_and_the_login_shows_id_and_number(cli, bob, store, sql):
    waiting = start_push(store)
    push = pushed(cli, sql)
    number = push["number"]
    assert 10 <= number <= 99
    assert push["token"] in push["body"]  # the push links to the page
    assert push["data"] == {"request_id": push["id"], "expires_at": push["data"]["expires_at"]}
    (stored,) = sql("SELECT body FROM outbox WHERE channel = 'push'")
    assert stored["body"] == "(encrypted)"  # the link holds the token: kept sealed at rest
    with running_server(store) as server, http() as client:
        page = client.get(server.url + push["path"], timeout=10)
        again = client.get(server.url + push["path"], timeout=10)
        assert page.status_code == 200 and push["id"] in page.text
        choices = choices_of(page.text)
        assert len(choices) == 3 and len(set(choices)) == 3 and number in choices
        assert choices_of(again.text) == choices  # a reload offers the same three, same order
        form = {"t": push["token"], "pick": str(number)}
        answer = client.post(server.url + push["path"], data=form, timeout=10)
        assert answer.status_code == 200 and "Login approved" in answer.text
        out, err = finish(waiting)
        used = client.get(server.url + push["path"], timeout=10)
        used_post = client.post(server.url + push["path"], data=form, timeout=10)
        unknown = client.get(server.url + f"/p/{push['id']}?t=nothing", timeout=10)
        log = server.log()
    assert waiting.returncode == 0, err
    doc = json.loads(out)
    assert (doc["id"], doc["number"], doc["state"]) == (push["id"], number, "active")
    assert f"number {number}" in err.replace("\n", " ")
    assert neutral(used) == neutral(unknown) == neutral(used_post)
    assert used.status_code == 404
    assert push["token"] not in log and push["id"] not in log
    approve = sql("SELECT actor, result, details FROM audit WHERE action = 'push.approve'")
    assert [(r["actor"], r["result"]) for r in approve] == [("push-page", "ok")]
    everything = audit_dump(sql)
    assert push["token"] not in everything
    assert f'"number": {number}' not in everything and f'"number":{number}' not in everything


def test_a_wrong_pick_denies_the_request_and_is_audited(cli, bob, store, sql):
    waiting = start_push(store)
    push = pushed(cli, sql)
    with running_server(store) as server, http() as client:
        choices = choices_of(client.get(server.url + push["path"], timeout=10).text)
        wrong = next(n for n in choices if n != push["number"])
        answer = client.post(
            server.url + push["path"], data={"t": push["token"], "pick": str(wrong)}, timeout=10
        )
        assert answer.status_code == 200 and "Login denied" in answer.text
        out, err = finish(waiting)
        # the right number afterwards changes nothing: the token was used by the wrong pick
        late = client.post(
            server.url + push["path"],
            data={"t": push["token"], "pick": str(push["number"])},
            timeout=10,
        )
    assert waiting.returncode == 8, err
    assert late.status_code == 404
    (row,) = sql("SELECT state, decided_by FROM push_requests")
    assert (row["state"], row["decided_by"]) == ("rejected", "wrong number")
    answers = [tuple(r) for r in sql("SELECT action, result FROM audit WHERE actor = 'push-page'")]
    assert ("push.answer", "wrong_number") in answers
    assert ("push.approve", "ok") not in answers
    assert cli("user", "status", "bob", "--json").json()["state"] == "pending"


@pytest.mark.parametrize("report", [False, True])
def test_reject_closes_without_access_and_records_only_when_asked(cli, bob, store, sql, report):
    if report:
        assert cli("config", "set", "push.report_reject", "true").exit_code == 0
    waiting = start_push(store)
    push = pushed(cli, sql)
    before = sql("SELECT count(*) FROM audit")[0][0]
    with running_server(store) as server, http() as client:
        answer = client.post(
            server.url + push["path"], data={"t": push["token"], "reject": "1"}, timeout=10
        )
        assert answer.status_code == 200 and "Login rejected" in answer.text
        out, err = finish(waiting)
    assert waiting.returncode == 8, err  # no access, at once (not after the timeout)
    (row,) = sql("SELECT state FROM push_requests")
    assert row["state"] == "rejected"
    page_rows = [
        tuple(r) for r in sql("SELECT action, result, details FROM audit WHERE actor = 'push-page'")
    ]
    if report:
        ((action, result, details),) = page_rows
        assert (action, result) == ("push.reject", "reported")
        assert json.loads(details)["note"] == "reported by the user"
    else:
        assert page_rows == []
        # only the waiting login's own outcome was recorded after the answer
        after = [tuple(r) for r in sql("SELECT action, result FROM audit WHERE id > ?", (before,))]
        assert after == [("auth.push", "denied")]


def test_another_requests_token_and_an_expired_one_get_the_neutral_page(cli, bob, store, sql):
    assert cli("user", "add", "carol").exit_code == 0
    assert cli("user", "enable", "carol", "--method", "push", "--no-qr").exit_code == 0
    first = start_push(store, "bob")
    bob_push = pushed(cli, sql)
    second = start_push(store, "carol")
    deadline = time.monotonic() + 15
    while len(cli("outbox", "--channel", "push", "--json").json()) < 2:
        assert time.monotonic() < deadline, "carol's push never reached the outbox"
        time.sleep(0.05)
    carol_push = pushed(cli, sql)
    assert carol_push["id"] != bob_push["id"]
    crossed = f"/p/{carol_push['id']}?t={bob_push['token']}"
    with running_server(store) as server, http() as client:
        shown = client.get(server.url + crossed, timeout=10)
        posted = client.post(
            server.url + f"/p/{carol_push['id']}",
            data={"t": bob_push["token"], "pick": str(carol_push["number"])},
            timeout=10,
        )
        unknown = client.get(server.url + "/p/AAA-AAA?t=x", timeout=10)
        # neither request was used up: bob's own page still answers
        own = client.get(server.url + bob_push["path"], timeout=10)
        assert own.status_code == 200
        client.post(
            server.url + bob_push["path"],
            data={"t": bob_push["token"], "pick": str(bob_push["number"])},
            timeout=10,
        )
        client.post(
            server.url + carol_push["path"],
            data={"t": carol_push["token"], "pick": str(carol_push["number"])},
            timeout=10,
        )
        assert finish(first)[0] and first.returncode == 0
        assert finish(second)[0] and second.returncode == 0
    assert neutral(shown) == neutral(posted) == neutral(unknown)
    assert shown.status_code == 404

    expiring = start_push(store, "bob", timeout=1)
    late = pushed(cli, sql)
    finish(expiring)
    assert expiring.returncode == 8
    with running_server(store) as server, http() as client:
        expired = client.get(server.url + late["path"], timeout=10)
        expired_post = client.post(
            server.url + late["path"],
            data={"t": late["token"], "pick": str(late["number"])},
            timeout=10,
        )
    assert neutral(expired) == neutral(unknown) == neutral(expired_post)


def test_the_bare_token_no_longer_approves_but_the_admin_still_can(cli, bob, store, sql):
    waiting = start_push(store)
    push = pushed(cli, sql)
    bare = cli("push", "approve", push["id"], "--token", push["token"], "--json")
    assert bare.exit_code == 8
    assert "number matching" in bare.json()["error"]["message"]
    assert push["token"] not in bare.stdout + bare.stderr
    assert cli("push", "approve", push["id"]).exit_code == 0  # the administrator's decision
    out, err = finish(waiting)
    assert waiting.returncode == 0, err
    assert json.loads(out)["state"] == "active"


def test_without_public_url_the_push_carries_no_link_and_shows_the_number(cli, store, sql):
    assert cli("user", "add", "bob").exit_code == 0
    assert cli("user", "enable", "bob", "--method", "push", "--no-qr").exit_code == 0
    waiting = start_push(store)
    request_id = wait_for_request(sql)
    (message,) = cli("outbox", "--channel", "push", "--json").json()
    assert "/p/" not in message["body"] and "http" not in message["body"]
    number = cli("push", "show", request_id, "--json").json()["number"]
    assert cli("push", "approve", request_id).exit_code == 0
    out, err = finish(waiting)
    assert json.loads(out)["number"] == number
    assert f"number {number}" in err.replace("\n", " ")


def test_ntfy_push_opens_the_answer_page_instead_of_a_one_tap_approve(cli, store, httpserver, sql):
    fake = FakeNtfy(httpserver)
    for key, value in (
        ("push.transport", "ntfy"),
        ("ntfy.server", httpserver.url_for("/").rstrip("/")),
        ("ntfy.poll_interval", "0.1"),
        ("server.public_url", PUBLIC),
    ):
        assert cli("config", "set", key, value).exit_code == 0
    assert cli("user", "add", "bob").exit_code == 0
    assert cli("user", "enable", "bob", "--method", "push", "--no-qr").exit_code == 0
    publish = cli("config", "set-secret", "ntfy.publish_token", input="pub-token-111111\n")
    assert publish.exit_code == 0
    waiting = start_push(store, timeout=3)
    message = fake.wait_for_publish()
    finish(waiting)
    (request_id,) = [row["id"] for row in sql("SELECT id FROM push_requests")]
    number = cli("push", "show", request_id, "--json").json()["number"]
    match = LINK_RE.fullmatch(message["click"])
    assert match and match.group(2) == request_id
    answer, reject = message["actions"]
    assert (answer["action"], answer["label"], answer["url"]) == (
        "view",
        "Answer",
        message["click"],
    )
    assert reject["label"] == "Reject" and "url" not in reject
    assert "number" not in json.dumps(message).lower()
    # The request ID is in the title; its random characters may hold the number's digits.
    assert str(number) not in message["title"].replace(request_id, "")


def test_auth_login_of_a_push_user_shows_id_and_number(cli, bob, store, sql):
    assert cli("user", "add", "dave", "--password-stdin", input="dave-password-1\n").exit_code == 0
    assert cli("user", "enable", "dave", "--method", "push", "--no-qr").exit_code == 0
    proc = subprocess.Popen(
        [sys.executable, "-m", "eset2fa", "--db", str(store), "auth", "login", "dave"]
        + ["--password-stdin", "--json"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    _STARTED.append(proc)
    proc.stdin.write("dave-password-1\n")
    proc.stdin.close()
    proc.stdin = None  # communicate() must not flush it again
    push = pushed(cli, sql)
    with running_server(store) as server, http() as client:
        answer = client.post(
            server.url + push["path"],
            data={"t": push["token"], "pick": str(push["number"])},
            timeout=10,
        )
        assert answer.status_code == 200
        out, err = finish(proc)
    assert proc.returncode == 0, err
    doc = json.loads(out)
    shown = (doc["request_id"], doc["number"], doc["state"])
    assert shown == (push["id"], push["number"], "active")
    assert f"{push['id']}, number {push['number']}" in err.replace("\n", " ")
