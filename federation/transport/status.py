"""The one place where project errors meet gRPC status codes, both ways."""

from __future__ import annotations

import grpc

from federation.errors import ERROR_CLASSES, ErrorCode, FederationError, NodeUnavailable, PolicyDenied

ERROR_METADATA_KEY = "federation-error"
REASON_METADATA_KEY = "federation-reason"

STATUS_BY_CODE: dict[ErrorCode, grpc.StatusCode] = {
    ErrorCode.INTERNAL: grpc.StatusCode.INTERNAL,
    ErrorCode.CONFIG: grpc.StatusCode.INTERNAL,
    ErrorCode.POLICY_DENIED: grpc.StatusCode.PERMISSION_DENIED,
    ErrorCode.INVALID_REQUEST: grpc.StatusCode.INVALID_ARGUMENT,
    ErrorCode.PROTOCOL_ORDER: grpc.StatusCode.FAILED_PRECONDITION,
    ErrorCode.BUDGET_EXHAUSTED: grpc.StatusCode.RESOURCE_EXHAUSTED,
    ErrorCode.UNKNOWN_PEER: grpc.StatusCode.UNAUTHENTICATED,
    ErrorCode.ROUND_ABORTED: grpc.StatusCode.ABORTED,
    ErrorCode.COHORT_REJECTED: grpc.StatusCode.ABORTED,
    ErrorCode.NODE_UNAVAILABLE: grpc.StatusCode.UNAVAILABLE,
}

_TRANSPORT_FAILURES = {
    grpc.StatusCode.UNAVAILABLE,
    grpc.StatusCode.DEADLINE_EXCEEDED,
    grpc.StatusCode.CANCELLED,
}


def trailing_metadata(error: FederationError) -> tuple[tuple[str, str], ...]:
    """The metadata that lets the caller rebuild the same error class."""
    pairs = [(ERROR_METADATA_KEY, error.code.value)]
    if isinstance(error, PolicyDenied):
        pairs.extend((REASON_METADATA_KEY, reason.encode("ascii", "replace").decode()) for reason in error.reasons)
    return tuple(pairs)


def error_from_rpc(error: grpc.RpcError, *, peer: str) -> FederationError:
    """Turn a failed call back into the project's exception class."""
    call = error if isinstance(error, grpc.Call) else None
    status = call.code() if call is not None else grpc.StatusCode.UNKNOWN
    details = (call.details() if call is not None else None) or str(error)
    metadata = (call.trailing_metadata() if call is not None else None) or ()
    codes = [v for k, v in metadata if k == ERROR_METADATA_KEY]
    reasons = [str(v) for k, v in metadata if k == REASON_METADATA_KEY]
    if codes:
        try:
            code = ErrorCode(str(codes[0]))
        except ValueError:
            code = ErrorCode.INTERNAL
        if code is ErrorCode.POLICY_DENIED:
            return PolicyDenied(reasons or [details], detail=f"from {peer}")
        return ERROR_CLASSES[code](details, detail=f"from {peer}")
    if status in _TRANSPORT_FAILURES:
        return NodeUnavailable(f"{peer} is unreachable or went away ({status.name}): {details}")
    for code, mapped in STATUS_BY_CODE.items():
        if mapped == status and code is not ErrorCode.INTERNAL:
            return ERROR_CLASSES[code](f"{peer}: {details}")
    return FederationError(f"{peer} failed ({status.name}): {details}")
