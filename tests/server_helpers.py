"""`eset2fa serve` as a real process on a free loopback port, for tests that talk HTTP to it.

    from server_helpers import running_server

    def test_x(store):
        with running_server(store) as server:
            assert requests.get(server.url + "/healthz").status_code == 200
            server.log()  # what it wrote to stderr so far (one line per request)

The server's stderr goes to a file beside the store, so a test reads the request log at any time
without a pipe that could fill up. Every wait is bounded; the process is stopped (SIGTERM, then
SIGKILL) when the `with` block ends, whatever happened inside it.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import requests

START_TIMEOUT = 20  # seconds until /healthz answers; it takes well under one


def free_port() -> int:
    """A TCP port nobody listens on now (the kernel's pick; free again once closed)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def http() -> requests.Session:
    """A client that never goes through a proxy from the environment."""
    session = requests.Session()
    session.trust_env = False
    return session


class ServerProcess:
    def __init__(self, proc: subprocess.Popen, port: int, log_path: Path) -> None:
        self.proc = proc
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.log_path = log_path

    def log(self) -> str:
        """Everything the server wrote to stderr so far."""
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def wait_for_log(self, text: str, timeout: float = 10) -> str:
        """The log once it contains `text` (the line for a request is written after the
        response is sent, so the client may see the answer a moment before the line)."""
        deadline = time.monotonic() + timeout
        while text not in (log := self.log()):
            if time.monotonic() > deadline:
                raise AssertionError(f"{text!r} not in the server's log within {timeout} s:\n{log}")
            time.sleep(0.02)
        return log

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15) -> int:
        """Send `sig` and wait for the exit; the exit status (fails the test on a hang)."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)
            raise AssertionError(f"the server did not stop within {timeout} s of {sig!r}") from None


def start_server(
    db_path: Path,
    *args: str,
    env: dict | None = None,
    port: int | None = None,
    wait: bool = True,
) -> ServerProcess:
    """`python -m eset2fa --db DB serve --port PORT ARGS...`; waits for /healthz unless told not."""
    port = port or free_port()
    log_path = Path(db_path).with_name(f"serve-{port}.log")
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "eset2fa", "--db", str(db_path), "serve", "--port", str(port)]
            + list(args),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=log,
            env={**os.environ, **(env or {})},
            # SIGINT at its default in the child, as a terminal gives it (see conftest)
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
        )
    server = ServerProcess(proc, port, log_path)
    if wait:
        _wait_until_healthy(server)
    return server


def _wait_until_healthy(server: ServerProcess) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    with http() as session:
        while True:
            if server.proc.poll() is not None:
                raise AssertionError(
                    f"the server exited with {server.proc.returncode} before answering:\n"
                    + server.log()
                )
            try:
                if session.get(server.url + "/healthz", timeout=2).status_code == 200:
                    return
            except requests.ConnectionError:
                pass
            if time.monotonic() > deadline:
                server.proc.kill()
                server.proc.wait(timeout=10)
                raise AssertionError(
                    f"/healthz did not answer within {START_TIMEOUT} s:\n" + server.log()
                )
            time.sleep(0.02)


@contextlib.contextmanager
def running_server(db_path: Path, *args: str, env: dict | None = None) -> Iterator[ServerProcess]:
    """A started server, stopped (and its stdout closed) when the block ends."""
    server = start_server(db_path, *args, env=env)
    try:
        yield server
    finally:
        if server.proc.poll() is None:
            server.proc.terminate()
            try:
                server.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                server.proc.kill()
                server.proc.wait(timeout=10)
        if server.proc.stdout is not None:
            server.proc.stdout.close()
