"""A node starts light: serving imports neither torch, Opacus, Flower nor matplotlib until a task needs them.

torch and Opacus cost about 320 MB and several seconds per process; a node
that only answers PSI, vertical runs, statistics or policy questions never
needs them, and a node that trains imports torch at its first round.
"""

from __future__ import annotations

import subprocess
import sys

HEAVY = ("torch", "opacus", "flwr", "matplotlib")


def loaded_after(statement: str) -> list[str]:
    probe = f"import sys; {statement}; print(' '.join(m for m in {HEAVY!r} if m in sys.modules))"
    return subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout.split()


def test_the_serving_code_and_the_cli_import_none_of_the_heavy_libraries() -> None:
    assert loaded_after("import federation.node.serve") == []
    assert loaded_after("import federation.cli") == []


def test_policy_decisions_without_differential_privacy_never_import_opacus() -> None:
    statement = (
        "from federation.policy.model import Policy; from federation.policy.evaluate import Request, decide; import datetime; "
        "p = Policy.model_validate({'party': 'x', 'default': 'deny', 'rule': [{'name': 'r', 'recipients': ['c'], "
        "'purposes': ['p'], 'release': 'masked-update'}]}); "
        "assert decide(p, Request('c', 'p', 'masked-update'), today=datetime.date(2026, 1, 1)).allowed"
    )
    assert loaded_after(statement) == []


def test_building_a_model_imports_torch_then() -> None:
    statement = "from federation.models.registry import build_model; from federation.task import ModelSpec; build_model(ModelSpec('logreg', {}), 3, seed=0)"
    assert loaded_after(statement) == ["torch"]
