"""Our node as a Flower ClientApp, without Ray: each message served as if by a fresh worker.

`FreshWorkerGrid` stands in for Flower's Simulation Engine in the one way
that matters here: it keeps each node's Flower `Context` between messages
(as the engine does) and forgets everything else, clearing the ClientApp's
per-worker caches before every message, as when Flower hands a node's next
message to another worker process. The ClientApp, the node code and
the coordinator are the real ones.
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import pytest
from fedkit import COORDINATOR, PURPOSE, SMALL_PARTIES, build_city, small_task, write_experiment
from flwr.app import Context, Message, RecordDict
from flwr.clientapp import ClientApp
from flwr.common.constant import SUPERLINK_NODE_ID
from flwr.serverapp import Grid
from flwr.supercore.run import Run
from flwr.supercore.task_identity import TaskIdentity

from federation.coordinator.client import NodeClient
from federation.errors import ConfigError, ProtocolOrderError
from federation.experiments.config import load_experiment
from federation.flower import virtual_node
from federation.flower.apps import client_app
from federation.flower.channel import MessageChannel, MessageRouter
from federation.flower.engine import compare_on_grid, identify
from federation.flower.plan import PLAN_NAME, Plan, plan_for
from federation.flower.simulation import check_state_free
from federation.flower.wire import call_content
from federation.node.audit_verify import verify
from federation.node.state_lock import StateLock
from federation.proto.v1 import node_pb2 as pb
from federation.task import RunContext
from federation.transport import serde
from federation.transport.tls import Identity


class FreshWorkerGrid(Grid):  # type: ignore[misc]
    """Flower's engine for these tests: a Context per node, nothing else kept between a node's messages."""

    def __init__(self, app: ClientApp, nodes: int) -> None:
        if TaskIdentity._run_id is None:
            TaskIdentity.run_id, TaskIdentity.task_id, TaskIdentity.node_id = 1, 1, SUPERLINK_NODE_ID
        self._app = app
        self._contexts = {
            100 + i: Context(run_id=1, node_id=100 + i, node_config={"partition-id": i}, state=RecordDict(), run_config={})
            for i in range(nodes)
        }
        self._pool = ThreadPoolExecutor(max_workers=4)
        self._replies: dict[str, Future[Message]] = {}
        self._run = Run.create_empty(run_id=1)
        self.served: Counter[int] = Counter()

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
        return list(self._contexts)

    def push_messages(self, messages: Iterable[Message]) -> Iterable[str]:
        ids = []
        for message in messages:
            message_id = uuid.uuid4().hex
            message.metadata.__dict__["_message_id"] = message_id
            self._replies[message_id] = self._pool.submit(self._serve, message)
            ids.append(message_id)
        return ids

    def _serve(self, message: Message) -> Message:
        virtual_node._loaded.clear()  # another worker: nothing of any node in memory
        self.served[message.metadata.dst_node_id] += 1
        return self._app(message, self._contexts[message.metadata.dst_node_id])

    def pull_messages(self, message_ids: Iterable[str]) -> Iterable[Message]:
        done = [i for i in message_ids if i in self._replies and self._replies[i].done()]
        return [self._replies.pop(i).result() for i in done]

    def send_and_receive(self, messages: Iterable[Message], *, timeout: float | None = None) -> Iterable[Message]:
        raise NotImplementedError  # the router pushes and pulls

    def close(self) -> None:
        self._pool.shutdown()


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Iterable[tuple[Path, Plan, MessageRouter, FreshWorkerGrid]]:
    root = tmp_path_factory.mktemp("flower-city")
    city = build_city(root, scale=0.1)
    path = write_experiment(city, SMALL_PARTIES, rounds=2)
    path.write_text(
        path.read_text().replace(
            'strategies = ["fedavg", "fedprox"]', 'strategies = ["fedavg"]\n\n[secure_aggregation]\nmode = "always"'
        )
    )
    experiment = load_experiment(path)
    plan = plan_for(experiment.nodes, experiment.pki_dir, experiment.coordinator, where=str(path))
    plan_path = plan.write(root / PLAN_NAME)
    grid = FreshWorkerGrid(client_app(str(plan_path)), len(plan.nodes))
    router = MessageRouter(grid)
    yield path, plan, router, grid
    router.close()
    grid.close()


def test_a_secure_comparison_runs_though_every_message_lands_on_a_fresh_worker(
    engine: tuple[Path, Plan, MessageRouter, FreshWorkerGrid],
) -> None:
    path, plan, router, grid = engine
    experiment = load_experiment(path)
    flower_ids = identify(router, plan, timeout=30)
    assert sorted(flower_ids) == [0, 1, 2] and sorted(flower_ids.values()) == [100, 101, 102]
    heard: list[tuple[int, int]] = []
    comparison = compare_on_grid(
        router,
        experiment,
        plan,
        flower_ids,
        topologies_to_run=["federated", "local-only"],
        on_wait=lambda a, n: heard.append((a, n)),
    )
    assert sorted(set(heard)) == [(0, 3), (1, 3), (2, 3), (3, 3)]  # a bar of the nodes answered, phase by phase
    assert heard.count((3, 3)) == heard.count((0, 3)) > 10  # every fan-out that started was heard to its end
    federated = comparison.by_kind("federated")
    assert federated is not None and federated.secure_aggregation and not federated.failures
    assert [len(r["survivors"]) for r in federated.secure_rounds] == [3, 3]  # type: ignore[arg-type]
    assert len(federated.participants) == 3 and 0.0 < federated.overall("auc") < 1.0
    assert comparison.by_kind("local-only") is not None
    assert min(grid.served.values()) > 15  # every phase of every round, each on a "new worker"
    for node in plan.nodes:  # every virtual node's audit log is a whole signed chain, with a receipt per reply
        state = load_manifest_state(node.manifest)
        checked = verify(state, ca=experiment.pki_dir / "ca.crt", receipts=comparison.run_dir)
        assert checked.problems == () and checked.entries > 15 and checked.receipts > 15, (node.node_id, checked)


def load_manifest_state(manifest: str) -> Path:
    from federation.node.manifest import load_manifest

    return load_manifest(Path(manifest)).state_dir


def test_refusals_and_errors_arrive_as_a_gRPC_node_sends_them(engine: tuple[Path, Plan, MessageRouter, FreshWorkerGrid]) -> None:
    path, plan, router, _ = engine
    experiment = load_experiment(path)
    flower_ids = identify(router, plan, timeout=30)
    node = plan.nodes[0]
    channel = MessageChannel(router, flower_ids[0], node.node_id)
    virtual = NodeClient(node.node_id, "flower", Identity.in_directory(experiment.pki_dir, COORDINATOR), channel=channel)
    task = small_task()
    answer = virtual.propose(RunContext("refused-run", "marketing"), task, cohort_size=3, release="raw")
    assert not answer.accepted and any("marketing" in reason for reason in answer.reasons)
    with pytest.raises(ProtocolOrderError, match="was not proposed"):  # the same error class as over gRPC
        virtual.stats(RunContext("never-proposed", PURPOSE), task)


def test_a_request_that_does_not_parse_is_refused_and_audited(engine: tuple[Path, Plan, MessageRouter, FreshWorkerGrid]) -> None:
    _, plan, router, _ = engine
    flower_ids = identify(router, plan, timeout=30)
    reply = router.call(flower_ids[1], call_content("Describe", [b"\xff\xff not a DescribeRequest"]), timeout=30)
    assert reply.status == "INVALID_ARGUMENT" and "does not parse" in reply.details
    state = load_manifest_state(plan.nodes[1].manifest)
    last = (state / "audit.jsonl").read_text().splitlines()[-1]
    assert '"rpc": "Describe"' in last and '"decision": "error"' in last and "does not parse" in last
    described = router.call(
        flower_ids[1],
        call_content("Describe", [pb.DescribeRequest(context=serde.context_to_pb(RunContext("r", PURPOSE))).SerializeToString()]),
        timeout=30,
    )
    assert described.status == "OK"  # and the node goes on serving


def test_a_state_directory_held_by_a_running_node_is_refused_at_once(
    engine: tuple[Path, Plan, MessageRouter, FreshWorkerGrid],
) -> None:
    _, plan, _, _ = engine
    state = load_manifest_state(plan.nodes[2].manifest)
    held = StateLock.acquire(state)
    try:
        with pytest.raises(ConfigError) as refused:
            check_state_free(plan, "experiment.toml")
        assert plan.nodes[2].node_id in str(refused.value) and "another node process" in str(refused.value)
    finally:
        held.release()
    check_state_free(plan, "experiment.toml")


def test_a_message_that_is_not_a_call_gets_an_error_reply_not_a_crash(
    engine: tuple[Path, Plan, MessageRouter, FreshWorkerGrid],
) -> None:
    _, plan, router, _ = engine
    flower_ids = identify(router, plan, timeout=30)
    from flwr.app import ConfigRecord

    odd = RecordDict({"rpc": ConfigRecord({"method": "Shutdown", "requests": []})})
    reply = router.call(flower_ids[0], odd, timeout=30)
    assert reply.status != "OK" and "not a NodeService method" in reply.details
