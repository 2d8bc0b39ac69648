"""A department's node: loads its data, enforces its policy, serves the NodeService."""
