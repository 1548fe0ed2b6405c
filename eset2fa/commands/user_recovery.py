"""`eset2fa user reset-password`: recovery commands on the `user` group, each backing up first."""

import typer

from ..context import invocation, stdin_is_terminal
from .user import app


def _prompt_new_password(name: str) -> str | None:
    """A new password typed twice on the terminal; None (empty input) generates one."""
    from ..passwords import validate

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
    name: str = typer.Argument(..., help="The user whose password is reset."),
    password_stdin: bool = typer.Option(
        False, "--password-stdin", help="Read the new password from stdin (its next line)."
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
        printf '%s\\n' "$NEW_PASSWORD" | eset2fa user reset-password alice --password-stdin --json
    """
    from .. import recovery, users

    inv = invocation(ctx)
    actor = inv.actor
    users.get_user(inv.store.conn, name, "id")  # not found before asking for a password
    password = None
    if password_stdin:
        password = inv.read_secret(f"New password for {name}", from_stdin=True)
    elif stdin_is_terminal() and not inv.json_mode:
        password = _prompt_new_password(name)
    result, generated = recovery.reset_password(inv.store, actor, name, password)

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
