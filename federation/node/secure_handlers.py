"""The node's side of secure aggregation: five phases over `SecAggClient`, on plain values.

Three payloads share the phases: a trained model update ("update", release
`masked-update`), federated statistics ("stats") and evaluation sums of a
global model on the test split ("eval"), both at release `stats`. Every key
is signed with this node's certificate key and every participant is checked
against the certificates it accepts (`federation.trust`), so the cohort it
counts against its minimum is made of real parties. Any failed check ends
the round at this node with nothing revealed, and is audited.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import TYPE_CHECKING

import numpy as np

from federation.data import bounded_stats
from federation.data.encoding import encoded_columns
from federation.errors import CohortRejected, InvalidRequest, PolicyDenied
from federation.models.evaluation import bounded_length, to_bounded
from federation.models.registry import build_model
from federation.models.training import NamedArrays, get_arrays
from federation.node.state import SecureRound
from federation.node.training import finite_delta, prepare, target_bound, validation_split
from federation.policy.evaluate import Decision
from federation.policy.model import Release
from federation.privacy.noise import privatise
from federation.secagg.client import SecAggClient
from federation.secagg.cohort import Advert
from federation.secagg.config import RoundParameters
from federation.task import RunContext, TaskSpec

if TYPE_CHECKING:
    from federation.node.handlers import NodeHandlers


class SecureHandlers:
    def __init__(self, node: NodeHandlers) -> None:
        self.node = node

    @contextmanager
    def _ended_on_failure(self, caller: str, context: RunContext) -> Iterator[None]:
        """A phase that fails ends this node's round: nothing more is answered for it."""
        try:
            yield
        except Exception:
            self.node.runs.end_secure_round(caller, context)
            raise

    def _same_rule(self, caller: str, context: RunContext, task: TaskSpec, secure: SecureRound) -> Callable[[Release], Decision]:
        """Authorise at MaskedUpdate as at AdvertiseKeys: the same cohort, hence the same rule, or nothing."""

        def authorise(release: Release) -> Decision:
            cohort = len(secure.client.config.participants)
            decision = self.node.authorise(caller, context, release, task, cohort_size=cohort)
            if decision.rule != secure.rule:
                raise PolicyDenied([f"this round was admitted under rule {secure.rule!r}, not {decision.rule!r}"])
            return decision

        return authorise

    def _release(self, payload: str) -> Release:
        return "masked-update" if payload == "update" else "stats"

    def _expected_length(self, task: TaskSpec, payload: str) -> int:
        schema = self.node.runtime.schema
        if payload == "stats":
            return bounded_stats.vector_length(schema, task.stats_fields) + 1
        if payload == "eval":  # test sums, then validation sums if the task holds rows out
            parts = 2 if task.validation_fraction > 0 else 1
            return parts * bounded_length(regression=task.objective == "regression") + 1
        model = build_model(task.model, len(encoded_columns(schema, task.features)), seed=task.seed)
        return int(sum(p.numel() for p in model.state_dict().values())) + 1

    def advertise_keys(self, caller: str, context: RunContext, task: TaskSpec, parameters: RoundParameters) -> Advert:
        """Phase 1: join a secure round if the policy releases this payload to this cohort."""
        with self.node.audited(caller, "AdvertiseKeys", context) as entry:
            advert = self._advertise_keys(caller, context, task, parameters)
            entry.reasons.append(f"secure round ({parameters.payload}) with {len(parameters.participants)} declared participants")
            entry.bytes_released = len(advert.encryption_public) + len(advert.masking_public) + len(advert.signature)
            return advert

    def _advertise_keys(self, caller: str, context: RunContext, task: TaskSpec, parameters: RoundParameters) -> Advert:
        node = self.node
        if node.credentials is None or node.peers is None:
            raise PolicyDenied(["this node has no certified identity for secure aggregation"])
        release = self._release(parameters.payload)
        decision = node.authorise(caller, context, release, task, cohort_size=len(parameters.participants))
        if caller in parameters.participants:  # under `accept = "ca"` its certificate would otherwise count as a party
            raise CohortRejected(f"the caller {caller!r} lists itself as a participant; the coordinator is never a contributor")
        config = parameters.config(context.run_id, context.round, caller=caller)
        index = config.index_of(node.runtime.node_id)
        expected = self._expected_length(task, parameters.payload)
        if parameters.vector_length != expected:
            raise InvalidRequest(
                f"the secure-aggregation vector length {parameters.vector_length} is not the {expected} this payload needs"
            )
        client = SecAggClient(config, index, signer=node.credentials, peers=node.peers, min_cohort=decision.min_cohort)
        secure = SecureRound(context.round, client, parameters.max_weight, parameters.payload, rule=decision.rule)
        node.runs.start_secure_round(caller, context, task, secure)  # last: a refused call uses up no round
        return client.advertise()

    def share_keys(self, caller: str, context: RunContext, adverts: Mapping[int, Advert]) -> dict[int, bytes]:
        """Phase 2: check every participant's certificate and signature, then encrypted shares for the neighbours."""
        with self.node.audited(caller, "ShareKeys", context) as entry:
            secure = self.node.runs.secure_round(caller, context)
            with self._ended_on_failure(caller, context):
                shares = secure.client.share_keys(adverts)
            trust = self.node.peers.mode if self.node.peers else "no"
            entry.reasons = [
                f"accepted {len(secure.client.accepted)} participant(s) ({trust} trust); "
                f"encrypted shares for {len(shares)} neighbour(s)"
            ]
            entry.bytes_released = sum(len(b) for b in shares.values())
            return shares

    def masked_update(
        self, caller: str, context: RunContext, task: TaskSpec, shares: dict[int, bytes], arrays: NamedArrays
    ) -> np.ndarray:
        """Phase 3: compute the payload, then release it only masked.

        For an update the weight w = min(examples, max_weight) / max_weight is
        summed securely with (w * update), so the coordinator learns the
        cohort's total weight but never one node's record count.
        """
        with self.node.audited(caller, "MaskedUpdate", context) as entry, self._ended_on_failure(caller, context):
            masked = self._masked_update(caller, context, task, shares, arrays)
            entry.rows, entry.bytes_released = len(self.node.runtime.split_for(task.view, task.test_draw)[0]), masked.nbytes
            return masked

    def _masked_update(
        self, caller: str, context: RunContext, task: TaskSpec, shares: dict[int, bytes], arrays: NamedArrays
    ) -> np.ndarray:
        node = self.node
        secure = node.runs.secure_round(caller, context)
        secure.client.require_phase("shared")  # before any budget charge or training: a replay costs nothing
        rt = node.runtime
        train_rows, _ = rt.split_for(task.view, task.test_draw)
        config = secure.client.config
        authorise = self._same_rule(caller, context, task, secure)
        if secure.payload == "stats":
            authorise("stats")
            bounded = bounded_stats.to_vector(train_rows, rt.schema, task.stats_fields, cap=secure.max_weight)
            return secure.client.masked_input(config.quantizer.encode(np.append(bounded, 1.0), np.random.default_rng()), shares)
        if secure.payload == "eval":
            authorise("stats")
            scores = node.scores(task, node.model(task, arrays))
            bound = target_bound(rt.schema, task)
            try:
                sums = (scores.test, scores.validation)
                parts = [to_bounded(s, cap=secure.max_weight, target_bound=bound) for s in sums if s is not None]
            except ValueError:  # the exact count stays here
                raise InvalidRequest("this node has more test records than the round's cap") from None
            vector = np.append(np.concatenate(parts), 1.0)
            return secure.client.masked_input(config.quantizer.encode(vector, np.random.default_rng()), shares)
        decision = authorise("masked-update")
        node.privacy.charge(caller, context, task, decision)
        fitting, _ = validation_split(train_rows, task, rt.node_id)
        x, y = prepare(rt.schema, task, fitting, reference=train_rows)
        model = node.model(task, arrays)
        node.privacy.train_round(caller, context, task, decision, model, x, y)
        delta = finite_delta(get_arrays(model), arrays)
        if task.privacy is None:
            weight = min(len(y), secure.max_weight) / secure.max_weight
        else:  # equal weights under DP; the noise is shared among the threshold's guaranteed survivors
            weight = 1.0
            needed = task.privacy.clip * (1.0 + 4.0 * task.privacy.noise_multiplier / math.sqrt(config.threshold))
            if config.clip < needed:  # the fixed-point range would cut the noise off and weaken the guarantee
                raise InvalidRequest(
                    f"the secure-aggregation clip {config.clip:g} cannot hold this round's DP noise (needs {needed:.3g})"
                )
            delta = privatise(
                delta, clip=task.privacy.clip, noise_multiplier=task.privacy.noise_multiplier, min_contributors=config.threshold
            )
        encoded = config.quantizer.encode(np.append(weight * delta, weight), np.random.default_rng())
        return secure.client.masked_input(encoded, shares)

    def confirm_survivors(self, caller: str, context: RunContext, survivors: frozenset[int]) -> bytes:
        """Phase 4: count the cohort and sign the survivor set (the consistency check)."""
        with self.node.audited(caller, "ConfirmSurvivors", context) as entry:
            secure = self.node.runs.secure_round(caller, context)
            with self._ended_on_failure(caller, context):
                if secure.payload == "eval":
                    if len(survivors) != len(secure.client.config.participants):
                        raise CohortRejected("evaluation sums are released only over the run's whole cohort, with no dropouts")
                    self.node.runs.evaluation_cohort(caller, context, secure.client.config.participants, fix=True)
                signature = secure.client.confirm(survivors)
            entry.reasons = [f"survivor set of {len(survivors)} accepted participant(s) signed"]
            return signature

    def unmask(self, caller: str, context: RunContext, signatures: Mapping[int, bytes]) -> list[tuple[int, str, bytes]]:
        """Phase 5: the shares that remove masks, once enough survivors signed the same set."""
        with self.node.audited(caller, "Unmask", context) as entry:
            secure = self.node.runs.secure_round(caller, context)
            try:
                revealed = secure.client.unmask(signatures)
            finally:
                self.node.runs.end_secure_round(caller, context)
            entry.reasons = [f"{len(signatures)} matching survivor-set signature(s); {len(revealed)} share(s) revealed"]
            entry.bytes_released = sum(len(share) for _, _, share in revealed)
            return revealed
