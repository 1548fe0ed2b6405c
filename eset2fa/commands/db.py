"""`eset2fa db ...`: check, migrate, back up and restore the store."""

from pathlib import Path

import typer

from eset2fa.commands.invocation import invocation
from eset2fa.errors import UsageError

app = typer.Typer(help="Check, migrate, back up and restore the database.", no_args_is_help=True)


@app.command("check")
def check(ctx: typer.Context) -> None:
    """Run SQLite's integrity check and report the schema version and counts (exit 1 if not ok).

    Example:
        eset2fa db check --json
    """
    from eset2fa.db.health import check_store

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
    from eset2fa.db.health import schema_report

    inv = invocation(ctx)
    result = schema_report(inv.store)  # opening the store applied pending migrations
    applied = result["migrations"]
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

    The new key is stored under a new key id where the old one lived (the key file, or the OS
    keyring) before the switch, and the old key is removed after it, so a crash at any moment
    leaves a key that opens the store. If the key comes from ESET2FA_KEY, the new key is printed
    once on stderr: update the variable when the command has succeeded. Backups taken before
    still need the OLD key. Asks first unless --yes.

    Example:
        eset2fa db backup && eset2fa db rekey --yes
    """
    from eset2fa.ops.key_rotation import rekey as rekey_store

    inv = invocation(ctx)
    actor = inv.actor
    store = inv.store
    inv.confirm("Re-encrypt all secrets with a new encryption key?")

    def announce(new_key: str) -> None:
        # Printed just before the commit: a kill after it still leaves the key on the screen.
        inv.output.notice(
            "New key (shown once; the store needs it once this command reports success, "
            "until then the old one):\n"
            f"ESET2FA_KEY={new_key}"
        )

    report = rekey_store(store, actor, announce_env_key=announce)
    result = report.to_dict()
    inv.output.result(
        result,
        lambda: inv.output.message(
            f"Re-encrypted {result['users']} user secret(s) and {result['settings']} setting(s);"
            f" key {result['old_fingerprint']} -> {result['new_fingerprint']}"
            f" ({result['key_source']}"
            + (f", key id {result['key_id']})" if result["key_id"] else ")")
        ),
    )


@app.command("backup")
def backup(
    ctx: typer.Context,
    to: Path = typer.Option(
        None,
        "--to",
        metavar="PATH",
        help="Write the backup to this new file or into this directory (never pruned; "
        "Administrator or local operator only).",
    ),
    reason: str = typer.Option("manual", "--reason", help="Why: recorded in the manifest."),
    full_check: bool = typer.Option(
        False,
        "--full-check",
        help="Check the copy with the full integrity_check (index contents too; seconds on big "
        "stores) instead of quick_check. Restore runs it in any case.",
    ),
    quick_check: bool = typer.Option(
        False, "--quick-check", hidden=True, help="The default now (kept for scripts)."
    ),
) -> None:
    """Take a verified, consistent backup while other processes may keep writing.

    The copy uses SQLite's online backup API, is written under a temporary name, fsynced,
    checked with quick_check (every page and b-tree; --full-check: integrity_check) and renamed
    into place with mode 0600. `db restore` and `db backups --verify` run the full
    integrity_check. A manifest
    (`<backup>.json`: time, reason, schema version, key fingerprint, SHA-256, user count) sits
    beside it. By default backups go to `backups/` beside the database, where the newest
    `backup.keep` (default 20) are kept. Only the Administrator or the local operator may write
    one elsewhere with --to. The encryption key is NOT in the backup.

    Example:
        eset2fa db backup --reason "before upgrade"
        eset2fa db backup --to /mnt/offsite/ --json
    """
    from eset2fa.ops.backups import create_backup

    inv = invocation(ctx)
    result = create_backup(
        inv.store, reason, to, actor=inv.actor, check="full" if full_check else "quick"
    )

    def human() -> None:
        inv.output.message(f"Backup written to {result['path']}")
        inv.output.notice(
            f"{result['users']} user(s), schema {result['schema_version']}, "
            f"sha256 {result['sha256'][:16]}..., key fingerprint "
            f"{result['key_fingerprint'] or '(no key yet)'}"
        )
        for old in result["removed"]:
            inv.output.notice(f"Removed old backup {old} (keeping {result['keep']})")

    inv.output.result(result, human)


@app.command("backups")
def backups(
    ctx: typer.Context,
    no_verify: bool = typer.Option(
        False, "--no-verify", help="Do not recompute checksums (faster for big backups)."
    ),
    verify: bool = typer.Option(
        False,
        "--verify",
        help="Also run SQLite's full integrity_check on each backup, as restore does (seconds "
        "per backup of a big store).",
    ),
) -> None:
    """List this database's backups in `backups/` beside it, newest first, each one verified.

    Verifying recomputes each SHA-256 and compares the backup's schema with eset2fa's own: a
    backup that no longer matches its manifest ("checksum mismatch"), has none ("no manifest"),
    or holds schema objects eset2fa did not create ("foreign schema") is flagged (exit 1).
    --verify also runs the full integrity_check ("integrity check failed"). Works even when the
    live database is damaged.

    Example:
        eset2fa db backups
        eset2fa db backups --verify --json
    """
    from eset2fa.ops.backups import list_backups

    inv = invocation(ctx)
    inv.require_store_file()  # a mistyped --db is exit 9, not an empty list
    if verify and no_verify:
        raise UsageError("--verify and --no-verify contradict each other.", "Give one of them.")
    rows = list_backups(inv.db_path, verify=not no_verify, integrity=verify)

    def human() -> None:
        inv.output.table(
            ["created", "reason", "users", "schema", "status", "path"],
            [
                (
                    r.get("created_at"),
                    r.get("reason"),
                    r.get("users"),
                    r.get("schema_version"),
                    f"{r['status']}: {r['detail']}" if "detail" in r else r["status"],
                    r["path"],
                )
                for r in rows
            ],
            copyable=("created", "path"),
        )
        inv.output.notice(f"{len(rows)} backup(s)")

    inv.output.result(rows, human)
    if any(r["status"] not in ("ok", "unverified") for r in rows):
        raise typer.Exit(1)


@app.command("restore")
def restore(
    ctx: typer.Context,
    backup_file: Path = typer.Argument(..., metavar="BACKUP", help="The backup file to restore."),
    no_manifest: bool = typer.Option(
        False,
        "--no-manifest",
        help="Restore a backup whose manifest (<backup>.json) is lost; all other checks still run.",
    ),
) -> None:
    """Replace the database with a backup, after validating it. Asks first unless --yes.

    Before the live database is touched, the backup is checked: its manifest (SHA-256 and size;
    a backup without one is refused unless --no-manifest), that it is an eset2fa store of a
    schema this version knows holding only eset2fa's own tables and indexes (no triggers, views
    or anything added or altered), SQLite's full integrity_check, and that it has a key check
    value the current encryption key opens. A file that fails is refused (exit 9) and nothing
    changes. The replaced database is kept beside it as `<db>.replaced-<time>`. Only the
    Administrator or the local operator may restore. Stop other eset2fa processes using this
    database first.

    Example:
        eset2fa db backups
        cd ~/.local/share/eset2fa/backups
        eset2fa db restore eset2fa-20261122T101500.000000Z-manual.db
    """
    from eset2fa.accounts.permissions import require_admin
    from eset2fa.ops.backups import restore_backup

    inv = invocation(ctx)
    actor = inv.actor
    require_admin(actor, "restore a backup")  # before the question; the core checks it again
    inv.confirm(f"Replace the database {inv.db_path} with the backup {backup_file}?")
    inv.close()  # nothing of ours may hold the live file open while it is swapped
    result = restore_backup(inv.db_path, backup_file, actor=actor, require_manifest=not no_manifest)

    def human() -> None:
        inv.output.message(f"Restored {result['path']} from {result['backup']}")
        if result["replaced"]:
            inv.output.notice(f"The replaced database was kept as {result['replaced']}")

    inv.output.result(result, human)
