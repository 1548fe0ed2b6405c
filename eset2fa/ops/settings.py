"""Settings stored in the database: `eset2fa config show|set|unset|set-secret`.

Every key is declared in `SETTINGS` (type, default, whether it is a secret, help). Secrets are
stored encrypted with the master key, or read at run time from the environment variable named by
the setting `<key>_env`; they are never printed, audited or put in an error message.
"""

from __future__ import annotations

import math
import os
import re
import sqlite3
from dataclasses import dataclass
from typing import Any

from eset2fa.accounts import passwords
from eset2fa.accounts.actors import Actor
from eset2fa.accounts.permissions import require_admin
from eset2fa.clock import now_iso
from eset2fa.db import Store
from eset2fa.db import stored_settings as setting_rows
from eset2fa.errors import NotFound, UsageError
from eset2fa.ops import audit_chain
from eset2fa.twofactor import policy

NUMBER_LIMIT = 1_000_000_000  # no numeric setting means more (seconds: ~31 years)


@dataclass(frozen=True)
class Setting:
    kind: str  # "str", "int", "float", "bool", "choice"
    default: Any = None
    help: str = ""
    choices: tuple[str, ...] = ()
    secret: bool = False
    minimum: float | None = None
    maximum: float | None = None
    pattern: str | None = None  # a str value must match it in full (e.g. a Twilio SID prefix)
    example: str | None = None  # shown when a value does not match `pattern`


SETTINGS: dict[str, Setting] = {
    # two-factor policy
    "lockout.max_failures": Setting(
        "int", policy.DEFAULT_MAX_FAILURES, "Wrong OTPs in a row that lock an account", minimum=1
    ),
    "lockout.max_password_failures": Setting(
        "int",
        policy.DEFAULT_MAX_PASSWORD_FAILURES,
        "Wrong passwords in a row (--as, auth login) that lock an account",
        minimum=1,
    ),
    "lockout.password_delay_seconds": Setting(
        "float",
        policy.DEFAULT_PASSWORD_DELAY_SECONDS,
        "Wait before answering after one wrong password; doubles with each more, at most 2 s",
        minimum=0,
        maximum=policy.PASSWORD_DELAY_CAP_SECONDS,
    ),
    # Cost of new password hashes (each hash keeps its own; weaker ones are redone at the next
    # successful login). `test` is for test suites only: `doctor` warns about it.
    passwords.SETTING: Setting(
        "choice",
        passwords.DEFAULT_PROFILE,
        "Argon2id cost of new password hashes (test: for test suites only)",
        choices=tuple(passwords.PROFILES),
    ),
    "totp.issuer": Setting("str", "eset2fa", "Issuer shown in authenticator apps"),
    # At most ±10 steps (±5 min): each step widens what a guess can hit, and every verification
    # computes 2 x window + 1 codes (a window of 10**9 would hang every login and accept anything).
    "totp.window": Setting(
        "int",
        policy.DEFAULT_WINDOW,
        "Accepted clock drift, in 30 s steps either side",
        minimum=0,
        maximum=policy.MAX_WINDOW,
    ),
    # eset2fa-pam (pam_exec for sudo and sshd). Deny by default: fail closed. A user the admin
    # has not enrolled yet, or whose 2FA was turned off (`user disable`, a lost-phone recovery
    # gone wrong), would otherwise pass with the password alone, without anyone noticing.
    "pam.no_2fa": Setting(
        "choice",
        "deny",
        "eset2fa-pam for a user whose 2FA is disabled: deny or allow (password alone)",
        choices=("deny", "allow"),
    ),
    # token reset by SMS (user reset-token)
    "reset.code_ttl_seconds": Setting(
        "int", 600, "Seconds a token reset code sent by SMS stays valid", minimum=30
    ),
    "reset.max_attempts": Setting(
        "int", 5, "Wrong token reset codes before the reset is cancelled", minimum=1
    ),
    # delivery
    "sms.transport": Setting("choice", "outbox", "Where SMS go", choices=("outbox", "http")),
    "push.transport": Setting("choice", "outbox", "Where pushes go", choices=("outbox", "ntfy")),
    "push.timeout_seconds": Setting("int", 150, "Seconds a push waits for approval", minimum=1),
    # storage
    "backup.keep": Setting(
        "int", 20, "Backups kept in the default backups/ folder (oldest removed)", minimum=1
    ),
    "push.rate_limit": Setting(
        "int", 5, "Push requests one user may get per rate window (push fatigue)", minimum=1
    ),
    "push.rate_window_seconds": Setting(
        "int", 600, "The window push.rate_limit counts over, in seconds", minimum=1
    ),
    "push.report_reject": Setting(
        "bool",
        False,
        "Reject on the push answer page records 'reported by the user' in the audit log "
        "(default: Reject only closes the request, as the source says)",
    ),
    # enrollment links (the server.public_url setting is declared with the server's, below)
    "server.enroll_link_ttl_seconds": Setting(
        "int", 900, "Seconds a one-time enrollment link sent by SMS stays valid", minimum=1
    ),
    # HTTP, shared by every network transport (never through a proxy, SPEC S11)
    "http.connect_timeout": Setting("float", 5.0, "Seconds to wait for a connection", minimum=0.1),
    "http.read_timeout": Setting("float", 15.0, "Seconds to wait for an answer", minimum=0.1),
    "http.retries": Setting(
        "int", 2, "Retries when nothing was sent (connection refused, DNS) or for GETs", minimum=0
    ),
    "http.ca_bundle": Setting("str", None, "CA bundle file for TLS (default: the system's)"),
    # SMS over HTTP (sms.transport = http)
    "sms.preset": Setting(
        "choice",
        "custom",
        "Gateway type",
        choices=("custom", "twilio", "android-sms-gateway"),
    ),
    "sms.url": Setting("str", None, "Gateway URL (custom) or base URL (android-sms-gateway)"),
    "sms.method": Setting("choice", "POST", "HTTP method (custom)", choices=("POST", "GET", "PUT")),
    "sms.body": Setting(
        "choice", "form", "How parameters are sent (custom)", choices=("form", "json", "query")
    ),
    "sms.username": Setting("str", None, "Basic auth user (custom, android-sms-gateway)"),
    "sms.password": Setting("str", None, "Basic auth password", secret=True),
    "sms.auth_header": Setting(
        "str", "Authorization", "Header that carries sms.auth_token (custom)"
    ),
    "sms.auth_token": Setting(
        "str", None, "Header value sent verbatim, e.g. 'Bearer abc' (custom)", secret=True
    ),
    "sms.ok_status": Setting("str", "200-299", "Statuses that mean sent, e.g. 200-299 or 200,202"),
    "sms.success_regex": Setting("str", None, "The reply body must match this to count as sent"),
    "sms.fail_regex": Setting("str", None, "A reply body matching this means not sent"),
    # A reset code passes its own lifetime (reset.code_ttl_seconds); this is for the others.
    "sms.ttl_seconds": Setting(
        "int",
        0,
        "Seconds an SMS without a lifetime of its own (enrollment link, test) may wait in the "
        "gateway's queue before it is dropped unsent; 0: the gateway's default",
        minimum=0,
    ),
    "twilio.account_sid": Setting("str", None, "Twilio Account SID (AC...)"),
    "twilio.auth_token": Setting(
        "str", None, "Twilio auth token (not needed with twilio.api_key_sid)", secret=True
    ),
    "twilio.api_key_sid": Setting(
        "str",
        None,
        "Twilio API key SID (SK...): authenticates instead of the auth token",
        pattern=r"SK[0-9A-Za-z]+",
        example="SKxxxxxxxx (an API key SID; the Account SID AC... goes in twilio.account_sid)",
    ),
    "twilio.api_key_secret": Setting(
        "str", None, "Secret of the API key twilio.api_key_sid", secret=True
    ),
    "twilio.from": Setting(
        "str", None, "Twilio sender number (E.164) or alphanumeric ID, if no Messaging Service"
    ),
    "twilio.messaging_service_sid": Setting(
        "str",
        None,
        "Twilio Messaging Service SID (MG...): the sender, instead of twilio.from",
        pattern=r"MG[0-9A-Za-z]+",
        example="MGxxxxxxxx (a Messaging Service SID)",
    ),
    "twilio.api_base": Setting("str", "https://api.twilio.com", "Twilio API base URL"),
    # push over ntfy (push.transport = ntfy)
    "ntfy.server": Setting(
        "str", None, "Self-hosted ntfy server URL, e.g. https://ntfy.example.org"
    ),
    "ntfy.publish_token": Setting(
        "str", None, "Token of eset2fa's ntfy account (publishes, polls replies)", secret=True
    ),
    "ntfy.topic_prefix": Setting("str", "eset2fa-", "Request topic = prefix + user name"),
    "ntfy.reply_topic": Setting("str", "eset2fa_reply", "Topic the Approve button posts to"),
    "ntfy.reply_token": Setting(
        "str", None, "Write-only token for the reply topic, put in the Approve button", secret=True
    ),
    "ntfy.poll_token": Setting(
        "str", None, "Token that reads the reply topic (default: ntfy.publish_token)", secret=True
    ),
    "ntfy.poll_interval": Setting("float", 2.0, "Seconds between reply polls", minimum=0.05),
    # the server (eset2fa serve)
    "server.public_url": Setting(
        "str",
        None,
        "The server's address as phones reach it (links in SMS and pushes), e.g. "
        "https://2fa.example.org",
        # Absolute http(s), a host, an optional port and path; no query, fragment, user or space.
        pattern=r"https?://([A-Za-z0-9.\-]+|\[[0-9A-Fa-f:.]+\])(:[0-9]{1,5})?"
        r"(/[A-Za-z0-9._~!$&'()*+,;=:@%/\-]*)?",
        example="https://2fa.example.org (absolute http(s) URL, no query or fragment)",
    ),
    # Counted in each server process's memory: N processes let through up to N times as much.
    # Per key: an application's whole traffic (a login burst at 9:00), so generous. Per user: a
    # person logs in a few times a minute at most; more is a script guessing (the lockout stops
    # it at lockout.max_failures anyway, this slows the guessing and the audit noise).
    "server.key_rate_limit": Setting(
        "int",
        6000,
        "API requests one API key may make per server.rate_window_seconds (per server process)",
        minimum=1,
    ),
    "server.user_rate_limit": Setting(
        "int",
        30,
        "API verifications and pushes for one user per server.rate_window_seconds (per process)",
        minimum=1,
    ),
    "server.rate_window_seconds": Setting(
        "int", 60, "The window the server's rate limits count over, in seconds", minimum=1
    ),
}

# Families of keys with a free suffix, e.g. `sms.params.To`.
PATTERN_SETTINGS: list[tuple[re.Pattern[str], Setting]] = [
    (
        re.compile(r"sms\.params\.[A-Za-z0-9_\-\[\]]{1,64}"),
        Setting("str", None, "Gateway parameter template: {phone} and {text} are filled in"),
    ),
]

_MISSING = object()


def setting_for(key: str) -> Setting:
    if key in SETTINGS:
        return SETTINGS[key]
    for pattern, setting in PATTERN_SETTINGS:
        if pattern.fullmatch(key):
            return setting
    if key.endswith("_env") and setting_for_or_none(key[: -len("_env")]) is not None:
        return Setting("str", None, "Environment variable holding this secret")
    raise UsageError(f"Unknown setting {key!r}.", "List the settings with `eset2fa config show`.")


def setting_for_or_none(key: str) -> Setting | None:
    try:
        setting = setting_for(key)
    except UsageError:
        return None
    return setting


def parse_value(key: str, text: str) -> str:
    """Validate a value for `key`; returns its stored text form."""
    setting = setting_for(key)
    if setting.secret:
        raise UsageError(
            f"{key} is a secret and is not set with `config set`.",
            f"Use `eset2fa config set-secret {key}` (hidden prompt or stdin), or set {key}_env.",
        )
    if setting.kind == "int" or setting.kind == "float":
        try:
            number = int(text) if setting.kind == "int" else float(text)
        except ValueError:
            raise UsageError(f"{key} must be a number, not {text!r}.") from None
        # Seconds, counts and timeouts beyond this overflow datetime and socket arithmetic later
        # (a traceback at the next login); nan and inf are not numbers a setting can mean.
        if not math.isfinite(number) or abs(number) > NUMBER_LIMIT:
            raise UsageError(f"{key} must be a finite number of at most {NUMBER_LIMIT:,}.")
        if setting.minimum is not None and number < setting.minimum:
            raise UsageError(f"{key} must be at least {setting.minimum:g}.")
        if setting.maximum is not None and number > setting.maximum:
            raise UsageError(f"{key} must be at most {setting.maximum:g}.")
        return str(number)
    if setting.kind == "bool":
        lowered = text.strip().lower()
        if lowered not in ("true", "false", "1", "0", "yes", "no", "on", "off"):
            raise UsageError(f"{key} must be true or false, not {text!r}.")
        return "true" if lowered in ("true", "1", "yes", "on") else "false"
    if setting.kind == "choice" and text not in setting.choices:
        raise UsageError(f"{key} must be one of {', '.join(setting.choices)}, not {text!r}.")
    if setting.pattern is not None and not re.fullmatch(setting.pattern, text):
        raise UsageError(f"{key} must look like {setting.example}, not {text!r}.")
    return text


def _typed(setting: Setting, text: str | None) -> Any:
    if text is None:
        return setting.default
    if setting.kind == "int":
        return int(text)
    if setting.kind == "float":
        return float(text)
    if setting.kind == "bool":
        return text == "true"
    return text


def get(conn: sqlite3.Connection, key: str) -> Any:
    """A setting's value (typed), or its default."""
    setting = setting_for(key)
    return _typed(setting, setting_rows.value(conn, key))


def public_url(conn: sqlite3.Connection) -> str | None:
    """`server.public_url` without a trailing slash, or None: where phones reach `eset2fa serve`."""
    value = get(conn, "server.public_url")
    return value.rstrip("/") if value else None


def get_prefixed(conn: sqlite3.Connection, prefix: str) -> dict[str, str]:
    """Stored values of a key family, e.g. `sms.params.` -> {"To": "{phone}"}, by key order."""
    rows = setting_rows.values_with_prefix(conn, prefix)
    return {key[len(prefix) :]: value for key, value in rows}


def get_secret(store: Store, key: str) -> str | None:
    """A credential: from the environment variable named by `<key>_env`, else decrypted."""
    env_name = get(store.conn, key + "_env")
    if env_name:
        value = os.environ.get(env_name)
        if value:
            return value
    sealed = setting_rows.secret(store.conn, key)
    if sealed is None:
        return None
    from eset2fa.secrets.keys import load_key

    return load_key(store.conn, store.path).open(sealed, secret_context(key)).decode()


def secret_context(key: str) -> str:
    """What binds a sealed credential to its setting."""
    return f"config:{key}"


def set_value(store: Store, actor: Actor, key: str, text: str) -> dict:
    require_admin(actor, "change settings")
    value = parse_value(key, text)
    with store.write() as conn:
        setting_rows.put_value(conn, key, value, now_iso())
        audit_chain.record(conn, actor.label, "config.set", key, "ok", {"value": value})
    return {"key": key, "value": _typed(setting_for(key), value)}


def set_secret(store: Store, actor: Actor, key: str, value: str) -> dict:
    require_admin(actor, "change settings")
    setting = setting_for(key)
    if not setting.secret:
        raise UsageError(f"{key} is not a secret.", f"Use `eset2fa config set {key} VALUE`.")
    if not value:
        raise UsageError(f"The value for {key} is empty.")
    from eset2fa.secrets.keys import load_key

    with store.write() as conn:
        master = load_key(conn, store.path, create=True)
        sealed = master.seal(value.encode(), secret_context(key))
        setting_rows.put_secret(conn, key, sealed, now_iso())
        audit_chain.record(conn, actor.label, "config.set-secret", key, "ok")
    return {"key": key, "secret": "set"}


def unset(store: Store, actor: Actor, key: str) -> dict:
    require_admin(actor, "change settings")
    setting_for(key)
    with store.write() as conn:
        if not setting_rows.delete(conn, key):
            raise NotFound(f"{key} is not set.", "It already has its default value.")
        audit_chain.record(conn, actor.label, "config.unset", key, "ok")
    return {"key": key, "value": setting_for(key).default}


def show(store: Store) -> list[dict]:
    """Every declared setting and every stored one; secrets only as set/unset."""
    stored = {row["key"]: row for row in setting_rows.all_rows(store.conn)}
    keys = sorted(set(SETTINGS) | set(stored))
    rows = []
    for key in keys:
        setting = setting_for_or_none(key)
        if setting is None:
            continue  # a key from a newer version: leave it alone
        row = stored.get(key)
        if setting.secret:
            value = "(set)" if row is not None and row["secret"] is not None else "(not set)"
        else:
            value = _typed(setting, row["value"] if row else None)
        rows.append(
            {
                "key": key,
                "value": value,
                "default": row is None,
                "secret": setting.secret,
                "help": setting.help,
            }
        )
    return rows
