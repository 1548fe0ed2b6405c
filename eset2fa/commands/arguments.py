"""The raw command line before any parser sees it: global options hoisted in front of the
command, and whether --json was asked for. Without typer, so the direct entry (commands/entry.py)
and the typer app (cli.py) read arguments the same way.
"""

from __future__ import annotations

import os

# Global flags a person naturally types after the command (`user status alice --json`): they are
# moved in front of the command before parsing, so they work in either place.
GLOBAL_FLAGS = {"--json", "--yes", "-y", "--as-password-stdin"}
GLOBAL_OPTIONS = {"--db", "--as", "--as-otp"}

TRUE_WORDS = {"1", "true", "t", "yes", "y", "on"}  # what click accepts as true for a flag
FALSE_WORDS = {"0", "false", "f", "no", "n", "off"}  # ... and as false


def json_requested(args: list[str]) -> bool:
    """--json or ESET2FA_JSON, read from the raw arguments: for a usage error found before the
    options were parsed (an unknown or incomplete root option), when no parsed value exists."""
    options = args[: args.index("--")] if "--" in args else args
    if "--json" in options:
        return True
    return os.environ.get("ESET2FA_JSON", "").strip().lower() in TRUE_WORDS


def hoist_global_options(args: list[str]) -> list[str]:
    front, rest = [], []
    i = 0
    while i < len(args):
        arg = args[i]
        if arg == "--":
            rest.extend(args[i:])
            break
        name = arg.split("=", 1)[0]
        if arg in GLOBAL_FLAGS:
            front.append(arg)
        elif name in GLOBAL_OPTIONS and "=" in arg:
            front.append(arg)
        elif arg in GLOBAL_OPTIONS and i + 1 < len(args):
            front.extend(args[i : i + 2])
            i += 1
        else:
            rest.append(arg)
        i += 1
    return front + rest
