"""The audit chain and one-time-code hashes are keyed from the store's key.

Whoever can write the database but cannot read the key can neither re-forge the chain after an
edit nor test recovery or reset codes offline; a store written before keeps verifying after the
one-time upgrade step, and `db rekey` keeps everything verifying.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import sqlite3
import time
from pathlib import Path

import pytest
from conftest import run_process, sigkill_after
from test_reset_token import PHONE, active_user

from eset2fa.db import open_store
from eset2fa.secrets import keys


def _plain_hash(prev: str, row: sqlite3.Row) -> str:
    """The chain as it was before it was keyed (and as anyone without the key can compute it)."""
    fields = (
        prev,
        row["at"],
        row["actor"],
        row["action"],
        row["target"] or "",
        row["result"],
        row["details"] or "",
    )
    return hashlib.sha256("\x1f".join(fields).encode()).hexdigest()


def _rechain_plain(db_path: Path) -> None:
    """What an attacker without the key can do after editing rows: re-compute every hash."""
    conn = sqlite3.connect(db_path)
    conn.row_factory = sqlite3.Row
    with conn:
        prev = "0" * 64
        for row in conn.execute("SELECT * FROM audit ORDER BY id").fetchall():
            digest = _plain_hash(prev, row)
            conn.execute(
                "UPDATE audit SET prev_hash = ?, hash = ? WHERE id = ?", (prev, digest, row["id"])
            )
            prev = digest
    conn.close()


def _salted(salt: bytes, code: str) -> str:
    """HMAC(salt, code): how a code was stored before, checkable by anyone holding the file."""
    return hmac.new(salt, code.encode(), hashlib.sha256).hexdigest()


def _normal(code: str) -> str:
    return code.replace("-", "").upper()


def _reset_code(cli) -> str:
    body = cli("outbox", "--channel", "sms", "--json").json()[0]["body"]
    return re.search(r"code is (\d{8})", body).group(1)


def _verify(cli) -> dict:
    result = cli("audit", "verify", "--json")
    assert result.exit_code in (0, 1), result.stderr
    return result.json()


def test_an_edit_with_the_chain_recomputed_without_the_key_is_detected(cli, store, sql):
    cli("user", "add", "alice")
    cli("user", "add", "bob")
    assert _verify(cli)["ok"] is True
    conn = sqlite3.connect(store)
    with conn:
        conn.execute("UPDATE audit SET actor = 'someone-else' WHERE target = 'alice'")
    conn.close()
    _rechain_plain(store)  # every link consistent again, as plain SHA-256
    report = _verify(cli)
    assert report["ok"] is False and report["first_bad_id"] == 1

    human = cli("audit", "verify")
    assert human.exit_code == 1
    assert "Detects: a row edited, inserted or deleted" in human.stdout
    assert "Cannot detect: the newest rows deleted" in human.stdout


def test_an_inserted_row_is_detected(cli, store, sql):
    for name in ("a1", "a2", "a3"):
        cli("user", "add", name)
    conn = sqlite3.connect(store)
    with conn:
        conn.execute(
            "INSERT INTO audit (at, actor, action, target, result, prev_hash, hash)"
            " SELECT at, actor, 'user.delete', target, result, '', '' FROM audit WHERE id = 2"
        )
    conn.close()
    _rechain_plain(store)
    assert _verify(cli)["ok"] is False


def test_the_newest_rows_deleted_are_not_detected_as_the_output_says(cli, store, sql):
    for name in ("a1", "a2", "a3"):
        cli("user", "add", name)
    conn = sqlite3.connect(store)
    with conn:
        conn.execute("DELETE FROM audit WHERE id > 2")  # the log cut short at its end
    conn.close()
    report = _verify(cli)
    assert report["ok"] is True and report["rows_checked"] == 2
    assert report["cannot_detect"].startswith("the newest rows deleted")


def test_a_removed_key_check_is_not_a_way_to_reset_the_chain(cli, store, sql):
    # Without the check value a store looks like one that never had a key, whose plain chain
    # would be keyed as found. A store that holds secrets cannot be in that state: refused.
    active_user(cli)
    conn = sqlite3.connect(store)
    with conn:
        conn.execute("UPDATE audit SET actor = 'someone-else' WHERE id = 2")
        conn.execute("DELETE FROM meta WHERE key = 'key_check'")
    conn.close()
    _rechain_plain(store)
    before = store.read_bytes()
    result = cli("user", "add", "mallory", "--json")
    assert result.exit_code == 9
    assert "check value is missing" in result.json()["error"]["message"]
    assert store.read_bytes() == before


def test_recovery_codes_cannot_be_checked_offline(cli, store, sql):
    active_user(cli)
    codes = cli("user", "recovery-codes", "alice", "--regenerate", "--json").json()["codes"]
    rows = sql("SELECT code_hash, salt FROM recovery_codes")
    stored = {row["code_hash"] for row in rows}
    (salt,) = {row["salt"] for row in rows}
    # The database alone gives a salt and hashes, but HMAC(salt, code) is not what is stored:
    # a guess cannot be tested without the key.
    assert not stored & {_salted(salt, _normal(code)) for code in codes}
    # With the store's key the stored form is HMAC(codes subkey, HMAC(salt, code)).
    opened = open_store(store)
    codes_key = keys.for_store(opened).codes_key
    opened.close()
    wrapped = {
        hmac.new(codes_key, _salted(salt, _normal(c)).encode(), "sha256").hexdigest() for c in codes
    }
    assert wrapped == stored
    assert cli("auth", "verify", "alice", "--recovery-code", codes[0]).exit_code == 0


def test_token_reset_codes_cannot_be_checked_offline(cli, store, sql):
    active_user(cli, phone=PHONE)
    assert cli("user", "reset-token", "alice").exit_code == 0
    code = _reset_code(cli)
    ((code_hash, salt),) = sql("SELECT code_hash, salt FROM token_resets")
    # 10^8 candidates would take seconds against HMAC(salt, code); not even the right one
    # matches the stored form without the key.
    assert code_hash != _salted(salt, code)
    assert cli("user", "reset-token", "alice", "--confirm", code, "--no-qr").exit_code == 0


# -- a store written before: what the upgrade step finds and keeps verifying ----------------------


def _as_written_before(db_path: Path, codes: list[str], reset_code: str | None) -> None:
    """Put the store in the form an earlier eset2fa left: a version 1 check value (no integrity
    key), the plain SHA-256 chain, and code hashes HMAC(salt, code)."""
    (line,) = keys.key_file_path(db_path).read_text().split()
    legacy = keys.MasterKey(keys.decode_key(line, "test"), "file")
    check = legacy.seal(keys.CHECK_V1, keys.CHECK_CONTEXT)
    conn = sqlite3.connect(db_path)
    conn.row_factory = sqlite3.Row
    with conn:
        import base64

        conn.execute(
            "UPDATE meta SET value = ? WHERE key = 'key_check'", (base64.b64encode(check).decode(),)
        )
        rows = conn.execute("SELECT id, salt FROM recovery_codes ORDER BY id").fetchall()
        for row, code in zip(rows, codes, strict=True):
            conn.execute(
                "UPDATE recovery_codes SET code_hash = ? WHERE id = ?",
                (_salted(row["salt"], _normal(code)), row["id"]),
            )
        if reset_code:
            (salt,) = conn.execute("SELECT salt FROM token_resets").fetchone()
            conn.execute("UPDATE token_resets SET code_hash = ?", (_salted(salt, reset_code),))
    conn.close()
    _rechain_plain(db_path)


@pytest.fixture
def legacy_store(cli, store):
    """A store as an earlier eset2fa wrote it: audit rows, recovery codes, a pending token reset."""
    active_user(cli, phone=PHONE)
    codes = cli("user", "recovery-codes", "alice", "--regenerate", "--json").json()["codes"]
    assert cli("user", "reset-token", "alice").exit_code == 0
    reset_code = _reset_code(cli)
    for name in ("u1", "u2", "u3"):
        assert cli("user", "add", name).exit_code == 0
    _as_written_before(store, codes, reset_code)
    return store, codes, reset_code


def test_a_store_written_before_keeps_verifying_after_the_upgrade(cli, sql, legacy_store):
    store, codes, reset_code = legacy_store
    rows_before = sql("SELECT count(*) FROM audit")[0][0]
    salted = {r[0] for r in sql("SELECT code_hash FROM recovery_codes")}

    report = _verify(cli)  # loads the key: the upgrade step runs here, once
    assert report["ok"] is True and report["keyed"] is True
    assert report["keyed_from"] == [
        {"id": rows_before + 1, "at": report["keyed_from"][0]["at"], "rows": rows_before}
    ]
    (keyed,) = cli("audit", "list", "--action", "audit.keyed", "--json").json()
    assert keyed["details"]["legacy_chain"] == "intact"
    assert keyed["details"]["recovery_codes"] == 10 and keyed["details"]["token_resets"] == 1
    # Re-keyed: the old hashes are gone, the rows unchanged; the step does not run again.
    assert not salted & {r[0] for r in sql("SELECT code_hash FROM recovery_codes")}
    assert _verify(cli)["keyed_from"] == report["keyed_from"]
    assert sql("SELECT count(*) FROM audit WHERE action = 'audit.keyed'")[0][0] == 1

    assert cli("auth", "verify", "alice", "--recovery-code", codes[1]).exit_code == 0
    assert cli("user", "reset-token", "alice", "--confirm", reset_code, "--no-qr").exit_code == 0
    assert _verify(cli)["ok"] is True


def test_the_upgrade_runs_with_any_first_command_and_reports_an_old_break(cli, sql, legacy_store):
    store, codes, _ = legacy_store
    conn = sqlite3.connect(store)
    with conn:
        conn.execute("UPDATE audit SET result = 'edited' WHERE id = 3")  # chain not re-computed
    conn.close()
    # Any change loads the key (its audit row must be keyed): the upgrade happens there.
    assert cli("auth", "verify", "alice", "--recovery-code", codes[2]).exit_code == 0
    report = _verify(cli)
    assert report["ok"] is False and report["broken_before_keyed"] is True
    assert report["first_bad_id"] == 3
    assert "already broken when the chain was keyed" in cli("audit", "verify").stdout


def test_killed_during_the_upgrade_it_runs_again_whole(cli, db_path, sql, legacy_store):
    # Enough rows that the upgrade takes a while (adding them upgrades the store once; it is
    # then put back in the earlier form); then the first command is killed at several moments.
    names = "".join(f"user{i:05d}\n" for i in range(20000))
    _, codes, reset_code = legacy_store
    assert cli("user", "add", "--from-file", "-", input=names).exit_code == 0
    _as_written_before(db_path, codes, reset_code)

    def keyed_rows() -> int:
        return sql("SELECT count(*) FROM audit WHERE action = 'audit.keyed'")[0][0]

    start = keyed_rows()
    args = ["user", "add", "late"]
    # Timed on a copy: how long the first command (which runs the upgrade) takes.
    scratch = db_path.with_name("scratch.db")
    with sqlite3.connect(db_path) as source, sqlite3.connect(scratch) as copy:
        source.backup(copy)
    keys.key_file_path(scratch).write_bytes(keys.key_file_path(db_path).read_bytes())
    began = time.monotonic()
    assert run_process("--db", str(scratch), *args, timeout=120).returncode == 0
    duration = time.monotonic() - began
    outcomes = []
    # The early moments keep at least three kills inside the command when the machine's load
    # changes between the timing run and these (the suite runs on every core).
    for fraction in (0.15, 0.25, 0.35, 0.5, 0.6, 0.7, 0.78, 0.85, 0.92, 1.0, 1.3):
        cut = sigkill_after(["--db", str(db_path), *args], duration * fraction)
        outcomes.append((cut, keyed_rows() - start))
        if keyed_rows() > start:
            break
    # Each kill left the store either not upgraded at all or upgraded whole (one transaction).
    assert all(added in (0, 1) for _, added in outcomes)
    assert sum(cut for cut, _ in outcomes) >= 3, outcomes  # most kills cut the command short
    report = _verify(cli)
    assert report["ok"] is True and keyed_rows() - start == 1
    assert cli("auth", "verify", "alice", "--recovery-code", codes[4]).exit_code == 0


def test_rekey_keeps_the_chain_and_the_codes_verifying(cli, store, sql):
    active_user(cli, phone=PHONE)
    codes = cli("user", "recovery-codes", "alice", "--regenerate", "--json").json()["codes"]
    assert cli("user", "reset-token", "alice").exit_code == 0
    reset_code = _reset_code(cli)
    hashes = sql("SELECT code_hash FROM recovery_codes ORDER BY id")
    assert cli("db", "rekey", "--yes").exit_code == 0
    assert sql("SELECT code_hash FROM recovery_codes ORDER BY id") == hashes  # only re-sealed
    report = _verify(cli)
    assert report["ok"] is True and report["keyed_from"] == []
    assert cli("auth", "verify", "alice", "--recovery-code", codes[0]).exit_code == 0
    assert cli("user", "reset-token", "alice", "--confirm", reset_code, "--no-qr").exit_code == 0
    assert cli("db", "rekey", "--yes").exit_code == 0
    assert _verify(cli)["ok"] is True
