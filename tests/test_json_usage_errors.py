"""With --json (or ESET2FA_JSON), a usage error is one JSON document on stdout too, exit 2.

Before, click printed its usage message itself: `eset2fa --json user show -7d` exited 2 with
stdout empty, and a script reading stdout as JSON got nothing to parse.
"""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from eset2fa.cli import app
from tests.conftest import run_process

# (arguments, the message, the command whose --help the hint names)
USAGE_ERRORS = [
    (("user", "show", "-7d"), "No such option: -7", "eset2fa user show"),
    (("user", "show"), "Missing argument 'name'.", "eset2fa user show"),
    (("user", "list", "--limit", "abc"), "Invalid value for '--limit'", "eset2fa user list"),
    (("user", "list", "--state", "nope"), "Invalid value for '--state'", "eset2fa user list"),
    (
        ("user", "statsu", "alice"),
        "No such command 'statsu'. Did you mean 'status'?",
        "eset2fa user",
    ),
    (("bogus",), "No such command 'bogus'.", "eset2fa"),
    (("user",), "Missing command.", "eset2fa user"),
    ((), "Missing command.", "eset2fa"),
    (("--bogus", "user", "list"), "No such option: --bogus", "eset2fa"),
    (
        ("auth", "verify", "alice", "123456", "extra"),
        "Got unexpected extra argument",
        "eset2fa auth verify",
    ),
]


def invoke(args, env=None):
    result = CliRunner().invoke(app, list(args), env=env)
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result


def assert_one_usage_document(result, message: str, where: str) -> None:
    assert result.exit_code == 2, (result.exit_code, result.stdout, result.stderr)
    document = json.loads(result.stdout)  # the whole of stdout is one document
    assert set(document) == {"error"}
    error = document["error"]
    assert (error["code"], error["exit_code"]) == ("usage", 2)
    assert error["message"].startswith(message), error["message"]
    assert error["hint"] == f"See `{where} --help`."
    # stderr: the same message as one line and the hint, no usage panel, no help text
    assert result.stderr.startswith(f"Error: {error['message'][:40]}")
    assert "Usage:" not in result.stderr and "Traceback" not in result.stderr


def test_the_reproducer_json_user_show_with_a_bad_option(tmp_path):
    result = invoke(["--db", str(tmp_path / "s.db"), "--json", "user", "show", "-7d"])
    assert_one_usage_document(result, "No such option: -7", "eset2fa user show")
    assert not (tmp_path / "s.db").exists()


@pytest.mark.parametrize(("args", "message", "where"), USAGE_ERRORS, ids=lambda v: repr(v))
def test_json_before_the_command(args, message, where):
    assert_one_usage_document(invoke(["--json", *args]), message, where)


@pytest.mark.parametrize(("args", "message", "where"), USAGE_ERRORS, ids=lambda v: repr(v))
def test_json_after_the_command(args, message, where):
    assert_one_usage_document(invoke([*args, "--json"]), message, where)


@pytest.mark.parametrize(("args", "message", "where"), USAGE_ERRORS, ids=lambda v: repr(v))
def test_json_from_the_environment(args, message, where):
    assert_one_usage_document(invoke(args, env={"ESET2FA_JSON": "1"}), message, where)


@pytest.mark.parametrize(("args", "message", "where"), USAGE_ERRORS, ids=lambda v: repr(v))
def test_a_person_keeps_clicks_usage_message(args, message, where):
    result = invoke(args, env={"ESET2FA_JSON": "0"})
    assert result.exit_code == 2
    assert '"error"' not in result.stdout
    assert "Usage:" in result.stdout + result.stderr  # click's usage line or the group's help


@pytest.mark.parametrize("env", [None, {"ESET2FA_JSON": "yes"}])
def test_a_root_option_without_its_value(env):
    args = ["--db"] if env else ["--json", "--db"]
    result = invoke(args, env=env)
    assert_one_usage_document(result, "Option '--db' requires an argument.", "eset2fa")


def test_json_after_a_double_dash_is_an_argument_not_the_flag():
    result = invoke(["user", "show", "-7d", "--", "--json"])
    assert result.exit_code == 2 and '"error"' not in result.stdout


def test_a_real_process_prints_the_document(tmp_path):
    result = run_process("--db", str(tmp_path / "s.db"), "--json", "user", "show", "-7d")
    assert result.returncode == 2
    assert json.loads(result.stdout)["error"]["message"] == "No such option: -7"
    assert result.stderr.startswith("Error: No such option: -7")
