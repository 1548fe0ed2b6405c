"""`eset2fa audit ...`: read and verify the audit log."""

import re
from datetime import timedelta

import typer

from eset2fa.commands.invocation import invocation
from eset2fa.commands.options import limit_option

app = typer.Typer(help="Read and verify the audit log.", no_args_is_help=True)

_RELATIVE = re.compile(r"(\d+)\s*([smhdw])")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_since(text: str) -> str:
    """`30m`, `24h`, `7d` before now, or an ISO date/time; returns the stored time format."""
    from datetime import datetime

    from eset2fa.clock import now, to_iso
    from eset2fa.errors import UsageError

    match = _RELATIVE.fullmatch(text.strip())
    if match:
        try:
            return to_iso(now() - timedelta(**{_UNITS[match[2]]: int(match[1])}))
        except OverflowError:  # e.g. 99999999999999d: before year 1
            raise UsageError(
                f"--since {text!r} reaches back too far.", "Give a date, e.g. 2026-01-01."
            ) from None
    try:
        moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise UsageError(
            f"Cannot read --since {text!r}.",
            "Use a duration like 30m, 24h, 7d, or a date like 2026-11-01.",
        ) from None
    if moment.tzinfo is None:
        from datetime import UTC

        moment = moment.replace(tzinfo=UTC)
    return to_iso(moment)


@app.command("list")
def list_(
    ctx: typer.Context,
    user: str = typer.Option(
        None, "--user", "-u", help="Rows where this user acted or was acted on."
    ),
    since: str = typer.Option(None, "--since", help="Only rows since: 30m, 24h, 7d, or a date."),
    action: str = typer.Option(None, "--action", help="Only this action (or prefix, e.g. user)."),
    limit: int = limit_option(100, "The newest N rows; 0 for all."),
) -> None:
    """Show audit rows, oldest first: time, actor, action, target, result.

    Example:
        eset2fa audit list --user alice --since 7d
        eset2fa audit list --action auth --json
    """
    from eset2fa.ops import audit_chain
    from eset2fa.output import Rows, Stream

    inv = invocation(ctx)
    since_at = parse_since(since) if since else None

    def events(as_json: bool = False):
        return audit_chain.list_events(
            inv.store,
            user=user,
            since=since_at,
            action=action,
            limit=limit or None,
            as_json=as_json,
        )

    def human() -> None:
        inv.output.table(
            ["time", "actor", "action", "target", "result", "details"],
            Rows(
                lambda: (
                    (
                        r["at"],
                        r["actor"],
                        r["action"],
                        r["target"],
                        r["result"],
                        ", ".join(f"{k}={v}" for k, v in r["details"].items()),
                    )
                    for r in events()
                )
            ),
            copyable=("time",),
        )

    # Streamed: written as the query yields the rows (--limit 0 on a log of millions of rows).
    inv.output.result(Stream(events(as_json=True), encoded=True), human)


@app.command("verify")
def verify(ctx: typer.Context) -> None:
    """Check the audit log's keyed hash chain; exit 1 if a row was edited, inserted or removed.

    Each row's HMAC is keyed from the store's encryption key (needed here, exit 9 without it),
    so a change is detected even if whoever made it re-computed the chain without the key. Not
    detectable: the newest rows removed (the log cut short at its end), and changes by someone
    who holds the key.

    Example:
        eset2fa audit verify --json
    """
    from eset2fa.ops import audit_chain

    inv = invocation(ctx)
    report = audit_chain.verify_chain(inv.store)

    def human() -> None:
        if report["ok"]:
            inv.output.message(
                f"Audit chain intact ({report['rows_checked']} rows"
                + (", keyed with this store's key)" if report["keyed"] else ", not keyed yet)")
            )
        elif report["broken_before_keyed"]:
            inv.output.message(
                f"[bold red]Audit chain broken[/] at row {report['first_bad_id']}: it was already "
                "broken when the chain was keyed"
            )
        else:
            inv.output.message(
                f"[bold red]Audit chain broken[/] at row {report['first_bad_id']} "
                f"({report['rows_checked']} rows before it are intact)"
            )
        for upgrade in report["keyed_from"]:
            inv.output.message(
                f"The {upgrade['rows']} rows before row {upgrade['id']} were written before the "
                f"chain was keyed; they were re-keyed as found on {upgrade['at']}."
            )
        inv.output.message(f"Detects: {report['detects']}.")
        inv.output.message(f"Cannot detect: {report['cannot_detect']}.")

    inv.output.result(report, human)
    if not report["ok"]:
        raise typer.Exit(1)
