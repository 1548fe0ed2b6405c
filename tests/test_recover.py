"""user recover --lost-phone: backup, drop the lost factor, enrol again (same method), unlock."""

from __future__ import annotations

import json
import sqlite3
from datetime import timedelta
from pathlib import Path

import time_machine
from conftest import audit_dump
from test_reset_token import MOMENT, PHONE, active_user, step_code, users_snapshot
from totp_helpers import secret_of


def integrity(path: Path) -> str:
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return conn.execute("PRAGMA integrity_check").fetchone()[0]
    finally:
        conn.close()


def test_lost_phone_recovery_end_to_end_with_yes_and_json(cli, store, sql):
    old = active_user(cli)
    assert cli("config", "set", "lockout.max_failures", "2").exit_code == 0
    assert cli("auth", "verify", "alice", "000000").exit_code == 1
    assert cli("auth", "verify", "alice", "000001").exit_code == 1
    assert sql("SELECT locked FROM users WHERE name = 'alice'")[0][0] == 1
    assert cli("user", "reset-token", "alice").exit_code == 0  # a reset left pending

    r = cli("user", "recover", "alice", "--lost-phone", "--yes", "--json")
    assert r.exit_code == 0, r.stderr
    result = r.json()
    assert (result["state"], result["method"], result["locked"]) == ("pending", "totp", False)
    new = secret_of(result["uri"])
    assert new != old
    backup = Path(result["backup"])
    assert backup.exists() and "recover" in backup.name and integrity(backup) == "ok"
    # The backup holds the state before the recovery.
    conn = sqlite3.connect(f"file:{backup}?mode=ro", uri=True)
    before = conn.execute("SELECT state, locked, phone FROM users WHERE name = 'alice'").fetchone()
    conn.close()
    assert before == ("active", 1, PHONE)

    columns = "state, method, phone, locked, fail_count, last_step"
    (row,) = sql(f"SELECT {columns} FROM users WHERE name = 'alice'")
    assert dict(row) == {
        "state": "pending",
        "method": "totp",
        "phone": None,
        "locked": 0,
        "fail_count": 0,
        "last_step": None,
    }
    assert sql("SELECT count(*) FROM token_resets")[0][0] == 0
    later = MOMENT + timedelta(hours=1)
    with time_machine.travel(later, tick=False):
        assert cli("auth", "verify", "alice", step_code(old, later)).exit_code == 1
        assert cli("auth", "verify", "alice", step_code(new, later)).exit_code == 0
    (audit_row,) = sql("SELECT actor, result, details FROM audit WHERE action = 'user.recover'")
    details = json.loads(audit_row["details"])
    assert audit_row["result"] == "ok" and details["backup"] == result["backup"]
    assert details["was_locked"] is True and details["method"] == "totp"
    assert new not in audit_dump(sql)


def test_refuses_without_yes_and_without_a_terminal(cli, store):
    active_user(cli)
    before = users_snapshot(store)
    r = cli("user", "recover", "alice", "--lost-phone", input="")
    assert r.exit_code == 2 and "--yes" in r.stderr
    assert users_snapshot(store) == before
    assert not (store.parent / "backups").exists()
    assert cli("user", "recover", "alice", "--yes").exit_code == 2  # --lost-phone is required


def test_user_without_2fa_unknown_user_and_administrator(cli, store):
    assert cli("user", "add", "bob").exit_code == 0
    assert cli("user", "recover", "bob", "--lost-phone", "--yes").exit_code == 6
    assert cli("user", "recover", "nobody", "--lost-phone", "--yes").exit_code == 3
    r = cli("user", "recover", "Administrator", "--lost-phone", "--yes", "--json")
    assert r.exit_code == 6
    assert "reset-password Administrator" in r.json()["error"]["hint"]
    assert not (store.parent / "backups").exists()

    # With 2FA on, the operator can recover the Administrator like anyone else.
    old = secret_of(cli("user", "enable", "Administrator", "--json").json()["uri"])
    r = cli("user", "recover", "Administrator", "--lost-phone", "--yes", "--json")
    assert r.exit_code == 0, r.stderr
    assert secret_of(r.json()["uri"]) != old


def test_push_user_stays_push_and_pending(cli, store, sql):
    assert cli("user", "add", "carol").exit_code == 0
    assert cli("user", "enable", "carol", "--method", "push", "--phone", PHONE).exit_code == 0
    r = cli("user", "recover", "carol", "--lost-phone", "--yes", "--json")
    assert r.exit_code == 0, r.stderr
    assert r.json()["method"] == "push" and "uri" not in r.json()
    row = sql("SELECT state, method, secret, phone FROM users WHERE name = 'carol'")[0]
    assert tuple(row) == ("pending", "push", None, None)


def test_permission_denied_with_as_and_failed_backup(cli, store):
    active_user(cli)
    assert cli("user", "add", "helpdesk", "--password-stdin", input="helpdesk-pw\n").exit_code == 0
    before = users_snapshot(store)
    r = cli(
        "--as",
        "helpdesk",
        "--as-password-stdin",
        "user",
        "recover",
        "alice",
        "--lost-phone",
        "--yes",
        input="helpdesk-pw\n",
    )
    assert r.exit_code == 5
    assert users_snapshot(store) == before
    assert not (store.parent / "backups").exists()

    (store.parent / "backups").write_text("a file where the backups folder should be")
    r = cli("user", "recover", "alice", "--lost-phone", "--yes", "--json")
    assert r.exit_code == 9 and "backup" in r.json()["error"]["message"].lower()
    assert users_snapshot(store) == before


def test_without_the_key_nothing_is_backed_up_sent_or_changed(cli, store, sql):
    active_user(cli)
    # The store has its key from its creation (the key file here): take it away.
    store.with_name(store.name + ".key").unlink()
    before = users_snapshot(store)
    assert cli("user", "recover", "alice", "--lost-phone", "--yes").exit_code == 9
    assert cli("user", "reset-token", "alice").exit_code == 9
    assert users_snapshot(store) == before
    assert not (store.parent / "backups").exists()
    assert sql("SELECT count(*) FROM outbox")[0][0] == 0
