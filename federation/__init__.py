"""federation: sovereign data nodes, a coordinator, and the three-way comparison.

Each department or firm runs a node next to its data; a coordinator asks the
nodes to compute and only ever sees what each node's own policy releases.
"""

from __future__ import annotations

from federation.errors import (
    BudgetExhausted,
    ConfigError,
    ErrorCode,
    FederationError,
    InvalidRequest,
    NodeUnavailable,
    PolicyDenied,
    ProtocolOrderError,
    RoundAborted,
    UnknownPeer,
)

__version__ = "0.1.0"

__all__ = [
    "BudgetExhausted",
    "ConfigError",
    "ErrorCode",
    "FederationError",
    "InvalidRequest",
    "NodeUnavailable",
    "PolicyDenied",
    "ProtocolOrderError",
    "RoundAborted",
    "UnknownPeer",
    "__version__",
]
