"""One-time enrollment links: the SMS carries `<public-url>/e/<token>` instead of the secret, and
the page (a real `eset2fa serve` process, over HTTP) shows the enrollment and takes the first
code. Without a public URL the first login still sends the otpauth URI, and says so."""

from __future__ import annotations

import re
import time

import pytest
from server_helpers import http, running_server
from test_auth import Terminal
from totp_helpers import secret_of, totp_now

pytestmark = pytest.mark.usefixtures("env_master_key")

PUBLIC = "https://2fa.example.org"
LINK_RE = re.compile(r"https://2fa\.example\.org(/e/[A-Za-z0-9_-]+)")
NONCE_RE = re.compile(r'nonce="[^"]*"')


def sms_bodies(cli, user: str = "alice") -> list[str]:
    result = cli("outbox", "--channel", "sms", "--user", user, "--json")
    assert result.exit_code == 0, result.stderr
    return [message["body"] for message in result.json()]


def link_path(body: str) -> str:
    match = LINK_RE.search(body)
    assert match, body
    return match.group(1)


def neutral(response) -> tuple[int, str]:
    """Status and body, the per-response CSP nonce left out (it differs on every page)."""
    return response.status_code, NONCE_RE.sub('nonce=""', response.text)


@pytest.fixture
def public(cli, store):
    assert cli("config", "set", "server.public_url", PUBLIC).exit_code == 0


@pytest.fixture
def alice(cli, store, public) -> dict:
    """alice enabled with a phone: her SMS carries the link; returns her secret and link path."""
    assert cli("user", "add", "alice").exit_code == 0
    result = cli("user", "enable", "alice", "--phone", "+421 900 123 456", "--no-qr", "--json")
    assert result.exit_code == 0, result.stderr
    doc = result.json()
    (body,) = sms_bodies(cli)
    return {"secret": secret_of(doc["uri"]), "path": link_path(body), "doc": doc, "body": body}


def other_code(secret: str) -> str:
    right = {totp_now(secret, step) for step in (-1, 0, 1)}
    return next(code for code in ("000000", "111111", "222222", "333333") if code not in right)


# -- the SMS ---------------------------------------------------------------------------------------
def test_enable_with_phone_sends_the_link_and_never_the_secret(alice, sql):
    assert alice["secret"] not in alice["body"]
    assert "otpauth" not in alice["body"]
    assert alice["doc"]["sms"]["carries"] == "link"
    assert alice["doc"]["sms"]["sent_to"] == "+421900123456"
    assert "warning" not in alice["doc"]
    token = alice["path"].removeprefix("/e/")
    assert len(token) == 36  # 12 selector + 24 verifier characters: 216 random bits
    (row,) = sql("SELECT selector, code_hash, expires_at, created_at FROM enroll_links")
    assert token.startswith(row["selector"])
    assert token[12:] not in row["code_hash"]  # only a keyed hash of the verifier is stored
    dump = "\n".join(str(tuple(r)) for r in sql("SELECT * FROM audit"))
    assert token not in dump and token[12:] not in dump


def test_without_public_url_enable_with_phone_sends_nothing_and_warns(cli, store):
    assert cli("user", "add", "alice").exit_code == 0
    result = cli("user", "enable", "alice", "--phone", "+421 900 123 456", "--no-qr", "--json")
    assert result.exit_code == 0
    assert "server.public_url" in result.json()["warning"]
    assert "server.public_url" in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert sms_bodies(cli) == []


def test_bulk_enable_sends_a_link_to_each_user_with_a_stored_phone(cli, store, public, sql):
    for name in ("alice", "bob", "carol"):
        assert cli("user", "add", name).exit_code == 0
    # A user with a stored phone but 2FA off: only an import or an older store leaves one so;
    # the phone column is set directly to build that state.
    conn = __import__("sqlite3").connect(store)
    conn.execute("UPDATE users SET phone = '+421900123456' WHERE name IN ('alice', 'bob')")
    conn.commit()
    conn.close()
    result = cli("user", "enable", "alice", "bob", "carol", "--json")
    assert result.exit_code == 0, result.stderr
    sent = {item["name"]: item for item in result.json()["sms"]}
    assert set(sent) == {"alice", "bob"} and {s["carries"] for s in sent.values()} == {"link"}
    for name in ("alice", "bob"):
        (body,) = sms_bodies(cli, name)
        link_path(body)
    assert sms_bodies(cli, "carol") == []
    assert sql("SELECT count(*) FROM enroll_links")[0][0] == 2


def test_first_login_without_public_url_sends_the_uri_and_warns(cli, store, db_path):
    assert cli("user", "add", "alice", "--password-stdin", input="alice-password\n").exit_code == 0
    assert cli("user", "enable", "alice", "--no-qr").exit_code == 0
    term = Terminal("--db", str(db_path), "--json", "auth", "login", "alice")
    term.expect("Password for alice")
    term.send_secret("alice-password")
    term.expect("Phone number")
    term.send("+44 20 7946 0000")
    term.expect("One-time password for alice")
    assert "carries the TOTP secret" in term.seen
    (body,) = sms_bodies(cli)
    secret = secret_of(body.split()[-1])  # today's SMS: the otpauth URI itself
    term.send(totp_now(secret))
    term.expect('"warning"')
    assert term.finish() == 0, term.seen
    assert "carries the TOTP secret" in term.seen.split('"warning"')[1]


def test_first_login_with_public_url_sends_a_link(cli, store, db_path, public):
    assert cli("user", "add", "alice", "--password-stdin", input="alice-password\n").exit_code == 0
    enabled = cli("user", "enable", "alice", "--json")
    secret = secret_of(enabled.json()["uri"])
    term = Terminal("--db", str(db_path), "auth", "login", "alice")
    term.expect("Password for alice")
    term.send_secret("alice-password")
    term.expect("Phone number")
    term.send("+44 20 7946 0000")
    term.expect("One-time password for alice")
    (body,) = sms_bodies(cli)
    link_path(body)
    assert secret not in body and "otpauth" not in body
    assert "carries the TOTP secret" not in term.seen
    term.send(totp_now(secret))
    term.expect("Logged in")
    assert term.finish() == 0, term.seen


def test_token_reset_confirmation_sends_a_new_link(cli, alice, sql):
    secret = alice["secret"]
    assert cli("auth", "verify", "alice", totp_now(secret)).exit_code == 0  # active
    assert cli("user", "reset-token", "alice").exit_code == 0
    (reset_sms,) = [b for b in sms_bodies(cli) if "verification code" in b]
    code = re.search(r"code is (\d{8})", reset_sms).group(1)
    result = cli("user", "reset-token", "alice", "--confirm", code, "--json", "--no-qr")
    assert result.exit_code == 0, result.stderr
    new_secret = secret_of(result.json()["uri"])
    assert result.json()["sms"]["carries"] == "link"
    new_body = sms_bodies(cli)[-1]
    assert link_path(new_body) != alice["path"]
    assert new_secret not in new_body and secret not in new_body
    assert sql("SELECT count(*) FROM enroll_links")[0][0] == 1


# -- the page ----------------------------------------------------------------------------------
def test_the_page_shows_the_enrollment_and_the_first_code_activates(cli, alice, store, sql):
    secret = alice["secret"]
    with running_server(store) as server, http() as client:
        page = client.get(server.url + alice["path"], timeout=10)
        assert page.status_code == 200
        text = page.text
        for app in ("Google Authenticator", "Microsoft Authenticator", "Authy"):
            assert app in text
        assert 'href="otpauth://totp/' in text and f"secret={secret}" in text
        assert 'src="data:image/png;base64,' in text
        assert "Add to authenticator" in text
        token = alice["path"].removeprefix("/e/")
        form = {"token": token, "code": other_code(secret)}
        wrong = client.post(server.url + alice["path"], data=form, timeout=10)
        assert wrong.status_code == 200 and "Wrong code." in wrong.text
        assert "fail" not in wrong.text.lower() and "attempt" not in wrong.text.lower()
        assert sql("SELECT fail_count FROM users WHERE name = 'alice'")[0][0] == 1
        form["code"] = totp_now(secret)
        done = client.post(server.url + alice["path"], data=form, timeout=10)
        assert done.status_code == 200 and "is active" in done.text
        assert cli("user", "status", "alice", "--require", "active").exit_code == 0
        # used: the same link is now the neutral page, for a GET and for another code
        used = client.get(server.url + alice["path"], timeout=10)
        form["code"] = totp_now(secret, 1)
        again = client.post(server.url + alice["path"], data=form, timeout=10)
        unknown = client.get(server.url + "/e/" + "A" * 36, timeout=10)
        malformed = client.get(server.url + "/e/short", timeout=10)
        log = server.log()
    assert neutral(used) == neutral(unknown) == neutral(again) == neutral(malformed)
    assert used.status_code == 404 and secret not in used.text
    assert token not in log and secret not in log
    rows = sql("SELECT action, result FROM audit WHERE actor = 'enroll-link'")
    actions = [tuple(r) for r in rows]
    assert ("auth.verify", "rejected") in actions and ("auth.verify", "accepted") in actions
    assert ("enroll.link", "opened") in actions and ("enroll.link", "used") in actions
    assert sql("SELECT count(*) FROM enroll_links")[0][0] == 0


def test_wrong_codes_on_the_page_count_toward_the_lockout(cli, alice, store, sql):
    assert cli("config", "set", "lockout.max_failures", "3").exit_code == 0
    token = alice["path"].removeprefix("/e/")
    form = {"token": token, "code": other_code(alice["secret"])}
    with running_server(store) as server, http() as client:
        answers = [client.post(server.url + alice["path"], data=form, timeout=10) for _ in range(3)]
        form["code"] = totp_now(alice["secret"])
        after = client.post(server.url + alice["path"], data=form, timeout=10)
        unknown = client.get(server.url + "/e/" + "B" * 36, timeout=10)
    assert [a.status_code for a in answers[:2]] == [200, 200]
    assert all("Wrong code." in a.text for a in answers[:2])
    assert tuple(sql("SELECT locked, fail_count FROM users WHERE name = 'alice'")[0]) == (1, 3)
    # locked: even the right code gets the neutral page, and the user stays locked and pending
    assert neutral(after) == neutral(unknown) == neutral(answers[2])
    assert cli("user", "status", "alice", "--json").json()["state"] == "pending"


def test_an_expired_link_is_the_neutral_page(cli, alice, store, sql):
    assert cli("config", "set", "server.enroll_link_ttl_seconds", "1").exit_code == 0
    assert cli("user", "disable", "alice", "--yes").exit_code == 0
    result = cli("user", "enable", "alice", "--phone", "+421 900 123 456", "--no-qr", "--json")
    path = link_path(sms_bodies(cli)[-1])
    secret = secret_of(result.json()["uri"])
    time.sleep(2.1)  # the expiry is stored to the second
    with running_server(store) as server, http() as client:
        expired = client.get(server.url + path, timeout=10)
        form = {"token": path.removeprefix("/e/"), "code": totp_now(secret)}
        posted = client.post(server.url + path, data=form, timeout=10)
        unknown = client.get(server.url + "/e/" + "C" * 36, timeout=10)
    assert neutral(expired) == neutral(unknown) == neutral(posted)
    assert expired.status_code == 404
    assert cli("user", "status", "alice", "--json").json()["state"] == "pending"
    assert sql("SELECT fail_count FROM users WHERE name = 'alice'")[0][0] == 0


def test_a_new_link_supersedes_the_old_one_and_disable_drops_it(cli, alice, store, sql):
    first = alice["path"]
    assert cli("user", "disable", "alice", "--yes").exit_code == 0
    assert sql("SELECT count(*) FROM enroll_links")[0][0] == 0
    assert cli("user", "enable", "alice", "--phone", "+421900123456", "--no-qr").exit_code == 0
    second = link_path(sms_bodies(cli)[-1])
    assert second != first
    with running_server(store) as server, http() as client:
        old = client.get(server.url + first, timeout=10)
        new = client.get(server.url + second, timeout=10)
    assert old.status_code == 404 and new.status_code == 200


def test_forged_posts_are_refused_and_change_nothing(cli, alice, store, sql):
    token = alice["path"].removeprefix("/e/")
    form = {"token": token, "code": totp_now(alice["secret"])}
    with running_server(store) as server, http() as client:
        url = server.url + alice["path"]
        cross = client.post(url, data=form, headers={"Origin": "https://evil.example"}, timeout=10)
        site = client.post(url, data=form, headers={"Sec-Fetch-Site": "cross-site"}, timeout=10)
        no_token = client.post(url, data={"code": form["code"]}, timeout=10)
        other = client.post(url, data={**form, "token": "A" * 36}, timeout=10)
        big = client.post(url, data={**form, "pad": "x" * 5000}, timeout=10)
        as_json = client.post(url, json=form, timeout=10)
    for answer in (cross, site, no_token, other, big, as_json):
        assert answer.status_code == 403
    assert cli("user", "status", "alice", "--json").json()["state"] == "pending"
    assert sql("SELECT fail_count FROM users WHERE name = 'alice'")[0][0] == 0
    # the real page's own post (same origin, the token in the form) works
    with running_server(store) as server, http() as client:
        ok = client.post(
            server.url + alice["path"], data=form, headers={"Origin": server.url}, timeout=10
        )
    assert ok.status_code == 200 and "is active" in ok.text


def test_recovery_drops_the_link_and_the_phone(cli, alice, store, sql):
    """A link sent before a lost-phone recovery must not show the new secret; the new number is
    asked at the next login, which sends the new link (the first-login path above)."""
    result = cli("user", "recover", "alice", "--lost-phone", "--yes", "--json", "--no-qr")
    assert result.exit_code == 0, result.stderr
    assert sql("SELECT count(*) FROM enroll_links")[0][0] == 0
    assert sql("SELECT phone FROM users WHERE name = 'alice'")[0][0] is None
    assert len(sms_bodies(cli)) == 1  # nothing sent to the lost phone
    with running_server(store) as server, http() as client:
        old = client.get(server.url + alice["path"], timeout=10)
    assert old.status_code == 404
    assert secret_of(result.json()["uri"]) not in old.text


def test_an_sms_that_cannot_be_sent_leaves_no_valid_link(cli, store, public, sql):
    from server_helpers import free_port

    for key, value in (
        ("sms.transport", "http"),
        ("sms.url", f"http://127.0.0.1:{free_port()}/send"),  # nothing listens there
        ("sms.params.to", "{phone}"),
        ("sms.params.text", "{text}"),
        ("http.retries", "0"),
    ):
        assert cli("config", "set", key, value).exit_code == 0
    assert cli("user", "add", "alice").exit_code == 0
    result = cli("user", "enable", "alice", "--phone", "+421900123456", "--no-qr", "--json")
    assert result.exit_code == 0, result.stderr  # 2FA is enabled; the SMS is reported as failed
    sent = result.json()["sms"]
    assert sent["sent_to"] == "+421900123456" and "error" in sent and "carries" not in sent
    assert "could not be sent" in result.stderr
    assert sql("SELECT count(*) FROM enroll_links")[0][0] == 0
