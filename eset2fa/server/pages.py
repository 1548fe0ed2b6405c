"""The phone pages: one-time enrollment links (`/e/<token>`) and push answers with number matching
(`/p/<request id>?t=<token>`).

Each route parses the request, calls one core function (`twofactor.enroll_links`,
`twofactor.push_approval`) with the store of its worker thread and renders a template from
`templates/`. No rule lives here: what makes a link or a token valid, the lockout, what is audited
are the core's.

One neutral answer: an unknown, expired, used or superseded enrollment link, and a push token that
is wrong, used, expired or for another request, all get the same page (`invalid_link.html`) with
the same status (404), whatever the reason; so does a link of a user who is locked or no longer
pending. Nothing tells a visitor which case it was.

Forged form posts (CSRF). These pages set no cookie and have no session: a POST is authorized only
by the token it carries, and the form repeats the token of its URL in a hidden field (`token` on the
enrollment page, `t` on the push page), so a page on another site cannot build a valid post
without already knowing the token. SameSite cookies therefore protect nothing here (there is no
cookie to protect). What the token cannot stop, a page elsewhere making a browser that opened the
link post a pick or a code, is refused by the browser's own headers: a POST whose
`Sec-Fetch-Site` is `cross-site` or `same-site` is refused, and so is one whose `Origin` is
neither this server's public URL nor the address it was reached at. `Origin: null` is allowed:
browsers send exactly that for a form on a page served with `Referrer-Policy: no-referrer`, which
every page here is (its URL holds the token). A refused post changes nothing (403).
"""

from __future__ import annotations

import base64
import hmac
from urllib.parse import parse_qs, urlsplit

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from eset2fa.server.context import context_of

MAX_FORM_BYTES = 4096  # the forms hold a token and a code or a number: anything larger is not ours
_INVALID = ("invalid_link.html", 404)


def _invalid(request: Request) -> Response:
    template, status = _INVALID
    return context_of(request).render(request, template, status_code=status)


def _refused(request: Request) -> Response:
    return context_of(request).render(request, "refused.html", status_code=403)


def _same_origin_post(request: Request) -> bool:
    """Whether a POST comes from our own page (see the module's note on forged posts)."""
    site = request.headers.get("sec-fetch-site")
    if site is not None and site not in ("same-origin", "none"):
        return False
    origin = request.headers.get("origin")
    if origin is None or origin == "null":
        return True
    allowed = {f"{request.url.scheme}://{request.headers.get('host', '')}".lower()}
    public = context_of(request).public_url
    if public:
        parts = urlsplit(public)
        allowed.add(f"{parts.scheme}://{parts.netloc}".lower())
    return origin.lower() in allowed


async def _form(request: Request) -> dict[str, str] | None:
    """The urlencoded form, first value per field; None when it is too large or not a form."""
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind != "application/x-www-form-urlencoded":
        return None
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM_BYTES:
            return None
    try:
        fields = parse_qs(body.decode("ascii"), max_num_fields=8, strict_parsing=False)
    except (UnicodeDecodeError, ValueError):
        return None
    return {name: values[0] for name, values in fields.items()}


def _readable(iso: str) -> str:
    """`2026-11-26T02:11:29Z` as `02:11 UTC, 2026-11-26` (a phone screen is narrow)."""
    return f"{iso[11:16]} UTC, {iso[:10]}" if len(iso) >= 16 else iso


def _same_token(given: str | None, expected: str) -> bool:
    return isinstance(given, str) and hmac.compare_digest(given.encode(), expected.encode())


# -- enrollment links ------------------------------------------------------------------------
def _enroll_page(request: Request, token: str, view: dict, *, wrong_code: bool) -> Response:
    from eset2fa.twofactor import qr_codes

    values = {
        **view,
        "token": token,
        "qr_png": base64.b64encode(qr_codes.png_bytes(view["uri"], scale=6)).decode(),
        "expires_at": _readable(view["expires_at"]),
        "wrong_code": wrong_code,
    }
    return context_of(request).render(request, "enroll.html", values)


def enroll(request: Request) -> Response:
    """GET /e/<token>: the steps, the "Add to authenticator" link, the QR code, the code field."""
    from eset2fa.twofactor import enroll_links

    token = request.path_params["token"]
    store = context_of(request).store()
    view = enroll_links.open_link(store, token)
    if view is None:
        return _invalid(request)
    return _enroll_page(request, token, view, wrong_code=False)


async def enroll_code(request: Request) -> Response:
    """POST /e/<token>: the first code; activates through the same verify path as the CLI."""
    token = request.path_params["token"]
    if not _same_origin_post(request):
        return _refused(request)
    form = await _form(request)
    if form is None or not _same_token(form.get("token"), token):
        return _refused(request)
    return await run_in_threadpool(_enroll_code, request, token, form.get("code", "")[:16])


def _enroll_code(request: Request, token: str, code: str) -> Response:
    from eset2fa.twofactor import enroll_links

    store = context_of(request).store()
    outcome, name = enroll_links.submit_code(store, token, code)
    if outcome == enroll_links.ACTIVATED:
        return context_of(request).render(request, "enroll_done.html", {"name": name})
    if outcome == enroll_links.WRONG_CODE:
        # The same page again (the link stays valid), unless that code locked the user.
        view = enroll_links.open_link(store, token, audit=False)
        if view is not None:
            return _enroll_page(request, token, view, wrong_code=True)
    return _invalid(request)


# -- push answers -----------------------------------------------------------------------------
def push_page(request: Request) -> Response:
    """GET /p/<request id>?t=<token>: the request ID and three numbers to pick from, or Reject."""
    from eset2fa.twofactor import push_approval

    request_id = request.path_params["request_id"]
    token = request.query_params.get("t", "")
    view = push_approval.answer_page(context_of(request).store(), request_id, token)
    if view is None:
        return _invalid(request)
    values = {
        "request_id": view["id"],
        "user": view["user"],
        "choices": view["choices"],
        "expires_at": _readable(view["expires_at"]),
        "token": token,
    }
    return context_of(request).render(request, "push.html", values)


async def push_answer(request: Request) -> Response:
    """POST /p/<request id>: a picked number (approve only if right) or Reject; once."""
    if not _same_origin_post(request):
        return _refused(request)
    form = await _form(request)
    if form is None or not form.get("t"):
        return _refused(request)
    query_token = request.query_params.get("t")
    if query_token is not None and not _same_token(form["t"], query_token):
        return _refused(request)
    return await run_in_threadpool(_push_answer, request, form)


def _push_answer(request: Request, form: dict[str, str]) -> Response:
    from eset2fa.twofactor import push_approval

    request_id = request.path_params["request_id"]
    outcome = push_approval.answer(
        context_of(request).store(),
        request_id,
        form["t"],
        pick=form.get("pick"),
        reject=form.get("reject") is not None,
    )
    if outcome == push_approval.INVALID:
        return _invalid(request)
    return context_of(request).render(
        request, "push_done.html", {"outcome": outcome, "request_id": request_id.upper()}
    )


routes = [
    Route("/e/{token}", enroll, methods=["GET"]),
    Route("/e/{token}", enroll_code, methods=["POST"]),
    Route("/p/{request_id}", push_page, methods=["GET"]),
    Route("/p/{request_id}", push_answer, methods=["POST"]),
]
