"""Output that survives pipes and narrow terminals: full values, never cut, and help that wraps
cleanly at 80 columns.

CliRunner's stdout is not a terminal, so `cli(...)` shows what a pipe gets; TTY_COMPATIBLE=1
(rich's own switch, honoured by eset2fa.output) shows what a terminal of COLUMNS columns gets.
"""

from __future__ import annotations

import re
from itertools import pairwise

import pytest
from rich.cells import cell_len
from test_cli_contract import COMMANDS
from typer.testing import CliRunner

from eset2fa.cli import app

# Only `init` creates a store at an explicit --db path (issue 9): each test starts from one.
pytestmark = pytest.mark.usefixtures("env_master_key", "store")


@pytest.fixture
def narrow(monkeypatch):
    """80 columns, as a default terminal (and what rich assumes for a pipe)."""
    monkeypatch.setenv("COLUMNS", "80")


@pytest.fixture
def deep_db(tmp_path, cli):
    """A store whose backups have paths far longer than 80 columns."""
    folder = tmp_path / ("backups-of-the-helpdesk-two-factor-store-" + "x" * 40)
    folder.mkdir()
    assert cli("init", db=folder / "store.db").exit_code == 0  # only init creates it (issue 9)
    return folder / "store.db"


def _lines_holding(text: str, value: str) -> list[str]:
    return [line for line in text.splitlines() if value in line]


def _plain(text: str) -> str:
    """Without rich's style codes (NO_COLOR drops colours, not bold)."""
    return re.sub(r"\x1b\[[0-9;]*m", "", text)


# -- pipes: plain lines, every value whole --------------------------------------------------------


def test_db_backups_in_a_pipe_holds_the_whole_path_and_time(cli, narrow, deep_db):
    made = cli("db", "backup", "--reason", "before upgrade", "--json", db=deep_db).json()
    assert len(made["path"]) > 120
    piped = cli("db", "backups", db=deep_db)
    assert piped.exit_code == 0, piped.stderr
    (listed,) = cli("db", "backups", "--json", db=deep_db).json()
    (row,) = _lines_holding(piped.stdout, made["path"])  # the whole path, on one line
    assert listed["created_at"] in row and "before upgrade" in row and "ok" in row
    assert piped.stdout.splitlines()[0].split() == [
        *("created", "reason", "users", "schema", "status", "path")
    ]
    assert "…" not in piped.stdout and "┃" not in piped.stdout


def test_messages_in_a_pipe_are_not_broken_across_lines(cli, narrow, deep_db):
    made = cli("db", "backup", "--reason", "before upgrade", db=deep_db)
    assert made.exit_code == 0
    (line,) = _lines_holding(made.stdout, "Backup written to")
    assert line.startswith("Backup written to /") and line.endswith("-before-upgrade.db")
    created = cli("init", db=deep_db.with_name("new.db"))  # only init creates one here (issue 9)
    assert _lines_holding(created.stdout + created.stderr, "eset2fa store at")[0].endswith("new.db")


def test_audit_list_in_a_pipe_holds_whole_times_and_details(cli, narrow, deep_db):
    backup = cli("db", "backup", "--json", db=deep_db).json()
    assert cli("user", "add", "alice", db=deep_db).exit_code == 0
    rows = cli("audit", "list", "--json", db=deep_db).json()
    piped = cli("audit", "list", db=deep_db)
    assert piped.exit_code == 0
    lines = piped.stdout.splitlines()
    assert len(lines) == 2 + len(rows)  # header, rule, one line per row
    for row, line in zip(rows, lines[2:], strict=True):
        assert line.startswith(row["at"] + " ")  # the whole ISO time, e.g. 2026-11-26T00:19:15Z
    (backup_line,) = _lines_holding(piped.stdout, "db.backup")
    assert f"path={backup['path']}," in backup_line


def test_outbox_in_a_pipe_holds_the_whole_enrollment_link(cli, narrow, db_path):
    from eset2fa.db import open_store
    from eset2fa.ops.delivery import sms_transport

    assert cli("user", "add", "alice").exit_code == 0
    assert cli("config", "set", "totp.issuer", "ACME Corporation Helpdesk").exit_code == 0
    uri = cli("user", "enable", "alice", "--json").json()["uri"]
    # What `auth login` sends at first login, through the same transport call.
    store = open_store(db_path, create=False)
    try:
        text = f"Two-factor enrollment for alice: open this link with your authenticator app: {uri}"
        sms_transport(store).send_sms("+442079460000", text, user="alice")
    finally:
        store.close()
    piped = cli("outbox")
    assert piped.exit_code == 0
    (line,) = _lines_holding(piped.stdout, "+442079460000")
    assert line.endswith(text) and len(uri) > 80
    (sms,) = cli("outbox", "--json").json()
    assert sms["at"] in line


def test_a_line_break_inside_a_value_stays_on_its_row(cli, narrow):
    assert cli("db", "backup", "--reason", "two\nlines").exit_code == 0
    piped = cli("db", "backups").stdout.splitlines()
    assert len(piped) == 3 and "two\\nlines" in piped[2]


# -- terminals: copyable values whole, whatever the width ------------------------------------------


@pytest.fixture
def terminal(monkeypatch):
    """stdout taken for a terminal of $COLUMNS columns (rich treats TERM=dumb as 80 wide)."""
    monkeypatch.setenv("TTY_COMPATIBLE", "1")
    monkeypatch.setenv("TERM", "xterm")


@pytest.mark.parametrize("columns", [60, 80, 120, 300])
def test_on_a_terminal_backup_paths_and_times_are_never_cut(
    cli, terminal, monkeypatch, deep_db, columns
):
    first = cli("db", "backup", "--reason", "before upgrade", "--json", db=deep_db).json()
    second = cli("db", "backup", "--reason", "nightly", "--json", db=deep_db).json()
    monkeypatch.setenv("COLUMNS", str(columns))
    shown = cli("db", "backups", db=deep_db)
    assert shown.exit_code == 0
    stdout = _plain(shown.stdout)
    for backup in (first, second):
        assert len(_lines_holding(stdout, backup["path"])) == 1
        assert len(_lines_holding(stdout, backup["created_at"])) == 1
    assert "…" not in stdout
    fits = cell_len(first["path"]) + cell_len(first["created_at"]) + 50 < columns
    # A terminal wide enough gets the table; a narrow one a block per backup, a value per line.
    assert ("┃" in stdout) == fits
    if not fits:
        assert _lines_holding(stdout, first["path"])[0].split() == ["path", first["path"]]


def test_on_a_narrow_terminal_table_columns_wrap_but_are_not_cut(cli, terminal, monkeypatch):
    monkeypatch.setenv("COLUMNS", "100")
    assert cli("user", "add", "a-user-with-a-rather-long-name-for-a-console-user").exit_code == 0
    listed = _plain(cli("user", "list").stdout)
    assert "┃" in listed and "…" not in listed
    # The name column is wrapped to fit (a name is not a value to copy), never cut.
    names = "".join(line.split("│")[1].strip() for line in listed.splitlines() if "│" in line)
    assert names.startswith("a-user-with-a-rather-long-name-for-a-console-userAdministrator")


# -- help ------------------------------------------------------------------------------------------

HELP_WIDTH = 80


def _help(path: list[str]) -> list[str]:
    result = CliRunner().invoke(app, [*path, "--help"], env={"COLUMNS": str(HELP_WIDTH)})
    assert result.exit_code == 0
    return [line.rstrip() for line in result.stdout.splitlines()]


def _prose(lines: list[str]) -> list[list[str]]:
    """The description's paragraphs (between `Usage:` and the first panel), without the
    `Example:` block, each a list of its lines."""
    start = next(i for i, line in enumerate(lines) if line.lstrip().startswith("Usage:")) + 1
    end = next((i for i, line in enumerate(lines) if line.startswith("╭")), len(lines))
    paragraphs, current = [], []
    for line in [*lines[start:end], ""]:
        if line.strip():
            current.append(line)
            continue
        if current and not current[0].strip().startswith("Example"):
            paragraphs.append(current)
        current = []
    return paragraphs


@pytest.mark.parametrize("path", [[], *COMMANDS], ids=["eset2fa", *(" ".join(p) for p in COMMANDS)])
def test_help_wraps_cleanly_at_80_columns(path):
    lines = _help(path)
    assert all(cell_len(line) <= HELP_WIDTH for line in lines)
    text_width = HELP_WIDTH - 2  # rich pads the help text by one column on either side
    for paragraph in _prose(lines):
        for line, following in pairwise(paragraph):
            # Wrapped greedily: a line ends early only when the next word would not have fit.
            next_word = following.split()[0]
            assert cell_len(line.strip()) + 1 + cell_len(next_word) > text_width, (
                f"ragged help line {line.strip()!r} before {next_word!r}"
            )


@pytest.mark.parametrize("path", COMMANDS, ids=[" ".join(p) for p in COMMANDS])
def test_help_examples_are_shown_unbroken_at_80_columns(path):
    shown = {line.strip() for line in _help(path)}
    example = _docstring(path).split("Example:", 1)[1]
    for line in example.strip().splitlines():
        assert line.strip() in shown, f"example line wrapped: {line.strip()!r}"


def _docstring(path: list[str]) -> str:
    import typer

    command = typer.main.get_command(app)
    for name in path:
        ctx = command.make_context(name, [], resilient_parsing=True)
        command = command.get_command(ctx, name)
    return command.help or ""
