"""eset2fa: self-hosted two-factor authentication administration for console users.

The Python API for integrations is `eset2fa.api` (open a store, verify, status, enable, disable,
unlock), which the CLI itself calls; importing either is cheap and pulls in nothing heavy.
"""

__version__ = "0.1.0"
