"""`eset2fa user ...`: console users, their groups, grants and status."""

import typer

from eset2fa.commands import checks
from eset2fa.commands.invocation import invocation
from eset2fa.commands.options import (
    from_file_option,
    group_option,
    limit_option,
    password_stdin_option,
    read_lines,
    render_bulk,
    user_name_argument,
    write_group_option,
    write_user_option,
)
from eset2fa.twofactor.states import Requirement, State

app = typer.Typer(
    help="Manage console users, their permissions and two-factor state.", no_args_is_help=True
)


@app.command("add")
def add(
    ctx: typer.Context,
    name: str = typer.Argument(None, help="The new user's name (omit with --from-file)."),
    group: str = group_option("The user's group."),
    password_stdin: bool = password_stdin_option("Read the user's password from stdin."),
    from_file: str = from_file_option(
        "Add many users: one name per line, or CSV name,group; '-' reads stdin."
    ),
) -> None:
    """Add a console user, or many from a file in one transaction.

    Users added without a password cannot sign in until one is set.

    Example:
        eset2fa user add alice --group ops
        printf '%s\\n' "$PW" | eset2fa user add bob --password-stdin
        eset2fa user add --from-file staff.csv --json
    """
    from eset2fa.accounts import console_users
    from eset2fa.errors import UsageError

    inv = invocation(ctx)
    if from_file is not None:
        if name is not None or password_stdin:
            raise UsageError(
                "Give either NAME or --from-file, not both.",
                "Users added from a file get no password.",
            )
        _add_from_file(inv, from_file, group)
        return
    if name is None:
        raise UsageError("Missing the user NAME.", "Example: eset2fa user add alice")
    console_users.validate_name(name)
    actor = inv.actor
    password = inv.read_secret(f"Password for {name}", from_stdin=True) if password_stdin else None
    status = console_users.add_user(
        inv.store_for_change, actor, name, group=group, password=password
    )
    inv.output.result(
        status,
        lambda: inv.output.message(
            f"Added user [bold]{status['name']}[/]" + (f" in group {group}" if group else "")
        ),
    )


def _add_from_file(inv, source: str, group: str | None) -> None:
    from eset2fa.accounts import console_users

    if group is not None:
        console_users.validate_name(group, "group name")
    entries, rejected = console_users.parse_user_lines(read_lines(source))
    actor = inv.actor
    store = inv.store_for_change
    with inv.output.progress(len(entries), "Adding users") as advance:
        results = console_users.add_users_bulk(
            store, actor, entries, default_group=group, progress=advance
        )
    results = sorted(results + rejected, key=lambda r: r["line"])
    counts: dict[str, int] = {}
    for row in results:
        counts[row["result"]] = counts.get(row["result"], 0) + 1
    render_bulk(
        inv,
        results,
        counts,
        ok=("added",),
        columns=("line", "name", "result"),
        title="Lines not added",
        summary=f"Users from {source}",
        empty="no lines",
    )


@app.command("list")
def list_(
    ctx: typer.Context,
    group: str = group_option("Only users of this group."),
    state: State = typer.Option(None, "--state", help="Only users in this 2FA state."),
    locked: bool = typer.Option(
        None, "--locked/--unlocked", help="Only locked / unlocked users.", show_default=False
    ),
    limit: int = limit_option(None, "At most this many users.", minimum=1),
) -> None:
    """List users with their two-factor state.

    Example:
        eset2fa user list --state pending
        eset2fa user list --group ops --locked --json
    """
    from eset2fa.accounts import console_users
    from eset2fa.output import Rows, Stream

    inv = invocation(ctx)

    def users(as_json: bool = False):
        return console_users.list_users(
            inv.store,
            group=group,
            state=state.value if state else None,
            locked=locked,
            limit=limit,
            as_json=as_json,
        )

    def human() -> None:
        shown = inv.output.table(
            ["name", "group", "2FA", "method", "locked", "failed OTPs"],
            Rows(
                lambda: (
                    (*row[:4], "yes" if row[4] else "", row[5])  # (name, group, ..., fail_count)
                    for row in users()
                )
            ),
        )
        inv.output.notice(f"{shown} user(s)")

    # Streamed: written as the query yields the rows (1,000,000 users in flat memory).
    inv.output.result(Stream(users(as_json=True), encoded=True), human)


@app.command("show")
def show(ctx: typer.Context, name: str = user_name_argument()) -> None:
    """Show everything about one user (never their secret).

    Example:
        eset2fa user show alice
    """
    from eset2fa.accounts import console_users

    inv = invocation(ctx)
    details = console_users.user_details(inv.store, name)

    def human() -> None:
        grants = (
            ", ".join(
                f"user {g['write_user']}" if "write_user" in g else f"group {g['write_group']}"
                for g in details["grants"]
            )
            or "none"
        )
        inv.output.fields(
            [
                ("name", details["name"]),
                ("group", details["group"]),
                ("2FA state", details["state"]),
                ("method", details["method"]),
                ("locked", "yes" if details["locked"] else "no"),
                ("failed OTP attempts", details["fail_count"]),
                ("failed passwords", details["password_failures"]),
                ("phone", details["phone"]),
                ("password set", "yes" if details["has_password"] else "no"),
                ("built-in", "yes" if details["builtin"] else "no"),
                ("created", details["created_at"]),
                ("2FA enabled", details["enabled_at"]),
                ("2FA activated", details["activated_at"]),
                ("locked at", details["locked_at"]),
                ("Write over", grants),
            ]
        )

    inv.output.result(details, human)


@app.command("status")
def status(
    ctx: typer.Context,
    name: str = user_name_argument(),
    require: list[Requirement] = typer.Option(
        None,
        "--require",
        "-r",
        help="Exit 1 unless the user is in this state (repeatable).",
    ),
) -> None:
    """Print a user's two-factor state; with --require, check it (exit 1 if not met).

    Example:
        eset2fa user status alice --require active --require unlocked --json
    """
    exit_code = checks.status(invocation(ctx), name, [r.value for r in (require or [])])
    if exit_code:
        raise typer.Exit(exit_code)


@app.command("delete")
def delete(ctx: typer.Context, name: str = user_name_argument()) -> None:
    """Delete a user (not the built-in Administrator). Asks first unless --yes.

    Example:
        eset2fa user delete bob --yes
    """
    from eset2fa.accounts import console_users

    inv = invocation(ctx)
    actor = inv.actor
    console_users.require_user(inv.store_for_change, name)  # not found before asking
    inv.confirm(f"Delete user {name}?")
    result = console_users.delete_user(inv.store_for_change, actor, name)
    inv.output.result(result, lambda: inv.output.message(f"Deleted user {result['name']}"))


@app.command("grant")
def grant(
    ctx: typer.Context,
    grantee: str = user_name_argument("The user who gets the permission.", metavar="ACTOR"),
    write: str = write_user_option(),
    write_group: str = write_group_option("Write over every user of this group."),
) -> None:
    """Give a console user Write permission over a user or a group.

    Example:
        eset2fa user grant helpdesk --write-group ops
        eset2fa user grant carol --write alice
    """
    from eset2fa.accounts import console_users

    inv = invocation(ctx)
    result = console_users.grant(
        inv.store_for_change, inv.actor, grantee, write_user=write, write_group=write_group
    )
    inv.output.result(
        result,
        lambda: inv.output.message(
            f"{result['name']} has Write over {result['granted']}"
            + ("" if result["new"] else " (already had it)")
        ),
    )


@app.command("revoke")
def revoke(
    ctx: typer.Context,
    grantee: str = user_name_argument("The user who loses the permission.", metavar="ACTOR"),
    write: str = write_user_option(),
    write_group: str = write_group_option("Write over this group."),
) -> None:
    """Take back a Write permission given with `user grant`.

    Example:
        eset2fa user revoke helpdesk --write-group ops
    """
    from eset2fa.accounts import console_users

    inv = invocation(ctx)
    result = console_users.revoke(
        inv.store_for_change, inv.actor, grantee, write_user=write, write_group=write_group
    )
    inv.output.result(
        result,
        lambda: inv.output.message(
            f"{result['name']} no longer has Write over {result['revoked']}"
        ),
    )
