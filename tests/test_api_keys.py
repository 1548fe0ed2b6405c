"""`eset2fa apikey create|list|revoke`: shown once, stored hashed, admin only, audited."""

from __future__ import annotations

import hashlib
import re

import pytest

pytestmark = pytest.mark.usefixtures("env_master_key")

KEY = re.compile(r"e2fa_[a-z2-7]{10}_[A-Za-z0-9_-]{43}")
PASSWORD = "helpdesk-password-1"


def test_create_shows_the_key_once_and_stores_only_its_hash(cli, store, sql):
    created = cli("apikey", "create", "webapp")
    assert created.exit_code == 0, created.stderr
    key = created.stdout.strip()
    assert KEY.fullmatch(key), created.stdout
    assert "shown only now" in created.stderr
    row = sql("SELECT * FROM api_keys")[0]
    secret = key.split("_", 2)[2]
    assert row["name"] == "webapp" and row["key_id"] == key.split("_")[1]
    assert row["secret_hash"] == hashlib.sha256(secret.encode()).hexdigest()
    dump = "\n".join(str(tuple(r)) for table in ("api_keys", "audit", "config")
                     for r in sql(f"SELECT * FROM {table}"))  # fmt: skip
    assert secret not in dump and key not in dump


def test_json_create_and_list(cli, store):
    first = cli("apikey", "create", "vpn", "--json")
    assert first.exit_code == 0 and first.stderr == ""
    document = first.json()
    assert set(document) == {"name", "key", "created_at"} and KEY.fullmatch(document["key"])
    assert cli("apikey", "create", "webapp").exit_code == 0
    listed = cli("apikey", "list", "--json")
    assert listed.exit_code == 0 and listed.stderr == ""
    rows = listed.json()
    assert [row["name"] for row in rows] == ["vpn", "webapp"]
    assert set(rows[0]) == {"name", "created_at", "created_by", "last_used_at"}
    assert rows[0]["last_used_at"] is None and rows[0]["created_by"].startswith("local:")
    human = cli("apikey", "list")
    assert "vpn" in human.stdout and "webapp" in human.stdout
    assert document["key"] not in listed.stdout + human.stdout


def test_two_keys_never_share_a_name_any_case(cli, store, sql):
    assert cli("apikey", "create", "webapp").exit_code == 0
    again = cli("apikey", "create", "WebApp", "--json")
    assert again.exit_code == 6 and again.json()["error"]["code"] == "state_conflict"
    assert sql("SELECT count(*) FROM api_keys")[0][0] == 1


def test_revoke_deletes_the_key_and_a_name_is_free_again(cli, store, sql):
    assert cli("apikey", "create", "webapp").exit_code == 0
    revoked = cli("apikey", "revoke", "WEBAPP", "--json")
    assert revoked.exit_code == 0 and revoked.json() == {"name": "webapp", "revoked": True}
    assert sql("SELECT count(*) FROM api_keys")[0][0] == 0
    missing = cli("apikey", "revoke", "webapp")
    assert missing.exit_code == 3 and "No API key named" in missing.stderr
    assert cli("apikey", "create", "webapp").exit_code == 0


def test_changes_are_audited_without_the_key(cli, store, sql):
    key = cli("apikey", "create", "webapp").stdout.strip()
    assert cli("apikey", "revoke", "webapp").exit_code == 0
    rows = sql("SELECT actor, action, target, result, details FROM audit WHERE action LIKE "
               "'apikey.%' ORDER BY id")  # fmt: skip
    assert [(r["action"], r["target"], r["result"]) for r in rows] == [
        ("apikey.create", "webapp", "ok"),
        ("apikey.revoke", "webapp", "ok"),
    ]
    assert all(r["actor"].startswith("local:") for r in rows)
    assert all(key not in str(tuple(r)) for r in rows)


@pytest.mark.parametrize("name", ["", "-x", "a b", "x" * 65, "ünï"])
def test_a_bad_name_is_a_usage_error(cli, store, sql, name):
    result = cli("apikey", "create", name, "--json")
    assert result.exit_code == 2, result.stdout
    assert sql("SELECT count(*) FROM api_keys")[0][0] == 0


def test_only_the_administrator_or_the_local_operator_manage_keys(cli, store, sql):
    assert cli("user", "add", "helpdesk", "--password-stdin", input=PASSWORD + "\n").exit_code == 0
    assert cli("user", "grant", "helpdesk", "--write-group", "ops").exit_code == 0
    assert cli("apikey", "create", "webapp").exit_code == 0
    for args in (("create", "mine"), ("list",), ("revoke", "webapp")):
        result = cli(
            "--as", "helpdesk", "--as-password-stdin", "apikey", *args, "--json",
            input=PASSWORD + "\n",
        )  # fmt: skip
        assert result.exit_code == 5, (args, result.stdout, result.stderr)
        assert result.json()["error"]["code"] == "permission_denied"
    assert [r["name"] for r in sql("SELECT name FROM api_keys")] == ["webapp"]


def test_a_missing_store_is_exit_9_and_not_created(cli, tmp_path):
    result = cli("apikey", "list", db=tmp_path / "none.db")
    assert result.exit_code == 9
    assert not (tmp_path / "none.db").exists()
