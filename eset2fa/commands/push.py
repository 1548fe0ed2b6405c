"""`eset2fa push ...`: send a push request and wait for it; list, show, approve, reject."""

import typer

from eset2fa.commands.invocation import invocation
from eset2fa.commands.options import limit_option, timeout_option, user_name_argument

app = typer.Typer(help="Push requests: send, wait, list, approve, reject.", no_args_is_help=True)

_FIELDS = ("id", "user", "state", "created_at", "expires_at", "decided_at", "decided_by")
_SHOWN = (*_FIELDS[:2], "number", *_FIELDS[2:])  # `push show`: the number shown at login


def _show_one(inv, request: dict) -> None:
    inv.output.result(request, lambda: inv.output.fields([(k, request.get(k)) for k in _SHOWN]))


def announcer(inv, label: str):
    """Prints the request ID as soon as it exists: the person compares it with the push."""

    def announce(request: dict) -> None:
        inv.output.notice(
            f"{label} [bold]{request['id']}[/], number [bold]{request['number']}[/], sent to "
            f"{request['user']}: approve the push that shows this ID, picking this number. "
            f"Waiting up to {request['timeout_seconds']} s..."
        )

    return announce


@app.command("send")
def send(
    ctx: typer.Context,
    name: str = user_name_argument("The user to ask."),
    timeout: int = timeout_option(),
) -> None:
    """Send a push request to NAME and wait until it is approved, rejected or expires.

    The request ID is printed at once (stderr); the push shows the same ID. Exit code 0 when
    approved, 8 when rejected, expired or rate-limited (push fatigue), 7 when it could not be
    sent. With the outbox transport, approve it from another shell with `eset2fa push approve ID`.

    Example:
        eset2fa push send alice
        eset2fa push send alice --timeout 60 --json
    """
    from eset2fa.twofactor.push_approval import send_and_wait

    inv = invocation(ctx)
    announce = announcer(inv, "Push request")
    result = send_and_wait(inv.store, inv.actor, name, timeout=timeout, on_created=announce)
    inv.output.result(result, lambda: inv.output.message(f"Push request {result['id']} approved."))


@app.command("list")
def list_(
    ctx: typer.Context,
    user: str = typer.Option(None, "--user", "-u", help="Only this user's requests."),
    state: str = typer.Option(
        None, "--state", help="Only pending, approved, rejected or expired requests."
    ),
    limit: int = limit_option(100, "The newest N; 0 for all."),
) -> None:
    """List push requests, newest last (a pending request past its expiry shows as expired).

    Example:
        eset2fa push list --state pending
        eset2fa push list --user alice --json
    """
    from eset2fa.errors import UsageError
    from eset2fa.twofactor.push_approval import STATES, list_requests

    if state is not None and state not in STATES:
        raise UsageError(f"Unknown state {state!r}.", f"Use one of {', '.join(STATES)}.")
    inv = invocation(ctx)
    rows = list_requests(inv.store, user=user, state=state, limit=limit or None)
    inv.output.result(
        rows,
        lambda: inv.output.table(
            _FIELDS,
            [[row[k] for k in _FIELDS] for row in rows],
            copyable=("id", "created_at", "expires_at", "decided_at"),  # `push approve ID`
        ),
    )


@app.command("show")
def show(ctx: typer.Context, request_id: str = typer.Argument(..., help="Request ID.")) -> None:
    """Show one push request.

    Example:
        eset2fa push show K7Q-4M2 --json
    """
    from eset2fa.twofactor.push_approval import get_request

    inv = invocation(ctx)
    _show_one(inv, get_request(inv.store, request_id))


@app.command("approve")
def approve(
    ctx: typer.Context,
    request_id: str = typer.Argument(..., help="Request ID, as shown at login."),
    token: str = typer.Option(
        None, "--token", help="The approval token from the push; checked and consumed."
    ),
) -> None:
    """Approve a pending push request (an admin, for the outbox transport; or with its token).

    Without --token this is an administrator's decision (Write permission over the user is
    needed). With --token the token itself is the authority: it must be valid, unused and
    unexpired (exit 8 otherwise); a request whose push linked to the answer page
    (`server.public_url` set) is approved only by picking its number there, not by the token.

    Example:
        eset2fa push approve K7Q-4M2
    """
    from eset2fa.twofactor.push_approval import approve as approve_request

    inv = invocation(ctx)
    actor = inv.actor if token is None else None
    result = approve_request(inv.store, actor, request_id, token)
    _show_one(inv, result)


@app.command("reject")
def reject(ctx: typer.Context, request_id: str = typer.Argument(..., help="Request ID.")) -> None:
    """Reject a pending push request: the waiting login fails at once (exit 8 there).

    Example:
        eset2fa push reject K7Q-4M2
    """
    from eset2fa.twofactor.push_approval import reject as reject_request

    inv = invocation(ctx)
    _show_one(inv, reject_request(inv.store, inv.actor, request_id))
