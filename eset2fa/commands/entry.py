"""The `eset2fa` command's entry point: the two checks that login paths and scripts run most run
directly in their plain form; everything else goes to the typer app (cli.py).

`eset2fa auth verify NAME CODE` and `eset2fa user status NAME`, with no option but --json and
--db (before or after the command), are what a login script or a CI job runs, once per login or
per check. Building the typer app costs more than the check itself (importing typer alone takes
about 40 ms), so those forms are read here and run through the same bodies (commands/checks.py),
the same Invocation, Output and error rendering (commands/failures.py) as the typer commands:
their output and exit codes are the same (tests/test_entry.py runs both ways and compares).

Anything else goes to the typer app unchanged: another option or argument, --help, `--`, a
completion request, --as given through ESET2FA_AS, or an ESET2FA_JSON value that click would
refuse (click then says why).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping

from eset2fa.commands.arguments import FALSE_WORDS, TRUE_WORDS, hoist_global_options

_FORMS = {("auth", "verify"): 4, ("user", "status"): 3}  # the words of each direct form

# (words, json_mode, db): ("auth", "verify", NAME, CODE) or ("user", "status", NAME); --json or
# ESET2FA_JSON; --db, else ESET2FA_DB (None or "": the default path). A plain tuple: a NamedTuple
# class costs its creation at every start-up, which is what this module is for.
Direct = tuple[tuple[str, ...], bool, "str | None"]


def plan(argv: list[str], environ: Mapping[str, str]) -> Direct | None:
    """The direct form `argv` is in, or None: the typer app reads it."""
    if "_ESET2FA_COMPLETE" in environ or environ.get("ESET2FA_AS"):
        return None
    args = hoist_global_options(argv)
    json_mode: bool | None = None
    db: str | None = None
    while args and args[0].startswith("-"):
        option = args.pop(0)
        if option == "--json":
            json_mode = True
        elif option == "--db" and args:
            db = args.pop(0)
        elif option.startswith("--db="):
            db = option.removeprefix("--db=")
        else:
            return None
    words = tuple(args)
    if _FORMS.get(words[:2]) != len(words) or any(word.startswith("-") for word in words):
        return None
    if json_mode is None:
        # As click reads a flag's environment variable: unset or empty is False.
        raw = environ.get("ESET2FA_JSON")
        value = raw.strip().lower() if raw else "false"
        if value not in TRUE_WORDS | FALSE_WORDS:
            return None
        json_mode = value in TRUE_WORDS
    if db is None:
        db = environ.get("ESET2FA_DB") or None
    return words, json_mode, db


def run(direct: Direct) -> int:
    """Run a direct form; its exit code."""
    from eset2fa.commands import checks
    from eset2fa.commands.failures import INTERRUPTED, as_error
    from eset2fa.commands.invocation import Invocation, store_location
    from eset2fa.errors import ExitCode
    from eset2fa.output import Output

    words, json_mode, db = direct
    output = Output(json_mode)
    inv = None
    try:
        inv = Invocation(
            db_path=store_location(db), json_mode=json_mode, output=output, db_is_default=not db
        )
        if words[0] == "auth":
            return checks.verify(inv, words[2], words[3])
        return checks.status(inv, words[2])
    except KeyboardInterrupt:
        output.notice(INTERRUPTED)
        return int(ExitCode.INTERRUPTED)
    except Exception as exc:
        error = as_error(exc)
        if error is None:
            raise
        output.error(error.to_dict())
        return int(error.exit_code)
    finally:
        if inv is not None:
            inv.close()


def main() -> None:
    direct = plan(sys.argv[1:], os.environ)
    if direct is None:
        from eset2fa.cli import app

        app(prog_name="eset2fa")
        return
    try:
        code = run(direct)
        sys.stdout.flush()
    except BrokenPipeError:
        # The reader went away (`... | head -0`): exit 1 quietly, as click does; stdout now goes
        # nowhere, so the interpreter's last flush cannot fail again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        code = 1
    sys.exit(code)
