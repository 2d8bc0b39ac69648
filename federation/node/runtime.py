"""Everything a running node holds: manifest, schema, harmonised splits, policy.

Loaded once at start-up so that a broken manifest, data file or policy fails
before the node accepts a single call, with every problem named.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from federation.data.mapping import harmonise
from federation.data.partition import split
from federation.data.schema import Schema, load_schema
from federation.data.sources import read_table
from federation.node.manifest import Manifest, load_manifest
from federation.policy.model import Policy, load_policy

log = logging.getLogger(__name__)


@dataclass
class NodeRuntime:
    manifest: Manifest
    schema: Schema
    policy: Policy
    train: pd.DataFrame
    test: pd.DataFrame
    today: dt.date = field(default_factory=dt.date.today)

    @property
    def node_id(self) -> str:
        return self.manifest.node_id

    @classmethod
    def load(cls, manifest_path: Path, *, policy_path: Path | None = None) -> NodeRuntime:
        """Load a node; `policy_path` replaces the manifest's policy (e.g. a preset)."""
        manifest = load_manifest(manifest_path)
        if policy_path is not None:
            manifest.policy_path = policy_path.resolve()
        schema = load_schema(manifest.schema_path)
        policy = load_policy(manifest.policy_path, target=schema.target, party=manifest.node_id)
        if policy.party != manifest.node_id:
            from federation.errors import ConfigError

            raise ConfigError(
                str(manifest.policy_path),
                [f"party: the policy is for {policy.party!r} but the manifest's node is {manifest.node_id!r}"],
            )
        frame = harmonise(
            read_table(manifest.data_path, fmt=manifest.data_format), schema, manifest.columns, source=str(manifest.path)
        )
        unlabelled = int(frame[schema.target].isna().sum())
        if unlabelled:  # a record without a label can neither train nor test a model
            log.warning("%s: %d record(s) without %r excluded", manifest.node_id, unlabelled, schema.target)
            frame = frame[frame[schema.target].notna()].reset_index(drop=True)
        train, test = split(frame, test_fraction=manifest.test_fraction, seed=manifest.split_seed)
        log.info("%s: %d training and %d test records", manifest.node_id, len(train), len(test))
        return cls(manifest, schema, policy, train, test)
