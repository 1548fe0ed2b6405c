"""`eset2fa init`: create the store and the Administrator account."""

import typer

from eset2fa.commands.invocation import invocation, stdin_is_terminal
from eset2fa.commands.options import password_stdin_option


def init(
    ctx: typer.Context,
    password_stdin: bool = password_stdin_option("Read the Administrator password from stdin."),
) -> None:
    """Create the store (database, schema) and the built-in Administrator account.

    Without --password-stdin you are asked for the password on a terminal (empty input generates
    one); without a terminal a password is generated and printed once on stderr. The store and
    any directories made for it are private to you (0600 / 0700). Only init creates a store at a
    path given with --db or ESET2FA_DB; on the default path, the first command that changes users
    or settings also creates it. Reads and `auth` never create one.

    Example:
        eset2fa init
        printf '%s\\n' "$ADMIN_PASSWORD" |
            eset2fa --db /srv/2fa/eset2fa.db init --password-stdin
    """
    from eset2fa.accounts.passwords import validate
    from eset2fa.ops.bootstrap import init_store

    inv = invocation(ctx)
    password = None
    if password_stdin:
        password = validate(inv.read_secret("Administrator password", from_stdin=True))
    elif stdin_is_terminal() and not inv.json_mode:
        typed = typer.prompt(
            "Administrator password (empty to generate one)",
            default="",
            hide_input=True,
            show_default=False,
            err=True,
        )
        if typed:
            validate(typed)
            again = typer.prompt("Repeat for confirmation", hide_input=True, err=True)
            if again != typed:
                raise typer.BadParameter("The two passwords differ.")
            password = typed
    store, generated = init_store(inv.db_path, password)
    inv.use_store(store)
    result = {
        "db": str(inv.db_path),
        "administrator": "Administrator",
        "password_generated": bool(generated),
    }
    inv.output.result(
        result, lambda: inv.output.message(f"Created the eset2fa store at {inv.db_path}")
    )
    if generated:
        inv.output.notice(
            f"Administrator password (shown once, store it safely): [bold]{generated}[/]"
        )
