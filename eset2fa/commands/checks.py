"""The two checks scripts run most, `auth verify` and `user status`, as functions of an
Invocation: the typer commands (commands/auth.py, commands/user.py) and the direct entry
(commands/entry.py) run these same bodies, so both give the same output and exit code.

Each returns the exit code: 0, or 1 for a rejected code or an unmet requirement. Errors are
raised (and rendered by whichever face called).
"""

from __future__ import annotations

from eset2fa.commands.invocation import Invocation


def verdict_line(result: dict) -> str:
    """One line for a verification result (`auth verify`, and the first code at `user enable`)."""
    if result["accepted"]:
        used = " (recovery code used: it will not work again)"
        return f"[bold green]Accepted[/]: {result['name']} is {result['state']}" + (
            used if result["reason"] == "recovery_code" else ""
        )
    why = {
        "wrong_code": "wrong code",
        "malformed": "not a code of the right length: 6 digits, 8 for some imported users",
        "replay": "code already used",
    }[result["reason"]]
    line = f"[bold red]Rejected[/] ({why}): {result['fail_count']} failed attempt(s)"
    if result["locked"]:
        return line + f"; [bold red]{result['name']} is now locked[/]"
    return line + f", {result['remaining']} left before the lock"


def status_line(status: dict) -> str:
    lock = "[bold red]locked[/]" if status["locked"] else "unlocked"
    method = f" ({status['method']})" if status["method"] else ""
    return (
        f"[bold]{status['name']}[/]: 2FA {status['state']}{method}, {lock}, "
        f"{status['fail_count']} failed OTP attempt(s)"
    )


def verify(inv: Invocation, name: str, code: str | None, recovery_code: str | None = None) -> int:
    """`auth verify`: the code (or the recovery code) checked, audited and reported."""
    from eset2fa import api

    if recovery_code is not None:
        result = api.verify_recovery_code(inv.store, name, recovery_code).to_dict()
    else:
        result = api.verify(inv.store, name, code).to_dict()
    inv.output.result(result, lambda: inv.output.message(verdict_line(result)))
    return 0 if result["accepted"] else 1


def status(inv: Invocation, name: str, require: list[str] = ()) -> int:
    """`user status`: the user's two-factor state; with `require`, the states it must be in."""
    from eset2fa import api
    from eset2fa.accounts import console_users

    result = api.status(inv.store, name)
    checks = {wanted: console_users.meets(result, wanted) for wanted in require}
    if checks:
        result["checks"] = checks
        result["ok"] = all(checks.values())
    inv.output.result(result, lambda: inv.output.message(status_line(result)))
    failed = [wanted for wanted, ok in checks.items() if not ok]
    if failed:
        inv.output.notice(f"Requirement not met: {', '.join(failed)}")
        return 1
    return 0
