"""Helpers for the two-factor tests: an independent TOTP generator and enrollment shortcuts."""

from __future__ import annotations

import base64
import hashlib
import hmac
import struct
import time
from urllib.parse import parse_qs, urlparse


def hotp(secret_b32: str, counter: int, digits: int = 6) -> str:
    """RFC 4226 HOTP written out here, independent of pyotp and of eset2fa."""
    key = base64.b32decode(secret_b32 + "=" * (-len(secret_b32) % 8))
    digest = hmac.new(key, struct.pack(">Q", counter), hashlib.sha1).digest()
    offset = digest[-1] & 0x0F
    number = struct.unpack(">I", digest[offset : offset + 4])[0] & 0x7FFFFFFF
    return str(number % 10**digits).zfill(digits)


def totp_now(secret_b32: str, offset_steps: int = 0) -> str:
    return hotp(secret_b32, int(time.time() // 30) + offset_steps)


def secret_of(uri: str) -> str:
    return parse_qs(urlparse(uri).query)["secret"][0]


def enroll(cli, name: str = "alice", group: str | None = None) -> str:
    """Add NAME and enable TOTP for them; returns the base32 secret from the enrollment URI."""
    args = ["user", "add", name] + (["--group", group] if group else [])
    assert cli(*args).exit_code == 0
    result = cli("user", "enable", name, "--method", "totp", "--json")
    assert result.exit_code == 0, result.stderr
    return secret_of(result.json()["uri"])
