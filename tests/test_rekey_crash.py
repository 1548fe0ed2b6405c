"""`db rekey` cut short at any instant: the store always opens and every secret decrypts.

Two kinds of cut: SIGKILL of `eset2fa db rekey --yes` (a subprocess, key file) at delays spread
over the command's measured duration, then bisected towards the moments where the outcome
changes (so the narrow windows around the key-file writes and the commit are hit too); and a
keyring backend that ends the process right after it wrote or removed an entry.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import keyring
import pytest
import time_machine
from keyring.backends import fail
from totp_helpers import hotp, secret_of

from eset2fa.db import open_store
from eset2fa.db import users as user_rows
from eset2fa.secrets import keys

USERS = 5000  # enough secrets that re-sealing them is a window worth aiming at
SPREAD_TRIALS = 24
BISECT_TRIALS = 16
TESTS_DIR = Path(__file__).parent


@pytest.fixture
def no_keyring(monkeypatch):
    """The key goes to the key file, here and in child processes, whatever the machine has."""
    previous = keyring.get_keyring()
    keyring.set_keyring(fail.Keyring())
    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", "keyring.backends.fail.Keyring")
    yield
    keyring.set_keyring(previous)


def _code_at(secret: str, moment: float) -> str:
    return hotp(secret, int(moment // 30))


def _key_state(db_path: Path) -> tuple[str | None, frozenset]:
    """(the key id the store names, the key ids in the key file), read without the key."""
    conn = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
    try:
        row = conn.execute("SELECT value FROM meta WHERE key = 'key_id'").fetchone()
    finally:
        conn.close()
    entries = keys.read_key_file(keys.key_file_path(db_path)) or {}
    return (row[0] if row else None), frozenset(entries)


def _classify(before, after) -> str:
    (old_id, old_entries), (new_id, new_entries) = before, after
    if new_id == old_id:
        return STAGED if new_entries - old_entries else "untouched"
    return "switched, old key not yet removed" if len(new_entries) > 1 else "finished"


def _decrypt_all(db_path: Path) -> int:
    """How many sealed user secrets open with the key the store names (raises if one does not)."""
    store = open_store(db_path, create=False)
    try:
        master = keys.load_key(store.conn, db_path)
        opened, last_id = 0, 0
        while rows := user_rows.sealed_secrets(store.conn, after_id=last_id, limit=1000):
            for user_id, blob in rows:
                master.open(blob, f"user:{user_id}:totp")
                opened += 1
            last_id = rows[-1][0]
        return opened
    finally:
        store.close()


def _kill_after(args: list[str], delay: float) -> int:
    """Start `python -m eset2fa ARGS`, SIGKILL it after `delay` s; its return code."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "eset2fa", *args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        proc.wait(timeout=delay)
    except subprocess.TimeoutExpired:
        os.kill(proc.pid, signal.SIGKILL)
    return proc.wait(timeout=30)


STAGED = "new key stored, not switched"


def _next_delay(results: list[tuple[float, str]], trial: int) -> float:
    """A delay where the outcome changes. Odd trials: the midpoint of the widest gap between two
    neighbouring delays with different outcomes. Even trials: just after the latest kill that
    found the new key stored but not switched to, where the commit and the removal of the old
    key follow within milliseconds."""
    ordered = sorted(results)
    staged = [delay for delay, outcome in ordered if outcome == STAGED]
    later = [d for d, outcome in ordered if staged and d > staged[-1] and outcome != STAGED]
    if trial % 2 == 0 and later:
        return staged[-1] + (later[0] - staged[-1]) * (0.2 + 0.15 * (trial % 6))
    gaps = [
        (b[0] - a[0], (a[0] + b[0]) / 2)
        for a, b in zip(ordered, ordered[1:], strict=False)
        if a[1] != b[1]
    ]
    return max(gaps)[1] if gaps else ordered[-1][0] / 2


@pytest.mark.usefixtures("no_keyring")
def test_sigkill_at_any_moment_of_a_key_file_rekey_leaves_a_usable_store(cli, db_path, sql, capsys):
    names = "".join(f"user{i:05d}\n" for i in range(USERS))
    assert cli("init").exit_code == 0  # only init creates a store at --db (issue 9)
    assert cli("user", "add", "--from-file", "-", input=names).exit_code == 0
    assert cli("user", "enable", "--all", "--method", "totp", "--no-qr").exit_code == 0
    assert cli("user", "add", "alice").exit_code == 0
    assert cli("user", "add", "bob").exit_code == 0
    alice = secret_of(cli("user", "enable", "alice", "--json").json()["uri"])
    bob_uri = cli("user", "enable", "bob", "--json").json()["uri"]
    moment = time.time()
    with time_machine.travel(moment, tick=False):
        assert cli("auth", "verify", "alice", _code_at(alice, moment)).exit_code == 0
    args = ["--db", str(db_path), "db", "rekey", "--yes"]
    sealed = sql("SELECT count(*) FROM users WHERE secret IS NOT NULL")[0][0]
    assert sealed >= USERS + 2

    started = time.monotonic()
    first = subprocess.run(
        [sys.executable, "-m", "eset2fa", *args], capture_output=True, text=True, timeout=120
    )
    duration = time.monotonic() - started
    assert first.returncode == 0, first.stderr

    def usable(trial: int) -> str | None:
        """Why the store is not usable after a trial, or None."""
        if cli("user", "status", "alice", "--require", "active").exit_code != 0:
            return "user status"
        qr = cli("qr", "bob", "--json")
        if qr.exit_code != 0 or qr.json()["uri"] != bob_uri:
            return f"qr bob: exit {qr.exit_code}"
        later = moment + 90 * (trial + 1)  # a fresh time step for each trial
        with time_machine.travel(later, tick=False):
            verify = cli("auth", "verify", "alice", _code_at(alice, later))
        if verify.exit_code != 0:
            return f"auth verify: exit {verify.exit_code}"
        try:
            if _decrypt_all(db_path) != sealed:
                return "a secret is missing"
        except Exception as error:
            return f"secrets: {error}"
        return None

    delays = [duration * (0.05 + 1.0 * i / (SPREAD_TRIALS - 1)) for i in range(SPREAD_TRIALS)]
    results: list[tuple[float, str]] = []
    unusable: list[tuple[float, str, str]] = []
    cut_short = 0
    for trial in range(SPREAD_TRIALS + BISECT_TRIALS):
        delay = delays[trial] if trial < SPREAD_TRIALS else _next_delay(results, trial)
        before = _key_state(db_path)
        code = _kill_after(args, delay)
        cut_short += code == -signal.SIGKILL
        outcome = _classify(before, _key_state(db_path))
        results.append((delay, outcome))
        problem = usable(trial) if code in (0, -signal.SIGKILL) else f"db rekey: exit {code}"
        if problem:
            unusable.append((round(delay, 4), outcome, problem))
            break  # later trials would only repeat it

    outcomes = Counter(outcome for _, outcome in results)
    with capsys.disabled():
        print(
            f"\n[rekey SIGKILL, key file] {len(results)} trials over {duration:.3f} s "
            f"({sealed} secrets), {cut_short} cut short by the kill; outcomes: "
            + ", ".join(f"{name} {count}" for name, count in sorted(outcomes.items()))
            + f"; stores left unusable: {len(unusable)}"
        )
    assert unusable == []
    assert len(results) >= 30
    assert cut_short >= 15  # most kills landed while the command was running
    # The kills hit the moments that matter: with the new key stored but the old one in use.
    assert outcomes[STAGED] >= 1

    # The chain stayed intact through every kill, and a rotation that completes cleans up.
    assert cli("audit", "verify").exit_code == 0
    assert cli("db", "rekey", "--yes").exit_code == 0
    key_id, entries = _key_state(db_path)
    assert entries == {key_id}
    assert not list(db_path.parent.glob(db_path.name + ".key.*"))  # no staged or temporary file


def _keyring_env(tmp_path: Path, die: str | None = None) -> dict[str, str]:
    env = {
        "PYTHON_KEYRING_BACKEND": "crash_keyring.FileKeyring",
        "PYTHONPATH": os.pathsep.join(filter(None, [str(TESTS_DIR), os.environ.get("PYTHONPATH")])),
        "CRASH_KEYRING_FILE": str(tmp_path / "keyring.json"),
    }
    if die:
        env["CRASH_KEYRING_DIE"] = die
    return env


def _keyring_entries(tmp_path: Path) -> dict[str, str]:
    import json

    return json.loads((tmp_path / "keyring.json").read_text())


def test_a_keyring_that_dies_right_after_writing_leaves_a_usable_store(db_path, tmp_path):
    import json

    from conftest import run_process

    def run(*args: str, die: str | None = None, input: str | None = None):
        return run_process(
            "--db", str(db_path), *args, input=input, env=_keyring_env(tmp_path, die), timeout=60
        )

    assert run("init", input="").returncode == 0  # the store and its key, made in the keyring
    assert run("user", "add", "alice").returncode == 0
    assert not keys.key_file_path(db_path).exists()  # the key went to the (file-backed) keyring
    ((old_entry, old_key),) = _keyring_entries(tmp_path).items()
    pending = run("user", "enable", "alice", "--method", "totp", "--json")
    assert pending.returncode == 0, pending.stderr
    uri = json.loads(pending.stdout)["uri"]
    assert run("user", "add", "bob").returncode == 0
    bob = secret_of(json.loads(run("user", "enable", "bob", "--json").stdout)["uri"])
    assert run("config", "set-secret", "sms.password", input="gateway-pw\n").returncode == 0

    def assert_usable() -> None:
        shown = run("qr", "alice", "--json")
        assert shown.returncode == 0, shown.stderr  # the store opens, alice's secret decrypts
        assert json.loads(shown.stdout)["uri"] == uri
        wrong = run("auth", "verify", "bob", "--json", "000000")  # bob's secret decrypts
        assert wrong.returncode in (0, 1), wrong.stderr
        assert run("audit", "verify").returncode == 0

    def named_entry() -> str:
        conn = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
        key_id = conn.execute("SELECT value FROM meta WHERE key = 'key_id'").fetchone()
        conn.close()
        return old_entry if key_id is None else f"{old_entry}-{key_id[0]}"

    # Killed right after the keyring stored the new key, before the commit: the old key, under
    # its own entry, is untouched and still the one the store names. (Before key ids this write
    # replaced the old key in place, and the store was lost for good.)
    assert run("db", "rekey", "--yes", die="set").returncode == 137
    assert named_entry() == old_entry
    assert _keyring_entries(tmp_path)[old_entry] == old_key
    assert_usable()

    # Killed right after the first old entry was removed, after the commit: the store names the
    # new key, which is there.
    assert run("db", "rekey", "--yes", die="delete").returncode == 137
    assert named_entry() != old_entry and named_entry() in _keyring_entries(tmp_path)
    assert_usable()

    # A rotation that completes removes every entry the store does not name, including the
    # unused one the first cut left behind; the new key opens everything.
    done = run("db", "rekey", "--yes", "--json")
    assert done.returncode == 0, done.stderr
    assert list(_keyring_entries(tmp_path)) == [named_entry()]
    assert_usable()
    step = int(time.time() // 30) + 1
    assert run("auth", "verify", "bob", hotp(bob, step)).returncode == 0
