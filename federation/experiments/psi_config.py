"""A PSI experiment file: the parties, the receiver and who may learn what, before any vertical training.

    kind = "psi"
    [psi]
    receiver = "ecology-bureau"            # learns which firms every party holds
    membership = ["water-bureau"]          # also told which of their firms are shared
    count = ["commerce-bureau"]            # told only how many ("coordinator" for the platform)

Every party not named learns nothing of the intersection; the receiver is
always told. Nodes are listed as in a comparison (`[[node]]` with a
manifest or an address).
"""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator

from federation.config import StrictModel, load_toml
from federation.errors import ConfigError, InvalidRequest
from federation.experiments.config import NodeEntry, check_unique_nodes
from federation.psi.plan import Disclosure
from federation.psi.session import Terms


class PsiSection(StrictModel):
    receiver: str
    membership: tuple[str, ...] = ()
    count: tuple[str, ...] = ()
    rule: Literal["uscc-gb32100-2015/v1"] = "uscc-gb32100-2015/v1"


class PsiExperimentFile(StrictModel):
    kind: Literal["psi"]
    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]*$")
    purpose: str
    coordinator: str
    pki: Path
    output: Path
    timeout: float = Field(default=300.0, gt=0)
    psi: PsiSection
    node: tuple[NodeEntry, ...] = Field(min_length=2)

    @model_validator(mode="after")
    def _unique_nodes(self) -> PsiExperimentFile:
        check_unique_nodes(self.node)
        return self


class PsiExperiment:
    def __init__(self, path: Path, parsed: PsiExperimentFile) -> None:
        base = path.resolve().parent
        self.path = path
        self.name, self.purpose, self.coordinator = parsed.name, parsed.purpose, parsed.coordinator
        self.pki_dir = (base / parsed.pki).resolve()
        self.output_dir = (base / parsed.output).resolve()
        self.timeout = parsed.timeout
        self.psi = parsed.psi
        self.nodes = [(n.id, n.address, (base / n.manifest).resolve() if n.manifest else None) for n in parsed.node]
        self.terms("check")  # every inconsistency of the file is found at load

    def terms(self, run_id: str) -> Terms:
        membership = tuple(dict.fromkeys((self.psi.receiver, *self.psi.membership)))
        try:
            return Terms(
                run_id,
                tuple(n for n, _, _ in self.nodes),
                self.psi.receiver,
                self.psi.rule,
                Disclosure(membership, self.psi.count),
                purpose=self.purpose,
            )
        except InvalidRequest as error:
            raise ConfigError(str(self.path), [f"psi: {error.public}"]) from None

    def new_terms(self) -> Terms:
        """Terms under a fresh run id: nodes accept a run id once."""
        return self.terms(f"{self.name}-psi-{secrets.token_hex(6)}")


def load_psi_experiment(path: Path) -> PsiExperiment:
    return PsiExperiment(path, load_toml(path, PsiExperimentFile))
