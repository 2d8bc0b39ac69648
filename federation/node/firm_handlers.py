"""The handlers of the calls that work on firm keys (PSI, vertical training and its central pool), over one node's runtime."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

import pandas as pd

from federation.errors import PolicyDenied
from federation.node.audit import AuditLog
from federation.node.keyed_export import KeyedExport
from federation.node.keys import FirmKeys
from federation.node.psi_handlers import PsiHandlers
from federation.node.runtime import NodeRuntime
from federation.node.vertical_handlers import VerticalHandlers
from federation.policy.model import Policy
from federation.trust.certificates import Credentials, PeerTrust


def firm_handlers(
    runtime: NodeRuntime, audit: AuditLog, credentials: Credentials | None, peers: PeerTrust | None
) -> tuple[PsiHandlers, VerticalHandlers, KeyedExport]:
    """PSI, vertical and keyed-export handlers that read the runtime's keys, records and policy at each call."""

    def keys() -> FirmKeys:
        if runtime.firm_keys is None:
            raise PolicyDenied(["this node's manifest names no firm key ([keys]), so it takes part in no PSI or vertical run"])
        return runtime.firm_keys

    def records() -> tuple[pd.DataFrame, Sequence[str | None], str]:
        return pd.concat([runtime.train, runtime.test], ignore_index=True), keys().by_row, str(runtime.manifest.data_path)

    def policy() -> Policy:
        return runtime.policy

    def today() -> dt.date:
        return runtime.today

    state_dir = runtime.manifest.state_dir
    psi = PsiHandlers(
        runtime.node_id, keys=keys, policy=policy, today=today, audit=audit, state_dir=state_dir, signer=credentials, peers=peers
    )
    vertical = VerticalHandlers(
        runtime.node_id,
        records=records,
        policy=policy,
        today=today,
        audit=audit,
        state_dir=state_dir,
        signer=credentials,
        peers=peers,
    )
    return psi, vertical, KeyedExport(runtime.node_id, records=records, policy=policy, today=today, audit=audit)
