"""A round's public parameters: threshold bounds, participants, and the session id that binds them."""

from __future__ import annotations

import math

import pytest

from federation.errors import InvalidRequest
from federation.secagg.config import PAYLOADS, RoundParameters, SecAggConfig, default_threshold, session_id

PARTICIPANTS = tuple(f"node-{i}" for i in range(10))
SESSION = session_id("run", 1, PARTICIPANTS, payload="update")


def make(**overrides: object) -> SecAggConfig:
    fields: dict[str, object] = {
        "session": SESSION,
        "participants": PARTICIPANTS,
        "threshold": 6,
        "degree": None,
        "clip": 1.0,
        "vector_length": 8,
    }
    fields.update(overrides)
    return SecAggConfig(**fields)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("n", "degree", "holders"),
    [(2, None, 2), (3, None, 3), (10, None, 10), (11, None, 11), (10, 4, 5), (10, 6, 7), (10, 9, 10), (12, 2, 3)],
)
def test_threshold_must_be_more_than_half_of_and_at_most_the_share_holders(n: int, degree: int | None, holders: int) -> None:
    participants = PARTICIPANTS[:n] if n <= 10 else tuple(f"p{i}" for i in range(n))
    session = session_id("run", 1, participants, payload="update")
    accepted = [t for t in range(0, holders + 3) if _accepts(session, participants, t, degree)]
    assert accepted == list(range(holders // 2 + 1, holders + 1))
    assert accepted[0] == default_threshold(holders)
    assert min(accepted) >= 2  # never a single holder's share


def _accepts(session: bytes, participants: tuple[str, ...], threshold: int, degree: int | None) -> bool:
    try:
        SecAggConfig(session=session, participants=participants, threshold=threshold, degree=degree, clip=1.0, vector_length=1)
    except InvalidRequest as error:
        assert "threshold" in str(error)
        return False
    return True


def test_holders_are_each_node_with_its_neighbours() -> None:
    config = make(degree=4, threshold=3)
    for i, holders in enumerate(config.holders):
        assert holders == config.graph[i] | {i}
        assert len(holders) == 5


@pytest.mark.parametrize(
    "participants",
    [pytest.param((), id="none"), pytest.param(("solo",), id="one"), pytest.param(("a", "b", "a"), id="repeated")],
)
def test_participants_must_be_at_least_two_distinct_nodes(participants: tuple[str, ...]) -> None:
    with pytest.raises(InvalidRequest, match="two distinct participants"):
        make(participants=participants, threshold=2)


@pytest.mark.parametrize("session", [b"", bytes(31), bytes(33)])
def test_session_id_must_be_32_bytes(session: bytes) -> None:
    with pytest.raises(InvalidRequest, match="32 bytes"):
        make(session=session)


@pytest.mark.parametrize("length", [0, -1])
def test_vector_length_must_be_positive(length: int) -> None:
    with pytest.raises(InvalidRequest, match="vector length"):
        make(vector_length=length)


@pytest.mark.parametrize("clip", [0.0, -1.0, math.nan])
def test_clip_must_be_positive(clip: float) -> None:
    with pytest.raises(InvalidRequest, match="clip"):
        make(clip=clip)


def test_every_problem_is_reported_at_once() -> None:
    with pytest.raises(InvalidRequest) as caught:
        make(session=b"short", vector_length=0, clip=-1.0)
    message = str(caught.value)
    assert "32 bytes" in message and "vector length" in message and "clip" in message


def test_infinite_clip_is_refused_up_front() -> None:
    with pytest.raises(InvalidRequest, match="clip"):
        make(clip=math.inf)


def test_odd_degree_is_refused_as_invalid_request() -> None:
    with pytest.raises(InvalidRequest, match="degree"):
        make(degree=3, threshold=3)


def test_index_of_names_each_participant_and_refuses_strangers() -> None:
    config = make()
    assert [config.index_of(p) for p in PARTICIPANTS] == list(range(10))
    with pytest.raises(InvalidRequest, match="not a participant"):
        config.index_of("stranger")


def test_quantizer_uses_the_clip_and_the_cohort_size() -> None:
    quantizer = make(clip=2.5).quantizer
    assert (quantizer.clip, quantizer.cohort) == (2.5, 10)


def test_session_id_is_32_bytes_and_deterministic() -> None:
    assert len(SESSION) == 32
    assert session_id("run", 1, PARTICIPANTS, payload="update") == SESSION


@pytest.mark.parametrize(
    ("run_id", "round_", "participants", "payload"),
    [
        pytest.param("run-2", 1, PARTICIPANTS, "update", id="other-run"),
        pytest.param("run", 2, PARTICIPANTS, "update", id="other-round"),
        pytest.param("run", 1, PARTICIPANTS[:-1], "update", id="one-node-fewer"),
        pytest.param("run", 1, (*PARTICIPANTS, "node-10"), "update", id="one-node-more"),
        pytest.param("run", 1, PARTICIPANTS[::-1], "update", id="other-order"),
        pytest.param("run1", 1, PARTICIPANTS, "update", id="run-prefix-of-round"),
        pytest.param("run", 11, PARTICIPANTS, "update", id="round-11"),
        pytest.param("run", 1, PARTICIPANTS, "stats", id="stats-payload"),
        pytest.param("run", 1, PARTICIPANTS, "eval", id="eval-payload"),
    ],
)
def test_session_id_binds_run_round_payload_and_participants(
    run_id: str, round_: int, participants: tuple[str, ...], payload: str
) -> None:
    assert session_id(run_id, round_, participants, payload=payload) != SESSION


def test_session_id_payloads_are_pairwise_distinct() -> None:
    assert len({session_id("run", 1, PARTICIPANTS, payload=p) for p in PAYLOADS}) == len(PAYLOADS)


def test_session_id_needs_the_payload_by_keyword() -> None:
    with pytest.raises(TypeError):
        session_id("run", 1, PARTICIPANTS)  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        session_id("run", 1, PARTICIPANTS, "update")  # type: ignore[misc]


def test_session_id_encoding_is_injective() -> None:
    assert session_id("r\x1f1", 2, ("a", "b"), payload="update") != session_id("r", 1, ("2", "a", "b"), payload="update")
    # the payload is a length-prefixed field too: it cannot be shifted into a participant name
    assert session_id("r", 1, ("a", "b"), payload="update") != session_id("r", 1, ("updatea", "b"), payload="")


def announced(**changes: object) -> RoundParameters:
    fields: dict[str, object] = {
        "participants": PARTICIPANTS,
        "threshold": 6,
        "degree": None,
        "clip": 1.0,
        "vector_length": 8,
        "max_weight": 100.0,
        **changes,
    }
    return RoundParameters(**fields)  # type: ignore[arg-type]


TERMS = "threshold=6;degree=None;clip=1.0;length=8;max_weight=100.0"


def test_round_parameters_derive_the_session_and_never_carry_it() -> None:
    parameters = announced()
    config = parameters.config("run", 1)
    # the session binds the announced terms (coordinator, every parameter) besides run, round, payload, cohort
    assert config.session == session_id("run", 1, PARTICIPANTS, payload="update", terms="caller=;" + TERMS) != SESSION
    assert parameters.config("run", 1, caller="city").session == session_id(
        "run", 1, PARTICIPANTS, payload="update", terms="caller=city;" + TERMS
    )
    assert (config.participants, config.threshold, config.degree, config.clip, config.vector_length) == (
        PARTICIPANTS,
        6,
        None,
        1.0,
        8,
    )
    assert parameters.config("run", 1).session == config.session  # deterministic: every party derives the same
    assert parameters.config("run", 2).session != config.session
    assert parameters.payload == "update"


@pytest.mark.parametrize(
    "changes",
    [
        pytest.param({"threshold": 7}, id="threshold"),
        pytest.param({"degree": 8}, id="degree"),
        pytest.param({"clip": 2.0}, id="clip"),
        pytest.param({"vector_length": 9}, id="length"),
        pytest.param({"max_weight": 50.0}, id="max-weight"),
        pytest.param({"payload": "stats"}, id="payload"),
    ],
)
def test_round_parameters_bind_every_announced_term_into_the_session(changes: dict[str, object]) -> None:
    """Nodes told different terms never share a session."""
    assert announced(**changes).config("run", 1).session != announced().config("run", 1).session


def test_round_parameters_bind_the_coordinators_identity_into_the_session() -> None:
    parameters = announced()
    sessions = {parameters.config("run", 1, caller=c).session for c in ("", "city", "city-2", "other")}
    assert len(sessions) == 4


@pytest.mark.parametrize("payload", ["stats", "eval"])
def test_round_parameters_bind_their_payload_into_the_session(payload: str) -> None:
    parameters = announced(payload=payload)
    expected = session_id("run", 1, PARTICIPANTS, payload=payload, terms="caller=;" + TERMS)
    assert parameters.config("run", 1).session == expected != announced().config("run", 1).session


@pytest.mark.parametrize("payload", ["", "Update", "model", "update "])
def test_round_parameters_refuse_an_unknown_payload(payload: str) -> None:
    with pytest.raises(InvalidRequest, match="payload"):
        RoundParameters(
            participants=PARTICIPANTS, threshold=6, degree=None, clip=1.0, vector_length=8, max_weight=100.0, payload=payload
        )


@pytest.mark.parametrize("max_weight", [0.0, 0.5, -1.0, math.nan, math.inf, 2.0**53])
def test_round_parameters_refuse_a_weight_cap_below_one_or_unbounded(max_weight: float) -> None:
    with pytest.raises(InvalidRequest, match="max_weight"):
        RoundParameters(participants=PARTICIPANTS, threshold=6, degree=None, clip=1.0, vector_length=8, max_weight=max_weight)


def test_round_parameters_validate_the_config_they_build() -> None:
    parameters = RoundParameters(participants=PARTICIPANTS, threshold=1, degree=None, clip=1.0, vector_length=8, max_weight=1.0)
    with pytest.raises(InvalidRequest, match="threshold"):
        parameters.config("run", 1)
