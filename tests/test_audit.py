"""The audit log: rows for every change, filters, and a hash chain that shows edits."""

from __future__ import annotations

import sqlite3

import time_machine


def test_changes_are_audited_without_secrets(cli, store, sql):
    cli("user", "add", "alice", "--password-stdin", input="alice-secret-pw\n")
    cli("user", "add", "bob", "--group", "ops")
    cli("user", "delete", "bob", "--yes")
    rows = cli("audit", "list", "--json").json()
    assert [(r["action"], r["target"], r["result"]) for r in rows] == [
        ("store.init", "Administrator", "ok"),
        # the suite's stores are made with ESET2FA_ARGON2_PROFILE=test (conftest), recorded so
        ("config.set", "passwords.argon2_profile", "ok"),
        ("user.add", "alice", "ok"),
        ("user.add", "bob", "ok"),
        ("user.delete", "bob", "ok"),
    ]
    assert rows[3]["details"] == {"group": "ops"}
    dump = "\n".join(str(tuple(r)) for r in sql("SELECT * FROM audit"))
    assert "alice-secret-pw" not in dump


def test_filters(cli, store):
    with time_machine.travel("2026-01-01T10:00:00Z", tick=False):
        cli("user", "add", "old")
    cli("user", "add", "alice")
    cli("user", "add", "bob")
    assert [r["target"] for r in cli("audit", "list", "--user", "alice", "--json").json()] == [
        "alice"
    ]
    recent = cli("audit", "list", "--since", "30d", "--action", "user", "--json").json()
    assert [r["target"] for r in recent] == ["alice", "bob"]
    dated = cli("audit", "list", "--since", "2025-12-31", "--action", "user.add", "--json").json()
    assert [r["target"] for r in dated] == ["old", "alice", "bob"]
    assert len(cli("audit", "list", "--limit", "2", "--json").json()) == 2
    assert cli("audit", "list", "--since", "yesterday-ish").exit_code == 2


def test_verify_detects_an_edited_row(cli, store):
    cli("user", "add", "alice")
    cli("user", "add", "bob")
    ok = cli("audit", "verify", "--json")
    assert ok.exit_code == 0 and ok.json()["ok"] is True and ok.json()["rows_checked"] == 4
    conn = sqlite3.connect(store)
    conn.execute("UPDATE audit SET actor = 'someone-else' WHERE target = 'alice'")
    conn.commit()
    conn.close()
    broken = cli("audit", "verify", "--json")
    assert broken.exit_code == 1
    # alice's row is the third: store.init, then the Argon2 profile set at init (conftest)
    assert broken.json()["ok"] is False and broken.json()["first_bad_id"] == 3


def test_verify_detects_a_deleted_row(cli, store):
    for name in ("a1", "a2", "a3"):
        cli("user", "add", name)
    conn = sqlite3.connect(store)
    conn.execute("DELETE FROM audit WHERE target = 'a2'")
    conn.commit()
    conn.close()
    assert cli("audit", "verify").exit_code == 1


def test_every_verification_outcome_extends_the_chain(cli, store, sql):
    # verify_otp reads the chain's last hash in the same statement as the user's row: each
    # outcome (accepted, rejected, locked, not enabled, unknown user) must still link correctly.
    from totp_helpers import enroll, totp_now

    secret = enroll(cli)
    cli("user", "add", "bob")
    assert cli("config", "set", "lockout.max_failures", "2").exit_code == 0
    assert cli("auth", "verify", "alice", totp_now(secret)).exit_code == 0
    valid = {totp_now(secret, d) for d in range(-3, 4)}
    wrong = next(c for c in ("000000", "111111", "222222", "333333") if c not in valid)
    assert [cli("auth", "verify", "alice", wrong).exit_code for _ in range(3)] == [1, 1, 4]
    assert cli("auth", "verify", "bob", "123456").exit_code == 6
    assert cli("auth", "verify", "nobody", "123456").exit_code == 3
    results = [r[0] for r in sql("SELECT result FROM audit WHERE action = 'auth.verify'")]
    assert results == ["accepted", "rejected", "rejected", "locked", "not_enabled", "unknown_user"]
    report = cli("audit", "verify", "--json").json()
    assert report["ok"] is True and report["rows_checked"] == len(sql("SELECT id FROM audit"))


def test_audit_table_has_no_secondary_index(store, sql):
    # Each index would add a B-tree page to every audited authentication's durable commit.
    indexes = sql("SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'audit'")
    assert [r[0] for r in indexes] == []
