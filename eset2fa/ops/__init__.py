"""Running the store: settings, the audit log, backups and restore, store creation, doctor."""
