"""federation.experiments.topologies.adopt_local_only: a party that keeps local-only is reported as local-only."""

from __future__ import annotations

from federation.experiments.metrics import TopologyResult
from federation.experiments.topologies import KEPT_LOCAL_ONLY, PERSONALISED, adopt_local_only
from federation.models.evaluation import EvalSums


def sums(count: int, loss: float) -> EvalSums:
    return EvalSums(count, loss, count // 2, count // 4, (1, 2), (2, 1))


def test_a_party_that_kept_local_only_gets_the_local_only_figures_and_the_others_keep_their_own() -> None:
    alone = TopologyResult(name="local-only", kind="local-only")
    alone.rounds = [{"hills": sums(10, 9.0), "river": sums(10, 8.0)}, {"hills": sums(10, 5.0), "river": sums(10, 7.0)}]
    alone.chosen = {"hills": 2, "river": 1}  # each party's best round
    personal = TopologyResult(name=PERSONALISED, kind="personalised")
    personal.rounds = [{"hills": sums(10, 6.0), "river": sums(10, 3.0)}]
    personal.choices = {"hills": {"method": "local", "reason": "kept local-only"}, "river": {"method": "global"}}
    adopt_local_only(personal, alone)
    assert personal.rounds[0]["hills"] == sums(10, 5.0)  # local-only's chosen round, not a second training
    assert personal.choices["hills"]["reported"] == KEPT_LOCAL_ONLY
    assert personal.rounds[0]["river"] == sums(10, 3.0) and "reported" not in personal.choices["river"]


def test_a_party_missing_from_local_only_keeps_its_own_figures() -> None:
    alone = TopologyResult(name="local-only", kind="local-only")
    alone.rounds = [{"river": sums(10, 8.0)}]
    personal = TopologyResult(name=PERSONALISED, kind="personalised")
    personal.rounds = [{"hills": sums(10, 6.0)}]
    personal.choices = {"hills": {"method": "local"}}
    adopt_local_only(personal, alone)
    assert personal.rounds[0]["hills"] == sums(10, 6.0) and "reported" not in personal.choices["hills"]
