"""Secrets at rest: the master key and its sources, sealing, one-time-code hashing, subkeys."""
