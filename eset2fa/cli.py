"""The command line: global options, sub-app wiring, and the one place errors are rendered."""

import copy
from collections.abc import Iterator, MutableMapping

import typer
from typer.core import TyperGroup

from eset2fa import __version__
from eset2fa.commands.arguments import hoist_global_options, json_requested
from eset2fa.commands.failures import INTERRUPTED, as_error
from eset2fa.commands.invocation import Invocation, store_location
from eset2fa.errors import Eset2faError, ExitCode, UsageError
from eset2fa.output import Output

try:  # typer carries its own copy of click (typer._click) since 0.2x; already imported by typer
    from typer._click.exceptions import NoArgsIsHelpError
    from typer._click.exceptions import UsageError as ClickUsageError
except ImportError:  # pragma: no cover - a typer that still runs on click itself
    from click.exceptions import NoArgsIsHelpError
    from click.exceptions import UsageError as ClickUsageError

# The command groups, loaded on demand: a status check imports and builds only `user`, not every
# group (building all of them costs more than the check itself). name -> (module, attribute,
# modules that add more commands to that group). The attribute is a Typer sub-app or a function.
COMMANDS: dict[str, tuple[str, str, tuple[str, ...]]] = {
    "init": ("eset2fa.commands.init", "init", ()),
    "user": (
        "eset2fa.commands.user",
        "app",
        (
            "eset2fa.commands.user_recovery",
            "eset2fa.commands.user_2fa",
            "eset2fa.commands.user_import",
        ),
    ),
    "config": ("eset2fa.commands.config", "app", ()),
    "outbox": ("eset2fa.commands.outbox", "outbox", ()),
    "db": ("eset2fa.commands.db", "app", ()),
    "audit": ("eset2fa.commands.audit", "app", ()),
    "push": ("eset2fa.commands.push", "app", ()),
    "sms": ("eset2fa.commands.sms", "app", ()),
    "doctor": ("eset2fa.commands.doctor", "doctor", ()),
    "auth": ("eset2fa.commands.auth", "app", ()),
    "qr": ("eset2fa.commands.qr", "qr", ()),
    "serve": ("eset2fa.commands.serve", "serve", ()),
    "apikey": ("eset2fa.commands.apikey", "app", ()),
}


def reflow_help(text: str | None) -> str | None:
    """A docstring's prose paragraphs joined into single lines, so that the help wraps cleanly
    at the terminal's width.

    Typer's rich help keeps a docstring's hard line breaks and wraps each source line on its own,
    which leaves a short line wherever a 96-column source line meets an 80-column terminal. A
    paragraph with indented lines (the `Example:` block) is laid out by hand: it is kept as is.
    """
    if not text:
        return text
    paragraphs = text.strip().split("\n\n")  # Typer gives docstrings dedented (inspect.getdoc)
    return "\n\n".join(
        paragraph
        if any(line[:1].isspace() for line in paragraph.splitlines())
        else " ".join(line.strip() for line in paragraph.splitlines())
        for paragraph in paragraphs
    )


class LazyCommands(MutableMapping):
    """A sub-app's commands by name, each converted from Typer to click when first looked up.

    Converting a command inspects its signature and builds its parameters; `user` has a dozen
    and a status check runs one. Everything that lists commands (help, completion, the "did you
    mean" hint) sees every name; iterating the values builds them all.
    """

    def __init__(self, app: typer.Typer) -> None:
        self._app = app
        self._entries: dict = {
            info.name or typer.main.get_command_name(info.callback.__name__): info
            for info in app.registered_commands
        }

    def __getitem__(self, name: str):
        entry = self._entries[name]
        if isinstance(entry, typer.models.CommandInfo):
            entry = typer.main.get_command_from_info(
                entry,
                pretty_exceptions_short=self._app.pretty_exceptions_short,
                rich_markup_mode=self._app.rich_markup_mode,
            )
            entry.help = reflow_help(entry.help)
            self._entries[name] = entry
        return entry

    def __setitem__(self, name: str, command) -> None:
        self._entries[name] = command

    def __delitem__(self, name: str) -> None:
        del self._entries[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)


def _lazy_group(app: typer.Typer):
    """The sub-app as a click group whose commands are built on first use (LazyCommands)."""
    if app.registered_groups:  # nested sub-apps: not used here; build everything as Typer does
        return typer.main.get_group(app)
    shell = copy.copy(app)  # the group itself (callback, help, options) without its commands
    shell.registered_commands = []
    group = typer.main.get_group(shell)
    group.commands = LazyCommands(app)
    return group


def _build_command(name: str):
    import importlib

    module_name, attribute, extensions = COMMANDS[name]
    module = importlib.import_module(module_name)
    for extension in extensions:
        importlib.import_module(extension)
    target = getattr(module, attribute)
    if isinstance(target, typer.Typer):
        # Built on its own, a sub-app would offer --install-completion again; the root does that.
        target._add_completion = False
        # A group, not get_command: a group with one command (`sms test`) stays a group.
        command = _lazy_group(target)
    else:
        single = typer.Typer(add_completion=False)
        single.command(name)(target)
        command = typer.main.get_command(single)
    command.name = name
    command.help = reflow_help(command.help)
    return command


class Eset2faGroup(TyperGroup):
    """Root group: loads command groups lazily, hoists global options, renders errors once."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.help = reflow_help(self.help)

    def list_commands(self, ctx):
        return [*super().list_commands(ctx), *(n for n in COMMANDS if n not in self.commands)]

    def get_command(self, ctx, name):
        if name not in self.commands and name in COMMANDS:
            self.add_command(_build_command(name), name)
        return super().get_command(ctx, name)

    def parse_args(self, ctx, args):
        args = hoist_global_options(list(args))
        if not args and self.no_args_is_help and not ctx.resilient_parsing and json_requested([]):
            # click would build the help text (rich prints it to stdout as it builds it)
            _render(ctx, UsageError("Missing command.", "See `eset2fa --help`."), json_mode=True)
            raise typer.Exit(int(ExitCode.USAGE))
        try:
            return super().parse_args(ctx, list(args))  # click's parser consumes the list
        except ClickUsageError as error:  # a bad root option: --json is not parsed yet
            if not json_requested(args):
                raise  # a person: click's usage message
            _render(ctx, _usage_error(error), json_mode=True)
            raise typer.Exit(int(ExitCode.USAGE)) from None

    def resolve_command(self, ctx, args):
        name, command, rest = super().resolve_command(ctx, args)
        if (
            not rest
            and getattr(command, "no_args_is_help", False)
            and not ctx.resilient_parsing
            and _json_mode(ctx)
        ):
            # `eset2fa --json user`: click would answer with the group's help (printed to
            # stdout while it is built); with --json the answer is the usage error document.
            raise UsageError("Missing command.", f"See `{ctx.command_path} {name} --help`.")
        return name, command, rest

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except ClickUsageError as error:
            # Unknown command or option, missing or bad argument (click raises these while it
            # parses a sub-command, inside this invoke). With --json they are one JSON document
            # like every other error; a person keeps click's usage message. Exit 2 either way.
            if not _json_mode(ctx):
                raise
            _render(ctx, _usage_error(error))
            raise typer.Exit(int(ExitCode.USAGE)) from None
        except KeyboardInterrupt:
            _interrupted(ctx)
        except typer.Abort as abort:
            # Ctrl-C at a prompt reaches us as Abort (click turns it into one); a declined
            # confirmation is also Abort, and keeps click's exit status 1.
            if isinstance(abort.__context__, KeyboardInterrupt):
                _interrupted(ctx)
            raise
        except Exception as exc:
            # Our errors, and a database, file or UTF-8 failure from below: rendered once (see
            # commands/failures.py). EPIPE (`eset2fa user list | head`) and bugs go on: typer
            # ends quietly when the reader goes away; a bug shows its traceback.
            error = as_error(exc)
            if error is None:
                raise
            _render(ctx, error)
            raise typer.Exit(int(error.exit_code)) from None
        finally:
            state = ctx.obj
            if isinstance(state, Invocation):
                state.close()


def _interrupted(ctx) -> None:
    """Ctrl-C: one line on stderr and exit 130 (SPEC §3); a write in progress was rolled back."""
    _output(ctx).notice(INTERRUPTED)
    raise typer.Exit(int(ExitCode.INTERRUPTED)) from None


def _json_mode(ctx) -> bool:
    """--json / ESET2FA_JSON as parsed; before the root callback ran (an unknown command is found
    first), from the parsed parameters."""
    state = ctx.find_root().obj
    if isinstance(state, Invocation):
        return state.json_mode
    return bool(ctx.find_root().params.get("json_mode"))


def _output(ctx, json_mode: bool | None = None) -> Output:
    state = ctx.find_root().obj
    if isinstance(state, Invocation) and json_mode is None:
        return state.output
    return Output(_json_mode(ctx) if json_mode is None else json_mode)


def _usage_error(error: ClickUsageError) -> UsageError:
    """click's usage error as ours: the same message, and where to read the usage."""
    if isinstance(error, NoArgsIsHelpError):
        message = "Missing command."  # click's message is the whole help text
    else:
        message = error.format_message()
    where = error.ctx.command_path if error.ctx is not None else "eset2fa"
    return UsageError(message, f"See `{where} --help`.")


def _render(ctx, error: Eset2faError, json_mode: bool | None = None) -> None:
    _output(ctx, json_mode).error(error.to_dict())


app = typer.Typer(
    cls=Eset2faGroup,
    name="eset2fa",
    help="Two-factor authentication administration for console users, over a local SQLite store.",
    epilog="Exit codes: 0 ok, 1 check failed/OTP rejected, 2 usage, 3 not found, 4 locked, "
    "5 permission denied, 6 state conflict, 7 delivery failed, 8 push denied/expired, "
    "9 storage or key error, 130 interrupted.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,  # locals can hold secrets; errors are rendered by Eset2faGroup
    pretty_exceptions_show_locals=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"eset2fa {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    ctx: typer.Context,
    db: str = typer.Option(
        None,
        "--db",
        envvar="ESET2FA_DB",
        help="Database file (default: eset2fa.db in the user data directory), or a PostgreSQL "
        "URL postgresql://USER@HOST[:PORT]/DBNAME[?schema=NAME].",
        show_default=False,
    ),
    json_mode: bool = typer.Option(
        False, "--json", envvar="ESET2FA_JSON", help="Print one JSON document on stdout."
    ),
    as_name: str = typer.Option(
        None,
        "--as",
        envvar="ESET2FA_AS",
        metavar="NAME",
        help="Act as console user NAME (authenticates; their Write permissions apply).",
    ),
    as_password_stdin: bool = typer.Option(
        False, "--as-password-stdin", help="Read the --as user's password from stdin's first line."
    ),
    as_otp: str = typer.Option(
        None,
        "--as-otp",
        metavar="CODE",
        help="The --as user's one-time password, if they have 2FA (else asked on a terminal).",
    ),
    yes: bool = typer.Option(False, "--yes", "-y", help="Confirm destructive steps."),
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Show the version and exit."
    ),
) -> None:
    """Two-factor authentication administration for console users.

    Global options may also follow the command: `eset2fa user status alice --json`.

    Example:
        eset2fa user add alice --group ops
        eset2fa user enable alice --method totp
        eset2fa user status alice --require active --json
    """
    ctx.obj = Invocation(
        db_path=store_location(db),
        json_mode=json_mode,
        as_name=as_name,
        as_password_stdin=as_password_stdin,
        as_otp=as_otp,
        assume_yes=yes,
        output=Output(json_mode),
        db_is_default=not db,
    )
