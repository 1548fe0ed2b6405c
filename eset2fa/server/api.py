"""The verification API for applications: POST /v1/verify, POST /v1/push, GET /v1/push/<id>.

What privacyIDEA calls /validate/check. Every request carries `Authorization: Bearer <api key>`
(`eset2fa apikey create NAME`). The answers are those of `auth verify` / `auth push`, from the same
core functions (`twofactor.totp.verify_otp`, `push_approval` through `push_start`), so the
lockout, replay protection, push-fatigue limit and audit rows are the CLI's; the audit rows name
the key (`apikey:NAME`) as the actor.

Status codes (the README has the table): 200 accepted / a push's state; 202 push started;
400 malformed JSON or fields; 401 no valid API key; 403 code rejected (wrong_code, malformed,
replay); 404 unknown user or push request, unknown path; 405 wrong method; 409 2FA not enabled
(or not the method asked for); 413 body over 16 kB; 415 not application/json; 423 locked; 429
rate limit (Retry-After); 502 the push could not be sent; 503 the store is unavailable.

Order of the checks: the key first (a request without a valid key learns nothing else, and takes
the same time whoever it names: no user is looked up before the key is checked), then the key's
rate, the body, the user's rate, and only then the core. On the event loop only what needs no
store: a key is presented at all (else 401) and the body is read (at most 16 kB, else 413).
Everything else runs in the process's store thread (`ServerContext.run`), on its one connection:
one hop per request, and that connection's page cache stays valid because no other connection
of the process writes (a read on a second connection re-reads every page another one changed).
"""

from __future__ import annotations

import json
import sqlite3
import time

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from eset2fa.accounts import api_keys
from eset2fa.accounts.console_users import NAME_PATTERN
from eset2fa.errors import (
    DeliveryFailed,
    Eset2faError,
    Locked,
    NotFound,
    PushRateLimited,
    StateConflict,
    StorageError,
)
from eset2fa.server.context import ServerContext, context_of
from eset2fa.server.rate_limit import RateLimiter, retry_after

MAX_BODY_BYTES = 16 * 1024
NOTE_USE_EVERY_SECONDS = 60.0  # `apikey list`'s "last used" is written at most this often

# Outcomes that are not a VerifyResult: the core raises them; the API answers with the reason.
_REFUSALS: list[tuple[type[Eset2faError], int, str]] = [
    (Locked, 423, "locked"),
    (NotFound, 404, "unknown_user"),
    (StateConflict, 409, "not_enabled"),
]


class ApiError(Exception):
    """An answer other than the core's: bad request, no key, too many requests..."""

    def __init__(self, status: int, code: str, message: str, headers: dict | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.headers = status, code, message, headers


def _error_response(error: ApiError) -> JSONResponse:
    return JSONResponse(
        {"error": {"code": error.code, "message": error.message}},
        status_code=error.status,
        headers=error.headers,
    )


_UNAUTHORIZED = ApiError(
    401,
    "unauthorized",
    "A valid API key is required: Authorization: Bearer <key from `eset2fa apikey create`>.",
    {"WWW-Authenticate": 'Bearer realm="eset2fa"'},
)


class _Limits:
    """The per-process rate limiters, one set per server (kept on the context)."""

    def __init__(self) -> None:
        self.keys = RateLimiter()
        self.users = RateLimiter()
        self.noted: dict[int, float] = {}  # key row id -> when its use was last written


def _limits(context: ServerContext) -> _Limits:
    limits = getattr(context, "api_limits", None)
    if limits is None:
        limits = context.api_limits = _Limits()
    return limits


def _bearer(request: Request) -> str:
    """The presented key (checked later, in the store thread); 401 when there is none."""
    scheme, _, presented = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not presented.strip():
        raise _UNAUTHORIZED
    return presented.strip()


def _authenticate(context: ServerContext, store, presented: str) -> api_keys.ApiKey:
    """In the store thread: the key (401 if not valid) within its rate (429)."""
    key = api_keys.authenticate(store, presented)
    if key is None:
        raise _UNAUTHORIZED
    wait = _limits(context).keys.take(
        f"key:{key.id}",
        context.setting("server.key_rate_limit"),
        context.setting("server.rate_window_seconds"),
    )
    if wait:
        raise ApiError(
            429,
            "rate_limited",
            "Too many requests with this API key; retry later.",
            {"Retry-After": retry_after(wait)},
        )
    _note_use(context, key, store)
    return key


def _limit_user(context: ServerContext, name: str) -> None:
    wait = _limits(context).users.take(
        f"user:{name.lower()}",  # user names are case-insensitive
        context.setting("server.user_rate_limit"),
        context.setting("server.rate_window_seconds"),
    )
    if wait:
        raise ApiError(
            429,
            "rate_limited",
            "Too many requests for this user; retry later.",
            {"Retry-After": retry_after(wait)},
        )


_TOO_LARGE = ApiError(413, "too_large", f"The body is over {MAX_BODY_BYTES} bytes.")


async def _raw_body(request: Request) -> bytes:
    """The body's bytes; refused (413) from its Content-Length before anything is read, and a
    chunked body (no Content-Length) is counted as it arrives: at most 16 kB are ever read."""
    declared = request.headers.get("content-length")
    if declared is not None:
        if not declared.isdigit():
            raise ApiError(400, "bad_request", "Invalid Content-Length.")
        if int(declared) > MAX_BODY_BYTES:
            raise _TOO_LARGE
        return await request.body()
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_BODY_BYTES:
            raise _TOO_LARGE
    return bytes(body)


def _json_object(content_type: str, body: bytes) -> dict:
    if content_type.partition(";")[0].strip().lower() != "application/json":
        raise ApiError(415, "unsupported_media_type", "Send the body as application/json.")
    try:
        data = json.loads(body)
    except ValueError:  # also UnicodeDecodeError: not UTF-8
        raise ApiError(400, "malformed_json", "The body is not valid JSON.") from None
    if not isinstance(data, dict):
        raise ApiError(400, "bad_request", "The body must be a JSON object.")
    return data


def _user_field(data: dict) -> str:
    name = data.get("user")
    if not isinstance(name, str) or not NAME_PATTERN.fullmatch(name):
        raise ApiError(400, "bad_request", '"user" must be a user name (a string).')
    return name


def _note_use(context: ServerContext, key: api_keys.ApiKey, store) -> None:
    """Write the key's last use if it was not written in the last minute."""
    noted = _limits(context).noted
    moment = time.monotonic()
    if moment - noted.get(key.id, -NOTE_USE_EVERY_SECONDS) >= NOTE_USE_EVERY_SECONDS:
        noted[key.id] = moment
        api_keys.note_use(store, key)


def _refusal(error: Eset2faError, name: str, *, verify: bool) -> JSONResponse:
    """Locked, unknown user, not enabled: the reason `auth verify` gives, with its status."""
    for kind, status, reason in _REFUSALS:
        if isinstance(error, kind):
            if verify:
                body = {"name": name, "accepted": False, "reason": reason, "message": error.message}
            else:
                body = {"error": {"code": reason, "message": error.message}}
            return JSONResponse(body, status_code=status)
    raise error


async def _answer(request: Request, work) -> JSONResponse:
    """The frame of every API route: the key must be presented and the body read (on the event
    loop), then `work(store, key, body)` runs in the store thread after the key is checked there.
    ApiError becomes its JSON answer; a store that fails (gone, damaged, key missing) is 503,
    without its message, which can name files."""
    context = context_of(request)
    try:
        presented = _bearer(request)
        body = await _raw_body(request) if request.method == "POST" else b""
    except ApiError as error:
        return _error_response(error)

    def in_store_thread() -> JSONResponse:
        try:
            store = context.store()
            key = _authenticate(context, store, presented)
            return work(store, key, body)
        except ApiError as error:
            return _error_response(error)
        except (StorageError, sqlite3.Error):
            return _error_response(
                ApiError(503, "unavailable", "The store is unavailable; retry later.")
            )

    return await context.run(in_store_thread)


async def verify(request: Request) -> JSONResponse:
    """POST /v1/verify {"user", "code"}: the answer of `auth verify USER CODE --json`."""
    context = context_of(request)
    content_type = request.headers.get("content-type", "")

    def work(store, key, body) -> JSONResponse:
        from eset2fa.twofactor.totp import verify_otp

        data = _json_object(content_type, body)
        name = _user_field(data)
        code = data.get("code")
        if not isinstance(code, str):
            raise ApiError(400, "bad_request", '"code" must be a string of digits.')
        _limit_user(context, name)
        try:
            result = verify_otp(store, name, code, actor=key.actor.label)
        except StorageError:
            raise
        except Eset2faError as error:
            return _refusal(error, name, verify=True)
        return JSONResponse(result.to_dict(), status_code=200 if result.accepted else 403)

    return await _answer(request, work)


async def start_push(request: Request) -> JSONResponse:
    """POST /v1/push {"user"}: send a push request; 202 and its ID, to poll with GET."""
    context = context_of(request)
    content_type = request.headers.get("content-type", "")

    def work(store, key, body) -> JSONResponse:
        from eset2fa.twofactor import push_start

        name = _user_field(_json_object(content_type, body))
        _limit_user(context, name)
        try:
            pushed = push_start.start(store, key.actor, name)
        except PushRateLimited as error:
            window = context.setting("push.rate_window_seconds")
            raise ApiError(
                429, "push_rate_limited", error.message, {"Retry-After": retry_after(window)}
            ) from None
        except DeliveryFailed:
            raise ApiError(502, "delivery_failed", "The push could not be sent.") from None
        except StorageError:
            raise
        except Eset2faError as error:
            return _refusal(error, name, verify=False)
        return JSONResponse(
            pushed, status_code=202, headers={"Location": f"/v1/push/{pushed['id']}"}
        )

    return await _answer(request, work)


async def push_state(request: Request) -> JSONResponse:
    """GET /v1/push/<id>: the request's state (pending, approved, rejected, expired)."""
    request_id = request.path_params["request_id"]

    def work(store, key, body) -> JSONResponse:
        from eset2fa.twofactor import push_start

        try:
            return JSONResponse(push_start.state(store, key.actor, request_id))
        except NotFound:
            raise ApiError(404, "not_found", "No such push request for this key.") from None

    return await _answer(request, work)


routes = [
    Route("/v1/verify", verify, methods=["POST"]),
    Route("/v1/push", start_push, methods=["POST"]),
    Route("/v1/push/{request_id}", push_state, methods=["GET"]),
]
