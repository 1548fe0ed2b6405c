"""The one output helper: data goes to stdout (rich or one JSON document), the rest to stderr.

rich is imported only when something is rendered for a person, so `--json` status checks start fast.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

PLAIN_TABLE_ROWS = 1000  # longer tables are printed as plain columns (see Output.table)
LONG_LIST = 50  # JSON lists longer than this are written one compact item per line


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


class Output:
    def __init__(self, json_mode: bool = False) -> None:
        self.json_mode = json_mode
        self._out = None
        self._err = None

    # -- consoles -----------------------------------------------------------------------------
    @property
    def out(self):
        if self._out is None:
            from rich.console import Console

            self._out = Console(highlight=False, soft_wrap=False)
        return self._out

    @property
    def err(self):
        if self._err is None:
            from rich.console import Console

            self._err = Console(stderr=True, highlight=False)
        return self._err

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

    def message(self, text: str) -> None:
        """A one-line human result (stdout); silent in JSON mode, where the document says it."""
        if not self.json_mode:
            self._print(self.out, text)

    def notice(self, text: str) -> None:
        """Information for a person, never data: always stderr."""
        self._print(self.err, text)

    def warn(self, text: str) -> None:
        self._print(self.err, f"[bold yellow]Warning:[/] {text}")

    def table(
        self,
        columns: Sequence[str],
        rows: Sequence[Sequence[Any]],
        title: str | None = None,
    ) -> None:
        """A rich table; past PLAIN_TABLE_ROWS rows, plain aligned columns instead.

        rich lays out every cell of a table (about 0.6 ms a row): a 100,000-user list would take a
        minute. Long listings are for scrolling and piping anyway, so they get plain text.
        """
        cells = [["" if cell is None else str(cell) for cell in row] for row in rows]
        if len(cells) > PLAIN_TABLE_ROWS:
            self._plain_table(columns, cells, title)
            return
        from rich.table import Table
        from rich.text import Text

        table = Table(title=title, show_lines=False, header_style="bold")
        for column in columns:
            table.add_column(column)
        for row in cells:  # cells are data (paths, names, details): never read as markup
            table.add_row(*(Text(cell) for cell in row))
        self.out.print(table)

    def _plain_table(self, columns: Sequence[str], cells: list[list[str]], title: str | None):
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
        from rich.table import Table
        from rich.text import Text

        table = Table(title=title, show_header=False, box=None, pad_edge=False)
        table.add_column(style="bold")
        table.add_column()
        for key, value in pairs:
            table.add_row(key, Text("" if value is None else str(value)))
        self.out.print(table)

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
        self.err.print(line)

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


def _shorten(text: str) -> str:
    if len(text) <= ERROR_TEXT_LIMIT:
        return text
    half = ERROR_TEXT_LIMIT // 2
    return f"{text[:half]}... ({len(text) - 2 * half} characters left out) ...{text[-half:]}"
