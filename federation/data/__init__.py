"""Local data: sources, the canonical schema, mappings and splits. Pure; no network."""
