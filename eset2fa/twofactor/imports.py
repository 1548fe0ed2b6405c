"""`user import`: TOTP secrets brought in from other tools, sealed on arrival, in one transaction.

The formats (each parser turns text into `ImportEntry`s and writes nothing):
- `otpauth`: one `otpauth://totp/...` URI per line (Key Uri Format, read with urllib.parse); the
  label's account part (after `Issuer:`) names the user;
- `csv`: `name,secret[,digits,period,algorithm]`, an optional header line;
- `google-authenticator`: google-authenticator-libpam's `~/.google_authenticator` file: the base32
  secret, `" OPTION` lines (TOTP_AUTH, STEP_SIZE, WINDOW_SIZE, RATE_LIMIT, DISALLOW_REUSE,
  HOTP_COUNTER), then 8-digit scratch codes, which become the user's recovery codes; the user is
  the file's owner unless named;
- `migration`: Google Authenticator's "Transfer accounts" export, `otpauth-migration://offline?
  data=...` (decoded by `migration_payload` with protobuf).

SHA1, SHA256 and SHA512, 6 or 8 digits and periods from MIN_PERIOD to MAX_PERIOD seconds are kept
per user (users.totp_*, NULL for the defaults) and honoured by verification and the URIs. HOTP
(counter-based) entries are skipped: eset2fa verifies time-based codes only.

`import_entries` applies them in ONE write transaction: users that do not exist are created only
when asked (`create_users`), each secret is sealed with the master key bound to its user
(`user:<id>:totp`, as enrollment does), scratch codes are stored hashed like recovery codes, and
every imported user, created user and the import itself is audited (format, parameters, counts;
never a secret). An imported user is `active`, not `pending`: they already have the secret in
their app, so there is nothing to enroll, and `pending` would offer the secret again (the QR code,
the SMS enrollment link at `auth login`) to whoever signs in first. `dry_run` validates and
reports the same per-line results and changes nothing.
"""

from __future__ import annotations

import base64
import binascii
import csv
import os
import sqlite3
from collections.abc import Callable, Iterable, Iterator
from contextlib import nullcontext
from pathlib import Path
from typing import NamedTuple
from urllib.parse import parse_qsl, unquote, urlsplit  # imported by pathlib already

from eset2fa.accounts.actors import Actor
from eset2fa.accounts.console_users import NAME_PATTERN
from eset2fa.clock import now_iso
from eset2fa.db import Store
from eset2fa.db import users as user_rows
from eset2fa.ops import audit_chain
from eset2fa.twofactor import gc_pause, parse_ahead, totp
from eset2fa.twofactor.outcomes import Outcomes

FORMATS = ("otpauth", "csv", "google-authenticator", "migration")

MIN_SECRET_BYTES = 10  # 80 bits: google-authenticator-libpam's secrets are this short
MAX_SECRET_BYTES = 128
MIN_PERIOD, MAX_PERIOD = 10, 300
GA_FILE_LIMIT = 64 * 1024  # libpam itself stops at 1 kB; anything far larger is not such a file

# Per-entry results. IMPORTED/WOULD_IMPORT and SKIPPED are not failures (exit 0).
IMPORTED = "imported"
WOULD_IMPORT = "would_import"  # --dry-run
SKIPPED = "skipped"  # HOTP, or OTP disabled in the source: nothing eset2fa can verify
INVALID = "invalid"
NOT_FOUND = "not_found"
ALREADY_ENABLED = "already_enabled"
DUPLICATE = "duplicate"
DENIED = "denied"
OK_RESULTS = (IMPORTED, WOULD_IMPORT, SKIPPED)


class ImportEntry(NamedTuple):
    """One importable account, or why a line is not one (`refused` + `reason`, never a secret)."""

    source: str  # where it came from: "line 3", a file's path, "line 1, entry 2"
    name: str | None  # the user it names
    secret: bytes | None = None  # raw (decoded), sealed before it reaches the store
    algorithm: str = totp.ALGORITHM
    digits: int = totp.DIGITS
    period: int = totp.PERIOD_SECONDS
    issuer: str | None = None
    scratch_codes: tuple[str, ...] = ()
    refused: str | None = None  # INVALID or SKIPPED
    reason: str | None = None


class _Refused(Exception):
    def __init__(self, reason: str, name: str | None = None, result: str = INVALID) -> None:
        super().__init__(reason)
        self.reason, self.name, self.result = reason, name, result


def _refusal(source: str, refused: _Refused) -> ImportEntry:
    return ImportEntry(source, refused.name, refused=refused.result, reason=refused.reason)


# -- validation shared by the formats --------------------------------------------------------------


def _user_name(text: str | None) -> str:
    name = (text or "").strip()
    if not NAME_PATTERN.fullmatch(name):
        raise _Refused(
            "not a valid user name (1-64 letters, digits and . _ @ + -)"
            if name
            else "no user name",
            name or None,
        )
    return name


def _decode_secret(text: str, name: str | None) -> bytes:
    """Base32 (any case, spaces and dashes allowed, padding optional) to the raw secret."""
    cleaned = text.replace(" ", "").replace("-", "").rstrip("=").upper()
    try:
        secret = base64.b32decode(cleaned + "=" * (-len(cleaned) % 8))
    except (binascii.Error, ValueError):
        raise _Refused("the secret is not base32", name) from None
    return _check_secret(secret, name)


def _check_secret(secret: bytes, name: str | None) -> bytes:
    if len(secret) < MIN_SECRET_BYTES:
        raise _Refused(f"the secret is shorter than {MIN_SECRET_BYTES * 8} bits", name)
    if len(secret) > MAX_SECRET_BYTES:
        raise _Refused(f"the secret is longer than {MAX_SECRET_BYTES * 8} bits", name)
    return secret


def _parameters(
    algorithm: str | None, digits: str | int | None, period: str | int | None, name: str | None
) -> tuple[str, int, int]:
    """(algorithm, digits, period) checked; None or "" means the default."""
    algorithm = (algorithm or totp.ALGORITHM).strip().upper().replace("-", "")
    if algorithm not in totp.ALGORITHMS:
        raise _Refused(f"algorithm {algorithm[:20]!r} is not one of SHA1, SHA256, SHA512", name)
    try:
        digits = int(digits) if digits not in (None, "") else totp.DIGITS
        period = int(period) if period not in (None, "") else totp.PERIOD_SECONDS
    except ValueError:
        raise _Refused("digits and period must be whole numbers", name) from None
    if digits not in totp.DIGIT_COUNTS:
        raise _Refused(f"{digits} digits: only 6 or 8 are supported", name)
    if not MIN_PERIOD <= period <= MAX_PERIOD:
        raise _Refused(f"period {period} s: give {MIN_PERIOD} to {MAX_PERIOD} seconds", name)
    return algorithm, digits, period


def _content_lines(lines: Iterable[str]) -> Iterable[tuple[int, str]]:
    """(line number, text) of the lines that hold something (blank lines and # comments skipped)."""
    for number, raw in enumerate(lines, start=1):
        text = raw.strip()
        if text and not text.startswith("#"):
            yield number, text


# -- otpauth:// URIs -------------------------------------------------------------------------------


def parse_otpauth(lines: Iterable[str]) -> list[ImportEntry]:
    """One `otpauth://totp/[Issuer:]account?secret=...` per line."""
    return list(iter_otpauth(lines))


def iter_otpauth(lines: Iterable[str]) -> Iterator[ImportEntry]:
    """`parse_otpauth` an entry at a time, as the lines are read (1,000,000 lines in flat
    memory)."""
    for number, text in _content_lines(lines):
        source = f"line {number}"
        try:
            yield _from_uri(text, source)
        except _Refused as refused:
            yield _refusal(source, refused)


_URI_PARAMETERS = {"secret", "issuer", "algorithm", "digits", "period", "counter", "encoder"}


def _from_uri(text: str, source: str) -> ImportEntry:
    """One Key Uri Format link, read with urllib.parse.

    Not pyotp.parse_uri: since pyotp 2.10 it refuses secrets under 112 bits, and
    google-authenticator-libpam's own otpauth links carry 80-bit secrets.
    """
    parts = urlsplit(text)
    if parts.scheme.lower() != "otpauth":
        raise _Refused("not an otpauth:// URI")
    # label = accountname / issuer (":" / "%3A") *"%20" accountname
    issuer_label, colon, account = unquote(parts.path.lstrip("/")).partition(":")
    name = _user_name(account if colon else issuer_label)
    values: dict[str, str] = {}
    for key, value in parse_qsl(parts.query, keep_blank_values=True):
        key = key.lower()
        if key in _URI_PARAMETERS and key in values:
            raise _Refused(f"the {key} parameter is given twice", name)
        values[key] = value
    kind = parts.netloc.lower()
    if kind == "hotp":
        raise _Refused("HOTP (counter-based) secrets are not imported; TOTP only", name, SKIPPED)
    if kind != "totp":
        raise _Refused(f"not a TOTP URI (otpauth://{kind[:10]}/)", name)
    if values.get("encoder"):
        raise _Refused("this kind of TOTP (an encoder such as Steam's) is not supported", name)
    issuer = values.get("issuer") or None
    if colon and issuer is not None and issuer != issuer_label:
        raise _Refused("the issuer in the label and the issuer parameter differ", name)
    if not values.get("secret"):
        raise _Refused("the URI has no secret", name)
    algorithm, digits, period = _parameters(
        values.get("algorithm"), values.get("digits"), values.get("period"), name
    )
    secret = _decode_secret(values["secret"], name)
    return ImportEntry(
        source, name, secret, algorithm, digits, period, issuer or (issuer_label if colon else None)
    )


# -- CSV ---------------------------------------------------------------------------------------


def parse_csv(lines: Iterable[str]) -> list[ImportEntry]:
    """`name,secret[,digits,period,algorithm]` per line; a first line `name,...` is a header."""
    return list(iter_csv(lines))


def iter_csv(lines: Iterable[str]) -> Iterator[ImportEntry]:
    """`parse_csv` an entry at a time, as the lines are read."""
    numbers: list[int] = []  # the line number of the text the csv reader reads next

    def texts() -> Iterator[str]:
        for number, text in _content_lines(lines):
            numbers.append(number)
            yield text

    first = True
    for row in csv.reader(texts()):
        number = numbers.pop(0)
        source = f"line {number}"
        cells = [cell.strip() for cell in row]
        if first and cells and cells[0].lower() == "name":
            first = False
            continue  # the header
        first = False
        try:
            if not 2 <= len(cells) <= 5:
                raise _Refused("expected name,secret[,digits,period,algorithm]")
            cells += [""] * (5 - len(cells))
            name = _user_name(cells[0])
            algorithm, digits, period = _parameters(cells[4], cells[2], cells[3], name)
            secret = _decode_secret(cells[1], name)
            yield ImportEntry(source, name, secret, algorithm, digits, period)
        except _Refused as refused:
            yield _refusal(source, refused)


# -- google-authenticator-libpam files -------------------------------------------------------------


def parse_google_authenticator(paths: list[str], user: str | None = None) -> list[ImportEntry]:
    """Each file's secret, TOTP options and scratch codes; its owner names the user unless `user`
    does (which then names the only file)."""
    from eset2fa.errors import UsageError

    if user is not None and len(paths) != 1:
        raise UsageError(
            "--user names the owner of ONE file.",
            "Without --user each file's owner is its user: import several files that way.",
        )
    entries = []
    for path in paths:
        try:
            entries.append(_from_ga_file(Path(path), user))
        except _Refused as refused:
            entries.append(_refusal(path, refused))
    return entries


def _owner(path: Path, stat: os.stat_result) -> str:
    import pwd

    try:
        return pwd.getpwuid(stat.st_uid).pw_name
    except KeyError:
        raise _Refused(f"its owner (uid {stat.st_uid}) has no user name; give --user") from None


def _from_ga_file(path: Path, user: str | None) -> ImportEntry:
    try:
        with path.open("rb") as handle:
            stat = os.fstat(handle.fileno())
            raw = handle.read(GA_FILE_LIMIT + 1)
    except FileNotFoundError:
        raise _Refused("no such file", user) from None
    except IsADirectoryError:
        raise _Refused("a directory, not a file", user) from None
    except OSError as error:
        raise _Refused(f"cannot be read ({error.strerror})", user) from None
    name = _user_name(user if user is not None else _owner(path, stat))
    if len(raw) > GA_FILE_LIMIT:
        raise _Refused("too large for a google-authenticator file", name)
    try:
        lines = raw.decode("ascii").splitlines()
    except UnicodeDecodeError:
        raise _Refused("not a google-authenticator file (not ASCII text)", name) from None
    if not lines or not lines[0].strip():
        raise _Refused("empty: the first line must be the base32 secret", name)
    secret = _decode_secret(lines[0].strip(), name)
    options: dict[str, list[str]] = {}
    scratch: list[str] = []
    for number, line in enumerate(lines[1:], start=2):
        if line.startswith('" '):
            option, *arguments = line[2:].split()
            options[option] = arguments
        elif len(line.strip()) == 8 and line.strip().isdigit():
            scratch.append(line.strip())
        elif line.strip():
            raise _Refused(f"line {number} is neither an option nor a scratch code", name)
    if "OTP_DISABLED" in options:
        raise _Refused("one-time passwords are disabled in this file (OTP_DISABLED)", name, SKIPPED)
    if "HOTP_COUNTER" in options:
        raise _Refused("HOTP (counter-based) secrets are not imported; TOTP only", name, SKIPPED)
    if "TOTP_AUTH" not in options:
        raise _Refused("no TOTP_AUTH line: the file enables no time-based codes", name)
    step = options.get("STEP_SIZE", [None])
    _, digits, period = _parameters(None, None, step[0] if step else None, name)
    # WINDOW_SIZE and RATE_LIMIT are the store's policy here (totp.window, the lockout), and
    # reuse is always refused (DISALLOW_REUSE): those options carry nothing per user.
    return ImportEntry(
        str(path), name, secret, totp.ALGORITHM, digits, period, None, tuple(scratch)
    )


# -- Google Authenticator's export -----------------------------------------------------------------


def parse_migration(lines: Iterable[str]) -> list[ImportEntry]:
    """`otpauth-migration://offline?data=...` URIs, one per line (an export of several QR codes)."""
    from eset2fa.twofactor import migration_payload

    entries = []
    for number, text in _content_lines(lines):
        try:
            records = migration_payload.decode(text)
        except migration_payload.MigrationError as error:
            entries.append(ImportEntry(f"line {number}", None, refused=INVALID, reason=str(error)))
            continue
        for index, record in enumerate(records, start=1):
            source = f"line {number}, entry {index}"
            try:
                entries.append(_from_record(record, source))
            except _Refused as refused:
                entries.append(_refusal(source, refused))
    return entries


def _from_record(record, source: str) -> ImportEntry:
    from eset2fa.twofactor import migration_payload as payload

    # The name is "Issuer:account" or "account" (the issuer also has its own field).
    prefix, colon, account = record.name.partition(":")
    name = _user_name(account if colon else prefix)
    if record.type == payload.TYPE_HOTP:
        raise _Refused("HOTP (counter-based) secrets are not imported; TOTP only", name, SKIPPED)
    if record.type != payload.TYPE_TOTP:
        raise _Refused(f"unknown OTP type {record.type}", name)
    algorithm = payload.ALGORITHMS.get(record.algorithm)
    if algorithm not in totp.ALGORITHMS:
        raise _Refused(f"algorithm {algorithm or record.algorithm} is not supported", name)
    digits = payload.DIGITS.get(record.digits)
    if digits is None:
        raise _Refused(f"unknown digit count {record.digits}", name)
    secret = _check_secret(record.secret, name)
    issuer = record.issuer or (prefix.strip() if colon else None) or None
    return ImportEntry(source, name, secret, algorithm, digits, totp.PERIOD_SECONDS, issuer)


# -- applying --------------------------------------------------------------------------------------


RESULT_FIELDS = (
    "source",
    "name",
    "result",
    "reason",
    "algorithm",
    "digits",
    "period",
    "issuer",
    "created",
    "recovery_codes",
)
CHUNK = 5000  # entries planned and written per batch, inside the one transaction


class ImportReport(NamedTuple):
    # Outcomes of RESULT_FIELDS: past 10,000 results they wait in a temporary file.
    results: Outcomes
    dry_run: bool

    @property
    def counts(self) -> dict[str, int]:
        return dict(self.results.counts)


def _result(
    entry: ImportEntry, result: str, reason: str | None = None, *, created: bool = False
) -> tuple:
    """One entry's result: the values of RESULT_FIELDS."""
    parsed = entry.secret is not None
    return (
        entry.source,
        entry.name,
        result,
        reason,
        entry.algorithm if parsed else None,
        entry.digits if parsed else None,
        entry.period if parsed else None,
        entry.issuer,
        created,
        len(entry.scratch_codes) if parsed else 0,
    )


def _stored(entry: ImportEntry) -> tuple[str | None, int | None, int | None]:
    """The parameters as stored: NULL for each default, so default users keep the fast path."""
    return (
        None if entry.algorithm == totp.ALGORITHM else entry.algorithm,
        None if entry.digits == totp.DIGITS else entry.digits,
        None if entry.period == totp.PERIOD_SECONDS else entry.period,
    )


def import_entries(
    store: Store,
    actor: Actor,
    entries: Iterable[ImportEntry],
    *,
    source_format: str,
    create_users: bool = False,
    dry_run: bool = False,
    progress: Callable[[int], None] | None = None,
) -> ImportReport:
    """Import the entries that can be, in one transaction; a result per entry, in their order.

    The entries are planned and written CHUNK at a time inside that transaction, as they are
    parsed (in a second process where it is safe: parse_ahead), so 1,000,000 lines take flat
    memory; names already met are kept in a temporary table of the connection, not in Python.
    """
    from eset2fa.accounts import permissions
    from eset2fa.secrets import keys

    outcomes = Outcomes(RESULT_FIELDS)
    key = None
    # A dry run reads only (its name set is in the connection's TEMP database, not the store).
    with gc_pause.paused(), nullcontext(store.conn) if dry_run else store.write() as conn:
        scope = permissions.write_scope(conn, actor)
        user_rows.start_name_set(conn)
        try:
            for batch in parse_ahead.batches(entries, CHUNK, row_type=ImportEntry):
                todo = _plan(conn, actor, scope, batch, create_users, outcomes, dry_run=dry_run)
                if todo and not dry_run:
                    # A store's first secret creates its key, as the first enrollment does.
                    if key is None:
                        key = keys.load_key(conn, store.path, create=True)
                    _write(conn, actor, key.sealer, todo, source_format)
                if progress:
                    progress(len(batch))
            if not dry_run:
                audit_chain.record(
                    conn,
                    actor.label,
                    "user.import",
                    None,
                    "ok",
                    {"format": source_format, **outcomes.counts},
                )
        finally:
            user_rows.drop_name_set(conn)
    if key is not None:
        keys.remember(store, key)
    return ImportReport(outcomes, dry_run)


def _plan(
    conn: sqlite3.Connection,
    actor: Actor,
    scope,
    entries: list[ImportEntry],
    create_users: bool,
    outcomes: Outcomes,
    *,
    dry_run: bool,
) -> list[tuple[ImportEntry, sqlite3.Row | None]]:
    """Each entry's result (added to `outcomes`), and the (entry, existing row or None) pairs to
    write. A name met in an earlier batch is in the connection's name set."""
    names = list(dict.fromkeys(e.name for e in entries if e.refused is None))
    rows = {row["name"].lower(): row for row in user_rows.targets_named(conn, names)}
    seen: set[str] = user_rows.names_in_set(conn, names)
    user_rows.add_to_name_set(conn, names)
    ok = WOULD_IMPORT if dry_run else IMPORTED
    add = outcomes.add
    todo: list[tuple[ImportEntry, sqlite3.Row | None]] = []
    for entry in entries:
        if entry.refused is not None:
            add(*_result(entry, entry.refused, entry.reason))
            continue
        key = entry.name.lower()
        row = rows.get(key)
        duplicate = key in seen
        seen.add(key)  # a later entry for this user is a duplicate, imported or not
        if duplicate:
            add(*_result(entry, DUPLICATE, "the same user appears earlier"))
        elif row is None and not create_users:
            add(*_result(entry, NOT_FOUND, "no such user (--create-users adds them)"))
        elif row is None and not actor.is_admin:
            add(*_result(entry, DENIED, "only an administrator may create users here"))
        elif row is not None and not scope.covers(row["id"], row["group_name"]):
            add(*_result(entry, DENIED, f"no Write permission over {row['name']}"))
        elif row is not None and row["state"] != "disabled":
            add(*_result(entry, ALREADY_ENABLED, f"2FA is {row['state']}: disable it first"))
        else:
            todo.append((entry, row))
            add(*_result(entry, ok, created=row is None))
    return todo


def _write(
    conn: sqlite3.Connection,
    actor: Actor,
    sealer,
    todo: list[tuple[ImportEntry, sqlite3.Row | None]],
    source_format: str,
) -> None:
    at = now_iso()
    events: list[audit_chain.AuditEvent] = []
    new = [entry.name for entry, row in todo if row is None]
    if new:
        user_rows.insert_many(conn, ((name, None, at) for name in new))
        added = {"via": "import"}
        events += (
            audit_chain.AuditEvent(actor.label, "user.add", name, "ok", added) for name in new
        )
    ids = {row["name"].lower(): row["id"] for row in user_rows.targets_named(conn, new)}
    ids.update((row["name"].lower(), row["id"]) for _entry, row in todo if row is not None)
    user_ids = [ids[entry.name.lower()] for entry, _row in todo]
    sealed = sealer.seal_many(
        (entry.secret, totp.secret_context(user_id))
        for (entry, _row), user_id in zip(todo, user_ids, strict=True)
    )
    user_rows.import_totp(
        conn,
        (
            (blob, *_stored(entry), at, user_id)
            for blob, (entry, _row), user_id in zip(sealed, todo, user_ids, strict=True)
        ),
    )
    from eset2fa.recovery import codes as recovery_codes

    # One details object per distinct combination: the audit encodes a run of events that share
    # one object once (at 100,000 users, encoding each dict again cost a second).
    shared: dict[tuple, dict] = {}
    for (entry, row), user_id in zip(todo, user_ids, strict=True):
        if entry.scratch_codes:
            recovery_codes.store_imported(conn, user_id, entry.scratch_codes)
        facts = (entry.algorithm, entry.digits, entry.period, row is None, len(entry.scratch_codes))
        details = shared.get(facts)
        if details is None:
            details = shared[facts] = {
                "format": source_format,
                "algorithm": entry.algorithm,
                "digits": entry.digits,
                "period": entry.period,
                "created": row is None,
            }
            if entry.scratch_codes:
                details["recovery_codes"] = len(entry.scratch_codes)
        events.append(audit_chain.AuditEvent(actor.label, "user.import", entry.name, "ok", details))
    audit_chain.record_many(conn, events)
