"""Console users: add, list, show, status, delete, bulk add from a file."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from eset2fa.accounts.console_users import NAME_PATTERN


def test_add_show_status_list_delete(cli, store, sql):
    assert cli("user", "add", "alice", "--group", "ops").exit_code == 0
    shown = cli("user", "show", "alice", "--json").json()
    assert shown["name"] == "alice" and shown["group"] == "ops"
    assert shown["state"] == "disabled" and shown["locked"] is False
    assert shown["has_password"] is False and "password_hash" not in shown
    status = cli("user", "status", "ALICE", "--json").json()  # names are case-insensitive
    assert status == {
        "name": "alice",
        "group": "ops",
        "state": "disabled",
        "method": None,
        "locked": False,
        "fail_count": 0,
    }
    listed = cli("user", "list", "--group", "ops", "--json").json()
    assert [u["name"] for u in listed] == ["alice"]
    result = cli("user", "delete", "alice", "--yes", "--json")
    assert result.exit_code == 0 and result.json() == {"name": "alice", "deleted": True}
    assert sql("SELECT count(*) FROM users WHERE name = 'alice'")[0][0] == 0


def test_human_output_is_a_table(cli, store):
    cli("user", "add", "alice", "--group", "ops")
    result = cli("user", "list")
    assert result.exit_code == 0
    assert "alice" in result.stdout and "ops" in result.stdout and "Administrator" in result.stdout
    assert "2 user(s)" in result.stderr


def test_password_is_hashed_with_argon2id(cli, store, sql):
    result = cli("user", "add", "bob", "--password-stdin", input="s3cret-passw0rd\n")
    assert result.exit_code == 0, result.stderr
    stored = sql("SELECT password_hash FROM users WHERE name = 'bob'")[0][0]
    assert stored.startswith("$argon2id$") and "s3cret" not in stored


def test_duplicate_name_is_a_conflict(cli, store):
    cli("user", "add", "alice")
    result = cli("user", "add", "Alice", "--json")
    assert result.exit_code == 6
    assert result.json()["error"]["code"] == "state_conflict"


def test_unknown_user_is_not_found(cli, store):
    for args in (
        ["user", "show", "nobody"],
        ["user", "status", "nobody"],
        ["user", "delete", "nobody", "--yes"],
    ):
        result = cli(*args)
        assert result.exit_code == 3, args
        assert "No user named 'nobody'" in result.stderr
        assert "Hint:" in result.stderr


def test_administrator_cannot_be_deleted(cli, store):
    result = cli("user", "delete", "Administrator", "--yes")
    assert result.exit_code == 6
    assert "built-in" in result.stderr


def test_delete_needs_confirmation_without_terminal(cli, store, sql):
    cli("user", "add", "alice")
    result = cli("user", "delete", "alice")
    assert result.exit_code == 2 and "--yes" in result.stderr
    assert sql("SELECT count(*) FROM users WHERE name = 'alice'")[0][0] == 1


def test_list_filters_by_state_and_lock(cli, store, sql):
    cli("user", "add", "alice")
    cli("user", "add", "bob")
    import sqlite3

    conn = sqlite3.connect(store)
    conn.execute("UPDATE users SET state = 'pending', method = 'totp' WHERE name = 'alice'")
    conn.execute("UPDATE users SET locked = 1, fail_count = 10 WHERE name = 'bob'")
    conn.commit()
    conn.close()
    assert [u["name"] for u in cli("user", "list", "--state", "pending", "--json").json()] == [
        "alice"
    ]
    assert [u["name"] for u in cli("user", "list", "--locked", "--json").json()] == ["bob"]
    assert cli("user", "list", "--state", "bogus").exit_code == 2


@pytest.mark.parametrize(
    ("requirements", "expected_exit"),
    [
        (["disabled"], 0),
        (["unlocked"], 0),
        (["disabled", "unlocked"], 0),
        (["active"], 1),
        (["locked"], 1),
        (["enabled"], 1),
    ],
)
def test_status_require(cli, store, requirements, expected_exit):
    args = ["user", "status", "Administrator", "--json"]
    for requirement in requirements:
        args += ["--require", requirement]
    result = cli(*args)
    assert result.exit_code == expected_exit
    doc = result.json()
    assert doc["ok"] is (expected_exit == 0)
    assert set(doc["checks"]) == set(requirements)


def test_bulk_add_from_csv_file(cli, store, tmp_path, sql):
    source = tmp_path / "staff.csv"
    source.write_text(
        "name,group\nalice,ops\nbob,dev\nbad name,ops\nalice,ops\n\n# comment\ncarol\n"
    )
    result = cli("user", "add", "--from-file", str(source), "--json")
    assert result.exit_code == 1  # some lines were not added
    doc = result.json()
    assert doc["counts"] == {"added": 3, "invalid": 1, "exists": 1}
    by_line = {r["line"]: r["result"] for r in doc["results"]}
    assert by_line == {2: "added", 3: "added", 4: "invalid", 5: "exists", 8: "added"}
    rows = sql("SELECT name, group_name FROM users WHERE builtin = 0 ORDER BY name")
    assert [(r[0], r[1]) for r in rows] == [("alice", "ops"), ("bob", "dev"), ("carol", None)]
    assert sql("SELECT count(*) FROM audit WHERE action = 'user.add'")[0][0] == 3


def test_bulk_add_from_stdin_with_default_group(cli, store, sql):
    names = "".join(f"user{i:05d}\n" for i in range(10_000))
    result = cli("user", "add", "--from-file", "-", "--group", "staff", "--json", input=names)
    assert result.exit_code == 0, result.stderr
    assert result.json()["counts"] == {"added": 10_000}
    assert sql("SELECT count(*) FROM users WHERE group_name = 'staff'")[0][0] == 10_000


def test_bulk_add_missing_file(cli, store):
    result = cli("user", "add", "--from-file", "no-such-file.txt")
    assert result.exit_code == 3


def test_bulk_add_rejects_name_and_file_together(cli, store):
    assert cli("user", "add", "alice", "--from-file", "-", input="bob\n").exit_code == 2


@settings(
    max_examples=60, suppress_health_check=[HealthCheck.function_scoped_fixture], deadline=None
)
@given(name=st.text(min_size=0, max_size=70))
def test_any_name_is_added_or_refused_cleanly(cli, store, name):
    if name.startswith("-") or "\x00" in name:
        return  # an option, or not representable in argv
    result = cli("user", "add", name, "--json")
    if NAME_PATTERN.fullmatch(name):
        assert result.exit_code in (0, 6)
    else:
        assert result.exit_code == 2
        assert result.json()["error"]["code"] == "usage"


def test_long_listing_is_plain_columns_and_fast(cli, store):
    from eset2fa.output import PLAIN_TABLE_ROWS

    names = "".join(f"user{i:05d},ops\n" for i in range(PLAIN_TABLE_ROWS + 5))
    assert cli("user", "add", "--from-file", "-", input=names).exit_code == 0
    result = cli("user", "list")
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["name", "group", "2FA", "method", "locked", "failed", "OTPs"]
    assert len(lines) == 2 + PLAIN_TABLE_ROWS + 6  # header, rule, every user and Administrator
    assert lines[2].split() == ["Administrator", "disabled", "0"]
    assert lines[3].split() == ["user00000", "ops", "disabled", "0"]
    assert "┃" not in result.stdout


@pytest.mark.parametrize(
    "key, value",
    [
        ("reset.code_ttl_seconds", "100000000000000000000"),
        ("push.timeout_seconds", "100000000000000000000"),
        ("http.read_timeout", "nan"),
        ("http.connect_timeout", "inf"),
    ],
)
def test_numeric_settings_refuse_values_that_overflow_later(cli, store, sql, key, value):
    before = sql("SELECT key, value FROM config")  # the store's Argon2 profile (conftest)
    result = cli("config", "set", key, value)
    assert result.exit_code == 2, result.stdout
    assert sql("SELECT key, value FROM config") == before
