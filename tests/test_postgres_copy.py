"""`db copy --to TARGET` (issue 10): SQLite -> PostgreSQL -> SQLite, verified, every user's codes
still verify, the source unchanged, a non-empty target refused untouched."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from totp_helpers import enroll, hotp

pytestmark = pytest.mark.usefixtures("store")

START = datetime(2026, 11, 22, 12, 0, 10, tzinfo=UTC)


def code_at(secret: str, moment: datetime) -> str:
    return hotp(secret, int(moment.timestamp()) // 30)


def dump(path) -> list[str]:
    conn = sqlite3.connect(path)
    try:
        return list(conn.iterdump())
    finally:
        conn.close()


def test_round_trip_sqlite_postgres_sqlite_keeps_every_code_working(
    cli, db_path, pg_url, tmp_path, monkeypatch
):
    # The SQLite store's key lives in its key file; the copies find it through ESET2FA_KEY_FILE.
    monkeypatch.setenv("ESET2FA_KEY_FILE", str(db_path) + ".key")
    names = ["alice", "bob", "carol", "Dave"]
    with time_machine.travel(START, tick=False):
        secrets = {name: enroll(cli, name, group="ops") for name in names}
        assert cli("auth", "verify", "alice", code_at(secrets["alice"], START)).exit_code == 0
        assert cli("config", "set", "totp.issuer", "Example Corp").exit_code == 0
        assert cli("user", "grant", "bob", "--write-group", "ops").exit_code == 0
    before = dump(db_path)

    copied = cli("db", "copy", "--to", pg_url, "--json")
    assert copied.exit_code == 0, copied.stderr
    report = copied.json()
    assert report["users"] == len(names) + 1
    assert report["audit_chain"]["ok"]
    assert report["tables"]["users"]["sealed"]["secret"]
    assert "test-only-pw" not in copied.stdout + copied.stderr
    assert dump(db_path) == before  # the source was only read

    back = tmp_path / "back.db"
    second = cli("db", "copy", "--to", str(back), "--json", db=pg_url)
    assert second.exit_code == 0, second.stderr
    # The same digests all the way: nothing changed on the way there and back.
    assert second.json()["tables"] == report["tables"]

    later = START + timedelta(minutes=5)
    with time_machine.travel(later, tick=False):
        for store in (pg_url, str(back)):
            assert "Example Corp" in cli("config", "show", "--json", db=store).stdout
            for name, secret in secrets.items():
                moment = later + timedelta(seconds=30 * (store == pg_url))
                with time_machine.travel(moment, tick=False):
                    run = cli("auth", "verify", name, code_at(secret, moment), db=store)
                assert run.exit_code == 0, (store, name, run.stdout, run.stderr)
            assert cli("audit", "verify", db=store).exit_code == 0
    # New rows get new ids on the copy (the identity columns continue after the copied ones).
    assert cli("user", "add", "erin", db=pg_url).exit_code == 0
    assert cli("user", "add", "erin", db=str(back)).exit_code == 0


def test_a_target_holding_a_store_is_refused_untouched(cli, db_path, pg_url, monkeypatch):
    monkeypatch.setenv("ESET2FA_KEY_FILE", str(db_path) + ".key")
    enroll(cli, "alice")
    assert cli("db", "copy", "--to", pg_url).exit_code == 0
    assert cli("user", "add", "zed", db=pg_url).exit_code == 0
    listed = cli("user", "list", "--json", db=pg_url).json()
    again = cli("db", "copy", "--to", pg_url)
    assert again.exit_code == 6 and "already holds" in again.stderr
    assert cli("user", "list", "--json", db=pg_url).json() == listed


def test_a_copy_without_the_key_is_rolled_back_and_leaves_no_target(
    cli, db_path, pg_url, monkeypatch
):
    """The key file sits beside the SQLite store; without ESET2FA_KEY_FILE the PostgreSQL copy
    cannot find it: refused, and the schema it created is gone again."""
    monkeypatch.delenv("ESET2FA_KEY_FILE")
    enroll(cli, "alice")
    run = cli("db", "copy", "--to", pg_url)
    assert run.exit_code == 9 and "key" in run.stderr
    assert cli("user", "list", db=pg_url).exit_code == 9  # no store there


def test_copy_into_an_existing_file_is_refused(cli, db_path, tmp_path):
    other = tmp_path / "other.db"
    other.write_bytes(b"not empty")
    run = cli("db", "copy", "--to", str(other))
    assert run.exit_code != 0
    assert other.read_bytes() == b"not empty"
