"""The second factor: TOTP codes and verification, enrollment, the lockout, push requests, login."""
