"""federation.transport.serde: every string, byte string and list from the wire is bounded, and refused as InvalidRequest."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from fedkit import small_task

from federation.errors import InvalidRequest
from federation.proto.v1 import node_pb2 as pb
from federation.transport import serde, serde_secagg

HUGE = "x" * 100_000


def task_pb(**changes: Any) -> pb.TaskSpec:
    message = serde.task_to_pb(small_task("mlp", hidden=[16], dropout=0.1))
    for name, value in changes.items():
        if isinstance(value, list):
            del getattr(message, name)[:]
            getattr(message, name).extend(value)
        else:
            setattr(message, name, value)
    return message


def with_params(params: dict[str, Any]) -> pb.TaskSpec:
    message = task_pb()
    message.model.params.Clear()
    message.model.params.update(params)
    return message


def test_a_valid_task_round_trips_with_its_hyperparameters() -> None:
    task = small_task("mlp", hidden=[16, 8], dropout=0.1)
    back = serde.task_from_pb(serde.task_to_pb(task))
    assert back.model.params == {"hidden": [16.0, 8.0], "dropout": 0.1}
    assert back.features == task.features and back.target == task.target


@pytest.mark.parametrize(
    ("message", "match"),
    [
        (task_pb(target=HUGE), "the target is 100000 characters long"),
        (task_pb(target="violation\n"), "control or unprintable"),
        (task_pb(view=HUGE), "the view is 100000 characters"),
        (task_pb(features=["f"] * 257), "257 features"),
        (task_pb(features=["cod", HUGE]), "one of the features is 100000 characters"),
        (with_params({"hidden": float("nan")}), "must be finite"),
        (with_params({"hidden": {"nested": 1}}), "must be a flag, a number, a string or a list of numbers"),
        (with_params({"hidden": None}), "must be a flag"),
        (with_params({"hidden": ["a"]}), "must be a list of numbers"),
        (with_params({"hidden": [1.0] * 65}), "at most 64"),
        (with_params({f"k{i}": 1.0 for i in range(17)}), "17 model parameters"),
        (with_params({"k" * 65: 1.0}), "a model parameter name is 65"),
        (with_params({"hidden": HUGE}), "is 100000 characters"),
    ],
)
def test_task_fields_beyond_their_bounds_are_invalid_requests(message: pb.TaskSpec, match: str) -> None:
    with pytest.raises(InvalidRequest, match=match):
        serde.task_from_pb(message)


def test_a_huge_model_name_is_refused_before_it_is_echoed() -> None:
    message = task_pb()
    message.model.name = HUGE
    with pytest.raises(InvalidRequest) as caught:
        serde.task_from_pb(message)
    assert len(caught.value.public) < 200


def test_scaling_columns_and_values_are_bounded() -> None:
    message = task_pb()
    message.scaling.columns.extend(["c"] * 1025)
    with pytest.raises(InvalidRequest, match="1025 scaled columns"):
        serde.task_from_pb(message)


def header(*tensors: tuple[str, str, list[int]]) -> pb.TensorHeader:
    h = pb.TensorHeader()
    for name, dtype, shape in tensors:
        h.tensors.add(name=name, dtype=dtype, shape=shape)
    return h


@pytest.mark.parametrize(
    ("message", "match"),
    [
        (header(*[("w", "<f4", [1])] * 257), "257 tensors"),
        (header((HUGE, "<f4", [1])), "a tensor name is 100000"),
        (header(("w", HUGE, [1])), "dtype of tensor 'w' is 100000"),
        (header(("w", "<f4", [1] * 9)), "9 dimensions"),
        (header(("w", "<f4", [1] * 1_000_000)), "1000000 dimensions"),
        (header(("w", "<f4", [2, -1])), "negative dimension"),
    ],
)
def test_tensor_headers_beyond_their_bounds_are_invalid_requests(message: pb.TensorHeader, match: str) -> None:
    with pytest.raises(InvalidRequest, match=match) as caught:
        serde.tensor_specs(message)
    assert len(caught.value.public) < 300


KEY = bytes(32)


@pytest.mark.parametrize(
    ("convert", "match"),
    [
        (
            lambda: serde_secagg.peers_from_pb([pb.PeerKeys(index=0, encryption_public_key=bytes(65))]),
            "encryption public key is 65",
        ),
        (
            lambda: serde_secagg.peers_from_pb([pb.PeerKeys(index=0, encryption_public_key=KEY, certificate=bytes(1 << 20))]),
            "certificate",
        ),
        (lambda: serde_secagg.peers_from_pb([pb.PeerKeys(index=i) for i in range(1001)]), "1001 key advertisements"),
        (lambda: serde_secagg.shares_from_pb([pb.EncryptedShare(peer=0, ciphertext=bytes(2000))]), "a share is 2000 bytes"),
        (lambda: serde_secagg.shares_from_pb([pb.EncryptedShare(peer=i) for i in range(1001)]), "1001 shares"),
        (lambda: serde_secagg.signatures_from_pb([pb.SurvivorSignature(index=0, signature=bytes(513))]), "signature is 513"),
        (lambda: serde_secagg.survivors_from_pb(list(range(1001))), "1001 survivors"),
        (
            lambda: serde_secagg.parameters_from_pb(pb.SecAggParameters(participants=["a" * 64], max_weight=1)),
            "one of the participants is 64",
        ),
        (
            lambda: serde_secagg.parameters_from_pb(pb.SecAggParameters(participants=["a"] * 1001, max_weight=1)),
            "1001 participants",
        ),
        (lambda: serde_secagg.parameters_from_pb(pb.SecAggParameters(participants=["a"], max_weight=1, payload=HUGE)), "payload"),
    ],
)
def test_secure_aggregation_items_beyond_their_bounds_are_invalid_requests(convert: Callable[[], object], match: str) -> None:
    with pytest.raises(InvalidRequest, match=match):
        convert()


def test_secure_aggregation_items_within_bounds_convert() -> None:
    peers = serde_secagg.peers_from_pb([pb.PeerKeys(index=1, encryption_public_key=KEY, masking_public_key=KEY, signature=b"s")])
    assert peers[1].encryption_public == KEY
    assert serde_secagg.survivors_from_pb([0, 1, 1]) == frozenset({0, 1})
    assert serde_secagg.shares_from_pb([pb.EncryptedShare(peer=2, ciphertext=b"box")]) == {2: b"box"}


def test_every_task_field_survives_the_wire() -> None:
    from dataclasses import replace

    from federation.task import FeatureScaling, PrivacySpec, RecordPrivacy

    task = replace(
        small_task("mlp", hidden=[16], dropout=0.1),
        rounds=7,
        seed=11,
        test_draw=9,
        objective="regression",
        weight_decay=0.01,
        validation_fraction=0.2,
        target_scaling=(3.0, 2.0),
        scaling=FeatureScaling(("cod",), (1.0,), (2.0,)),
        privacy=PrivacySpec(1.1, 0.5),
        record_privacy=RecordPrivacy(2.0, 1e-5, 1.0),
        view="naive",
    )
    assert serde.task_from_pb(serde.task_to_pb(task)) == task


def test_a_selection_criterion_outside_the_registry_is_refused_and_empty_means_the_loss() -> None:
    assert serde.criterion_from_pb("") == "loss" and serde.criterion_from_pb("auc") == "auc"
    with pytest.raises(InvalidRequest, match="unknown selection criterion 'f1'"):
        serde.criterion_from_pb("f1")
    message = serde.task_to_pb(small_task("logreg"))
    message.test_draw = 2**31
    with pytest.raises(InvalidRequest, match="test_draw must be in"):
        serde.task_from_pb(message)
