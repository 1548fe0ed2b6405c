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
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from itertools import chain, islice
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


# One encoder for every item of a long list, each written on a line of its own without spaces
# (as SQLite's json_object writes the listings' items, eset2fa.db.users.STATUS_JSON): json.dumps
# with these arguments builds a new encoder per call, which at 1,000,000 streamed rows costs more
# than the encoding.
_encode_compact = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), default=str).encode


def _dumps(value: Any, indent: int | None = None) -> str:
    if indent is None:
        return _encode_compact(value)
    return json.dumps(value, indent=indent, ensure_ascii=False, default=str)


class Stream:
    """A list whose items come from an iterator (a database cursor): `write_json` writes them as
    they come, so a listing of 1,000,000 rows never holds them all. Iterable once.

    `encoded`: the items are already JSON texts, one compact object each (no spaces between
    values, as `_encode_compact` writes), written as they are. A listing of 1,000,000 rows is
    then close to the query's own cost: building a dict and encoding it in Python cost twice the
    query itself.
    """

    __slots__ = ("items", "encoded")

    def __init__(self, items: Iterable[Any], *, encoded: bool = False) -> None:
        self.items = iter(items)
        self.encoded = encoded


class _Peeked:
    """A Stream with its first items read: enough to choose the layout before anything is
    written (a stream of at most LONG_LIST items becomes a plain list)."""

    __slots__ = ("head", "rest", "encoded")

    def __init__(self, head: list, rest: Iterator[Any], encoded: bool) -> None:
        self.head, self.rest, self.encoded = head, rest, encoded


def _peek(value: Any) -> Any:
    if not isinstance(value, Stream):
        return value
    head = list(islice(value.items, LONG_LIST + 1))
    if len(head) > LONG_LIST:
        return _Peeked(head, value.items, value.encoded)
    # A short list is pretty-printed like any other value.
    return [json.loads(item) for item in head] if value.encoded else head


def _is_long(value: Any) -> bool:
    return isinstance(value, _Peeked) or (isinstance(value, list) and len(value) > LONG_LIST)


def write_json(value: Any, out, depth: int = 0) -> None:
    """One JSON document, pretty for small results and fast for long ones.

    json's C encoder only runs without `indent`; the pure-Python one needs ~30 us per user row.
    So a long list is streamed one compact item per line (still one document, still greppable),
    and never built as one string (a 100,000-user bulk result would hold ~75 MB of chunks). A
    `Stream` (at the top, or as a value of the top-level object) is written the same way as its
    items are read: the document is the same as for the list it yields.
    """
    if isinstance(value, dict) and any(isinstance(item, Stream) for item in value.values()):
        value = {key: _peek(item) for key, item in value.items()}
    else:
        value = _peek(value)
    pad = "  " * (depth + 1)
    if _is_long(value):
        out.write("[\n" + pad)
        if isinstance(value, _Peeked):
            items = chain(value.head, value.rest)
            texts = items if value.encoded else map(_encode_compact, items)
        else:
            texts = map(_encode_compact, value)
        separator = ",\n" + pad
        batch = list(islice(texts, 1000))  # one write per batch: a call per row costs ~10 %
        out.write(separator.join(batch))
        while True:
            batch = list(islice(texts, 1000))
            if not batch:
                break
            out.write(separator + separator.join(batch))
        out.write("\n" + "  " * depth + "]")
    elif isinstance(value, dict) and any(_is_long(item) for item in value.values()):
        out.write("{\n")
        for index, (key, item) in enumerate(value.items()):
            out.write((",\n" if index else "") + pad + _dumps(key) + ": ")
            write_json(item, out, depth + 1)
        out.write("\n" + "  " * depth + "}")
    else:
        text = _dumps(value, indent=2)
        out.write(text.replace("\n", "\n" + "  " * depth) if depth else text)


@contextmanager
def _stdout_may_close() -> Iterator[None]:
    """A reader that stops early (`eset2fa user list | head`) ends the output quietly: no
    traceback, exit status 1 (as click reports a broken pipe)."""
    try:
        yield
        sys.stdout.flush()
    except BrokenPipeError:
        # Python flushes stdout again at exit, which would fail the same way and print a
        # warning: point the descriptor at /dev/null first.
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
        except (OSError, ValueError, AttributeError):  # no real descriptor (a test's buffer)
            pass
        raise SystemExit(1) from None


class Rows:
    """Table rows from a source that can be read again (a query): `Output.table` reads it twice
    for a long plain table (the column widths, then the lines), so 1,000,000 rows are never held.
    `source()` gives a fresh iterable of rows each time."""

    __slots__ = ("source",)

    def __init__(self, source: Callable[[], Iterable[Sequence[Any]]]) -> None:
        self.source = source


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
            with _stdout_may_close():
                write_json(data, sys.stdout)
                sys.stdout.write("\n")
        elif human is not None:
            with _stdout_may_close():
                human()
        else:
            self.out.print_json(data=data)

    @staticmethod
    def lines(texts: Iterable[str]) -> None:
        """Data as plain lines on stdout (URIs, paths), written a batch at a time as `texts`
        yields them: never wrapped, cut or held. Silent on nothing."""
        write, texts = sys.stdout.write, iter(texts)
        while batch := list(islice(texts, 1000)):
            write("\n".join(batch) + "\n")
        sys.stdout.flush()

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
            re.fullmatch(_PLAIN_SAFE, text)
            and "[" not in (plain := re.sub(_STYLE_TAG, "", text))
            and _write_plain(stream, [plain])
        ):
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
        rows: Sequence[Sequence[Any]] | Rows,
        title: str | None = None,
        *,
        copyable: Sequence[str] = (),
    ) -> int:
        """Rows under column headers; `copyable` names the columns whose values are copied
        (paths, links, times), which are never cut or broken. Returns the number of rows.

        In a pipe or a file, and past PLAIN_TABLE_ROWS rows, plain aligned columns: rich lays out
        every cell of a table (about 0.6 ms a row), so a 100,000-user list would take a minute,
        and boxes get in the way of grep and awk. On a terminal, a rich table whose copyable
        columns keep their full width (other columns wrap), or one block per row when they
        cannot fit. `rows` may be `Rows` (a query to read): a long plain table is then written
        as it is read.
        """
        if self._out_is_terminal is None:
            self._out_is_terminal = is_terminal(sys.stdout)
        if isinstance(rows, Rows):
            if not self._out_is_terminal:
                return self._plain_table_streamed(columns, rows, title)
            head = list(islice(rows.source(), PLAIN_TABLE_ROWS + 1))
            if len(head) > PLAIN_TABLE_ROWS:
                return self._plain_table_streamed(columns, rows, title)
            rows = head
        cells = [["" if cell is None else str(cell) for cell in row] for row in rows]
        if len(cells) > PLAIN_TABLE_ROWS or not self._out_is_terminal:
            self._plain_table(columns, cells, title)
            return len(cells)
        keep = [column in copyable for column in columns]
        if not self._fits(columns, cells, keep):
            self._records(columns, cells, title)
            return len(cells)
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
        return len(cells)

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

    def _plain_table_streamed(self, columns: Sequence[str], rows: Rows, title: str | None) -> int:
        """`_plain_table` in two reads of `rows`: the widths, then the lines, a batch at a time."""
        widths = [len(column) for column in columns]
        for row in rows.source():
            for index, cell in enumerate(row):
                size = len(_plain_cell(cell))
                if size > widths[index]:
                    widths[index] = size
        write = sys.stdout.write
        head = [title] if title else []
        for row in (list(columns), ["-" * width for width in widths]):
            head.append("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
        write("\n".join(head) + "\n")
        count = 0
        batch: list[str] = []
        for row in rows.source():
            batch.append(
                "  ".join(
                    _plain_cell(c).ljust(w) for c, w in zip(row, widths, strict=True)
                ).rstrip()
            )
            if len(batch) == 1000:
                write("\n".join(batch) + "\n")
                count += len(batch)
                batch.clear()
        if batch:
            write("\n".join(batch) + "\n")
            count += len(batch)
        sys.stdout.flush()
        return count

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
        # In a pipe, as rich would print it (the text is escaped, so brackets stay as they are),
        # without loading rich: scripts meet errors (a locked user) as often as results.
        plain = [f"Error: {payload['message']}"]
        if payload.get("hint"):
            plain.append(f"Hint: {payload['hint']}")
        if all(re.fullmatch(_PLAIN_SAFE, line) for line in plain) and _write_plain(
            sys.stderr, plain
        ):
            return
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

        # Redrawn at each advance (a batch of users), not by rich's refresh thread: with no other
        # thread running, `user import` may fork its parser (twofactor/parse_ahead.py).
        with Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeRemainingColumn(),
            console=self.err,
            transient=True,
            auto_refresh=False,
        ) as bar:
            task = bar.add_task(description, total=total)

            def advance(n: int) -> None:
                bar.advance(task, n)
                bar.refresh()

            yield advance


ERROR_TEXT_LIMIT = 500


def _cell_width(text: str) -> int:
    from rich.cells import cell_len

    return max((cell_len(line) for line in text.splitlines()), default=0)


def _plain_cell(cell: Any) -> str:
    return "" if cell is None else _one_line(str(cell))


def _one_line(text: str) -> str:
    if "\n" not in text and "\r" not in text and "\t" not in text:
        return text
    return text.replace("\r", "\\r").replace("\n", "\\n").replace("\t", "\\t")


def _write_plain(stream, lines: list[str]) -> bool:
    """Write `lines` as they are where rich would print them without styles (not a terminal, no
    FORCE_COLOR); False, and nothing written, elsewhere. The caller checks that each line is
    _PLAIN_SAFE: text rich would print unchanged."""
    if is_terminal(stream) or os.environ.get("FORCE_COLOR"):
        return False
    stream.write("".join(line + "\n" for line in lines))
    stream.flush()
    return True


def _escape(text: str) -> str:
    from rich.markup import escape

    return escape(text)


def _shorten(text: str) -> str:
    if len(text) <= ERROR_TEXT_LIMIT:
        return text
    half = ERROR_TEXT_LIMIT // 2
    return f"{text[:half]}... ({len(text) - 2 * half} characters left out) ...{text[-half:]}"
