"""`eset2fa apikey ...`: keys of the applications that call the server's verification API."""

import typer

from eset2fa.commands.invocation import invocation

app = typer.Typer(
    help="API keys for applications calling `eset2fa serve` (create, list, revoke).",
    no_args_is_help=True,
)


def _name_argument():
    return typer.Argument(..., help="The key's name: which application uses it.")


@app.command("create")
def create(ctx: typer.Context, name: str = _name_argument()) -> None:
    """Create an API key and print it once (stdout); only its hash is stored.

    Give it to the application, which sends it as `Authorization: Bearer KEY` to POST /v1/verify,
    POST /v1/push and GET /v1/push/ID. It cannot be shown again: a lost key is revoked and
    replaced. Only the Administrator or the local operator manage keys; audited.

    Example:
        eset2fa apikey create webapp
        KEY=$(eset2fa apikey create vpn --json | jq -r .key)
    """
    from eset2fa.accounts.api_keys import create as create_key

    inv = invocation(ctx)
    result = create_key(inv.store, inv.actor, name)

    def human() -> None:
        inv.output.notice(
            f"API key {name} created. It is shown only now: give it to the application."
        )
        inv.output.message(result["key"])  # [a-z0-9_-] only: no markup in it

    inv.output.result(result, human)


@app.command("list")
def list_(ctx: typer.Context) -> None:
    """List API keys: name, created (when, by whom), last used (to the minute); never a key.

    Example:
        eset2fa apikey list
        eset2fa apikey list --json
    """
    from eset2fa.accounts.api_keys import list_keys

    inv = invocation(ctx)
    rows = list_keys(inv.store, inv.actor)
    columns = ("name", "created_at", "created_by", "last_used_at")
    inv.output.result(
        rows, lambda: inv.output.table(columns, [[row[c] for c in columns] for row in rows])
    )


@app.command("revoke")
def revoke(ctx: typer.Context, name: str = _name_argument()) -> None:
    """Revoke (delete) an API key: the next request with it is refused with 401.

    Example:
        eset2fa apikey revoke webapp
    """
    from eset2fa.accounts.api_keys import revoke as revoke_key

    inv = invocation(ctx)
    result = revoke_key(inv.store, inv.actor, name)
    inv.output.result(result, lambda: inv.output.message(f"API key {result['name']} revoked."))
