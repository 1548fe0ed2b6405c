"""The import's own base32 and query-string readers give what the standard library gives."""

from __future__ import annotations

import base64
import binascii
from urllib.parse import parse_qsl

from hypothesis import example, given
from hypothesis import strategies as st

from eset2fa.twofactor.imports import _query_pairs, b32decode

BASE32ISH = st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZ234567=01a8 -", max_size=40)


def _standard(text: str):
    try:
        return base64.b32decode(text + "=" * (-len(text) % 8))
    except (binascii.Error, ValueError) as error:
        return type(error)


def _ours(text: str):
    try:
        return b32decode(text)
    except (binascii.Error, ValueError) as error:
        return type(error)


@given(BASE32ISH | st.binary(max_size=40).map(lambda b: base64.b32encode(b).decode().rstrip("=")))
@example("")
@example("JBSWY3DPEHPK3PXP")
@example("A")
@example("AB")
@example("ABCDEFG")
@example("ABCDEFGH=")
def test_b32decode_matches_the_standard_library(text):
    assert _ours(text) == _standard(text)


@given(st.text(alphabet="ab=&+%20é;#", max_size=30))
@example("secret=AB%3D&issuer=Acme+Corp&&digits")
def test_query_pairs_match_parse_qsl(query):
    assert _query_pairs(query) == parse_qsl(query, keep_blank_values=True)


URIISH = st.text(alphabet="otpauOTPAUh:/?#&=%[]\t\n.é 1", max_size=30).map(
    lambda tail: "otpauth://" + tail
) | st.text(alphabet="otpauh:/?#[]\t", max_size=20)


@given(URIISH)
@example("otpauth://totp/Acme:alice?secret=JBSWY3DPEHPK3PXP&issuer=Acme#frag")
@example("OTPAUTH://TOTP?secret=x/y#z?w")
@example("otpauth://")
@example("otpauth://totp/a[b]")
def test_split_uri_matches_urlsplit(text):
    from urllib.parse import urlsplit

    from eset2fa.twofactor.imports import _split_uri

    try:
        expected = tuple(urlsplit(text))
    except ValueError as error:
        expected = type(error)
    try:
        ours = tuple(_split_uri(text))
    except ValueError as error:
        ours = type(error)
    assert ours == expected
