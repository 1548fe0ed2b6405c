"""A file-backed keyring backend for subprocess tests, which can die right after a write.

Selected in a child process with `PYTHON_KEYRING_BACKEND=crash_keyring.FileKeyring` (this folder
on PYTHONPATH); never imported by the test process itself, where keyring could pick it as its
default backend. Entries live in the JSON file named by CRASH_KEYRING_FILE. With
CRASH_KEYRING_DIE=set (or =delete) the process ends with `os._exit(137)` right after the entry was
written (or removed), as a crash or a kill at the worst moment would.
"""

from __future__ import annotations

import json
import os

from keyring.backend import KeyringBackend
from keyring.errors import PasswordDeleteError


class FileKeyring(KeyringBackend):
    priority = 1

    @staticmethod
    def _path() -> str:
        return os.environ["CRASH_KEYRING_FILE"]

    def _load(self) -> dict[str, str]:
        try:
            with open(self._path()) as handle:
                return json.load(handle)
        except FileNotFoundError:
            return {}

    def _save(self, entries: dict[str, str]) -> None:
        tmp = f"{self._path()}.tmp"
        with open(tmp, "w") as handle:
            json.dump(entries, handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, self._path())

    @staticmethod
    def _die_after(step: str) -> None:
        if os.environ.get("CRASH_KEYRING_DIE") == step:
            os._exit(137)

    def get_password(self, service, username):
        return self._load().get(f"{service}/{username}")

    def set_password(self, service, username, password):
        entries = self._load()
        entries[f"{service}/{username}"] = password
        self._save(entries)
        self._die_after("set")

    def delete_password(self, service, username):
        entries = self._load()
        if entries.pop(f"{service}/{username}", None) is None:
            raise PasswordDeleteError(username)
        self._save(entries)
        self._die_after("delete")
