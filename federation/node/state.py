"""Per-run protocol state: which runs were proposed and accepted, which rounds ran.

A node computes only for a run it accepted through `Propose`, only the task
it accepted (features, target, model, hyperparameters and feature scaling;
only the run's noise may rise after Propose), never the same training round
twice, and evaluates at most once per accepted round: a replayed or
out-of-order call is refused with FAILED_PRECONDITION. A chosen scaling or
an unlimited number of evaluations would turn Evaluate into an oracle for
single records.

Accepted runs are kept in the node's state directory (one small file per
run, replaced atomically at every change), so a restarted node still
refuses a replayed round and a resumed coordinator finds its run where it
left it: proposing the same run with the same task again continues it. The
state is bounded: each caller has at most `max_runs` runs, and a run
untouched for `expire_after` is forgotten (after which its id may be
proposed afresh, as any new id could be).
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import logging
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from federation.errors import ProtocolOrderError
from federation.secagg.client import SecAggClient
from federation.task import RunContext, TaskSpec

log = logging.getLogger(__name__)
RUNS_DIR = "runs"
MAX_RUNS_PER_CALLER = 1000
MAX_SECURE_ROUNDS_PER_CALLER = 16
# Evaluation sums over many different test splits of the same rows would let a caller difference them;
# the draws are unpredictable to it (seeded by the node's secret split seed), and bounded here.
MAX_TEST_DRAWS_PER_CALLER = 20
EXPIRE_AFTER = dt.timedelta(days=30)


@dataclass
class AcceptedRun:
    caller: str
    purpose: str
    task: TaskSpec
    last_fit_round: int = 0
    noise_required: float | None = None  # the least noise multiplier this node's budget allows
    evaluated: set[int] = field(default_factory=set)  # rounds already evaluated
    evaluation_cohort: tuple[str, ...] | None = None  # who every secure evaluation of this run is summed over
    run_id: str = ""
    touched: float = 0.0  # POSIX time of the last change, for expiry

    def to_json(self) -> dict[str, Any]:
        from federation.transport.serde import task_to_pb

        return {
            "caller": self.caller,
            "run_id": self.run_id,
            "purpose": self.purpose,
            "task": base64.b64encode(task_to_pb(self.task).SerializeToString()).decode(),
            "last_fit_round": self.last_fit_round,
            "noise_required": self.noise_required,
            "evaluated": sorted(self.evaluated),
            "evaluation_cohort": list(self.evaluation_cohort) if self.evaluation_cohort is not None else None,
            "touched": self.touched,
        }

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> AcceptedRun:
        from federation.proto.v1 import node_pb2 as pb
        from federation.transport.serde import task_from_pb

        message = pb.TaskSpec()
        message.ParseFromString(base64.b64decode(raw["task"]))
        cohort = raw.get("evaluation_cohort")
        noise = raw.get("noise_required")
        return cls(
            caller=str(raw["caller"]),
            purpose=str(raw["purpose"]),
            task=task_from_pb(message),
            last_fit_round=int(raw["last_fit_round"]),
            noise_required=float(noise) if noise is not None else None,
            evaluated={int(r) for r in raw.get("evaluated", [])},
            evaluation_cohort=tuple(str(n) for n in cohort) if cohort is not None else None,
            run_id=str(raw["run_id"]),
            touched=float(raw.get("touched", 0.0)),
        )


@dataclass
class SecureRound:
    """The node's half of one secure-aggregation round in progress."""

    round: int
    client: SecAggClient
    max_weight: float
    payload: str = "update"
    rule: str | None = None  # the policy rule that admitted the round at AdvertiseKeys


class RunRegistry:
    """Thread-safe record of accepted runs, keyed by (caller, run id); kept in `directory` when one is given."""

    def __init__(
        self,
        directory: Path | None = None,
        *,
        max_runs: int = MAX_RUNS_PER_CALLER,
        expire_after: dt.timedelta = EXPIRE_AFTER,
        clock: Callable[[], float] | None = None,
    ) -> None:
        self._runs: dict[tuple[str, str], AcceptedRun] = {}
        self._secure: dict[tuple[str, str], SecureRound] = {}
        self._lock = threading.Lock()
        self._directory = directory / RUNS_DIR if directory is not None else None
        self._max_runs = max_runs
        self._expire_after = expire_after.total_seconds()
        self._clock = clock or (lambda: dt.datetime.now(dt.UTC).timestamp())
        if self._directory is not None:
            self._directory.mkdir(parents=True, exist_ok=True)
            self._load()

    # -- persistence ---------------------------------------------------------------------
    def _path(self, caller: str, run_id: str) -> Path | None:
        if self._directory is None:
            return None
        name = hashlib.sha256(f"{caller}\0{run_id}".encode()).hexdigest()[:32]
        return self._directory / f"{name}.json"

    def _load(self) -> None:
        assert self._directory is not None
        for path in sorted(self._directory.glob("*.json")):
            try:
                run = AcceptedRun.from_json(json.loads(path.read_text()))
            except (OSError, ValueError, KeyError, TypeError) as error:
                log.warning("run state %s is unreadable and was set aside: %s", path, error)
                path.replace(path.with_suffix(".unreadable"))
                continue
            self._runs[(run.caller, run.run_id)] = run
        self._expire()

    def _save(self, run: AcceptedRun) -> None:
        """Called with the lock held, after every change: the change is on disk before the call goes on."""
        run.touched = self._clock()
        path = self._path(run.caller, run.run_id)
        if path is None:
            return
        tmp = path.with_suffix(".tmp")
        with tmp.open("w") as handle:
            json.dump(run.to_json(), handle)
            handle.flush()
            os.fsync(handle.fileno())
        tmp.replace(path)

    def _expire(self) -> None:
        """Forget runs untouched for longer than `expire_after` (with the lock held, or at start)."""
        cutoff = self._clock() - self._expire_after
        for key, run in list(self._runs.items()):
            if run.touched < cutoff and key not in self._secure:
                del self._runs[key]
                path = self._path(*key)
                if path is not None:
                    path.unlink(missing_ok=True)

    def start_secure_round(self, caller: str, context: RunContext, task: TaskSpec, secure: SecureRound) -> None:
        """Open a secure round; it uses up its training (or evaluation) round, so neither can be replayed."""
        with self._lock:
            open_rounds = sum(1 for (who, run_id) in self._secure if who == caller and run_id != context.run_id)
        if open_rounds >= MAX_SECURE_ROUNDS_PER_CALLER:
            raise ProtocolOrderError(
                f"{open_rounds} secure rounds of this caller are already open; finish them before opening another"
            )
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
                    self._save(run)
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

    def open_secure_rounds(self) -> dict[tuple[str, str], SecureRound]:
        """The secure rounds in progress, by (caller, run id): what a virtual node carries between messages."""
        with self._lock:
            return dict(self._secure)

    def restore_secure_rounds(self, rounds: dict[tuple[str, str], SecureRound]) -> None:
        with self._lock:
            self._secure.update(rounds)

    def end_secure_round(self, caller: str, context: RunContext) -> None:
        with self._lock:
            self._secure.pop((caller, context.run_id), None)

    def accept(self, caller: str, context: RunContext, task: TaskSpec, *, noise_required: float | None = None) -> bool:
        """Record an accepted run; False if it was accepted before with the same purpose and task (a resumed run).

        A resumed run keeps its progress, so its rounds cannot restart; the
        same id with another purpose or task is refused.
        """
        with self._lock:
            known = self._runs.get((caller, context.run_id))
            if known is not None:
                same = known.purpose == context.purpose and replace(task, privacy=None) == replace(known.task, privacy=None)
                if not same:
                    raise ProtocolOrderError(
                        f"run {context.run_id!r} was already proposed with another purpose or task; a new run needs a new id"
                    )
                self._save(known)
                return False
            self._expire()
            if sum(1 for who, _ in self._runs if who == caller) >= self._max_runs:
                raise ProtocolOrderError(
                    f"this caller already has {self._max_runs} runs on this node; they expire "
                    f"{self._expire_after / 86400:g} days after their last call"
                )
            draws = {r.task.test_draw for (who, _), r in self._runs.items() if who == caller and r.task.test_draw}
            if task.test_draw and task.test_draw not in draws and len(draws) >= MAX_TEST_DRAWS_PER_CALLER:
                raise ProtocolOrderError(
                    f"this caller already used {MAX_TEST_DRAWS_PER_CALLER} re-drawn test splits on this node; runs "
                    f"(and their draws) expire {self._expire_after / 86400:g} days after their last call"
                )
            run = AcceptedRun(caller, context.purpose, task, noise_required=noise_required, run_id=context.run_id)
            self._runs[(caller, context.run_id)] = run
            self._save(run)
            return True

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
            self._save(run)

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
            self._save(run)
