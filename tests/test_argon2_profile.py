"""The Argon2 cost of password hashes is the store's setting `passwords.argon2_profile` (issue 13).

The default is RFC 9106's low-memory profile; `ESET2FA_ARGON2_PROFILE` counts only when a store is
created (the suite sets it to `test` in conftest), every hash is verified with its own parameters,
a weaker hash is redone at the next successful login and a stronger one is never weakened.
"""

from __future__ import annotations

import json
import sqlite3

import pytest
from argon2 import PasswordHasher, extract_parameters

from eset2fa.accounts import passwords

PASSWORD = "bob-password-1"


def params(stored: str) -> tuple[int, int, int]:
    found = extract_parameters(stored)
    return found.memory_cost, found.time_cost, found.parallelism


def hash_of(sql, name: str) -> str:
    return sql("SELECT password_hash FROM users WHERE name = ?", (name,))[0][0]


def setting(cli) -> dict:
    rows = cli("config", "show", "--json").json()
    return next(row for row in rows if row["key"] == "passwords.argon2_profile")


def doctor_check(cli) -> dict:
    result = cli("doctor", "--json")
    assert result.exit_code == 0, result.stderr  # a warning does not fail doctor
    return next(c for c in result.json()["checks"] if c["check"] == "passwords")


def as_bob(cli, password=PASSWORD):
    return cli(
        "--as", "bob", "--as-password-stdin", "user", "list", "--json", input=password + "\n"
    )


@pytest.fixture(scope="module")
def production_hash() -> str:
    """PASSWORD hashed at the default cost, once for the module (~0.25 s of 4 threads each)."""
    return passwords.hash_password(PASSWORD)


def add_bob(cli):
    assert cli("user", "add", "bob", "--password-stdin", input=PASSWORD + "\n").exit_code == 0


def test_the_default_is_rfc9106_low_memory(production_argon2, cli, store, sql):
    assert params(hash_of(sql, "Administrator")) == (65536, 3, 4)
    shown = setting(cli)
    assert shown["value"] == "rfc9106-low-memory" and shown["default"] is True
    check = doctor_check(cli)
    assert check["status"] == "ok" and "64 MiB" in check["detail"]


def test_the_profile_asked_for_at_creation_is_recorded_audited_and_warned_about(cli, store, sql):
    # conftest sets ESET2FA_ARGON2_PROFILE=test for every store the suite creates.
    assert params(hash_of(sql, "Administrator")) == (8, 1, 1)
    shown = setting(cli)
    assert shown["value"] == "test" and shown["default"] is False
    rows = sql(
        "SELECT actor, result, details FROM audit WHERE action = 'config.set'"
        " AND target = 'passwords.argon2_profile'"
    )
    assert [(r["actor"], r["result"]) for r in rows] == [("system", "ok")]
    assert json.loads(rows[0]["details"]) == {"from": "ESET2FA_ARGON2_PROFILE", "value": "test"}
    check = doctor_check(cli)
    assert check["status"] == "warning" and "for test suites only" in check["detail"]
    add_bob(cli)
    assert params(hash_of(sql, "bob")) == (8, 1, 1)


def test_the_variable_cannot_change_an_existing_store(
    production_argon2, cli, store, sql, monkeypatch
):
    monkeypatch.setenv("ESET2FA_ARGON2_PROFILE", "test")
    add_bob(cli)
    assert params(hash_of(sql, "bob")) == (65536, 3, 4)
    assert setting(cli)["value"] == "rfc9106-low-memory"
    assert cli("user", "reset-password", "bob", "--yes").exit_code == 0
    assert params(hash_of(sql, "bob")) == (65536, 3, 4)


def test_an_unknown_profile_is_refused_before_anything_is_created(cli, db_path, monkeypatch):
    monkeypatch.setenv("ESET2FA_ARGON2_PROFILE", "cheap")
    result = cli("init")
    assert result.exit_code == 2
    assert "ESET2FA_ARGON2_PROFILE must be one of" in result.stderr
    assert not db_path.exists()
    wrong = cli("config", "set", "passwords.argon2_profile", "cheap")
    assert wrong.exit_code in (2, 9)  # there is no store; nothing made either way
    assert not db_path.exists()


def test_changing_the_profile_is_audited_and_rehashes_weaker_hashes_at_the_next_login(
    cli, store, sql
):
    add_bob(cli)
    cheap = hash_of(sql, "bob")
    assert params(cheap) == (8, 1, 1)
    changed = cli("config", "set", "passwords.argon2_profile", "rfc9106-low-memory", "--json")
    assert changed.exit_code == 0
    audited = sql("SELECT details FROM audit WHERE action = 'config.set' ORDER BY id DESC LIMIT 1")
    assert json.loads(audited[0][0]) == {"value": "rfc9106-low-memory"}
    # A wrong password changes no hash; the old, weaker hash still verifies with its own params.
    assert as_bob(cli, "not-the-password").exit_code == 5
    assert hash_of(sql, "bob") == cheap
    assert as_bob(cli).exit_code == 0
    stronger = hash_of(sql, "bob")
    assert params(stronger) == (65536, 3, 4)
    assert PasswordHasher().verify(stronger, PASSWORD)
    row = sql("SELECT details FROM audit WHERE action = 'auth.actor' ORDER BY id DESC LIMIT 1")
    assert json.loads(row[0][0]) == {"rehashed": "rfc9106-low-memory"}
    assert as_bob(cli).exit_code == 0  # and it keeps working; no second rehash
    assert hash_of(sql, "bob") == stronger
    assert doctor_check(cli)["status"] == "ok"


def test_a_stronger_hash_is_kept_and_verified_with_its_own_parameters(
    cli, store, sql, db_path, production_hash
):
    add_bob(cli)
    # bob's hash as a store with the default profile made it (then set to `test`, see below)
    conn = sqlite3.connect(db_path)
    with conn:
        conn.execute("UPDATE users SET password_hash = ? WHERE name = 'bob'", (production_hash,))
    conn.close()
    strong = hash_of(sql, "bob")
    assert params(strong) == (65536, 3, 4)
    assert setting(cli)["value"] == "test"
    assert as_bob(cli).exit_code == 0
    assert hash_of(sql, "bob") == strong  # never weakened by a cheaper profile
    add = cli("user", "add", "carol", "--password-stdin", input="carol-password\n")
    assert add.exit_code == 0
    assert params(hash_of(sql, "carol")) == (8, 1, 1)


@pytest.mark.parametrize(
    ("stored", "profile", "expected"),
    [
        ("test", "rfc9106-low-memory", True),
        ("rfc9106-low-memory", "rfc9106-low-memory", False),
        ("rfc9106-low-memory", "test", False),
        ("rfc9106-low-memory", "rfc9106-high-memory", True),
    ],
)
def test_needs_rehash_only_for_weaker_hashes(stored, profile, expected, production_hash):
    made = production_hash if stored == "rfc9106-low-memory" else passwords.rehash(PASSWORD, stored)
    assert passwords.needs_rehash(made, profile) is expected


def test_shorter_hashes_and_other_types_are_rehashed():
    """Against the cheap profile, so that only the property under test differs (argon2-cffi
    before 21.2 made 16-byte hashes; Argon2i is not the type we make)."""
    from argon2 import Type

    cheap = {"time_cost": 1, "memory_cost": 8, "parallelism": 1}
    short = PasswordHasher(**cheap, hash_len=16).hash(PASSWORD)
    assert passwords.verify_password(short, PASSWORD, "test")
    assert passwords.needs_rehash(short, "test")
    argon2i = PasswordHasher(**cheap, type=Type.I).hash(PASSWORD)
    assert passwords.verify_password(argon2i, PASSWORD, "test")
    assert passwords.needs_rehash(argon2i, "test")
    assert not passwords.needs_rehash(PasswordHasher(**cheap).hash(PASSWORD), "test")
