"""Local training and evaluation of a registered model on encoded arrays.

Shared by nodes (federated and local-only) and by the central pool, so every
topology trains with the same loop, optimiser and seeds.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from federation.errors import InvalidRequest
from federation.models.evaluation import EvalSums

if TYPE_CHECKING:  # torch is imported when a model trains, not when a node starts (200 MB, a second)
    from torch import nn

NamedArrays = list[tuple[str, np.ndarray]]


def get_arrays(model: nn.Module) -> NamedArrays:
    """The model's parameters as named float32 numpy arrays."""
    return [(name, t.detach().cpu().numpy().astype(np.float32, copy=True)) for name, t in model.state_dict().items()]


def set_arrays(model: nn.Module, arrays: NamedArrays) -> None:
    """Load named arrays, refusing names or shapes the model does not have."""
    state = model.state_dict()
    names = [n for n, _ in arrays]
    if names != list(state):
        raise InvalidRequest(f"model parameters {names} do not match the model's {list(state)}")
    for name, array in arrays:
        if tuple(array.shape) != tuple(state[name].shape):
            raise InvalidRequest(f"parameter {name!r} has shape {tuple(array.shape)}, the model needs {tuple(state[name].shape)}")
        if not np.all(np.isfinite(array)):
            raise InvalidRequest(f"parameter {name!r} contains NaN or infinite values")
    import torch

    model.load_state_dict({n: torch.from_numpy(np.asarray(a, dtype=np.float32)) for n, a in arrays})


def flatten(arrays: NamedArrays) -> np.ndarray:
    """All parameters as one float64 vector, in model order."""
    if not arrays:
        return np.zeros(0)
    return np.concatenate([np.asarray(a, dtype=np.float64).reshape(-1) for _, a in arrays])


def unflatten(vector: np.ndarray, like: NamedArrays) -> NamedArrays:
    """Split a flat vector back into arrays shaped like `like` (float32)."""
    sizes = [a.size for _, a in like]
    if vector.shape != (sum(sizes),):
        raise InvalidRequest(f"a vector of {vector.size} values cannot fill parameters of {sum(sizes)} values")
    result, offset = [], 0
    for (name, a), size in zip(like, sizes, strict=True):
        result.append((name, vector[offset : offset + size].reshape(a.shape).astype(np.float32)))
        offset += size
    return result


def train(
    model: nn.Module,
    features: np.ndarray,
    labels: np.ndarray,
    *,
    epochs: int,
    batch_size: int,
    learning_rate: float,
    seed: int,
    proximal_mu: float = 0.0,
    objective: str = "binary",
    weight_decay: float = 0.0,
) -> float:
    """Train in place with Adam (AdamW with `weight_decay`) on the objective's loss; returns the mean loss.

    Binary: cross-entropy on one logit; regression: squared error. With
    `proximal_mu > 0` the FedProx term (mu/2)*||w - w_global||^2 keeps the
    local model near the global one it started from.
    """
    if len(labels) == 0:
        raise InvalidRequest("no training records")
    import torch

    x = torch.from_numpy(features)
    y = torch.from_numpy(labels)
    generator = torch.Generator().manual_seed(seed)
    optimiser: torch.optim.Optimizer = (
        torch.optim.AdamW(model.parameters(), lr=learning_rate, weight_decay=weight_decay)
        if weight_decay > 0
        else torch.optim.Adam(model.parameters(), lr=learning_rate)
    )
    loss_fn = loss_function(objective)
    anchor = [p.detach().clone() for p in model.parameters()] if proximal_mu > 0 else []
    model.train()
    total, batches = 0.0, 0
    for _ in range(epochs):
        order = torch.randperm(len(y), generator=generator)
        for start in range(0, len(y), batch_size):
            index = order[start : start + batch_size]
            optimiser.zero_grad()
            loss = loss_fn(model(x[index]).squeeze(-1), y[index])
            if anchor:
                loss = loss + proximal_mu / 2 * sum(((p - a) ** 2).sum() for p, a in zip(model.parameters(), anchor, strict=True))
            loss.backward()
            optimiser.step()
            total += float(loss.detach())
            batches += 1
    return total / max(batches, 1)


def loss_function(objective: str) -> nn.Module:
    from torch import nn

    if objective == "binary":
        return nn.BCEWithLogitsLoss()
    if objective == "regression":
        return nn.MSELoss()
    raise InvalidRequest(f"unknown objective {objective!r}; expected binary or regression")


def evaluate(
    model: nn.Module,
    features: np.ndarray,
    labels: np.ndarray,
    *,
    objective: str = "binary",
    target_scale: tuple[float, float] | None = None,
) -> EvalSums:
    """Evaluate into additive sums (see `models.evaluation`); a standardised regression target in its own unit."""
    import torch
    from torch import nn

    model.eval()
    with torch.no_grad():
        outputs = model(torch.from_numpy(features)).squeeze(-1)
        if objective == "regression":
            mean, std = target_scale or (0.0, 1.0)
            predictions = outputs.numpy().astype(np.float64) * std + mean
            return EvalSums.from_errors(predictions, np.asarray(labels, dtype=np.float64) * std + mean)
        y = torch.from_numpy(labels)
        losses = nn.functional.binary_cross_entropy_with_logits(outputs, y, reduction="none")
        return EvalSums.from_scores(torch.sigmoid(outputs).numpy(), labels, losses.numpy())
