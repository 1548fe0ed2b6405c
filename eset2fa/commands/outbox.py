"""`eset2fa outbox`: the messages the embedded transport kept instead of sending."""

import typer

from eset2fa.commands.invocation import invocation
from eset2fa.commands.options import limit_option


def outbox(
    ctx: typer.Context,
    user: str = typer.Option(None, "--user", "-u", help="Only messages for this user."),
    channel: str = typer.Option(None, "--channel", help="Only sms or push."),
    limit: int = limit_option(100, "The newest N messages; 0 for all."),
) -> None:
    """List SMS and push messages kept by the embedded outbox transport (the default).

    SMS bodies are stored encrypted (they can carry an enrollment link or a reset code) and are
    shown decrypted here: treat the output like the secrets it may contain. A user acting with
    --as sees only messages for users they have Write permission over.

    Example:
        eset2fa outbox --user alice
        eset2fa outbox --channel sms --json
    """
    from eset2fa.accounts.permissions import covers_name
    from eset2fa.ops.delivery import list_messages

    inv = invocation(ctx)
    store = inv.store
    rows = list_messages(
        store,
        user=user,
        channel=channel,
        limit=limit or None,
        visible=covers_name(store, inv.actor),
    )
    inv.output.result(
        rows,
        lambda: inv.output.table(
            ["id", "time", "channel", "to", "user", "message"],
            [(r["id"], r["at"], r["channel"], r["recipient"], r["user"], r["body"]) for r in rows],
            copyable=("time", "message"),  # the message carries the enrollment link
        ),
    )
