"""SIGKILL at random moments during a bulk change: the store stays whole, all or nothing lands."""

from __future__ import annotations

import random
import signal
import sqlite3
import subprocess
import sys
import time

from tests.conftest import end_process, run_process, sigint_as_on_a_terminal, sigkill_after

USERS = 40_000


def test_sigkill_during_bulk_add_leaves_all_or_nothing(store, tmp_path):
    names = tmp_path / "names.txt"
    names.write_text("".join(f"bulk{i:06d},staff\n" for i in range(USERS)))
    rng = random.Random(20261122)
    killed = 0
    for _ in range(3):
        killed += sigkill_after(
            ["--db", str(store), "user", "add", "--from-file", str(names), "--json"],
            rng.uniform(0.1, 0.6),
        )
        conn = sqlite3.connect(store)
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        count = conn.execute("SELECT count(*) FROM users WHERE group_name = 'staff'").fetchone()[0]
        audited = conn.execute(
            "SELECT count(*) FROM audit WHERE action = 'user.add' AND target LIKE 'bulk%'"
        ).fetchone()[0]
        conn.close()
        assert count in (0, USERS), count  # one transaction: never a partial import
        assert audited == count  # the audit rows commit with the change
        if count == USERS:
            break
    assert killed, "no run was interrupted: the import got faster than the kill delays"
    # After the interruptions the same import still works, and the audit chain is intact.
    result = run_process("--db", str(store), "user", "add", "--from-file", str(names), "--json")
    assert result.returncode in (0, 1), result.stderr
    conn = sqlite3.connect(store)
    assert (
        conn.execute("SELECT count(*) FROM users WHERE group_name = 'staff'").fetchone()[0] == USERS
    )
    conn.close()
    assert run_process("--db", str(store), "audit", "verify").returncode == 0


def test_ctrl_c_while_waiting_for_a_push_is_exit_130_and_cancels_it(cli, store, sql):
    assert cli("user", "add", "bob").exit_code == 0
    assert cli("user", "enable", "bob", "--method", "push", "--no-qr").exit_code == 0
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "eset2fa",
            "--db",
            str(store),
            "auth",
            "push",
            "bob",
            "--timeout",
            "60",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=sigint_as_on_a_terminal,  # a suite run in the background ignores SIGINT
    )
    try:
        deadline = time.monotonic() + 20
        while not sql("SELECT id FROM push_requests") and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.3)  # let it reach the wait
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=20)
    finally:
        end_process(proc)
    assert proc.returncode == 130
    assert "Interrupted" in err and "Traceback" not in err
    (request,) = sql("SELECT state, decided_by FROM push_requests")
    assert (request["state"], request["decided_by"]) == ("expired", "cancelled")
