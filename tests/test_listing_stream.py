"""Listings stream from the query: long `user list` / `audit list` output is the same document
(same keys, order and values) the rows give one by one, and a reader that stops early ends it
quietly."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from eset2fa.output import LONG_LIST, PLAIN_TABLE_ROWS

pytestmark = pytest.mark.usefixtures("env_master_key")

STATUS_KEYS = ["name", "group", "state", "method", "locked", "fail_count"]


def _add_users(cli, count: int, group: str = "ops") -> None:
    names = "".join(f"user{i:05d},{group}\n" for i in range(count))
    assert cli("user", "add", "--from-file", "-", input=names).exit_code == 0


def test_long_user_list_json_matches_each_users_status(cli, store):
    _add_users(cli, LONG_LIST + 10)
    assert cli("user", "enable", "user00003", "--method", "totp", "--no-qr").exit_code == 0
    assert cli("user", "enable", "user00004", "--method", "push").exit_code == 0
    result = cli("user", "list", "--json")
    assert result.exit_code == 0 and result.stderr == ""
    listed = result.json()
    assert len(listed) == LONG_LIST + 11
    assert [u["name"] for u in listed] == sorted((u["name"] for u in listed), key=str.lower)
    lines = result.stdout.splitlines()
    assert lines[0] == "[" and lines[-1] == "]"
    assert len(lines) == len(listed) + 2  # one compact user per line
    for user in listed:
        assert list(user) == STATUS_KEYS
    for name in ("Administrator", "user00003", "user00004", "user00050"):
        shown = cli("user", "show", name, "--json").json()
        (item,) = [u for u in listed if u["name"] == name]
        assert item == {key: shown[key] for key in STATUS_KEYS}
    by_name = {u["name"]: u for u in listed}
    assert by_name["user00003"]["state"] == "pending"
    assert by_name["user00004"]["method"] == "push"
    assert by_name["user00003"]["locked"] is False


def test_short_user_list_json_is_pretty_as_before(cli, store):
    _add_users(cli, 3)
    result = cli("user", "list", "--json", "--limit", "2")
    assert result.stdout.startswith('[\n  {\n    "name": "Administrator",\n')
    assert len(result.json()) == 2


def test_long_audit_list_json_matches_rows(cli, store, sql):
    _add_users(cli, LONG_LIST + 10)
    assert cli("config", "set", "totp.issuer", "Acmé Corp").exit_code == 0
    every = cli("audit", "list", "--limit", "0", "--json").json()
    rows = sql("SELECT id, at, actor, action, target, result, details FROM audit ORDER BY id")
    assert [e["id"] for e in every] == [r["id"] for r in rows]
    for event, row in zip(every, rows, strict=True):
        assert list(event) == ["id", "at", "actor", "action", "target", "result", "details"]
        assert event["details"] == (json.loads(row["details"]) if row["details"] else {})
    assert every[-1]["details"] == {"value": "Acmé Corp"}
    newest = cli("audit", "list", "--limit", "55", "--json")
    assert newest.json() == every[-55:]
    assert "Acmé Corp" in newest.stdout  # characters as they are, not \u escapes


def test_long_plain_table_is_streamed_with_aligned_columns(cli, store):
    _add_users(cli, PLAIN_TABLE_ROWS + 5, group="a-rather-long-group-name")
    result = cli("audit", "list", "--limit", "0")
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["time", "actor", "action", "target", "result", "details"]
    assert len(lines) == 2 + PLAIN_TABLE_ROWS + 5 + 2  # the store.init and Argon2 profile rows
    column = lines[0].index("action")
    assert all(line[column:].startswith("user.add") for line in lines[4:])


@pytest.mark.parametrize("args", [["user", "list"], ["user", "list", "--json"]])
def test_reader_stopping_early_ends_quietly(cli, store, args):
    _add_users(cli, 3000)
    env = dict(os.environ)
    proc = subprocess.Popen(
        [sys.executable, "-m", "eset2fa", "--db", str(store), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )
    try:
        proc.stdout.readline()
        proc.stdout.close()  # as `| head -1` does
        stderr = proc.stderr.read().decode()
        assert proc.wait(timeout=60) == 1
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
        proc.stderr.close()
    assert "Traceback" not in stderr and "Exception" not in stderr
    assert stderr == ""


def test_export_all_streams_every_audited_user(cli, store, sql, tmp_path):
    count = LONG_LIST + 5
    uris = "".join(
        f"otpauth://totp/Old:user{i:05d}?secret=JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP\n"
        for i in range(count)
    )
    imported = cli("user", "import", "--otpauth", "-", "--create-users", "--json", input=uris)
    assert imported.json()["counts"] == {"imported": count}
    exported = cli("user", "export", "--all", "--yes", "--json")
    assert exported.exit_code == 0, exported.stderr
    document = exported.json()
    assert list(document) == ["count", "not_permitted", "users"]
    assert document["count"] == count == len(document["users"])
    assert document["users"][0]["secret"] == "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
    audited = sql("SELECT target FROM audit WHERE action = 'user.export' ORDER BY id")
    assert [row[0] for row in audited] == [u["name"] for u in document["users"]]
    plain = cli("user", "export", "--otpauth", "--all", "--yes")
    lines = plain.stdout.splitlines()
    assert len(lines) == count and all(line.startswith("otpauth://totp/") for line in lines)
