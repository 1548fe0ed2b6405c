"""SMS over HTTP against a real gateway on loopback (pytest-httpserver): wire formats, failures,
no retry of a sent POST, no proxy, and no credential in any output."""

from __future__ import annotations

import base64
import json
import re
import threading
import time

import pytest
from conftest import audit_dump
from hypothesis import given, settings
from hypothesis import strategies as st
from werkzeug.wrappers import Response

PHONE = "+420601123456"
TOKEN = "tw-secret-token-9f8e7d"


pytestmark = pytest.mark.usefixtures("env_master_key")


def configure(cli, *pairs: tuple[str, str]) -> None:
    for key, value in pairs:
        r = cli("config", "set", key, value)
        assert r.exit_code == 0, r.stderr


def set_secret(cli, key: str, value: str) -> None:
    r = cli("config", "set-secret", key, input=value + "\n")
    assert r.exit_code == 0, r.stderr


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


@pytest.fixture
def twilio(cli, store, httpserver):
    configure(
        cli,
        ("sms.transport", "http"),
        ("sms.preset", "twilio"),
        ("twilio.account_sid", "AC123"),
        ("twilio.from", "+15005550006"),
        ("twilio.api_base", httpserver.url_for("/")),
    )
    set_secret(cli, "twilio.auth_token", TOKEN)
    return "/2010-04-01/Accounts/AC123/Messages.json"


def test_twilio_wire_format(cli, twilio, httpserver, sql):
    httpserver.expect_oneshot_request(twilio, method="POST").respond_with_json(
        {"sid": "SM42", "status": "queued"}, status=201
    )
    r = cli("sms", "test", "+420 601 123 456", "--text", "code 123456", "--json")
    assert r.exit_code == 0, r.stderr
    assert r.json()["reference"] == "SM42"
    request, _ = httpserver.log[0]
    assert request.headers["Authorization"] == basic("AC123", TOKEN)
    assert request.content_type.startswith("application/x-www-form-urlencoded")
    assert request.form.to_dict() == {"To": PHONE, "From": "+15005550006", "Body": "code 123456"}
    (row,) = sql("SELECT result, target, details FROM audit WHERE action = 'sms.test'")
    assert (row["result"], row["target"]) == ("ok", PHONE)


def test_twilio_200_instead_of_201_is_not_success(cli, twilio, httpserver):
    httpserver.expect_request(twilio).respond_with_json({"sid": "SM1"}, status=200)
    r = cli("sms", "test", PHONE)
    assert r.exit_code == 7
    assert "HTTP 200" in r.stderr


def test_gateway_401_echoing_the_token_does_not_leak_it(cli, twilio, httpserver, sql):
    echo = f"bad credentials {TOKEN} / {basic('AC123', TOKEN)}"
    httpserver.expect_request(twilio).respond_with_data(echo, status=401)
    r = cli("sms", "test", PHONE, "--json")
    assert r.exit_code == 7
    error = r.json()["error"]
    assert "401" in error["message"]
    assert "credentials" in error["hint"]
    for text in (r.stdout, r.stderr):
        assert TOKEN not in text
        assert base64.b64encode(f"AC123:{TOKEN}".encode()).decode() not in text
    shown = cli("config", "show", "--json")
    assert TOKEN not in shown.stdout
    token_row = next(row for row in shown.json() if row["key"] == "twilio.auth_token")
    assert token_row["value"] == "(set)"
    audit_text = audit_dump(sql)
    assert TOKEN not in audit_text
    assert "failed" in audit_text  # the failure itself is audited
    raw = b"".join(row[0] for row in sql("SELECT secret FROM config WHERE secret IS NOT NULL"))
    assert TOKEN.encode() not in raw  # encrypted at rest


def test_secret_refused_by_config_set(cli, store):
    r = cli("config", "set", "twilio.auth_token", TOKEN)
    assert r.exit_code == 2
    assert "config set-secret twilio.auth_token" in r.stderr
    assert TOKEN not in r.stderr + r.stdout


@pytest.fixture
def custom_gateway(cli, store, httpserver):
    configure(
        cli,
        ("sms.transport", "http"),
        ("sms.url", httpserver.url_for("/send")),
        ("sms.params.to", "{phone}"),
        ("sms.params.msg", "2FA: {text}"),
        ("sms.params.api", "v2"),
        ("sms.success_regex", r"^OK \d+"),
        ("sms.fail_regex", "ERROR"),
    )


def test_custom_gateway_success_regex(cli, custom_gateway, httpserver):
    httpserver.expect_oneshot_request(
        "/send", method="POST", data="api=v2&msg=2FA%3A+hi&to=%2B420601123456"
    ).respond_with_data("OK 17")
    r = cli("sms", "test", PHONE, "--text", "hi")
    assert r.exit_code == 0, r.stderr
    httpserver.check_assertions()


def test_custom_gateway_fail_regex_and_missing_success(cli, custom_gateway, httpserver):
    httpserver.expect_oneshot_request("/send").respond_with_data("OK 1 but ERROR: no credit")
    r = cli("sms", "test", PHONE)
    assert r.exit_code == 7
    assert "no credit" in r.stderr
    httpserver.expect_oneshot_request("/send").respond_with_data("queued")
    assert cli("sms", "test", PHONE).exit_code == 7


def test_custom_gateway_json_body_query_and_header_auth(cli, custom_gateway, httpserver):
    configure(
        cli, ("sms.body", "json"), ("sms.auth_header", "X-Api-Key"), ("sms.success_regex", "OK")
    )
    set_secret(cli, "sms.auth_token", "key-abcdef")
    httpserver.expect_oneshot_request(
        "/send",
        method="POST",
        headers={"X-Api-Key": "key-abcdef"},
        json={"to": PHONE, "msg": "2FA: hi", "api": "v2"},
    ).respond_with_data("OK")
    assert cli("sms", "test", PHONE, "--text", "hi").exit_code == 0
    httpserver.check_assertions()

    configure(cli, ("sms.body", "query"), ("sms.method", "GET"))
    httpserver.expect_oneshot_request(
        "/send", method="GET", query_string={"to": PHONE, "msg": "2FA: hi", "api": "v2"}
    ).respond_with_data("OK")
    assert cli("sms", "test", PHONE, "--text", "hi").exit_code == 0
    httpserver.check_assertions()


@pytest.fixture
def android_gateway(cli, store, httpserver):
    configure(
        cli,
        ("sms.transport", "http"),
        ("sms.preset", "android-sms-gateway"),
        ("sms.url", httpserver.url_for("/api/3rdparty/v1")),
        ("sms.username", "sms"),
    )
    set_secret(cli, "sms.password", "pw-123456")
    return "/api/3rdparty/v1/messages"


def test_android_sms_gateway_text_message_on_messages(cli, android_gateway, httpserver):
    # The app's current API: `textMessage` on /messages (`message` and /message are deprecated).
    httpserver.expect_oneshot_request(
        android_gateway,
        method="POST",
        headers={"Authorization": basic("sms", "pw-123456")},
        json={"textMessage": {"text": "hello"}, "phoneNumbers": [PHONE]},
    ).respond_with_json({"id": "msg-9", "state": "Pending"}, status=202)
    r = cli("sms", "test", PHONE, "--text", "hello", "--json")
    assert r.exit_code == 0, r.stderr
    assert r.json()["reference"] == "msg-9"
    httpserver.check_assertions()
    (request, _response) = httpserver.log[0]
    assert request.path == android_gateway
    assert request.content_type == "application/json"
    assert "message" not in request.get_json() and "ttl" not in request.get_json()


def test_android_sms_gateway_ttl_from_sms_ttl_seconds(cli, android_gateway, httpserver):
    configure(cli, ("sms.ttl_seconds", "900"))
    httpserver.expect_oneshot_request(
        android_gateway,
        method="POST",
        json={"textMessage": {"text": "hello"}, "phoneNumbers": [PHONE], "ttl": 900},
    ).respond_with_json({"id": "msg-10", "state": "Pending"}, status=202)
    assert cli("sms", "test", PHONE, "--text", "hello").exit_code == 0
    httpserver.check_assertions()


def pending_user_with_phone(cli, name: str = "alice") -> None:
    assert cli("user", "add", name).exit_code == 0
    r = cli("user", "enable", name, "--phone", PHONE, "--no-qr")
    assert r.exit_code == 0, r.stderr


def test_reset_code_sms_lives_no_longer_than_the_code_android(cli, android_gateway, httpserver):
    # The code's lifetime goes with it, whatever sms.ttl_seconds says: a phone that was offline
    # drops the SMS instead of delivering a code that has expired.
    configure(cli, ("reset.code_ttl_seconds", "120"), ("sms.ttl_seconds", "3600"))
    pending_user_with_phone(cli)
    httpserver.expect_oneshot_request(android_gateway, method="POST").respond_with_json(
        {"id": "msg-11", "state": "Pending"}, status=202
    )
    r = cli("user", "reset-token", "alice", "--json")
    assert r.exit_code == 0, r.stderr
    (request, _response) = httpserver.log[0]
    body = request.get_json()
    assert set(body) == {"textMessage", "phoneNumbers", "ttl"}
    assert body["phoneNumbers"] == [PHONE] and body["ttl"] == 120
    code = re.search(r"code is (\d{8})", body["textMessage"]["text"]).group(1)
    r = cli("user", "reset-token", "alice", "--confirm", code, "--json")
    assert r.exit_code == 0, r.stderr
    assert r.json()["uri"].startswith("otpauth://totp/")


API_KEY_SID = "SK0123456789abcdef0123456789abcdef"
API_KEY_SECRET = "tw-api-key-secret-5a4b3c"
SERVICE_SID = "MG0123456789abcdef0123456789abcdef"


@pytest.fixture
def twilio_api_key(cli, twilio):
    """Twilio with an API key and a Messaging Service; the auth token stays stored, unused."""
    configure(
        cli,
        ("twilio.api_key_sid", API_KEY_SID),
        ("twilio.messaging_service_sid", SERVICE_SID),
    )
    set_secret(cli, "twilio.api_key_secret", API_KEY_SECRET)
    return twilio


def test_twilio_api_key_and_messaging_service_wire_format(cli, twilio_api_key, httpserver, sql):
    httpserver.expect_oneshot_request(twilio_api_key, method="POST").respond_with_json(
        {"sid": "SM43", "status": "accepted"}, status=201
    )
    r = cli("sms", "test", PHONE, "--text", "code 123456", "--json")
    assert r.exit_code == 0, r.stderr
    assert r.json()["reference"] == "SM43"
    request, _ = httpserver.log[0]
    # The Account SID stays in the path; the API key SID and secret are the basic auth.
    assert request.path == "/2010-04-01/Accounts/AC123/Messages.json"
    assert request.headers["Authorization"] == basic(API_KEY_SID, API_KEY_SECRET)
    assert request.content_type.startswith("application/x-www-form-urlencoded")
    assert request.form.to_dict() == {
        "To": PHONE,
        "MessagingServiceSid": SERVICE_SID,
        "Body": "code 123456",
    }
    shown = {row["key"]: row["value"] for row in cli("config", "show", "--json").json()}
    assert shown["twilio.api_key_secret"] == "(set)"
    assert shown["twilio.api_key_sid"] == API_KEY_SID
    assert API_KEY_SECRET not in json.dumps(shown)
    raw = b"".join(row[0] for row in sql("SELECT secret FROM config WHERE secret IS NOT NULL"))
    assert API_KEY_SECRET.encode() not in raw  # sealed at rest like the other credentials


def test_twilio_api_key_refused_echoing_the_secret_does_not_leak_it(
    cli, twilio_api_key, httpserver, sql
):
    echo = f"bad key {API_KEY_SECRET} / {basic(API_KEY_SID, API_KEY_SECRET)}"
    httpserver.expect_request(twilio_api_key).respond_with_data(echo, status=401)
    r = cli("sms", "test", PHONE, "--json")
    assert r.exit_code == 7
    assert "401" in r.json()["error"]["message"]
    encoded = base64.b64encode(f"{API_KEY_SID}:{API_KEY_SECRET}".encode()).decode()
    for text in (
        r.stdout,
        r.stderr,
        audit_dump(sql),
    ):
        assert API_KEY_SECRET not in text and encoded not in text


def test_twilio_api_key_without_its_secret_is_a_clear_error(cli, twilio, httpserver):
    configure(cli, ("twilio.api_key_sid", API_KEY_SID))
    r = cli("sms", "test", PHONE)
    assert r.exit_code == 7
    assert "twilio.api_key_secret is not set" in r.stderr
    assert "set-secret twilio.api_key_secret" in r.stderr
    assert httpserver.log == []  # not sent with the auth token instead


def test_twilio_reset_code_carries_its_validity_period(cli, twilio, httpserver):
    configure(cli, ("reset.code_ttl_seconds", "300"))
    pending_user_with_phone(cli)
    httpserver.expect_oneshot_request(twilio, method="POST").respond_with_json(
        {"sid": "SM44"}, status=201
    )
    r = cli("user", "reset-token", "alice", "--json")
    assert r.exit_code == 0, r.stderr
    request, _ = httpserver.log[0]
    assert request.headers["Authorization"] == basic("AC123", TOKEN)  # auth token still works
    form = request.form.to_dict()
    assert (form["To"], form["From"], form["ValidityPeriod"]) == (PHONE, "+15005550006", "300")
    assert "MessagingServiceSid" not in form and "code is" in form["Body"]


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("twilio.api_key_sid", "AC0123456789abcdef0123456789abcdef"),  # the Account SID
        ("twilio.api_key_sid", "key-1"),
        ("twilio.messaging_service_sid", "+15005550006"),  # a number: that is twilio.from
    ],
)
def test_twilio_sids_are_checked_at_config_set(cli, store, key, value):
    r = cli("config", "set", key, value)
    assert r.exit_code == 2
    assert f"{key} must look like" in r.stderr


def test_api_key_secret_is_refused_by_config_set(cli, store):
    r = cli("config", "set", "twilio.api_key_secret", API_KEY_SECRET)
    assert r.exit_code == 2
    assert "config set-secret twilio.api_key_secret" in r.stderr
    assert API_KEY_SECRET not in r.stderr + r.stdout


def test_gateway_500_is_exit_7_with_status(cli, custom_gateway, httpserver):
    httpserver.expect_request("/send").respond_with_data("internal trouble", status=500)
    r = cli("sms", "test", PHONE, "--json")
    assert r.exit_code == 7
    error = r.json()["error"]
    assert error["code"] == "delivery_failed"
    assert "HTTP 500" in error["message"] and "try again later" in error["hint"]
    assert len(httpserver.log) == 1  # a status is an answer: never repeated


def test_read_timeout_is_exit_7_and_the_post_is_sent_once(cli, custom_gateway, httpserver):
    configure(cli, ("http.read_timeout", "0.3"), ("http.retries", "3"))
    arrived, finished = [], threading.Event()

    def slow(request):
        arrived.append(request.path)
        time.sleep(0.8)
        finished.set()
        return Response("OK 1")

    httpserver.expect_request("/send").respond_with_handler(slow)
    started = time.monotonic()
    r = cli("sms", "test", PHONE)
    assert r.exit_code == 7
    assert time.monotonic() - started < 0.75
    assert "did not answer in time" in r.stderr and "not repeated" in r.stderr
    assert finished.wait(2)
    time.sleep(0.3)  # a retry queued behind the slow handler would arrive now
    assert arrived == ["/send"]


def test_connection_refused_is_exit_7(cli, store):
    configure(
        cli,
        ("sms.transport", "http"),
        ("sms.url", "http://user:pw-in-url@127.0.0.1:9/send?key=query-secret"),
        ("sms.params.to", "{phone}"),
        ("http.retries", "0"),
    )
    r = cli("sms", "test", PHONE)
    assert r.exit_code == 7
    assert "Cannot connect" in r.stderr and "http://127.0.0.1:9/send" in r.stderr
    assert "pw-in-url" not in r.stderr and "query-secret" not in r.stderr


def test_proxy_variables_are_ignored(cli, custom_gateway, httpserver, monkeypatch):
    from pytest_httpserver import HTTPServer

    trap = HTTPServer(host="127.0.0.1")
    trap.expect_request("").respond_with_data("OK 1 via proxy")
    trap.start()
    try:
        for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy"):
            monkeypatch.setenv(name, trap.url_for("/"))
        for name in ("NO_PROXY", "no_proxy"):
            monkeypatch.delenv(name, raising=False)
        httpserver.expect_request("/send").respond_with_data("OK 2")
        r = cli("sms", "test", PHONE)
        assert r.exit_code == 0, r.stderr
        assert len(httpserver.log) == 1
        assert trap.log == []
    finally:
        trap.clear()
        trap.stop()


def test_missing_configuration_is_a_clear_delivery_error(cli, store):
    configure(cli, ("sms.transport", "http"))
    r = cli("sms", "test", PHONE)
    assert r.exit_code == 7
    assert "sms.url is not set" in r.stderr and "eset2fa config set sms.url" in r.stderr


def test_outbox_is_the_default_and_switching_back_works(cli, custom_gateway, sql):
    assert cli("config", "unset", "sms.transport").exit_code == 0
    r = cli("sms", "test", "601 123 456", "--region", "CZ", "--json")
    assert r.exit_code == 0, r.stderr
    assert r.json()["transport"] == "outbox"
    assert [row["recipient"] for row in sql("SELECT recipient FROM outbox")] == [PHONE]


def test_bad_phone_is_usage_error(cli, store):
    r = cli("sms", "test", "12")
    assert r.exit_code == 2
    assert "international form" in r.stderr


@settings(max_examples=150, deadline=None)
@given(st.one_of(st.text(max_size=30), st.from_regex(r"\+?[0-9 ()-]{4,20}", fullmatch=True)))
def test_normalize_phone_gives_e164_or_a_usage_error(text):
    from eset2fa.errors import UsageError
    from eset2fa.twofactor.phones import normalize_phone

    try:
        number = normalize_phone(text, "CZ")
    except UsageError as error:
        assert error.hint and "international form" in error.hint
    else:
        assert re.fullmatch(r"\+[1-9][0-9]{6,14}", number)
        assert normalize_phone(number) == number  # idempotent
