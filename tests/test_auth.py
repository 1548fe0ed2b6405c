"""`--as` with a second factor, and `auth login` driven through a real pseudo-terminal."""

from __future__ import annotations

import os
import select
import subprocess
import sys
import termios
import time
import weakref
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from totp_helpers import secret_of, totp_now

# Every test here works on a store made by `init` (the `store` fixture): a --db path is created by
# nothing else, so `user add` alone no longer makes one.
pytestmark = [pytest.mark.usefixtures("store"), pytest.mark.backends("sqlite", "postgresql")]

MOMENT = datetime(2026, 11, 22, 12, 0, 10, tzinfo=UTC)
AS_HELPDESK = ("--as", "helpdesk", "--as-password-stdin")


def _active_helpdesk(cli) -> str:
    """A delegated console user with Write over group ops and TOTP active; returns the secret."""
    assert cli("user", "add", "helpdesk", "--password-stdin", input="helpdesk-pw\n").exit_code == 0
    assert cli("user", "grant", "helpdesk", "--write-group", "ops").exit_code == 0
    secret = secret_of(cli("user", "enable", "helpdesk", "--json").json()["uri"])
    with time_machine.travel(MOMENT, tick=False):
        assert cli("auth", "verify", "helpdesk", totp_now(secret)).exit_code == 0
    assert cli("user", "add", "alice", "--group", "ops").exit_code == 0
    return secret


def test_as_with_active_2fa_needs_the_otp(cli, sql):
    secret = _active_helpdesk(cli)
    later = MOMENT + timedelta(seconds=60)
    with time_machine.travel(later, tick=False):
        missing = cli(*AS_HELPDESK, "user", "unlock", "alice", input="helpdesk-pw\n")
        assert missing.exit_code == 2 and "--as-otp" in missing.stderr
        wrong = cli(
            *AS_HELPDESK, "--as-otp", "000000", "user", "unlock", "alice", input="helpdesk-pw\n"
        )
        assert wrong.exit_code == 5
        code = totp_now(secret)
        ok = cli(*AS_HELPDESK, "user", "unlock", "alice", "--as-otp", code, input="helpdesk-pw\n")
        assert ok.exit_code == 0, ok.stderr
        replay = cli(
            *AS_HELPDESK, "--as-otp", code, "user", "unlock", "alice", input="helpdesk-pw\n"
        )
        assert replay.exit_code == 5
    rows = sql("SELECT result FROM audit WHERE action = 'auth.actor.otp' ORDER BY id")
    assert [r[0] for r in rows] == ["rejected", "accepted", "rejected"]
    # Issue 9: the replay of the accepted code is refused (exit 5 above) but not counted.
    assert sql("SELECT fail_count FROM users WHERE name = 'helpdesk'")[0][0] == 0


def test_as_otp_failures_count_toward_the_lockout(cli):
    secret = _active_helpdesk(cli)
    assert cli("config", "set", "lockout.max_failures", "2").exit_code == 0
    args = (*AS_HELPDESK, "--as-otp", "000000", "user", "unlock", "alice")
    assert cli(*args, input="helpdesk-pw\n").exit_code == 5
    assert cli(*args, input="helpdesk-pw\n").exit_code == 4
    good = (*AS_HELPDESK, "--as-otp", totp_now(secret, 1), "user", "unlock", "alice")
    assert cli(*good, input="helpdesk-pw\n").exit_code == 4


def test_as_with_pending_2fa_is_refused(cli):
    assert cli("user", "add", "helpdesk", "--password-stdin", input="helpdesk-pw\n").exit_code == 0
    assert cli("user", "enable", "helpdesk", "--no-qr").exit_code == 0
    assert cli("user", "add", "alice").exit_code == 0
    result = cli(*AS_HELPDESK, "user", "unlock", "alice", input="helpdesk-pw\n")
    assert result.exit_code == 6 and "auth login helpdesk" in result.stderr


# -- auth login through a pseudo-terminal --------------------------------------------------------


def _end_terminal(process: subprocess.Popen, master: int) -> None:
    """Kill the CLI if it still runs, reap it, close the terminal (once: a weakref.finalize)."""
    if process.poll() is None:
        process.kill()
    try:
        process.wait(timeout=10)
    finally:
        os.close(master)


class Terminal:
    """`python -m eset2fa ...` with stdin/stdout/stderr on a pty, answered like a person would.

    Every wait has a deadline; a failure kills the CLI before it is reported, and a terminal a
    failed test left behind is ended when it is collected (or at exit), never left waiting.
    """

    def __init__(self, *args: str) -> None:
        self.master, slave = os.openpty()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "eset2fa", *args],
            stdin=slave,
            stdout=slave,
            stderr=slave,
            close_fds=True,
            start_new_session=True,
        )
        os.close(slave)
        self.end = weakref.finalize(self, _end_terminal, self.process, self.master)
        self.seen = ""

    def fail(self, message: str) -> None:
        self.end()
        raise AssertionError(f"{message}; the terminal showed:\n{self.seen}")

    def expect(self, text: str, timeout: float = 30) -> str:
        deadline = time.monotonic() + timeout
        while text not in self.seen:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                self.fail(f"timed out waiting for {text!r}")
            ready, _, _ = select.select([self.master], [], [], remaining)
            if ready:
                try:
                    chunk = os.read(self.master, 4096)
                except OSError:  # the child closed the terminal
                    chunk = b""
                if not chunk:
                    self.fail(f"terminal closed before {text!r}")
                self.seen += chunk.decode(errors="replace")
        return self.seen

    def send(self, line: str) -> None:
        os.write(self.master, (line + "\n").encode())

    def send_secret(self, line: str, timeout: float = 10) -> None:
        """Type a password once the hidden prompt has turned echo off.

        getpass switches echo off with TCSAFLUSH, which discards anything typed before: a
        person waits for the prompt to be ready, and so does this.
        """
        deadline = time.monotonic() + timeout
        while termios.tcgetattr(self.master)[3] & termios.ECHO:
            if time.monotonic() >= deadline:
                self.fail("the password prompt never turned echo off")
            time.sleep(0.02)
        self.send(line)

    def finish(self, timeout: float = 30) -> int:
        """Read what is left until the terminal closes; the process's exit code."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            ready, _, _ = select.select([self.master], [], [], 0.2)
            chunk = b""
            if ready:
                try:
                    chunk = os.read(self.master, 4096)
                except OSError:  # EIO: every process holding the terminal has exited
                    break
                self.seen += chunk.decode(errors="replace")
            if not chunk and self.process.poll() is not None:
                break
        try:
            return self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.fail(f"the CLI did not exit within {timeout + 5} s")
        finally:
            self.end()


def test_first_login_enrolls_then_later_login_asks_the_otp(cli, db_path, sql):
    assert cli("user", "add", "alice", "--password-stdin", input="alice-password\n").exit_code == 0
    assert cli("user", "enable", "alice", "--no-qr").exit_code == 0

    term = Terminal("--db", str(db_path), "auth", "login", "alice")
    term.expect("Password for alice")
    term.send_secret("alice-password")
    term.expect("Phone number")
    term.send("not a phone")
    term.expect("Phone number", timeout=30)
    term.send("+44 20 7946 0000")
    term.expect("One-time password for alice")
    assert "█" in term.seen or "▀" in term.seen  # the QR code was drawn
    (stored,) = sql("SELECT recipient, body, sealed FROM outbox WHERE channel = 'sms'")
    assert stored["body"] == "(encrypted)"  # the link holds the secret: never in clear at rest
    (sms,) = cli("outbox", "--channel", "sms", "--json").json()
    assert sms["recipient"] == "+442079460000"
    secret = secret_of(sms["body"].split()[-1])
    assert secret.encode() not in stored["sealed"]
    term.send("000000" if totp_now(secret) != "000000" else "111111")
    term.expect("attempt(s) left")
    term.send(totp_now(secret))
    term.expect("Logged in")
    assert term.finish() == 0, term.seen
    row = sql("SELECT state, phone, fail_count FROM users WHERE name = 'alice'")[0]
    assert (row["state"], row["phone"], row["fail_count"]) == ("active", "+442079460000", 0)
    # Activation handed out one-time recovery codes, shown once; only hashes are stored.
    import re

    codes = re.findall(r"\b[0-9A-Z]{5}-[0-9A-Z]{5}\b", term.seen.split("Recovery codes")[1])
    assert len(codes) == 10
    assert sql("SELECT count(*) FROM recovery_codes WHERE used_at IS NULL")[0][0] == 10
    stored_hashes = " ".join(r[0] for r in sql("SELECT code_hash FROM recovery_codes"))
    assert codes[0] not in stored_hashes and codes[0].replace("-", "") not in stored_hashes
    assert cli("auth", "verify", "alice", "--recovery-code", codes[0]).exit_code == 0
    assert cli("auth", "verify", "alice", "--recovery-code", codes[0]).exit_code == 1

    again = Terminal("--db", str(db_path), "auth", "login", "alice")
    again.expect("Password for alice")
    again.send_secret("alice-password")
    again.expect("One-time password for alice")
    assert "Phone number" not in again.seen and "▀" not in again.seen
    again.send(totp_now(secret, 1))  # the current step was used by the first login
    again.expect("Logged in")
    assert again.finish() == 0, again.seen
    assert len(sql("SELECT id FROM outbox")) == 1  # no second SMS once active


def test_login_wrong_password_and_lockout_exit_codes(cli, db_path, sql):
    assert cli("user", "add", "bob", "--password-stdin", input="bob-password\n").exit_code == 0
    enroll_uri = cli("user", "enable", "bob", "--phone", "+1 202 555 0143", "--json")
    secret = secret_of(enroll_uri.json()["uri"])
    assert cli("config", "set", "lockout.max_failures", "2").exit_code == 0

    wrong = Terminal("--db", str(db_path), "auth", "login", "bob")
    wrong.expect("Password for bob")
    wrong.send_secret("not-the-password")
    assert wrong.finish() == 1, wrong.seen

    locked = Terminal("--db", str(db_path), "auth", "login", "bob")
    locked.expect("Password for bob")
    locked.send_secret("bob-password")
    locked.expect("One-time password for bob")
    assert "Phone number" not in locked.seen  # the admin recorded it at enrollment
    bad = "000000" if totp_now(secret) != "000000" else "111111"
    locked.send(bad)
    locked.expect("One-time password for bob")
    locked.send(bad)
    assert locked.finish() == 4, locked.seen
    assert sql("SELECT locked FROM users WHERE name = 'bob'")[0][0] == 1
    (sms,) = sql("SELECT recipient FROM outbox")
    assert sms[0] == "+12025550143"
