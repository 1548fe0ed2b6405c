"""Running one child process and measuring it: wall time, CPU time and its own peak RSS.

The peak RSS is taken by GNU time (`/usr/bin/time -f %M`) where it exists. Linux carries a
process's peak RSS across exec, and a child started by this script begins as a copy of it (fork
or vfork): os.wait4's figure is then at least this script's own size (50 MB once it had built a
fixture in-process), not the command's. GNU time is a small process, so the command it starts
inherits almost nothing. Without it the figure comes from os.wait4, with that caveat.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time

_GNU_TIME = "/usr/bin/time" if shutil.which("/usr/bin/time") else None


def run(command: list[str], *, env: dict | None = None, stdout=subprocess.DEVNULL, stdin=None):
    """(seconds, peak RSS in MB, CPU seconds) of `command`; its stdout goes to `stdout`.

    CPU seconds (user + system, the child's own and its children's) are reported beside wall
    time: on a machine shared with other work, wall time also measures the neighbours."""
    with tempfile.NamedTemporaryFile("r", prefix="eset2fa-rss-") as peak_file:
        if _GNU_TIME:
            command = [_GNU_TIME, "-q", "-f", "%M", "-o", peak_file.name, *command]
        started = time.perf_counter()
        proc = subprocess.Popen(
            command, env=env, stdout=stdout, stderr=subprocess.PIPE, stdin=stdin
        )
        stderr = proc.stderr.read()
        _pid, status, usage = os.wait4(proc.pid, 0)
        elapsed = time.perf_counter() - started
        proc.returncode = os.waitstatus_to_exitcode(status)
        proc.stderr.close()
        if proc.returncode != 0:
            raise SystemExit(
                f"{' '.join(command[:8])}... failed ({proc.returncode}): {stderr[-500:]}"
            )
        peak_kb = int(peak_file.read().split()[-1]) if _GNU_TIME else usage.ru_maxrss
    return elapsed, peak_kb / 1024, usage.ru_utime + usage.ru_stime
