"""`eset2fa auth ...`: verify one-time passwords (scripts, PAM) and the interactive login."""

import typer

from eset2fa.commands import checks
from eset2fa.commands.invocation import invocation
from eset2fa.commands.options import password_stdin_option, timeout_option, user_name_argument
from eset2fa.commands.push import announcer

app = typer.Typer(help="Verify one-time passwords and log in.", no_args_is_help=True)


@app.command("verify")
def verify(
    ctx: typer.Context,
    name: str = user_name_argument(),
    code: str = typer.Argument(None, help="The code from the authenticator app (6 or 8 digits)."),
    recovery_code: str = typer.Option(
        None, "--recovery-code", metavar="CODE", help="A one-time recovery code instead."
    ),
    code_stdin: bool = typer.Option(
        False,
        "--code-stdin",
        help="Read the code from stdin's first line (up to a NUL byte), not from the command line.",
    ),
) -> None:
    """Check a one-time password: exit 0 accepted, 1 rejected, 3 unknown, 4 locked, 6 not enabled.

    Every attempt is audited (never the code). Each rejection counts toward the lockout
    (`lockout.max_failures`, default 10); a locked user is refused even with a correct code.
    --code-stdin reads the code from standard input, so it never shows in `ps` or shell history
    (pam_exec's `expose_authtok` format, the code and a NUL byte, works too). --recovery-code
    checks one of the user's recovery codes instead (each works once; see
    `eset2fa user recovery-codes`). A missing store is exit 9: verifying never creates one.

    Example:
        eset2fa auth verify alice 123456 && echo "welcome"
        eset2fa auth verify alice 123456 --json
        echo "$CODE" | eset2fa auth verify alice --code-stdin
        eset2fa auth verify alice --recovery-code 7KQ2M-XW9RD
    """
    from eset2fa.errors import UsageError

    inv = invocation(ctx)
    if (code is not None) + (recovery_code is not None) + code_stdin != 1:
        raise UsageError(
            "Give the one-time password, --code-stdin or --recovery-code CODE (exactly one).",
            f"Example: eset2fa auth verify {name} 123456",
        )
    if code_stdin:
        # pam_exec writes the code and a NUL byte, a shell a line: the code ends at either.
        code = inv.read_secret("The one-time password", from_stdin=True).split("\0", 1)[0]
    exit_code = checks.verify(inv, name, code, recovery_code)
    if exit_code:
        raise typer.Exit(exit_code)


@app.command("login")
def login(
    ctx: typer.Context,
    name: str = user_name_argument(),
    password_stdin: bool = password_stdin_option("Read the password from stdin's first line."),
) -> None:
    """Log in interactively: password, first-login enrollment, then the one-time password.

    On the first login after `user enable`, the user types a phone number (stored once, never
    changed), gets the enrollment link by SMS (the default outbox transport keeps it: see
    `eset2fa outbox`), scans the QR code and enters the first code, which activates 2FA. Later
    logins ask for the code. Wrong codes count toward the lockout. Exit 0 logged in, 1 rejected,
    4 locked. Needs a terminal for the prompts.

    Example:
        eset2fa auth login alice
    """
    from eset2fa.commands.invocation import stdin_is_terminal
    from eset2fa.commands.qr import print_qr
    from eset2fa.errors import UsageError
    from eset2fa.twofactor.login import LoginCallbacks
    from eset2fa.twofactor.login import login as run_login

    inv = invocation(ctx)
    password = inv.read_secret(f"Password for {name}", from_stdin=password_stdin)

    def ask(prompt: str) -> str:
        if not stdin_is_terminal():
            raise UsageError(
                f"{prompt}: no terminal to prompt on.", "Run auth login on a terminal."
            )
        return typer.prompt(prompt, err=True)

    def show_enrollment(uri: str) -> None:
        inv.output.notice(
            "Scan this QR code with Google Authenticator, Microsoft Authenticator or Authy:"
        )
        print_qr(inv, uri, to_stderr=inv.json_mode)

    callbacks = LoginCallbacks(
        ask_phone=ask, ask_otp=ask, show_enrollment=show_enrollment, notice=inv.output.notice
    )
    result = run_login(inv.store, name, password, callbacks)
    inv.output.result(
        result,
        lambda: inv.output.message(
            f"[bold green]Logged in[/] as {result['name']}"
            + (" (two-factor authentication active)" if result["second_factor"] else "")
        ),
    )


@app.command("push")
def push(
    ctx: typer.Context,
    name: str = user_name_argument("The user who approves on their phone."),
    timeout: int = timeout_option(),
) -> None:
    """Second factor by push: send a request whose ID matches the login screen, wait for approval.

    The request ID and a two-digit number are shown at once (stderr; the --json result carries
    both). With `server.public_url` set the push links to the answer page, where the user picks
    this number out of three: only the right pick approves.

    Exit 0 approved (a pending user becomes active), 8 rejected or expired (no approval within
    the timeout means no access), 4 locked, 6 when the user's method is not push, 7 when the
    push could not be sent. With the outbox transport, approve from another shell with
    `eset2fa push approve ID`.

    Example:
        eset2fa auth push alice
        eset2fa auth push alice --timeout 60 --json
    """
    from eset2fa.twofactor.login import push_login

    inv = invocation(ctx)
    announce = announcer(inv, "Login request ID")
    result = push_login(inv.store, inv.actor, name, timeout=timeout, on_created=announce)
    inv.output.result(
        result,
        lambda: inv.output.message(
            f"[bold green]Approved[/]: request {result['id']} (number {result['number']}), "
            f"{result['user']} is {result['state']}"
        ),
    )
