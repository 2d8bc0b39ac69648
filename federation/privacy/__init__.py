"""Differential privacy: clipping, noise, accounting and the persistent budget ledger. Pure."""
