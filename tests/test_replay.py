"""Replays do not lock the owner out (issue 9, item 9).

A replay of the code accepted in the same time step proves possession of the factor: it is
refused (reason "replay", exit 1) without counting toward the lockout. A code of an earlier step,
never accepted, still counts, as does any other wrong code.
"""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

import pytest
import time_machine
from conftest import run_process
from totp_helpers import enroll, totp_now

MOMENT = datetime(2026, 11, 22, 12, 0, 10, tzinfo=UTC)  # 10 s into a 30 s step
PROCESSES = 16

# Only `init` creates a store at an explicit --db path (issue 9).
pytestmark = [pytest.mark.usefixtures("store"), pytest.mark.backends("sqlite", "postgresql")]


def test_one_correct_code_sent_by_16_processes_at_once_locks_nobody(cli, db_path, sql):
    secret = enroll(cli)
    code = totp_now(secret)

    def attempt(_):
        args = ("--db", str(db_path), "auth", "verify", "alice", code, "--json")
        return run_process(*args, timeout=120)

    with ThreadPoolExecutor(PROCESSES) as pool:
        runs = list(pool.map(attempt, range(PROCESSES)))

    assert sorted(r.returncode for r in runs) == [0] + [1] * (PROCESSES - 1), [
        r.stderr for r in runs
    ]
    answers = [json.loads(r.stdout) for r in runs]
    refused = [a for a in answers if not a["accepted"]]
    assert {a["reason"] for a in refused} == {"replay"}
    assert all(a["fail_count"] == 0 and not a["locked"] for a in refused)
    assert not any("Traceback" in r.stderr or "database is locked" in r.stderr for r in runs)
    row = sql("SELECT state, locked, fail_count FROM users WHERE name = 'alice'")[0]
    assert (row["state"], row["locked"], row["fail_count"]) == ("active", 0, 0)
    results = sql("SELECT result FROM audit WHERE action = 'auth.verify'")
    assert sorted(r[0] for r in results) == ["accepted"] + ["rejected"] * (PROCESSES - 1)


def test_replays_of_the_accepted_code_never_lock_but_other_codes_still_count(cli, sql):
    secret = enroll(cli)
    assert cli("config", "set", "lockout.max_failures", "3").exit_code == 0
    with time_machine.travel(MOMENT, tick=False):
        code = totp_now(secret)
        assert cli("auth", "verify", "alice", code).exit_code == 0
        for _ in range(5):  # more replays than the limit
            replay = cli("auth", "verify", "alice", code, "--json")
            assert replay.exit_code == 1
            assert replay.json()["reason"] == "replay"
            assert (replay.json()["fail_count"], replay.json()["remaining"]) == (0, 3)
        assert sql("SELECT fail_count, locked FROM users WHERE name = 'alice'")[0][:] == (0, 0)

        # An older step (valid in the window, below the accepted one) was never accepted: counted.
        older = cli("auth", "verify", "alice", totp_now(secret, -1), "--json")
        assert older.exit_code == 1
        assert (older.json()["reason"], older.json()["fail_count"]) == ("replay", 1)
        wrong = "000000" if "000000" not in {totp_now(secret, d) for d in (-1, 0, 1)} else "111111"
        assert cli("auth", "verify", "alice", wrong, "--json").json()["fail_count"] == 2
        # A replay after failures leaves the count where it is: it neither counts nor resets.
        assert cli("auth", "verify", "alice", code, "--json").json()["fail_count"] == 2
        third = cli("auth", "verify", "alice", wrong, "--json")
        assert third.json()["locked"]
        # Locked now: even the replayed code is answered "locked" (exit 4), as a correct one is.
        assert cli("auth", "verify", "alice", code).exit_code == 4
    assert sql("SELECT fail_count, locked FROM users WHERE name = 'alice'")[0][:] == (3, 1)
