"""`eset2fa serve`: the authentication server (phone pages, the verification API, /healthz)."""

import typer

from eset2fa.commands.invocation import invocation


def serve(
    ctx: typer.Context,
    host: str = typer.Option(
        "127.0.0.1", "--host", help="Address to listen on (loopback unless TLS is in front)."
    ),
    port: int = typer.Option(8080, "--port", min=1, max=65535, help="TCP port to listen on."),
    public_url: str = typer.Option(
        None,
        "--public-url",
        metavar="URL",
        help="Address phones reach the server at (overrides the server.public_url setting).",
    ),
    insecure_http: bool = typer.Option(
        False, "--insecure-http", help="Allow plain HTTP on a non-loopback address."
    ),
) -> None:
    """Run the authentication server until Ctrl-C or SIGTERM (then exit 0).

    Serves the verification API for applications (POST /v1/verify, POST /v1/push, GET
    /v1/push/ID with an API key from `eset2fa apikey create`), the phone pages that SMS and push
    links open, and GET /healthz. Listens on 127.0.0.1 by default; another address is refused
    (exit 2) unless the public URL is https:// (TLS at a reverse proxy) or --insecure-http is
    given. A missing or damaged store or a wrong key is exit 9, before anything listens. One
    line per request goes to stderr (never a query string, key, code or token).

    Example:
        eset2fa serve
        eset2fa serve --port 8443 --public-url https://2fa.example.org
        eset2fa --db /var/lib/eset2fa/eset2fa.db serve --host 0.0.0.0 \\
            --public-url https://2fa.example.org
    """
    from rich.markup import escape

    from eset2fa.server.runner import serve as run_server

    inv = invocation(ctx)
    inv.require_store_file()  # exit 9 for a missing path before anything is imported or opened
    result = run_server(
        inv.db_path,
        host=host,
        port=port,
        public_url=public_url,
        insecure_http=insecure_http,
        notice=lambda text: inv.output.notice(escape(text)),
    )
    inv.output.notice("stopped")
    inv.output.result(result, lambda: None)
