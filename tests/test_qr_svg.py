"""The SVG enrollment code has a white background, so it scans in a dark-mode viewer too.

With `rsvg-convert` (Debian librsvg2-bin) and `zbarimg` (zbar-tools) installed, the file is
rendered and decoded as a person's tools would; without them the SVG's structure is checked.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import xml.etree.ElementTree as ET

import pytest
from totp_helpers import enroll

pytestmark = pytest.mark.usefixtures("env_master_key", "store")  # only init creates at --db

SVG = "{http://www.w3.org/2000/svg}"
RENDERERS = shutil.which("rsvg-convert") and shutil.which("zbarimg")


@pytest.fixture
def svg_file(cli, tmp_path):
    enroll(cli)
    uri = cli("qr", "alice", "--json").json()["uri"]
    path = tmp_path / "alice.svg"
    assert cli("qr", "alice", "--svg", str(path)).exit_code == 0
    return path, uri


def test_the_svg_paints_a_white_background_under_the_modules(svg_file):
    path, _uri = svg_file
    root = ET.parse(path).getroot()
    drawn = [child for child in root if child.tag.removeprefix(SVG) in ("rect", "path")]
    background, modules = drawn[0], drawn[-1]
    assert background.tag.removeprefix(SVG) == "rect"
    assert background.get("fill") in ("white", "#fff", "#ffffff")
    assert (background.get("x"), background.get("y")) == ("0", "0")
    assert (background.get("width"), background.get("height")) == ("100%", "100%")
    assert modules.tag.removeprefix(SVG) == "path" and modules.get("fill") == "#000000"


@pytest.mark.skipif(
    not RENDERERS and os.environ.get("CI") != "true",
    reason="needs rsvg-convert (librsvg2-bin) and zbarimg (under CI=true a missing one fails)",
)
@pytest.mark.parametrize("backdrop", [None, "black"], ids=["transparent", "dark-mode"])
def test_the_rendered_svg_decodes_to_the_enrollment_uri(svg_file, tmp_path, backdrop):
    path, uri = svg_file
    png = tmp_path / "rendered.png"
    args = ["rsvg-convert", "--width", "400", "--output", str(png), str(path)]
    if backdrop:
        args[1:1] = ["--background-color", backdrop]  # a viewer in dark mode
    subprocess.run(args, check=True, timeout=60)
    decoded = subprocess.run(
        ["zbarimg", "--quiet", "--raw", str(png)], capture_output=True, text=True, timeout=60
    )
    assert decoded.returncode == 0, decoded.stderr
    assert decoded.stdout.strip() == uri
