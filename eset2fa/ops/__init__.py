"""Running the store: settings, the audit log, backups and restore, key rotation, doctor."""
