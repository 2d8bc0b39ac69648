"""Everything a running node holds: manifest, schema, harmonised splits, policy.

Loaded once at start-up so that a broken manifest, data file or policy fails
before the node accepts a single call, with every problem named.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from federation.data.mapping import harmonise, read_naively
from federation.data.partition import redrawn_test_rows, split_by_rows, test_rows
from federation.data.quality import QualityReport
from federation.data.schema import Schema, load_schema
from federation.data.sources import read_table
from federation.errors import ConfigError
from federation.node.keys import FirmKeys, prepare_rows
from federation.node.manifest import Manifest, load_manifest
from federation.policy.model import Policy, load_policy

log = logging.getLogger(__name__)
MAX_CACHED_DRAWS = 8  # re-drawn splits kept in memory (a seeds run uses one per seed)


@dataclass
class NodeRuntime:
    manifest: Manifest
    schema: Schema
    policy: Policy
    train: pd.DataFrame
    test: pd.DataFrame
    quality: QualityReport
    naive_train: pd.DataFrame
    naive_test: pd.DataFrame
    firm_keys: FirmKeys | None = None  # the prepared firm key of each data-file row, when the manifest has [keys]
    clock: Callable[[], dt.date] = field(default=dt.date.today)  # read at every decision, so expiry applies at once
    _draws: dict[tuple[str, int], tuple[pd.DataFrame, pd.DataFrame]] = field(default_factory=dict, repr=False)
    _draws_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def today(self) -> dt.date:
        return self.clock()

    @property
    def node_id(self) -> str:
        return self.manifest.node_id

    @classmethod
    def load(cls, manifest_path: Path, *, policy_path: Path | None = None, state_dir: Path | None = None) -> NodeRuntime:
        """Load a node; `policy_path` replaces the manifest's policy (e.g. a preset), `state_dir` its state."""
        manifest = load_manifest(manifest_path)
        if policy_path is not None:
            manifest.policy_path = policy_path.resolve()
        if state_dir is not None:
            manifest.state_dir = state_dir.resolve()
        schema = load_schema(manifest.schema_path)
        policy = load_policy(manifest.policy_path, target=schema.target, party=manifest.node_id)
        if policy.party != manifest.node_id:
            raise ConfigError(
                str(manifest.policy_path),
                [f"party: the policy is for {policy.party!r} but the manifest's node is {manifest.node_id!r}"],
            )
        table = read_table(manifest.data_path, fmt=manifest.data_format, query=manifest.query)
        harmonised = harmonise(table, schema, manifest.mapping, source=str(manifest.path))
        held_out = test_rows(len(table), test_fraction=manifest.test_fraction, seed=manifest.split_seed)
        train, test = split_by_rows(harmonised.frame, held_out)
        naive_train, naive_test = split_by_rows(read_naively(table, schema), held_out)
        log.info(
            "%s: %d training and %d test records; %s",
            manifest.node_id,
            len(train),
            len(test),
            "; ".join(harmonised.report.lines()),
        )
        if len(train) == 0 or len(test) == 0:
            raise ConfigError(str(manifest.path), ["no records left for training or testing after the quality rules"])
        keys = prepare_rows(table, manifest.keys, where=str(manifest.path)) if manifest.keys is not None else None
        if keys is not None:
            log.info("%s: %s", manifest.node_id, "; ".join(keys.report.lines()))
        return cls(manifest, schema, policy, train, test, harmonised.report, naive_train, naive_test, keys)

    def split_for(self, view: str, draw: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
        """(train, test) as harmonised, or as a platform reading the file naively would see it.

        `draw` 0 is the node's own split (its manifest's seed); draw n >= 1 is
        another split of the same harmonised records with the same test
        fraction (stratified by a binary target), seeded by the manifest's seed
        and n, so a comparison repeated over seeds can average over test rows
        too; both views hold out the same records. The seed never leaves the node,
        so a caller cannot tell which rows a draw holds out.
        """
        own = (self.naive_train, self.naive_test) if view == "naive" else (self.train, self.test)
        if draw == 0:
            return own
        with self._draws_lock:
            cached = self._draws.get((view, draw))
            if cached is None:
                records = pd.concat((self.train, self.test), ignore_index=True)  # the same records for both views
                label = self.schema.target
                target = records[label] if label is not None and label in records else None
                binary = target is not None and label is not None and self.schema.by_name(label).type == "bool"
                held = redrawn_test_rows(
                    records["__row"].to_numpy(),
                    target.to_numpy(dtype=np.float64) if binary and target is not None else None,
                    test_fraction=self.manifest.test_fraction,
                    seed=[self.manifest.split_seed, draw],
                )
                cached = split_by_rows(pd.concat(own, ignore_index=True), held)
                if len(self._draws) >= MAX_CACHED_DRAWS:
                    self._draws.pop(next(iter(self._draws)))
                self._draws[(view, draw)] = cached
            return cached
