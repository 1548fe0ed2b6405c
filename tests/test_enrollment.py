"""Enabling, disabling and unlocking 2FA: single and bulk, permissions, phone, check-install."""

from __future__ import annotations

import random
import sqlite3
import time
from urllib.parse import parse_qs, unquote, urlparse

import pytest
from conftest import sigkill_after
from totp_helpers import enroll, secret_of, totp_now

# Every test here works on a store made by `init` (the `store` fixture): a --db path is created by
# nothing else, so `user add` alone no longer makes one.
pytestmark = pytest.mark.usefixtures("store")


def add_users(db_path, names, group=None):
    """Insert users directly: the suite must not pay for the CLI per user."""
    conn = sqlite3.connect(db_path)
    with conn:
        conn.executemany(
            "INSERT INTO users (name, group_name, created_at)"
            " VALUES (?, ?, '2026-01-01T00:00:00Z')",
            [(name, group) for name in names],
        )
    conn.close()


def test_single_enable_json_returns_the_uri(cli, sql):
    assert cli("user", "add", "alice").exit_code == 0
    assert cli("config", "set", "totp.issuer", "ACME Corp").exit_code == 0
    result = cli("user", "enable", "alice", "--method", "totp", "--json")
    assert result.exit_code == 0, result.stderr
    data = result.json()
    assert set(data) == {"name", "result", "state", "method", "uri"}
    assert (data["name"], data["result"], data["state"], data["method"]) == (
        "alice",
        "enabled",
        "pending",
        "totp",
    )
    uri = urlparse(data["uri"])
    assert (uri.scheme, uri.netloc, unquote(uri.path)) == ("otpauth", "totp", "/ACME Corp:alice")
    query = parse_qs(uri.query)
    assert query["issuer"] == ["ACME Corp"]
    assert query.get("algorithm", ["SHA1"]) == ["SHA1"]
    assert query.get("digits", ["6"]) == ["6"] and query.get("period", ["30"]) == ["30"]
    assert len(secret_of(data["uri"])) == 32
    row = sql("SELECT state, method, enabled_at, secret FROM users WHERE name = 'alice'")[0]
    assert (row["state"], row["method"]) == ("pending", "totp") and row["enabled_at"]
    assert len(row["secret"]) == 12 + 20 + 16  # nonce + raw 160-bit secret + GCM tag
    audit = sql("SELECT actor, action, target, result FROM audit WHERE action = 'user.enable'")
    assert [tuple(a)[1:] for a in audit] == [("user.enable", "alice", "enabled")]


def test_single_enable_errors(cli):
    enroll(cli, "alice")
    again = cli("user", "enable", "alice", "--json")
    assert again.exit_code == 6 and again.json()["error"]["code"] == "state_conflict"
    assert cli("user", "enable", "nobody").exit_code == 3
    assert cli("user", "enable").exit_code == 2
    assert cli("user", "enable", "alice", "--all").exit_code == 2


def test_bulk_enable_names_reports_each_user(cli, store):
    add_users(store, ["bob", "carol"])
    enroll(cli, "alice")
    result = cli("user", "enable", "alice", "bob", "ghost", "carol", "--json")
    assert result.exit_code == 1
    data = result.json()
    assert data["results"] == [
        {"name": "alice", "result": "already_enabled"},
        {"name": "bob", "result": "enabled"},
        {"name": "carol", "result": "enabled"},
        {"name": "ghost", "result": "not_found"},
    ]
    assert data["counts"] == {"already_enabled": 1, "enabled": 2, "not_found": 1}
    assert "uri" not in result.stdout and "secret" not in result.stdout


def test_bulk_enable_group_and_from_stdin(cli, store, sql):
    add_users(store, ["a1", "a2"], group="ops")
    add_users(store, ["b1", "b2", "b3"])
    result = cli("user", "enable", "--group", "ops", "--json")
    assert result.exit_code == 0 and result.json()["counts"] == {"enabled": 2}
    piped = cli("user", "enable", "--from-file", "-", "--json", input="b1\n# comment\n\nb3\n")
    assert piped.exit_code == 0 and piped.json()["counts"] == {"enabled": 2}
    pending = {r[0] for r in sql("SELECT name FROM users WHERE state = 'pending'")}
    assert pending == {"a1", "a2", "b1", "b3"}


def test_bulk_enable_10000_users_is_fast_and_one_transaction(cli, store, sql):
    add_users(store, [f"u{i:05d}" for i in range(10_000)])
    started = time.perf_counter()
    result = cli("user", "enable", "--all", "--method", "totp")
    elapsed = time.perf_counter() - started
    assert result.exit_code == 0, result.stderr
    assert "enabled: 10001" in result.stdout
    assert elapsed < 10, elapsed  # ~0.5 s here; the 100,000-user figure is in bench/
    counts = sql("SELECT count(*), count(DISTINCT secret) FROM users WHERE state = 'pending'")[0]
    assert tuple(counts) == (10_001, 10_001)
    assert sql("SELECT count(*) FROM audit WHERE action = 'user.enable'")[0][0] == 10_001
    assert sql("PRAGMA integrity_check")[0][0] == "ok"


def test_a_bulk_enabled_user_can_verify(cli, store, db_path):
    add_users(store, ["x1", "x2"])
    assert cli("user", "enable", "--all").exit_code == 0
    uri = cli("qr", "x2", "--json").json()["uri"]
    assert cli("auth", "verify", "x2", totp_now(secret_of(uri))).exit_code == 0


def _helpdesk(cli):
    """A delegated console user with Write over group ops only."""
    assert cli("user", "add", "helpdesk", "--password-stdin", input="helpdesk-pw\n").exit_code == 0
    assert cli("user", "grant", "helpdesk", "--write-group", "ops").exit_code == 0


def test_permission_denied_with_as(cli, store):
    add_users(store, ["alice"], group="ops")
    add_users(store, ["bob"])
    _helpdesk(cli)
    args = ("--as", "helpdesk", "--as-password-stdin")
    bulk = cli(*args, "user", "enable", "alice", "bob", "--json", input="helpdesk-pw\n")
    assert bulk.exit_code == 1
    assert bulk.json()["results"] == [
        {"name": "alice", "result": "enabled"},
        {"name": "bob", "result": "denied"},
    ]
    single = cli(*args, "user", "enable", "bob", input="helpdesk-pw\n")
    assert single.exit_code == 5
    assert cli(*args, "user", "unlock", "bob", input="helpdesk-pw\n").exit_code == 5
    assert cli(*args, "user", "unlock", "alice", input="helpdesk-pw\n").exit_code == 0
    assert cli(*args, "qr", "bob", input="helpdesk-pw\n").exit_code in (5, 6)
    denied = cli(*args, "user", "disable", "bob", "--yes", input="helpdesk-pw\n")
    assert denied.exit_code == 5


def test_disable_clears_secret_and_phone_but_keeps_audit(cli, sql):
    secret = enroll(cli, "alice")
    cli("auth", "verify", "alice", "000001")
    assert cli("user", "disable", "alice").exit_code == 2  # no terminal, no --yes
    assert cli("user", "disable", "alice", "--yes").exit_code == 0
    row = sql("SELECT * FROM users WHERE name = 'alice'")[0]
    assert row["state"] == "disabled"
    for column in ("secret", "phone", "method", "last_step", "locked_at", "enabled_at"):
        assert row[column] is None, column
    assert (row["fail_count"], row["locked"]) == (0, 0)
    actions = [r[0] for r in sql("SELECT action FROM audit WHERE target = 'alice'")]
    assert {"user.enable", "auth.verify", "user.disable"} <= set(actions)
    assert cli("auth", "verify", "alice", totp_now(secret)).exit_code == 6
    again = cli("user", "enable", "alice", "--json")
    assert again.exit_code == 0 and secret_of(again.json()["uri"]) != secret


def test_phone_is_normalised_and_immutable(cli, sql):
    assert cli("user", "add", "alice").exit_code == 0
    bad = cli("user", "enable", "alice", "--phone", "12345")
    assert bad.exit_code == 2
    ok = cli("user", "enable", "alice", "--phone", "+44 20 7946 0000", "--no-qr")
    assert ok.exit_code == 0, ok.stderr
    assert sql("SELECT phone FROM users WHERE name = 'alice'")[0][0] == "+442079460000"
    again = cli("user", "enable", "alice", "--phone", "+1 202 555 0143", "--json")
    assert again.exit_code == 6
    assert "cannot be changed" in again.json()["error"]["message"]
    assert sql("SELECT phone FROM users WHERE name = 'alice'")[0][0] == "+442079460000"
    assert cli("user", "disable", "alice", "--yes").exit_code == 0
    assert sql("SELECT phone FROM users WHERE name = 'alice'")[0][0] is None


def test_check_install_refuses_users_with_2fa(cli):
    assert cli("user", "add", "installer").exit_code == 0
    ok = cli("user", "check-install", "installer", "--json")
    assert ok.exit_code == 0 and ok.json()["usable_for_install"] is True
    enroll(cli, "alice")
    refused = cli("user", "check-install", "alice", "--json")
    assert refused.exit_code == 6
    assert "server-assisted" in refused.json()["error"]["message"]
    assert cli("user", "check-install", "ghost").exit_code == 3


def test_unlock_of_unlocked_user_is_harmless(cli):
    enroll(cli, "alice")
    result = cli("user", "unlock", "alice", "--json")
    assert result.exit_code == 0 and result.json() == {
        "name": "alice",
        "was_locked": False,
        "locked": False,
    }


def test_push_enrollment_has_no_secret_and_no_otp(cli, sql):
    assert cli("user", "add", "bob").exit_code == 0
    result = cli("user", "enable", "bob", "--method", "push", "--json")
    assert result.exit_code == 0, result.stderr
    assert result.json() == {
        "name": "bob",
        "result": "enabled",
        "state": "pending",
        "method": "push",
    }
    row = sql("SELECT method, state, secret FROM users WHERE name = 'bob'")[0]
    assert tuple(row) == ("push", "pending", None)
    verify = cli("auth", "verify", "bob", "123456")
    assert verify.exit_code == 6 and "push" in verify.stderr
    assert cli("qr", "bob").exit_code == 6


def test_sigkill_during_bulk_enable_leaves_all_or_nothing(cli, store, db_path):
    users = 40_000
    add_users(store, [f"k{i:06d}" for i in range(users)])
    total = users + 1  # and the Administrator
    rng = random.Random(4)
    killed = 0
    command = ["--db", str(db_path), "--json"]
    for _ in range(3):
        killed += sigkill_after(
            [*command, "user", "enable", "--all", "--method", "totp"], rng.uniform(0.1, 0.8)
        )
        conn = sqlite3.connect(db_path)
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        pending, with_secret = conn.execute(
            "SELECT count(*), count(secret) FROM users WHERE state = 'pending'"
        ).fetchone()
        audited = conn.execute(
            "SELECT count(*) FROM audit WHERE action = 'user.enable' AND result = 'enabled'"
        ).fetchone()[0]
        conn.close()
        assert pending in (0, total), pending  # one transaction: never a partial enable
        assert with_secret == pending == audited  # each user fully changed or untouched
        if pending == total:
            break
    assert killed, "no run was interrupted: the enable got faster than the kill delays"
