"""Shell completion: the scripts in completions/ are what `--show-completion` prints (plus zsh's
first-TAB fix), zsh completes on the first TAB of a new shell, and user NAMEs complete from the
store without ever creating or changing one."""

from __future__ import annotations

import os
import re
import select
import shutil
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from test_enrollment import add_users

ROOT = Path(__file__).resolve().parent.parent
COMPLETIONS = ROOT / "completions"
EXE = shutil.which("eset2fa", path=str(Path(sys.executable).parent))

# What completions/eset2fa.zsh adds to Typer's script: when compinit autoloads the file from
# $fpath (as _eset2fa) at the first TAB, it must complete that TAB, not only register itself.
ZSH_FIRST_TAB = """\
# Autoloaded from $fpath (as _eset2fa, by compinit reading the #compdef line) this file runs at the
# first TAB: complete that TAB too, not only register the function for the next ones.
if [[ ${zsh_eval_context[-1]} == loadautofunc ]]; then
  _eset2fa_completion "$@"
fi
"""


def show_completion(shell: str) -> str:
    """`eset2fa --show-completion SHELL`. Typer takes a shell name there only with shell
    detection off (otherwise it prints the script for the shell it runs under)."""
    result = subprocess.run(
        [sys.executable, "-m", "eset2fa", "--show-completion", shell],
        capture_output=True,
        text=True,
        env={**os.environ, "_TYPER_COMPLETE_TEST_DISABLE_SHELL_DETECTION": "1"},
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


@pytest.mark.parametrize("shell", ["bash", "fish"])
def test_the_scripts_are_what_show_completion_prints(shell):
    assert (COMPLETIONS / f"eset2fa.{shell}").read_text() == show_completion(shell).rstrip() + "\n"


def test_the_zsh_script_is_typers_plus_the_first_tab_fix():
    script = (COMPLETIONS / "eset2fa.zsh").read_text()
    assert script.splitlines()[0] == "#compdef eset2fa"  # how compinit finds it on $fpath
    assert script == show_completion("zsh").rstrip() + "\n" + ZSH_FIRST_TAB


# -- zsh, for real ------------------------------------------------------------------------------


class Zsh:
    """An interactive zsh on a pseudo-terminal, with completions/eset2fa.zsh on $fpath as
    _eset2fa and compinit run, as a user's new shell would be."""

    def __init__(self, home: Path, store: Path) -> None:
        functions = home / "functions"
        functions.mkdir()
        shutil.copy(COMPLETIONS / "eset2fa.zsh", functions / "_eset2fa")
        (home / ".zshrc").write_text(
            f"fpath=({functions} $fpath)\n"
            f"autoload -Uz compinit && compinit -u -d {home}/.zcompdump\n"
            "PS1='READY> '\n"
        )
        env = {
            **os.environ,
            "ZDOTDIR": str(home),
            "HOME": str(home),
            "TERM": "xterm",
            "PATH": f"{Path(EXE).parent}{os.pathsep}{os.environ['PATH']}",
            "ESET2FA_DB": str(store),
        }
        self.master, slave = os.openpty()
        self.process = subprocess.Popen(
            ["zsh", "-i"], stdin=slave, stdout=slave, stderr=slave, env=env, start_new_session=True
        )
        os.close(slave)
        self.seen = b""
        self.wait_for(b"READY> ")

    def screen_since(self, mark: int) -> bytes:
        return re.sub(rb"\x1b\[[0-9;?]*[A-Za-z]|\x1b[=>]", b"", self.seen[mark:])

    def wait_for(self, text: bytes, mark: int = 0, timeout: float = 20) -> bool:
        deadline = time.monotonic() + timeout
        while text not in self.screen_since(mark):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            ready, _, _ = select.select([self.master], [], [], remaining)
            if ready:
                try:
                    self.seen += os.read(self.master, 4096)
                except OSError:
                    return False
        return True

    def tab(self, typed: str) -> int:
        mark = len(self.seen)
        os.write(self.master, typed.encode() + b"\t")
        return mark

    def close(self) -> None:
        self.process.kill()
        self.process.wait(timeout=10)
        os.close(self.master)


@pytest.mark.skipif(
    (not shutil.which("zsh") or not EXE) and os.environ.get("CI") != "true",
    reason="needs zsh and the eset2fa script (under CI=true a missing one fails instead)",
)
def test_zsh_completes_on_the_first_tab_of_a_new_shell(store, tmp_path):
    home = tmp_path / "zdotdir"
    home.mkdir()
    add_users(store, ["alice"])
    zsh = Zsh(home, store)
    try:
        mark = zsh.tab("eset2fa us")
        assert zsh.wait_for(b"eset2fa user ", mark), zsh.screen_since(mark)
        mark = zsh.tab("sta")  # the next TAB in the same shell too
        assert zsh.wait_for(b"status ", mark), zsh.screen_since(mark)
        mark = zsh.tab("al")  # and a user name, from the store
        assert zsh.wait_for(b"alice ", mark), zsh.screen_since(mark)
    finally:
        zsh.close()


# -- user names from the store -------------------------------------------------------------------


def complete(*words: str, env: dict | None = None) -> subprocess.CompletedProcess:
    """What bash runs on TAB: `eset2fa WORDS...` completing the last word."""
    line = ["eset2fa", *words]
    return subprocess.run(
        [sys.executable, "-m", "eset2fa"],
        capture_output=True,
        text=True,
        env={
            **os.environ,
            "_ESET2FA_COMPLETE": "complete_bash",
            "COMP_WORDS": " ".join(line),
            "COMP_CWORD": str(len(line) - 1),
            **(env or {}),
        },
        timeout=60,
    )


def test_user_names_complete_from_the_store(store):
    add_users(store, ["alice", "alina", "Albert", "bob", "al%x", "al_y"])
    for words in (
        ("--db", str(store), "user", "status", "al"),
        ("user", "status", "--db", str(store), "al"),  # global option after the command
        ("--db", str(store), "user", "enable", "bob", "al"),  # bulk NAMEs
        ("--db", str(store), "auth", "verify", "al"),
        ("--db", str(store), "user", "grant", "al"),
    ):
        result = complete(*words)
        assert result.returncode == 0 and result.stderr == ""
        assert result.stdout.split() == ["al%x", "al_y", "alice", "alina"], words
    from_env = complete("user", "show", "A", env={"ESET2FA_DB": str(store)})
    assert from_env.stdout.split() == ["Administrator", "Albert"]
    assert complete("--db", str(store), "user", "status", "al_").stdout.split() == ["al_y"]


def test_name_completion_stops_at_50(store):
    add_users(store, [f"user{i:04d}" for i in range(120)])
    shown = complete("--db", str(store), "user", "status", "user0").stdout.split()
    assert shown == [f"user{i:04d}" for i in range(50)]


def test_name_completion_never_creates_or_changes_a_store(tmp_path, store):
    missing = tmp_path / "nowhere" / "eset2fa.db"
    result = complete("--db", str(missing), "user", "status", "a")
    assert (result.returncode, result.stdout.split(), result.stderr) == (0, [], "")
    assert not missing.parent.exists()
    home = tmp_path / "home"  # the default store (ESET2FA_HOME, set by conftest) is not made
    assert complete("user", "status", "a").stdout.split() == [] and not home.exists()
    before = (store.read_bytes(), store.stat().st_mtime_ns, sorted(os.listdir(store.parent)))
    assert complete("--db", str(store), "user", "status", "A").stdout.split() == ["Administrator"]
    after = (store.read_bytes(), store.stat().st_mtime_ns, sorted(os.listdir(store.parent)))
    assert after == before


@pytest.mark.parametrize("content", [b"not a database at all" * 100, None])
def test_name_completion_is_silently_empty_on_errors(tmp_path, content):
    path = tmp_path / "broken.db"
    if content is None:  # an SQLite file of another application: no users table
        conn = sqlite3.connect(path)
        conn.execute("CREATE TABLE other (x)")
        conn.close()
    else:
        path.write_bytes(content)
    before = path.read_bytes()
    result = complete("--db", str(path), "user", "status", "a")
    assert (result.returncode, result.stdout.split(), result.stderr) == (0, [], "")
    assert path.read_bytes() == before
