"""`eset2fa doctor`: check the database, the key and the configured endpoints."""

import typer

from eset2fa.commands.invocation import invocation


def doctor(ctx: typer.Context) -> None:
    """Check the database, the encryption key and direct reachability of each endpoint.

    Endpoints (the SMS gateway, the ntfy server) are reached directly, never through a proxy,
    as the transports reach them. Exit code 1 if any check failed; warnings do not fail.

    Example:
        eset2fa doctor
        eset2fa doctor --json
    """
    from eset2fa.ops.diagnostics import run_checks

    inv = invocation(ctx)
    report = run_checks(inv.db_path)
    inv.output.result(
        report,
        lambda: inv.output.table(
            ["check", "status", "detail"],
            [(c["check"], c["status"], c["detail"]) for c in report["checks"]],
        ),
    )
    if not report["ok"]:
        raise typer.Exit(1)
