"""What one command invocation runs with: the store, the acting user, output and input helpers.

Commands get it with `invocation(ctx)`. The store is opened, and `--as` authenticated, only when a
command first asks, so `--help` never touches the database or prompts.

Two ways to ask for the store, so that a read can never create one (fail closed: a mistyped --db
given to `auth verify` must not answer "unknown user" from a brand-new empty store):
- `inv.store`: an existing store; a missing path or an empty file is exit 9 and nothing is made.
  Reads, authentication, and changes that only make sense on an existing store use it.
- `inv.store_for_change`: a command that changes users or settings; on the default path (no
  --db, no ESET2FA_DB) the store is created at first use, with the Administrator and its
  generated password shown once. A path given with --db or ESET2FA_DB is never created here:
  only `eset2fa init` creates a store there.
"""

from __future__ import annotations

import sys
from pathlib import Path

from eset2fa.accounts.actors import Actor, local_operator
from eset2fa.errors import UsageError
from eset2fa.output import Output

# The largest number a counting or waiting option accepts (--limit, --timeout): larger ones
# overflow SQLite integers and datetime arithmetic (config.NUMBER_LIMIT is the same for settings).
NUMBER_LIMIT = 1_000_000_000


def store_location(db: str | None):
    """Where the store is: --db / ESET2FA_DB (a file path, or a PostgreSQL URL), else the default
    file in the user data directory."""
    if db:
        from eset2fa.db.location import parse

        return parse(db)
    from eset2fa.paths import default_db_path  # platformdirs costs ~10 ms; --db skips it

    return default_db_path()


def stdin_is_terminal() -> bool:
    try:
        return sys.stdin is not None and sys.stdin.isatty()
    except ValueError:  # closed stdin
        return False


class Invocation:
    # A plain class, not a dataclass: creating a dataclass costs ~0.8 ms at every start-up.
    def __init__(
        self,
        db_path: Path,
        json_mode: bool = False,
        as_name: str | None = None,
        as_password_stdin: bool = False,
        as_otp: str | None = None,
        assume_yes: bool = False,
        output: Output | None = None,
        db_is_default: bool = False,
    ) -> None:
        self.db_path = db_path
        self.db_is_default = db_is_default  # no --db, no ESET2FA_DB: may be created at first use
        self.json_mode = json_mode
        self.as_name = as_name
        self.as_password_stdin = as_password_stdin
        self.as_otp = as_otp
        self.assume_yes = assume_yes
        self.output = output if output is not None else Output()
        self._store = None
        self._actor: Actor | None = None

    # -- store --------------------------------------------------------------------------------
    @property
    def store(self):
        """The existing store; never created (a missing or empty file is exit 9)."""
        return self._authenticated(self._open_store(create=False))

    @property
    def store_for_change(self):
        """The store for a command that changes users or settings: on the default path it is
        created at first use; a --db / ESET2FA_DB path must already hold one (`eset2fa init`)."""
        return self._authenticated(self._open_store(create=self.db_is_default))

    def require_store_file(self) -> None:
        """Exit 9 unless a store file is there, for commands that read the path without opening
        it through the Invocation (`db backups`, `doctor`); nothing is opened or created."""
        if self._store is None:
            from eset2fa.db.connection import require_store_file

            require_store_file(self.db_path)

    def _authenticated(self, store):
        if self.as_name is not None and self._actor is None:
            _ = self.actor  # --as authenticates before anything is read, not only for changes
        return store

    def _open_store(self, *, create: bool = False):
        if self._store is None:
            from eset2fa.db import open_store

            if create and not self.db_path.exists():
                # A mistyped ESET2FA_ARGON2_PROFILE: exit 2 before a file is made.
                from eset2fa.accounts.passwords import profile_for_new_store

                profile_for_new_store()
            self._store = open_store(self.db_path, create=create)
            if self._store.created:
                self._bootstrap()
        return self._store

    def _bootstrap(self) -> None:
        """First use: create the Administrator with a generated password, shown once."""
        from rich.markup import escape

        from eset2fa.accounts.console_users import ensure_administrator

        generated = ensure_administrator(self._store)
        self.output.notice(f"Created a new eset2fa store at {escape(str(self.db_path))}")
        if generated:
            self.output.notice(
                f"Administrator password (shown once, store it safely): [bold]{generated}[/]"
            )

    def use_store(self, store) -> None:
        """Adopt a store opened elsewhere (init creates its own); closed with the invocation."""
        self._store = store

    def close(self) -> None:
        if self._store is not None:
            self._store.close()
            self._store = None

    # -- acting user --------------------------------------------------------------------------
    @property
    def actor(self) -> Actor:
        if self._actor is None:
            if self.as_name is None:
                self._actor = local_operator()
            else:
                from eset2fa.accounts.acting_user import authenticate_actor

                password = self.read_secret(
                    f"Password for {self.as_name}", from_stdin=self.as_password_stdin
                )
                self._actor = authenticate_actor(
                    self._open_store(create=False),  # no store: nobody to authenticate
                    self.as_name,
                    password,
                    otp=self.as_otp,
                    ask_otp=self.ask_code if stdin_is_terminal() else None,
                )
        return self._actor

    # -- input --------------------------------------------------------------------------------
    def read_secret(self, prompt: str, *, from_stdin: bool, confirm: bool = False) -> str:
        """A secret from the next line of stdin, or a hidden prompt on a terminal."""
        if from_stdin:
            line = sys.stdin.readline() if sys.stdin is not None else ""  # None: stdin closed
            if not line:
                raise UsageError(f"{prompt}: standard input ended before a line was read.")
            return _valid_text(line.rstrip("\r\n"), prompt)
        if not stdin_is_terminal():
            raise UsageError(
                f"{prompt}: no terminal to prompt on.",
                "Pipe it in with the matching --...-stdin option.",
            )
        import typer

        typed = typer.prompt(prompt, hide_input=True, confirmation_prompt=confirm, err=True)
        return _valid_text(typed, prompt)

    def ask_code(self, prompt: str) -> str:
        """A one-time password typed at the terminal (shown: it is useless once used)."""
        import typer

        return typer.prompt(prompt, err=True)

    def confirm(self, question: str) -> None:
        """Ask before a destructive step; --yes answers yes; no terminal and no --yes refuses."""
        if self.assume_yes:
            return
        if not stdin_is_terminal():
            raise UsageError(f"{question} Refusing without a terminal.", "Pass --yes to confirm.")
        import typer

        if not typer.confirm(question, default=False, err=True):
            raise typer.Abort()


def _valid_text(text: str, prompt: str) -> str:
    """Bytes that are not UTF-8 arrive as lone surrogates: refuse them here, with a clear error,
    not later as a traceback when the secret is hashed or encrypted (the value is not echoed)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise UsageError(
            f"{prompt}: the input is not valid UTF-8 text.", "Give the value as UTF-8 text."
        ) from None
    return text


def invocation(ctx) -> Invocation:
    """The Invocation the root callback stored on the click context."""
    return ctx.find_root().obj
