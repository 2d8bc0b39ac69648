"""Experiments: one network run as federated, central-pool and local-only, compared."""
