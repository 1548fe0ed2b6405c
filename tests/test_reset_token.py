"""user reset-token: backup first, a code by SMS to the STORED phone only, then a new secret."""

from __future__ import annotations

import json
import re
import socket
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import time_machine
from conftest import audit_dump
from totp_helpers import hotp, secret_of

PHONE = "+420601123456"
MOMENT = datetime(2026, 11, 22, 12, 0, 10, tzinfo=UTC)


def step_code(secret: str, moment: datetime) -> str:
    return hotp(secret, int(moment.timestamp()) // 30)


def active_user(cli, name: str = "alice", phone: str | None = PHONE) -> str:
    """NAME with TOTP active (a code accepted at MOMENT); returns the base32 secret."""
    assert cli("user", "add", name, "--password-stdin", input="alice-password\n").exit_code == 0
    args = ("--phone", phone) if phone else ()
    secret = secret_of(cli("user", "enable", name, *args, "--json").json()["uri"])
    with time_machine.travel(MOMENT, tick=False):
        assert cli("auth", "verify", name, step_code(secret, MOMENT)).exit_code == 0
    return secret


def code_in(text: str) -> str:
    return re.search(r"code is (\d{8})", text).group(1)


def outbox_sms(cli) -> list[dict]:
    r = cli("outbox", "--channel", "sms", "--json")
    assert r.exit_code == 0, r.stderr
    return r.json()


def users_snapshot(db: Path) -> list[tuple]:
    conn = sqlite3.connect(db)
    try:
        return conn.execute("SELECT * FROM users ORDER BY id").fetchall()
    finally:
        conn.close()


def test_code_to_the_stored_phone_then_new_secret_and_old_one_stops_at_confirmation(
    cli, store, sql
):
    old = active_user(cli)
    later = MOMENT + timedelta(seconds=60)
    with time_machine.travel(later, tick=False):
        r = cli("user", "reset-token", "alice", "--json")
        assert r.exit_code == 0, r.stderr
        sent = r.json()
        backup = Path(sent["backup"])
        assert backup.exists() and backup.parent == store.parent / "backups"
        assert "reset-token" in backup.name
        assert sent["sent_to"] == PHONE and sent["transport"] == "outbox"
        (sms,) = outbox_sms(cli)
        assert sms["recipient"] == PHONE and sms["user"] == "alice"
        code = code_in(sms["body"])

        # Only a hash of the code is stored, and the audit never holds it.
        (pending,) = sql("SELECT * FROM token_resets")
        assert code not in json.dumps({k: str(pending[k]) for k in pending.keys()})
        assert code not in audit_dump(sql)

        # Before confirmation the old secret still works.
        assert cli("auth", "verify", "alice", step_code(old, later)).exit_code == 0

    confirm_at = later + timedelta(seconds=60)
    with time_machine.travel(confirm_at, tick=False):
        r = cli("user", "reset-token", "alice", "--confirm", code, "--json")
        assert r.exit_code == 0, r.stderr
        done = r.json()
        assert done["state"] == "pending" and done["backup"] == sent["backup"]
        new = secret_of(done["uri"])
        assert new != old
        assert cli("auth", "verify", "alice", step_code(old, confirm_at)).exit_code == 1
        # The code works once.
        again = cli("user", "reset-token", "alice", "--confirm", code)
        assert again.exit_code == 6 and "no pending token reset" in again.stderr
        assert cli("auth", "verify", "alice", step_code(new, confirm_at)).exit_code == 0
    row = sql("SELECT state, phone, fail_count FROM users WHERE name = 'alice'")[0]
    assert (row["state"], row["phone"], row["fail_count"]) == ("active", PHONE, 0)
    assert sql("SELECT count(*) FROM token_resets")[0][0] == 0
    results = [
        (r["action"], r["result"])
        for r in sql("SELECT action, result FROM audit WHERE action LIKE 'user.reset-token%'")
    ]
    assert results == [
        ("user.reset-token", "sent"),
        ("user.reset-token.confirm", "ok"),
        ("user.reset-token.confirm", "none"),
    ]
    details = json.loads(
        sql("SELECT details FROM audit WHERE action = 'user.reset-token'")[0]["details"]
    )
    assert details["backup"] == sent["backup"]
    assert code not in audit_dump(sql)


def test_code_over_a_loopback_http_gateway_goes_to_the_stored_phone(cli, store, httpserver, sql):
    active_user(cli)
    for key, value in (
        ("sms.transport", "http"),
        ("sms.preset", "custom"),
        ("sms.url", httpserver.url_for("/send")),
        ("sms.params.to", "{phone}"),
        ("sms.params.msg", "{text}"),
    ):
        assert cli("config", "set", key, value).exit_code == 0
    httpserver.expect_oneshot_request("/send", method="POST").respond_with_data("OK")
    r = cli("user", "reset-token", "alice", "--json")
    assert r.exit_code == 0, r.stderr
    assert r.json()["transport"] == "http"
    (request, _response) = httpserver.log[0]
    assert request.form["to"] == PHONE
    code = code_in(request.form["msg"])
    assert outbox_sms(cli) == []  # went over HTTP, not to the outbox
    r = cli("user", "reset-token", "alice", "--confirm", code, "--json")
    assert r.exit_code == 0, r.stderr
    assert r.json()["uri"].startswith("otpauth://totp/")


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_gateway_down_is_exit_7_and_no_reset_is_recorded(cli, store, sql):
    old = active_user(cli)
    for key, value in (
        ("sms.transport", "http"),
        ("sms.url", f"http://127.0.0.1:{_closed_port()}/send"),
        ("sms.params.to", "{phone}"),
        ("sms.params.msg", "{text}"),
        ("http.retries", "0"),
        ("http.connect_timeout", "0.5"),
    ):
        assert cli("config", "set", key, value).exit_code == 0
    r = cli("user", "reset-token", "alice", "--json")
    assert r.exit_code == 7
    error = r.json()["error"]
    assert error["code"] == "delivery_failed" and "No reset was recorded" in error["hint"]
    assert sql("SELECT count(*) FROM token_resets")[0][0] == 0
    (row,) = sql("SELECT result, details FROM audit WHERE action = 'user.reset-token'")
    assert row["result"] == "delivery_failed" and "backup" in json.loads(row["details"])
    # Nothing pending: the old secret is the one that counts, and there is nothing to confirm.
    assert cli("user", "reset-token", "alice", "--confirm", "12345678").exit_code == 6
    later = MOMENT + timedelta(seconds=90)
    with time_machine.travel(later, tick=False):
        assert cli("auth", "verify", "alice", step_code(old, later)).exit_code == 0


def test_code_expires(cli, store, sql):
    old = active_user(cli)
    start = MOMENT + timedelta(seconds=60)
    with time_machine.travel(start, tick=False):
        assert cli("user", "reset-token", "alice").exit_code == 0
        code = code_in(outbox_sms(cli)[-1]["body"])
    with time_machine.travel(start + timedelta(seconds=601), tick=False):
        r = cli("user", "reset-token", "alice", "--confirm", code, "--json")
        assert r.exit_code == 1
        assert "expired" in r.json()["error"]["message"]
        assert sql("SELECT count(*) FROM token_resets")[0][0] == 0
        assert cli("user", "reset-token", "alice", "--confirm", code).exit_code == 6
        moment = start + timedelta(seconds=601)
        assert cli("auth", "verify", "alice", step_code(old, moment)).exit_code == 0
    # A shorter configured lifetime is honoured.
    assert cli("config", "set", "reset.code_ttl_seconds", "60").exit_code == 0
    with time_machine.travel(start + timedelta(seconds=700), tick=False):
        assert cli("user", "reset-token", "alice").exit_code == 0
        code = code_in(outbox_sms(cli)[-1]["body"])
    with time_machine.travel(start + timedelta(seconds=761), tick=False):
        assert cli("user", "reset-token", "alice", "--confirm", code).exit_code == 1


def test_wrong_codes_count_and_the_limit_cancels_the_reset(cli, store, sql):
    active_user(cli)
    assert cli("config", "set", "reset.max_attempts", "3").exit_code == 0
    assert cli("user", "reset-token", "alice").exit_code == 0
    code = code_in(outbox_sms(cli)[-1]["body"])
    wrong = "00000000" if code != "00000000" else "11111111"
    r = cli("user", "reset-token", "alice", "--confirm", wrong, "--json")
    assert r.exit_code == 1 and "2 attempt(s) left" in r.json()["error"]["message"]
    assert sql("SELECT attempts FROM token_resets")[0][0] == 1
    malformed = cli("user", "reset-token", "alice", "--confirm", "12ab")
    assert malformed.exit_code == 1 and "1 attempt(s) left" in malformed.stderr
    last = cli("user", "reset-token", "alice", "--confirm", wrong)
    assert last.exit_code == 1 and "cancelled" in last.stderr
    # The right code is no use once the reset is cancelled.
    assert cli("user", "reset-token", "alice", "--confirm", code).exit_code == 6
    results = [
        r[0]
        for r in sql(
            "SELECT result FROM audit WHERE action = 'user.reset-token.confirm' ORDER BY id"
        )
    ]
    assert results == ["rejected", "rejected", "cancelled", "none"]


def test_a_failed_backup_sends_nothing_and_changes_nothing(cli, store, sql):
    active_user(cli)
    (store.parent / "backups").write_text("a file where the backups folder should be")
    before = users_snapshot(store)
    r = cli("user", "reset-token", "alice", "--json")
    assert r.exit_code == 9
    assert "backup" in r.json()["error"]["message"].lower()
    assert outbox_sms(cli) == []
    assert sql("SELECT count(*) FROM token_resets")[0][0] == 0
    assert users_snapshot(store) == before


def test_no_stored_phone_points_to_lost_phone_recovery(cli, store):
    active_user(cli, phone=None)
    r = cli("user", "reset-token", "alice", "--json")
    assert r.exit_code == 6
    assert "user recover alice --lost-phone" in r.json()["error"]["hint"]
    assert cli("user", "add", "bob").exit_code == 0
    assert cli("user", "reset-token", "bob").exit_code == 6  # no 2FA at all
    assert not (store.parent / "backups").exists()  # refused before the backup


def test_there_is_no_way_to_send_the_code_elsewhere_or_change_the_phone(cli, store, sql):
    active_user(cli)
    assert cli("user", "reset-token", "alice", "--phone", "+12025550143").exit_code == 2
    changed = cli("user", "enable", "alice", "--phone", "+12025550143", "--json")
    assert changed.exit_code == 6
    assert "cannot be changed" in changed.json()["error"]["message"]
    assert "user disable alice" in changed.json()["error"]["hint"]
    assert sql("SELECT phone FROM users WHERE name = 'alice'")[0][0] == PHONE
    assert cli("user", "reset-token", "alice").exit_code == 0
    assert [m["recipient"] for m in outbox_sms(cli)] == [PHONE]

    # The only way to a new number: disable, then enable with it.
    assert cli("user", "disable", "alice", "--yes").exit_code == 0
    assert cli("user", "enable", "alice", "--phone", "+12025550143", "--no-qr").exit_code == 0
    assert cli("user", "reset-token", "alice").exit_code == 0
    assert [m["recipient"] for m in outbox_sms(cli)] == [PHONE, "+12025550143"]


def test_needs_write_permission(cli, store, sql):
    active_user(cli)
    assert cli("user", "add", "helpdesk", "--password-stdin", input="helpdesk-pw\n").exit_code == 0
    as_helpdesk = ("--as", "helpdesk", "--as-password-stdin")
    r = cli(*as_helpdesk, "user", "reset-token", "alice", input="helpdesk-pw\n")
    assert r.exit_code == 5
    assert not (store.parent / "backups").exists() and outbox_sms(cli) == []
    assert cli("user", "grant", "helpdesk", "--write", "alice").exit_code == 0
    r = cli(*as_helpdesk, "user", "reset-token", "alice", input="helpdesk-pw\n")
    assert r.exit_code == 0, r.stderr
    (row,) = sql("SELECT actor FROM audit WHERE action = 'user.reset-token'")
    assert "helpdesk" in row[0]


def test_auth_login_asks_for_the_reset_code_first_then_enrolls_the_new_secret(
    cli, store, db_path, sql
):
    from test_auth import Terminal
    from totp_helpers import totp_now

    old = active_user(cli)
    assert cli("user", "reset-token", "alice").exit_code == 0
    code = code_in(outbox_sms(cli)[-1]["body"])

    term = Terminal("--db", str(db_path), "auth", "login", "alice")
    term.expect("Password for alice")
    term.send_secret("alice-password")
    term.expect("Verification code from the token reset SMS")
    term.send("00000000" if code != "00000000" else "11111111")
    term.expect("attempt(s) left")
    term.send(code)
    term.expect("One-time password for alice")
    assert "▀" in term.seen or "█" in term.seen  # the new QR code was drawn
    link = outbox_sms(cli)[-1]
    assert link["recipient"] == PHONE and "otpauth://" in link["body"]
    new = secret_of(link["body"].split()[-1])
    assert new != old
    term.send(totp_now(new))
    term.expect("Logged in")
    assert term.finish() == 0, term.seen
    row = sql("SELECT state, fail_count FROM users WHERE name = 'alice'")[0]
    assert (row["state"], row["fail_count"]) == ("active", 0)
    assert sql("SELECT count(*) FROM token_resets")[0][0] == 0


def test_a_gateway_error_echoing_the_message_does_not_leak_the_code(cli, store, httpserver, sql):
    active_user(cli)
    for key, value in (
        ("sms.transport", "http"),
        ("sms.url", httpserver.url_for("/send")),
        ("sms.params.to", "{phone}"),
        ("sms.params.msg", "{text}"),
    ):
        assert cli("config", "set", key, value).exit_code == 0

    def echo(request):
        from werkzeug import Response

        body = f"rejected: {request.get_data(as_text=True)} / {request.form['msg']}"
        return Response(body, status=400)

    httpserver.expect_oneshot_request("/send", method="POST").respond_with_handler(echo)
    r = cli("user", "reset-token", "alice", "--json")
    assert r.exit_code == 7, r.stderr
    (request, _response) = httpserver.log[0]
    code = code_in(request.form["msg"])
    assert "HTTP 400" in r.json()["error"]["message"]
    assert code not in r.stdout + r.stderr
    assert code not in audit_dump(sql)
