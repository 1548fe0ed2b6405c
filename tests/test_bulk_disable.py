"""Bulk disable like bulk enable (names, --from-file FILE or -, progress, per-user results), and
re-runs of either that find every user already done exit 0."""

from __future__ import annotations

import os
import select
import sqlite3
import subprocess
import sys
import time

import pytest
from test_enrollment import add_users
from totp_helpers import enroll

# Only `init` creates a store at an explicit --db path (issue 9): each test starts from one.
pytestmark = pytest.mark.usefixtures("env_master_key", "store")


def _states(sql) -> dict[str, str]:
    return {row["name"]: row["state"] for row in sql("SELECT name, state FROM users")}


def test_disable_from_stdin_reports_each_user(cli, store, sql):
    add_users(store, ["bob", "carol", "dave"])
    assert cli("user", "enable", "bob", "carol").exit_code == 0
    result = cli(
        "user", "disable", "--from-file", "-", "--yes", "--json",
        input="bob\n# leavers\n\ncarol\ndave\nghost\n",
    )  # fmt: skip
    assert result.exit_code == 1  # ghost was not found
    assert result.json()["results"] == [
        {"name": "bob", "result": "disabled"},
        {"name": "carol", "result": "disabled"},
        {"name": "dave", "result": "already_disabled"},
        {"name": "ghost", "result": "not_found"},
    ]
    assert result.json()["counts"] == {"disabled": 2, "already_disabled": 1, "not_found": 1}
    assert _states(sql) == {
        "Administrator": "disabled",
        "bob": "disabled",
        "carol": "disabled",
        "dave": "disabled",
    }
    audit = sql("SELECT target, result FROM audit WHERE action = 'user.disable' ORDER BY id")
    assert [tuple(row) for row in audit] == [
        ("bob", "disabled"),
        ("carol", "disabled"),
        ("dave", "already_disabled"),
        ("ghost", "not_found"),
    ]


def test_disable_from_a_file_of_one_name_is_still_a_bulk_result(cli, tmp_path, sql):
    secret = enroll(cli, "alice")
    assert secret
    names = tmp_path / "leavers.txt"
    names.write_text("alice\n")
    result = cli("user", "disable", "--from-file", str(names), "--yes")
    assert result.exit_code == 0, result.stderr
    assert result.stdout.strip() == "disabled: 1"
    assert _states(sql)["alice"] == "disabled"


def test_rerunning_a_bulk_disable_exits_0_and_says_already_disabled(cli, store, tmp_path):
    add_users(store, ["bob", "carol", "dave"])
    names = tmp_path / "names.txt"
    names.write_text("bob\ncarol\ndave\n")
    again = cli("user", "disable", "--from-file", str(names), "--yes")
    assert again.exit_code == 0
    assert again.stdout.strip() == "already disabled: 3"
    as_json = cli("user", "disable", "--from-file", str(names), "--yes", "--json")
    assert as_json.exit_code == 0 and as_json.json()["counts"] == {"already_disabled": 3}


def test_rerunning_a_bulk_enable_exits_0_and_says_already_enabled(cli, store, sql):
    add_users(store, ["bob", "carol"], group="ops")
    first = cli("user", "enable", "--group", "ops")
    assert first.exit_code == 0 and first.stdout.strip() == "enabled: 2"
    secrets = {row["name"]: row["secret"] for row in sql("SELECT name, secret FROM users")}
    again = cli("user", "enable", "--group", "ops")
    assert again.exit_code == 0  # was exit 1: nothing failed, everyone is already enrolled
    assert again.stdout.strip() == "already enabled: 2"
    assert {row["name"]: row["secret"] for row in sql("SELECT name, secret FROM users")} == secrets
    piped = cli("user", "enable", "--from-file", "-", "--json", input="bob\ncarol\n")
    assert piped.exit_code == 0 and piped.json()["counts"] == {"already_enabled": 2}
    mixed = cli("user", "enable", "bob", "Administrator")
    assert mixed.exit_code == 0 and mixed.stdout.strip() == "enabled: 1, already enabled: 1"


def test_a_single_user_already_enabled_is_still_a_state_conflict(cli):
    enroll(cli, "alice")
    again = cli("user", "enable", "alice")
    assert again.exit_code == 6 and "already has two-factor authentication" in again.stderr


def test_bulk_runs_with_denied_or_unknown_users_still_exit_1(cli, store, sql):
    add_users(store, ["alice"], group="ops")
    add_users(store, ["bob"])
    assert cli("user", "add", "helpdesk", "--password-stdin", input="helpdesk-pw\n").exit_code == 0
    assert cli("user", "grant", "helpdesk", "--write-group", "ops").exit_code == 0
    as_helpdesk = ("--as", "helpdesk", "--as-password-stdin")
    enabled = cli(*as_helpdesk, "user", "enable", "alice", "bob", input="helpdesk-pw\n")
    assert enabled.exit_code == 1
    assert "bob" in enabled.stdout and enabled.stdout.splitlines()[-1] == "enabled: 1, denied: 1"
    assert cli("user", "enable", "bob").exit_code == 0
    disabled = cli(*as_helpdesk, "user", "disable", "alice", "bob", "--yes", input="helpdesk-pw\n")
    assert disabled.exit_code == 1
    assert disabled.stdout.splitlines()[-1] == "disabled: 1, denied: 1"
    assert _states(sql)["bob"] == "pending"  # denied: untouched
    unknown = cli("user", "disable", "alice", "ghost", "--yes")
    assert unknown.exit_code == 1
    assert unknown.stdout.splitlines()[-1] == "already disabled: 1, not found: 1"


def test_disable_refuses_names_and_a_file_together(cli, store):
    result = cli("user", "disable", "alice", "--from-file", "-", "--yes", input="bob\n")
    assert result.exit_code == 2
    missing = cli("user", "disable", "--from-file", "no-such-file.txt", "--yes")
    assert missing.exit_code == 3


def test_bulk_disable_shows_a_progress_bar_on_a_terminal_stderr(cli, store, tmp_path, sql):
    """stderr on a pseudo-terminal gets the bar; stdout (a pipe) only the result."""
    names = [f"user{i:05d}" for i in range(3000)]
    add_users(store, names)
    conn = sqlite3.connect(store)
    with conn:
        conn.execute("UPDATE users SET state = 'pending', method = 'push' WHERE name LIKE 'user%'")
    conn.close()
    listing = tmp_path / "names.txt"
    listing.write_text("\n".join(names) + "\n")
    master, slave = os.openpty()
    process = subprocess.Popen(
        [sys.executable, "-m", "eset2fa", "--db", str(store), "user", "disable"]
        + ["--from-file", str(listing), "--yes"],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=slave,
        env={**os.environ, "TERM": "xterm", "COLUMNS": "100"},
    )
    os.close(slave)
    stderr = b""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        ready, _, _ = select.select([master], [], [], 0.2)
        if ready:
            try:
                chunk = os.read(master, 65536)
            except OSError:  # EIO: the process closed the terminal
                break
            if not chunk:
                break
            stderr += chunk
        elif process.poll() is not None:
            break
    stdout = process.communicate(timeout=30)[0].decode()
    os.close(master)
    assert process.returncode == 0
    assert b"Disabling 2FA" in stderr
    assert stdout == "disabled: 3000\n"
    assert sql("SELECT count(*) FROM users WHERE state = 'disabled'")[0][0] == 3001
