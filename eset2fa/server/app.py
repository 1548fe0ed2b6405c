"""`create_app()`: the Starlette application `eset2fa serve` runs.

Routes come from the server's modules: `api.routes` (the application API under /v1), `pages.routes`
(the phone pages) and `/healthz` here. Every error the server answers by itself (an unknown path,
a wrong method) is a JSON document `{"error": {"code", "message"}}`, as the API's own errors are.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from eset2fa.server import api, pages
from eset2fa.server.context import ServerContext, context_of
from eset2fa.server.request_log import RequestLog

_HTTP_CODES = {400: "bad_request", 404: "not_found", 405: "method_not_allowed"}


def healthz(request: Request) -> JSONResponse:
    """For load balancers and monitoring: 200 while the store answers, 503 when it does not.

    No credentials, and nothing about users: the schema version read is the cheapest query that
    proves this worker's connection to the store works.
    """
    try:
        context_of(request).store().schema_version()
    except Exception:  # StorageError, sqlite3.Error, OSError: whatever it is, not healthy
        return JSONResponse({"status": "unavailable"}, status_code=503)
    return JSONResponse({"status": "ok"})


def _http_error(request: Request, exc: Exception) -> JSONResponse:
    status = getattr(exc, "status_code", 500)
    code = _HTTP_CODES.get(status, "http_error")
    message = {
        404: "No such path.",
        405: f"Method {request.method} is not allowed here.",
    }.get(status, getattr(exc, "detail", "") or "Error.")
    headers = getattr(exc, "headers", None)
    return JSONResponse(
        {"error": {"code": code, "message": message}}, status_code=status, headers=headers
    )


def create_app(db_path: Path, *, public_url: str | None = None) -> Starlette:
    """The server for the store at `db_path`; `public_url` overrides `server.public_url`.

    The store is not opened here: `ServerContext.check()` (run by `eset2fa serve` before it binds
    the port) and then each worker thread, at its first request, open it.
    """
    context = ServerContext(db_path, public_url=public_url)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette):
        try:
            yield
        finally:
            context.close()

    app = Starlette(
        routes=[
            Route("/healthz", healthz, methods=["GET", "HEAD"]),
            *api.routes,
            *pages.routes,
        ],
        middleware=[Middleware(RequestLog)],
        exception_handlers={HTTPException: _http_error},
        lifespan=lifespan,
    )
    app.state.context = context
    return app
