"""Console users and who may change them: accounts, passwords, `--as` login, Write grants."""
