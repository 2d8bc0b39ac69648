"""Vertical federation: parties hold different columns about the same firms (pure protocol code, no network)."""
