"""The enrollment QR code: half-blocks decode back to qrcode's matrix; PNG and SVG files."""

from __future__ import annotations

import stat
import struct
import zlib

import pytest
import qrcode
from qrcode.constants import ERROR_CORRECT_M
from totp_helpers import enroll, totp_now

# Every test here works on a store made by `init` (the `store` fixture): a --db path is created by
# nothing else, so `user add` alone no longer makes one.
pytestmark = pytest.mark.usefixtures("store")

GLYPHS = {" ": (False, False), "▀": (True, False), "▄": (False, True), "█": (True, True)}


def qrcode_matrix(data: str) -> list[list[bool]]:
    code = qrcode.QRCode(error_correction=ERROR_CORRECT_M, border=4)
    code.add_data(data)
    code.make(fit=True)
    return [list(map(bool, row)) for row in code.get_matrix()]


def decode_half_blocks(text: str) -> list[list[bool]]:
    """Back from the printed characters to module rows (two per line)."""
    lines = [line for line in text.splitlines() if line and set(line) <= set(GLYPHS)]
    width = max(len(line) for line in lines)
    rows: list[list[bool]] = []
    for line in (line for line in lines if len(line) == width):
        rows.append([GLYPHS[c][0] for c in line])
        rows.append([GLYPHS[c][1] for c in line])
    return rows


def test_terminal_qr_decodes_to_the_uri_matrix(cli):
    assert cli("user", "add", "alice").exit_code == 0
    shown = cli("user", "enable", "alice", "--qr")
    assert shown.exit_code == 0, shown.stderr
    uri = cli("qr", "alice", "--json").json()["uri"]
    expected = qrcode_matrix(uri)
    decoded = decode_half_blocks(shown.stdout)
    assert len(expected) % 2 == 1  # so the last printed line pairs a module row with light
    assert decoded[: len(expected)] == expected
    assert decoded[len(expected) :] == [[False] * len(expected)]
    assert len(decoded[0]) <= 80  # fits an 80-column terminal
    again = cli("qr", "alice")  # the same code again while pending
    assert decode_half_blocks(again.stdout)[: len(expected)] == expected


def test_no_qr_and_json_print_no_blocks(cli):
    assert cli("user", "add", "alice").exit_code == 0
    result = cli("user", "enable", "alice", "--no-qr")
    assert result.exit_code == 0 and "█" not in result.stdout
    assert "eset2fa qr alice" in result.stderr


def test_qr_refused_once_active(cli):
    secret = enroll(cli)
    assert cli("auth", "verify", "alice", totp_now(secret)).exit_code == 0
    result = cli("qr", "alice", "--json")
    assert result.exit_code == 6
    assert "reset-token" in result.json()["error"]["hint"]
    assert cli("qr", "ghost").exit_code == 3


def _png_pixels(payload: bytes) -> tuple[int, list[bytes]]:
    assert payload[:8] == b"\x89PNG\r\n\x1a\n"
    pos, chunks = 8, {}
    while pos < len(payload):
        (length,) = struct.unpack(">I", payload[pos : pos + 4])
        kind, body = payload[pos + 4 : pos + 8], payload[pos + 8 : pos + 8 + length]
        (crc,) = struct.unpack(">I", payload[pos + 8 + length : pos + 12 + length])
        assert crc == zlib.crc32(kind + body) & 0xFFFFFFFF
        chunks[kind] = chunks.get(kind, b"") + body
        pos += 12 + length
    width, height, depth, colour = struct.unpack(">IIBB", chunks[b"IHDR"][:10])
    assert (width == height, depth, colour) == (True, 1, 0)
    raw = zlib.decompress(chunks[b"IDAT"])
    stride = 1 + (width + 7) // 8
    return width, [raw[i * stride + 1 : (i + 1) * stride] for i in range(height)]


def test_png_and_svg_files(cli, tmp_path):
    enroll(cli)
    uri = cli("qr", "alice", "--json").json()["uri"]
    png = tmp_path / "alice.png"
    result = cli("qr", "alice", "--png", str(png), "--json")
    assert result.exit_code == 0 and result.json()["format"] == "png"
    assert stat.S_IMODE(png.stat().st_mode) == 0o600  # it holds the secret
    width, rows = _png_pixels(png.read_bytes())
    expected = qrcode_matrix(uri)
    scale = width // len(expected)
    decoded = [
        [
            not (rows[r * scale][(c * scale) // 8] >> (7 - (c * scale) % 8)) & 1
            for c in range(len(expected))
        ]
        for r in range(len(expected))
    ]
    assert decoded == expected

    svg = tmp_path / "alice.svg"
    assert cli("qr", "alice", "--svg", str(svg)).exit_code == 0
    assert stat.S_IMODE(svg.stat().st_mode) == 0o600
    assert b"<svg" in svg.read_bytes()
    assert cli("qr", "alice", "--svg", str(svg), "--png", str(png)).exit_code == 2


def test_qr_file_in_a_missing_or_unwritable_place_is_one_line_not_a_traceback(cli, tmp_path):
    enroll(cli)
    missing = cli("qr", "alice", "--png", str(tmp_path / "no" / "such" / "q.png"))
    assert missing.exit_code == 3, missing.stderr
    assert "does not exist" in missing.stderr and "Traceback" not in missing.stderr
    onto_a_directory = cli("qr", "alice", "--svg", str(tmp_path))
    assert onto_a_directory.exit_code == 9, onto_a_directory.stderr
    assert "otpauth" not in onto_a_directory.stderr + onto_a_directory.stdout
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary left
