"""`--as NAME`: a console user authenticates and may change only users they have Write over."""

from __future__ import annotations

import pytest
from totp_helpers import secret_of, totp_now

PASSWORD = "helpdesk-password-1"


@pytest.fixture
def team(cli, store):
    """helpdesk (password set) with no grants yet; alice and bob in group ops, carol in dev."""
    assert cli("user", "add", "helpdesk", "--password-stdin", input=PASSWORD + "\n").exit_code == 0
    for name, group in (("alice", "ops"), ("bob", "ops"), ("carol", "dev")):
        assert cli("user", "add", name, "--group", group).exit_code == 0
    return store


def as_helpdesk(cli, *args, password=PASSWORD, input_rest=""):
    return cli("--as", "helpdesk", "--as-password-stdin", *args, input=password + "\n" + input_rest)


def test_denied_without_grant(cli, team, sql):
    result = as_helpdesk(cli, "user", "delete", "alice", "--yes", "--json")
    assert result.exit_code == 5
    assert result.json()["error"]["code"] == "permission_denied"
    assert sql("SELECT count(*) FROM users WHERE name = 'alice'")[0][0] == 1


def test_allowed_with_user_grant(cli, team, sql):
    assert cli("user", "grant", "helpdesk", "--write", "alice").exit_code == 0
    assert as_helpdesk(cli, "user", "delete", "alice", "--yes").exit_code == 0
    assert as_helpdesk(cli, "user", "delete", "bob", "--yes").exit_code == 5
    row = sql("SELECT actor, action, target FROM audit WHERE action = 'user.delete'")[0]
    assert tuple(row) == ("helpdesk", "user.delete", "alice")


def test_group_grant_covers_the_group_only(cli, team):
    assert cli("user", "grant", "helpdesk", "--write-group", "ops").exit_code == 0
    assert as_helpdesk(cli, "user", "delete", "bob", "--yes").exit_code == 0
    assert as_helpdesk(cli, "user", "delete", "carol", "--yes").exit_code == 5


def test_wrong_password_is_denied_and_audited(cli, team, sql):
    cli("user", "grant", "helpdesk", "--write", "alice")
    result = as_helpdesk(cli, "user", "delete", "alice", "--yes", password="wrong-password")
    assert result.exit_code == 5
    assert "Authentication as 'helpdesk' failed" in result.stderr
    assert sql("SELECT count(*) FROM users WHERE name = 'alice'")[0][0] == 1
    rows = sql("SELECT result FROM audit WHERE action = 'auth.actor'")
    assert [r[0] for r in rows] == ["failed"]


def test_unknown_actor_gets_the_same_answer(cli, team):
    result = cli("--as", "nobody", "--as-password-stdin", "user", "list", input="whatever1\n")
    assert result.exit_code == 5
    assert "Authentication as 'nobody' failed" in result.stderr


def test_as_without_terminal_or_stdin_flag_is_a_usage_error(cli, team):
    result = cli("--as", "helpdesk", "user", "delete", "alice", "--yes")
    assert result.exit_code == 2
    assert "--as-password-stdin" in result.stderr or "stdin" in result.stderr


def test_user_without_password_cannot_act(cli, team):
    result = cli("--as", "alice", "--as-password-stdin", "user", "list", input="anything1\n")
    assert result.exit_code == 5


def test_administrator_has_write_over_everyone(cli, db_path):
    cli("init", "--password-stdin", input="admin-password-1\n")
    cli("user", "add", "alice")
    result = cli(
        "--as",
        "Administrator",
        "--as-password-stdin",
        "user",
        "delete",
        "alice",
        "--yes",
        input="admin-password-1\n",
    )
    assert result.exit_code == 0, result.stderr


def test_delegated_grant_cannot_exceed_own_rights(cli, team):
    cli("user", "grant", "helpdesk", "--write-group", "ops")
    # helpdesk may not hand out Write over carol (dev) to alice (ops)...
    result = as_helpdesk(cli, "user", "grant", "alice", "--write", "carol")
    assert result.exit_code == 5
    # ...but may within its own scope.
    assert as_helpdesk(cli, "user", "grant", "alice", "--write", "bob").exit_code == 0


def test_delegated_add_only_inside_own_group(cli, team, sql):
    cli("user", "grant", "helpdesk", "--write-group", "ops")
    assert as_helpdesk(cli, "user", "add", "dave", "--group", "ops").exit_code == 0
    assert as_helpdesk(cli, "user", "add", "erin", "--group", "dev").exit_code == 5
    assert as_helpdesk(cli, "user", "add", "frank").exit_code == 5
    assert sql("SELECT actor FROM audit WHERE target = 'dave'")[0][0] == "helpdesk"


def test_grant_show_and_revoke(cli, team):
    assert cli("user", "grant", "helpdesk", "--write", "alice").exit_code == 0
    again = cli("user", "grant", "helpdesk", "--write", "alice", "--json").json()
    assert again["new"] is False
    cli("user", "grant", "helpdesk", "--write-group", "dev")
    grants = cli("user", "show", "helpdesk", "--json").json()["grants"]
    assert grants == [{"write_user": "alice"}, {"write_group": "dev"}]
    assert cli("user", "revoke", "helpdesk", "--write", "alice").exit_code == 0
    assert cli("user", "revoke", "helpdesk", "--write", "alice").exit_code == 3
    assert cli("user", "show", "helpdesk", "--json").json()["grants"] == [{"write_group": "dev"}]
    assert as_helpdesk(cli, "user", "delete", "alice", "--yes").exit_code == 5


def test_grant_needs_exactly_one_target(cli, team):
    assert cli("user", "grant", "helpdesk").exit_code == 2
    assert (
        cli("user", "grant", "helpdesk", "--write", "alice", "--write-group", "ops").exit_code == 2
    )


def test_local_operator_is_recorded(cli, team, sql):
    actors = {r[0] for r in sql("SELECT actor FROM audit WHERE action = 'user.add'")}
    assert len(actors) == 1 and actors.pop().startswith("local:")


def test_a_delegated_user_may_not_change_settings_or_rotate_the_key(cli, team, sql, db_path):
    assert cli("user", "grant", "helpdesk", "--write-group", "ops").exit_code == 0
    assert cli("user", "enable", "alice", "--method", "totp").exit_code == 0  # creates the key
    key_before = (db_path.parent / (db_path.name + ".key")).read_text()
    settings_before = sql("SELECT key, value FROM config")  # the Argon2 profile (conftest)
    attempts = [
        ("config", "set", "lockout.max_failures", "1000"),
        ("config", "unset", "totp.window"),
        ("config", "set-secret", "twilio.auth_token"),
        ("db", "rekey", "--yes"),
    ]
    for args in attempts:
        result = as_helpdesk(cli, *args, "--json", input_rest="token-value\n")
        assert result.exit_code == 5, (args, result.stderr)
        assert result.json()["error"]["code"] == "permission_denied"
    assert sql("SELECT key, value FROM config") == settings_before
    assert (db_path.parent / (db_path.name + ".key")).read_text() == key_before
    assert cli("config", "set", "lockout.max_failures", "12").exit_code == 0  # the operator may


def test_a_delegated_user_reads_only_the_outbox_of_users_in_their_scope(cli, team):
    """The outbox holds reset codes: helpdesk (Write over ops) must not read carol's (dev)."""
    assert cli("user", "grant", "helpdesk", "--write-group", "ops").exit_code == 0
    for name, phone in (("alice", "+420601123456"), ("carol", "+420601654321")):
        enabled = cli("user", "enable", name, "--phone", phone, "--json")
        assert enabled.exit_code == 0, enabled.stderr
        code = totp_now(secret_of(enabled.json()["uri"]))
        assert cli("auth", "verify", name, code).exit_code == 0
        assert cli("user", "reset-token", name).exit_code == 0
    assert cli("sms", "test", "+420601000000").exit_code == 0  # for no user: operators only
    everything = cli("outbox", "--json").json()
    assert {m["user"] for m in everything} == {"alice", "carol", None}
    seen = as_helpdesk(cli, "outbox", "--json")
    assert seen.exit_code == 0, seen.stderr
    assert [m["user"] for m in seen.json()] == ["alice"]
    assert as_helpdesk(cli, "outbox", "--user", "carol", "--json").json() == []
