"""SMS through an HTTP gateway (`sms.transport = http`), shaped by `sms.preset`:

- `custom`: `sms.url`, `sms.method`, `sms.body` (form|json|query), parameters `sms.params.<name>`
  whose templates get `{phone}` and `{text}`; basic auth (`sms.username` + secret `sms.password`)
  and/or a header (`sms.auth_header`, default Authorization, carrying the secret `sms.auth_token`
  verbatim); success when the status is in `sms.ok_status` and the body matches
  `sms.success_regex` (if set) and not `sms.fail_regex` (if set).
- `twilio`: POST {twilio.api_base}/2010-04-01/Accounts/{account sid}/Messages.json, form
  To, Body and the sender: `MessagingServiceSid` (twilio.messaging_service_sid) or else `From`
  (twilio.from); basic auth with an API key (twilio.api_key_sid + secret twilio.api_key_secret)
  or else the Account SID and its auth token; `ValidityPeriod` = the message's lifetime (at most
  Twilio's 36,000 s); 201 expected.
- `android-sms-gateway` (capcom6's SMS Gateway for Android, local or cloud server): POST
  {sms.url}/messages, JSON {"textMessage": {"text"}, "phoneNumbers", "ttl"}, basic auth. The
  older `message` field and `/message` endpoint are deprecated by the app.

`ttl` is the message's lifetime in seconds (a reset code's expiry; else `sms.ttl_seconds`, 0 for
none): a phone or Twilio queue that cannot send it in time drops it, so a code never arrives after
it has expired.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from eset2fa.errors import DeliveryFailed
from eset2fa.transports.base import Delivery, SettingsReader, SmsTransport

WHAT = "SMS gateway"
TWILIO_MAX_VALIDITY = 36_000  # seconds: Twilio's longest (and default) ValidityPeriod


@dataclass
class GatewayRequest:
    method: str
    url: str
    expect: set[int]
    kwargs: dict[str, Any] = field(default_factory=dict)
    secrets: list[str | None] = field(default_factory=list)
    success_regex: str | None = None
    fail_regex: str | None = None
    reference_field: str | None = None  # JSON field holding the gateway's message id


def _missing(key: str, example: str) -> DeliveryFailed:
    return DeliveryFailed(
        f"The SMS gateway is not configured: {key} is not set.",
        f"Set it: eset2fa config {example}",
    )


def parse_statuses(text: str) -> set[int]:
    """`200-299` or `200,201,202` (or a mix) as a set of statuses."""
    statuses: set[int] = set()
    try:
        for part in text.replace(" ", "").split(","):
            low, _, high = part.partition("-")
            statuses.update(range(int(low), int(high or low) + 1))
    except ValueError:
        raise DeliveryFailed(
            f"sms.ok_status {text!r} is not a list of HTTP statuses.",
            "Use a range or list: eset2fa config set sms.ok_status 200-299",
        ) from None
    return statuses


def _fill(template: str, phone: str, text: str) -> str:
    # Plain replacement, not str.format: templates may hold other braces (JSON, URLs).
    return template.replace("{phone}", phone).replace("{text}", text)


def _custom(settings: SettingsReader, phone: str, text: str, ttl: int | None) -> GatewayRequest:
    url = settings.get("sms.url")
    if not url:
        raise _missing("sms.url", "set sms.url https://gateway.example/send")
    templates = settings.prefixed("sms.params.")
    if not templates:
        raise _missing("sms.params.<name>", "set sms.params.to '{phone}'")
    params = {name: _fill(value, phone, text) for name, value in templates.items()}
    body = settings.get("sms.body")
    kwargs: dict[str, Any] = {{"form": "data", "json": "json", "query": "params"}[body]: params}
    secrets: list[str | None] = []
    username = settings.get("sms.username")
    if username:
        password = settings.secret("sms.password") or ""
        kwargs["auth"] = (username, password)
        secrets.append(password)
        secrets.append(f"{username}:{password}")
    token = settings.secret("sms.auth_token")
    if token:
        kwargs["headers"] = {settings.get("sms.auth_header"): token}
        secrets.append(token)
        secrets.extend(token.split())  # "Bearer abc": the bare token must not show either
    return GatewayRequest(
        method=settings.get("sms.method"),
        url=url,
        expect=parse_statuses(settings.get("sms.ok_status")),
        kwargs=kwargs,
        secrets=[s for s in secrets if s and s.lower() != "bearer"],
        success_regex=settings.get("sms.success_regex"),
        fail_regex=settings.get("sms.fail_regex"),
    )


def _twilio(settings: SettingsReader, phone: str, text: str, ttl: int | None) -> GatewayRequest:
    sid = settings.get("twilio.account_sid")
    if not sid:
        raise _missing("twilio.account_sid", "set twilio.account_sid ACxxxxxxxx")
    form = {"To": phone, "Body": text}
    service = settings.get("twilio.messaging_service_sid")
    if service:
        form["MessagingServiceSid"] = service  # Twilio picks the number from the service's pool
    else:
        sender = settings.get("twilio.from")
        if not sender:
            raise _missing(
                "twilio.from",
                "set twilio.from +15005550006 (or twilio.messaging_service_sid MG...)",
            )
        form["From"] = sender
    if ttl:
        form["ValidityPeriod"] = str(min(ttl, TWILIO_MAX_VALIDITY))
    # An API key (SK...) can be revoked alone; the Account SID stays in the URL path either way.
    key_sid = settings.get("twilio.api_key_sid")
    if key_sid:
        user, password = key_sid, settings.secret("twilio.api_key_secret")
        if not password:
            raise _missing("twilio.api_key_secret", "set-secret twilio.api_key_secret")
    else:
        user, password = sid, settings.secret("twilio.auth_token")
        if not password:
            raise _missing(
                "twilio.auth_token",
                "set-secret twilio.auth_token (or an API key: twilio.api_key_sid SK... "
                "and set-secret twilio.api_key_secret)",
            )
    base = settings.get("twilio.api_base").rstrip("/")
    return GatewayRequest(
        method="POST",
        url=f"{base}/2010-04-01/Accounts/{sid}/Messages.json",
        expect={201},
        kwargs={"data": form, "auth": (user, password)},
        secrets=[password, f"{user}:{password}"],
        reference_field="sid",
    )


def _android_sms_gateway(
    settings: SettingsReader, phone: str, text: str, ttl: int | None
) -> GatewayRequest:
    url = settings.get("sms.url")
    if not url:
        raise _missing("sms.url", "set sms.url http://phone.lan:8080")
    username = settings.get("sms.username")
    if not username:
        raise _missing("sms.username", "set sms.username sms")
    password = settings.secret("sms.password") or ""
    body: dict[str, Any] = {"textMessage": {"text": text}, "phoneNumbers": [phone]}
    if ttl:
        body["ttl"] = ttl  # the app drops the message unsent once it is this old
    return GatewayRequest(
        method="POST",
        url=f"{url.rstrip('/')}/messages",
        expect=set(range(200, 300)),
        kwargs={"json": body, "auth": (username, password)},
        secrets=[password, f"{username}:{password}"],
        reference_field="id",
    )


PRESETS = {"custom": _custom, "twilio": _twilio, "android-sms-gateway": _android_sms_gateway}


def _compile(key: str, pattern: str | None) -> re.Pattern[str] | None:
    if not pattern:
        return None
    try:
        return re.compile(pattern)
    except re.error:
        raise DeliveryFailed(
            f"{key} is not a valid regular expression.",
            f"Fix it: eset2fa config set {key} 'PATTERN'",
        ) from None


class HttpSms(SmsTransport):
    name = "http"

    def build(self, phone: str, text: str, ttl: int | None = None) -> GatewayRequest:
        preset = self.settings.get("sms.preset")
        if ttl is None:
            ttl = self.settings.get("sms.ttl_seconds")  # a message without its own lifetime
        return PRESETS[preset](self.settings, phone, text, ttl or None)

    def send_sms(
        self, phone: str, text: str, *, user: str | None = None, ttl: int | None = None
    ) -> Delivery:
        from eset2fa.transports.http import call, http_failure, make_session, public_url

        request = self.build(phone, text, ttl)
        # A gateway's error answer may echo the request: the message carries a reset code or an
        # enrollment link, which must not reach the error text (stderr, --json, the audit row).
        secrets = [*request.secrets, *_message_secrets(text)]
        success = _compile("sms.success_regex", request.success_regex)
        failure = _compile("sms.fail_regex", request.fail_regex)
        with make_session(self.settings) as session:
            response = call(
                session,
                request.method,
                request.url,
                what=WHAT,
                secrets=secrets,
                expect=request.expect,
                **request.kwargs,
            )
        body = response.text
        if (failure and failure.search(body)) or (success and not success.search(body)):
            raise http_failure(response, WHAT, public_url(request.url), secrets)
        return Delivery(
            self.name,
            phone,
            reference=_reference(response, request.reference_field),
            details={"status": response.status_code},
        )


def _message_secrets(text: str) -> list[str]:
    """The message in the forms a gateway may echo, and each code- or key-like word in it."""
    import json
    from urllib.parse import quote, quote_plus

    words = re.findall(r"[A-Za-z0-9]{6,}", text)
    codes = [w for w in words if len(w) >= 16 or any(c.isdigit() for c in w)]
    # Longest first: scrubbing a code inside the whole message must not break the message's match.
    forms = {text, quote(text), quote_plus(text), json.dumps(text)[1:-1]}
    return sorted(forms, key=len, reverse=True) + sorted(set(codes), key=len, reverse=True)


def _reference(response, field_name: str | None) -> str | None:
    if not field_name:
        return None
    try:
        value = response.json().get(field_name)
    except (ValueError, AttributeError):
        return None
    return str(value) if value is not None else None
