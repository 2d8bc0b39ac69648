"""The node manifest: where a department's data is, how it maps, which policy holds.

Relative paths are resolved against the manifest's own folder, so a node's
files can be moved together. A column mapping is either a local column name
or a table with the column, its unit, code list, date format and extra
missing-value markers; `[[data.versions]]` override mappings for records
dated in a period, for a local standard that changed.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator

from federation.config import StrictModel, load_toml
from federation.data.mapping import ColumnMapping, MappingVersion, TableMapping
from federation.node.keys import Crosswalk, KeySource

NODE_ID = r"^[a-z0-9][a-z0-9._-]{0,62}$"


class NodeSection(StrictModel):
    id: str = Field(pattern=NODE_ID)
    kind: Literal["department", "firm"] = "department"
    description: str = ""


class ColumnSpec(StrictModel):
    column: str
    unit: str | None = None
    codes: dict[str, str] = Field(default_factory=dict)
    format: str | None = None
    missing: tuple[str, ...] = ()

    def mapping(self) -> ColumnMapping:
        return ColumnMapping(self.column, self.unit, dict(self.codes), self.format, self.missing)


def _mapping(spec: str | ColumnSpec) -> ColumnMapping:
    return ColumnMapping(spec) if isinstance(spec, str) else spec.mapping()


class VersionSection(StrictModel):
    start: dt.date | None = Field(default=None, alias="from")
    until: dt.date | None = None
    columns: dict[str, str | ColumnSpec]

    @model_validator(mode="after")
    def _period(self) -> VersionSection:
        if self.start is None and self.until is None:
            raise ValueError("a mapping version needs `from`, `until` or both")
        if self.start is not None and self.until is not None and self.start > self.until:
            raise ValueError(f"`from` {self.start} is after `until` {self.until}")
        return self


class DataSection(StrictModel):
    path: Path
    schema_path: Path = Field(alias="schema")
    format: Literal["csv", "parquet", "sqlite"] | None = None
    query: str | None = None
    missing: tuple[str, ...] = ("",)
    date_field: str | None = None
    columns: dict[str, str | ColumnSpec]
    versions: tuple[VersionSection, ...] = ()


class SplitSection(StrictModel):
    test_fraction: float = Field(default=0.3, gt=0, lt=1)
    seed: int = 0


class QualitySection(StrictModel):
    unique: tuple[str, ...] = ()
    on_error: Literal["exclude", "fail"] = "exclude"


class PathSection(StrictModel):
    path: Path


class DirSection(StrictModel):
    dir: Path


class PeersSection(StrictModel):
    """Whom this node accepts as a fellow party in secure aggregation (see `federation.trust`)."""

    accept: Literal["pinned", "ca"] = "ca"
    pins: Path | None = None

    @model_validator(mode="after")
    def _pins_when_pinned(self) -> PeersSection:
        if self.accept == "pinned" and self.pins is None:
            raise ValueError('accept = "pinned" needs `pins`, the file of accepted certificate fingerprints')
        return self


class CrosswalkSection(StrictModel):
    path: Path
    source: str = Field(alias="from", description="the column of the local number")
    target: str = Field(alias="to", description="the column of the unified social credit code")


class KeysSection(StrictModel):
    """The firm key for private set intersection: a local column, normalised under a versioned rule."""

    column: str
    rule: Literal["uscc-gb32100-2015/v1"] = "uscc-gb32100-2015/v1"
    crosswalk: CrosswalkSection | None = None


class ManifestFile(StrictModel):
    node: NodeSection
    data: DataSection
    quality: QualitySection = QualitySection()
    split: SplitSection = SplitSection()
    policy: PathSection
    tls: DirSection
    peers: PeersSection = PeersSection()
    state: DirSection | None = None
    keys: KeysSection | None = None


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
        self.query = parsed.data.query
        self.schema_path = base / parsed.data.schema_path
        self.mapping = TableMapping(
            columns={name: _mapping(spec) for name, spec in parsed.data.columns.items()},
            missing=parsed.data.missing,
            versions=tuple(
                MappingVersion(v.start, v.until, {name: _mapping(spec) for name, spec in v.columns.items()})
                for v in parsed.data.versions
            ),
            date_field=parsed.data.date_field,
            unique=parsed.quality.unique,
            on_error=parsed.quality.on_error,
        )
        self.test_fraction = parsed.split.test_fraction
        self.split_seed = parsed.split.seed
        self.policy_path = base / parsed.policy.path
        self.tls_dir = base / parsed.tls.dir
        self.peer_accept = parsed.peers.accept
        self.pins_path = base / parsed.peers.pins if parsed.peers.accept == "pinned" and parsed.peers.pins else None
        state = parsed.state.dir if parsed.state else Path(f"../.federation/state/{self.node_id}")
        self.state_dir = base / state
        self.keys = None
        if parsed.keys is not None:
            walk = parsed.keys.crosswalk
            crosswalk = Crosswalk(base / walk.path, walk.source, walk.target) if walk is not None else None
            self.keys = KeySource(parsed.keys.column, parsed.keys.rule, crosswalk)


def load_manifest(path: Path) -> Manifest:
    return Manifest(path, load_toml(path, ManifestFile))
