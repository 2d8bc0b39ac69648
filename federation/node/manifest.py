"""The node manifest: where a department's data is, how it maps, which policy holds.

Relative paths are resolved against the manifest's own folder, so a node's
files can be moved together.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

from pydantic import Field

from federation.config import StrictModel, load_toml

NODE_ID = r"^[a-z0-9][a-z0-9._-]{0,62}$"


class NodeSection(StrictModel):
    id: str = Field(pattern=NODE_ID)
    kind: Literal["department", "firm"] = "department"
    description: str = ""


class DataSection(StrictModel):
    path: Path
    schema_path: Path = Field(alias="schema")
    format: Literal["csv", "parquet"] | None = None
    columns: dict[str, str]


class SplitSection(StrictModel):
    test_fraction: float = Field(default=0.3, gt=0, lt=1)
    seed: int = 0


class PathSection(StrictModel):
    path: Path


class DirSection(StrictModel):
    dir: Path


class ManifestFile(StrictModel):
    node: NodeSection
    data: DataSection
    split: SplitSection = SplitSection()
    policy: PathSection
    tls: DirSection
    state: DirSection | None = None


class Manifest:
    """A validated manifest with every path made absolute."""

    def __init__(self, path: Path, parsed: ManifestFile) -> None:
        base = path.resolve().parent
        self.path = path
        self.node_id = parsed.node.id
        self.kind = parsed.node.kind
        self.description = parsed.node.description
        self.data_path = base / parsed.data.path
        self.data_format = parsed.data.format
        self.schema_path = base / parsed.data.schema_path
        self.columns = dict(parsed.data.columns)
        self.test_fraction = parsed.split.test_fraction
        self.split_seed = parsed.split.seed
        self.policy_path = base / parsed.policy.path
        self.tls_dir = base / parsed.tls.dir
        state = parsed.state.dir if parsed.state else Path(f"../.federation/state/{self.node_id}")
        self.state_dir = base / state


def load_manifest(path: Path) -> Manifest:
    return Manifest(path, load_toml(path, ManifestFile))


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9-]+", "-", text.lower()).strip("-")
