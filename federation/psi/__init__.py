"""Private set intersection: which firms the parties have in common, and nothing else (pure protocol code)."""
