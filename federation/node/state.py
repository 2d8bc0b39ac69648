"""Per-run protocol state: which runs were proposed and accepted, which rounds ran.

A node computes only for a run it accepted through `Propose`, only the task
it accepted (features, target, model, hyperparameters and feature scaling;
only the run's noise may rise after Propose), never the same training round
twice, and evaluates at most once per accepted round: a replayed or
out-of-order call is refused with FAILED_PRECONDITION. A chosen scaling or
an unlimited number of evaluations would turn Evaluate into an oracle for
single records.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field, replace

from federation.errors import ProtocolOrderError
from federation.secagg.client import SecAggClient
from federation.task import RunContext, TaskSpec


@dataclass
class AcceptedRun:
    caller: str
    purpose: str
    task: TaskSpec
    last_fit_round: int = 0
    noise_required: float | None = None  # the least noise multiplier this node's budget allows
    evaluated: set[int] = field(default_factory=set)  # rounds already evaluated
    evaluation_cohort: tuple[str, ...] | None = None  # who every secure evaluation of this run is summed over


@dataclass
class SecureRound:
    """The node's half of one secure-aggregation round in progress."""

    round: int
    client: SecAggClient
    max_weight: float
    payload: str = "update"
    rule: str | None = None  # the policy rule that admitted the round at AdvertiseKeys


class RunRegistry:
    """Thread-safe record of accepted runs, keyed by (caller, run id)."""

    def __init__(self) -> None:
        self._runs: dict[tuple[str, str], AcceptedRun] = {}
        self._secure: dict[tuple[str, str], SecureRound] = {}
        self._lock = threading.Lock()

    def start_secure_round(self, caller: str, context: RunContext, task: TaskSpec, secure: SecureRound) -> None:
        """Open a secure round; it uses up its training (or evaluation) round, so neither can be replayed."""
        if secure.payload == "eval":
            self.require(caller, context, task)
            self.evaluation_cohort(caller, context, secure.client.config.participants, fix=False)
            self.claim_evaluation(caller, context, task)
        elif secure.payload == "update":
            self.start_fit_round(caller, context, task)
        with self._lock:
            self._secure[(caller, context.run_id)] = secure

    def evaluation_cohort(self, caller: str, context: RunContext, participants: tuple[str, ...], *, fix: bool) -> None:
        """Every secure evaluation of a run sums the same parties: different cohorts could be differenced.

        The cohort is fixed (`fix=True`) only once a round with it reached the
        survivor check, so an aborted, invented cohort cannot take its place.
        """
        with self._lock:
            run = self._runs.get((caller, context.run_id))
            if run is None:
                raise ProtocolOrderError(f"run {context.run_id!r} was not proposed to this node; call Propose first")
            if run.evaluation_cohort is None:
                if fix:
                    run.evaluation_cohort = participants
            elif run.evaluation_cohort != participants:
                raise ProtocolOrderError(
                    f"run {context.run_id!r} evaluates over {len(run.evaluation_cohort)} fixed parties, not another cohort"
                )

    def secure_round(self, caller: str, context: RunContext) -> SecureRound:
        with self._lock:
            secure = self._secure.get((caller, context.run_id))
        if secure is None or secure.round != context.round:
            raise ProtocolOrderError(
                f"run {context.run_id!r} has no secure-aggregation round {context.round} in progress; call AdvertiseKeys first"
            )
        return secure

    def end_secure_round(self, caller: str, context: RunContext) -> None:
        with self._lock:
            self._secure.pop((caller, context.run_id), None)

    def accept(self, caller: str, context: RunContext, task: TaskSpec, *, noise_required: float | None = None) -> None:
        """Record an accepted run; a run id is accepted once, so rounds cannot restart."""
        with self._lock:
            if (caller, context.run_id) in self._runs:
                raise ProtocolOrderError(f"run {context.run_id!r} was already proposed; a new run needs a new id")
            self._runs[(caller, context.run_id)] = AcceptedRun(caller, context.purpose, task, noise_required=noise_required)

    def require(self, caller: str, context: RunContext, task: TaskSpec) -> AcceptedRun:
        """The accepted run this call belongs to; refuses anything else."""
        with self._lock:
            run = self._runs.get((caller, context.run_id))
        if run is None:
            raise ProtocolOrderError(f"run {context.run_id!r} was not proposed to this node; call Propose first")
        if run.purpose != context.purpose:
            raise ProtocolOrderError(f"run {context.run_id!r} was accepted for purpose {run.purpose!r}, not {context.purpose!r}")
        # The run's noise is agreed after Propose (and checked where it is used); the rest is fixed.
        if replace(task, privacy=None) != replace(run.task, privacy=None):
            raise ProtocolOrderError(f"run {context.run_id!r}: the task differs from the one this node accepted")
        return run

    def claim_evaluation(self, caller: str, context: RunContext, task: TaskSpec) -> None:
        """One evaluation per accepted round (1 to the task's rounds); refuses a repeat."""
        run = self.require(caller, context, task)
        with self._lock:
            if not 1 <= context.round <= run.task.rounds:
                raise ProtocolOrderError(
                    f"run {context.run_id!r}: evaluation round {context.round} is outside the {run.task.rounds} accepted rounds"
                )
            if context.round in run.evaluated:
                raise ProtocolOrderError(f"run {context.run_id!r}: round {context.round} was already evaluated")
            run.evaluated.add(context.round)

    def start_fit_round(self, caller: str, context: RunContext, task: TaskSpec) -> None:
        """Mark a training round as started; a repeated or older round is refused."""
        run = self.require(caller, context, task)
        with self._lock:
            if context.round <= run.last_fit_round:
                raise ProtocolOrderError(
                    f"run {context.run_id!r}: round {context.round} comes after round {run.last_fit_round} already ran"
                )
            if context.round > run.task.rounds:
                raise ProtocolOrderError(
                    f"run {context.run_id!r}: round {context.round} exceeds the {run.task.rounds} accepted rounds"
                )
            run.last_fit_round = context.round
