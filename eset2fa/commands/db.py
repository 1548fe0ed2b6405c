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


@app.command("rekey")
def rekey(ctx: typer.Context) -> None:
    """Re-encrypt every stored secret with a new encryption key, in one transaction.

    The new key replaces the old one where it lived: the key file (replaced atomically) or the
    OS keyring. If the key comes from ESET2FA_KEY, the new key is printed once on stderr: update
    the variable before the next command. Backups taken before still need the OLD key.
    Asks first unless --yes.

    Example:
        eset2fa db backup && eset2fa db rekey --yes
    """
    from ..rekey import rekey as rekey_store

    inv = invocation(ctx)
    actor = inv.actor
    store = inv.store
    inv.confirm("Re-encrypt all secrets with a new encryption key?")
    report = rekey_store(store, actor)
    if report.new_key_for_env:
        inv.output.notice(
            "New key (shown once; set it before the next command):\n"
            f"ESET2FA_KEY={report.new_key_for_env}"
        )
    result = report.to_dict()
    inv.output.result(
        result,
        lambda: inv.output.message(
            f"Re-encrypted {result['users']} user secret(s) and {result['settings']} setting(s);"
            f" key {result['old_fingerprint']} -> {result['new_fingerprint']}"
            f" ({result['key_source']})"
        ),
    )
