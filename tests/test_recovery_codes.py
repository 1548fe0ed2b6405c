"""One-time recovery codes: shown once, stored hashed, each usable once, counted like OTPs."""

from __future__ import annotations

import json
import re

from conftest import audit_dump
from test_reset_token import active_user


def regenerate(cli, name: str = "alice") -> list[str]:
    r = cli("user", "recovery-codes", name, "--regenerate", "--json")
    assert r.exit_code == 0, r.stderr
    return r.json()["codes"]


def test_ten_codes_shown_once_and_stored_only_as_hashes(cli, store, sql):
    active_user(cli)
    codes = regenerate(cli)
    assert len(codes) == len(set(codes)) == 10
    assert all(re.fullmatch(r"[0-9A-HJKMNP-TV-Z]{5}-[0-9A-HJKMNP-TV-Z]{5}", c) for c in codes)
    stored = json.dumps(
        [{k: str(r[k]) for k in r.keys()} for r in sql("SELECT * FROM recovery_codes")]
    )
    audit_text = audit_dump(sql)
    for code in codes:
        for text in (stored, audit_text):
            assert code not in text and code.replace("-", "") not in text
    shown = cli("user", "recovery-codes", "alice", "--json")
    assert shown.json() == {"name": "alice", "unused": 10}
    assert codes[0] not in shown.stdout


def test_each_code_works_once_and_resets_the_fail_count(cli, store, sql):
    active_user(cli)
    codes = regenerate(cli)
    assert cli("auth", "verify", "alice", "000000").exit_code == 1
    assert sql("SELECT fail_count FROM users WHERE name = 'alice'")[0][0] == 1
    r = cli("auth", "verify", "alice", "--recovery-code", codes[3].lower(), "--json")
    assert r.exit_code == 0, r.stderr
    assert r.json()["accepted"] is True and r.json()["reason"] == "recovery_code"
    assert sql("SELECT fail_count FROM users WHERE name = 'alice'")[0][0] == 0
    again = cli("auth", "verify", "alice", "--recovery-code", codes[3])
    assert again.exit_code == 1
    assert cli("user", "recovery-codes", "alice", "--json").json()["unused"] == 9
    rows = sql("SELECT result, details FROM audit WHERE action = 'auth.verify' ORDER BY id")
    # The first row is the activation in active_user.
    assert [r["result"] for r in rows] == ["accepted", "rejected", "accepted", "rejected"]
    assert json.loads(rows[2]["details"])["factor"] == "recovery_code"


def test_wrong_codes_count_toward_the_lockout_and_a_locked_user_is_refused(cli, store, sql):
    active_user(cli)
    codes = regenerate(cli)
    assert cli("config", "set", "lockout.max_failures", "2").exit_code == 0
    assert cli("auth", "verify", "alice", "--recovery-code", "AAAAA-AAAAA").exit_code == 1
    assert cli("auth", "verify", "alice", "--recovery-code", "not a code").exit_code == 1
    assert sql("SELECT locked FROM users WHERE name = 'alice'")[0][0] == 1
    assert cli("auth", "verify", "alice", "--recovery-code", codes[0]).exit_code == 4
    assert cli("user", "recovery-codes", "alice", "--json").json()["unused"] == 10
    assert cli("user", "unlock", "alice").exit_code == 0
    assert cli("auth", "verify", "alice", "--recovery-code", codes[0]).exit_code == 0


def test_regenerate_replaces_and_disable_or_recover_drop_the_codes(cli, store, sql):
    active_user(cli)
    old = regenerate(cli)
    new = regenerate(cli)
    assert cli("auth", "verify", "alice", "--recovery-code", old[0]).exit_code == 1
    assert cli("auth", "verify", "alice", "--recovery-code", new[0]).exit_code == 0
    assert cli("user", "recover", "alice", "--lost-phone", "--yes").exit_code == 0
    assert sql("SELECT count(*) FROM recovery_codes")[0][0] == 0
    regenerate(cli)
    assert cli("user", "disable", "alice", "--yes").exit_code == 0
    assert sql("SELECT count(*) FROM recovery_codes")[0][0] == 0
    r = cli("user", "recovery-codes", "alice", "--regenerate", "--json")
    assert r.exit_code == 6 and "user enable alice" in r.json()["error"]["hint"]
    assert cli("auth", "verify", "alice", "--recovery-code", new[1]).exit_code == 6


def test_usage_and_permission(cli, store):
    active_user(cli)
    assert cli("auth", "verify", "alice").exit_code == 2
    assert cli("auth", "verify", "alice", "123456", "--recovery-code", "AAAAA-AAAAA").exit_code == 2
    assert cli("user", "add", "helpdesk", "--password-stdin", input="helpdesk-pw\n").exit_code == 0
    as_helpdesk = ("--as", "helpdesk", "--as-password-stdin")
    r = cli(*as_helpdesk, "user", "recovery-codes", "alice", "--regenerate", input="helpdesk-pw\n")
    assert r.exit_code == 5


def test_auth_login_accepts_a_recovery_code(cli, store, db_path, sql):
    from test_auth import Terminal

    active_user(cli)
    codes = regenerate(cli)
    term = Terminal("--db", str(db_path), "auth", "login", "alice")
    term.expect("Password for alice")
    term.send_secret("alice-password")
    term.expect("One-time password for alice")
    term.send(codes[0])
    term.expect("Logged in")
    assert term.finish() == 0, term.seen
    (row,) = sql("SELECT result, details FROM audit WHERE action = 'auth.login' ORDER BY id DESC")[
        :1
    ]
    assert row["result"] == "accepted"
    assert json.loads(row["details"])["factor"] == "recovery_code"
    assert sql("SELECT count(*) FROM recovery_codes WHERE used_at IS NOT NULL")[0][0] == 1
