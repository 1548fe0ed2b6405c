"""The suite never hangs: bounded waits on child processes, and pytest-timeout as the net.

A test once waited more than 10 minutes on a child stuck at a [y/N] prompt. Every test that starts
a process or a pty bounds its waits and kills the child in a `finally`; these tests check the
helpers do, and that the suite-wide timeout fails a hanging test and carries on with the rest.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from tests.conftest import end_process, read_line

PYPROJECT = Path(__file__).resolve().parent.parent / "pyproject.toml"


def test_read_line_fails_with_a_message_and_kills_a_silent_process():
    proc = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(600)"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        started = time.monotonic()
        with pytest.raises(
            AssertionError, match=r"no line from .* within 0.5 s \(waiting for hi\)"
        ):
            read_line(proc, timeout=0.5, waiting_for="hi")
        assert time.monotonic() - started < 10
        assert proc.wait(timeout=10) != 0  # killed, not left sleeping
    finally:
        end_process(proc)


def test_end_process_kills_reaps_and_closes():
    proc = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(600)"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    end_process(proc)
    assert proc.returncode is not None and proc.stdout.closed and proc.stderr.closed


HANGING = textwrap.dedent(
    """
    import subprocess, sys, time
    import pytest

    @pytest.fixture
    def child(tmp_path_factory):
        proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
        yield proc
        proc.kill()  # the teardown runs although the test timed out
        proc.wait()
        print("TEARDOWN-RAN", proc.returncode)

    def test_hangs(child):
        time.sleep(600)

    def test_after():
        pass
    """
)


def test_the_configured_timeout_fails_a_hanging_test_and_the_suite_goes_on(tmp_path):
    target = tmp_path / "test_hanging.py"
    target.write_text(HANGING)
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-c",
            str(PYPROJECT),  # our settings: timeout_method and the plugin
            "--rootdir",
            str(tmp_path),
            "-o",
            "timeout=2",  # the configured 120 s, shortened for this test
            "-n",
            "0",  # in this process: -s shows the fixture's print, which a worker would swallow
            "-s",
            str(target),
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=120,
    )
    output = result.stdout + result.stderr
    assert "Timeout" in output, output
    assert "1 failed, 1 passed" in output, output  # the next test still ran
    assert "TEARDOWN-RAN" in output, output  # the fixture killed its child
