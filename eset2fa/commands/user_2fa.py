"""`eset2fa user enable|disable|unlock|check-install`: the two-factor commands of `user`.

They live apart from commands/user.py (accounts and permissions) and register on the same Typer
sub-app; cli._wire imports this module so they exist.
"""

import typer

from eset2fa.commands.invocation import invocation
from eset2fa.commands.options import (
    all_option,
    from_file_option,
    group_option,
    qr_option,
    read_lines,
    render_bulk,
)
from eset2fa.commands.user import app
from eset2fa.twofactor.states import Method


def _names_from(inv, names: list[str] | None, from_file: str | None) -> list[str] | None:
    from eset2fa.errors import UsageError

    if from_file is None:
        return names or None
    if names:
        raise UsageError("Give NAMEs or --from-file, not both.")
    from eset2fa.accounts import console_users

    entries, rejected = console_users.parse_user_lines(read_lines(from_file))
    if rejected:
        bad = ", ".join(f"line {r['line']}" for r in rejected[:5])
        raise UsageError(f"{from_file}: invalid user names ({bad}).", "One name per line.")
    return [entry.name for entry in entries]


def _bulk_summary(inv, report, verb: str, ok: tuple[str, ...]) -> None:
    render_bulk(
        inv,
        report.results,
        report.counts,
        ok=ok,
        columns=("name", "result"),
        title=f"Users not {verb}",
        summary=verb.capitalize(),
        empty="no users",
    )


@app.command("enable")
def enable(
    ctx: typer.Context,
    names: list[str] = typer.Argument(None, help="Users to enable (or --group/--all/--from-file)."),
    method: Method = typer.Option(Method.totp, "--method", "-m", help="totp or push."),
    group: str = group_option("Every user of this group."),
    all_users: bool = all_option(),
    from_file: str = from_file_option("Names, one per line; '-' reads stdin."),
    show_qr: bool = qr_option(
        "Print the enrollment QR code (default: on a terminal, for one user)."
    ),
    phone: str = typer.Option(
        None, "--phone", metavar="NUMBER", help="Record the user's phone number (international)."
    ),
) -> None:
    """Turn on two-factor authentication: the user becomes pending until their first valid OTP.

    A fresh secret is generated per user and stored encrypted. For one user on a terminal the
    enrollment QR code is printed (scan it with Google Authenticator, Microsoft Authenticator or
    Authy); --json returns the otpauth URI instead. Many users (names, --group, --all,
    --from-file) are enabled in one transaction; exit 1 if any of them could not be.

    Example:
        eset2fa user enable alice --method totp
        eset2fa user enable alice --phone "+421 900 123 456" --no-qr
        eset2fa user enable --group ops --method totp --json
        eset2fa user enable --all --method totp
    """
    import sys

    from eset2fa.twofactor import enrollment

    inv = invocation(ctx)
    selected = _names_from(inv, names, from_file)
    actor = inv.actor
    store = inv.store
    single = selected is not None and len(selected) == 1 and from_file is None
    total = enrollment.count_targets(store, selected, group, all_users)
    with inv.output.progress(total, "Enabling 2FA") as advance:
        report = enrollment.enable(
            store,
            actor,
            names=selected,
            group=group,
            all_users=all_users,
            method=method.value,
            phone=phone,
            progress=advance,
        )
    if single:
        row = enrollment.raise_for_single(report, selected[0], "enable")
        result = {**row, "state": "pending", "method": method.value}
        if report.uri:
            result["uri"] = report.uri
        if show_qr is None:
            show_qr = sys.stdout.isatty()

        def human() -> None:
            inv.output.message(
                f"Two-factor authentication ({method.value}) enabled for [bold]{row['name']}[/]:"
                + (
                    " pending until the first valid code"
                    if method.value == "totp"
                    else " pending until the first approved push (`eset2fa auth push`)"
                )
            )
            if report.uri and show_qr:
                from eset2fa.commands.qr import print_qr

                print_qr(inv, report.uri)
                inv.output.notice("Scan the code with the authenticator app, then enter a code.")
            elif report.uri:
                inv.output.notice(f"Show it again later with: eset2fa qr {row['name']}")

        inv.output.result(result, human)
        return
    _bulk_summary(inv, report, "enabled", (enrollment.ENABLED,))


@app.command("disable")
def disable(
    ctx: typer.Context,
    names: list[str] = typer.Argument(None, help="Users to disable (or --group/--all)."),
    group: str = group_option("Every user of this group."),
    all_users: bool = all_option(),
) -> None:
    """Turn off two-factor authentication: deletes the secret and phone number (audit kept).

    Asks first unless --yes. Exit 1 if any named user could not be disabled.

    Example:
        eset2fa user disable alice --yes
        eset2fa user disable --group contractors --yes --json
    """
    from eset2fa.twofactor import enrollment

    inv = invocation(ctx)
    actor = inv.actor
    store = inv.store
    what = ", ".join(names) if names else (f"group {group}" if group else "all users")
    inv.confirm(f"Disable two-factor authentication for {what}? Secrets and phones are deleted.")
    report = enrollment.disable(store, actor, names=names or None, group=group, all_users=all_users)
    ok = (enrollment.DISABLED, enrollment.ALREADY_DISABLED)
    if names and len(names) == 1:
        row = enrollment.raise_for_single(report, names[0], "disable")
        inv.output.result(
            row,
            lambda: inv.output.message(
                f"Two-factor authentication disabled for [bold]{row['name']}[/]"
                + (" (it was not enabled)" if row["result"] == enrollment.ALREADY_DISABLED else "")
            ),
        )
        return
    _bulk_summary(inv, report, "disabled", ok)


@app.command("unlock")
def unlock(ctx: typer.Context, name: str = typer.Argument(..., help="The user's name.")) -> None:
    """Unlock a user locked after too many wrong passwords or codes (needs Write permission).

    Resets both failed-attempt counts (codes and passwords) to zero.

    Example:
        eset2fa user unlock alice
    """
    from eset2fa.twofactor import lockout

    inv = invocation(ctx)
    result = lockout.unlock(inv.store, inv.actor, name)
    inv.output.result(
        result,
        lambda: inv.output.message(
            f"Unlocked [bold]{result['name']}[/]"
            if result["was_locked"]
            else f"{result['name']} was not locked (failed-attempt count reset)"
        ),
    )


@app.command("check-install")
def check_install(
    ctx: typer.Context, name: str = typer.Argument(..., help="The user's name.")
) -> None:
    """Check a user can run server-assisted installations: exit 6 if they have 2FA enabled.

    Server-assisted installations cannot answer a second factor, so a user with 2FA enabled
    (pending or active) is refused with exit code 6; a user without 2FA passes with exit 0.

    Example:
        eset2fa user check-install installer --json
    """
    from eset2fa.twofactor import enrollment

    inv = invocation(ctx)
    result = enrollment.check_install(inv.store, name)
    inv.output.result(
        result,
        lambda: inv.output.message(f"{result['name']} can be used for server-assisted installs"),
    )
