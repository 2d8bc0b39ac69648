"""Length and count bounds on what arrives from the network, checked before anything else sees it."""

from __future__ import annotations

from collections.abc import Sequence

from federation.errors import InvalidRequest
from federation.task import MAX_NAME


def bounded_name(value: str, what: str, *, limit: int = MAX_NAME) -> str:
    """A short printable name: it may be echoed in errors, logs and audit lines."""
    if len(value) > limit:
        raise InvalidRequest(f"{what} is {len(value)} characters long; at most {limit} are allowed")
    if not value.isprintable():
        raise InvalidRequest(f"{what} contains control or unprintable characters")
    return value


def bounded_names(values: Sequence[str], plural: str, *, count: int, limit: int = MAX_NAME) -> tuple[str, ...]:
    bounded_count(values, plural, count)
    return tuple(bounded_name(v, f"one of the {plural}", limit=limit) for v in values)


def bounded_count(items: Sequence[object], what: str, limit: int) -> None:
    if len(items) > limit:
        raise InvalidRequest(f"{len(items)} {what}; at most {limit} are allowed")


def bounded_blob(value: bytes, what: str, limit: int) -> bytes:
    if len(value) > limit:
        raise InvalidRequest(f"{what} is {len(value)} bytes long; at most {limit} are allowed")
    return value
