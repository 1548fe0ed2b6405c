"""One line per request on stderr, and the headers every response carries.

The line: `<UTC time> <client> <METHOD> <path> <status> <duration>ms`. Never the query string (a
push page's `?t=<token>`), never a header or a body (the API key, the code), and the token part of
the phone pages' paths (`/e/<token>`, `/p/<request id>`) replaced by `...`; any other path segment
long enough to be a token (20 or more base64url characters) is replaced too, so a link pasted
into a wrong path is not logged either. The path is percent-encoded, so a request cannot write a
line break or a terminal escape into the log.

A plain ASGI middleware, not Starlette's BaseHTTPMiddleware: that one runs each request through an
extra task and memory stream, and costs about as much as a small route.
"""

from __future__ import annotations

import re
import sys
import time
from collections.abc import Callable
from urllib.parse import quote

_PHONE_PAGE = re.compile(r"^/+([ep])/+[^/]*", re.IGNORECASE)
_TOKEN_LIKE = re.compile(r"(?<=/)[A-Za-z0-9_\-.~%]{20,}")

SECURITY_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    # A phone page's URL holds a token: it must not travel on as a Referer, be cached or framed.
    (b"referrer-policy", b"no-referrer"),
    (b"cache-control", b"no-store"),
    (b"x-frame-options", b"DENY"),
]

_ERROR_BODY = b'{"error":{"code":"internal","message":"Internal server error."}}'


def loggable_path(path: str) -> str:
    """The request path as logged: tokens replaced by `...`, everything else percent-encoded."""
    path = _PHONE_PAGE.sub(lambda m: f"/{m.group(1).lower()}/...", path, count=1)
    path = _TOKEN_LIKE.sub("...", path)
    return quote(path, safe="/.-_~")


def _stderr_line(line: str) -> None:
    try:
        sys.stderr.write(line)
        sys.stderr.flush()
    except (OSError, ValueError):  # stderr closed or gone: serving matters more than the log
        pass


class RequestLog:
    """ASGI middleware: log each HTTP request once it is answered; add the security headers.

    An exception from the application is answered with a JSON 500 (if nothing was sent yet) and
    logged as its class name only: its message or traceback could hold what the request carried.
    """

    def __init__(self, app, write: Callable[[str], None] = _stderr_line) -> None:
        self.app = app
        self.write = write

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 0

        async def send_with_headers(message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", ()), *SECURITY_HEADERS]
            await send(message)

        failure = ""
        try:
            await self.app(scope, receive, send_with_headers)
        except Exception as exc:
            failure = f" error={type(exc).__name__}"
            if not status:
                await send_with_headers(
                    {
                        "type": "http.response.start",
                        "status": 500,
                        "headers": [(b"content-type", b"application/json")],
                    }
                )
                await send({"type": "http.response.body", "body": _ERROR_BODY})
        finally:
            elapsed = (time.perf_counter() - started) * 1000
            client = scope.get("client")
            self.write(
                f"{time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())} "
                f"{client[0] if client else '-'} {scope['method']} "
                f"{loggable_path(scope['path'])} {status or '-'} {elapsed:.1f}ms{failure}\n"
            )
