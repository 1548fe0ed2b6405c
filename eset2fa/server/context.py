"""What every request of the server reaches: the store, settings, templates, rate limiters.

The store: one connection per thread, opened on the thread's first use and kept in a
`threading.local` (an SQLite connection belongs to the thread that uses it; opening one per request
would cost a file open, the schema check and the key lookup every time, ~1 ms). Every connection
is closed when the server stops. Two kinds of thread use the store:

- the store thread (`run`): ONE thread per process that does the API's store work, a request at a
  time, on one connection. The requests of one process then never wait on each other's write
  lock (SQLite's busy handler sleeps 1, 2, 5, 10 ms... between retries, which at a thousand
  verifications a second costs more than the verifications), and that connection's page cache
  stays valid, since no other connection of the process writes. The event loop keeps reading
  and parsing the next requests meanwhile, and answers /healthz.
- the worker threads of Starlette's pool, which run plain `def` routes (the phone pages,
  /healthz): a page that waits for the write lock (`busy_timeout`, up to 30 s when another
  process holds it) blocks its worker thread, not the event loop.

Settings are read from the store at most every `SETTINGS_TTL_SECONDS` per process, so a
`config set` reaches a running server within that time without a read on every request.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from starlette.requests import Request
    from starlette.responses import HTMLResponse

    from eset2fa.db import Store

SETTINGS_TTL_SECONDS = 5.0
TEMPLATES = Path(__file__).parent / "templates"

# Pages may use inline styles and images only through the per-response nonce and data: URLs (the
# QR code); nothing is loaded from anywhere, no script runs, no form posts elsewhere, no framing.
_CSP = (
    "default-src 'none'; style-src 'nonce-{nonce}'; img-src data:; form-action 'self'; "
    "base-uri 'none'; frame-ancestors 'none'"
)


class ServerContext:
    """The state one server process shares between its requests (`request.app.state.context`)."""

    def __init__(self, db_path: Path, *, public_url: str | None = None) -> None:
        self.db_path = Path(db_path)
        self.public_url_override = public_url  # `serve --public-url`; else the stored setting
        self._local = threading.local()
        self._lock = threading.Lock()
        self._stores: list[Store] = []
        self._settings: dict[str, tuple[float, Any]] = {}
        self._templates = None
        self._executor = None
        self.started = time.time()

    # -- the store ----------------------------------------------------------------------------
    def check(self) -> None:
        """Refuse to serve a missing, corrupt or foreign store, or one whose key is missing or
        wrong (StorageError / EncryptionKeyError, exit 9): called before the port is bound."""
        from eset2fa.secrets import keys

        keys.for_store(self.store())

    def store(self) -> Store:
        """This thread's store, opened on first use (never created: `eset2fa init` does that)."""
        store = getattr(self._local, "store", None)
        if store is None:
            from eset2fa.api import open_store

            store = open_store(self.db_path)
            self._local.store = store
            with self._lock:
                self._stores.append(store)
        return store

    def close(self) -> None:
        """Close every thread's store (at shutdown, when no request runs any more)."""
        if self._executor is not None:
            self._executor.shutdown(wait=True)  # no request runs any more: returns at once
            self._executor = None
        with self._lock:
            stores, self._stores = self._stores, []
        for store in stores:
            try:
                store.close()
            except Exception:  # noqa: S110 - closing at exit: nothing left to do about it
                pass

    async def run(self, work):
        """Run `work()` (store work: a verification, a push) in this process's store thread."""
        import asyncio

        if self._executor is None:
            from concurrent.futures import ThreadPoolExecutor

            self._executor = ThreadPoolExecutor(1, thread_name_prefix="eset2fa-store")
        return await asyncio.get_running_loop().run_in_executor(self._executor, work)

    # -- settings -----------------------------------------------------------------------------
    def setting(self, key: str) -> Any:
        """A setting's typed value, read from the store at most every SETTINGS_TTL_SECONDS."""
        moment = time.monotonic()
        cached = self._settings.get(key)
        if cached is not None and moment - cached[0] < SETTINGS_TTL_SECONDS:
            return cached[1]
        from eset2fa.ops import settings

        value = settings.get(self.store().conn, key)
        self._settings[key] = (moment, value)
        return value

    @property
    def public_url(self) -> str | None:
        """Where phones reach this server (no trailing slash), or None when not configured."""
        url = self.public_url_override or self.setting("server.public_url")
        return url.rstrip("/") if url else None

    # -- pages --------------------------------------------------------------------------------
    @property
    def templates(self):
        if self._templates is None:
            import jinja2

            self._templates = jinja2.Environment(
                loader=jinja2.FileSystemLoader(TEMPLATES),
                autoescape=True,  # every template, whatever its name: values are never markup
                undefined=jinja2.StrictUndefined,  # a misspelt variable is an error, not ""
                trim_blocks=True,
                lstrip_blocks=True,
            )
        return self._templates

    def render(
        self,
        request: Request,
        template: str,
        values: dict | None = None,
        *,
        status_code: int = 200,
    ) -> HTMLResponse:
        """A page from `templates/` with its Content-Security-Policy.

        The template gets `values`, `csp_nonce` (put it on every <style>) and `request`.
        """
        import secrets

        from starlette.responses import HTMLResponse

        nonce = secrets.token_urlsafe(16)
        html = self.templates.get_template(template).render(
            **(values or {}), csp_nonce=nonce, request=request
        )
        return HTMLResponse(
            html,
            status_code=status_code,
            headers={"Content-Security-Policy": _CSP.format(nonce=nonce)},
        )


def context_of(request: Request) -> ServerContext:
    return request.app.state.context
