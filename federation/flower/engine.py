"""Our coordinator on a Flower grid: find the virtual nodes, give `compare` clients over them.

Whatever engine delivers the messages (the Simulation Engine, or a SuperLink
under `flwr run`), the coordinator's code is the one `federation compare`
runs on gRPC nodes: the same negotiation, secure aggregation, evaluation,
refusals, results and report.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from federation.coordinator.client import NodeClient
from federation.coordinator.waiting import Reporter
from federation.errors import ConfigError, NodeUnavailable
from federation.experiments.compare import Comparison, ProgressFactory, compare
from federation.experiments.config import Experiment
from federation.flower.channel import MessageChannel, MessageRouter, whoami
from federation.flower.plan import Plan
from federation.transport.receipts import ReceiptBook
from federation.transport.tls import Identity

IDENTIFY_WORKERS = 64


def identify(router: MessageRouter, plan: Plan, *, timeout: float) -> dict[int, int]:
    """Plan index -> Flower node id of every virtual node, once all of them have joined (or NodeUnavailable)."""
    deadline = time.monotonic() + timeout
    while len(router.node_ids()) < len(plan.nodes):
        if time.monotonic() > deadline:
            raise NodeUnavailable(
                f"only {len(router.node_ids())} of {len(plan.nodes)} Flower nodes joined within {timeout:.0f} s"
            )
        time.sleep(0.05)
    flower_ids = router.node_ids()
    with ThreadPoolExecutor(max_workers=min(IDENTIFY_WORKERS, len(flower_ids))) as pool:
        replies = list(pool.map(lambda node: whoami(router, node, timeout=timeout), flower_ids))
    found: dict[int, int] = {}
    problems = []
    for flower_id, reply in zip(flower_ids, replies, strict=True):
        if reply.status != "OK" or len(reply.replies) != 2:
            problems.append(f"Flower node {flower_id}: {reply.details or 'no answer'}")
            continue
        index, name = int(reply.replies[0]), reply.replies[1].decode()
        if not 0 <= index < len(plan.nodes) or plan.nodes[index].node_id != name:  # a SuperNode's own plan: by name
            index = next((i for i, n in enumerate(plan.nodes) if n.node_id == name), -1)
        if index < 0:
            problems.append(f"Flower node {flower_id} serves {name!r}, which the experiment does not list")
            continue
        if index in found:
            problems.append(f"Flower nodes {found[index]} and {flower_id} both serve {reply.replies[1].decode()!r}")
        found[index] = flower_id
    if problems:
        raise ConfigError("Flower nodes", problems)
    return found


def clients_over(
    router: MessageRouter,
    plan: Plan,
    flower_ids: dict[int, int],
    indices: Sequence[int],
    identity: Identity,
    *,
    timeout: float,
    run_dir: Path | None,
) -> list[NodeClient]:
    """Clients of the plan's nodes at `indices`, in that order; their receipts kept in `run_dir`."""
    book = ReceiptBook(run_dir) if run_dir is not None else None
    clients = []
    for index in indices:
        node_id = plan.nodes[index].node_id
        channel = MessageChannel(router, flower_ids[index], node_id, receipts=book)
        clients.append(NodeClient(node_id, f"flower node {flower_ids[index]}", identity, timeout=timeout, channel=channel))
    return clients


def compare_on_grid(
    router: MessageRouter,
    experiment: Experiment,
    plan: Plan,
    flower_ids: dict[int, int],
    *,
    indices: Sequence[int] | None = None,
    topologies_to_run: Sequence[str] | None = None,
    progress: ProgressFactory | None = None,
    output_dir: Path | None = None,
    run_dir: Path | None = None,
    on_wait: Reporter | None = None,
) -> Comparison:
    """`compare` over the plan's virtual nodes (those at `indices`, default all)."""
    chosen = list(indices) if indices is not None else list(range(len(plan.nodes)))
    identity = Identity.in_directory(experiment.pki_dir, experiment.coordinator)

    def connector(experiment: Experiment, run_dir: Path) -> list[NodeClient]:
        return clients_over(router, plan, flower_ids, chosen, identity, timeout=experiment.timeout, run_dir=run_dir)

    return compare(
        experiment,
        {},
        topologies_to_run=topologies_to_run,
        progress=progress,
        output_dir=output_dir,
        run_dir=run_dir,
        connector=connector,
        on_wait=on_wait,
    )
