"""The one way a secret is sealed at rest: AES-256-GCM, nonce ‖ ciphertext, bound to its row.

Every secret the store keeps (TOTP secrets, transport credentials, the push approval key, outbox
SMS bodies, the key check value) goes through `Sealer`. The `context` (for example
`user:42:totp`) is authenticated as associated data, so a ciphertext moved to another row or
another purpose does not open. `seal_many` seals a batch with one random draw for all nonces:
at 100,000 users a `urandom` call per row cost more than the encryption.
"""

from __future__ import annotations

import os
from collections.abc import Iterable

from eset2fa.errors import EncryptionKeyError

NONCE_BYTES = 12
KEY_BYTES = 32


class Sealer:
    """AES-256-GCM with one key; build it once and reuse it (the cipher object is cached)."""

    __slots__ = ("_aead", "_invalid")

    def __init__(self, key: bytes) -> None:
        from cryptography.exceptions import InvalidTag
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        self._aead = AESGCM(key)
        self._invalid = (InvalidTag, ValueError)

    def seal(self, plaintext: bytes, context: str) -> bytes:
        nonce = os.urandom(NONCE_BYTES)
        return nonce + self._aead.encrypt(nonce, plaintext, context.encode())

    def seal_many(self, items: Iterable[tuple[bytes, str]]) -> list[bytes]:
        """Seal (plaintext, context) pairs; the nonces come from one random draw."""
        items = list(items)
        nonces = os.urandom(NONCE_BYTES * len(items))
        encrypt = self._aead.encrypt
        sealed = []
        for i, (plaintext, context) in enumerate(items):
            nonce = nonces[i * NONCE_BYTES : (i + 1) * NONCE_BYTES]
            sealed.append(nonce + encrypt(nonce, plaintext, context.encode()))
        return sealed

    def open(self, blob: bytes, context: str) -> bytes:
        """The plaintext; EncryptionKeyError (exit 9) if the blob was altered, moved or the key is
        not the one it was sealed with."""
        try:
            return self._aead.decrypt(blob[:NONCE_BYTES], blob[NONCE_BYTES:], context.encode())
        except self._invalid:
            raise EncryptionKeyError(
                f"A stored secret ({context.split(':')[0]}) does not decrypt with this key.",
                "The ciphertext was altered or moved to another record; restore a backup.",
            ) from None
