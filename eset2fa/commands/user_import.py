"""`eset2fa user import|export`: TOTP secrets in from other tools, and out again (no lock-in).

They register on the `user` sub-app like commands/user_2fa.py; cli.COMMANDS names this module.
"""

import typer

from eset2fa.commands.invocation import invocation
from eset2fa.commands.options import all_option, lines_of, read_lines, render_bulk
from eset2fa.commands.user import app


@app.command("import")
def import_(
    ctx: typer.Context,
    paths: list[str] = typer.Argument(
        None, metavar="[PATH]...", help="The files of --google-authenticator."
    ),
    otpauth: str = typer.Option(
        None, "--otpauth", metavar="FILE|-", help="otpauth://totp/ URIs, one per line."
    ),
    csv_file: str = typer.Option(
        None, "--csv", metavar="FILE|-", help="Lines of name,secret[,digits,period,algorithm]."
    ),
    google_authenticator: bool = typer.Option(
        False,
        "--google-authenticator",
        help="The PATHs are google-authenticator-libpam files (~/.google_authenticator).",
    ),
    migration: str = typer.Option(
        None,
        "--migration",
        metavar="URI|FILE|-",
        help="Google Authenticator's export: otpauth-migration:// URIs (a file: one per line).",
    ),
    user: str = typer.Option(
        None,
        "--user",
        metavar="NAME",
        help="The --google-authenticator file's user (default: owner).",
    ),
    create_users: bool = typer.Option(
        False, "--create-users", help="Create users that do not exist yet (else: not_found)."
    ),
    dry_run: bool = typer.Option(False, "--dry-run", help="Validate and report; change nothing."),
) -> None:
    """Import TOTP secrets from another tool; the users become active with the app they have.

    Secrets are encrypted on arrival and everything is written in one transaction and audited
    (never a secret). SHA1/SHA256/SHA512, 6 or 8 digits and periods of 10-300 s are kept per user.
    A user must exist with 2FA disabled (--create-users adds missing ones). HOTP entries are
    skipped. One result per line or file; exit 1 if any could not be imported. Prefer a FILE or
    '-' over a migration URI on the command line: arguments are visible to other local users.

    Example:
        eset2fa user import --otpauth uris.txt --dry-run
        eset2fa user import --csv staff.csv --create-users --json
        eset2fa user import --google-authenticator ~alice/.google_authenticator
        eset2fa user import --google-authenticator ga.txt --user Administrator
        eset2fa user import --migration export.txt --create-users
    """
    from eset2fa.errors import UsageError
    from eset2fa.twofactor import imports

    chosen = [
        name
        for name, given in (
            ("--otpauth", otpauth is not None),
            ("--csv", csv_file is not None),
            ("--google-authenticator", google_authenticator),
            ("--migration", migration is not None),
        )
        if given
    ]
    if len(chosen) != 1:
        raise UsageError(
            "Give exactly one of --otpauth, --csv, --google-authenticator or --migration.",
            "Example: eset2fa user import --otpauth uris.txt --dry-run",
        )
    if paths and not google_authenticator:
        raise UsageError(f"PATHs are for --google-authenticator, not {chosen[0]}.")
    if user is not None and not google_authenticator:
        raise UsageError("--user applies to --google-authenticator only.")
    inv = invocation(ctx)
    total = 0
    if otpauth is not None:
        lines, total = lines_of(otpauth)  # parsed as the import goes: flat memory
        entries, source_format = imports.iter_otpauth(lines), "otpauth"
    elif csv_file is not None:
        lines, total = lines_of(csv_file)
        entries, source_format = imports.iter_csv(lines), "csv"
    elif google_authenticator:
        if not paths:
            raise UsageError(
                "--google-authenticator needs the file PATHs.",
                "Example: eset2fa user import --google-authenticator ~alice/.google_authenticator",
            )
        entries = imports.parse_google_authenticator(paths, user)
        source_format = "google-authenticator"
    else:
        is_uri = migration.strip().lower().startswith("otpauth-migration:")
        entries = imports.parse_migration([migration] if is_uri else read_lines(migration))
        source_format = "migration"
    actor = inv.actor
    store = inv.store
    if isinstance(entries, list):
        total = len(entries)
    with inv.output.progress(total, "Importing") as advance:
        report = imports.import_entries(
            store,
            actor,
            entries,
            source_format=source_format,
            create_users=create_users,
            dry_run=dry_run,
            progress=advance,
        )
    render_bulk(
        inv,
        report.results,
        report.counts,
        ok=imports.OK_RESULTS,
        columns=("source", "name", "result", "reason"),
        title="Entries not imported",
        summary="Dry run, nothing changed" if dry_run else "Imported",
        empty="nothing to import",
        listed=(imports.SKIPPED,),
    )


@app.command("export")
def export(
    ctx: typer.Context,
    names: list[str] = typer.Argument(None, help="Users to export (or --all)."),
    otpauth: bool = typer.Option(
        False, "--otpauth", help="otpauth:// URIs, one per line (the default and only format)."
    ),
    all_users: bool = all_option(),
) -> None:
    """Print active TOTP users' secrets as otpauth:// URIs, for another tool (needs --yes).

    One URI per line, with the store's issuer and the user's algorithm, digits and period;
    --json gives the same with the fields apart. Whoever reads the output can generate the
    users' codes: it is refused without --yes, and each exported user is audited (by name).
    `user import --otpauth` reads it back.

    Example:
        eset2fa user export --otpauth alice bob --yes
        eset2fa user export --otpauth --all --yes > secrets.txt
        eset2fa user export --all --yes --json
    """
    from eset2fa.errors import UsageError
    from eset2fa.output import Stream
    from eset2fa.twofactor import exports

    inv = invocation(ctx)
    if bool(names) == all_users:
        raise UsageError(
            "Give user NAMEs or --all (exactly one).",
            "Example: eset2fa user export --otpauth --all --yes",
        )
    if not inv.assume_yes:
        raise UsageError(
            "The export prints TOTP secrets: whoever reads them can generate the users' codes.",
            "Pass --yes to print them, and keep the output as safe as the encryption key.",
        )
    report = exports.export_otpauth(
        inv.store,
        inv.actor,
        names=names or None,
        all_users=all_users,
        output_format="json" if inv.json_mode else "otpauth",
    )
    if report.not_permitted:
        inv.output.notice(
            f"{report.not_permitted} active TOTP user(s) left out: no Write permission over them."
        )

    def human() -> None:
        if not report.count:
            inv.output.notice("No active TOTP users to export.")
        # Plain lines, never wrapped or cut whatever the terminal, written as they are read.
        inv.output.lines(exported.uri for exported in report.users)

    inv.output.result(
        {
            "count": report.count,
            "not_permitted": report.not_permitted,
            "users": Stream(exported.to_dict() for exported in report.users),
        },
        human,
    )
