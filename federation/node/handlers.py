"""The node's logic, one method per RPC, on plain values and without a network.

Every handler first asks the policy (`policy.decide`, with the current date)
and, except for Describe and Propose, checks that the call belongs to an
accepted run and task. Secure aggregation lives in `secure_handlers`,
differential privacy in `privacy_enforcement`. The servicer only converts
messages; everything that matters is tested here.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa

from federation.data.encoding import encode, encoded_columns
from federation.data.quality import histograms
from federation.errors import BudgetExhausted, FederationError, InvalidRequest, PolicyDenied
from federation.models.evaluation import Scores
from federation.models.registry import MODEL_NAMES, build_model
from federation.models.training import NamedArrays, evaluate, flatten, get_arrays, set_arrays, train, unflatten
from federation.node.audit import AuditEntry, AuditLog
from federation.node.firm_handlers import firm_handlers
from federation.node.privacy_enforcement import PrivacyEnforcement
from federation.node.release import TensorSpecs, first_difference, released, rounded
from federation.node.runtime import NodeRuntime
from federation.node.secure_handlers import SecureHandlers
from federation.node.state import RunRegistry
from federation.node.training import check_task_fields, finite_delta, local_seed, prepare, target_scale, validation_split
from federation.policy.evaluate import MODEL_RELEASES, Decision, Request, decide
from federation.policy.model import Release, budget_key, release_rank
from federation.privacy.ledger import BudgetLedger
from federation.privacy.noise import privatise
from federation.replies import FeatureStats, FieldDescription, FitOutcome, NodeDescription, ProposalAnswer, QualitySummary
from federation.task import VALIDATION_COLUMN, RunContext, TaskSpec
from federation.trust.certificates import Credentials, PeerTrust

if TYPE_CHECKING:
    import torch

log = logging.getLogger(__name__)
LocalRound = tuple[int, Scores, int]  # round, test and validation sums, training rows


class NodeHandlers:
    """`credentials` (this node's certificate and key) and `peers` (whom it accepts) enable secure aggregation."""

    def __init__(self, runtime: NodeRuntime, *, credentials: Credentials | None = None, peers: PeerTrust | None = None) -> None:
        self.runtime = runtime
        self.credentials = credentials
        self.peers = peers
        self.runs = RunRegistry(runtime.manifest.state_dir)
        self.audit = AuditLog(runtime.manifest.state_dir, signer=credentials)
        self.ledger = BudgetLedger(runtime.manifest.state_dir / "ledger.sqlite")
        self.privacy = PrivacyEnforcement(self.runs, self.ledger, runtime.node_id)
        self.secure = SecureHandlers(self)
        self.psi, self.vertical, self.keyed_export = firm_handlers(runtime, self.audit, credentials, peers)
        self._current = threading.local()

    # -- audit --------------------------------------------------------------
    @contextmanager
    def audited(self, caller: str, rpc: str, context: RunContext) -> Iterator[AuditEntry]:
        """Append one audit entry for this call, whatever its outcome."""
        entry = AuditEntry(caller=caller, rpc=rpc, purpose=context.purpose, run_id=context.run_id, round=context.round)
        self._current.entry = entry
        try:
            yield entry
        except (PolicyDenied, BudgetExhausted) as error:
            entry.decision = "deny"
            entry.reasons = list(getattr(error, "reasons", None) or [error.public])
            raise
        except FederationError as error:
            entry.decision, entry.reasons = "error", [error.public]
            raise
        except Exception:
            entry.decision, entry.reasons = "error", ["internal error"]
            raise
        finally:
            self._current.entry = None
            self.audit.append(entry)

    # -- policy -------------------------------------------------------------
    def decide(
        self,
        caller: str,
        context: RunContext,
        release: Release,
        *,
        task: TaskSpec | None = None,
        cohort_size: int | None = None,
        dp_steps: int = 1,
    ) -> Decision:
        request = Request(
            caller=caller,
            purpose=context.purpose,
            release=release,
            model=task.model.name if task else None,
            columns=self.runtime.schema.read_from((*task.features, task.target)) if task else (),
            rounds=task.rounds if task else None,
            cohort_size=cohort_size,
            dp_steps=dp_steps,
            records=len(self.runtime.split_for(task.view, task.test_draw)[0]) if task else 0,
            batch_size=task.batch_size if task else 1,
            local_epochs=task.local_epochs if task else 1,
        )
        decision = decide(
            self.runtime.policy,
            request,
            today=self.runtime.today,
            history=lambda key: self.ledger.history(caller, key) if release in MODEL_RELEASES else [],
        )
        entry: AuditEntry | None = getattr(self._current, "entry", None)
        if entry is not None:
            entry.reasons = list(decision.reasons)
            entry.decision = "allow" if decision.allowed else "deny"
        log.info(
            "%s %s %s by %s: %s",
            context.run_id,
            release,
            "allowed" if decision.allowed else "denied",
            caller,
            "; ".join(decision.reasons),
        )
        return decision

    def authorise(
        self, caller: str, context: RunContext, release: Release, task: TaskSpec, *, cohort_size: int | None = None
    ) -> Decision:
        decision = self.decide(caller, context, release, task=task, cohort_size=cohort_size)
        if decision.budget_exhausted:
            raise BudgetExhausted("; ".join(decision.reasons))
        if not decision.allowed:
            raise PolicyDenied(decision.reasons)
        self.runs.require(caller, context, task)
        return decision

    @staticmethod
    def individual_results(decision: Decision) -> None:
        """This node's own evaluation sums leave it only under a rule that releases individual updates.

        Metrics of a model the caller chose (or seeded) on one node's records
        reveal about as much as an individual update: score histograms by label
        of a one-feature model read the records off one by one.
        """
        if release_rank(decision.max_release) < release_rank("update"):
            raise PolicyDenied(
                [
                    f"rule {decision.rule!r} releases at most {decision.max_release!r}: this node's evaluation results "
                    f"leave it only summed by secure aggregation with at least {decision.min_cohort} parties"
                ]
            )

    def admit_tensors(self, caller: str, rpc: str, context: RunContext, task: TaskSpec, announced: TensorSpecs) -> None:
        """Before a tensor stream's bytes are read: the caller, purpose, run and task must be accepted,
        and the announced tensors must be exactly the task's model (or none, for statistics).

        A refusal here is audited, and nothing of the announced size is ever allocated.
        """
        try:
            release: Release = "update" if rpc == "Fit" else "stats"
            expected = self.expected_tensors(task)
            if rpc == "MaskedUpdate":
                payload = self.runs.secure_round(caller, context).payload
                release = "masked-update" if payload == "update" else "stats"
                expected = () if payload == "stats" else expected
            decision = self.authorise(caller, context, release, task)
            if rpc in ("Evaluate", "Personalise"):
                self.individual_results(decision)
            if tuple(announced) != expected:
                raise InvalidRequest(f"{rpc}: {first_difference(tuple(announced), expected)}")
        except FederationError:
            with self.audited(caller, rpc, context):
                raise

    def expected_tensors(self, task: TaskSpec) -> TensorSpecs:
        """(name, dtype, shape) of every tensor of the task's model, as a stream header announces them."""
        arrays = get_arrays(self.model(task, None))
        return tuple((name, a.dtype.str, tuple(int(d) for d in a.shape)) for name, a in arrays)

    def model(self, task: TaskSpec, arrays: NamedArrays | None) -> torch.nn.Module:
        n_inputs = len(encoded_columns(self.runtime.schema, task.features))
        model = build_model(task.model, n_inputs, seed=task.seed)
        if arrays is not None:
            set_arrays(model, arrays)
        return model

    # -- RPCs ---------------------------------------------------------------
    def describe(self, caller: str, context: RunContext) -> NodeDescription:
        with self.audited(caller, "Describe", context):
            return self._describe(caller, context)

    def _describe(self, caller: str, context: RunContext) -> NodeDescription:
        decision = self.decide(caller, context, "none")
        if not decision.allowed:
            raise PolicyDenied(decision.reasons)
        rt = self.runtime
        spent, budget = self._budget_status(caller, context.purpose)
        quality = None
        if decide(rt.policy, Request(caller, context.purpose, "stats"), today=rt.today).allowed:
            report = rt.quality  # counts only, and only for a caller allowed statistics
            quality = QualitySummary(report.total, report.kept, dict(report.reasons))
        return NodeDescription(
            node_id=rt.node_id,
            kind=rt.manifest.kind,
            scenario=rt.schema.name,
            fields=tuple(FieldDescription(f.name, f.type, f.unit, f.codes, f.min, f.max, f.required) for f in rt.schema.field),
            approx_records=rounded(len(rt.train) + len(rt.test)),
            models=MODEL_NAMES,
            policy_summary=rt.policy.summary(caller),
            epsilon_spent=spent,
            epsilon_budget=budget,
            quality=quality,
        )

    def _budget_status(self, caller: str, purpose: str) -> tuple[float, float | None]:
        """Epsilon `caller` spent under the first rule for `purpose` that sets a budget, and that budget."""
        for rule in self.runtime.policy.rule:
            covers = ("*" in rule.recipients or caller in rule.recipients) and ("*" in rule.purposes or purpose in rule.purposes)
            if covers and rule.dp is not None:
                return self.ledger.spent(caller, budget_key(rule, purpose), delta=rule.dp.delta), rule.dp.epsilon
        return 0.0, None

    def propose(self, caller: str, context: RunContext, task: TaskSpec, *, cohort_size: int, release: Release) -> ProposalAnswer:
        """Accept or refuse a task; only an unknown caller gets an error instead of an answer."""
        with self.audited(caller, "Propose", context):
            return self._propose(caller, context, task, cohort_size=cohort_size, release=release)

    def _propose(self, caller: str, context: RunContext, task: TaskSpec, *, cohort_size: int, release: Release) -> ProposalAnswer:
        if caller not in self.runtime.policy.recipients and "*" not in self.runtime.policy.recipients:
            raise PolicyDenied(self.decide(caller, context, release).reasons)
        check_task_fields(self.runtime.schema, task)
        if task.model.name not in MODEL_NAMES:
            raise InvalidRequest(f"unknown model {task.model.name!r}; this node runs only {list(MODEL_NAMES)}")
        decision = self.decide(caller, context, release, task=task, cohort_size=cohort_size, dp_steps=task.rounds)
        if decision.allowed:
            self.runs.accept(caller, context, task, noise_required=decision.noise_multiplier)
        return ProposalAnswer(
            accepted=decision.allowed,
            reasons=decision.reasons,
            max_rounds=decision.max_rounds,
            min_cohort=decision.min_cohort,
            usable_columns=decision.usable_columns,
            max_release=decision.max_release,
            clip=decision.clip,
            noise_multiplier=decision.noise_multiplier,
            epsilon_spent=decision.epsilon_spent,
            epsilon_budget=decision.epsilon_budget,
            budget_exhausted=decision.budget_exhausted,
            dp_level=decision.dp_level,
        )

    def stats(self, caller: str, context: RunContext, task: TaskSpec) -> FeatureStats:
        with self.audited(caller, "Stats", context) as entry:
            result = self._stats(caller, context, task)
            entry.rows, entry.bytes_released = len(self.runtime.split_for(task.view, task.test_draw)[0]), 24 * len(result.columns)
            return result

    def _stats(self, caller: str, context: RunContext, task: TaskSpec) -> FeatureStats:
        self.authorise(caller, context, "stats", task)
        rt = self.runtime
        train_rows, _ = rt.split_for(task.view, task.test_draw)
        matrix = encode(train_rows, rt.schema, task.stats_fields, dtype=np.float64)
        present = ~np.isnan(matrix)
        values = np.where(present, matrix, 0.0)
        return FeatureStats(
            columns=encoded_columns(rt.schema, task.stats_fields),
            count=tuple(int(c) for c in present.sum(axis=0)),
            sum=tuple(float(v) for v in values.sum(axis=0)),
            sum_squares=tuple(float(v) for v in (values**2).sum(axis=0)),
            histograms=histograms(train_rows, rt.schema, task.stats_fields),
        )

    def fit(self, caller: str, context: RunContext, task: TaskSpec, arrays: NamedArrays) -> FitOutcome:
        with self.audited(caller, "Fit", context) as entry:
            outcome = self._fit(caller, context, task, arrays)
            entry.rows, entry.bytes_released = outcome.num_examples, sum(a.nbytes for _, a in outcome.arrays)
            return outcome

    def _fit(self, caller: str, context: RunContext, task: TaskSpec, arrays: NamedArrays) -> FitOutcome:
        decision = self.authorise(caller, context, "update", task)
        rt = self.runtime
        train_rows, _ = rt.split_for(task.view, task.test_draw)
        fitting, _ = validation_split(train_rows, task, rt.node_id)
        x, y = prepare(rt.schema, task, fitting, reference=train_rows)
        model = self.model(task, arrays)
        self.runs.start_fit_round(caller, context, task)
        self.privacy.charge(caller, context, task, decision)
        loss = self.privacy.train_round(caller, context, task, decision, model, x, y)
        if task.privacy is None:
            return FitOutcome(get_arrays(model), num_examples=len(y), train_loss=loss)
        # An individual update leaves the node: it carries the full noise itself, and
        # the same weight as every other node's so its record count stays private.
        delta = finite_delta(get_arrays(model), arrays)
        noisy = privatise(delta, clip=task.privacy.clip, noise_multiplier=task.privacy.noise_multiplier, min_contributors=1)
        return FitOutcome(unflatten(flatten(arrays) + noisy, arrays), num_examples=1, train_loss=loss)

    def evaluate(self, caller: str, context: RunContext, task: TaskSpec, arrays: NamedArrays) -> Scores:
        """Test sums, and validation sums when the task holds validation rows out."""
        with self.audited(caller, "Evaluate", context) as entry:
            scores = self._evaluate(caller, context, task, arrays)
            entry.rows, entry.bytes_released = released(scores)
            return scores

    def _evaluate(self, caller: str, context: RunContext, task: TaskSpec, arrays: NamedArrays) -> Scores:
        """One node's evaluation sums, only under a rule that releases individual updates.

        A caller-chosen model evaluated on one node's records reveals about as
        much as an individual update; below that level evaluation results leave
        only summed over the cohort (the "eval" payload of secure aggregation).
        """
        self.individual_results(self.authorise(caller, context, "stats", task))
        self.runs.claim_evaluation(caller, context, task)
        return self.scores(task, self.model(task, arrays))

    def scores(self, task: TaskSpec, model: torch.nn.Module) -> Scores:
        """A model's sums on this node's test rows and, if the task holds some out, on its validation rows."""
        rt = self.runtime
        train_rows, test_rows = rt.split_for(task.view, task.test_draw)
        x, y = prepare(rt.schema, task, test_rows, reference=train_rows)
        scale = target_scale(task, train_rows)
        test = evaluate(model, x, y, objective=task.objective, target_scale=scale)
        _, held_out = validation_split(train_rows, task, rt.node_id)
        if len(held_out) == 0:
            return Scores(test)
        xv, yv = prepare(rt.schema, task, held_out, reference=train_rows)
        return Scores(test, evaluate(model, xv, yv, objective=task.objective, target_scale=scale))

    def train_local(self, caller: str, context: RunContext, task: TaskSpec) -> Iterator[LocalRound]:
        """Train on this node alone for the task's rounds; only metrics leave, each round's after its own entry."""
        rounds = self._train_local(caller, context, task)
        for index in range(task.rounds):  # `_train_local` yields exactly one result per round
            with self.audited(caller, "TrainLocal", context) as entry:
                round_, scores, n = step = next(rounds)
                if index:
                    entry.reasons = ["a further round of the local training allowed in round 1"]
                rows, entry.bytes_released = released(scores)
                entry.round, entry.rows = round_, n + rows
            yield step  # the entry naming this release is durable before it leaves

    def _train_local(self, caller: str, context: RunContext, task: TaskSpec) -> Iterator[LocalRound]:
        """Local-only training; its per-round metrics are this node's own results, released like an evaluation."""
        self.individual_results(self.authorise(caller, context, "stats", task))
        rt = self.runtime
        train_rows, _ = rt.split_for(task.view, task.test_draw)
        island = replace(task, scaling=None, target_scaling=None)  # an island scales by its own data, never by a caller's
        fitting, _ = validation_split(train_rows, task, rt.node_id)
        x, y = prepare(rt.schema, island, fitting, reference=train_rows)
        model = self.model(task, None)
        for round_ in range(1, task.rounds + 1):
            train(
                model,
                x,
                y,
                epochs=task.local_epochs,
                batch_size=task.batch_size,
                learning_rate=task.learning_rate,
                seed=local_seed(task.seed, rt.node_id, round_),
                objective=task.objective,
                weight_decay=task.weight_decay,
            )
            yield round_, self.scores(island, model), len(y)

    def export(self, caller: str, context: RunContext, task: TaskSpec) -> pa.Table:
        """Harmonised training rows of the task's columns, only under `release = "raw"`."""
        with self.audited(caller, "Export", context) as entry:
            self.authorise(caller, context, "raw", task)
            rows = self.runtime.split_for(task.view, task.test_draw)[0]
            frame = rows[[*task.features, task.target]]
            if task.validation_fraction > 0:  # the pool validates on the rows each node holds out itself
                _, held_out = validation_split(rows, task, self.runtime.node_id)
                frame = frame.assign(**{VALIDATION_COLUMN: rows.index.isin(held_out.index)})
            table = pa.Table.from_pandas(frame, preserve_index=False)
            entry.rows, entry.bytes_released = table.num_rows, table.nbytes
            return table
