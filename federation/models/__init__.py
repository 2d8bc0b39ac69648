"""Declarative model specs: nodes build models only from this registry."""

from federation.models.registry import MODEL_NAMES, build_model

__all__ = ["MODEL_NAMES", "build_model"]
