"""`eset2fa config ...`: settings stored in the database (secrets encrypted, never shown)."""

import typer

from eset2fa.commands.invocation import invocation, stdin_is_terminal

app = typer.Typer(
    help="Show and change settings (policy, SMS and push transports).", no_args_is_help=True
)


@app.command("show")
def show(ctx: typer.Context) -> None:
    """Show every setting and its value; secrets only as (set) / (not set).

    Example:
        eset2fa config show --json
    """
    from eset2fa.ops import settings

    inv = invocation(ctx)
    rows = settings.show(inv.store)
    inv.output.result(
        rows,
        lambda: inv.output.table(
            ["key", "value", "", "meaning"],
            [(r["key"], r["value"], "default" if r["default"] else "set", r["help"]) for r in rows],
        ),
    )


@app.command("set")
def set_(
    ctx: typer.Context,
    key: str = typer.Argument(..., help="The setting, e.g. lockout.max_failures."),
    value: str = typer.Argument(..., help="Its new value."),
) -> None:
    """Change a setting (secrets are refused here: use `config set-secret`).

    Example:
        eset2fa config set lockout.max_failures 5
        eset2fa config set sms.transport http
    """
    from eset2fa.ops import settings

    inv = invocation(ctx)
    settings.parse_value(key, value)  # a bad key or value fails before --as asks for a password
    result = settings.set_value(inv.store_for_change, inv.actor, key, value)
    inv.output.result(result, lambda: inv.output.message(f"{key} = {result['value']}"))


@app.command("set-secret")
def set_secret(
    ctx: typer.Context,
    key: str = typer.Argument(..., help="The secret setting, e.g. twilio.auth_token."),
) -> None:
    """Store a credential encrypted with the store's key (hidden prompt, or stdin when piped).

    Example:
        eset2fa config set-secret twilio.auth_token
        printf '%s\\n' "$TOKEN" | eset2fa config set-secret ntfy.publish_token
    """
    from eset2fa.ops import settings

    inv = invocation(ctx)
    setting = settings.setting_for(key)
    if not setting.secret:
        from eset2fa.errors import UsageError

        raise UsageError(f"{key} is not a secret.", f"Use `eset2fa config set {key} VALUE`.")
    actor = inv.actor
    value = inv.read_secret(f"Value for {key}", from_stdin=not stdin_is_terminal())
    result = settings.set_secret(inv.store_for_change, actor, key, value)
    inv.output.result(result, lambda: inv.output.message(f"{key} stored (encrypted)"))


@app.command("unset")
def unset(ctx: typer.Context, key: str = typer.Argument(..., help="The setting.")) -> None:
    """Return a setting to its default (and forget a stored secret).

    Example:
        eset2fa config unset sms.transport
    """
    from eset2fa.ops import settings

    inv = invocation(ctx)
    result = settings.unset(inv.store_for_change, inv.actor, key)
    inv.output.result(result, lambda: inv.output.message(f"{key} back to its default"))
