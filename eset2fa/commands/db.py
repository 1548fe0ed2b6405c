"""`eset2fa db ...`: check and migrate the store."""

from __future__ import annotations

import typer

from ..context import invocation

app = typer.Typer(help="Check, migrate, back up and restore the database.", no_args_is_help=True)


@app.command("check")
def check(ctx: typer.Context) -> None:
    """Run SQLite's integrity check and report the schema version and counts (exit 1 if not ok).

    Example:
        eset2fa db check --json
    """
    from ..db.health import check_store

    inv = invocation(ctx)
    report = check_store(inv.store)

    def human() -> None:
        inv.output.fields(
            [
                ("database", report["path"]),
                ("integrity", report["integrity"]),
                (
                    "schema version",
                    f"{report['schema_version']} (latest {report['latest_version']})",
                ),
                ("journal mode", report["journal_mode"]),
                ("file mode", report["file_mode"]),
                ("users", report["users"]),
                (
                    "2FA active / pending",
                    f"{report['states']['active']} / {report['states']['pending']}",
                ),
                ("locked", report["locked"]),
                ("audit rows", report["audit_rows"]),
            ]
        )

    inv.output.result(report, human)
    if not report["ok"]:
        raise typer.Exit(1)


@app.command("migrate")
def migrate(ctx: typer.Context) -> None:
    """Apply pending schema migrations (also done automatically when the store is opened).

    Example:
        eset2fa db migrate
    """
    from ..db.connection import LATEST_VERSION, applied_migrations

    inv = invocation(ctx)
    store = inv.store  # opening applies pending migrations
    applied = applied_migrations(store.conn)
    result = {
        "schema_version": store.schema_version(),
        "latest_version": LATEST_VERSION,
        "migrations": applied,
    }
    inv.output.result(
        result,
        lambda: inv.output.message(
            f"Schema at version {result['schema_version']}: up to date "
            f"({', '.join(m['name'] for m in applied)})"
        ),
    )
