"""`eset2fa doctor`: is this installation able to do its job? Database, key, endpoints.

Endpoints are checked the way the transports reach them: directly, never through a proxy
(SPEC S11), with a short TCP connection to each configured gateway's host and port.
"""

from __future__ import annotations

import os
import socket
import time
from pathlib import Path
from urllib.parse import urlsplit

from eset2fa.errors import Eset2faError

OK, WARNING, FAILED = "ok", "warning", "failed"
_PROXY_VARIABLES = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy")


def _check(name: str, status: str, detail: str) -> dict:
    return {"check": name, "status": status, "detail": detail}


def _database(store) -> dict:
    from eset2fa.db.health import quick_check

    result = quick_check(store)
    if result != ["ok"]:
        return _check("database", FAILED, "quick_check: " + "; ".join(result[:3]))
    return _check("database", OK, f"{store.path} (schema {store.schema_version()}, quick_check ok)")


def _key(store) -> dict:
    from eset2fa.db import meta as meta_rows
    from eset2fa.secrets.keys import load_key

    if meta_rows.get(store.conn, "key_check") is None:
        return _check("key", WARNING, "no key yet: one is created with the next change")
    try:
        master = load_key(store.conn, store.path)
    except Eset2faError as error:
        return _check("key", FAILED, error.message)
    named = f", key id {master.key_id}" if master.key_id else ""
    return _check("key", OK, f"from {master.source}{named}, fingerprint {master.fingerprint}")


def _passwords(store) -> dict:
    from eset2fa.accounts import passwords

    profile = passwords.configured_profile(store.conn)
    detail = passwords.describe(profile)
    if profile in passwords.CHEAP_PROFILES:
        return _check(
            "passwords",
            WARNING,
            f"{detail}: for test suites only; run `eset2fa config set {passwords.SETTING} "
            f"{passwords.DEFAULT_PROFILE}` (hashes are redone at each user's next login)",
        )
    return _check("passwords", OK, detail)


def configured_endpoints(conn) -> list[tuple[str, str | None, str]]:
    """(check name, URL or None when missing, the setting that holds it) for active transports."""
    from eset2fa.ops import settings

    endpoints = []
    if settings.get(conn, "sms.transport") == "http":
        key = "twilio.api_base" if settings.get(conn, "sms.preset") == "twilio" else "sms.url"
        endpoints.append(("sms gateway", settings.get(conn, key), key))
    if settings.get(conn, "push.transport") == "ntfy":
        endpoints.append(("ntfy server", settings.get(conn, "ntfy.server"), "ntfy.server"))
    return endpoints


def reach(url: str, timeout: float) -> tuple[str, str]:
    """(status, detail) of a direct TCP connection to the URL's host and port."""
    try:
        parts = urlsplit(url)
        host, port = parts.hostname, parts.port or {"http": 80, "https": 443}.get(parts.scheme)
    except ValueError:
        host, port = None, None
    if not host or not port:
        return FAILED, "not an http(s) URL"
    where = f"{host}:{port}"
    started = time.monotonic()
    try:
        with socket.create_connection((host, port), timeout=timeout):
            pass
    except socket.gaierror:
        return FAILED, f"{where}: the host name does not resolve"
    except TimeoutError:
        return FAILED, f"{where}: no answer within {timeout:g} s"
    except OSError as exc:
        return FAILED, f"{where}: {exc.strerror or type(exc).__name__}"
    elapsed = (time.monotonic() - started) * 1000
    return OK, f"{where} reachable directly in {elapsed:.0f} ms"


def run_checks(db_path: Path) -> dict:
    """Every check; `ok` is False when any check failed (warnings do not count)."""
    from eset2fa.db import open_store
    from eset2fa.ops import settings

    checks = []
    try:
        store = open_store(db_path, create=False)
    except Eset2faError as error:
        checks.append(_check("database", FAILED, error.message))
        return {"ok": False, "checks": checks}
    try:
        checks.append(_database(store))
        checks.append(_key(store))
        checks.append(_passwords(store))
        timeout = min(3.0, settings.get(store.conn, "http.connect_timeout"))
        for name, url, key in configured_endpoints(store.conn):
            if not url:
                checks.append(_check(name, FAILED, f"{key} is not set"))
            else:
                checks.append(_check(name, *reach(url, timeout)))
    finally:
        store.close()
    proxies = [name for name in _PROXY_VARIABLES if os.environ.get(name)]
    if proxies:
        detail = f"{', '.join(proxies)} set and ignored: 2FA traffic goes direct"
        checks.append(_check("proxy", OK, detail))
    return {"ok": all(c["status"] != FAILED for c in checks), "checks": checks}
