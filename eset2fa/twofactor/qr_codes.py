"""QR codes for enrollment URIs: terminal half-blocks, SVG, PNG. No Pillow needed.

`qrcode` computes the module matrix. In the terminal each character cell shows two module rows
with the half-block characters (▀ top dark, ▄ bottom dark, █ both, space neither), so a 45-module
code takes 45 columns and 23 lines and fits an 80-column terminal. The characters mean "dark",
and the command prints them black on white so the code is dark-on-light, which every phone camera
and authenticator reads, whatever the terminal's theme.

PNG comes from qrcode's pure-Python image factory (`PyPNGImage`, written through `pypng`): a
1-bit greyscale image, black on white, the same modules and quiet zone as the other forms. SVG
comes from qrcode's `SvgPathFillImage`: black modules on a white background, like the others.
"""

from __future__ import annotations

import os
from pathlib import Path

QUIET_ZONE = 4  # modules of light border the QR standard asks for
_GLYPHS = {(False, False): " ", (True, False): "▀", (False, True): "▄", (True, True): "█"}


def matrix(data: str, *, border: int = QUIET_ZONE) -> list[list[bool]]:
    """The module matrix (True = dark), quiet zone included."""
    import qrcode
    from qrcode.constants import ERROR_CORRECT_M

    code = qrcode.QRCode(error_correction=ERROR_CORRECT_M, border=border)
    code.add_data(data)
    code.make(fit=True)
    return [list(map(bool, row)) for row in code.get_matrix()]


def half_block_lines(modules: list[list[bool]]) -> list[str]:
    """Two module rows per text line; an odd last row is paired with a light row."""
    lines = []
    width = len(modules[0])
    for top in range(0, len(modules), 2):
        upper = modules[top]
        lower = modules[top + 1] if top + 1 < len(modules) else [False] * width
        lines.append("".join(_GLYPHS[(u, d)] for u, d in zip(upper, lower, strict=True)))
    return lines


def terminal_lines(data: str) -> list[str]:
    return half_block_lines(matrix(data))


def _write_private(path: Path, payload: bytes) -> None:
    """The image holds the TOTP secret: write it 0600, via a temporary file and a rename."""
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    fd = os.open(tmp, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(payload)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def svg_bytes(data: str) -> bytes:
    """An SVG document: one path of dark modules over a white rectangle.

    qrcode's plain SvgPathImage leaves the background transparent: a viewer in dark mode (or a
    renderer's transparent-to-black PNG) shows dark modules on dark, which no camera reads.
    SvgPathFillImage is the same path with a white background (qrcode's documented factory).
    """
    import io

    import qrcode
    from qrcode.image.svg import SvgPathFillImage

    image = qrcode.make(data, image_factory=SvgPathFillImage, border=QUIET_ZONE)
    buffer = io.BytesIO()
    image.save(buffer)
    return buffer.getvalue()


def png_bytes(data: str, *, scale: int = 8) -> bytes:
    """A 1-bit greyscale PNG, `scale` pixels per module, black on white."""
    import io

    import qrcode
    from qrcode.constants import ERROR_CORRECT_M
    from qrcode.image.pure import PyPNGImage

    code = qrcode.QRCode(
        error_correction=ERROR_CORRECT_M,
        box_size=scale,
        border=QUIET_ZONE,
        image_factory=PyPNGImage,
    )
    code.add_data(data)
    code.make(fit=True)
    buffer = io.BytesIO()
    code.make_image().save(buffer)
    return buffer.getvalue()


def save(data: str, path: Path, kind: str) -> Path:
    from eset2fa.errors import NotFound, StorageError

    path = Path(path)
    if not path.parent.is_dir():
        raise NotFound(f"The directory {path.parent} does not exist.", "Create it first.")
    payload = png_bytes(data) if kind == "png" else svg_bytes(data)
    try:
        _write_private(path, payload)
    except OSError as exc:
        raise StorageError(
            f"Cannot write {path}: {exc.strerror}.",
            "Give a file path in a directory you may write to.",
        ) from None
    return path
