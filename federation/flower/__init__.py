"""Flower\x27s runtime as an engine: our node as a ClientApp, our coordinator as a ServerApp."""
