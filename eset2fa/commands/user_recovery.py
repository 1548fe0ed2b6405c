"""`eset2fa user reset-password`: recovery commands on the `user` group, each backing up first."""

import typer

from eset2fa.commands.invocation import invocation, stdin_is_terminal
from eset2fa.commands.options import password_stdin_option, qr_option, user_name_argument
from eset2fa.commands.user import app

# --qr/--no-qr of the commands that issue a new secret (reset-token, recover)
_NEW_QR_HELP = "Print the new enrollment QR code (default: on a terminal)."


def _prompt_new_password(name: str) -> str | None:
    """A new password typed twice on the terminal; None (empty input) generates one."""
    from eset2fa.accounts.passwords import validate

    typed = typer.prompt(
        f"New password for {name} (empty to generate one)",
        default="",
        hide_input=True,
        show_default=False,
        err=True,
    )
    if not typed:
        return None
    validate(typed)
    again = typer.prompt("Repeat for confirmation", hide_input=True, err=True)
    if again != typed:
        raise typer.BadParameter("The two passwords differ.")
    return typed


@app.command("reset-password")
def reset_password(
    ctx: typer.Context,
    name: str = user_name_argument("The user whose password is reset."),
    password_stdin: bool = password_stdin_option(
        "Read the new password from stdin (its next line)."
    ),
) -> None:
    """Reset a user's password after a verified backup; for Administrator also disable its 2FA.

    Resetting the built-in Administrator's password disables two-factor authentication on the
    Administrator account only (the way back in after losing its phone); every other account keeps
    its 2FA. For any other user only the password changes. The new password is typed twice on a
    terminal, read with --password-stdin, or generated and printed once on stderr (never in
    --json output). A backup is taken first and its path printed; if it fails, nothing changes.

    Example:
        eset2fa user reset-password Administrator
        printf '%s\\n' "$NEW_PASSWORD" |
            eset2fa user reset-password alice --password-stdin --json
    """
    from eset2fa.accounts import console_users
    from eset2fa.recovery import password_reset

    inv = invocation(ctx)
    actor = inv.actor
    console_users.require_user(inv.store_for_change, name)  # not found before asking for a password
    password = None
    if password_stdin:
        password = inv.read_secret(f"New password for {name}", from_stdin=True)
    elif stdin_is_terminal() and not inv.json_mode:
        password = _prompt_new_password(name)
    result, generated = password_reset.reset_password(inv.store_for_change, actor, name, password)

    def human() -> None:
        inv.output.message(f"Password of [bold]{result['name']}[/] reset")
        inv.output.message(f"Backup taken first: {result['backup']}")
        if result["two_factor"] == "disabled":
            inv.output.message(
                f"Two-factor authentication disabled on {result['name']} only; enable it again "
                f"after signing in: eset2fa user enable {result['name']} --method totp"
            )

    inv.output.result(result, human)
    if generated:
        inv.output.notice(
            f"New password for {result['name']} (shown once, store it safely): [bold]{generated}[/]"
        )


def _show_enrollment(inv, name: str, uri: str | None, show_qr: bool | None) -> None:
    """The new enrollment's QR code on a terminal (never in --json: the URI is in the document)."""
    import sys

    if uri is None:
        return
    if show_qr is None:
        show_qr = sys.stdout.isatty()
    if show_qr:
        from eset2fa.commands.qr import print_qr

        print_qr(inv, uri)
        inv.output.notice("Scan the code with the authenticator app, then enter a code.")
    else:
        inv.output.notice(f"Show the QR code with: eset2fa qr {name} (while pending)")


@app.command("reset-token")
def reset_token(
    ctx: typer.Context,
    name: str = user_name_argument("The user whose authenticator token is reset."),
    confirm: str = typer.Option(
        None, "--confirm", metavar="CODE", help="The verification code the user got by SMS."
    ),
    show_qr: bool = qr_option(_NEW_QR_HELP),
) -> None:
    """Reset a user's TOTP token: a code by SMS to their stored phone, then a new secret.

    Without --confirm: a verified backup is taken (its path printed), then a one-time 8-digit
    code is sent by SMS to the phone number stored for the user, never to another number, through
    the configured SMS transport. The code expires after `reset.code_ttl_seconds` (600) and allows
    `reset.max_attempts` (5) tries. If the SMS cannot be sent (exit 7) no reset is recorded.
    With --confirm CODE: the right code gives the user a new secret; they become pending with a
    new QR code (--json returns the otpauth URI) and, with `server.public_url` set, a one-time
    enrollment link by SMS to the stored phone. The old secret works until then, never after.
    The user can also enter the code at their next `eset2fa auth login`. A user without a stored
    phone uses `eset2fa user recover NAME --lost-phone` instead.

    Example:
        eset2fa user reset-token alice
        eset2fa user reset-token alice --confirm 12345678 --json
    """
    from eset2fa.recovery import token_reset

    inv = invocation(ctx)
    if confirm is None:
        result = token_reset.request_reset(inv.store_for_change, inv.actor, name)

        def sent() -> None:
            inv.output.message(f"Backup taken first: {result['backup']}")
            inv.output.message(
                f"Verification code for [bold]{result['name']}[/] sent by SMS to "
                f"{result['sent_to']} ({result['transport']}); valid until {result['expires_at']}"
            )
            inv.output.message(
                f"Confirm with: eset2fa user reset-token {result['name']} --confirm CODE"
                " (or at the user's next `eset2fa auth login`)"
            )

        inv.output.result(result, sent)
        return
    actor = inv.actor
    result = token_reset.confirm_reset(
        inv.store_for_change, actor.label, name, confirm, actor=actor
    )

    def confirmed() -> None:
        inv.output.message(
            f"Token of [bold]{result['name']}[/] reset: pending until the first valid code "
            "from the new secret (the old one no longer works)"
        )
        _show_enrollment(inv, result["name"], result["uri"], show_qr)

    sent = result.get("sms")
    if sent and "error" in sent:
        inv.output.warn(
            f"The enrollment SMS to {sent['sent_to']} could not be sent: {sent['error']}"
        )
    elif sent:
        inv.output.notice(
            f"Enrollment link sent by SMS to {sent['sent_to']} ({sent['transport']}); it works "
            f"once, until {sent['expires_at']}."
        )

    inv.output.result(result, confirmed)


@app.command("recover")
def recover(
    ctx: typer.Context,
    name: str = user_name_argument("The user who lost their phone."),
    lost_phone: bool = typer.Option(
        False, "--lost-phone", help="The phone with the authenticator (or push app) is lost."
    ),
    show_qr: bool = qr_option(_NEW_QR_HELP),
) -> None:
    """Recover a user who lost their phone: backup, drop the lost factor, enrol again, unlock.

    Takes a verified backup first (its path is printed and in --json; if it fails nothing
    changes), then in one step: the secret, stored phone number and replay state are cleared,
    two-factor authentication is enabled again as pending with the same method (TOTP: a new
    secret, its QR code on a terminal and its otpauth URI in --json; push: waits for the new
    device), and the lock and failed-attempt count are reset. Asks first; without a terminal it
    needs --yes and refuses otherwise. Works for the Administrator too; if the Administrator's
    password is also lost, use `eset2fa user reset-password Administrator`.

    Example:
        eset2fa user recover alice --lost-phone
        eset2fa user recover alice --lost-phone --yes --json
    """
    from eset2fa.errors import UsageError
    from eset2fa.recovery.lost_phone import recover_lost_phone

    inv = invocation(ctx)
    if not lost_phone:
        raise UsageError(
            "Say what was lost: --lost-phone.",
            f"Example: eset2fa user recover {name} --lost-phone --yes",
        )
    result = recover_lost_phone(inv.store_for_change, inv.actor, name, inv.confirm)

    def human() -> None:
        inv.output.message(f"Backup taken first: {result['backup']}")
        inv.output.message(
            f"[bold]{result['name']}[/] recovered: {result['method']} enrollment pending, "
            "unlocked, the lost phone no longer works"
        )
        if result["method"] == "push":
            inv.output.notice(
                f"The user pairs the new device, then approves: eset2fa auth push {result['name']}"
            )
        _show_enrollment(inv, result["name"], result.get("uri"), show_qr)

    inv.output.result(result, human)


@app.command("recovery-codes")
def recovery_codes(
    ctx: typer.Context,
    name: str = user_name_argument("The user whose recovery codes are shown or made."),
    regenerate: bool = typer.Option(
        False, "--regenerate", help="Make 10 new codes (the old ones stop working); shown once."
    ),
) -> None:
    """Make one-time recovery codes for a user with 2FA, or count the unused ones.

    With --regenerate: 10 new codes replace any earlier ones and are shown this once (in --json
    too); only their hashes are stored. Each code works once, instead of a one-time password, at
    `eset2fa auth verify NAME --recovery-code CODE` or at `eset2fa auth login`; a used code resets
    the failed-attempt count, a wrong one counts toward the lockout. Without --regenerate: how
    many unused codes are left. Needs Write permission over the user.

    Example:
        eset2fa user recovery-codes alice --regenerate
        eset2fa user recovery-codes alice --json
    """
    from eset2fa.recovery import codes as codes_core

    inv = invocation(ctx)
    if not regenerate:
        result = codes_core.remaining(inv.store, inv.actor, name)
        inv.output.result(
            result,
            lambda: inv.output.message(
                f"{result['name']} has {result['unused']} unused recovery code(s)"
            ),
        )
        return
    result, codes = codes_core.regenerate(inv.store_for_change, inv.actor, name)

    def human() -> None:
        inv.output.message(
            f"Recovery codes for [bold]{result['name']}[/] (shown once; each works once):"
        )
        for code in codes:
            inv.output.message(f"  {code}")
        if result["replaced_unused"]:
            replaced = result["replaced_unused"]
            inv.output.notice(f"{replaced} earlier unused code(s) stopped working.")

    inv.output.result({**result, "codes": codes}, human)
