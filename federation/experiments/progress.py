"""A comparison's progress in its run directory, so that `--resume RUN_DIR` continues where it stopped.

`progress.json` holds the run's identity (its stamp, so every run id is the
same again, and a hash of the experiment file), every finished topology's
full result, and for a federated topology in progress the rounds it started
and completed with their metrics; the models are the round checkpoints.

A round that was started but not completed is never repeated: nodes keep
their accepted runs on disk and refuse a replayed round (it would release a
second update, and a second budget charge, for the same round). A resumed
federated run therefore continues after the interrupted round, from the
last completed round's model, and says so in its note.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from federation.errors import ConfigError
from federation.experiments.metrics import TopologyResult, result_from_state, result_to_state
from federation.models.evaluation import EvalSums

PROGRESS_NAME = "progress.json"


def experiment_digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@dataclass
class InProgress:
    """A federated topology's rounds so far."""

    started: int = 0
    completed: int = 0
    rounds: list[dict[str, Any]] = field(default_factory=list)  # result states of the completed rounds
    validation: list[dict[str, Any]] = field(default_factory=list)  # and of their validation sums


@dataclass
class RunProgress:
    run_dir: Path
    stamp: str
    experiment: str
    digest: str
    finished: dict[str, dict[str, Any]] = field(default_factory=dict)  # label -> result state
    running: dict[str, InProgress] = field(default_factory=dict)
    attempts: dict[str, int] = field(default_factory=dict)  # label -> how often it was started

    @classmethod
    def new(cls, run_dir: Path, experiment_path: Path, name: str, stamp: str) -> RunProgress:
        """A new run's progress; `stamp` makes its run ids unique (nodes remember every run id they accepted)."""
        progress = cls(run_dir, stamp, name, experiment_digest(experiment_path))
        progress.save()
        return progress

    @classmethod
    def resume(cls, run_dir: Path, experiment_path: Path) -> RunProgress:
        path = run_dir / PROGRESS_NAME
        if not path.is_file():
            raise ConfigError(str(run_dir), [f"no {PROGRESS_NAME} here: --resume takes the run directory a compare or run wrote"])
        try:
            raw = json.loads(path.read_text())
            progress = cls(
                run_dir,
                str(raw["stamp"]),
                str(raw["experiment"]),
                str(raw["digest"]),
                finished=dict(raw.get("finished", {})),
                running={label: InProgress(**state) for label, state in raw.get("running", {}).items()},
                attempts={str(k): int(v) for k, v in raw.get("attempts", {}).items()},
            )
        except (OSError, ValueError, KeyError, TypeError) as error:
            raise ConfigError(str(path), [f"the run's progress file is unreadable: {error}"]) from error
        if progress.digest != experiment_digest(experiment_path):
            raise ConfigError(
                str(experiment_path),
                [f"this is not the experiment file the run in {run_dir} was started with (it changed since)"],
            )
        return progress

    def save(self) -> None:
        data = {
            "stamp": self.stamp,
            "experiment": self.experiment,
            "digest": self.digest,
            "saved": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "finished": self.finished,
            "running": {label: vars(state) for label, state in self.running.items()},
            "attempts": self.attempts,
        }
        tmp = self.run_dir / (PROGRESS_NAME + ".tmp")
        with tmp.open("w") as handle:
            json.dump(data, handle)
            handle.flush()
            os.fsync(handle.fileno())
        tmp.replace(self.run_dir / PROGRESS_NAME)

    # -- topologies ---------------------------------------------------------------------
    def result(self, label: str) -> TopologyResult | None:
        state = self.finished.get(label)
        return result_from_state(state) if state is not None else None

    def attempt(self, label: str) -> int:
        """Count a start of `label`; returns how many starts came before."""
        before = self.attempts.get(label, 0)
        self.attempts[label] = before + 1
        self.save()
        return before

    def finish(self, label: str, result: TopologyResult) -> None:
        self.finished[label] = result_to_state(result)
        self.running.pop(label, None)
        self.save()

    # -- rounds of a federated topology ---------------------------------------------------
    def rounds(self, label: str) -> InProgress:
        return self.running.setdefault(label, InProgress())

    def round_started(self, label: str, round_: int) -> None:
        state = self.rounds(label)
        if round_ > state.started:
            state.started = round_
            self.save()

    def round_completed(self, label: str, round_: int, sums: dict[str, EvalSums], validation: dict[str, EvalSums]) -> None:
        state = self.rounds(label)
        state.completed = round_
        state.started = max(state.started, round_)
        saved = result_to_state(TopologyResult(label, "federated", rounds=[sums], validation=[validation]))
        state.rounds.append(saved["rounds"][0])
        state.validation.append(saved["validation"][0])
        self.save()

    def completed_rounds(self, label: str) -> tuple[list[dict[str, EvalSums]], list[dict[str, EvalSums]]]:
        """Test and validation sums of the rounds a federated topology completed."""
        state = self.running.get(label)
        if state is None:
            return [], []
        restored = result_from_state({"name": label, "kind": "federated", "rounds": state.rounds, "validation": state.validation})
        return restored.rounds, restored.validation
