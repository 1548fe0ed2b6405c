"""`eset2fa doctor`: database, key and direct reachability of the configured endpoints."""

from __future__ import annotations

import base64
import os
import socket

import pytest

pytestmark = pytest.mark.usefixtures("env_master_key")


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]  # nothing listens once the socket is closed


def by_check(report: dict) -> dict[str, dict]:
    return {check["check"]: check for check in report["checks"]}


def test_fresh_store_is_healthy_with_its_key(cli, store):
    r = cli("doctor", "--json")
    assert r.exit_code == 0, r.stdout
    checks = by_check(r.json())
    assert checks["database"]["status"] == "ok"
    # a store gets its key with its creation: the audit chain is keyed from the first row
    assert checks["key"]["status"] == "ok"
    assert "sms gateway" not in checks  # the outbox needs no network
    human = cli("doctor")
    assert human.exit_code == 0 and "quick_check ok" in human.stdout


def test_reachable_gateway_and_unreachable_ntfy_fail(cli, store, httpserver, monkeypatch):
    for key, value in (
        ("sms.transport", "http"),
        ("sms.url", httpserver.url_for("/send")),
        ("push.transport", "ntfy"),
        ("ntfy.server", f"http://127.0.0.1:{closed_port()}"),
    ):
        assert cli("config", "set", key, value).exit_code == 0
    assert cli("config", "set-secret", "sms.password", input="pw-123456\n").exit_code == 0
    monkeypatch.setenv("HTTPS_PROXY", "http://127.0.0.1:9")  # must be ignored
    r = cli("doctor", "--json")
    assert r.exit_code == 1
    report = r.json()
    assert report["ok"] is False
    checks = by_check(report)
    assert checks["key"]["status"] == "ok"
    assert checks["sms gateway"]["status"] == "ok"
    assert "reachable directly" in checks["sms gateway"]["detail"]
    assert checks["ntfy server"]["status"] == "failed"
    assert "HTTPS_PROXY" in checks["proxy"]["detail"]


def test_missing_endpoint_setting_fails(cli, store):
    assert cli("config", "set", "push.transport", "ntfy").exit_code == 0
    r = cli("doctor", "--json")
    assert r.exit_code == 1
    assert by_check(r.json())["ntfy server"]["detail"] == "ntfy.server is not set"


def test_missing_database_is_reported_not_created(cli, tmp_path):
    missing = tmp_path / "nowhere.db"
    r = cli("doctor", "--json", db=missing)
    assert r.exit_code == 1
    assert by_check(r.json())["database"]["status"] == "failed"
    assert not missing.exists()


def test_wrong_key_fails(cli, store, monkeypatch):
    assert cli("config", "set-secret", "sms.password", input="pw-123456\n").exit_code == 0
    monkeypatch.setenv("ESET2FA_KEY", base64.urlsafe_b64encode(os.urandom(32)).decode())
    r = cli("doctor", "--json")
    assert r.exit_code == 1
    assert by_check(r.json())["key"]["status"] == "failed"
