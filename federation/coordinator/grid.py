"""A Flower `Grid` over our gRPC node network.

Flower's server-side strategies (FedAvg, FedProx, FedAdam, ...) drive the
rounds and do the aggregation; this grid turns their `train` and `evaluate`
messages into `Fit` and `Evaluate` calls on real nodes, in parallel, and
turns a node's failure into an error reply the strategy already handles.
"""

from __future__ import annotations

import logging
import math
import uuid
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, replace

import numpy as np
from flwr.app import Array, ArrayRecord, ConfigRecord, Message, MetricRecord, RecordDict
from flwr.app.error import Error
from flwr.common.constant import SUPERLINK_NODE_ID, ErrorCode
from flwr.serverapp import Grid
from flwr.supercore.run import Run
from flwr.supercore.task_identity import TaskIdentity

from federation.coordinator import waiting
from federation.coordinator.client import NodeClient
from federation.coordinator.secure_round import run_secure_round
from federation.errors import FederationError, RoundAborted
from federation.models.training import NamedArrays
from federation.secagg.config import RoundParameters, default_threshold
from federation.secagg.graph import default_degree
from federation.task import PrivacySpec, RunContext, TaskSpec

log = logging.getLogger(__name__)


def to_array_record(arrays: NamedArrays) -> ArrayRecord:
    return ArrayRecord(OrderedDict((name, Array(np.ascontiguousarray(a))) for name, a in arrays))


def from_array_record(record: ArrayRecord) -> NamedArrays:
    return [(name, array.numpy()) for name, array in record.items()]


def noise_range(privacy: PrivacySpec, min_contributors: int) -> float:
    """An encoding bound that holds a clipped update plus its noise share (six standard deviations)."""
    return privacy.clip * (1.0 + 6.0 * privacy.noise_multiplier / math.sqrt(max(min_contributors, 1)))


@dataclass(frozen=True)
class SecureSettings:
    """How the grid sets up each secure round: clip, threshold, graph degree, weight cap."""

    clip: float
    max_weight: float
    threshold: int = 0  # 0: a strict majority of each node's share holders
    degree: int = 0  # 0: the complete graph up to 16 nodes, SecAgg+ beyond
    stop_on_abort: bool = False  # False: an aborted round keeps the model and the run goes on

    def parameters(self, participants: list[str], arrays: NamedArrays, *, privacy: PrivacySpec | None = None) -> RoundParameters:
        """Round parameters; under DP the encoding range widens so the nodes' noise is not clipped away."""
        n = len(participants)
        degree = self.degree or (default_degree(n) if n > 16 else n - 1)
        degree = n - 1 if degree >= n - 1 else degree
        holders = degree + 1
        threshold = self.threshold or default_threshold(holders)
        clip = self.clip
        if privacy is not None:
            clip = max(clip, noise_range(privacy, threshold))
        return RoundParameters(
            participants=tuple(participants),
            threshold=threshold,
            degree=None if degree == n - 1 else degree,
            clip=clip,
            vector_length=sum(a.size for _, a in arrays) + 1,
            max_weight=self.max_weight,
        )


@dataclass(frozen=True)
class NodeFailure:
    round: int
    node_id: str
    error: str
    rpc: str = "Fit"


class NodeGrid(Grid):
    """Maps Flower's integer node ids to our `NodeClient`s."""

    def __init__(
        self,
        clients: Sequence[NodeClient],
        *,
        task: TaskSpec,
        context: Callable[[int], RunContext],
        secure: SecureSettings | None = None,
    ) -> None:
        self._clients = {index + 1: client for index, client in enumerate(clients)}
        self._secure = secure
        self.secure_rounds: list[dict[str, object]] = []
        self._task = task
        self._context = context
        self._run = Run.create_empty(run_id=1)
        # Flower stamps every Message with the process's task identity; outside
        # its own runtime nobody sets it, so the grid plays the SuperLink's part.
        # Inside Flower's runtime (our coordinator as a ServerApp) it is the run's own.
        if TaskIdentity._run_id is None:
            TaskIdentity.run_id, TaskIdentity.task_id, TaskIdentity.node_id = 1, 1, SUPERLINK_NODE_ID
        self._pool = ThreadPoolExecutor(max_workers=max(1, len(clients)))
        self._pending: dict[str, tuple[Message, Future[RecordDict]]] = {}
        self.failures: list[NodeFailure] = []
        self._waiting = waiting.current()  # Flower's strategy calls from this thread; the pool's threads report to it

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)

    def node_name(self, flower_id: int) -> str:
        return self._clients[flower_id].node_id

    # -- Grid API -----------------------------------------------------------
    def set_run(self, run: Run) -> None:
        self._run = run

    @property
    def run(self) -> Run:
        return self._run

    def create_message(
        self, content: RecordDict, message_type: str, dst_node_id: int, group_id: str, ttl: float | None = None
    ) -> Message:
        return Message(content, dst_node_id, message_type, ttl=ttl, group_id=group_id)

    def get_node_ids(self) -> Iterable[int]:
        return list(self._clients)

    def push_messages(self, messages: Iterable[Message]) -> Iterable[str]:
        ids = []
        for message in messages:
            message_id = uuid.uuid4().hex
            self._pending[message_id] = (message, self._pool.submit(self._handle, message))
            ids.append(message_id)
        return ids

    def pull_messages(self, message_ids: Iterable[str]) -> Iterable[Message]:
        replies = []
        for message_id in list(message_ids):
            entry = self._pending.get(message_id)
            if entry is None or not entry[1].done():
                continue
            message, future = self._pending.pop(message_id)
            replies.append(self._reply(message, future))
        return replies

    def send_and_receive(self, messages: Iterable[Message], *, timeout: float | None = None) -> Iterable[Message]:
        messages = list(messages)
        if self._secure is not None and messages and all(m.metadata.message_type.startswith("train") for m in messages):
            return self._secure_train(messages)
        ids = list(self.push_messages(messages))
        tally = waiting.Tally(len(ids), self._waiting)
        for message_id in ids:
            self._pending[message_id][1].add_done_callback(lambda _: tally.answer())
        wait([self._pending[i][1] for i in ids], timeout=timeout)
        replies = list(self.pull_messages(ids))
        for message_id in ids:  # anything still running counts as a dropout
            if message_id in self._pending:
                message, future = self._pending.pop(message_id)
                future.cancel()
                self._record_failure(message, "timed out")
                replies.append(Message(Error(ErrorCode.NODE_UNAVAILABLE, "timed out"), reply_to=message))
        return replies

    def _secure_train(self, messages: list[Message]) -> list[Message]:
        """One secure round for all train messages: the strategy sees a single, already summed reply.

        Flower's FedAvg (and FedProx, FedAdam, ...) then "average" one reply,
        which is the secure average itself; strategies that need individual
        updates (Krum, FedMedian) cannot work under secure aggregation at all.
        """
        settings = self._secure
        if settings is None:
            raise FederationError("secure training on a grid without secure-aggregation settings")
        first = messages[0]
        round_ = self._round(first)
        record = first.content.get("arrays")
        if not isinstance(record, ArrayRecord):
            raise FederationError("a Flower message without model arrays")
        global_arrays = from_array_record(record)
        clients = [self._clients[m.metadata.dst_node_id] for m in messages]
        parameters = settings.parameters([c.node_id for c in clients], global_arrays, privacy=self._task.privacy)
        outcome = run_secure_round(clients, self._context(round_), self._task, global_arrays, parameters)
        for error in outcome.errors:
            self.failures.append(NodeFailure(round_, str(error["node"]), str(error["error"]), rpc=str(error["rpc"])))
        self.secure_rounds.append(
            {
                "round": round_,
                "survivors": outcome.survivors,
                "dropouts": outcome.dropouts,
                "threshold": parameters.threshold,
                "aborted": outcome.aborted,
            }
        )
        if outcome.arrays is None:
            log.warning("round %d: secure aggregation aborted: %s", round_, outcome.aborted)
            if settings.stop_on_abort:
                raise RoundAborted(f"round {round_}: {outcome.aborted}")
            return [Message(Error(ErrorCode.CLIENT_APP_RAISED_EXCEPTION, outcome.aborted), reply_to=m) for m in messages]
        metrics = MetricRecord({"num-examples": max(round(outcome.total_weight), 1)})
        return [Message(RecordDict({"arrays": to_array_record(outcome.arrays), "metrics": metrics}), reply_to=first)]

    # -- dispatch -----------------------------------------------------------
    @staticmethod
    def _config(message: Message) -> ConfigRecord:
        config = message.content.get("config")
        return config if isinstance(config, ConfigRecord) else ConfigRecord()

    @classmethod
    def _round(cls, message: Message) -> int:
        value = cls._config(message).get("server-round", 0)
        return int(value) if isinstance(value, (int, float)) else 0

    def _handle(self, message: Message) -> RecordDict:
        client = self._clients[message.metadata.dst_node_id]
        context = self._context(self._round(message))
        record = message.content.get("arrays")
        if not isinstance(record, ArrayRecord):
            raise FederationError("a Flower message without model arrays")
        arrays = from_array_record(record)
        task = self._task
        mu = self._config(message).get("proximal-mu")
        if isinstance(mu, (int, float)):
            task = replace(task, proximal_mu=float(mu))
        if message.metadata.message_type.startswith("train"):
            outcome = client.fit(context, task, arrays)
            metrics = MetricRecord({"num-examples": outcome.num_examples, "train-loss": outcome.train_loss})
            return RecordDict({"arrays": to_array_record(outcome.arrays), "metrics": metrics})
        if message.metadata.message_type.startswith("evaluate"):
            sums = client.evaluate(context, task, arrays).test
            metrics = MetricRecord({"num-examples": sums.count, "loss": sums.loss, "accuracy": sums.accuracy})
            return RecordDict({"metrics": metrics})
        raise FederationError(f"unsupported message type {message.metadata.message_type!r}")

    def _record_failure(self, message: Message, error: str) -> None:
        failure = NodeFailure(self._round(message), self.node_name(message.metadata.dst_node_id), error)
        log.warning("round %d: node %s failed: %s", failure.round, failure.node_id, failure.error)
        self.failures.append(failure)

    def _reply(self, message: Message, future: Future[RecordDict]) -> Message:
        error = future.exception()
        if error is None:
            return Message(future.result(), reply_to=message)
        reason = error.public if isinstance(error, FederationError) else f"{type(error).__name__}: {error}"
        if not isinstance(error, FederationError):
            log.error("node call failed unexpectedly", exc_info=error)
        self._record_failure(message, reason)
        return Message(Error(ErrorCode.CLIENT_APP_RAISED_EXCEPTION, reason), reply_to=message)
