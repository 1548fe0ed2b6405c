"""`eset2fa user enable|disable|unlock|check-install`: the two-factor commands of `user`.

They live apart from commands/user.py (accounts and permissions) and register on the same Typer
sub-app; cli._wire imports this module so they exist.
"""

from collections.abc import Iterator

import typer

from eset2fa.commands.invocation import invocation, stdin_is_terminal
from eset2fa.commands.options import (
    all_option,
    from_file_option,
    group_option,
    lines_of,
    qr_option,
    read_lines,
    render_bulk,
    user_name_argument,
    user_names_argument,
)
from eset2fa.commands.user import app
from eset2fa.twofactor.states import Method


def _names_from(
    inv, names: list[str] | None, from_file: str | None
) -> tuple[list[str] | Iterator[str] | None, int]:
    """The users asked for and how many: NAMEs, or the names in --from-file.

    A file of more than CHUNK names is read twice rather than held: once to check every line
    (an invalid name refuses the whole run before anything changes) and count them, then as the
    bulk command reads it. Standard input can be read only once, so it is held.
    """
    from eset2fa.errors import UsageError

    if from_file is None:
        return names or None, len(names or [])
    if names:
        raise UsageError("Give NAMEs or --from-file, not both.")
    from eset2fa.accounts import console_users
    from eset2fa.twofactor.enrollment import CHUNK

    def check(items) -> int:
        count, bad = 0, []
        for item in items:
            if isinstance(item, dict):
                bad.append(item)
                if len(bad) == 5:
                    break
            else:
                count += 1
        if bad:
            lines = ", ".join(f"line {r['line']}" for r in bad)
            raise UsageError(f"{from_file}: invalid user names ({lines}).", "One name per line.")
        return count

    if from_file == "-":
        entries, rejected = console_users.parse_user_lines(read_lines(from_file))
        check(rejected)
        return [entry.name for entry in entries], len(entries)
    lines, _total = lines_of(from_file)
    count = check(console_users.iter_user_lines(lines))
    lines, _total = lines_of(from_file)
    entries = console_users.iter_user_lines(lines)
    if count <= CHUNK:
        return [entry.name for entry in entries], count
    return (entry.name for entry in entries), count


def _sms_notices(inv, report) -> None:
    """Stderr lines for the enrollment SMS `user enable` sent (or why none went out)."""
    for sent in report.sms:
        if "error" in sent:
            inv.output.warn(
                f"The enrollment SMS to {sent['name']} ({sent['sent_to']}) could not be sent: "
                f"{sent['error']}"
            )
        else:
            inv.output.notice(
                f"Enrollment link sent by SMS to {sent['name']} ({sent['sent_to']}, "
                f"{sent['transport']}); it works once, until {sent['expires_at']}."
            )
    if report.warning:
        inv.output.warn(report.warning)


def _sms_fields(report) -> dict:
    fields: dict = {}
    if report.sms:
        fields["sms"] = report.sms
    if report.warning:
        fields["warning"] = report.warning
    return fields


def _bulk_summary(inv, report, verb: str, ok: tuple[str, ...]) -> None:
    _sms_notices(inv, report)
    render_bulk(
        inv,
        report.outcomes,
        report.counts,
        ok=ok,
        columns=("name", "result"),
        title=f"Users not {verb}",
        summary=verb.capitalize(),
        empty="no users",
        extra=_sms_fields(report),
    )


FIRST_CODE_ATTEMPTS = 3


def _activate_with_first_code(inv, name: str) -> None:
    """At a terminal, right after the QR code: the first code from the app activates the user
    (through verify_otp, as `auth verify` does: wrong codes count toward the lockout). Enter
    skips, leaving the user pending; so does giving up after FIRST_CODE_ATTEMPTS wrong codes."""
    from eset2fa.commands.checks import verdict_line
    from eset2fa.twofactor.totp import verify_otp

    later = f"{name} stays pending; activate later with: eset2fa auth verify {name} CODE"
    for _attempt in range(FIRST_CODE_ATTEMPTS):
        code = typer.prompt(
            "Code from the app (Enter to skip)", default="", show_default=False, err=True
        ).strip()
        if not code:
            inv.output.notice(f"Skipped: {later}")
            return
        result = verify_otp(inv.store, name, code, actor=inv.actor.label).to_dict()
        if result["accepted"]:
            inv.output.message(verdict_line(result))
            return
        inv.output.notice(verdict_line(result))
        if result["locked"]:
            return
    inv.output.notice(later)


@app.command("enable")
def enable(
    ctx: typer.Context,
    names: list[str] = user_names_argument("Users to enable (or --group/--all/--from-file)."),
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
    Authy), then the first code from the app is asked for and activates the user at once (Enter
    skips: the user stays pending); --json returns the otpauth URI instead. One user who already
    has 2FA enabled is a state conflict (exit 6). Many users (names, --group, --all,
    --from-file) are enabled in one transaction with a per-user result: users already enabled
    count as done (exit 0), and exit 1 if any user was not found or not yours to change.
    With `server.public_url` set, each TOTP user with a phone number (--phone, or stored) gets a
    one-time enrollment link by SMS (`eset2fa serve` shows the page); without it no SMS is sent
    here, so the secret never travels by SMS from this command.

    Example:
        eset2fa user enable alice --method totp
        eset2fa user enable alice --phone "+421 900 123 456" --no-qr
        eset2fa user enable --group ops --method totp --json
        eset2fa user enable --all --method totp
    """
    import sys

    from eset2fa import api
    from eset2fa.twofactor import enrollment

    inv = invocation(ctx)
    selected, asked = _names_from(inv, names, from_file)
    actor = inv.actor
    store = inv.store_for_change
    single = from_file is None and asked == 1
    total = asked or enrollment.count_targets(store, selected, group, all_users)
    with inv.output.progress(total, "Enabling 2FA") as advance:
        report = api.enable(
            store,
            selected,
            actor=actor,
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
        if report.sms:
            result["sms"] = report.sms[0]
        if report.warning:
            result["warning"] = report.warning
        _sms_notices(inv, report)
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
                if stdin_is_terminal() and sys.stdout.isatty():
                    inv.output.notice("Scan the code with the authenticator app.")
                    _activate_with_first_code(inv, row["name"])
                else:
                    inv.output.notice(
                        "Scan the code with the authenticator app, then activate with: "
                        f"eset2fa auth verify {row['name']} CODE"
                    )
            elif report.uri:
                inv.output.notice(f"Show it again later with: eset2fa qr {row['name']}")

        inv.output.result(result, human)
        return
    _bulk_summary(inv, report, "enabled", (enrollment.ENABLED, enrollment.ALREADY_ENABLED))


@app.command("disable")
def disable(
    ctx: typer.Context,
    names: list[str] = user_names_argument("Users to disable (or --group/--all/--from-file)."),
    group: str = group_option("Every user of this group."),
    all_users: bool = all_option(),
    from_file: str = from_file_option("Names, one per line; '-' reads stdin."),
) -> None:
    """Turn off two-factor authentication: deletes the secret and phone number (audit kept).

    Asks first unless --yes. Many users (names, --group, --all, --from-file) are disabled in one
    transaction with a per-user result: users already disabled count as done (exit 0), and exit
    1 if any user was not found or not yours to change.

    Example:
        eset2fa user disable alice --yes
        eset2fa user disable --group contractors --yes --json
        eset2fa user disable --from-file leavers.txt --yes
    """
    from eset2fa import api
    from eset2fa.twofactor import enrollment

    inv = invocation(ctx)
    selected, asked = _names_from(inv, names, from_file)
    actor = inv.actor
    store = inv.store_for_change
    if from_file is not None:
        source = "standard input" if from_file == "-" else from_file
        what = f"the {asked} user(s) listed in {source}"
    else:
        what = ", ".join(names) if names else (f"group {group}" if group else "all users")
    inv.confirm(f"Disable two-factor authentication for {what}? Secrets and phones are deleted.")
    total = asked or enrollment.count_targets(store, selected, group, all_users)
    with inv.output.progress(total, "Disabling 2FA") as advance:
        report = api.disable(
            store, selected, actor=actor, group=group, all_users=all_users, progress=advance
        )
    ok = (enrollment.DISABLED, enrollment.ALREADY_DISABLED)
    if from_file is None and asked == 1:
        row = enrollment.raise_for_single(report, selected[0], "disable")
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
def unlock(ctx: typer.Context, name: str = user_name_argument()) -> None:
    """Unlock a user locked after too many wrong passwords or codes (needs Write permission).

    Resets both failed-attempt counts (codes and passwords) to zero.

    Example:
        eset2fa user unlock alice
    """
    from eset2fa import api

    inv = invocation(ctx)
    result = api.unlock(inv.store_for_change, name, actor=inv.actor)
    inv.output.result(
        result,
        lambda: inv.output.message(
            f"Unlocked [bold]{result['name']}[/]"
            if result["was_locked"]
            else f"{result['name']} was not locked (failed-attempt count reset)"
        ),
    )


@app.command("check-install")
def check_install(ctx: typer.Context, name: str = user_name_argument()) -> None:
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
