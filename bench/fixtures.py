"""Realistic stores for the benchmarks, built once and cached on disk.

A store made by `fixture_store(users)` looks like one that has been in use: every user has TOTP
enabled and active with a secret sealed as `user enable` seals it (AES-256-GCM bound to the
user's id, under the store's key), and the audit log holds one `user.enable` row per enrollment
plus ten `auth.verify` rows per user, chained with the store's keyed HMAC exactly as the product
writes them (`eset2fa audit verify` passes on it). The rows are written with the product's own
functions (Sealer.seal_many, audit_chain.record_many), in batches inside one transaction.

Built stores are kept in a cache directory (ESET2FA_BENCH_CACHE, default ~/.cache/eset2fa-bench)
under a name that carries the number of users, the schema version and this builder's version, so
a repeated run reuses them and a schema change builds new ones. The store's key is kept beside it
(mode 0600) and handed to the CLI through ESET2FA_KEY. Never use a fixture's key for anything
else: it is written to disk in the clear.

    from fixtures import fixture_store, cli_env
    fixture = fixture_store(100_000)      # a Fixture(path, key, users)
    copy = fixture.copy_to(work / "round1.db")
    env = cli_env(fixture.key, home=work / "home")

    python bench/fixtures.py --users 100000      # build (or find) one and print where it is
"""

from __future__ import annotations

import argparse
import base64
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import NamedTuple

FIXTURE_VERSION = 1  # bump when what a fixture holds changes
BATCH = 5000  # users per executemany
VERIFIES_PER_USER = 10
GROUPS = 50


class Fixture(NamedTuple):
    path: Path
    key: str  # ESET2FA_KEY for the CLI
    users: int

    def copy_to(self, target: Path) -> Path:
        """A private copy for a run that changes the store (the cached one stays as built)."""
        shutil.copyfile(self.path, target)
        os.chmod(target, 0o600)
        return target


def cache_dir() -> Path:
    root = os.environ.get("ESET2FA_BENCH_CACHE")
    return Path(root) if root else Path.home() / ".cache" / "eset2fa-bench"


def user_name(index: int) -> str:
    return f"user{index:07d}"


def cli_env(key: str, *, home: Path) -> dict[str, str]:
    """The environment for a CLI child process: no ESET2FA_* of the caller, the fixture's key."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ESET2FA_")}
    env["ESET2FA_HOME"] = str(home)
    env["ESET2FA_KEY"] = key
    return env


def fixture_store(users: int, *, quiet: bool = False) -> Fixture:
    """The cached store with `users` enrolled users, built first if there is none yet."""
    from eset2fa.db.migrations import LATEST_VERSION

    directory = cache_dir()
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    stem = f"users{users}-schema{LATEST_VERSION}-v{FIXTURE_VERSION}"
    path, key_path = directory / f"{stem}.db", directory / f"{stem}.key"
    if path.is_file() and key_path.is_file():
        return Fixture(path, key_path.read_text().strip(), users)
    started = time.perf_counter()
    if not quiet:
        print(f"building a fixture store with {users:,} users (cached for later runs)...")
    partial = directory / f"{stem}.building.db"
    for leftover in directory.glob(f"{stem}.building.db*"):
        leftover.unlink()
    key = base64.urlsafe_b64encode(os.urandom(32)).decode().rstrip("=")
    _build(partial, users, key, directory)
    key_path.write_text(key + "\n")
    os.chmod(key_path, 0o600)
    os.replace(partial, path)
    if not quiet:
        size = path.stat().st_size / 1e6
        print(f"built {path.name} in {time.perf_counter() - started:.0f} s ({size:.0f} MB)")
    return Fixture(path, key, users)


def _build(path: Path, users: int, key: str, directory: Path) -> None:
    # `init` through the real CLI: only init creates a store, with its Administrator.
    env = cli_env(key, home=directory / "home")
    init = subprocess.run(
        [sys.executable, "-m", "eset2fa", "--db", str(path), "--json", "init"],
        env=env,
        capture_output=True,
        text=True,
    )
    if init.returncode != 0:
        sys.exit(f"init failed ({init.returncode}): {init.stderr}")
    saved = os.environ.get("ESET2FA_KEY")
    os.environ["ESET2FA_KEY"] = key
    try:
        _fill(path, users)
    finally:
        if saved is None:
            os.environ.pop("ESET2FA_KEY", None)
        else:
            os.environ["ESET2FA_KEY"] = saved


def _fill(path: Path, users: int) -> None:
    from eset2fa.db import open_store
    from eset2fa.ops import audit_chain
    from eset2fa.secrets import keys
    from eset2fa.twofactor import totp

    store = open_store(path, create=False)
    conn = store.conn
    master = keys.for_store(store)
    sealer = master.sealer
    first_id = conn.execute("SELECT coalesce(max(id), 0) + 1 FROM users").fetchone()[0]
    at = "2026-01-01T00:00:00Z"
    enabled = {"method": "totp"}  # one object per batch: record_many encodes it once
    accepted = {"fail_count": 0, "reason": "accepted"}  # as verify_otp writes them
    wrong = {"fail_count": 1, "reason": "wrong_code"}
    with store.write():
        for start in range(0, users, BATCH):
            count = min(BATCH, users - start)
            ids = range(first_id + start, first_id + start + count)
            material = os.urandom(totp.SECRET_BYTES * count)
            sealed = sealer.seal_many(
                (
                    material[n * totp.SECRET_BYTES : (n + 1) * totp.SECRET_BYTES],
                    totp.secret_context(user_id),
                )
                for n, user_id in enumerate(ids)
            )
            conn.executemany(
                "INSERT INTO users (id, name, group_name, created_at, method, state, secret,"
                " enabled_at, activated_at) VALUES (?, ?, ?, ?, 'totp', 'active', ?, ?, ?)",
                (
                    (user_id, user_name(start + n), f"g{(start + n) % GROUPS}", at, blob, at, at)
                    for n, (user_id, blob) in enumerate(zip(ids, sealed, strict=True))
                ),
            )
            names = [user_name(start + n) for n in range(count)]
            events = [
                audit_chain.AuditEvent("Administrator", "user.enable", name, "enabled", enabled)
                for name in names
            ]
            for round_number in range(VERIFIES_PER_USER):
                # Every fifth attempt a wrong code, the rest accepted: what a day of logins leaves.
                wrong_code = round_number % 5 == 4
                result, details = ("rejected", wrong) if wrong_code else ("accepted", accepted)
                events += [
                    audit_chain.AuditEvent(name, "auth.verify", name, result, details)
                    for name in names
                ]
            audit_chain.record_many(conn, events, master=master)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    store.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=10_000)
    args = parser.parse_args()
    fixture = fixture_store(args.users)
    print(fixture.path)


if __name__ == "__main__":
    main()
