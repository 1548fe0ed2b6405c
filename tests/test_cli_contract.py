"""Contracts every command keeps: help with an example, one JSON document, documented exit codes."""

from __future__ import annotations

import json

import pytest
import typer
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from eset2fa import __version__
from eset2fa.cli import app
from tests.conftest import run_process

DOCUMENTED_EXIT_CODES = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 130}


def all_command_paths():
    root = typer.main.get_command(app)
    paths = []

    def walk(command, prefix):
        if hasattr(command, "list_commands"):
            ctx = command.make_context(
                prefix[-1] if prefix else "eset2fa", [], resilient_parsing=True
            )
            for name in command.list_commands(ctx):
                walk(command.get_command(ctx, name), [*prefix, name])
        else:
            paths.append(prefix)

    walk(root, [])
    return paths


COMMANDS = all_command_paths()


def test_the_command_list_is_not_empty():
    assert ["user", "add"] in COMMANDS and ["init"] in COMMANDS


@pytest.mark.parametrize("path", COMMANDS, ids=[" ".join(p) for p in COMMANDS])
def test_every_command_has_help_with_an_example(path):
    result = CliRunner().invoke(app, [*path, "--help"])
    assert result.exit_code == 0
    assert "Example" in result.stdout, f"{' '.join(path)} --help has no example"


def test_version(cli):
    result = cli("--version")
    assert result.exit_code == 0 and result.stdout.strip() == f"eset2fa {__version__}"


def test_python_dash_m_and_json_stdout_only(store, db_path):
    result = run_process("--db", str(db_path), "user", "status", "Administrator", "--json")
    assert result.returncode == 0
    assert json.loads(result.stdout)["name"] == "Administrator"
    # Notices only ever go to stderr; on a store that exists there are none at all.
    again = run_process("--db", str(db_path), "user", "list", "--json")
    assert again.returncode == 0 and again.stderr == ""
    assert [u["name"] for u in json.loads(again.stdout)] == ["Administrator"]


def test_json_from_environment(cli, store, monkeypatch):
    monkeypatch.setenv("ESET2FA_JSON", "1")
    result = cli("user", "status", "Administrator")
    assert json.loads(result.stdout)["name"] == "Administrator"


def test_json_errors_are_one_document(cli, store):
    result = cli("user", "show", "ghost", "--json")
    assert result.exit_code == 3
    doc = json.loads(result.stdout)
    assert doc["error"]["code"] == "not_found" and doc["error"]["exit_code"] == 3
    assert doc["error"]["hint"]


def test_global_options_work_after_the_command(cli, store, tmp_path):
    other = tmp_path / "other.db"
    assert cli("init", db=other).exit_code == 0
    result = cli("user", "add", "zed", "--db", str(other), "--json")
    assert result.exit_code == 0
    assert cli("user", "status", "zed", db=other).exit_code == 0
    assert cli("user", "status", "zed").exit_code == 3


def test_no_color_output_has_no_escape_codes(cli, store):
    result = cli("user", "list")
    assert "\x1b[" not in result.stdout and "\x1b[" not in result.stderr


WORDS = [
    "user",
    "add",
    "list",
    "show",
    "status",
    "delete",
    "grant",
    "revoke",
    "audit",
    "db",
    "check",
    "migrate",
    "init",
    "config",
    "set",
    "show",
    "outbox",
    "--json",
    "--yes",
    "--require",
    "active",
    "--group",
    "--write",
    "--write-group",
    "--from-file",
    "-",
    "--limit",
    "0",
    "-1",
    "x" * 70,
    "alice",
    "Administrator",
    "--since",
    "7d",
    "--state",
    "--as",
    "--db",
    "",
    "é",
    "--password-stdin",
    "lockout.max_failures",
    "abc",
]


@settings(
    max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    argv=st.lists(st.one_of(st.sampled_from(WORDS), st.text(max_size=12)), max_size=6),
    stdin=st.text(max_size=30),
)
def test_fuzzed_command_lines_never_crash(cli, store, argv, stdin):
    if any("\x00" in a for a in argv):
        return
    result = cli(*argv, input=stdin)  # the fixture re-raises any exception that is not an exit
    assert result.exit_code in DOCUMENTED_EXIT_CODES
    assert "Traceback" not in result.stdout + result.stderr


def test_sub_commands_are_built_on_first_use_and_all_listed(cli, store):
    # `user status` builds only `status` of the user group's dozen commands (cold start, SPEC §6);
    # listings and the "did you mean" hint still see every name.
    from eset2fa.cli import _build_command

    group = _build_command("user")
    assert group.get_command(None, "status").name == "status"
    entries = group.commands._entries
    built = [n for n, c in entries.items() if not isinstance(c, typer.models.CommandInfo)]
    assert built == ["status"]
    assert {"status", "enable", "unlock", "reset-password"} <= set(group.list_commands(None))
    typo = cli("user", "statsu", "alice")
    assert typo.exit_code == 2 and "status" in typo.stderr


def _with_stdin(db_path, stdin, *args):
    """The CLI as a process; stdin is bytes, or None for a closed stdin (`<&-` in a shell)."""
    import os
    import subprocess
    import sys

    command = [sys.executable, "-m", "eset2fa", "--db", str(db_path), *args]
    if stdin is None:
        command = ["sh", "-c", 'exec "$@" <&-', "sh", *command]
    return subprocess.run(command, input=stdin, capture_output=True, env=os.environ, timeout=60)


@pytest.mark.parametrize("stdin", [None, b"\xff\xfe not UTF-8 but long enough\n"])
def test_closed_or_non_utf8_stdin_is_a_usage_error_not_a_traceback(store, stdin):
    for args in (
        ("user", "add", "bob", "--password-stdin"),
        ("config", "set-secret", "twilio.auth_token"),
        ("--as", "Administrator", "--as-password-stdin", "user", "list"),
    ):
        result = _with_stdin(store, stdin, *args)
        assert result.returncode == 2, (args, result.stderr)
        assert b"Traceback" not in result.stderr and b"\xff" not in result.stderr
    listed = _with_stdin(store, None, "user", "add", "--from-file", "-")
    assert listed.returncode == 0 and b"Traceback" not in listed.stderr


def test_arguments_that_are_not_utf8_are_a_usage_error_not_a_traceback(cli, store, sql):
    settings_before = sql("SELECT key, value FROM config")  # the Argon2 profile (conftest)
    odd = "a\udcffb"  # how Python passes the byte 0xff of a non-UTF-8 argument
    for args in (
        ("auth", "verify", odd, "123456"),
        ("user", "status", odd),
        ("config", "set", "totp.issuer", odd),
        ("audit", "list", "--user", odd),
        ("--json", "outbox", "--user", odd),
    ):
        result = cli(*args)
        assert result.exit_code == 2, (args, result.stderr)
        assert "not valid UTF-8" in result.stderr
    assert sql("SELECT key, value FROM config") == settings_before


def _read_terminal(fd: int, until: bytes | None, deadline: float, seen: bytes = b"") -> bytes:
    """What the pty shows, read until `until` appears (None: until it closes); fails with what
    it saw at the deadline instead of blocking in os.read for ever."""
    import os
    import select
    import time

    while until is None or until not in seen:
        remaining = deadline - time.monotonic()
        assert remaining > 0, f"timed out waiting for {until!r}; the terminal showed {seen!r}"
        ready, _, _ = select.select([fd], [], [], remaining)
        if not ready:
            continue
        try:
            chunk = os.read(fd, 1024)
        except OSError:  # EIO: every process holding the terminal has exited
            chunk = b""
        if not chunk:
            assert until is None, f"the terminal closed before {until!r}; it showed {seen!r}"
            break
        seen += chunk
    return seen


def _wait_until_reading_the_terminal(pid: int, deadline: float) -> None:
    """Until the process sleeps in a read of its terminal (Linux: /proc/PID/wchan).

    A Ctrl-C sent while Python is still between printing the prompt and starting the read is
    lost: CPython's input() checks for signals only when the read is interrupted, and a SIGINT
    handled just before the read began interrupts nothing (a person presses Ctrl-C again). The
    test sends it once the read has begun, as a person at the prompt does."""
    import os
    import time

    wchan = f"/proc/{pid}/wchan"
    if not os.path.exists(wchan):
        time.sleep(0.5)  # no /proc: a pause stands in for the check
        return
    while time.monotonic() < deadline:
        with open(wchan) as handle:
            if handle.read() in ("wait_woken", "n_tty_read"):
                return
        time.sleep(0.01)
    raise AssertionError(f"the CLI (pid {pid}) never started reading its terminal")


def _wait_for_exit(pid: int, deadline: float) -> int:
    import os
    import time

    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status)
        time.sleep(0.02)
    raise AssertionError(f"the CLI (pid {pid}) did not exit after Ctrl-C")


def test_ctrl_c_at_a_prompt_exits_130_and_changes_nothing(cli, store, sql):
    """It once hung for 10 minutes with the child at [y/N]: the suite ran in the background with
    SIGINT ignored, which the child inherited, so the Ctrl-C did nothing (see
    conftest.sigint_as_on_a_terminal); and the reads had no deadline. Now the child gets
    SIGINT as on a person's terminal, every read and the wait are bounded, and the child is
    killed in a finally."""
    import os
    import pty
    import signal
    import sys
    import time

    from tests.conftest import sigint_as_on_a_terminal

    assert cli("user", "add", "alice").exit_code == 0
    pid, fd = pty.fork()
    if pid == 0:  # the child: the CLI on a terminal, asking before it deletes
        try:
            sigint_as_on_a_terminal()
            argv = ["-m", "eset2fa", "--db", str(store), "user", "delete", "alice"]
            os.execv(sys.executable, [sys.executable, *argv])
        finally:
            os._exit(127)  # exec failed: never go back into pytest's code
    code = None
    try:
        deadline = time.monotonic() + 30
        seen = _read_terminal(fd, b"[y/N]: ", deadline)
        _wait_until_reading_the_terminal(pid, deadline)
        os.write(fd, b"\x03")
        seen = _read_terminal(fd, None, deadline, seen)
        code = _wait_for_exit(pid, deadline)
    finally:
        if code is None:  # failed on the way: the child must not outlive the test
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        os.close(fd)
    assert code == 130, seen
    assert b"Interrupted" in seen and b"Traceback" not in seen
    assert sql("SELECT count(*) FROM users WHERE name = 'alice'")[0][0] == 1


@pytest.mark.parametrize(
    "args",
    [
        ("auth", "push", "Administrator", "--timeout", "100000000000000000000"),
        ("audit", "list", "--since", "99999999999999d"),
        ("outbox", "--limit", "100000000000000000000000"),
        ("audit", "list", "--limit", "100000000000000000000000"),
        ("push", "list", "--limit", "100000000000000000000000"),
    ],
)
def test_huge_numbers_in_options_are_a_usage_error(cli, store, args):
    result = cli(*args)
    assert result.exit_code == 2, (result.exit_code, result.stderr)


def test_an_error_quoting_a_huge_argument_stays_short(cli, store):
    huge = "a" * 100_000
    for args in (("user", "status", huge), ("--json", "user", "add", huge)):
        result = cli(*args)
        assert result.exit_code in (2, 3), result.exit_code
        assert len(result.stderr) < 2000 and len(result.stdout) < 2000
        assert "characters left out" in result.stderr
