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
rate, the body, the user's rate, and only then the core. The key and the rates are checked on the
event loop (one indexed read, no write); the core runs in a worker thread, with that thread's store.
"""

from __future__ import annotations

import json
import sqlite3
import time

from starlette.concurrency import run_in_threadpool
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


def _authenticate(request: Request, context: ServerContext) -> api_keys.ApiKey:
    header = request.headers.get("authorization", "")
    scheme, _, presented = header.partition(" ")
    if scheme.lower() != "bearer" or not presented:
        raise _UNAUTHORIZED
    try:
        key = api_keys.authenticate(context.store(), presented.strip())
    except (Eset2faError, sqlite3.Error):  # a store gone or damaged while serving
        raise ApiError(503, "unavailable", "The store is unavailable; retry later.") from None
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


async def _json_body(request: Request) -> dict:
    """The request's JSON object; at most MAX_BODY_BYTES are ever read."""
    media_type = request.headers.get("content-type", "").partition(";")[0].strip().lower()
    if media_type != "application/json":
        raise ApiError(415, "unsupported_media_type", "Send the body as application/json.")
    declared = request.headers.get("content-length")
    if declared is not None:
        if not declared.isdigit():
            raise ApiError(400, "bad_request", "Invalid Content-Length.")
        if int(declared) > MAX_BODY_BYTES:
            raise ApiError(413, "too_large", f"The body is over {MAX_BODY_BYTES} bytes.")
    body = bytearray()
    async for chunk in request.stream():  # chunked bodies have no Content-Length: count
        body += chunk
        if len(body) > MAX_BODY_BYTES:
            raise ApiError(413, "too_large", f"The body is over {MAX_BODY_BYTES} bytes.")
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
    """In the worker thread: write the key's last use if it was not written in the last minute."""
    noted = _limits(context).noted
    moment = time.monotonic()
    if moment - noted.get(key.id, -NOTE_USE_EVERY_SECONDS) >= NOTE_USE_EVERY_SECONDS:
        noted[key.id] = moment
        api_keys.note_use(store, key)


def _storage_unavailable() -> JSONResponse:
    # The message of a storage error can name the file and the key's location: not for clients.
    return _error_response(ApiError(503, "unavailable", "The store is unavailable; retry later."))


async def verify(request: Request) -> JSONResponse:
    """POST /v1/verify {"user", "code"}: the answer of `auth verify USER CODE --json`."""
    context = context_of(request)
    try:
        key = _authenticate(request, context)
        data = await _json_body(request)
        name = _user_field(data)
        code = data.get("code")
        if not isinstance(code, str):
            raise ApiError(400, "bad_request", '"code" must be a string of digits.')
        _limit_user(context, name)
    except ApiError as error:
        return _error_response(error)

    def check():
        from eset2fa.twofactor.totp import verify_otp

        store = context.store()
        _note_use(context, key, store)
        return verify_otp(store, name, code, actor=key.actor.label)

    try:
        result = await run_in_threadpool(check)
    except StorageError:
        return _storage_unavailable()
    except Eset2faError as error:
        for kind, status, reason in _REFUSALS:
            if isinstance(error, kind):
                body = {"name": name, "accepted": False, "reason": reason}
                return JSONResponse({**body, "message": error.message}, status_code=status)
        raise
    return JSONResponse(result.to_dict(), status_code=200 if result.accepted else 403)


async def start_push(request: Request) -> JSONResponse:
    """POST /v1/push {"user"}: send a push request; 202 and its ID, to poll with GET."""
    context = context_of(request)
    try:
        key = _authenticate(request, context)
        name = _user_field(await _json_body(request))
        _limit_user(context, name)
    except ApiError as error:
        return _error_response(error)

    def send():
        from eset2fa.twofactor import push_start

        store = context.store()
        _note_use(context, key, store)
        return push_start.start(store, key.actor, name)

    try:
        pushed = await run_in_threadpool(send)
    except StorageError:
        return _storage_unavailable()
    except PushRateLimited as error:
        window = context.setting("push.rate_window_seconds")
        body = {"error": {"code": "push_rate_limited", "message": error.message}}
        return JSONResponse(body, status_code=429, headers={"Retry-After": retry_after(window)})
    except DeliveryFailed:
        body = {"error": {"code": "delivery_failed", "message": "The push could not be sent."}}
        return JSONResponse(body, status_code=502)
    except Eset2faError as error:
        for kind, status, reason in _REFUSALS:
            if isinstance(error, kind):
                body = {"error": {"code": reason, "message": error.message}}
                return JSONResponse(body, status_code=status)
        raise
    return JSONResponse(pushed, status_code=202, headers={"Location": f"/v1/push/{pushed['id']}"})


async def push_state(request: Request) -> JSONResponse:
    """GET /v1/push/<id>: the request's state (pending, approved, rejected, expired)."""
    context = context_of(request)
    try:
        key = _authenticate(request, context)
    except ApiError as error:
        return _error_response(error)
    request_id = request.path_params["request_id"]

    def read():
        from eset2fa.twofactor import push_start

        store = context.store()
        _note_use(context, key, store)
        return push_start.state(store, key.actor, request_id)

    try:
        found = await run_in_threadpool(read)
    except StorageError:
        return _storage_unavailable()
    except NotFound:
        body = {"error": {"code": "not_found", "message": "No such push request for this key."}}
        return JSONResponse(body, status_code=404)
    return JSONResponse(found)


routes = [
    Route("/v1/verify", verify, methods=["POST"]),
    Route("/v1/push", start_push, methods=["POST"]),
    Route("/v1/push/{request_id}", push_state, methods=["GET"]),
]
