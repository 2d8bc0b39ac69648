"""Flower's own SecAgg+ round, run in one process, as a baseline for our secure aggregation.

Flower's simulation engine needs Ray, which we do not install, so this module
drives Flower's SecAgg+ code path with a small in-process `Grid` instead and
leaves everything else as Flower ships it:

- server: a `flwr.serverapp.ServerApp` whose main function builds a
  `flwr.server.LegacyContext` (legacy `flwr.server.strategy.FedAvg`, one round)
  and calls `flwr.server.workflow.DefaultWorkflow(fit_workflow=SecAggPlusWorkflow(...))`,
  exactly as Flower's secure-aggregation example does;
- clients: one `flwr.clientapp.ClientApp(client_fn, mods=[secaggplus_mod])`
  per simulated node, each with its own `Context`; `client_fn` returns a
  `NumPyClient` whose `fit` returns a fixed float32 vector (one array) with
  `num_examples=1`;
- `InProcessGrid` (the only piece of ours on the path) gives every message an
  id, serialises it to protobuf bytes and parses it back on the other side (as
  the SuperLink/SuperNode wire would, and so the mod cannot mutate the server's
  objects), runs the destination's ClientApp with `TaskIdentity.node_id` set to
  that node, and turns an exception into the error reply a SuperNode sends.
  A node listed in `drop` for a stage vanishes when that stage's message
  reaches it: the reply is the NODE_UNAVAILABLE error the SuperLink's
  LinkState produces for a dead node, and the node stays dead.

Parameter mapping: our `neighbours` is the SecAgg+ graph degree (other nodes a
client masks with), Flower's `num_shares` counts the client itself too (its
ring neighbourhood is `num_shares // 2` nodes on each side plus itself, and it
keeps one share), so `num_shares = neighbours + 1` (capped at n).
`reconstruction_threshold = threshold` in both: shares out of those
`num_shares` needed to rebuild a secret. Flower requires it to be strictly
less than `num_shares`.

Flower averages: a client uploads `[q(w), q(w * x)]` with `w = num_examples /
max_weight`; we set `max_weight = 1.0` and `num_examples = 1` so that `w = 1`
exactly (with Flower's default `max_weight = 1000` and one example, `w * x` is
quantised at 1/1000 of the resolution). The aggregate is therefore the plain
mean of the surviving clients' vectors.

Observed with flwr 1.42: a client that vanishes at `setup` or `share_keys`
makes the round halt. The server still lists it as dead to its neighbours in
`unmask`, they have no share of its key (it never sent one), the mod raises
KeyError, and the server is left below the threshold for that node. Drops at
`collect_masked_vectors` and `unmask` are recovered as the protocol intends.

    python benchmarks/flower_secaggplus.py            # the measurements in the report
    python benchmarks/flower_secaggplus.py --quick    # a small demo
"""

from __future__ import annotations

import argparse
import logging
import random
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

import numpy as np
from flwr.app import ArrayRecord, Context, Error, Message, MetricRecord, RecordDict
from flwr.app.message_type import MessageType
from flwr.client import Client, NumPyClient
from flwr.client.mod import secaggplus_mod
from flwr.clientapp import ClientApp
from flwr.clientapp.typing import Mod
from flwr.common import NDArrays, Parameters, Scalar, parameters_to_ndarrays
from flwr.common.constant import SUPERLINK_NODE_ID, ErrorCode
from flwr.common.secure_aggregation.secaggplus_constants import RECORD_KEY_CONFIGS, Key, Stage
from flwr.common.serde import message_from_proto, message_to_proto
from flwr.compat.common import recorddict_compat as compat
from flwr.proto.message_pb2 import Message as ProtoMessage
from flwr.server import LegacyContext, ServerConfig
from flwr.server.strategy import FedAvg as LegacyFedAvg
from flwr.server.superlink.linkstate.utils import create_message_error_unavailable_res_message
from flwr.server.workflow import DefaultWorkflow, SecAggPlusWorkflow
from flwr.server.workflow.constant import MAIN_PARAMS_RECORD
from flwr.server.workflow.default_workflows import default_fit_workflow
from flwr.serverapp import Grid, ServerApp
from flwr.serverapp.strategy import FedAvg
from flwr.supercore.run import Run
from flwr.supercore.task_identity import TaskIdentity

__all__ = [
    "FlowerResult",
    "InProcessGrid",
    "plain_flower_round",
    "run_flower_plain",
    "run_flower_secaggplus",
]

RUN_ID = 1
FIRST_NODE_ID = 1001  # node ids are FIRST_NODE_ID + client index; SUPERLINK_NODE_ID is 1
STAGES: tuple[str, ...] = Stage.all()
Workflow = Callable[[Grid, Context], None]


@dataclass(frozen=True, eq=False)
class FlowerResult:
    """One Flower round: time, what came out, what should have, and the traffic.

    `seconds` covers the whole fit round inside Flower's `DefaultWorkflow`
    (strategy sampling, the four SecAgg+ stages, every client's ClientApp and
    mod, the strategy's aggregation) including the protobuf round trips of the
    in-process wire; `transport_seconds` is the part spent in those round trips.
    `aggregate` is empty when the workflow halted. `upload_bytes` and
    `download_bytes` are the serialised `RecordDict` content of all client
    replies and of all server instructions.
    """

    seconds: float
    aggregate: np.ndarray
    expected: np.ndarray
    exact: bool
    completed: bool
    upload_bytes: int
    download_bytes: int = 0
    transport_seconds: float = 0.0
    tolerance: float = 0.0
    max_abs_error: float = float("nan")
    survivors: int = 0
    flower_params: Mapping[str, object] = field(default_factory=dict)
    client_errors: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.seconds < 0 or self.upload_bytes < 0 or self.download_bytes < 0:
            raise ValueError("times and byte counts must be non-negative")
        if self.completed and self.aggregate.shape != self.expected.shape:
            raise ValueError(f"aggregate shape {self.aggregate.shape} != expected {self.expected.shape}")
        if self.exact and not self.completed:
            raise ValueError("a round that did not complete cannot be exact")


class InProcessGrid(Grid):
    """A Flower `Grid` whose nodes are ClientApps in this process, run one at a time.

    Each message crosses a protobuf round trip in each direction, so the
    client works on its own copy (the SecAgg+ mod pops keys from the config it
    receives, and the workflow sends one shared `RecordDict` to all nodes in
    the setup stage) and byte counts are wire sizes. Replies are produced when
    pulled; `send_and_receive` returns one reply per message, never waits.
    """

    def __init__(
        self,
        nodes: Mapping[int, tuple[ClientApp, Context]],
        *,
        drop_at: Mapping[str, frozenset[int]],
        run_id: int = RUN_ID,
    ) -> None:
        self._run = Run.create_empty(run_id)
        self._nodes = dict(nodes)
        self._drop_at = dict(drop_at)
        self._dead: set[int] = set()
        self._lock = threading.Lock()  # get_node_ids is also called by Flower's client-manager thread
        self._pending: dict[str, bytes] = {}
        self.upload_bytes = 0
        self.download_bytes = 0
        self.transport_seconds = 0.0
        self.client_errors: list[str] = []

    # --- Grid API ---------------------------------------------------------

    def set_run(self, run: Run) -> None:
        self._run = run

    @property
    def run(self) -> Run:
        return Run(**vars(self._run))

    def create_message(
        self,
        content: RecordDict,
        message_type: str,
        dst_node_id: int,
        group_id: str,
        ttl: float | None = None,
    ) -> Message:
        return Message(content, dst_node_id, message_type, ttl=ttl, group_id=group_id)

    def get_node_ids(self) -> Iterable[int]:
        with self._lock:
            return [nid for nid in self._nodes if nid not in self._dead]

    def push_messages(self, messages: Iterable[Message]) -> Iterable[str]:
        ids = []
        for msg in messages:
            msg_id = str(uuid.uuid4())
            msg.metadata.__dict__["_message_id"] = msg_id  # as Flower's InMemoryGrid does
            wire, content_bytes = self._encode(msg)
            self.download_bytes += content_bytes
            self._pending[msg_id] = wire
            ids.append(msg_id)
        return ids

    def pull_messages(self, message_ids: Iterable[str]) -> Iterable[Message]:
        replies = []
        for msg_id in message_ids:
            wire = self._pending.pop(msg_id, None)
            if wire is None:
                continue
            reply = self._deliver(self._decode(wire))
            reply.metadata.__dict__["_message_id"] = str(uuid.uuid4())
            wire, content_bytes = self._encode(reply)
            if reply.has_content():
                self.upload_bytes += content_bytes
            replies.append(self._decode(wire))
        return replies

    def send_and_receive(self, messages: Iterable[Message], *, timeout: float | None = None) -> Iterable[Message]:
        return self.pull_messages(list(self.push_messages(messages)))

    # --- the node side ------------------------------------------------------

    def _deliver(self, msg: Message) -> Message:
        """What the destination node answers, or the SuperLink's reply if it is dead."""
        nid = msg.metadata.dst_node_id
        with self._lock:
            if nid in self._drop_at.get(_stage_of(msg), frozenset()):
                self._dead.add(nid)
            dead = nid in self._dead or nid not in self._nodes
        if dead:
            return create_message_error_unavailable_res_message(msg.metadata, "node_unavail")
        app, context = self._nodes[nid]
        saved = (TaskIdentity._task_id, TaskIdentity._run_id, TaskIdentity._node_id)
        TaskIdentity.task_id, TaskIdentity.run_id, TaskIdentity.node_id = 1, msg.metadata.run_id, nid
        try:
            return app(msg, context)
        except Exception as ex:  # noqa: BLE001 -- a SuperNode turns any ClientApp exception into an error reply
            reason = str(type(ex)) + ":<'" + str(ex) + "'>"
            self.client_errors.append(f"node {nid}: {reason}")
            return Message(Error(code=ErrorCode.CLIENT_APP_RAISED_EXCEPTION, reason=reason), reply_to=msg)
        finally:
            TaskIdentity._task_id, TaskIdentity._run_id, TaskIdentity._node_id = saved

    def _encode(self, msg: Message) -> tuple[bytes, int]:
        start = time.perf_counter()
        proto = message_to_proto(msg)
        wire = proto.SerializeToString()
        content_bytes = proto.content.ByteSize() if msg.has_content() else 0
        self.transport_seconds += time.perf_counter() - start
        return wire, content_bytes

    def _decode(self, wire: bytes) -> Message:
        start = time.perf_counter()
        msg = message_from_proto(ProtoMessage.FromString(wire))
        self.transport_seconds += time.perf_counter() - start
        return msg


def _stage_of(msg: Message) -> str:
    """The SecAgg+ stage a TRAIN instruction carries, or '' for anything else."""
    if msg.metadata.message_type != MessageType.TRAIN or not msg.has_content():
        return ""
    configs = msg.content.config_records.get(RECORD_KEY_CONFIGS)
    stage = configs.get(Key.STAGE, "") if configs is not None else ""
    return stage if isinstance(stage, str) else ""


class _FixedUpdateClient(NumPyClient):
    """Returns the same vector whatever the global model, weighted by one example."""

    def __init__(self, vector: np.ndarray) -> None:
        self._vector = vector

    def fit(self, parameters: NDArrays, config: dict[str, Scalar]) -> tuple[NDArrays, int, dict[str, Scalar]]:
        return [self._vector], 1, {}


def client_vectors(n: int, dim: int, *, seed: int, clipping_range: float) -> list[np.ndarray]:
    """Client i's update: float32 uniform in [-clipping_range/2, clipping_range/2), from (seed, i)."""
    half = clipping_range / 2
    return [np.random.default_rng([seed, i]).uniform(-half, half, dim).astype(np.float32) for i in range(n)]


def _drop_sets(n: int, drop: Mapping[str, set[int]] | None) -> dict[str, frozenset[int]]:
    problems = []
    for stage, indices in (drop or {}).items():
        if stage not in STAGES:
            problems.append(f"unknown stage {stage!r} (Flower's stages: {', '.join(STAGES)})")
        bad = sorted(i for i in indices if not 0 <= i < n)
        if bad:
            problems.append(f"client indices {bad} at {stage!r} are outside 0..{n - 1}")
    if problems:
        raise ValueError("invalid drop schedule: " + "; ".join(problems))
    return {stage: frozenset(FIRST_NODE_ID + i for i in indices) for stage, indices in (drop or {}).items()}


def _run_round(
    vectors: list[np.ndarray],
    *,
    fit_workflow: Workflow | None,
    mods: list[Mod],
    drop_at: Mapping[str, frozenset[int]],
    seed: int,
) -> tuple[InProcessGrid, np.ndarray | None, float]:
    """Run one round of Flower's DefaultWorkflow; return the grid, the aggregate (None if halted), the seconds."""
    n = len(vectors)

    def client_fn(context: Context) -> Client:
        return _FixedUpdateClient(vectors[int(context.node_config["partition-id"])]).to_client()

    app = ClientApp(client_fn=client_fn, mods=mods)
    nodes = {
        FIRST_NODE_ID + i: (app, Context(RUN_ID, FIRST_NODE_ID + i, {"partition-id": i}, RecordDict(), {})) for i in range(n)
    }
    grid = InProcessGrid(nodes, drop_at=drop_at)

    # Empty initial parameters: the round carries only the clients' updates, no global model.
    strategy = LegacyFedAvg(
        fraction_fit=1.0,
        fraction_evaluate=0.0,
        min_fit_clients=n,
        min_evaluate_clients=0,
        min_available_clients=n,
        initial_parameters=Parameters(tensors=[], tensor_type="numpy.ndarray"),
    )
    workflow = fit_workflow or default_fit_workflow
    found: dict[str, object] = {}

    def timed_fit(grid: Grid, context: Context) -> None:
        """The fit round, timed; notes whether the strategy replaced the initial parameters."""
        if not isinstance(context, LegacyContext):
            raise TypeError(f"expected a LegacyContext, got {type(context).__name__}")
        before = context.state.array_records[MAIN_PARAMS_RECORD]
        start = time.perf_counter()
        workflow(grid, context)
        found["seconds"] = time.perf_counter() - start
        after = context.state.array_records[MAIN_PARAMS_RECORD]
        if after is not before:  # both workflows store a new ArrayRecord only after aggregating
            found["aggregate"] = after

    server_app = ServerApp()

    @server_app.main()
    def main(grid: Grid, context: Context) -> None:
        legacy = LegacyContext(context=context, config=ServerConfig(num_rounds=1), strategy=strategy)
        DefaultWorkflow(fit_workflow=timed_fit)(grid, legacy)

    saved_identity = (TaskIdentity._task_id, TaskIdentity._run_id, TaskIdentity._node_id)
    saved_random = random.getstate()  # Flower shuffles the SecAgg+ ring with the global `random`
    TaskIdentity.task_id, TaskIdentity.run_id, TaskIdentity.node_id = 1, RUN_ID, SUPERLINK_NODE_ID
    random.seed(seed)
    try:
        server_app(grid, Context(RUN_ID, SUPERLINK_NODE_ID, {}, RecordDict(), {}))
    finally:
        random.setstate(saved_random)
        TaskIdentity._task_id, TaskIdentity._run_id, TaskIdentity._node_id = saved_identity

    aggregate = None
    record = found.get("aggregate")
    if isinstance(record, ArrayRecord):
        arrays = parameters_to_ndarrays(compat.arrayrecord_to_parameters(record, keep_input=True))
        aggregate = np.asarray(arrays[0], dtype=np.float64)
    return grid, aggregate, float(found.get("seconds", float("nan")))  # type: ignore[arg-type]


def flower_parameters(
    n: int,
    *,
    neighbours: int,
    threshold: int,
    clipping_range: float,
    quantization_range: int,
    modulus_range: int,
) -> dict[str, object]:
    """`SecAggPlusWorkflow` keyword arguments for our (degree, threshold), checked first.

    Flower's ring gives node i the nodes `num_shares // 2` positions either
    side of it plus itself, so an even degree d is `num_shares = d + 1`; an
    even `num_shares` below n would be silently bumped to the next odd number.
    An integer threshold of 1 would be read as the fraction 1.0, so it must be
    at least 2, and Flower wants it strictly below `num_shares`.
    """
    problems = []
    if n < 2:
        problems.append(f"SecAgg+ needs at least 2 clients, got {n}")
    complete = neighbours >= n - 1
    if not complete and (neighbours < 2 or neighbours % 2):
        problems.append(f"neighbours must be even and >= 2 (or >= n-1 for the complete graph), got {neighbours}")
    num_shares = n if complete else neighbours + 1
    if not 2 <= threshold < num_shares:
        problems.append(f"threshold must be in 2..{num_shares - 1} for num_shares={num_shares}, got {threshold}")
    if num_shares > modulus_range // quantization_range:
        problems.append("num_shares above modulus_range / quantization_range can overflow the masked sum")
    if problems:
        raise ValueError("invalid SecAgg+ parameters: " + "; ".join(problems))
    return {
        "num_shares": num_shares,
        "reconstruction_threshold": threshold,
        "max_weight": 1.0,
        "clipping_range": clipping_range,
        "quantization_range": quantization_range,
        "modulus_range": modulus_range,
        "timeout": None,
    }


def quantisation_tolerance(clipping_range: float, quantization_range: int) -> float:
    """Largest |Flower's mean - true mean| per coordinate, from Flower's quantiser.

    With step = 2 * clipping_range / quantization_range, Flower's stochastic
    rounding moves each client's value by less than one step, and its
    float32 arithmetic on float32 inputs (`clip(x) + c`, then `* Q / 2c`)
    adds at most half an ulp twice, i.e. at most Q * 2^-24 steps each. A mean
    of such errors obeys the same per-client bound. The float64 dequantisation
    and FedAvg's re-averaging add ~1e-15 relative, covered by 1e-9.
    """
    step = 2 * clipping_range / quantization_range
    return step * (1 + quantization_range * 2.0**-23) + 1e-9


def run_flower_secaggplus(
    n: int,
    dim: int,
    *,
    neighbours: int,
    threshold: int,
    drop: dict[str, set[int]] | None = None,
    seed: int = 0,
    clipping_range: float = 8.0,
    quantization_range: int = 2**22,
    modulus_range: int = 2**32,
) -> FlowerResult:
    """One SecAgg+ round of n clients with float32 updates of length dim, through Flower's code."""
    params = flower_parameters(
        n,
        neighbours=neighbours,
        threshold=threshold,
        clipping_range=clipping_range,
        quantization_range=quantization_range,
        modulus_range=modulus_range,
    )
    drop_at = _drop_sets(n, drop)
    vectors = client_vectors(n, dim, seed=seed, clipping_range=clipping_range)
    workflow = SecAggPlusWorkflow(**params)  # type: ignore[arg-type]
    grid, aggregate, seconds = _run_round(vectors, fit_workflow=workflow, mods=[secaggplus_mod], drop_at=drop_at, seed=seed)

    # A client's vector is in the sum iff it uploaded its masked vector.
    gone = {i for stage in STAGES[:3] for i in (drop or {}).get(stage, set())}
    survivors = [i for i in range(n) if i not in gone]
    expected = np.mean([vectors[i].astype(np.float64) for i in survivors], axis=0) if survivors else np.zeros(dim)
    tolerance = quantisation_tolerance(clipping_range, quantization_range)
    return _result(grid, aggregate, expected, seconds, tolerance, len(survivors), params)


def run_flower_plain(n: int, dim: int, *, seed: int = 0, clipping_range: float = 8.0) -> FlowerResult:
    """The same round without secure aggregation: Flower's default fit workflow, same grid and clients."""
    vectors = client_vectors(n, dim, seed=seed, clipping_range=clipping_range)
    grid, aggregate, seconds = _run_round(vectors, fit_workflow=None, mods=[], drop_at={}, seed=seed)
    expected = np.mean([v.astype(np.float64) for v in vectors], axis=0)
    # legacy FedAvg averages in float32: each of n scaled terms and partial sums rounds once
    tolerance = 2 * n * float(np.finfo(np.float32).eps) * clipping_range
    return _result(grid, aggregate, expected, seconds, tolerance, n, {"fit_workflow": "default_fit_workflow"})


def _result(
    grid: InProcessGrid,
    aggregate: np.ndarray | None,
    expected: np.ndarray,
    seconds: float,
    tolerance: float,
    survivors: int,
    params: Mapping[str, object],
) -> FlowerResult:
    completed = aggregate is not None and aggregate.shape == expected.shape
    max_abs_error = float(np.max(np.abs(aggregate - expected))) if completed and aggregate is not None else float("nan")
    return FlowerResult(
        seconds=seconds,
        aggregate=aggregate if aggregate is not None else np.empty(0),
        expected=expected,
        exact=completed and max_abs_error <= tolerance,
        completed=completed,
        upload_bytes=grid.upload_bytes,
        download_bytes=grid.download_bytes,
        transport_seconds=grid.transport_seconds,
        tolerance=tolerance,
        max_abs_error=max_abs_error,
        survivors=survivors,
        flower_params=dict(params),
        client_errors=tuple(grid.client_errors),
    )


def plain_flower_round(n: int, dim: int, seed: int = 0) -> float:
    """Seconds for `flwr.serverapp.strategy.FedAvg.aggregate_train` to average the same n vectors.

    Server-side aggregation only: the reply messages (one ArrayRecord and a
    `num-examples` MetricRecord each, as a Message-API ClientApp returns) are
    built before the clock starts.
    """
    vectors = client_vectors(n, dim, seed=seed, clipping_range=8.0)
    saved = (TaskIdentity._task_id, TaskIdentity._run_id, TaskIdentity._node_id)
    TaskIdentity.task_id, TaskIdentity.run_id, TaskIdentity.node_id = 1, RUN_ID, SUPERLINK_NODE_ID
    try:
        replies = []
        for i, vector in enumerate(vectors):
            ins = Message(RecordDict(), FIRST_NODE_ID + i, MessageType.TRAIN, group_id="1")
            content = RecordDict({"arrays": ArrayRecord([vector]), "metrics": MetricRecord({"num-examples": 1})})
            replies.append(Message(content, reply_to=ins))
    finally:
        TaskIdentity._task_id, TaskIdentity._run_id, TaskIdentity._node_id = saved
    strategy = FedAvg(fraction_evaluate=0.0)
    start = time.perf_counter()
    arrays, _ = strategy.aggregate_train(1, replies)
    seconds = time.perf_counter() - start
    if arrays is None:
        raise RuntimeError("FedAvg.aggregate_train returned no arrays")
    got = next(iter(arrays.values())).numpy()
    want = np.mean([v.astype(np.float64) for v in vectors], axis=0)
    if not np.allclose(got, want, atol=2 * n * float(np.finfo(np.float32).eps) * 8.0, rtol=0):
        raise RuntimeError("FedAvg's plain average differs from the mean")
    return seconds


def _describe(label: str, result: FlowerResult) -> str:
    mib = 2**20
    return (
        f"{label:<34} {result.seconds:8.2f}s (wire {result.transport_seconds:5.2f}s)  "
        f"completed={result.completed!s:<5} exact={result.exact!s:<5} "
        f"max|err|={result.max_abs_error:.2e} (tol {result.tolerance:.2e})  "
        f"up {result.upload_bytes / mib:7.1f} MiB  down {result.download_bytes / mib:6.1f} MiB  "
        f"survivors {result.survivors}"
    )


def measure(n: int, dim: int, *, neighbours: int, threshold: int, drop_fraction: float, seed: int) -> None:
    """Print one SecAgg+ round without and with dropouts at the masked-vector stage, and the plain round."""
    k = round(n * drop_fraction)
    dropped = set(np.random.default_rng(seed).choice(n, size=k, replace=False).tolist())
    print(f"n={n} dim={dim} neighbours={neighbours} threshold={threshold} -> Flower num_shares={min(neighbours + 1, n)}")
    cases: list[tuple[str, dict[str, set[int]] | None]] = [("SecAgg+, no dropout", None)]
    if k:
        cases.append((f"SecAgg+, {k} dropped at stage 2", {Stage.COLLECT_MASKED_VECTORS: dropped}))
    for label, drop in cases:
        result = run_flower_secaggplus(n, dim, neighbours=neighbours, threshold=threshold, drop=drop, seed=seed)
        print("  " + _describe(label, result))
    print("  " + _describe("plain, default_fit_workflow", run_flower_plain(n, dim, seed=seed)))
    print(f"  {'plain, FedAvg.aggregate_train only':<34} {plain_flower_round(n, dim, seed=seed):8.3f}s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, nargs="*", default=[10, 50])
    parser.add_argument("--dim", type=int, nargs="*", default=[10**5, 10**6], help="one per --n")
    parser.add_argument("--neighbours", type=int, default=None, help="default: our own default degree, ~2 log2 n")
    parser.add_argument("--threshold", type=int, default=None, help="default: a strict majority of neighbours + 1")
    parser.add_argument("--drop-fraction", type=float, default=0.1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="n=10, dim=10^4")
    args = parser.parse_args()
    logging.getLogger("flwr").setLevel(logging.WARNING)  # the workflow logs every stage at INFO
    pairs = [(10, 10**4)] if args.quick else list(zip(args.n, args.dim, strict=True))
    for n, dim in pairs:
        neighbours = args.neighbours if args.neighbours is not None else _default_degree(n)
        threshold = args.threshold if args.threshold is not None else (min(neighbours + 1, n)) // 2 + 1
        measure(n, dim, neighbours=neighbours, threshold=threshold, drop_fraction=args.drop_fraction, seed=args.seed)


def _default_degree(n: int) -> int:
    """Our own default SecAgg+ degree (federation.secagg.graph.default_degree): even, about 2 log2 n."""
    degree = 2 * int(np.ceil(np.log2(max(n, 2))))
    return min(degree, n - 1 if (n - 1) % 2 == 0 else n - 2)


if __name__ == "__main__":
    main()
