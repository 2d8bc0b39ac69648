"""Running a round among in-process clients: for tests and benchmarks, no network.

`drop` names, for each phase, the nodes that vanish at its start; the round
then runs exactly as over gRPC, minus the transport, with real signatures:
every participant gets a throwaway certificate under an in-memory CA.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from federation.secagg.client import SecAggClient
from federation.secagg.config import SecAggConfig
from federation.secagg.server import SecAggServer
from federation.trust.authority import throwaway_cohort

PHASE_NAMES = ("advertise-keys", "share-keys", "masked-update", "confirm-survivors", "unmask")


def local_clients(config: SecAggConfig, *, min_cohort: int = 1) -> dict[int, SecAggClient]:
    """One client per participant, each with its own certificate, all accepting each other."""
    credentials, trust = throwaway_cohort(config.participants)
    return {
        i: SecAggClient(config, i, signer=credentials[name], peers=trust, min_cohort=min_cohort)
        for i, name in enumerate(config.participants)
    }


def run_local_round(
    config: SecAggConfig,
    encoded: Mapping[int, np.ndarray],
    *,
    drop: Mapping[str, set[int]] | None = None,
    clients: Mapping[int, SecAggClient] | None = None,
) -> tuple[np.ndarray, SecAggServer]:
    """The uint32 sum of the surviving inputs; raises RoundAborted below the threshold."""
    drop = drop or {}
    unknown = set(drop) - set(PHASE_NAMES)
    if unknown:
        raise ValueError(f"unknown phases {sorted(unknown)}; expected {PHASE_NAMES}")
    gone: set[int] = set()
    clients = clients if clients is not None else local_clients(config)
    server = SecAggServer(config)

    def alive(phase: str) -> list[int]:
        gone.update(drop.get(phase, set()))
        return [i for i in clients if i not in gone]

    adverts = server.collect_keys({i: clients[i].advertise() for i in alive("advertise-keys")})
    routed = server.route_shares({i: clients[i].share_keys(adverts) for i in alive("share-keys") if i in adverts})
    survivors = server.collect_masked(
        {i: clients[i].masked_input(encoded[i], routed[i]) for i in alive("masked-update") if i in routed}
    )
    signatures = server.collect_confirmations(
        {i: clients[i].confirm(survivors) for i in alive("confirm-survivors") if i in survivors}
    )
    total = server.finish({i: clients[i].unmask(signatures) for i in alive("unmask") if i in signatures})
    return total, server
