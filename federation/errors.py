"""One exception tree with stable codes, shared by node, coordinator and CLI.

```
FederationError        .code (stable string)  .public (safe to send)  .detail (local only)
  ConfigError          a file, a field path, what was expected, what was found
  PolicyDenied         PERMISSION_DENIED, with the decision's reasons
  InvalidRequest       INVALID_ARGUMENT
  ProtocolOrderError   FAILED_PRECONDITION
  BudgetExhausted      RESOURCE_EXHAUSTED
  UnknownPeer          UNAUTHENTICATED
  RoundAborted         ABORTED
    CohortRejected     ABORTED (a participant, signature or survivor set a node does not accept)
  NodeUnavailable      UNAVAILABLE (a node that cannot be reached or died)
```

This module imports no gRPC: `transport.status` maps codes to gRPC statuses,
so the pure layers can raise these errors without knowing about the network.
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import StrEnum


class ErrorCode(StrEnum):
    """Stable strings carried in the `federation-error` trailing metadata."""

    INTERNAL = "internal"
    CONFIG = "config"
    POLICY_DENIED = "policy-denied"
    INVALID_REQUEST = "invalid-request"
    PROTOCOL_ORDER = "protocol-order"
    BUDGET_EXHAUSTED = "budget-exhausted"
    UNKNOWN_PEER = "unknown-peer"
    ROUND_ABORTED = "round-aborted"
    COHORT_REJECTED = "cohort-rejected"
    NODE_UNAVAILABLE = "node-unavailable"


class FederationError(Exception):
    """Base of every error the project raises on purpose.

    `public` may be sent to a remote party; `detail` stays in the local log,
    so it may name files or internal state but never secrets or record values.
    """

    code: ErrorCode = ErrorCode.INTERNAL

    def __init__(self, public: str, *, detail: str = "") -> None:
        super().__init__(public)
        self.public = public
        self.detail = detail


class ConfigError(FederationError):
    """A file that cannot be used: names the file and every problem in it."""

    code = ErrorCode.CONFIG

    def __init__(self, path: str, problems: Sequence[str]) -> None:
        self.path = path
        self.problems = list(problems)
        lines = "\n".join(f"  - {p}" for p in self.problems)
        super().__init__(f"{path}: {len(self.problems)} problem(s)\n{lines}")


class PolicyDenied(FederationError):
    """The node's policy refuses the request; `reasons` say why in words."""

    code = ErrorCode.POLICY_DENIED

    def __init__(self, reasons: Sequence[str], *, detail: str = "") -> None:
        self.reasons = list(reasons)
        super().__init__("refused by policy: " + "; ".join(self.reasons), detail=detail)


class InvalidRequest(FederationError):
    """A malformed request: wrong shapes, unknown names, missing header."""

    code = ErrorCode.INVALID_REQUEST


class ProtocolOrderError(FederationError):
    """A call out of protocol order, or a replayed phase."""

    code = ErrorCode.PROTOCOL_ORDER


class BudgetExhausted(FederationError):
    """The privacy budget for this recipient and purpose is spent."""

    code = ErrorCode.BUDGET_EXHAUSTED


class UnknownPeer(FederationError):
    """A caller without a usable certificate identity."""

    code = ErrorCode.UNKNOWN_PEER


class RoundAborted(FederationError):
    """Too few parties remained for a round to complete safely."""

    code = ErrorCode.ROUND_ABORTED


class CohortRejected(RoundAborted):
    """A secure round a node will not take part in: names the check that failed.

    Raised for a certificate or signature that does not verify, a participant the
    node does not accept, an identity used twice, or survivor sets that differ.
    """

    code = ErrorCode.COHORT_REJECTED


class NodeUnavailable(FederationError):
    """A node could not be reached, timed out, or went away during a call."""

    code = ErrorCode.NODE_UNAVAILABLE


ERROR_CLASSES: dict[ErrorCode, type[FederationError]] = {
    ErrorCode.INTERNAL: FederationError,
    ErrorCode.CONFIG: FederationError,
    ErrorCode.POLICY_DENIED: PolicyDenied,
    ErrorCode.INVALID_REQUEST: InvalidRequest,
    ErrorCode.PROTOCOL_ORDER: ProtocolOrderError,
    ErrorCode.BUDGET_EXHAUSTED: BudgetExhausted,
    ErrorCode.UNKNOWN_PEER: UnknownPeer,
    ErrorCode.ROUND_ABORTED: RoundAborted,
    ErrorCode.COHORT_REJECTED: CohortRejected,
    ErrorCode.NODE_UNAVAILABLE: NodeUnavailable,
}
