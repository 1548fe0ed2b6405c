"""user reset-password: backup first; for Administrator, 2FA off on that account and no other."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from conftest import audit_dump

from eset2fa.accounts.passwords import verify_password

TWO_FACTOR = "state, method, secret, phone, fail_count, locked, locked_at, last_step"


def users_by_name(db: Path) -> dict[str, dict]:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    conn.row_factory = sqlite3.Row
    try:
        return {r["name"]: dict(r) for r in conn.execute("SELECT * FROM users")}
    finally:
        conn.close()


def set_two_factor(db: Path, name: str, state: str, **fields) -> None:
    """Stand-in for enrollment (built elsewhere): put 2FA fields straight into the store."""
    values = {"state": state, "method": "totp", "secret": b"\x01sealed", "phone": None, **fields}
    conn = sqlite3.connect(db)
    with conn:
        assignments = ", ".join(f"{column} = ?" for column in values)
        conn.execute(f"UPDATE users SET {assignments} WHERE name = ?", (*values.values(), name))
    conn.close()


def add_many(cli, count: int) -> None:
    lines = "".join(f"user{i:04d},{'ops' if i % 2 else 'sales'}\n" for i in range(count))
    assert cli("user", "add", "--from-file", "-", input=lines).exit_code == 0


def test_administrator_reset_disables_only_the_administrators_2fa(cli, store):
    add_many(cli, 600)
    conn = sqlite3.connect(store)
    with conn:
        # a realistic mix: active with phones and replay steps, pending, locked, failing
        conn.execute(
            "UPDATE users SET state = 'active', method = 'totp', secret = randomblob(40),"
            " last_step = 59000000 + id, activated_at = '2026-01-02T00:00:00Z'"
            " WHERE name LIKE 'user%' AND id % 3 = 0"
        )
        conn.execute(
            "UPDATE users SET state = 'pending', method = 'push', phone = '+4420' || (7000000 + id)"
            " WHERE name LIKE 'user%' AND id % 3 = 1"
        )
        conn.execute(
            "UPDATE users SET fail_count = 10, locked = 1, locked_at = '2026-01-03T00:00:00Z'"
            " WHERE name LIKE 'user%' AND id % 7 = 0"
        )
    conn.close()
    set_two_factor(
        store,
        "Administrator",
        "active",
        phone="+442071234567",
        fail_count=4,
        locked=1,
        locked_at="2026-01-04T00:00:00Z",
        last_step=59123456,
        activated_at="2026-01-01T00:00:00Z",
    )
    before = users_by_name(store)

    r = cli(
        "user",
        "reset-password",
        "Administrator",
        "--password-stdin",
        "--json",
        input="a-new-admin-password\n",
    )
    assert r.exit_code == 0, r.stderr
    result = r.json()
    assert result["two_factor"] == "disabled" and result["state"] == "disabled"
    assert "a-new-admin-password" not in r.stdout + r.stderr

    after = users_by_name(store)
    admin = after.pop("Administrator")
    old_admin = before.pop("Administrator")
    assert after == before  # every other user, every column, unchanged
    assert {k: admin[k] for k in TWO_FACTOR.split(", ")} == {
        "state": "disabled",
        "method": None,
        "secret": None,
        "phone": None,
        "fail_count": 0,
        "locked": 0,
        "locked_at": None,
        "last_step": None,
    }
    assert admin["password_hash"] != old_admin["password_hash"]
    assert verify_password(admin["password_hash"], "a-new-admin-password")
    states = {u["state"] for u in after.values()}
    assert states == {"active", "pending", "disabled"}  # the mix really was there

    # The backup was taken before the change and holds the old Administrator state.
    backup = Path(result["backup"])
    assert backup.parent == store.parent / "backups" and "reset-password" in backup.name
    saved = users_by_name(backup)["Administrator"]
    assert saved["state"] == "active" and saved["secret"] == old_admin["secret"]
    event = json.loads(
        sqlite3.connect(store)
        .execute("SELECT details FROM audit WHERE action = 'user.reset-password'")
        .fetchone()[0]
    )
    assert event["backup"] == str(backup) and event["two_factor"] == "disabled"


def test_reset_of_another_user_leaves_their_2fa_alone(cli, store):
    assert cli("user", "add", "alice").exit_code == 0
    set_two_factor(store, "alice", "active", phone="+442070000001", fail_count=2, last_step=5)
    set_two_factor(store, "Administrator", "active")
    before = users_by_name(store)
    r = cli("user", "reset-password", "alice", "--password-stdin", input="alices-new-pw\n")
    assert r.exit_code == 0, r.stderr
    assert "Backup taken first" in r.stdout
    after = users_by_name(store)
    assert verify_password(after["alice"]["password_hash"], "alices-new-pw")
    del after["alice"]["password_hash"], before["alice"]["password_hash"]
    assert after == before


def test_generated_password_goes_to_stderr_once_and_never_into_json(cli, store, sql):
    assert cli("user", "add", "alice").exit_code == 0
    r = cli("user", "reset-password", "alice", "--json")  # no terminal: one is generated
    assert r.exit_code == 0
    assert r.json()["password"] == "generated"
    generated = r.stderr.strip().split()[-1]
    assert generated not in r.stdout
    hash_ = sql("SELECT password_hash FROM users WHERE name = 'alice'")[0][0]
    assert verify_password(hash_, generated)
    assert generated not in audit_dump(sql)


def test_permission_is_needed_and_nothing_is_backed_up_without_it(cli, store):
    assert cli("user", "add", "helpdesk", "--password-stdin", input="helpdesk-pw\n").exit_code == 0
    assert cli("user", "add", "alice", "--group", "ops").exit_code == 0
    before = users_by_name(store)
    for target in ("alice", "Administrator"):
        r = cli(
            "--as",
            "helpdesk",
            "--as-password-stdin",
            "user",
            "reset-password",
            target,
            "--password-stdin",
            input="helpdesk-pw\nsome-new-password\n",
        )
        assert r.exit_code == 5, r.stderr
    assert users_by_name(store) == before
    assert not (store.parent / "backups").exists()

    assert cli("user", "grant", "helpdesk", "--write-group", "ops").exit_code == 0
    r = cli(
        "--as",
        "helpdesk",
        "--as-password-stdin",
        "user",
        "reset-password",
        "alice",
        "--password-stdin",
        "--json",
        input="helpdesk-pw\nsome-new-password\n",
    )
    assert r.exit_code == 0, r.stderr
    assert Path(r.json()["backup"]).exists()


def test_a_failed_backup_stops_the_reset(cli, store):
    assert cli("user", "add", "alice").exit_code == 0
    (store.parent / "backups").write_text("a file where the backups folder should be")
    before = users_by_name(store)
    r = cli("user", "reset-password", "alice", "--password-stdin", "--json", input="new-password\n")
    assert r.exit_code == 9
    assert "backup" in r.json()["error"]["message"].lower()
    assert users_by_name(store) == before


def test_unknown_user_and_short_password(cli, store):
    assert (
        cli("user", "reset-password", "nobody", "--password-stdin", input="x" * 12).exit_code == 3
    )
    cli("user", "add", "alice")
    r = cli("user", "reset-password", "alice", "--password-stdin", input="short\n")
    assert r.exit_code == 2
    assert not (store.parent / "backups").exists()  # refused before the backup
