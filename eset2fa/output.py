"""The one output helper: data goes to stdout (rich or one JSON document), the rest to stderr.

rich is imported only when something is rendered for a person, so `--json` status checks start fast.

Nothing an admin may copy is ever cut or broken by the layout:
- messages, notices and errors are printed as single lines that rich never wraps (the terminal
  wraps them on screen, and copying gives the line back whole, a path included);
- in a pipe or a file, tables are plain aligned columns as wide as their values (grep, cut, awk);
- on a terminal, columns of values to copy (`copyable`: paths, links, times) keep their full
  width; when the table cannot fit them it is shown as one `column  value` block per row
  (psql's expanded display), each value on its own line.
"""

from __future__ import annotations

import json
import os
import re
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

# What rich renders as the text itself when it prints without styles: style tags of plain colour
# and weight names only; no escapes, tabs (expanded), emoji codes (`:name:`) or line breaks.
# Compiled at first use (`re` compiles in Python: every start-up would pay for it).
_STYLE = r"(?:bold|dim|italic|underline|red|green|yellow|blue|magenta|cyan|white)"
_STYLE_TAG = rf"\[(?:/|/?{_STYLE}(?: {_STYLE})*)\]"
_PLAIN_SAFE = r"(?:(?!:\S*?:)[^\\\t\n\r])*"
PLAIN_TABLE_ROWS = 1000  # longer tables are printed as plain columns (see Output.table)
LONG_LIST = 50  # JSON lists longer than this are written one compact item per line
# On a terminal, the narrowest a wrapped (not copyable) table column may become before the
# table is shown as one block per row instead.
MIN_WRAPPED_COLUMN = 12


def _dumps(value: Any, indent: int | None = None) -> str:
    return json.dumps(value, indent=indent, ensure_ascii=False, default=str)


def write_json(value: Any, out, depth: int = 0) -> None:
    """One JSON document, pretty for small results and fast for long ones.

    json's C encoder only runs without `indent`; the pure-Python one needs ~30 us per user row.
    So a long list is streamed one compact item per line (still one document, still greppable),
    and never built as one string (a 100,000-user bulk result would hold ~75 MB of chunks).
    """
    pad = "  " * (depth + 1)
    if isinstance(value, list) and len(value) > LONG_LIST:
        out.write("[\n")
        for index, item in enumerate(value):
            out.write((",\n" if index else "") + pad + _dumps(item))
        out.write("\n" + "  " * depth + "]")
    elif isinstance(value, dict) and any(
        isinstance(item, list) and len(item) > LONG_LIST for item in value.values()
    ):
        out.write("{\n")
        for index, (key, item) in enumerate(value.items()):
            out.write((",\n" if index else "") + pad + _dumps(key) + ": ")
            write_json(item, out, depth + 1)
        out.write("\n" + "  " * depth + "}")
    else:
        text = _dumps(value, indent=2)
        out.write(text.replace("\n", "\n" + "  " * depth) if depth else text)


def is_terminal(stream) -> bool:
    """Whether `stream` is a terminal that a person reads, which decides the layout.

    rich's own switch TTY_COMPATIBLE=1|0 overrides (for tests, and terminals that are not ttys);
    FORCE_COLOR only asks for colour and does not make a pipe 80 columns wide.
    """
    forced = os.environ.get("TTY_COMPATIBLE", "")
    if forced in ("0", "1"):
        return forced == "1"
    try:
        return stream is not None and stream.isatty()
    except (AttributeError, ValueError):  # no isatty, or a closed stream
        return False


class Output:
    def __init__(self, json_mode: bool = False) -> None:
        self.json_mode = json_mode
        self._out = None
        self._err = None
        self._out_is_terminal: bool | None = None

    # -- consoles -----------------------------------------------------------------------------
    @property
    def out(self):
        if self._out is None:
            self._out = self._console(stderr=False)
        return self._out

    @property
    def err(self):
        if self._err is None:
            self._err = self._console(stderr=True)
        return self._err

    @staticmethod
    def _console(*, stderr: bool):
        from rich.console import Console

        # soft_wrap: rich never inserts line breaks into printed text (a message carrying a path
        # stays one line); tables are laid out by the methods below.
        return Console(stderr=stderr, highlight=False, soft_wrap=True)

    # -- results ------------------------------------------------------------------------------
    def result(self, data: Any, human: Callable[[], None] | None = None) -> None:
        """Print a command's result: the JSON document, or the human rendering."""
        if self.json_mode:
            write_json(data, sys.stdout)
            sys.stdout.write("\n")
            sys.stdout.flush()
        elif human is not None:
            human()
        else:
            self.out.print_json(data=data)

    @staticmethod
    def _print(console, text: str) -> None:
        # Messages are rich markup with paths and names interpolated; a path such as `a[/]b`
        # is not valid markup. Print it plainly rather than fail after the work is done (the
        # first-use notice carries the generated Administrator password).
        from rich.errors import MarkupError

        try:
            console.print(text)
        except MarkupError:
            console.print(text, markup=False)

    def _line(self, stderr: bool, text: str) -> None:
        """One message line. Where rich would print it without styles (not a terminal, no
        FORCE_COLOR) and it holds nothing but simple style tags, it is written here: the same
        text, without loading rich.console (~30 ms of `auth verify`'s start-up)."""
        stream = sys.stderr if stderr else sys.stdout
        if (
            not is_terminal(stream)
            and not os.environ.get("FORCE_COLOR")
            and re.fullmatch(_PLAIN_SAFE, text)
            and "[" not in (plain := re.sub(_STYLE_TAG, "", text))
        ):
            stream.write(plain + "\n")
            stream.flush()
            return
        self._print(self.err if stderr else self.out, text)

    def message(self, text: str) -> None:
        """A one-line human result (stdout); silent in JSON mode, where the document says it."""
        if not self.json_mode:
            self._line(False, text)

    def notice(self, text: str) -> None:
        """Information for a person, never data: always stderr."""
        self._line(True, text)

    def warn(self, text: str) -> None:
        self._line(True, f"[bold yellow]Warning:[/] {text}")

    def table(
        self,
        columns: Sequence[str],
        rows: Sequence[Sequence[Any]],
        title: str | None = None,
        *,
        copyable: Sequence[str] = (),
    ) -> None:
        """Rows under column headers; `copyable` names the columns whose values are copied
        (paths, links, times), which are never cut or broken.

        In a pipe or a file, and past PLAIN_TABLE_ROWS rows, plain aligned columns: rich lays out
        every cell of a table (about 0.6 ms a row), so a 100,000-user list would take a minute,
        and boxes get in the way of grep and awk. On a terminal, a rich table whose copyable
        columns keep their full width (other columns wrap), or one block per row when they
        cannot fit.
        """
        cells = [["" if cell is None else str(cell) for cell in row] for row in rows]
        if self._out_is_terminal is None:
            self._out_is_terminal = is_terminal(sys.stdout)
        if len(cells) > PLAIN_TABLE_ROWS or not self._out_is_terminal:
            self._plain_table(columns, cells, title)
            return
        keep = [column in copyable for column in columns]
        if not self._fits(columns, cells, keep):
            self._records(columns, cells, title)
            return
        from rich.table import Table
        from rich.text import Text

        table = Table(title=title, show_lines=False, header_style="bold")
        for index, column in enumerate(columns):
            if keep[index]:
                full = max(_cell_width(c) for c in [column, *(row[index] for row in cells)])
                table.add_column(column, no_wrap=True, min_width=full)
            else:
                table.add_column(column, overflow="fold")  # wrapped, never cut with "…"
        for row in cells:  # cells are data (paths, names, details): never read as markup
            table.add_row(*(Text(cell) for cell in row))
        self.out.print(table, crop=False)

    def _fits(self, columns: Sequence[str], cells: list[list[str]], keep: list[bool]) -> bool:
        """Whether a rich table fits the terminal with the copyable columns at full width and
        every other column at its full width or MIN_WRAPPED_COLUMN (its header, if wider)."""
        need = 3 * len(columns) + 1  # the default box: a border and two spaces of padding each
        for index, column in enumerate(columns):
            full = max(_cell_width(value) for value in [column, *(row[index] for row in cells)])
            if keep[index]:
                need += full
            else:
                need += min(full, max(_cell_width(column), MIN_WRAPPED_COLUMN))
        return need <= self.out.width

    def _records(self, columns: Sequence[str], cells: list[list[str]], title: str | None):
        """One `column  value` block per row, a blank line between rows (psql's expanded
        display): every value starts its own line and is printed whole."""
        if title:
            self._print(self.out, f"[bold]{_escape(title)}[/]")
        for number, row in enumerate(cells):
            if number:
                self.out.print()
            self.fields(list(zip(columns, row, strict=True)))

    def _plain_table(self, columns: Sequence[str], cells: list[list[str]], title: str | None):
        # One line per row whatever a value holds: line breaks and tabs inside are shown escaped.
        cells = [[_one_line(cell) for cell in row] for row in cells]
        widths = [len(column) for column in columns]
        for row in cells:
            for index, cell in enumerate(row):
                if len(cell) > widths[index]:
                    widths[index] = len(cell)
        lines = [title] if title else []
        for row in [list(columns), ["-" * width for width in widths], *cells]:
            lines.append("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
        sys.stdout.write("\n".join(lines) + "\n")
        sys.stdout.flush()

    def fields(self, pairs: Sequence[tuple[str, Any]], title: str | None = None) -> None:
        """`name  value` lines, names aligned; each value printed whole on its own line."""
        from rich.text import Text

        width = max((len(key) for key, _value in pairs), default=0)
        if title:
            self._print(self.out, f"[bold]{_escape(title)}[/]")
        for key, value in pairs:
            # The value is data: a Text, never read as markup.
            text = Text.assemble(
                (key.ljust(width), "bold"), "  ", "" if value is None else str(value)
            )
            self.out.print(text, crop=False)

    def error(self, payload: dict) -> None:
        """An error: one line and a hint on stderr; with --json also the document on stdout."""
        # Messages quote what was typed: a 100 kB argument must not become a 100 kB error.
        payload = {k: _shorten(v) if isinstance(v, str) else v for k, v in payload.items()}
        if self.json_mode:
            sys.stdout.write(json.dumps({"error": payload}, indent=2) + "\n")
            sys.stdout.flush()
        from rich.markup import escape

        line = f"[bold red]Error:[/] {escape(payload['message'])}"
        if payload.get("hint"):
            line += f"\n[dim]Hint:[/] {escape(payload['hint'])}"
        self._print(self.err, line)

    # -- progress -----------------------------------------------------------------------------
    @contextmanager
    def progress(self, total: int, description: str) -> Iterator[Callable[[int], None]]:
        """A progress bar on stderr for long work, shown only when stderr is a terminal."""
        if total < 2000 or not sys.stderr.isatty():
            yield lambda _n: None
            return
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeRemainingColumn,
        )

        with Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeRemainingColumn(),
            console=self.err,
            transient=True,
        ) as bar:
            task = bar.add_task(description, total=total)
            yield lambda n: bar.advance(task, n)


ERROR_TEXT_LIMIT = 500


def _cell_width(text: str) -> int:
    from rich.cells import cell_len

    return max((cell_len(line) for line in text.splitlines()), default=0)


def _one_line(text: str) -> str:
    if "\n" not in text and "\r" not in text and "\t" not in text:
        return text
    return text.replace("\r", "\\r").replace("\n", "\\n").replace("\t", "\\t")


def _escape(text: str) -> str:
    from rich.markup import escape

    return escape(text)


def _shorten(text: str) -> str:
    if len(text) <= ERROR_TEXT_LIMIT:
        return text
    half = ERROR_TEXT_LIMIT // 2
    return f"{text[:half]}... ({len(text) - 2 * half} characters left out) ...{text[-half:]}"
