"""Running the server: where it may listen, and uvicorn started and stopped from Python.

Binding rules: loopback (127.0.0.1, ::1, localhost) by default. Any other address puts the server
where other machines reach it, so it is refused unless the public URL (`--public-url`, else the
`server.public_url` setting) is `https://` (TLS ends at a reverse proxy in front of it) or
`--insecure-http` says plain HTTP on the network is meant (a lab, a private link).

Stopping: SIGTERM (systemd, `kill`) and Ctrl-C let the requests in flight finish (at most
GRACEFUL_SECONDS), close every store connection and return; `eset2fa serve` then prints "stopped"
and exits 0. uvicorn on its own re-raises the signal after its shutdown, which would end the
process with 130 or by SIGTERM instead: `_Server.capture_signals` keeps its handlers and drops
that step. A second Ctrl-C stops at once, as in uvicorn.
"""

from __future__ import annotations

import contextlib
import ipaddress
import signal
import socket
import sys
from collections.abc import Callable
from pathlib import Path

from eset2fa.errors import UsageError

GRACEFUL_SECONDS = 10
_LOOPBACK_NAMES = {"localhost", "localhost.", "ip6-localhost"}


def is_loopback(host: str) -> bool:
    if host.lower() in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a host name: it may resolve to anything


def check_public_url(text: str | None) -> str | None:
    """`--public-url` validated as the `server.public_url` setting is (UsageError, exit 2)."""
    if text is None:
        return None
    from eset2fa.ops.settings import parse_value

    try:
        return parse_value("server.public_url", text).rstrip("/")
    except UsageError as error:
        raise UsageError(
            error.message.replace("server.public_url", "--public-url"),
            "Give the address phones use, e.g. --public-url https://2fa.example.org",
        ) from None


def check_bind(host: str, public_url: str | None, insecure_http: bool) -> None:
    """Refuse a non-loopback address without TLS in front or an explicit --insecure-http."""
    if is_loopback(host) or insecure_http:
        return
    if public_url and public_url.lower().startswith("https://"):
        return
    raise UsageError(
        f"Refusing to listen on {host}: not a loopback address, and the public URL is "
        + ("not https." if public_url else "not set."),
        "Put a TLS reverse proxy in front and pass --public-url https://..., or --insecure-http "
        "to serve plain HTTP on the network anyway; or keep the default --host 127.0.0.1.",
    )


def _listening_socket(host: str, port: int) -> socket.socket:
    try:
        family, kind, proto, _name, address = socket.getaddrinfo(
            host.strip("[]"), port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
        sock = socket.socket(family, kind, proto)
    except (OSError, UnicodeError) as exc:
        raise UsageError(
            f"Cannot listen on {host}: {getattr(exc, 'strerror', None) or exc}.",
            "Check --host: an address of this machine, e.g. 127.0.0.1.",
        ) from None
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.set_inheritable(True)
    except OSError as exc:
        sock.close()
        raise UsageError(
            f"Cannot listen on {host}:{port}: {exc.strerror or exc}.",
            "Choose another --port, or stop what already listens there.",
        ) from None
    return sock


def _server_class():
    import uvicorn

    class Server(uvicorn.Server):
        on_started: Callable[[], None] | None = None

        @contextlib.contextmanager
        def capture_signals(self):
            original = {sig: signal.signal(sig, self.handle_exit) for sig in _SIGNALS}
            try:
                yield
            finally:
                for sig, handler in original.items():
                    signal.signal(sig, handler)

        async def startup(self, sockets=None) -> None:
            await super().startup(sockets=sockets)
            if self.started and self.on_started is not None:
                self.on_started()

    return Server


_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def serve(
    db_path: Path,
    *,
    host: str = "127.0.0.1",
    port: int = 8080,
    public_url: str | None = None,
    insecure_http: bool = False,
    notice: Callable[[str], None] = print,
) -> dict:
    """Check everything, bind, serve until SIGTERM or Ctrl-C; returns what was served.

    Raises before binding: UsageError (a bad --public-url, a refused or busy address) and
    StorageError / EncryptionKeyError (no store, a corrupt one, a missing or wrong key).
    """
    public_url = check_public_url(public_url)
    from eset2fa.server.app import create_app

    app = create_app(db_path, public_url=public_url)
    context = app.state.context
    try:
        context.check()
        effective_url = context.public_url
    except BaseException:
        context.close()
        raise
    try:
        check_bind(host, effective_url, insecure_http)
        sock = _listening_socket(host, port)
    except BaseException:
        context.close()
        raise
    import uvicorn

    shown_host = f"[{host}]" if ":" in host and not host.startswith("[") else host
    bound_port = sock.getsockname()[1]
    url = f"http://{shown_host}:{bound_port}"
    config = uvicorn.Config(
        app,
        # Chosen by measurement (bench/api_verify.py, README "Performance"): httptools and uvloop
        # take a third off the server's CPU per request compared with h11 and asyncio. One
        # process: its store thread is the only writer, so requests never meet SQLite's busy
        # handler; more processes would only add that contention on a 2-core machine where the
        # clients also run (scale out with several `eset2fa serve` behind the proxy instead).
        http="httptools",
        loop="uvloop" if sys.platform != "win32" else "asyncio",
        log_config=None,  # uvicorn's warnings reach stderr through logging's last resort
        log_level="warning",
        access_log=False,  # our own line per request (request_log.py), tokens redacted
        lifespan="on",
        server_header=False,
        timeout_graceful_shutdown=GRACEFUL_SECONDS,
    )
    server = _server_class()(config)

    def started() -> None:
        notice(
            f"eset2fa serve: listening on {url} for {db_path}"
            + (f" (public URL {effective_url})" if effective_url else "")
            + "; stop with Ctrl-C or SIGTERM"
        )

    server.on_started = started
    try:
        server.run(sockets=[sock])
    finally:
        sock.close()
        context.close()
    return {"url": url, "public_url": effective_url, "stopped": True}
