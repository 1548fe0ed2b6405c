"""`user import` (otpauth URIs, CSV, google-authenticator-libpam files, Google Authenticator's
export) and `user export --otpauth`: the files are written here in each tool's real format, and
every imported code is checked with pyotp (the right digest, digits and interval), not with
eset2fa's own TOTP code."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import pwd
import subprocess
import sys
from pathlib import Path
from urllib.parse import quote

import pyotp
import pytest

from eset2fa.db import open_store
from eset2fa.twofactor import totp

pytestmark = pytest.mark.usefixtures("env_master_key")

DIGESTS = {"SHA1": hashlib.sha1, "SHA256": hashlib.sha256, "SHA512": hashlib.sha512}
SECRET_A = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"  # 160 bits
SECRET_B = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"
SECRET_C = "MFRGGZDFMZTWQ2LKNNWG23TPOBYXE43UOV3HO6DZPIYTEMZU"  # 240 bits
SECRET_D = "KRUGS4ZANFZSAYJAONSWG4TFOQQGWZLZEE3Q"  # not a multiple of 8 characters


class IndependentTOTP(pyotp.TOTP):
    min_secret_length_bits = 80  # google-authenticator-libpam's secrets are 80 bits


def code(secret: str, algorithm: str = "SHA1", digits: int = 6, period: int = 30) -> str:
    """The current code from an independent implementation (pyotp)."""
    return IndependentTOTP(secret, digits=digits, interval=period, digest=DIGESTS[algorithm]).now()


def write(tmp_path: Path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return str(path)


def results_by_source(run) -> dict[str, dict]:
    return {row["source"]: row for row in run.json()["results"]}


def verify(cli, name: str, one_time_password: str, db: Path | None = None):
    return cli("auth", "verify", name, one_time_password, "--json", db=db)


# -- otpauth:// URIs -------------------------------------------------------------------------------


def test_otpauth_uris_with_and_without_issuer_and_their_own_parameters(cli, store, sql, tmp_path):
    uris = write(
        tmp_path,
        "uris.txt",
        "# exported from another server\n"
        f"otpauth://totp/ACME%20Co:alice?secret={SECRET_A}&issuer=ACME%20Co\n"
        "\n"
        f"otpauth://totp/bob?secret={SECRET_B.lower()}&algorithm=SHA256&digits=8&period=60\n"
        f"otpauth://totp/Big%20Corp:%20carol?secret={SECRET_C}&algorithm=SHA512&issuer=Big%20Corp\n"
        f"otpauth://totp/dave?secret={SECRET_D}&digits=8\n"
        # as google-authenticator-libpam prints it: an 80-bit secret, the host as issuer
        "otpauth://totp/eve@myhost?secret=JBSWY3DPEHPK3PXP&issuer=myhost\n",
    )
    r = cli("user", "import", "--otpauth", uris, "--create-users", "--json")
    assert r.exit_code == 0, r.stdout + r.stderr
    rows = results_by_source(r)
    names = [rows[f"line {n}"]["name"] for n in (2, 4, 5, 6, 7)]
    assert names == ["alice", "bob", "carol", "dave", "eve@myhost"]
    assert {row["result"] for row in rows.values()} == {"imported"}
    assert rows["line 2"]["issuer"] == "ACME Co" and rows["line 4"]["issuer"] is None
    assert all(row["created"] for row in rows.values())

    stored = {
        row["name"]: tuple(row)[1:]
        for row in sql(
            "SELECT name, state, method, totp_algorithm, totp_digits, totp_period FROM users"
        )
    }
    assert stored["alice"] == ("active", "totp", None, None, None)  # the defaults stay NULL
    assert stored["bob"] == ("active", "totp", "SHA256", 8, 60)
    assert stored["carol"] == ("active", "totp", "SHA512", None, None)
    assert stored["dave"] == ("active", "totp", None, 8, None)

    assert verify(cli, "alice", code(SECRET_A)).json()["accepted"]
    assert verify(cli, "bob", code(SECRET_B, "SHA256", 8, 60)).json()["accepted"]
    assert verify(cli, "carol", code(SECRET_C, "SHA512")).json()["accepted"]
    assert verify(cli, "dave", code(SECRET_D, digits=8)).json()["accepted"]
    assert verify(cli, "eve@myhost", code("JBSWY3DPEHPK3PXP")).json()["accepted"]


def test_the_users_digit_count_decides_what_is_malformed(cli, store, tmp_path):
    uris = write(
        tmp_path,
        "uris.txt",
        f"otpauth://totp/bob?secret={SECRET_B}&algorithm=SHA256&digits=8&period=60\n"
        f"otpauth://totp/alice?secret={SECRET_A}\n",
    )
    assert cli("user", "import", "--otpauth", uris, "--create-users").exit_code == 0
    six = verify(cli, "bob", code(SECRET_B, "SHA256", 8, 60)[2:])
    assert six.exit_code == 1 and six.json()["reason"] == "malformed"
    eight = verify(cli, "alice", "12345678")
    assert eight.exit_code == 1 and eight.json()["reason"] == "malformed"
    # A SHA1 code of the same secret and length is not bob's: the digest is his own.
    sha1 = verify(cli, "bob", code(SECRET_B, "SHA1", 8, 60))
    assert sha1.json()["reason"] == "wrong_code"


def test_rfc6238_sha256_and_sha512_vectors_through_verify_otp(cli, store, db_path, tmp_path):
    """RFC 6238 Appendix B: 8-digit codes for SHA256 and SHA512 with their own seeds."""
    seeds = {
        "sha256user": ("SHA256", b"12345678901234567890123456789012"),
        "sha512user": ("SHA512", b"1234567890" * 6 + b"1234"),
    }
    vectors = {
        "sha256user": [(59, "46119246"), (1111111109, "68084774"), (2000000000, "90698825")],
        "sha512user": [(59, "90693936"), (1111111109, "25091201"), (2000000000, "38618901")],
    }
    lines = [
        f"{name},{base64.b32encode(seed).decode()},8,30,{algorithm}"
        for name, (algorithm, seed) in seeds.items()
    ]
    csv_file = write(
        tmp_path, "rfc.csv", "name,secret,digits,period,algorithm\n" + "\n".join(lines)
    )
    assert cli("user", "import", "--csv", csv_file, "--create-users").exit_code == 0
    opened = open_store(db_path)
    try:
        for name, cases in vectors.items():
            for moment, expected in cases:
                assert totp.verify_otp(opened, name, expected, now=moment).accepted, (name, moment)
    finally:
        opened.close()


# -- CSV ------------------------------------------------------------------------------------------


def test_csv_bad_lines_are_reported_per_line_and_the_good_ones_imported(cli, store, sql, tmp_path):
    csv_file = write(
        tmp_path,
        "users.csv",
        "name,secret,digits,period,algorithm\n"
        f"erin,{SECRET_A}\n"
        f"frank,{SECRET_B},8,45,sha256\n"
        "gina,0189 not base32!\n"
        f"hank,{SECRET_A},7\n"
        f"ivan,{SECRET_A},6,30,MD5\n"
        f"jane,{SECRET_A},6,5\n"
        "kate\n"
        "bad name!,JBSWY3DPEHPK3PXP\n"
        "lena,JBSWY3DP\n"
        f"erin,{SECRET_B}\n",
    )
    before = sql("SELECT count(*) FROM users")[0][0]
    r = cli("user", "import", "--csv", csv_file, "--create-users", "--json")
    assert r.exit_code == 1
    rows = results_by_source(r)
    expected = {
        "line 2": ("erin", "imported"),
        "line 3": ("frank", "imported"),
        "line 4": ("gina", "invalid"),
        "line 5": ("hank", "invalid"),
        "line 6": ("ivan", "invalid"),
        "line 7": ("jane", "invalid"),
        "line 8": (None, "invalid"),
        "line 9": ("bad name!", "invalid"),
        "line 10": ("lena", "invalid"),
        "line 11": ("erin", "duplicate"),
    }
    assert {src: (row["name"], row["result"]) for src, row in rows.items()} == expected
    assert "base32" in rows["line 4"]["reason"] and "6 or 8" in rows["line 5"]["reason"]
    assert "MD5" in rows["line 6"]["reason"] and "period 5" in rows["line 7"]["reason"]
    assert "80 bits" in rows["line 10"]["reason"]
    assert r.json()["counts"] == {"imported": 2, "invalid": 7, "duplicate": 1}
    assert sql("SELECT count(*) FROM users")[0][0] == before + 2
    assert verify(cli, "frank", code(SECRET_B, "SHA256", 8, 45)).json()["accepted"]
    assert verify(cli, "erin", code(SECRET_A)).json()["accepted"]

    human = cli("user", "import", "--csv", csv_file, "--create-users")
    assert human.exit_code == 1
    assert "line 4" in human.stdout and "already_enabled" in human.stdout


def test_csv_from_stdin(cli, store):
    r = cli("user", "import", "--csv", "-", "--create-users", "--json", input=f"zoe,{SECRET_C}\n")
    assert r.exit_code == 0 and r.json()["counts"] == {"imported": 1}
    assert verify(cli, "zoe", code(SECRET_C)).json()["accepted"]


# -- google-authenticator-libpam ------------------------------------------------------------------

SCRATCH = ["77865214", "13458265", "09876543", "51223890", "88001237"]


def ga_file(tmp_path: Path, name: str, secret: str, *options: str) -> str:
    """A ~/.google_authenticator as `google-authenticator -t -d -f -r 3 -R 30 -w 3` writes it."""
    lines = [secret, *(f'" {option}' for option in options), *SCRATCH]
    return write(tmp_path, name, "\n".join(lines) + "\n")


def test_google_authenticator_file_secret_options_and_scratch_codes(cli, store, sql, tmp_path):
    secret = "JBSWY3DPEHPK3PXP"  # libpam's own secrets are 80 bits (16 base32 characters)
    path = ga_file(
        tmp_path,
        "alice.ga",
        secret,
        "RATE_LIMIT 3 30",
        "WINDOW_SIZE 3",
        "DISALLOW_REUSE",
        "TOTP_AUTH",
    )
    cli("user", "add", "alice")
    r = cli("user", "import", "--google-authenticator", path, "--user", "alice", "--json")
    assert r.exit_code == 0, r.stdout + r.stderr
    row = r.json()["results"][0]
    assert (row["source"], row["name"], row["result"]) == (path, "alice", "imported")
    assert row["recovery_codes"] == 5 and row["created"] is False
    assert verify(cli, "alice", code(secret)).json()["accepted"]

    # The scratch codes became recovery codes: each works once, stored only hashed.
    stored = json.dumps([[str(v) for v in tuple(r)] for r in sql("SELECT * FROM recovery_codes")])
    assert not any(scratch in stored for scratch in SCRATCH)
    used = cli("auth", "verify", "alice", "--recovery-code", SCRATCH[2], "--json")
    assert used.exit_code == 0 and used.json()["accepted"]
    again = cli("auth", "verify", "alice", "--recovery-code", SCRATCH[2], "--json")
    assert again.exit_code == 1
    assert cli("user", "recovery-codes", "alice", "--json").json()["unused"] == 4


def test_google_authenticator_owner_names_the_user_and_step_size_is_the_period(
    cli, store, sql, tmp_path
):
    owner = pwd.getpwuid(os.getuid()).pw_name
    secret = "KRSXG5CTMVRXEZLUKN2XAZLSKNSWG4TF"
    path = ga_file(tmp_path, ".google_authenticator", secret, "STEP_SIZE 60", "TOTP_AUTH")
    r = cli("user", "import", "--google-authenticator", path, "--create-users", "--json")
    assert r.exit_code == 0, r.stdout + r.stderr
    assert r.json()["results"][0]["name"] == owner
    assert sql("SELECT totp_period FROM users WHERE name = ?", (owner,))[0][0] == 60
    assert verify(cli, owner, code(secret, period=60)).json()["accepted"]


def test_google_authenticator_hotp_disabled_and_broken_files(cli, store, tmp_path):
    hotp = ga_file(tmp_path, "hotp.ga", SECRET_A, "HOTP_COUNTER 1")
    no_totp = ga_file(tmp_path, "none.ga", SECRET_A, "WINDOW_SIZE 3")
    junk = write(tmp_path, "junk.ga", f"{SECRET_A}\nnot a line of this format\n")
    missing = str(tmp_path / "missing.ga")
    r = cli(
        "user", "import", "--google-authenticator", hotp, no_totp, junk, missing,
        "--create-users", "--json",
    )  # fmt: skip
    assert r.exit_code == 1
    rows = results_by_source(r)
    assert rows[hotp]["result"] == "skipped" and "HOTP" in rows[hotp]["reason"]
    assert rows[no_totp]["result"] == "invalid" and "TOTP_AUTH" in rows[no_totp]["reason"]
    assert rows[junk]["result"] == "invalid" and "line 2" in rows[junk]["reason"]
    assert rows[missing]["result"] == "invalid" and rows[missing]["reason"] == "no such file"
    two = cli("user", "import", "--google-authenticator", hotp, junk, "--user", "x")
    assert two.exit_code == 2  # --user names the owner of one file


# -- Google Authenticator's export (otpauth-migration://) ------------------------------------------

# The test's own copy of the published schema, written in protobuf's text format (the importer
# builds its descriptor in Python): the field numbers of MigrationPayload/OtpParameters.
MIGRATION_SCHEMA = """
name: "test_migration.proto" package: "migrationtest" syntax: "proto3"
message_type {
  name: "MigrationPayload"
  field { name: "otp_parameters" number: 1 label: LABEL_REPEATED type: TYPE_MESSAGE
          type_name: ".migrationtest.MigrationPayload.OtpParameters" }
  field { name: "version" number: 2 label: LABEL_OPTIONAL type: TYPE_INT32 }
  field { name: "batch_size" number: 3 label: LABEL_OPTIONAL type: TYPE_INT32 }
  field { name: "batch_index" number: 4 label: LABEL_OPTIONAL type: TYPE_INT32 }
  field { name: "batch_id" number: 5 label: LABEL_OPTIONAL type: TYPE_INT32 }
  nested_type {
    name: "OtpParameters"
    field { name: "secret" number: 1 label: LABEL_OPTIONAL type: TYPE_BYTES }
    field { name: "name" number: 2 label: LABEL_OPTIONAL type: TYPE_STRING }
    field { name: "issuer" number: 3 label: LABEL_OPTIONAL type: TYPE_STRING }
    field { name: "algorithm" number: 4 label: LABEL_OPTIONAL type: TYPE_ENUM
            type_name: ".migrationtest.MigrationPayload.Algorithm" }
    field { name: "digits" number: 5 label: LABEL_OPTIONAL type: TYPE_ENUM
            type_name: ".migrationtest.MigrationPayload.DigitCount" }
    field { name: "type" number: 6 label: LABEL_OPTIONAL type: TYPE_ENUM
            type_name: ".migrationtest.MigrationPayload.OtpType" }
    field { name: "counter" number: 7 label: LABEL_OPTIONAL type: TYPE_INT64 }
  }
  enum_type { name: "Algorithm"
    value { name: "ALGORITHM_UNSPECIFIED" number: 0 } value { name: "ALGORITHM_SHA1" number: 1 }
    value { name: "ALGORITHM_SHA256" number: 2 } value { name: "ALGORITHM_SHA512" number: 3 }
    value { name: "ALGORITHM_MD5" number: 4 } }
  enum_type { name: "DigitCount"
    value { name: "DIGIT_COUNT_UNSPECIFIED" number: 0 } value { name: "DIGIT_COUNT_SIX" number: 1 }
    value { name: "DIGIT_COUNT_EIGHT" number: 2 } }
  enum_type { name: "OtpType"
    value { name: "OTP_TYPE_UNSPECIFIED" number: 0 } value { name: "OTP_TYPE_HOTP" number: 1 }
    value { name: "OTP_TYPE_TOTP" number: 2 } }
}
"""


def migration_uri(accounts: list[dict], batch_index: int = 0, batch_size: int = 1) -> str:
    """An export URI as Google Authenticator makes it, built with protobuf."""
    from google.protobuf import descriptor_pb2, descriptor_pool, message_factory, text_format

    schema = text_format.Parse(MIGRATION_SCHEMA, descriptor_pb2.FileDescriptorProto())
    pool = descriptor_pool.DescriptorPool()
    pool.Add(schema)
    payload_class = message_factory.GetMessageClass(
        pool.FindMessageTypeByName("migrationtest.MigrationPayload")
    )
    payload = payload_class(version=1, batch_size=batch_size, batch_index=batch_index, batch_id=7)
    for account in accounts:
        payload.otp_parameters.add(**account)
    data = base64.b64encode(payload.SerializeToString()).decode()
    return "otpauth-migration://offline?data=" + quote(data, safe="")


def test_migration_export_imports_totp_and_skips_hotp(cli, store, sql, tmp_path):
    secret_a, secret_b = base64.b32decode(SECRET_A), base64.b32decode(SECRET_C)
    first = migration_uri(
        [
            {"secret": secret_a, "name": "ACME:alice", "issuer": "ACME", "algorithm": 1,
             "digits": 1, "type": 2},
            {"secret": secret_b, "name": "bob", "algorithm": 2, "digits": 2, "type": 2},
            {"secret": secret_a, "name": "carol", "type": 1, "counter": 5},
        ],
        batch_index=0,
        batch_size=2,
    )  # fmt: skip
    second = migration_uri(
        [{"secret": secret_b, "name": "Other: dave", "algorithm": 3, "type": 2}],
        batch_index=1,
        batch_size=2,
    )
    export = write(tmp_path, "export.txt", f"{first}\n{second}\n")
    r = cli("user", "import", "--migration", export, "--create-users", "--json")
    assert r.exit_code == 0, r.stdout + r.stderr  # a skipped HOTP entry is not a failure
    rows = results_by_source(r)
    assert {src: (row["name"], row["result"]) for src, row in rows.items()} == {
        "line 1, entry 1": ("alice", "imported"),
        "line 1, entry 2": ("bob", "imported"),
        "line 1, entry 3": ("carol", "skipped"),
        "line 2, entry 1": ("dave", "imported"),
    }
    assert (
        rows["line 1, entry 1"]["issuer"] == "ACME" and rows["line 2, entry 1"]["issuer"] == "Other"
    )
    assert sql("SELECT count(*) FROM users WHERE name = 'carol'")[0][0] == 0
    assert verify(cli, "alice", code(SECRET_A)).json()["accepted"]
    assert verify(cli, "bob", code(SECRET_C, "SHA256", 8)).json()["accepted"]
    assert verify(cli, "dave", code(SECRET_C, "SHA512")).json()["accepted"]

    human = cli("user", "import", "--migration", first, "--dry-run")
    assert "carol" in human.stdout and "skipped" in human.stdout  # listed, though not a failure


def test_a_published_example_export_decodes_to_its_known_account(cli, store):
    """The example of a Google Authenticator transfer link that dim13/otpauth's README decodes
    to otpauth://totp/Example:alice@google.com?issuer=Example&secret=JBSWY3DPEHPK3PXP."""
    uri = (
        "otpauth-migration://offline?data="
        "CjEKCkhlbGxvId6tvu8SGEV4YW1wbGU6YWxpY2VAZ29vZ2xlLmNvbRoHRXhhbXBsZTAC"
    )
    r = cli("user", "import", "--migration", uri, "--create-users", "--json")
    assert r.exit_code == 0, r.stdout + r.stderr
    row = r.json()["results"][0]
    assert (row["name"], row["issuer"], row["algorithm"], row["digits"]) == (
        "alice@google.com", "Example", "SHA1", 6,
    )  # fmt: skip
    assert verify(cli, "alice@google.com", code("JBSWY3DPEHPK3PXP")).json()["accepted"]


def test_a_broken_migration_uri_is_one_invalid_line(cli, store, tmp_path):
    export = write(
        tmp_path,
        "export.txt",
        "otpauth-migration://offline?data=%%%not-base64\n"
        "otpauth-migration://offline?data=AAAA\n"
        "otpauth-migration://online?data=Cg\n",
    )
    r = cli("user", "import", "--migration", export, "--json")
    assert r.exit_code == 1
    results = r.json()["results"]
    assert [row["result"] for row in results] == ["invalid", "invalid", "invalid"]
    assert [row["source"] for row in results] == ["line 1", "line 2", "line 3"]


# -- rules every import keeps ----------------------------------------------------------------------


def test_dry_run_validates_reports_and_changes_nothing(cli, store, db_path, sql, tmp_path):
    cli("user", "add", "alice")
    uris = write(
        tmp_path,
        "uris.txt",
        f"otpauth://totp/alice?secret={SECRET_A}\notpauth://totp/newbie?secret={SECRET_B}\nnope\n",
    )
    before = {p.name: p.read_bytes() for p in db_path.parent.glob("store.db*")}
    r = cli("user", "import", "--otpauth", uris, "--create-users", "--dry-run", "--json")
    assert r.exit_code == 1  # the third line is invalid
    assert [row["result"] for row in r.json()["results"]] == [
        "would_import", "would_import", "invalid",
    ]  # fmt: skip
    after = {p.name: p.read_bytes() for p in db_path.parent.glob("store.db*")}
    assert after == before
    assert sql("SELECT state FROM users WHERE name = 'alice'")[0][0] == "disabled"
    assert sql("SELECT count(*) FROM users WHERE name = 'newbie'")[0][0] == 0
    assert sql("SELECT count(*) FROM audit WHERE action = 'user.import'")[0][0] == 0


def test_users_must_exist_and_have_2fa_disabled(cli, store, sql, tmp_path):
    cli("user", "add", "pending")
    cli("user", "enable", "pending", "--method", "totp", "--json")
    uris = write(
        tmp_path,
        "uris.txt",
        f"otpauth://totp/ghost?secret={SECRET_A}\notpauth://totp/pending?secret={SECRET_B}\n",
    )
    r = cli("user", "import", "--otpauth", uris, "--json")
    assert r.exit_code == 1
    assert [(row["name"], row["result"]) for row in r.json()["results"]] == [
        ("ghost", "not_found"),
        ("pending", "already_enabled"),
    ]
    assert sql("SELECT count(*) FROM users WHERE name = 'ghost'")[0][0] == 0


def test_no_secret_in_the_database_files_or_the_audit(cli, store, db_path, sql, tmp_path):
    path = ga_file(tmp_path, "x.ga", SECRET_C, "TOTP_AUTH")
    csv_file = write(tmp_path, "u.csv", f"alice,{SECRET_A},8,60,SHA256\nbob,{SECRET_B}\n")
    assert cli("user", "import", "--csv", csv_file, "--create-users").exit_code == 0
    assert (
        cli("user", "import", "--google-authenticator", path, "--user", "carol", "--create-users")
    ).exit_code == 0
    blob = b"".join(p.read_bytes() for p in db_path.parent.glob("store.db*"))
    for secret in (SECRET_A, SECRET_B, SECRET_C):
        assert secret.encode() not in blob and secret.lower().encode() not in blob
        assert base64.b32decode(secret) not in blob
    for scratch in SCRATCH:
        assert scratch.encode() not in blob
    audit = sql("SELECT actor, action, target, result, details FROM audit")
    imports = [row for row in audit if row["action"] == "user.import"]
    assert {row["target"] for row in imports} == {"alice", "bob", "carol", None}
    assert json.loads(next(r["details"] for r in imports if r["target"] == "alice")) == {
        "format": "csv", "algorithm": "SHA256", "digits": 8, "period": 60, "created": True,
    }  # fmt: skip


def test_disabling_and_enabling_again_returns_to_the_default_parameters(cli, store, sql, tmp_path):
    csv_file = write(tmp_path, "u.csv", f"bob,{SECRET_B},8,60,SHA512\n")
    assert cli("user", "import", "--csv", csv_file, "--create-users").exit_code == 0
    assert cli("user", "disable", "bob", "--yes").exit_code == 0
    query = "SELECT totp_algorithm, totp_digits, totp_period FROM users WHERE name = 'bob'"
    assert tuple(sql(query)[0]) == (None, None, None)
    assert cli("user", "import", "--csv", csv_file).exit_code == 0
    assert cli("user", "enable", "bob", "--json").exit_code == 6  # already enabled (active)
    assert tuple(sql(query)[0]) == ("SHA512", 8, 60)


def test_exactly_one_format(cli, store, tmp_path):
    uris = write(tmp_path, "uris.txt", "")
    assert cli("user", "import").exit_code == 2
    assert cli("user", "import", "--otpauth", uris, "--csv", uris).exit_code == 2
    assert cli("user", "import", "--otpauth", uris, "extra-path").exit_code == 2
    assert cli("user", "import", "--otpauth", str(tmp_path / "nope.txt")).exit_code == 3
    empty = cli("user", "import", "--otpauth", uris, "--json")
    assert empty.exit_code == 0 and empty.json() == {"counts": {}, "results": []}


# -- export ---------------------------------------------------------------------------------------


def test_export_then_import_into_a_fresh_store_keeps_every_code_working(
    cli, store, tmp_path, monkeypatch, sql
):
    csv_file = write(
        tmp_path,
        "u.csv",
        f"alice,{SECRET_A}\nbob,{SECRET_B},8,60,SHA256\ncarol,{SECRET_C},6,30,SHA512\n",
    )
    assert cli("user", "import", "--csv", csv_file, "--create-users").exit_code == 0
    # A user enrolled by eset2fa itself, activated with their first code.
    cli("user", "add", "dave")
    enrolled = cli("user", "enable", "dave", "--method", "totp", "--json").json()["uri"]
    dave_secret = pyotp.parse_uri(enrolled).secret
    assert verify(cli, "dave", code(dave_secret)).json()["accepted"]
    cli("user", "add", "erin")
    cli("user", "enable", "erin", "--method", "totp")  # pending: not exported
    libpam = ga_file(tmp_path, "frank.ga", "KRSXG5CTMVRXEZLU", "STEP_SIZE 60", "TOTP_AUTH")
    frank = cli(
        "user", "import", "--google-authenticator", libpam, "--user", "frank", "--create-users"
    )
    assert frank.exit_code == 0  # an 80-bit secret with a 60 s step

    refused = cli("user", "export", "--otpauth", "--all")
    assert refused.exit_code == 2 and "otpauth://" not in refused.stdout
    exported = cli("user", "export", "--otpauth", "--all", "--yes")
    assert exported.exit_code == 0, exported.stderr
    lines = exported.stdout.splitlines()
    assert len(lines) == 5 and all(line.startswith("otpauth://totp/") for line in lines)
    bob_uri = next(line for line in lines if ":bob?" in line)
    assert "algorithm=SHA256" in bob_uri and "digits=8" in bob_uri and "period=60" in bob_uri
    assert "issuer=eset2fa" in bob_uri

    audit = sql("SELECT target, details FROM audit WHERE action = 'user.export'")
    assert sorted(row["target"] for row in audit) == ["alice", "bob", "carol", "dave", "frank"]
    assert all(SECRET_B not in (row["details"] or "") for row in audit)

    # A fresh store with its own key.
    fresh = tmp_path / "fresh.db"
    monkeypatch.setenv("ESET2FA_KEY", base64.urlsafe_b64encode(os.urandom(32)).decode())
    export_file = write(tmp_path, "export.txt", exported.stdout)
    assert cli("init", db=fresh).exit_code == 0  # only init creates a store at --db (issue 9)
    r = cli("user", "import", "--otpauth", export_file, "--create-users", "--json", db=fresh)
    assert r.exit_code == 0, r.stdout + r.stderr
    assert r.json()["counts"] == {"imported": 5}
    assert verify(cli, "alice", code(SECRET_A), db=fresh).json()["accepted"]
    assert verify(cli, "bob", code(SECRET_B, "SHA256", 8, 60), db=fresh).json()["accepted"]
    assert verify(cli, "carol", code(SECRET_C, "SHA512"), db=fresh).json()["accepted"]
    assert verify(cli, "dave", code(dave_secret), db=fresh).json()["accepted"]
    assert verify(cli, "frank", code("KRSXG5CTMVRXEZLU", period=60), db=fresh).json()["accepted"]


def test_export_named_users_and_json(cli, store, tmp_path):
    csv_file = write(tmp_path, "u.csv", f"alice,{SECRET_A}\nbob,{SECRET_B},8,60,SHA256\n")
    assert cli("user", "import", "--csv", csv_file, "--create-users").exit_code == 0
    r = cli("user", "export", "bob", "--yes", "--json")
    assert r.exit_code == 0
    doc = r.json()
    assert doc["count"] == 1 and doc["not_permitted"] == 0
    bob = doc["users"][0]
    assert (bob["name"], bob["secret"], bob["algorithm"], bob["digits"], bob["period"]) == (
        "bob", SECRET_B, "SHA256", 8, 60,
    )  # fmt: skip
    parsed = pyotp.parse_uri(bob["uri"])
    assert (parsed.digits, parsed.interval, parsed.digest().name) == (8, 60, "sha256")
    assert cli("user", "export", "ghost", "--yes").exit_code == 3
    assert cli("user", "export", "Administrator", "--yes").exit_code == 6  # not an active TOTP user
    assert cli("user", "export", "--yes").exit_code == 2  # neither names nor --all


def test_export_needs_write_permission(cli, store, tmp_path):
    csv_file = write(tmp_path, "u.csv", f"alice,{SECRET_A}\n")
    assert cli("user", "import", "--csv", csv_file, "--create-users").exit_code == 0
    cli("user", "add", "helpdesk", "--password-stdin", input="helpdesk-password-1\n")
    args = ("--as", "helpdesk", "--as-password-stdin", "user", "export")
    denied = cli(*args, "alice", "--yes", input="helpdesk-password-1\n")
    assert denied.exit_code == 5 and "otpauth://" not in denied.stdout
    none = cli(*args, "--all", "--yes", "--json", input="helpdesk-password-1\n")
    assert none.exit_code == 0 and none.json()["count"] == 0
    assert none.json()["not_permitted"] == 1


# -- protobuf stays off the hot paths --------------------------------------------------------------


def test_protobuf_is_imported_only_by_the_migration_importer(db_path, tmp_path):
    script = """
import sys
from typer.testing import CliRunner
from eset2fa.cli import app
runner = CliRunner()
result = runner.invoke(app, sys.argv[1:])
print(result.exit_code, "google.protobuf" in sys.modules)
"""
    uris = write(tmp_path, "uris.txt", f"otpauth://totp/alice?secret={SECRET_A}\n")

    def run(*args: str) -> str:
        done = subprocess.run(
            [sys.executable, "-c", script, "--db", str(db_path), *args],
            capture_output=True,
            text=True,
            timeout=60,
            env=os.environ.copy(),
        )
        return done.stdout.strip().splitlines()[-1]

    assert run("init") == "0 False"  # only init creates a store at --db (issue 9)
    assert run("user", "import", "--otpauth", uris, "--create-users") == "0 False"
    assert run("user", "status", "alice", "--json") == "0 False"
    assert run("auth", "verify", "alice", "000000") == "1 False"
    uri = "otpauth-migration://offline?data=CjEKCkhlbGxvId6tvu8SGEV4YW1wbGU6YWxpY2VAZ29vZ2xlLmNvbRoHRXhhbXBsZTAC"
    assert run("user", "import", "--migration", uri, "--dry-run", "--create-users") == "0 True"


def test_otpauth_lines_that_are_not_importable(cli, store, tmp_path):
    uris = write(
        tmp_path,
        "uris.txt",
        f"otpauth://totp/A:alice?secret={SECRET_A}&issuer=B\n"
        f"otpauth://totp/bob?secret={SECRET_A}&secret={SECRET_B}\n"
        "otpauth://totp/carol?issuer=X\n"
        f"otpauth://totp/dave?secret={SECRET_A}&digits=7\n"
        f"otpauth://totp/erin?secret={SECRET_A}&encoder=steam\n"
        f"otpauth://hotp/frank?secret={SECRET_A}&counter=3\n"
        f"https://example.org/?secret={SECRET_A}\n"
        f"otpauth://totp/gina?secret={SECRET_A}&algorithm=sha256\n",
    )
    r = cli("user", "import", "--otpauth", uris, "--create-users", "--json")
    assert r.exit_code == 1
    got = [(row["name"], row["result"]) for row in r.json()["results"]]
    assert got == [
        ("alice", "invalid"),
        ("bob", "invalid"),
        ("carol", "invalid"),
        ("dave", "invalid"),
        ("erin", "invalid"),
        ("frank", "skipped"),
        (None, "invalid"),
        ("gina", "imported"),
    ]
    reasons = " ".join(row["reason"] or "" for row in r.json()["results"])
    assert SECRET_A not in reasons and SECRET_A not in r.stderr
    assert verify(cli, "gina", code(SECRET_A, "SHA256")).json()["accepted"]
