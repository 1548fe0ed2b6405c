"""eset2fa: self-hosted two-factor authentication administration for console users.

The Python API for integrations lives in the core packages (for example
`eset2fa.twofactor.totp.verify_otp`); importing this package is cheap and pulls in nothing heavy.
"""

__version__ = "0.1.0"
