"""Keys for integrity, derived from the store's key: the audit chain and one-time-code hashes.

Whoever can write the database but cannot read the master key must neither re-compute the audit
chain after editing a row nor test recovery or reset codes against a stolen copy. So both are
HMAC-SHA256 under subkeys derived (HKDF-SHA256, one `info` label each) from the store's integrity
key: 32 random bytes sealed with the master key inside the key check value (eset2fa.secrets.keys).

Why an integrity key sealed under the master key rather than subkeys of the master key itself:
`db rekey` then only re-seals 32 bytes, in the same transaction as the other secrets, instead of
re-computing every audit row and code hash (a million-row log) under the new key; and re-computing
the chain at each rotation would also bless, under the new key, whatever had been edited before.
The protection is the same: only who holds the master key can unseal the integrity key.

`rekey_existing` is the upgrade step for a store written before: it runs once, in the write
transaction that creates the integrity key (the first time the store's key is loaded by this
version; a migration cannot do it, migrations run without the key). It re-computes the chain
with the audit subkey, noting whether the old SHA-256 chain was intact (the step trusts the rows
as it finds them, so it says so in an `audit.keyed` row), and wraps each stored code hash:
HMAC(codes subkey, old hash), the rule eset2fa.secrets.code_hash applies to new codes too.
"""

from __future__ import annotations

import sqlite3

AUDIT_CHAIN = b"eset2fa/audit-chain/v1"
ONE_TIME_CODES = b"eset2fa/one-time-codes/v1"


def subkey(integrity_key: bytes, label: bytes) -> bytes:
    """The 32-byte subkey for one purpose (HKDF-SHA256 with `label` as info); once per store."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.kdf.hkdf import HKDF

    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=label).derive(integrity_key)


def rekey_existing(conn: sqlite3.Connection, master) -> dict:
    """Re-key the audit chain and the stored code hashes with `master`'s subkeys (the caller's
    write transaction); records an `audit.keyed` row when there was anything to re-key."""
    from eset2fa.db import recovery_codes, token_resets
    from eset2fa.ops import audit_chain
    from eset2fa.secrets import code_hash

    chain = audit_chain.rechain(conn, master.audit_mac)
    key = master.codes_key
    codes = recovery_codes.all_hashes(conn)
    recovery_codes.set_hashes(conn, [(code_hash.wrap(key, old), row_id) for row_id, old in codes])
    resets = token_resets.all_hashes(conn)
    token_resets.set_hashes(conn, [(code_hash.wrap(key, old), user_id) for user_id, old in resets])
    report = {**chain, "recovery_codes": len(codes), "token_resets": len(resets)}
    if chain["rows"] or codes or resets:
        audit_chain.record(conn, "system", "audit.keyed", None, "ok", report, master=master)
    return report
