"""Global model checkpoints: one .npz per round, named arrays in model order."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from federation.models.training import NamedArrays


def save_checkpoint(directory: Path, round_: int, arrays: NamedArrays) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"round-{round_:04d}.npz"
    named: dict[str, Any] = {f"{i:03d}:{name}": a for i, (name, a) in enumerate(arrays)}
    np.savez(path, **named)
    return path


def load_checkpoint(path: Path) -> NamedArrays:
    with np.load(path) as data:
        return [(key.split(":", 1)[1], data[key]) for key in sorted(data.files)]
