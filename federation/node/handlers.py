"""The node's logic, one method per RPC, on plain values and without a network.

Every handler first asks the policy (`policy.decide`) and, except for
Describe and Propose, checks that the call belongs to an accepted run. The
servicer only converts messages; everything that matters is tested here.
"""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import pyarrow as pa
import torch

from federation.data import bounded_stats
from federation.data.encoding import encode, encoded_columns
from federation.data.quality import histograms
from federation.errors import BudgetExhausted, FederationError, InvalidRequest, PolicyDenied
from federation.models.evaluation import EvalSums
from federation.models.registry import MODEL_NAMES, build_model
from federation.models.training import NamedArrays, evaluate, flatten, get_arrays, set_arrays, train, unflatten
from federation.node.audit import AuditEntry, AuditLog
from federation.node.runtime import NodeRuntime
from federation.node.state import RunRegistry, SecureRound
from federation.node.training import check_task_fields, local_seed, prepare
from federation.policy.evaluate import CLIENT_SAMPLE_RATE, MODEL_RELEASES, Decision, Request, decide, sampling
from federation.policy.model import Release
from federation.privacy.accounting import MechanismStep, noise_for_budget
from federation.privacy.dpsgd import train_dp_sgd
from federation.privacy.ledger import BudgetLedger
from federation.privacy.noise import privatise
from federation.replies import FeatureStats, FieldDescription, FitOutcome, NodeDescription, ProposalAnswer, QualitySummary
from federation.secagg.client import SecAggClient
from federation.secagg.config import RoundParameters
from federation.task import RunContext, TaskSpec

log = logging.getLogger(__name__)


def _rounded(count: int) -> int:
    """Record counts leave the node rounded to two significant digits."""
    if count < 10:
        return 10 if count else 0
    digits = len(str(count)) - 2
    return int(round(count, -digits))


def _finite_delta(trained: NamedArrays, start: NamedArrays) -> np.ndarray:
    delta: np.ndarray = flatten(trained) - flatten(start)
    if not np.all(np.isfinite(delta)):
        raise InvalidRequest("local training diverged (non-finite update); lower the learning rate")
    return delta


class NodeHandlers:
    def __init__(self, runtime: NodeRuntime) -> None:
        self.runtime = runtime
        self.runs = RunRegistry()
        self.audit = AuditLog(runtime.manifest.state_dir)
        self.ledger = BudgetLedger(runtime.manifest.state_dir / "ledger.sqlite")
        self._current = threading.local()

    # -- audit --------------------------------------------------------------
    @contextmanager
    def _audited(self, caller: str, rpc: str, context: RunContext) -> Iterator[AuditEntry]:
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
    def _decide(
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
            columns=(*task.features, task.target) if task else (),
            rounds=task.rounds if task else None,
            cohort_size=cohort_size,
            dp_steps=dp_steps,
            records=len(self.runtime.split_for(task.view)[0]) if task else 0,
            batch_size=task.batch_size if task else 1,
            local_epochs=task.local_epochs if task else 1,
        )
        history = self.ledger.history(caller, context.purpose) if release in MODEL_RELEASES else []
        decision = decide(self.runtime.policy, request, today=self.runtime.today, history=history)
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

    def _authorise(self, caller: str, context: RunContext, release: Release, task: TaskSpec) -> Decision:
        decision = self._decide(caller, context, release, task=task)
        if decision.budget_exhausted:
            raise BudgetExhausted("; ".join(decision.reasons))
        if not decision.allowed:
            raise PolicyDenied(decision.reasons)
        self.runs.require(caller, context, task)
        return decision

    def _model(self, task: TaskSpec, arrays: NamedArrays | None) -> torch.nn.Module:
        n_inputs = len(encoded_columns(self.runtime.schema, task.features))
        model = build_model(task.model, n_inputs, seed=task.seed)
        if arrays is not None:
            set_arrays(model, arrays)
        return model

    # -- RPCs ---------------------------------------------------------------
    def describe(self, caller: str, context: RunContext) -> NodeDescription:
        with self._audited(caller, "Describe", context):
            return self._describe(caller, context)

    def _describe(self, caller: str, context: RunContext) -> NodeDescription:
        decision = self._decide(caller, context, "none")
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
            approx_records=_rounded(len(rt.train) + len(rt.test)),
            models=MODEL_NAMES,
            policy_summary=rt.policy.summary(caller),
            epsilon_spent=spent,
            epsilon_budget=budget,
            quality=quality,
        )

    def _budget_status(self, caller: str, purpose: str) -> tuple[float, float | None]:
        """Epsilon spent by `caller` for `purpose`, and the budget of the first rule that sets one."""
        for rule in self.runtime.policy.rule:
            covers = ("*" in rule.recipients or caller in rule.recipients) and ("*" in rule.purposes or purpose in rule.purposes)
            if covers and rule.dp is not None:
                return self.ledger.spent(caller, purpose, delta=rule.dp.delta), rule.dp.epsilon
        return 0.0, None

    def propose(self, caller: str, context: RunContext, task: TaskSpec, *, cohort_size: int, release: Release) -> ProposalAnswer:
        """Accept or refuse a task; only an unknown caller gets an error instead of an answer."""
        with self._audited(caller, "Propose", context):
            return self._propose(caller, context, task, cohort_size=cohort_size, release=release)

    def _propose(self, caller: str, context: RunContext, task: TaskSpec, *, cohort_size: int, release: Release) -> ProposalAnswer:
        if caller not in self.runtime.policy.recipients and "*" not in self.runtime.policy.recipients:
            raise PolicyDenied(self._decide(caller, context, release).reasons)
        check_task_fields(self.runtime.schema, task)
        if task.model.name not in MODEL_NAMES:
            raise InvalidRequest(f"unknown model {task.model.name!r}; this node runs only {list(MODEL_NAMES)}")
        decision = self._decide(caller, context, release, task=task, cohort_size=cohort_size, dp_steps=task.rounds)
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

    def _charge_privacy(self, caller: str, context: RunContext, task: TaskSpec, decision: Decision) -> None:
        """Before any computation: the run's privacy must satisfy this node's rule, and the budget must cover it."""
        if decision.clip is None:
            return  # the matching rule has no differential privacy
        run = self.runs.require(caller, context, task)
        if decision.dp_level == "record":  # DP-SGD here, with this node's own noise and sampling
            if run.noise_required is None or decision.epsilon_budget is None or decision.delta is None:
                raise PolicyDenied([f"rule {decision.rule!r}: no record-level noise was agreed for this run"])
            self.ledger.charge(
                caller,
                context.purpose,
                context.run_id,
                context.round,
                MechanismStep(run.noise_required, decision.sample_rate, decision.steps_per_round),
                epsilon=decision.epsilon_budget,
                delta=decision.delta,
            )
            return
        privacy = task.privacy
        if privacy is None:
            raise PolicyDenied([f"rule {decision.rule!r} requires differential privacy; the task carries none"])
        if privacy.clip > decision.clip:
            raise PolicyDenied([f"rule {decision.rule!r} requires clip <= {decision.clip:g}, the task uses {privacy.clip:g}"])
        if run.noise_required is not None and privacy.noise_multiplier < run.noise_required * (1 - 1e-9):
            needed, used = run.noise_required, privacy.noise_multiplier
            raise PolicyDenied([f"this node's budget needs a noise multiplier >= {needed:.3g}, the task uses {used:.3g}"])
        if decision.epsilon_budget is None or decision.delta is None:
            return
        self.ledger.charge(
            caller,
            context.purpose,
            context.run_id,
            context.round,
            MechanismStep(privacy.noise_multiplier, CLIENT_SAMPLE_RATE, 1),
            epsilon=decision.epsilon_budget,
            delta=decision.delta,
        )

    def _train_round(
        self,
        caller: str,
        context: RunContext,
        task: TaskSpec,
        decision: Decision,
        model: torch.nn.Module,
        x: np.ndarray,
        y: np.ndarray,
    ) -> float:
        """One round of local training: DP-SGD through Opacus where the rule or the run asks for record-level DP."""
        seed = local_seed(task.seed, self.runtime.node_id, context.round)
        dp_sgd = self._record_level_noise(caller, context, task, decision, records=len(y))
        if dp_sgd is not None:
            noise, clip = dp_sgd
            return train_dp_sgd(
                model,
                x,
                y,
                epochs=task.local_epochs,
                batch_size=task.batch_size,
                learning_rate=task.learning_rate,
                noise_multiplier=noise,
                clip=clip,
            )
        return train(
            model,
            x,
            y,
            epochs=task.local_epochs,
            batch_size=task.batch_size,
            learning_rate=task.learning_rate,
            seed=seed,
            proximal_mu=task.proximal_mu,
        )

    def _record_level_noise(
        self, caller: str, context: RunContext, task: TaskSpec, decision: Decision, *, records: int
    ) -> tuple[float, float] | None:
        """(noise multiplier, clip) for DP-SGD: the rule's, agreed at Propose, else the run's own target; None without."""
        if decision.dp_level == "record" and decision.clip is not None:
            noise = self.runs.require(caller, context, task).noise_required
            if noise is None:
                raise PolicyDenied([f"rule {decision.rule!r}: no record-level noise was agreed for this run"])
            return noise, decision.clip
        target = task.record_privacy
        if target is None:
            return None
        rate, per_round = sampling(records, task.batch_size, task.local_epochs)
        noise = noise_for_budget([], epsilon=target.epsilon, delta=target.delta, sample_rate=rate, steps=per_round * task.rounds)
        if noise is None:
            raise InvalidRequest(f"epsilon {target.epsilon:g} cannot cover {task.rounds} rounds of DP-SGD on this node")
        return noise, target.clip

    def stats(self, caller: str, context: RunContext, task: TaskSpec) -> FeatureStats:
        with self._audited(caller, "Stats", context) as entry:
            result = self._stats(caller, context, task)
            entry.rows, entry.bytes_released = len(self.runtime.split_for(task.view)[0]), 24 * len(result.columns)
            return result

    def _stats(self, caller: str, context: RunContext, task: TaskSpec) -> FeatureStats:
        self._authorise(caller, context, "stats", task)
        rt = self.runtime
        train_rows, _ = rt.split_for(task.view)
        matrix = encode(train_rows, rt.schema, task.features, dtype=np.float64)
        present = ~np.isnan(matrix)
        values = np.where(present, matrix, 0.0)
        return FeatureStats(
            columns=encoded_columns(rt.schema, task.features),
            count=tuple(int(c) for c in present.sum(axis=0)),
            sum=tuple(float(v) for v in values.sum(axis=0)),
            sum_squares=tuple(float(v) for v in (values**2).sum(axis=0)),
            histograms=histograms(train_rows, rt.schema, task.features),
        )

    def fit(self, caller: str, context: RunContext, task: TaskSpec, arrays: NamedArrays) -> FitOutcome:
        with self._audited(caller, "Fit", context) as entry:
            outcome = self._fit(caller, context, task, arrays)
            entry.rows, entry.bytes_released = outcome.num_examples, sum(a.nbytes for _, a in outcome.arrays)
            return outcome

    def _fit(self, caller: str, context: RunContext, task: TaskSpec, arrays: NamedArrays) -> FitOutcome:
        decision = self._authorise(caller, context, "update", task)
        rt = self.runtime
        train_rows, _ = rt.split_for(task.view)
        x, y = prepare(rt.schema, task, train_rows, reference=train_rows)
        model = self._model(task, arrays)
        self.runs.start_fit_round(caller, context, task)
        self._charge_privacy(caller, context, task, decision)
        loss = self._train_round(caller, context, task, decision, model, x, y)
        if task.privacy is None:
            return FitOutcome(get_arrays(model), num_examples=len(y), train_loss=loss)
        # An individual update leaves the node: it carries the full noise itself, and
        # the same weight as every other node's so its record count stays private.
        delta = _finite_delta(get_arrays(model), arrays)
        noisy = privatise(delta, clip=task.privacy.clip, noise_multiplier=task.privacy.noise_multiplier, min_contributors=1)
        return FitOutcome(unflatten(flatten(arrays) + noisy, arrays), num_examples=1, train_loss=loss)

    # -- secure aggregation -------------------------------------------------
    def advertise_keys(
        self, caller: str, context: RunContext, task: TaskSpec, parameters: RoundParameters
    ) -> tuple[bytes, bytes]:
        """Phase 1: join a secure round if the policy releases masked updates to this cohort."""
        with self._audited(caller, "AdvertiseKeys", context) as entry:
            keys = self._advertise_keys(caller, context, task, parameters)
            entry.bytes_released = sum(len(k) for k in keys)
            return keys

    def _advertise_keys(
        self, caller: str, context: RunContext, task: TaskSpec, parameters: RoundParameters
    ) -> tuple[bytes, bytes]:
        release: Release = "stats" if parameters.payload == "stats" else "masked-update"
        decision = self._decide(caller, context, release, task=task, cohort_size=len(parameters.participants))
        if not decision.allowed:
            raise PolicyDenied(decision.reasons)
        config = parameters.config(context.run_id, context.round)
        index = config.index_of(self.runtime.node_id)
        if parameters.payload == "stats":
            expected_length = bounded_stats.vector_length(self.runtime.schema, task.features) + 1
        else:
            inputs = len(encoded_columns(self.runtime.schema, task.features))
            model = build_model(task.model, inputs, seed=task.seed)
            expected_length = sum(p.numel() for p in model.state_dict().values()) + 1
        if parameters.vector_length != expected_length:
            raise InvalidRequest(
                f"the secure-aggregation vector length {parameters.vector_length} is not the {expected_length} this payload needs"
            )
        client = SecAggClient(config, index, min_cohort=decision.min_cohort)
        secure = SecureRound(context.round, client, parameters.max_weight, parameters.payload)
        self.runs.start_secure_round(caller, context, task, secure)
        return client.advertise()

    def share_keys(self, caller: str, context: RunContext, peers: dict[int, tuple[bytes, bytes]]) -> dict[int, bytes]:
        """Phase 2: encrypted shares for the neighbours that advertised."""
        with self._audited(caller, "ShareKeys", context) as entry:
            shares = self.runs.secure_round(caller, context).client.share_keys(peers)
            entry.reasons = [f"encrypted shares for {len(shares)} neighbour(s)"]
            entry.bytes_released = sum(len(b) for b in shares.values())
            return shares

    def masked_update(
        self, caller: str, context: RunContext, task: TaskSpec, shares: dict[int, bytes], arrays: NamedArrays
    ) -> np.ndarray:
        """Phase 3: train from the global model, then release (w * update, w) only masked.

        The weight w = min(examples, max_weight) / max_weight is summed
        securely with the update, so the coordinator learns the cohort's total
        weight but never one node's record count.
        """
        with self._audited(caller, "MaskedUpdate", context) as entry:
            masked = self._masked_update(caller, context, task, shares, arrays)
            entry.rows, entry.bytes_released = len(self.runtime.split_for(task.view)[0]), masked.nbytes
            return masked

    def _masked_update(
        self, caller: str, context: RunContext, task: TaskSpec, shares: dict[int, bytes], arrays: NamedArrays
    ) -> np.ndarray:
        secure = self.runs.secure_round(caller, context)
        if secure.payload == "stats":
            self._authorise(caller, context, "stats", task)
            train_rows, _ = self.runtime.split_for(task.view)
            bounded = bounded_stats.to_vector(train_rows, self.runtime.schema, task.features, cap=secure.max_weight)
            encoded = secure.client.config.quantizer.encode(np.append(bounded, 1.0), np.random.default_rng())
            return secure.client.masked_input(encoded, shares)
        decision = self._authorise(caller, context, "masked-update", task)
        self._charge_privacy(caller, context, task, decision)
        rt = self.runtime
        train_rows, _ = rt.split_for(task.view)
        x, y = prepare(rt.schema, task, train_rows, reference=train_rows)
        model = self._model(task, arrays)
        self._train_round(caller, context, task, decision, model, x, y)
        config = secure.client.config
        delta = _finite_delta(get_arrays(model), arrays)
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
        vector = np.append(weight * delta, weight)
        encoded = config.quantizer.encode(vector, np.random.default_rng())
        return secure.client.masked_input(encoded, shares)

    def unmask(
        self, caller: str, context: RunContext, survivors: frozenset[int], dropped: frozenset[int]
    ) -> list[tuple[int, str, bytes]]:
        """Phase 4: the shares that remove masks, after counting the cohort itself."""
        with self._audited(caller, "Unmask", context) as entry:
            secure = self.runs.secure_round(caller, context)
            try:
                revealed = secure.client.unmask(survivors, dropped)
            finally:
                self.runs.end_secure_round(caller, context)
            entry.reasons = [
                f"cohort of {len(survivors)} counted; {len(revealed)} share(s) revealed, {len(dropped)} for dropped peers"
            ]
            entry.bytes_released = sum(len(share) for _, _, share in revealed)
            return revealed

    def evaluate(self, caller: str, context: RunContext, task: TaskSpec, arrays: NamedArrays) -> EvalSums:
        with self._audited(caller, "Evaluate", context) as entry:
            sums = self._evaluate(caller, context, task, arrays)
            entry.rows, entry.bytes_released = sums.count, 8 * (4 + 2 * len(sums.positive_histogram))
            return sums

    def _evaluate(self, caller: str, context: RunContext, task: TaskSpec, arrays: NamedArrays) -> EvalSums:
        self._authorise(caller, context, "stats", task)
        rt = self.runtime
        train_rows, test_rows = rt.split_for(task.view)
        x, y = prepare(rt.schema, task, test_rows, reference=train_rows)
        return evaluate(self._model(task, arrays), x, y)

    def train_local(self, caller: str, context: RunContext, task: TaskSpec) -> Iterator[tuple[int, EvalSums, int]]:
        """Train on this node alone for the task's rounds; only metrics leave."""
        with self._audited(caller, "TrainLocal", context) as entry:
            for round_, sums, n in self._train_local(caller, context, task):
                entry.rows = n + sums.count
                entry.bytes_released += 8 * (4 + 2 * len(sums.positive_histogram))
                yield round_, sums, n

    def _train_local(self, caller: str, context: RunContext, task: TaskSpec) -> Iterator[tuple[int, EvalSums, int]]:
        self._authorise(caller, context, "stats", task)
        rt = self.runtime
        train_rows, test_rows = rt.split_for(task.view)
        x, y = prepare(rt.schema, task, train_rows, reference=train_rows)
        x_test, y_test = prepare(rt.schema, task, test_rows, reference=train_rows)
        model = self._model(task, None)
        for round_ in range(1, task.rounds + 1):
            train(
                model,
                x,
                y,
                epochs=task.local_epochs,
                batch_size=task.batch_size,
                learning_rate=task.learning_rate,
                seed=local_seed(task.seed, rt.node_id, round_),
            )
            yield round_, evaluate(model, x_test, y_test), len(y)

    def export(self, caller: str, context: RunContext, task: TaskSpec) -> pa.Table:
        """Harmonised training rows of the task's columns, only under `release = "raw"`."""
        with self._audited(caller, "Export", context) as entry:
            self._authorise(caller, context, "raw", task)
            frame = self.runtime.split_for(task.view)[0][[*task.features, task.target]]
            table = pa.Table.from_pandas(frame, preserve_index=False)
            entry.rows, entry.bytes_released = table.num_rows, table.nbytes
            return table
