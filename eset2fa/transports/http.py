"""The one way eset2fa talks HTTP: direct (never through a proxy), with explicit timeouts.

SPEC S11: proxy settings do not apply to 2FA traffic, so the session ignores HTTP_PROXY,
HTTPS_PROXY, ALL_PROXY and .netrc (`trust_env = False`) and has no proxies. Retries happen only
where the gateway cannot have received anything (connection refused, DNS failure, connect timeout)
or for idempotent GETs: a POST whose answer timed out may have sent the SMS, so it is never re-sent.

Failures become DeliveryFailed (exit 7) naming the gateway's host and HTTP status, never a
credential, a query string or userinfo from the URL.
"""

from __future__ import annotations

import base64
import os
from collections.abc import Iterable
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from eset2fa import __version__
from eset2fa.errors import DeliveryFailed, UsageError

if TYPE_CHECKING:
    from eset2fa.transports.base import SettingsReader

_BODY_SNIPPET = 200  # characters of a refusing gateway's answer worth showing


class DirectSession(requests.Session):
    """A Session that never uses a proxy and always has a (connect, read) timeout."""

    def __init__(self, timeout: tuple[float, float]) -> None:
        super().__init__()
        self.trust_env = False  # no proxy variables, no .netrc, no REQUESTS_CA_BUNDLE
        self.proxies = {}
        self.timeout = timeout

    def request(self, method, url, **kwargs):
        kwargs.setdefault("timeout", self.timeout)
        kwargs["proxies"] = {}  # even a per-call proxy is refused
        return super().request(method, url, **kwargs)


def make_session(settings: SettingsReader) -> DirectSession:
    """A direct session configured from `http.*` settings."""
    timeout = (settings.get("http.connect_timeout"), settings.get("http.read_timeout"))
    session = DirectSession(timeout)
    session.headers["User-Agent"] = f"eset2fa/{__version__}"
    ca_bundle = settings.get("http.ca_bundle")
    if ca_bundle:
        if not os.path.isfile(ca_bundle):
            raise UsageError(
                f"http.ca_bundle names {ca_bundle!r}, which is not a file.",
                "Point it at a PEM bundle: eset2fa config set http.ca_bundle /path/ca.pem",
            )
        session.verify = ca_bundle
    retries = settings.get("http.retries")
    retry = Retry(
        total=retries,
        connect=retries,  # nothing reached the server: safe for any method
        read=retries,  # only for allowed_methods below
        status=0,  # an HTTP answer means the request arrived: never repeat it
        other=0,
        redirect=0,
        allowed_methods=frozenset({"GET", "HEAD"}),
        backoff_factor=0.2,
        raise_on_status=False,
    )
    adapter = HTTPAdapter(max_retries=retry)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session


def public_url(url: str) -> str:
    """The URL fit for a message: scheme, host, port and path; no userinfo, no query."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return "(invalid URL)"
    return f"{parts.scheme}://{host}{port}{parts.path}"


def scrub(text: str, secrets: Iterable[str | None]) -> str:
    """`text` with every credential (and its base64 forms) replaced by ***."""
    for secret in secrets:
        if not secret or len(secret) < 4:
            continue
        for form in {secret, base64.b64encode(secret.encode()).decode()}:
            text = text.replace(form, "***")
    return text


def _status_hint(status: int, what: str) -> str:
    if status in (401, 403):
        return f"The {what} refused the credentials: check them with `eset2fa config show`."
    if status == 404:
        return f"Check the {what}'s URL in `eset2fa config show`."
    if status == 429:
        return f"The {what} is rate limiting; try again later."
    if status >= 500:
        return f"The {what} failed on its side; try again later or check its logs."
    return f"Check the {what}'s settings (`eset2fa config show`) and its documentation."


def call(
    session: requests.Session,
    method: str,
    url: str,
    *,
    what: str,
    secrets: Iterable[str | None] = (),
    expect: Iterable[int] | None = None,
    **kwargs,
) -> requests.Response:
    """Send one request; map network failures and unexpected statuses to DeliveryFailed.

    `what` names the endpoint in messages ("SMS gateway", "ntfy server"); `secrets` are scrubbed
    from any part of the answer that is shown.
    """
    secrets = list(secrets)
    where = public_url(url)
    if urlsplit(url).scheme not in ("http", "https"):
        raise DeliveryFailed(
            f"The {what} URL {where} is not an http(s) URL.",
            "Set a URL such as https://host/path with `eset2fa config set`.",
        )
    direct = "eset2fa connects directly, never through a proxy; `eset2fa doctor` checks the route."
    try:
        response = session.request(method, url, allow_redirects=False, **kwargs)
    except requests.exceptions.ConnectTimeout:
        raise DeliveryFailed(f"No connection to the {what} at {where} in time.", direct) from None
    except requests.exceptions.ReadTimeout:
        raise DeliveryFailed(
            f"The {what} at {where} did not answer in time; the request was not repeated"
            " (it may or may not have been delivered).",
            "Raise http.read_timeout if the gateway is slow; check its logs before retrying.",
        ) from None
    except requests.exceptions.SSLError:
        raise DeliveryFailed(
            f"TLS verification of the {what} at {where} failed.",
            "Set http.ca_bundle to the CA that signed its certificate.",
        ) from None
    except requests.exceptions.ConnectionError:
        raise DeliveryFailed(f"Cannot connect to the {what} at {where}.", direct) from None
    except requests.exceptions.RequestException as exc:
        raise DeliveryFailed(
            f"The request to the {what} at {where} failed ({type(exc).__name__}).", direct
        ) from None
    if expect is not None and response.status_code not in set(expect):
        raise http_failure(response, what, where, secrets)
    return response


def http_failure(
    response: requests.Response, what: str, where: str, secrets: Iterable[str | None]
) -> DeliveryFailed:
    """The error for an answer that means "not delivered", with a scrubbed body snippet."""
    status = response.status_code
    # Scrub before cutting, so no fragment of a credential survives at the cut.
    snippet = scrub(response.text[:65536], secrets)
    snippet = " ".join(snippet.split())[:_BODY_SNIPPET]
    message = f"The {what} at {where} answered HTTP {status} {response.reason or ''}".rstrip()
    if snippet:
        message += f": {snippet}"
    error = DeliveryFailed(message + ".", _status_hint(status, what))
    error.status = status
    return error
