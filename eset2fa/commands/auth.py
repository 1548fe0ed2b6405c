"""`eset2fa auth ...`: verify one-time passwords (scripts, PAM) and the interactive login."""

from __future__ import annotations

import typer

from ..context import invocation

app = typer.Typer(help="Verify one-time passwords and log in.", no_args_is_help=True)


def _verdict_line(result: dict) -> str:
    if result["accepted"]:
        return f"[bold green]Accepted[/]: {result['name']} is {result['state']}"
    why = {
        "wrong_code": "wrong code",
        "malformed": "not a 6-digit code",
        "replay": "code already used",
    }[result["reason"]]
    line = f"[bold red]Rejected[/] ({why}): {result['fail_count']} failed attempt(s)"
    if result["locked"]:
        return line + f"; [bold red]{result['name']} is now locked[/]"
    return line + f", {result['remaining']} left before the lock"


@app.command("verify")
def verify(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="The user's name."),
    code: str = typer.Argument(..., help="The 6-digit code from the authenticator app."),
) -> None:
    """Check a one-time password: exit 0 accepted, 1 rejected, 3 unknown, 4 locked, 6 not enabled.

    Every attempt is audited (never the code). Each rejection counts toward the lockout
    (`lockout.max_failures`, default 10); a locked user is refused even with a correct code.

    Example:
        eset2fa auth verify alice 123456 && echo "welcome"
        eset2fa auth verify alice 123456 --json
    """
    from ..totp import verify_otp

    inv = invocation(ctx)
    result = verify_otp(inv.store, name, code).to_dict()
    inv.output.result(result, lambda: inv.output.message(_verdict_line(result)))
    if not result["accepted"]:
        raise typer.Exit(1)
