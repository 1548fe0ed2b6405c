"""Running one child process and measuring it: wall time and its own peak RSS (os.wait4 gives
the child's rusage; RUSAGE_CHILDREN would be the largest of every child so far)."""

from __future__ import annotations

import os
import subprocess
import time


def run(command: list[str], *, env: dict | None = None, stdout=subprocess.DEVNULL, stdin=None):
    """(seconds, peak RSS in MB, CPU seconds) of `command`; its stdout goes to `stdout`.

    CPU seconds (user + system, the child's own) are reported beside wall time: on a machine
    shared with other work, wall time also measures the neighbours."""
    started = time.perf_counter()
    proc = subprocess.Popen(command, env=env, stdout=stdout, stderr=subprocess.PIPE, stdin=stdin)
    stderr = proc.stderr.read()
    _pid, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - started
    proc.returncode = os.waitstatus_to_exitcode(status)
    proc.stderr.close()
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(command[:8])}... failed ({proc.returncode}): {stderr[-500:]}")
    return elapsed, usage.ru_maxrss / 1024, usage.ru_utime + usage.ru_stime
