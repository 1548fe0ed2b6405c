"""`eset2fa serve`: a real server process on a free loopback port, spoken to over HTTP."""

from __future__ import annotations

import base64
import json
import os
import signal
import socket

import pytest
from server_helpers import free_port, http, running_server, start_server

pytestmark = pytest.mark.usefixtures("env_master_key")


def _listening(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(1)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def test_healthz_answers_with_json_and_the_security_headers(store):
    with running_server(store) as server, http() as client:
        response = client.get(server.url + "/healthz", timeout=10)
        assert response.status_code == 200
        assert response.json() == {"status": "ok"}
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["referrer-policy"] == "no-referrer"
        assert response.headers["cache-control"] == "no-store"
        assert "server" not in response.headers  # no version banner
        assert client.head(server.url + "/healthz", timeout=10).status_code == 200


def test_unknown_paths_and_wrong_methods_are_json_errors(store):
    with running_server(store) as server, http() as client:
        missing = client.get(server.url + "/nowhere", timeout=10)
        assert missing.status_code == 404
        assert missing.json()["error"]["code"] == "not_found"
        wrong = client.post(server.url + "/healthz", timeout=10)
        assert wrong.status_code == 405
        assert wrong.json()["error"]["code"] == "method_not_allowed"
        assert "GET" in wrong.headers["allow"]


def test_one_log_line_per_request_without_query_or_token(store):
    token = base64.urlsafe_b64encode(os.urandom(24)).decode().rstrip("=")
    with running_server(store) as server, http() as client:
        client.get(server.url + "/healthz?secret=hunter2", timeout=10)
        client.get(server.url + f"/e/{token}", timeout=10)
        client.get(server.url + f"/p/K7Q-4M2?t={token}", timeout=10)
        client.get(server.url + f"/somewhere/{token}/else", timeout=10)
        client.get(server.url + "/bad%0Aline%1b[31m", timeout=10)
        log = server.wait_for_log("/somewhere/")
        log = server.wait_for_log("/bad")
    lines = [line for line in log.splitlines() if " GET " in line][-5:]  # after the start's
    time_, client_ip, method, path, status, duration = lines[0].split(" ")
    assert (client_ip, method, path, status) == ("127.0.0.1", "GET", "/healthz", "200")
    assert time_.endswith("Z") and duration.endswith("ms")
    assert " GET /e/... 404 " in lines[1]
    assert " GET /p/... 404 " in lines[2]
    assert " GET /somewhere/.../else 404 " in lines[3]
    assert "hunter2" not in log and "secret" not in log and token not in log and "K7Q" not in log
    assert "\x1b" not in log and "/bad%0Aline%1B%5B31m" in lines[4]  # no forged line, no escape


def test_sigterm_and_ctrl_c_stop_cleanly(store):
    for sig in (signal.SIGTERM, signal.SIGINT):
        server = start_server(store)
        try:
            assert server.stop(sig) == 0
            assert server.log().rstrip().endswith("stopped")
            assert "Traceback" not in server.log()
            assert not _listening(server.port)
        finally:
            server.proc.stdout.close()


def test_json_mode_prints_one_document_when_stopped(store):
    server = start_server(store, "--json")
    try:
        assert server.stop() == 0
        document = json.loads(server.proc.stdout.read())
    finally:
        server.proc.stdout.close()
    assert document == {"url": server.url, "public_url": None, "stopped": True}


@pytest.mark.parametrize(
    "args",
    [
        ["--host", "0.0.0.0"],
        ["--host", "0.0.0.0", "--public-url", "http://2fa.example.org"],
        ["--host", "::"],
    ],
)
def test_a_network_address_needs_tls_in_front_or_insecure_http(store, args):
    from conftest import run_process

    port = free_port()
    result = run_process("--db", str(store), "serve", "--port", str(port), *args, timeout=30)
    assert result.returncode == 2, result.stderr
    assert "Refusing to listen" in result.stderr and "--insecure-http" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    "args",
    [
        ["--host", "0.0.0.0", "--public-url", "https://2fa.example.org"],
        ["--host", "0.0.0.0", "--insecure-http"],
    ],
)
def test_a_network_address_with_tls_in_front_or_insecure_http_is_served(store, args):
    server = start_server(store, *args)
    try:
        assert _listening(server.port)
    finally:
        assert server.stop() == 0
        server.proc.stdout.close()


def test_the_public_url_setting_allows_a_network_address(store, cli):
    assert cli("config", "set", "server.public_url", "https://2fa.example.org/").exit_code == 0
    server = start_server(store, "--host", "0.0.0.0", "--json")
    try:
        assert server.stop() == 0
        document = json.loads(server.proc.stdout.read())
    finally:
        server.proc.stdout.close()
    assert document["public_url"] == "https://2fa.example.org"


@pytest.mark.parametrize(
    "url",
    ["ftp://2fa.example.org", "https://2fa.example.org/?a=b", "https://x.org/#f", "/relative"],
)
def test_a_bad_public_url_is_a_usage_error(store, cli, url):
    from conftest import run_process

    port = str(free_port())
    result = run_process("--db", str(store), "serve", "--port", port, "--public-url", url)
    assert result.returncode == 2, result.stderr
    assert "--public-url" in result.stderr
    assert cli("config", "set", "server.public_url", url).exit_code == 2


def test_a_busy_port_is_a_usage_error(store):
    from conftest import run_process

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run_process("--db", str(store), "serve", "--port", str(port), timeout=30)
    assert result.returncode == 2, result.stderr
    assert "Cannot listen" in result.stderr


def test_no_store_a_damaged_store_or_a_wrong_key_is_exit_9_before_listening(
    store, tmp_path, monkeypatch
):
    from conftest import run_process

    port = free_port()
    missing = run_process("--db", str(tmp_path / "none.db"), "serve", "--port", str(port))
    assert missing.returncode == 9, missing.stderr
    assert not (tmp_path / "none.db").exists()

    damaged = tmp_path / "damaged.db"
    damaged.write_bytes(b"not a database at all" * 100)
    result = run_process("--db", str(damaged), "serve", "--port", str(port))
    assert result.returncode == 9, result.stderr

    before = store.read_bytes()
    wrong = base64.urlsafe_b64encode(os.urandom(32)).decode().rstrip("=")
    result = run_process(
        "--db", str(store), "serve", "--port", str(port), env={"ESET2FA_KEY": wrong}
    )
    assert result.returncode == 9, result.stderr
    assert "key" in result.stderr.lower() and "Traceback" not in result.stderr
    assert store.read_bytes() == before
    assert not _listening(port)
