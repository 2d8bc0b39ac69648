"""Running a round among in-process clients: for tests and benchmarks, no network.

`drop` names, for each phase, the nodes that vanish at its start; the round
then runs exactly as over gRPC, minus the transport.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from federation.secagg.client import SecAggClient
from federation.secagg.config import SecAggConfig
from federation.secagg.server import SecAggServer

PHASE_NAMES = ("advertise-keys", "share-keys", "masked-update", "unmask")


def run_local_round(
    config: SecAggConfig, encoded: Mapping[int, np.ndarray], *, drop: Mapping[str, set[int]] | None = None
) -> tuple[np.ndarray, SecAggServer]:
    """The uint32 sum of the surviving inputs; raises RoundAborted below the threshold."""
    drop = drop or {}
    unknown = set(drop) - set(PHASE_NAMES)
    if unknown:
        raise ValueError(f"unknown phases {sorted(unknown)}; expected {PHASE_NAMES}")
    gone: set[int] = set()
    clients = {i: SecAggClient(config, i) for i in range(len(config.participants))}
    server = SecAggServer(config)

    def alive(phase: str) -> list[int]:
        gone.update(drop.get(phase, set()))
        return [i for i in clients if i not in gone]

    peer_keys = server.collect_keys({i: clients[i].advertise() for i in alive("advertise-keys")})
    routed = server.route_shares({i: clients[i].share_keys(peer_keys[i]) for i in alive("share-keys") if i in peer_keys})
    requests = server.collect_masked(
        {i: clients[i].masked_input(encoded[i], routed[i]) for i in alive("masked-update") if i in routed}
    )
    total = server.finish({i: clients[i].unmask(*requests[i]) for i in alive("unmask") if i in requests})
    return total, server
