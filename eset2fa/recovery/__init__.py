"""Getting back in: backups first, password reset, lost phone, token reset, recovery codes."""
