"""The quick start on a terminal: `user enable` shows the QR code, then asks for the first code
from the app and activates; without a terminal it only says how to activate (and exits 0)."""

from __future__ import annotations

import pytest
from test_auth import Terminal
from totp_helpers import secret_of, totp_now

# Only `init` creates a store at an explicit --db path (issue 9): each test starts from one.
pytestmark = pytest.mark.usefixtures("env_master_key", "store")


def _enable_on_a_terminal(cli, db_path) -> tuple[Terminal, str]:
    """`user enable alice` on a terminal, stopped at the code prompt; and alice's secret, read the
    way an admin would show the code again (`qr --json`) while the first command waits."""
    assert cli("user", "add", "alice").exit_code == 0
    term = Terminal("--db", str(db_path), "user", "enable", "alice")
    term.expect("Code from the app (Enter to skip)")
    assert "▀" in term.seen or "█" in term.seen  # the QR code came first
    return term, secret_of(cli("qr", "alice", "--json").json()["uri"])


def _state(sql) -> str:
    return sql("SELECT state FROM users WHERE name = 'alice'")[0]["state"]


def test_the_first_code_activates_the_user(cli, db_path, sql):
    term, secret = _enable_on_a_terminal(cli, db_path)
    term.send(totp_now(secret))
    term.expect("Accepted: alice is active")
    assert term.finish() == 0
    assert _state(sql) == "active"
    audit = sql("SELECT actor, result FROM audit WHERE action = 'auth.verify'")
    assert [tuple(row) for row in audit] == [(audit[0]["actor"], "accepted")]
    assert audit[0]["actor"].startswith("local:")  # the admin at the terminal, not alice


def test_enter_skips_and_leaves_the_user_pending(cli, db_path, sql):
    term, _secret = _enable_on_a_terminal(cli, db_path)
    term.send("")
    term.expect("Skipped: alice stays pending; activate later with: eset2fa auth verify alice")
    assert term.finish() == 0
    assert _state(sql) == "pending"


def test_a_wrong_code_is_counted_and_asked_again(cli, db_path, sql):
    term, secret = _enable_on_a_terminal(cli, db_path)
    term.send("000000" if totp_now(secret) != "000000" else "111111")
    term.expect("Rejected (wrong code): 1 failed attempt(s)")
    term.expect("Code from the app (Enter to skip)")
    term.send(totp_now(secret))
    term.expect("Accepted: alice is active")
    assert term.finish() == 0
    assert sql("SELECT state, fail_count FROM users WHERE name = 'alice'")[0][0] == "active"


def test_without_a_terminal_nothing_is_asked(cli, sql):
    assert cli("user", "add", "alice").exit_code == 0
    result = cli("user", "enable", "alice", "--qr", input="123456\n")
    assert result.exit_code == 0
    assert "Code from the app" not in result.stderr + result.stdout
    assert "activate with: eset2fa auth verify alice CODE" in result.stderr
    assert _state(sql) == "pending"
