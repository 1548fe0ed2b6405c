"""db backup / db backups: verified, consistent, private, rotated, and safe against SIGKILL."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import sqlite3
import stat
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from conftest import end_process, read_line, run_process


def integrity(path: Path) -> str:
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return conn.execute("PRAGMA integrity_check").fetchone()[0]
    finally:
        conn.close()


def count_users(path: Path) -> int:
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return conn.execute("SELECT count(*) FROM users").fetchone()[0]
    finally:
        conn.close()


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def add_users_directly(db: Path, count: int, prefix: str = "u") -> None:
    """Many users fast (no hashing, no audit): the store's contents are not under test here."""
    conn = sqlite3.connect(db)
    with conn:
        conn.executemany(
            "INSERT INTO users (name, group_name, created_at) VALUES (?, 'bulk', '2026-01-01')",
            ((f"{prefix}{i:06d}",) for i in range(count)),
        )
    conn.close()


def final_backups(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.suffix == ".db" and not p.name.startswith("."))


def test_backup_is_verified_private_and_described_by_its_manifest(cli, store, sql):
    assert cli("user", "add", "alice").exit_code == 0
    r = cli("db", "backup", "--reason", "Before the Upgrade!", "--json")
    assert r.exit_code == 0, r.stderr
    assert r.stderr == ""
    result = r.json()
    path = Path(result["path"])
    assert path.parent == store.parent / "backups"
    assert "before-the-upgrade" in path.name and path.name.startswith("store-")
    assert mode(path) == 0o600 and mode(path.parent) == 0o700
    assert integrity(path) == "ok"
    manifest_file = path.with_name(path.name + ".json")
    assert mode(manifest_file) == 0o600
    manifest = json.loads(manifest_file.read_text())
    assert manifest["sha256"] == sha256(path) == result["sha256"]
    assert manifest["users"] == 2 == count_users(path)
    assert manifest["reason"] == "Before the Upgrade!"
    assert manifest["schema_version"] == sql("PRAGMA user_version")[0][0]
    # a store has its key from its creation (its first audited change)
    (fingerprint,) = sql("SELECT value FROM meta WHERE key = 'key_fingerprint'")[0]
    assert manifest["key_fingerprint"] == fingerprint
    assert manifest["eset2fa_version"]
    # the backup is one self-contained file, not a WAL database needing its -wal
    assert sqlite3.connect(path).execute("PRAGMA journal_mode").fetchone()[0] == "delete"
    rows = sql("SELECT actor, details FROM audit WHERE action = 'db.backup'")
    assert len(rows) == 1 and json.loads(rows[0]["details"])["path"] == str(path)
    # human output names the file on stdout
    r = cli("db", "backup")
    assert r.exit_code == 0 and "Backup written to" in r.stdout and "backups" in r.stdout


def test_backup_records_the_key_fingerprint(cli, db_path, monkeypatch):
    from eset2fa.db import open_store
    from eset2fa.secrets import keys

    monkeypatch.setenv("ESET2FA_KEY", keys.encode_key(b"k" * 32))
    store = db_path  # created with the key from ESET2FA_KEY (a store gets its key at creation)
    assert cli("init").exit_code == 0
    opened = open_store(store)
    fingerprint = keys.load_key(opened.conn, store, create=True).fingerprint
    opened.close()
    result = cli("db", "backup", "--json").json()
    assert result["key_fingerprint"] == fingerprint


def test_backup_to_a_file_or_directory_never_overwrites(cli, store, tmp_path):
    target = tmp_path / "offsite" / "copy.db"
    target.parent.mkdir()
    r = cli("db", "backup", "--to", str(target), "--json")
    assert r.exit_code == 0 and Path(r.json()["path"]) == target
    assert integrity(target) == "ok" and mode(target) == 0o600
    before = target.read_bytes()
    r = cli("db", "backup", "--to", str(target))
    assert r.exit_code == 6
    assert target.read_bytes() == before
    r = cli("db", "backup", "--to", str(target.parent), "--json")
    assert r.exit_code == 0 and Path(r.json()["path"]).parent == target.parent


def test_retention_keeps_the_newest_n_in_the_default_folder_only(cli, store, tmp_path):
    assert cli("config", "set", "backup.keep", "3").exit_code == 0
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    made = []
    for i in range(5):
        made.append(Path(cli("db", "backup", "--reason", f"n{i}", "--json").json()["path"]))
        cli("db", "backup", "--to", str(elsewhere))
    folder = store.parent / "backups"
    assert final_backups(folder) == made[2:]
    manifests = sorted(p.name for p in folder.glob("*.json"))
    assert manifests == sorted(p.name + ".json" for p in made[2:])
    assert len(final_backups(elsewhere)) == 5  # --to destinations are never pruned
    listed = cli("db", "backups", "--json").json()
    assert [Path(b["path"]) for b in listed] == list(reversed(made[2:]))  # newest first
    assert [b["reason"] for b in listed] == ["n4", "n3", "n2"]
    assert all(b["status"] == "ok" for b in listed)


def test_backups_flags_a_file_that_no_longer_matches_its_checksum(cli, store):
    path = Path(cli("db", "backup", "--json").json()["path"])
    cli("db", "backup")
    data = bytearray(path.read_bytes())
    data[-100] ^= 0xFF
    path.write_bytes(bytes(data))
    r = cli("db", "backups", "--json")
    assert r.exit_code == 1
    status = {Path(b["path"]): b["status"] for b in r.json()}
    assert status[path] == "checksum mismatch"
    assert sorted(status.values()) == ["checksum mismatch", "ok"]


WRITER = textwrap.dedent(
    """
    import sqlite3, sys, time
    from pathlib import Path
    db, stop = sys.argv[1], Path(sys.argv[2])
    conn = sqlite3.connect(db, timeout=30, isolation_level=None)
    i = 0
    while not stop.exists():
        conn.execute("BEGIN IMMEDIATE")
        conn.execute(
            "INSERT INTO users (name, created_at) VALUES (?, '2026-01-01')", (f"w{i:07d}",)
        )
        conn.execute("COMMIT")
        i += 1
        if i == 20:
            print("writing", flush=True)
    print(i, flush=True)
    """
)


def test_backup_while_another_process_writes(cli, store, tmp_path):
    add_users_directly(store, 30_000)
    stop = tmp_path / "stop"
    writer = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(store), str(stop)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert read_line(writer, waiting_for="the writer to start").strip() == "writing"
        before = count_users(store)
        r = run_process("--db", str(store), "db", "backup", "--reason", "busy", "--json")
        after = count_users(store)
    finally:
        stop.touch()
        try:
            out, err = writer.communicate(timeout=30)
        finally:
            end_process(writer)
    assert writer.returncode == 0, err
    assert r.returncode == 0, r.stderr
    assert after > before  # the writer kept committing while the backup ran
    result = json.loads(r.stdout)
    path = Path(result["path"])
    assert integrity(path) == "ok"
    assert sha256(path) == result["sha256"]
    # one consistent snapshot: the manifest's count is the file's, somewhere in the writer's run
    assert count_users(path) == result["users"]
    assert before <= result["users"] <= after
    assert integrity(store) == "ok"


KILLED_BACKUP = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from eset2fa.ops.backups import create_backup
    from eset2fa.db import open_store

    def slowly(done, total):
        print(done, total, flush=True)
        time.sleep(0.003)

    create_backup(open_store(Path(sys.argv[1])), "kill test", pages=16, progress=slowly)
    print("done", flush=True)
    """
)


def test_sigkill_during_backup_leaves_no_half_written_backup(cli, store):
    add_users_directly(store, 40_000)
    users_before = count_users(store)
    folder = store.parent / "backups"
    partial_seen = False
    for delay in (0.0, 0.05, 0.15, 0.3, 0.5, 0.8):
        proc = subprocess.Popen(
            [sys.executable, "-c", KILLED_BACKUP, str(store)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            first = read_line(proc, waiting_for="the copy to start")
            assert first.split()[0].isdigit(), proc.stderr.read()
            time.sleep(delay)
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)
        finally:
            end_process(proc)
        for entry in folder.iterdir():
            if entry.name.startswith("."):
                assert ".partial-" in entry.name  # only temporary names may be incomplete
                partial_seen = True
            elif entry.suffix == ".db":
                assert integrity(entry) == "ok"
                manifest = entry.with_name(entry.name + ".json")
                if manifest.exists():
                    assert json.loads(manifest.read_text())["sha256"] == sha256(entry)
            else:
                assert entry.suffix == ".json"
    assert partial_seen  # at least one kill landed mid-copy
    assert integrity(store) == "ok" and count_users(store) == users_before
    # The next backup succeeds and clears the temporary files of the killed processes.
    r = cli("db", "backup", "--json")
    assert r.exit_code == 0
    assert not [p for p in folder.iterdir() if p.name.startswith(".")]


def swap_index_roots(db: Path) -> None:
    """Damage the store the way integrity_check sees and quick_check does not: index contents."""
    conn = sqlite3.connect(db, isolation_level=None)
    roots = dict(
        conn.execute(
            "SELECT name, rootpage FROM sqlite_master WHERE name IN ('users_group', 'users_state')"
        ).fetchall()
    )
    conn.execute("PRAGMA writable_schema = ON")
    conn.execute(
        "UPDATE sqlite_master SET rootpage = ? WHERE name = 'users_group'", (roots["users_state"],)
    )
    conn.execute(
        "UPDATE sqlite_master SET rootpage = ? WHERE name = 'users_state'", (roots["users_group"],)
    )
    conn.execute("PRAGMA writable_schema = OFF")
    conn.close()


def test_a_damaged_database_is_not_backed_up_as_if_it_were_fine(cli, store):
    add_users_directly(store, 500)
    swap_index_roots(store)
    r = cli("db", "backup", "--full-check", "--json")
    assert r.exit_code == 9
    assert "integrity_check" in r.json()["error"]["message"]
    folder = store.parent / "backups"
    assert list(folder.iterdir()) == []  # neither a final file nor a temporary one is left
    # By default the copy gets quick_check, which looks at structure only: it lets this damage
    # through, as documented; `db backups --verify` and `db restore` run integrity_check.
    r = cli("db", "backup", "--json")
    assert r.exit_code == 0
    backup = Path(r.json()["path"])
    listed = cli("db", "backups", "--json")
    assert listed.exit_code == 0 and listed.json()[0]["status"] == "ok"
    checked = cli("db", "backups", "--verify", "--json")
    assert checked.exit_code == 1
    assert checked.json()[0]["status"] == "integrity check failed"
    assert "integrity_check" in checked.json()[0]["detail"]
    before = store.read_bytes()
    restore = cli("db", "restore", str(backup), "--yes", "--json")
    assert restore.exit_code == 9 and "integrity_check" in restore.json()["error"]["message"]
    assert store.read_bytes() == before
    assert cli("db", "backups", "--verify", "--no-verify").exit_code == 2


def test_a_damaged_page_is_refused_by_the_default_quick_check(cli, store):
    """quick_check reads every page of the copy: a store with a damaged b-tree page is not backed
    up as if it were fine (exit 9, no backup left), without --full-check."""
    add_users_directly(store, 3000)
    conn = sqlite3.connect(store)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    page_size = conn.execute("PRAGMA page_size").fetchone()[0]
    pages = conn.execute("PRAGMA page_count").fetchone()[0]
    conn.close()
    data = bytearray(store.read_bytes())
    middle = (pages // 2) * page_size
    data[middle : middle + page_size] = b"\xff" * page_size  # a page no b-tree can read
    store.write_bytes(bytes(data))
    r = cli("db", "backup", "--json")
    assert r.exit_code == 9, r.stdout
    folder = store.parent / "backups"
    assert not folder.exists() or not [p for p in folder.iterdir() if p.suffix == ".db"]


# -- issue 9: a delegated user cannot copy the store out ----------------------------------------


def delegated_helpdesk(cli) -> None:
    """helpdesk, a console user with Write over one user (alice) and nothing else."""
    assert cli("user", "add", "alice").exit_code == 0
    assert cli("user", "add", "helpdesk", "--password-stdin", input="helpdesk-pw\n").exit_code == 0
    assert cli("user", "grant", "helpdesk", "--write", "alice").exit_code == 0


def as_helpdesk(cli, *args: str):
    return cli("--as", "helpdesk", "--as-password-stdin", *args, input="helpdesk-pw\n")


def test_a_delegated_user_cannot_write_a_backup_elsewhere(cli, store, tmp_path):
    delegated_helpdesk(cli)
    assert as_helpdesk(cli, "user", "unlock", "alice").exit_code == 0  # helpdesk has Write there
    outside = tmp_path / "outside"
    outside.mkdir()
    for target in (outside / "copy.db", outside):
        r = as_helpdesk(cli, "db", "backup", "--to", str(target), "--json")
        assert r.exit_code == 5, r.stdout
        error = r.json()["error"]
        assert error["code"] == "permission_denied" and "\n" not in error["message"]
        assert "helpdesk" in error["message"] and error["hint"]
    assert list(outside.iterdir()) == []  # nothing written, not even a temporary file
    assert not (store.parent / "backups").exists()
    # the Administrator and the local operator still may
    r = cli("db", "backup", "--to", str(outside / "copy.db"), "--json")
    assert r.exit_code == 0 and integrity(outside / "copy.db") == "ok"


def test_a_delegated_user_may_still_back_up_beside_the_database(cli, store):
    """The default folder is beside the store, 0700, each backup 0600: no copy leaves the
    owner's hands (recovery commands a delegated user may run back up there too)."""
    delegated_helpdesk(cli)
    r = as_helpdesk(cli, "db", "backup", "--reason", "helpdesk", "--json")
    assert r.exit_code == 0, r.stdout
    path = Path(r.json()["path"])
    assert path.parent == store.parent / "backups"
    assert mode(path) == 0o600 and mode(path.parent) == 0o700


def test_a_delegated_user_cannot_restore(cli, store, tmp_path):
    delegated_helpdesk(cli)
    backup = Path(cli("db", "backup", "--json").json()["path"])
    r = as_helpdesk(cli, "db", "restore", str(backup), "--yes", "--json")
    assert r.exit_code == 5
    assert "may not restore a backup" in r.json()["error"]["message"]
    assert not [
        p for p in store.parent.iterdir() if ".replaced-" in p.name or ".partial-" in p.name
    ]
