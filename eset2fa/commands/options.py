"""Options shared by several commands, each defined once, and the bulk-result rendering.

A command declares `group: str = group_option("Every user of this group.")`; the flag names,
short forms, metavars and bounds live here, only the help sentence is the command's own (sqlite-
utils' shared option decorators do the same). Typer reads options from parameter defaults, so
these are factories: each call gives a new `typer.Option` for one parameter.
"""

import sys
from collections.abc import Iterator
from pathlib import Path

import typer

from eset2fa.commands.invocation import NUMBER_LIMIT


def complete_user_names(ctx: typer.Context, incomplete: str) -> list[str]:
    """Shell completion of a user NAME: up to 50 names from the store that begin with what was
    typed, read-only. The store is the one --db (or ESET2FA_DB) names on the line being
    completed, else the default; a missing store is not created, and any problem gives no
    suggestions rather than an error in the middle of someone's command line."""
    try:
        from eset2fa.db.users import names_for_completion

        db = ctx.find_root().params.get("db")
        if db is None:
            from eset2fa.paths import default_db_path

            db = default_db_path()
        from eset2fa.db.location import parse

        return names_for_completion(parse(str(db)), incomplete)  # a file or a PostgreSQL URL
    except Exception:  # completion must never fail: no suggestions instead
        return []


def user_name_argument(help: str = "The user's name.", *, metavar: str | None = None):
    """A required user NAME argument whose TAB completes from the store's user names."""
    return typer.Argument(..., help=help, metavar=metavar, autocompletion=complete_user_names)


def user_names_argument(help: str):
    """Optional user NAMEs (bulk commands), completed from the store's user names."""
    return typer.Argument(None, help=help, autocompletion=complete_user_names)


def group_option(help: str):
    return typer.Option(None, "--group", "-g", metavar="GROUP", help=help)


def all_option():
    return typer.Option(False, "--all", help="Every user.")


def from_file_option(help: str):
    return typer.Option(None, "--from-file", "-f", metavar="FILE|-", help=help)


def limit_option(default: int | None, help: str, *, minimum: int = 0):
    return typer.Option(default, "--limit", min=minimum, max=NUMBER_LIMIT, help=help)


def password_stdin_option(help: str):
    return typer.Option(False, "--password-stdin", help=help)


def write_user_option(help: str = "Write over this user."):
    return typer.Option(None, "--write", metavar="USER", help=help)


def write_group_option(help: str):
    return typer.Option(None, "--write-group", metavar="GROUP", help=help)


def timeout_option():
    """--timeout, shared by `push send` and `auth push`."""
    return typer.Option(
        None,
        "--timeout",
        min=1,
        max=NUMBER_LIMIT,
        help="Seconds to wait (default: push.timeout_seconds, 150).",
    )


def qr_option(help: str):
    """--qr/--no-qr: unset (None) means "on a terminal"."""
    return typer.Option(None, "--qr/--no-qr", help=help, show_default=False)


def read_lines(source: str) -> list[str]:
    """The lines of a --from-file argument: a path, or '-' for standard input."""
    from eset2fa.errors import NotFound, UsageError

    if source == "-":
        return sys.stdin.read().splitlines() if sys.stdin is not None else []  # None: closed
    try:
        return Path(source).read_text(encoding="utf-8-sig").splitlines()
    except FileNotFoundError:
        raise NotFound(f"No file {source!r}.", "Give a path to a file, or '-' for stdin.") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"Cannot read {source!r}: {exc}.") from None


def lines_of(source: str) -> tuple[Iterator[str], int]:
    """The lines of a --from-file argument read as they are used (1,000,000 lines in flat
    memory), and how many there are (a progress bar's total; 0 for standard input, which can be
    read only once)."""
    from eset2fa.errors import NotFound, UsageError

    if source == "-":
        return (iter(sys.stdin) if sys.stdin is not None else iter(())), 0
    path = Path(source)
    try:
        with path.open("rb") as counting:
            total = sum(chunk.count(b"\n") for chunk in iter(lambda: counting.read(1 << 20), b""))
        handle = path.open(encoding="utf-8-sig")
    except FileNotFoundError:
        raise NotFound(f"No file {source!r}.", "Give a path to a file, or '-' for stdin.") from None
    except OSError as exc:
        raise UsageError(f"Cannot read {source!r}: {exc}.") from None

    def lines() -> Iterator[str]:
        with handle:
            try:
                yield from handle
            except UnicodeDecodeError as exc:
                raise UsageError(f"Cannot read {source!r}: {exc}.") from None

    return lines(), total


SHOWN_PROBLEMS = 50  # rows of a bulk result's problem table; --json has them all


def render_bulk(
    inv,
    results,
    counts: dict[str, int],
    *,
    ok: tuple[str, ...],
    columns: tuple[str, ...],
    title: str,
    summary: str,
    empty: str,
    listed: tuple[str, ...] = (),
    extra: dict | None = None,
) -> None:
    """The result of a bulk command: one JSON document, or the rows that did not go through (at
    most SHOWN_PROBLEMS) and one line of counts, `enabled: 2, already enabled: 1, not found: 1`
    (the results in `ok` first). Exit 1 when any row's result is not in `ok`; a re-run that
    finds every user already done is not a failure, so `ok` includes the "already" results.

    `results`: a list of dicts, or the core's Outcomes (1,000,000 results read back from a
    temporary file, streamed into the document). `listed`: results that are not failures but
    are shown with the problems (an import's skipped HOTP entries). `extra`: more keys of the
    JSON document (the enrollment SMS sent)."""
    from eset2fa.output import Stream
    from eset2fa.twofactor.outcomes import Outcomes

    def human() -> None:
        problems, more = [], 0
        for r in results:
            if r["result"] not in ok or r["result"] in listed:
                if len(problems) < SHOWN_PROBLEMS:
                    problems.append(r)
                else:
                    more += 1
        if problems:
            inv.output.table(
                list(columns),
                [tuple(r[c] for c in columns) for r in problems],
                title=title,
            )
            if more:
                inv.output.message(f"... and {more} more (use --json for all)")
        rank = {result: index for index, result in enumerate(ok)}
        order = sorted(counts, key=lambda result: (rank.get(result, len(ok)), result))
        counted = ", ".join(f"{result.replace('_', ' ')}: {counts[result]}" for result in order)
        inv.output.message(counted or f"{summary}: {empty}")

    streamed = Stream(results.texts(), encoded=True) if isinstance(results, Outcomes) else results
    inv.output.result({"counts": counts, "results": streamed, **(extra or {})}, human)
    if any(result not in ok for result in counts):
        raise typer.Exit(1)
