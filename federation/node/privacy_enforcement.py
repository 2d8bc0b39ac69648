"""Differential privacy on the node: the budget charge before any computation, and DP-SGD.

Charges go to the ledger key the policy decision names (one budget per
recipient and rule unless the rule asks for one per purpose), so a recipient
cannot escape its budget by renaming its purpose.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from federation.errors import InvalidRequest, PolicyDenied
from federation.models.training import train
from federation.node.state import RunRegistry
from federation.node.training import local_seed
from federation.policy.evaluate import CLIENT_SAMPLE_RATE, Decision, sampling
from federation.privacy.accounting import MechanismStep, noise_for_budget
from federation.privacy.ledger import BudgetLedger
from federation.task import RunContext, TaskSpec

if TYPE_CHECKING:
    import torch


class PrivacyEnforcement:
    def __init__(self, runs: RunRegistry, ledger: BudgetLedger, node_id: str) -> None:
        self.runs = runs
        self.ledger = ledger
        self.node_id = node_id

    def _charge(self, caller: str, context: RunContext, decision: Decision, step: MechanismStep) -> None:
        if decision.epsilon_budget is None or decision.delta is None:
            return
        self.ledger.charge(
            caller,
            decision.budget_key,
            step,
            purpose=context.purpose,
            run_id=context.run_id,
            round_=context.round,
            epsilon=decision.epsilon_budget,
            delta=decision.delta,
        )

    def charge(self, caller: str, context: RunContext, task: TaskSpec, decision: Decision) -> None:
        """Before any computation: the run's privacy must satisfy this node's rule, and the budget must cover it."""
        if decision.clip is None:
            return  # the matching rule has no differential privacy
        run = self.runs.require(caller, context, task)
        if decision.dp_level == "record":  # DP-SGD here, with this node's own noise and sampling
            if run.noise_required is None or decision.epsilon_budget is None or decision.delta is None:
                raise PolicyDenied([f"rule {decision.rule!r}: no record-level noise was agreed for this run"])
            self._charge(
                caller, context, decision, MechanismStep(run.noise_required, decision.sample_rate, decision.steps_per_round)
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
        self._charge(caller, context, decision, MechanismStep(privacy.noise_multiplier, CLIENT_SAMPLE_RATE, 1))

    def train_round(
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
        dp_sgd = self._record_level_noise(caller, context, task, decision, records=len(y))
        if dp_sgd is not None:
            noise, clip = dp_sgd
            from federation.privacy.dpsgd import train_dp_sgd  # Opacus, only where record-level DP is asked for

            return train_dp_sgd(
                model,
                x,
                y,
                epochs=task.local_epochs,
                batch_size=task.batch_size,
                learning_rate=task.learning_rate,
                noise_multiplier=noise,
                clip=clip,
                objective=task.objective,
            )
        return train(
            model,
            x,
            y,
            epochs=task.local_epochs,
            batch_size=task.batch_size,
            learning_rate=task.learning_rate,
            seed=local_seed(task.seed, self.node_id, context.round),
            proximal_mu=task.proximal_mu,
            objective=task.objective,
            weight_decay=task.weight_decay,
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
