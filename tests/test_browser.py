"""The phone pages in a real browser: headless Chromium at a phone's size, driven over the
DevTools protocol (`--remote-debugging-pipe`: JSON messages on file descriptors 3 and 4, so no
WebSocket client and no browser-automation package is needed).

It checks what only a browser shows: the QR code decodes as an image and the "Add to
authenticator" link is laid out; the form's own POST (with the headers a browser really sends:
Origin, Sec-Fetch-Site) activates with the first code; number matching approves only the right
pick. Screenshots go to tests/artifacts/ (ignored by git).

Without Chromium the test is skipped with a message; under CI=true a skip is a failure (`.ci/run`
installs Debian's `chromium`).
"""

from __future__ import annotations

import json
import os
import re
import select
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from server_helpers import free_port, start_server
from totp_helpers import secret_of, totp_now

from tests.conftest import end_process

pytestmark = pytest.mark.usefixtures("env_master_key")

ARTIFACTS = Path(__file__).parent / "artifacts"
PHONE = (390, 844)  # CSS pixels of a current phone
STEP_TIMEOUT = 20  # seconds for one protocol answer or one page load


def _chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        message = "chromium is not installed (apt-get install chromium; .ci/run installs it)"
        if os.environ.get("CI") == "true":
            pytest.fail(message + ": under CI=true this test must run")
        pytest.skip(message)
    return found


class Browser:
    """One headless Chromium, one page, spoken to over the DevTools pipe."""

    def __init__(self, executable: str, profile: Path) -> None:
        to_child_read, self._to_child = os.pipe()
        self._from_child, from_child_write = os.pipe()

        def descriptors() -> None:  # in the child: fd 3 reads commands, fd 4 writes answers
            import fcntl

            # Out of the way first: either pipe end may itself be fd 3 or 4.
            commands = fcntl.fcntl(to_child_read, fcntl.F_DUPFD, 10)
            answers = fcntl.fcntl(from_child_write, fcntl.F_DUPFD, 10)
            os.dup2(commands, 3)  # inheritable; every other descriptor closes at exec (PEP 446)
            os.dup2(answers, 4)

        self.process = subprocess.Popen(
            [
                executable,
                "--headless",
                "--no-sandbox",  # tests run as root in CI; the page is our own
                "--disable-gpu",
                "--no-first-run",
                "--hide-scrollbars",
                "--remote-debugging-pipe",
                f"--user-data-dir={profile}",
                f"--window-size={PHONE[0]},{PHONE[1]}",
                "about:blank",
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            preexec_fn=descriptors,
            close_fds=False,
        )
        os.close(to_child_read)
        os.close(from_child_write)
        self._buffer = b""
        self._next_id = 0
        self.events: list[dict] = []
        target = self.call("Target.createTarget", {"url": "about:blank"})["targetId"]
        self.session = self.call("Target.attachToTarget", {"targetId": target, "flatten": True})[
            "sessionId"
        ]
        self.call("Page.enable", session=True)
        self.call(
            "Emulation.setDeviceMetricsOverride",
            {"width": PHONE[0], "height": PHONE[1], "deviceScaleFactor": 2, "mobile": True},
            session=True,
        )

    def _read_message(self, deadline: float) -> dict:
        while b"\0" not in self._buffer:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError("Chromium did not answer in time")
            ready, _, _ = select.select([self._from_child], [], [], remaining)
            if ready:
                chunk = os.read(self._from_child, 1 << 16)
                if not chunk:
                    raise AssertionError("Chromium closed the DevTools pipe")
                self._buffer += chunk
        message, self._buffer = self._buffer.split(b"\0", 1)
        return json.loads(message)

    def call(self, method: str, params: dict | None = None, *, session: bool = False) -> dict:
        self._next_id += 1
        message = {"id": self._next_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = self.session
        os.write(self._to_child, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + STEP_TIMEOUT
        while True:
            answer = self._read_message(deadline)
            if answer.get("id") == self._next_id:
                if "error" in answer:
                    raise AssertionError(f"{method}: {answer['error']}")
                return answer["result"]
            self.events.append(answer)

    def wait_for_load(self) -> None:
        deadline = time.monotonic() + STEP_TIMEOUT
        while True:
            if any(e.get("method") == "Page.loadEventFired" for e in self.events):
                self.events.clear()
                return
            self.events.append(self._read_message(deadline))

    def open(self, url: str) -> None:
        self.events.clear()
        self.call("Page.navigate", {"url": url}, session=True)
        self.wait_for_load()

    def run(self, script: str):
        """Evaluate `script` in the page; its JSON-able value."""
        result = self.call(
            "Runtime.evaluate", {"expression": script, "returnByValue": True}, session=True
        )
        if "exceptionDetails" in result:
            raise AssertionError(f"{script}: {result['exceptionDetails']}")
        return result["result"].get("value")

    def submit(self, script: str) -> None:
        """Run a script that submits a form (a click), and wait for the answer page."""
        self.events.clear()
        self.run(script)
        self.wait_for_load()

    def screenshot(self, name: str) -> Path:
        import base64

        shot = self.call("Page.captureScreenshot", {"format": "png"}, session=True)
        ARTIFACTS.mkdir(exist_ok=True)
        path = ARTIFACTS / name
        path.write_bytes(base64.b64decode(shot["data"]))
        return path

    def close(self) -> None:
        try:
            self.call("Browser.close")
        except (AssertionError, OSError):
            pass
        finally:
            end_process(self.process)
            for fd in (self._to_child, self._from_child):
                try:
                    os.close(fd)
                except OSError:
                    pass


@pytest.fixture
def browser(tmp_path):
    chromium = _chromium()
    opened = Browser(chromium, tmp_path / "chromium-profile")
    try:
        yield opened
    finally:
        opened.close()


def test_enrollment_and_push_pages_in_chromium(cli, store, browser):
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    assert cli("config", "set", "server.public_url", base).exit_code == 0
    assert cli("user", "add", "alice").exit_code == 0
    enabled = cli("user", "enable", "alice", "--phone", "+421900123456", "--no-qr", "--json")
    secret = secret_of(enabled.json()["uri"])
    (sms,) = cli("outbox", "--channel", "sms", "--json").json()
    link = re.search(r"http://\S+/e/[A-Za-z0-9_-]+", sms["body"]).group(0)
    assert cli("user", "add", "bob").exit_code == 0
    assert cli("user", "enable", "bob", "--method", "push", "--no-qr").exit_code == 0

    server = start_server(store, port=port)
    waiting = []
    try:
        # -- the enrollment page: QR code, the otpauth link, then the first code activates
        browser.open(link)
        qr = browser.run(
            "(() => { const i = document.getElementById('qr');"
            " return [i.complete, i.naturalWidth, i.getBoundingClientRect().width]; })()"
        )
        assert qr[0] and qr[1] > 100 and qr[2] > 100, qr  # decoded and laid out
        add = browser.run(
            "(() => { const a = document.getElementById('add-to-authenticator');"
            " const r = a.getBoundingClientRect();"
            " return [a.getAttribute('href'), a.textContent.trim(), r.width, r.height]; })()"
        )
        assert add[0].startswith("otpauth://totp/") and f"secret={secret}" in add[0]
        assert add[1] == "Add to authenticator" and add[2] > 100 and add[3] > 20
        assert browser.run("document.body.scrollWidth") <= PHONE[0]  # no sideways scrolling
        shot = browser.screenshot("enroll-page.png")
        if shutil.which("zbarimg"):  # installed by .ci/run: the QR on the screen scans
            decoded = subprocess.run(
                ["zbarimg", "--quiet", "--raw", str(shot)],
                capture_output=True,
                text=True,
                timeout=30,
            )
            assert decoded.stdout.strip() == add[0], decoded.stderr
        browser.submit(
            f"document.getElementById('code').value = '{totp_now(secret)}';"
            "document.getElementById('activate').click()"
        )
        assert browser.run("document.getElementById('activated') !== null"), browser.run(
            "document.body.innerText"
        )
        browser.screenshot("enroll-done.png")
        assert cli("user", "status", "alice", "--require", "active").exit_code == 0

        # -- the push page: a wrong pick denies, then a new request and the right pick approves
        outcomes = []
        for attempt in ("wrong", "right"):
            proc = subprocess.Popen(
                [sys.executable, "-m", "eset2fa", "--db", str(store), "auth", "push", "bob"]
                + ["--json", "--timeout", "60"],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            waiting.append(proc)
            deadline = time.monotonic() + 15
            while len(pushes := cli("outbox", "--channel", "push", "--json").json()) < len(waiting):
                assert time.monotonic() < deadline, "the push never reached the outbox"
                time.sleep(0.05)
            request_id = pushes[-1]["data"]["request_id"]
            push_link = re.search(r"http://\S+/p/\S+", pushes[-1]["body"]).group(0)
            number = cli("push", "show", request_id, "--json").json()["number"]
            browser.open(push_link)
            assert browser.run("document.getElementById('request-id').textContent") == request_id
            choices = browser.run(
                "Array.from(document.querySelectorAll('button.pick')).map(b => b.value)"
            )
            assert len(choices) == 3 and str(number) in choices
            browser.screenshot(f"push-page-{attempt}.png")
            pick = (
                str(number) if attempt == "right" else next(c for c in choices if c != str(number))
            )
            browser.submit(
                "Array.from(document.querySelectorAll('button.pick'))"
                f".find(b => b.value === '{pick}').click()"
            )
            outcome = browser.run("document.getElementById('outcome').dataset.outcome")
            browser.screenshot(f"push-answer-{attempt}.png")
            proc.wait(timeout=20)
            outcomes.append((outcome, proc.returncode))
        assert outcomes == [("wrong_number", 8), ("approved", 0)]
        assert cli("user", "status", "bob", "--require", "active").exit_code == 0
    finally:
        for proc in waiting:
            end_process(proc)
        server.proc.terminate()
        try:
            server.proc.wait(timeout=15)
        finally:
            end_process(server.proc)
