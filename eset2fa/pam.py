"""`eset2fa-pam`: the second factor for sudo and SSH through pam_exec (README, "PAM").

pam_exec runs this program with a minimal environment: the user in `PAM_USER`, the one-time
password on stdin (`expose_authtok` writes the token followed by a NUL byte), never the caller's
environment. So the code is read from stdin only, never from argv (argv is visible in `ps`); the
store comes from `--db PATH` on the PAM line, else `DEFAULT_DB`; the key from the key file beside
the database (`<database>.key`; ESET2FA_KEY is not in pam_exec's environment) or the one named by
`--key-file PATH`. A PostgreSQL store is `--db postgresql://USER@HOST/DBNAME` with `--key-file`
(it has no file beside it); its password comes from root's ~/.pgpass, never from the PAM line,
which every user can read.

The exit status is the whole answer: 0 only for a code `verify_otp` accepted (or, with the
setting `pam.no_2fa allow`, for a user whose 2FA is disabled). Everything else fails closed with a
non-zero status: no store (it is never created here), an empty file, no key, an unknown or locked
user, a malformed or wrong code, a bad argument, any exception. One short line goes to stderr and
to syslog (authpriv), never a traceback and never the code.

Start-up is budgeted (SPEC §6: <= 3 x `python -c pass`, bench/pam_start.py): this module imports
only the standard library at the top, never typer, rich, click or platformdirs; the core is
imported inside `main`, where a failure to import it also fails closed.
"""

from __future__ import annotations

import os
import sys

# The system store when the PAM line names none. Root-owned: PAM runs as root, and whoever can
# write the store or read its key decides who gets in (README, "Permissions and the trust
# boundary"). Deliberately not the per-user data directory the CLI defaults to.
DEFAULT_DB = "/var/lib/eset2fa/eset2fa.db"
PROG = "eset2fa-pam"
MAX_INPUT = 512  # PAM_MAX_RESP_SIZE: pam_exec never passes more than this
USAGE = (
    f"usage: {PROG} [--db PATH|postgresql://USER@HOST/DBNAME] [--key-file PATH]"
    "  (user from PAM_USER, one-time password on stdin)"
)
_POSTGRES = ("postgresql://", "postgres://")

ACCEPTED = 0


class Denied(Exception):
    """A fail-closed answer: exit `status` (never 0), `why` goes to stderr and syslog."""

    def __init__(self, status: int, why: str) -> None:
        super().__init__(why)
        self.status = status or 1
        self.why = why


def parse_args(argv: list[str]) -> tuple[str, str | None]:
    """(the store, the key file or None) from `--db` and `--key-file`, each also as `--X=VALUE`;
    Denied (exit 2) for anything else.

    Parsed by hand rather than with argparse: two spellings of each option, and argparse's
    `--help` would exit 0, which pam_exec reads as "authenticated".
    """
    given: dict[str, str] = {}
    args = iter(argv)
    for arg in args:
        name, equals, value = arg.partition("=")
        if name in ("--db", "--key-file"):
            value = value if equals else next(args, None)
            if not value:
                raise Denied(2, f"{name} needs a value. {USAGE}")
            given[name] = value
        else:
            # Not echoed: a one-time password put on the PAM line by mistake stays out of logs.
            raise Denied(2, f"unexpected argument (the code is read from stdin). {USAGE}")
    db, key_file = given.get("--db", DEFAULT_DB), given.get("--key-file")
    # pam_exec keeps the caller's working directory (sudo: the user's own): a relative path would
    # let the user point it at a store or key of their own making.
    if key_file is not None and not os.path.isabs(key_file):
        raise Denied(2, f"--key-file needs an absolute path, not {key_file[:60]!r}.")
    if db.startswith(_POSTGRES):
        from urllib.parse import urlsplit

        try:
            password = urlsplit(db).password
        except ValueError:
            password = None  # malformed: refused where the store is opened, in one line
        if password:
            raise Denied(
                2,
                "the PAM line holds a database password, and every user can read it: keep it in "
                "root's ~/.pgpass instead.",
            )
        if key_file is None:
            raise Denied(
                2, f"a PostgreSQL store needs --key-file PATH (no key is beside it). {USAGE}"
            )
    elif not os.path.isabs(db):
        raise Denied(2, f"--db needs an absolute path, not {db[:60]!r}.")
    return db, key_file


def read_code(stream) -> str | None:
    """The code on stdin: pam_exec's `token NUL`, or a line typed by hand; None if stdin is empty.

    Only the first line, up to the first NUL, without its line ending. Bytes that are not UTF-8
    are replaced, so they reach `verify_otp` as a malformed code (which counts like any wrong one).
    """
    if stream is None:
        return None
    raw = stream.readline(MAX_INPUT)
    if not raw:
        return None
    raw = raw.split(b"\0", 1)[0].split(b"\n", 1)[0].removesuffix(b"\r")
    return raw.decode("utf-8", "replace")


def service_actor(environ) -> str:
    """What the audit log records as the actor: `pam:<service>` (`pam:sudo`, `pam:sshd`)."""
    service = environ.get("PAM_SERVICE", "")
    kept = "".join(c for c in service[:32] if c.isascii() and (c.isalnum() or c in "._-"))
    return f"pam:{kept}" if kept else "pam"


def authenticate(
    db_path: str, user: str, code: str, actor: str, key_file: str | None = None
) -> str:
    """Check USER's code against the store at DB_PATH (a file or a PostgreSQL URL) with the key
    from KEY_FILE (default: beside a database file); returns the reason it is let in.

    Raises Denied (or an eset2fa error, which `main` turns into a denial) for every other outcome.
    The store is opened without creating it; an empty file is refused before SQLite would make a
    new database of it.
    """
    from eset2fa.db import open_store
    from eset2fa.errors import StateConflict
    from eset2fa.twofactor.totp import verify_otp

    if key_file is not None:
        from eset2fa.secrets.keys import FILE_ENV_VAR

        os.environ[FILE_ENV_VAR] = key_file  # this process's own environment: where keys look
    if db_path.startswith(_POSTGRES):
        from eset2fa.db.location import PgLocation

        location = PgLocation(db_path)
        _check_key_file(key_file)
    else:
        from pathlib import Path

        location = Path(db_path)
        _check_files(location)
    store = open_store(location, create=False)
    try:
        try:
            result = verify_otp(store, user, code, actor=actor, action="pam.verify")
        except StateConflict as error:
            if _no_2fa_allowed(store, user, actor):
                return "2FA not enabled, allowed by pam.no_2fa"
            raise Denied(error.exit_code, error.message) from None
        if not result.accepted:
            why = {
                "wrong_code": "wrong code",
                "malformed": "not a 6-digit code",
                "replay": "code already used",
            }
            locked = "; the account is now locked" if result.locked else ""
            raise Denied(1, f"rejected ({why.get(result.reason, result.reason)}){locked}.")
        return "accepted"
    finally:
        store.close()


def _check_files(path) -> None:
    """Refuse an empty store and files others could change or read (like sshd's StrictModes).

    An empty file would become a new, empty store when opened; a store others can write lets them
    decide who gets in; a key file others can read gives away every TOTP secret.
    """
    import stat

    from eset2fa.secrets.keys import key_file_path

    try:
        info = path.stat()
    except FileNotFoundError:
        return  # open_store reports it (NotFound): it never creates the store here
    except OSError as exc:
        raise Denied(9, f"cannot read {path}: {exc.strerror}.") from None
    if not stat.S_ISREG(info.st_mode):
        return  # a directory, a device: open_store refuses it
    if info.st_size == 0:
        raise Denied(9, f"{path} is empty, not an eset2fa store.")
    _check_owner(path, info)
    if info.st_mode & 0o022:
        raise Denied(9, f"{path} is writable by group or others; make it 0600, owned by root.")
    _check_key_file(key_file_path(path))


def _check_key_file(key_file) -> None:
    """Refuse a key file others could read or that another user owns (see _check_files)."""
    if key_file is None:
        return
    try:
        key_info = os.stat(key_file)
    except OSError:
        return  # no key file: the key is looked for elsewhere, and its absence is reported there
    _check_owner(key_file, key_info)
    if key_info.st_mode & 0o077:
        raise Denied(9, f"{key_file} is readable by group or others; make it 0600, owned by root.")


def _check_owner(path, info) -> None:
    """Only root or the user eset2fa-pam runs as may own the store and its key."""
    if info.st_uid not in (0, os.geteuid()):
        raise Denied(9, f"{path} is owned by uid {info.st_uid}; it must be owned by root.")


def _no_2fa_allowed(store, user: str, actor: str) -> bool:
    """True if USER's 2FA is disabled and the setting `pam.no_2fa` is `allow` (audited).

    A user with push (no one-time password) has 2FA enabled: refused whatever the setting, since
    pam_exec cannot wait for a push approval.
    """
    from eset2fa.db import users as user_rows
    from eset2fa.ops import audit_chain, settings

    with store.write() as conn:
        row = user_rows.find(conn, user)
        if row is None or row["state"] != "disabled":
            return False
        if settings.get(conn, "pam.no_2fa") != "allow":
            return False
        audit_chain.record(conn, actor, "pam.no_2fa", row["name"], "allowed")
    return True


def _report(user: str, line: str, *, denied: bool) -> None:
    """One line to stderr (denials only) and syslog; failures to log never change the answer."""
    # PAM_USER is whatever name sshd was given: no control characters into the log (forged lines).
    shown = "".join(c if c.isprintable() else "?" for c in user[:64]) or "(no user)"
    text = f"{PROG}: {shown}: {line}"
    if denied:
        try:
            sys.stderr.write(text + "\n")
            sys.stderr.flush()
        except Exception:  # stderr closed or not writable: the exit status still says it
            pass
    try:
        import syslog

        syslog.openlog(PROG, syslog.LOG_PID, syslog.LOG_AUTHPRIV)
        syslog.syslog(syslog.LOG_WARNING if denied else syslog.LOG_INFO, text[len(PROG) + 2 :])
    except Exception:  # no syslog socket: nothing else to do
        pass


def _describe(error: BaseException) -> tuple[int, str]:
    """(non-zero exit status, one line) for an exception: an eset2fa error's own exit code and
    message (never a secret), else only the exception's type."""
    try:
        from eset2fa.errors import Eset2faError
    except BaseException:  # the package itself is broken: still one line, still a denial
        Eset2faError = ()  # isinstance(x, ()) is always False
    if isinstance(error, Eset2faError):
        return int(error.exit_code) or 1, error.message
    return 1, f"internal error ({type(error).__name__})"


def run(argv: list[str], environ, stdin) -> int:
    """The exit status for one PAM authentication (0 only when let in); never raises."""
    user = ""
    try:
        db_path, key_file = parse_args(argv)
        if environ.get("PAM_TYPE", "auth") != "auth":
            raise Denied(2, "use it in the auth stack (PAM_TYPE is not 'auth').")
        user = environ.get("PAM_USER", "")
        if not user:
            raise Denied(2, "PAM_USER is not set: run it from pam_exec.")
        code = read_code(stdin)
        if code is None:
            raise Denied(2, "no code on stdin: put expose_authtok on the pam_exec line.")
        why = authenticate(db_path, user, code, service_actor(environ), key_file)
    except Denied as denial:
        _report(user, denial.why, denied=True)
        return denial.status
    except BaseException as error:  # fail closed on anything, even an interrupt or an exit
        status, why = _describe(error)
        _report(user, why, denied=True)
        return status
    _report(user, why, denied=False)
    return ACCEPTED


def main() -> int:
    """The console script: `eset2fa-pam [--db PATH|URL] [--key-file PATH]`, for pam_exec."""
    stdin = sys.stdin.buffer if sys.stdin is not None else None
    return run(sys.argv[1:], os.environ, stdin)


if __name__ == "__main__":
    sys.exit(main())
