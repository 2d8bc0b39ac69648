"""The coordinator: dials nodes, negotiates tasks, runs rounds through Flower strategies."""
