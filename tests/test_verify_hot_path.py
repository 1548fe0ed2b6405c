"""What the verification path keeps between calls, and the audit chain's links as bytes (issue 13).

A process that verifies many codes through the Python API reads the policy and the audit chain's
last link once, then reuses them while the database's `data_version` and the connection's own
`total_changes` say nothing else was written. A change by another process is obeyed by the very
next verification; the chain stays whole whoever appends to it.
"""

from __future__ import annotations

import sqlite3

import pytest
from conftest import run_process
from totp_helpers import enroll, totp_now

from eset2fa.accounts.actors import local_operator
from eset2fa.db import open_store
from eset2fa.db.migrations import LATEST_VERSION, MIGRATIONS
from eset2fa.ops import settings
from eset2fa.twofactor.totp import verify_otp

pytestmark = pytest.mark.usefixtures("env_master_key")


def wrong_code(secret: str) -> str:
    valid = {totp_now(secret, step) for step in range(-3, 4)}
    return next(c for c in ("000000", "111111", "222222", "333333") if c not in valid)


@pytest.fixture
def alice(cli, store) -> str:
    """alice, enrolled and active; returns her secret."""
    secret = enroll(cli, "alice")
    assert cli("auth", "verify", "alice", totp_now(secret)).exit_code == 0
    return secret


def audit_ok(cli) -> dict:
    report = cli("audit", "verify", "--json").json()
    assert report["ok"] is True, report
    return report


def test_a_policy_changed_by_another_process_is_obeyed_by_the_next_verification(cli, store, alice):
    wrong = wrong_code(alice)
    opened = open_store(store, create=False)  # process A: a long-lived API user
    try:
        first = verify_otp(opened, "alice", wrong)
        assert (first.fail_count, first.remaining, first.locked) == (1, 9, False)
        second = verify_otp(opened, "alice", wrong)  # the policy is reused now
        assert (second.fail_count, second.remaining) == (2, 8)
        # Process B lowers the limit to 3.
        changed = run_process("--db", str(store), "config", "set", "lockout.max_failures", "3")
        assert changed.returncode == 0, changed.stderr
        third = verify_otp(opened, "alice", wrong)
        assert (third.fail_count, third.locked, third.remaining) == (3, True, 0)
    finally:
        opened.close()
    assert cli("user", "status", "alice", "--json").json()["locked"] is True
    audit_ok(cli)


def test_a_window_changed_on_the_same_connection_is_obeyed(cli, store, alice):
    opened = open_store(store, create=False)
    try:
        assert verify_otp(opened, "alice", wrong_code(alice)).accepted is False
        # The same connection changes the window to 0: its own write, no data_version change.
        settings.set_value(opened, local_operator(), "totp.window", "0")
        late = verify_otp(opened, "alice", totp_now(alice, -1))  # the previous step's code
        assert late.accepted is False and late.reason == "wrong_code"
    finally:
        opened.close()
    audit_ok(cli)


def test_the_chain_stays_whole_when_other_processes_append_between_verifications(cli, store, alice):
    wrong = wrong_code(alice)
    opened = open_store(store, create=False)
    try:
        for round_ in range(3):
            assert verify_otp(opened, "alice", wrong).accepted is False
            other = run_process("--db", str(store), "auth", "verify", "alice", wrong)
            assert other.returncode == 1, other.stderr
            assert cli("user", "add", f"someone{round_}").exit_code == 0  # another connection
        assert verify_otp(opened, "alice", wrong).fail_count == 7
    finally:
        opened.close()
    report = audit_ok(cli)
    assert report["rows_checked"] == len(cli("audit", "list", "--limit", "1000", "--json").json())


def test_links_are_stored_as_32_bytes(cli, store, alice, sql):
    rows = sql("SELECT typeof(prev_hash), typeof(hash), length(prev_hash), length(hash) FROM audit")
    assert rows and {tuple(r) for r in rows} == {("blob", "blob", 32, 32)}


def _as_schema_9(db_path) -> None:
    """The store as eset2fa before the conversion left it: links as 64 hex digits, version 9."""
    conn = sqlite3.connect(db_path)
    with conn:
        conn.execute("UPDATE audit SET prev_hash = hex(prev_hash), hash = hex(hash)")
        conn.execute("UPDATE audit SET prev_hash = lower(prev_hash), hash = lower(hash)")
        # What the migrations after 0009 made goes too, so that opening applies them again.
        conn.execute("DELETE FROM schema_migrations WHERE name >= '0010'")
        conn.execute("DROP TABLE api_keys")
        conn.execute("DROP TABLE enroll_links")
        for column in ("number", "choices", "needs_number"):
            conn.execute(f"ALTER TABLE push_requests DROP COLUMN {column}")
        conn.execute("PRAGMA user_version = 9")
    conn.close()


def test_a_store_with_hex_links_is_converted_and_keeps_verifying(cli, store, alice, sql):
    assert MIGRATIONS[9][0] == "0010_audit_hashes_as_bytes" and LATEST_VERSION >= 10
    for name in ("bob", "carol"):
        assert cli("user", "add", name).exit_code == 0
    before = [tuple(r) for r in sql("SELECT id, at, actor, action, target, result FROM audit")]
    _as_schema_9(store)
    assert {r[0] for r in sql("SELECT typeof(hash) FROM audit")} == {"text"}
    report = audit_ok(cli)  # opening migrates: the links become bytes, the chain still verifies
    assert report["rows_checked"] == len(before)
    assert {tuple(r) for r in sql("SELECT typeof(prev_hash), typeof(hash) FROM audit")} == {
        ("blob", "blob")
    }
    assert [tuple(r) for r in sql("SELECT id, at, actor, action, target, result FROM audit")] == (
        before
    )
    # New rows chain on to the converted ones.
    assert cli("auth", "verify", "alice", wrong_code(alice)).exit_code == 1
    assert audit_ok(cli)["rows_checked"] == len(before) + 1


def test_a_row_edited_before_the_conversion_is_still_reported(cli, store, alice, sql):
    assert cli("user", "add", "bob").exit_code == 0
    _as_schema_9(store)
    conn = sqlite3.connect(store)
    with conn:
        conn.execute("UPDATE audit SET actor = 'someone-else' WHERE target = 'bob'")
    conn.close()
    report = cli("audit", "verify", "--json")
    assert report.exit_code == 1
    (bob_row,) = sql("SELECT id FROM audit WHERE target = 'bob'")
    assert report.json()["first_bad_id"] == bob_row[0]
