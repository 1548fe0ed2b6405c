"""Typer sub-apps, one file per command group: each command parses, calls the core, renders."""
