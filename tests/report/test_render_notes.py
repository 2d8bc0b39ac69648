"""federation.report.render: the sentences that explain a refusal."""

from __future__ import annotations

from typing import Any

from federation.report.render import own_results_note

MASKED_ONLY = "rule 'districts' releases at most 'masked-update', the request needs 'update'"


def topology(kind: str, refusals: dict[str, list[str]]) -> dict[str, Any]:
    return {"kind": kind, "refusals": refusals}


def test_a_party_that_releases_only_masked_updates_is_explained_once() -> None:
    note = own_results_note(
        [
            topology("federated", {}),
            topology("local-only", {"hills": [MASKED_ONLY]}),
            topology("personalised", {"hills": [MASKED_ONLY], "river": [MASKED_ONLY]}),
        ]
    )
    assert len(note) == 2 and note[1].startswith("hills, river: local-only and personalised results are each one party's")
    assert "federated training, whose results leave only summed, includes them" in note[1]


def test_other_refusals_need_no_such_note() -> None:
    assert own_results_note([topology("personalised", {"hills": ["the caller is not named by any rule"]})]) == []
    assert own_results_note([topology("federated", {"hills": [MASKED_ONLY]})]) == []
