"""federation.transport.status: every error code maps to one gRPC status, and back."""

from __future__ import annotations

import grpc
import pytest

from federation.errors import (
    ERROR_CLASSES,
    ErrorCode,
    FederationError,
    InvalidRequest,
    NodeUnavailable,
    PolicyDenied,
    ProtocolOrderError,
)
from federation.transport.status import (
    ERROR_METADATA_KEY,
    REASON_METADATA_KEY,
    STATUS_BY_CODE,
    error_from_rpc,
    trailing_metadata,
)


class FakeCall(grpc.RpcError, grpc.Call):  # type: ignore[misc]
    """A failed call as the channel hands it to the coordinator."""

    def __init__(self, code: grpc.StatusCode, details: str, metadata: tuple[tuple[str, str], ...] = ()) -> None:
        self._code, self._details, self._metadata = code, details, metadata

    def code(self) -> grpc.StatusCode:
        return self._code

    def details(self) -> str:
        return self._details

    def trailing_metadata(self) -> tuple[tuple[str, str], ...]:
        return self._metadata

    def initial_metadata(self) -> tuple[tuple[str, str], ...]:
        return ()

    def is_active(self) -> bool:
        return False

    def time_remaining(self) -> float | None:
        return None

    def cancel(self) -> bool:
        return False

    def add_callback(self, callback: object) -> bool:
        return False


def test_every_error_code_has_a_grpc_status() -> None:
    assert set(STATUS_BY_CODE) == set(ErrorCode)
    assert all(isinstance(s, grpc.StatusCode) for s in STATUS_BY_CODE.values())
    assert set(ERROR_CLASSES) == set(ErrorCode)


def test_each_class_code_maps_to_its_documented_status() -> None:
    assert STATUS_BY_CODE[PolicyDenied.code] is grpc.StatusCode.PERMISSION_DENIED
    assert STATUS_BY_CODE[InvalidRequest.code] is grpc.StatusCode.INVALID_ARGUMENT
    assert STATUS_BY_CODE[ProtocolOrderError.code] is grpc.StatusCode.FAILED_PRECONDITION
    assert STATUS_BY_CODE[FederationError.code] is grpc.StatusCode.INTERNAL


def test_policy_denied_metadata_carries_its_reasons() -> None:
    error = PolicyDenied(["rule 'a' does not cover purpose 'x'", "default is deny"])
    assert trailing_metadata(error) == (
        (ERROR_METADATA_KEY, "policy-denied"),
        (REASON_METADATA_KEY, "rule 'a' does not cover purpose 'x'"),
        (REASON_METADATA_KEY, "default is deny"),
    )


def test_reasons_are_made_ascii_for_metadata() -> None:
    pairs = trailing_metadata(PolicyDenied(["Düsseldorf is not named"]))
    [reason] = [v for k, v in pairs if k == REASON_METADATA_KEY]
    assert reason.isascii()
    assert reason == "D?sseldorf is not named"


def test_other_errors_carry_only_their_code() -> None:
    assert trailing_metadata(InvalidRequest("bad shape", detail="secret detail")) == ((ERROR_METADATA_KEY, "invalid-request"),)


@pytest.mark.parametrize("code", [c for c in ErrorCode if c is not ErrorCode.CONFIG])
def test_the_error_class_survives_the_round_trip(code: ErrorCode) -> None:
    cls = ERROR_CLASSES[code]
    original = cls(["why"]) if cls is PolicyDenied else cls("public message")
    call = FakeCall(STATUS_BY_CODE[code], original.public, trailing_metadata(original))
    rebuilt = error_from_rpc(call, peer="north")
    assert type(rebuilt) is cls
    assert rebuilt.code is code
    assert "north" in rebuilt.detail


def test_policy_reasons_survive_the_round_trip() -> None:
    original = PolicyDenied(["one", "two"])
    rebuilt = error_from_rpc(FakeCall(grpc.StatusCode.PERMISSION_DENIED, original.public, trailing_metadata(original)), peer="n")
    assert isinstance(rebuilt, PolicyDenied)
    assert rebuilt.reasons == ["one", "two"]


@pytest.mark.parametrize("status", [grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.CANCELLED])
def test_transport_failures_become_node_unavailable(status: grpc.StatusCode) -> None:
    rebuilt = error_from_rpc(FakeCall(status, "connection refused"), peer="north")
    assert isinstance(rebuilt, NodeUnavailable)
    assert "north" in rebuilt.public


def test_a_status_without_metadata_maps_back_by_status() -> None:
    rebuilt = error_from_rpc(FakeCall(grpc.StatusCode.INVALID_ARGUMENT, "bad"), peer="north")
    assert type(rebuilt) is InvalidRequest


def test_an_unknown_code_in_metadata_is_internal() -> None:
    rebuilt = error_from_rpc(FakeCall(grpc.StatusCode.INTERNAL, "x", ((ERROR_METADATA_KEY, "made-up"),)), peer="north")
    assert type(rebuilt) is FederationError
    assert rebuilt.code is ErrorCode.INTERNAL
