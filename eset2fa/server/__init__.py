"""The server face (`eset2fa serve`): Starlette routes and Jinja2 templates over the core.

Like `eset2fa/commands/` for the CLI, nothing here holds a rule or an SQL statement: a route parses
the request, calls one core function with the store of its worker thread, and renders the result
as JSON (the application API, api.py) or as a phone page (pages.py, templates/).

    app.py       create_app(): the routes of api.py and pages.py, /healthz, the middleware
    context.py   what every request reaches: the store (one connection per worker thread), the
                 settings, the rate limiters, the templates
    request_log.py  one stderr line per request, tokens redacted; security headers
    runner.py    binding rules and running uvicorn (what `eset2fa serve` calls)

Importing this package is cheap; starlette, uvicorn and jinja2 are imported by its modules, which
only `eset2fa serve` and the tests import.
"""
