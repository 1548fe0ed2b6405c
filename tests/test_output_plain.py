"""Short human messages in a pipe are written without loading rich.console (issue 13: `auth
verify`'s start-up), and read exactly as rich would have printed them there."""

from __future__ import annotations

import io
import subprocess
import sys

import pytest
from rich.console import Console

from eset2fa.output import Output

MESSAGES = [
    "[bold green]Accepted[/]: alice is active",
    "[bold red]Rejected[/] (wrong code): 3 failed attempt(s), 7 left before the lock",
    "[bold red]Rejected[/] (wrong code): 10 failed attempt(s); [bold red]bob is now locked[/]",
    "[bold yellow]Warning:[/] something: with a colon",
    "Backup written to /srv/2fa/backups/eset2fa-20261122T101500.000000Z-manual.db",
    "a path with [brackets] and a[/]b",  # not plain-safe: rich handles (or refuses) it
    "tab\there",
    "an emoji code :warning: here",
    "escaped \\[bold] text",
    "[] empty brackets",
    "",
]


def rich_would_print(text: str) -> str:
    out = io.StringIO()
    console = Console(file=out, highlight=False, soft_wrap=True)
    try:
        console.print(text)
    except Exception:
        out = io.StringIO()
        Console(file=out, highlight=False, soft_wrap=True).print(text, markup=False)
    return out.getvalue()


@pytest.mark.parametrize("text", MESSAGES)
def test_a_message_in_a_pipe_reads_as_rich_prints_it(text, capsys, monkeypatch):
    monkeypatch.delenv("FORCE_COLOR", raising=False)
    monkeypatch.delenv("TTY_COMPATIBLE", raising=False)
    output = Output()
    output.message(text)
    output.notice(text)
    captured = capsys.readouterr()
    assert captured.out == rich_would_print(text)
    assert captured.err == rich_would_print(text)


@pytest.mark.parametrize("text", MESSAGES)
@pytest.mark.parametrize("hint", [None, "Run `eset2fa user unlock alice`.", "tab\there [x]"])
def test_an_error_in_a_pipe_reads_as_rich_prints_it(text, hint, capsys, monkeypatch):
    from rich.markup import escape

    monkeypatch.delenv("FORCE_COLOR", raising=False)
    monkeypatch.delenv("TTY_COMPATIBLE", raising=False)
    Output().error({"code": "x", "exit_code": 1, "message": text, "hint": hint})
    expected = f"[bold red]Error:[/] {escape(text)}"
    if hint:
        expected += f"\n[dim]Hint:[/] {escape(hint)}"
    assert capsys.readouterr().err == rich_would_print(expected)


@pytest.mark.usefixtures("env_master_key")
def test_auth_verify_in_a_pipe_does_not_load_rich_console(cli, store):
    assert cli("user", "add", "alice").exit_code == 0
    assert cli("user", "enable", "alice", "--method", "totp").exit_code == 0
    code = (
        "import runpy, sys\n"
        "sys.argv = ['eset2fa', '--db', sys.argv[1], 'auth', 'verify', 'alice', '000000']\n"
        "try:\n"
        "    runpy.run_module('eset2fa', run_name='__main__')\n"
        "except SystemExit:\n"
        "    pass\n"
        "print('rich.console' in sys.modules, file=sys.stderr)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code, str(store)], capture_output=True, text=True, timeout=60
    )
    assert "Rejected" in result.stdout, result.stderr  # the human line, printed
    assert result.stderr.strip().splitlines()[-1] == "False", result.stderr
