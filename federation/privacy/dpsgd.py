"""Record-level differential privacy: DP-SGD through Opacus on a node's own records.

Used where a node's policy sets `dp.level = "record"`: every step clips
per-record gradients and adds Gaussian noise (Abadi et al. 2016), with
Poisson sampling at rate batch_size / records, so Opacus' RDP accountant
gives the epsilon of each round's steps.
"""

from __future__ import annotations

import secrets
import warnings

import numpy as np
import torch
from opacus import PrivacyEngine
from torch import nn
from torch.utils.data import DataLoader, TensorDataset


def train_dp_sgd(
    model: nn.Module,
    features: np.ndarray,
    labels: np.ndarray,
    *,
    epochs: int,
    batch_size: int,
    learning_rate: float,
    noise_multiplier: float,
    clip: float,
    objective: str = "binary",
) -> float:
    """Train `model` in place with DP-SGD on the objective's loss (cross-entropy or squared error); returns the mean loss."""
    # Sampling and noise come from fresh entropy, never from the task's seed: a seed the
    # coordinator knows would let it regenerate the noise and subtract it.
    generator = torch.Generator().manual_seed(secrets.randbits(63))
    loader = DataLoader(
        TensorDataset(torch.from_numpy(features), torch.from_numpy(labels)), batch_size=batch_size, generator=generator
    )
    optimiser = torch.optim.Adam(model.parameters(), lr=learning_rate)  # the same optimiser as without DP
    with warnings.catch_warnings():  # "secure RNG turned off": the generators above are seeded from the OS instead
        warnings.simplefilter("ignore", UserWarning)
        engine = PrivacyEngine(accountant="rdp")
        private, optimiser, loader = engine.make_private(
            module=model,
            optimizer=optimiser,
            data_loader=loader,
            noise_multiplier=noise_multiplier,
            max_grad_norm=clip,
            poisson_sampling=True,
            noise_generator=torch.Generator().manual_seed(secrets.randbits(63)),
        )
    loss_fn = nn.MSELoss() if objective == "regression" else nn.BCEWithLogitsLoss()
    private.train()
    total, batches = 0.0, 0
    try:
        for _ in range(epochs):
            for x, y in loader:
                if len(y) == 0:  # Poisson sampling can draw an empty batch
                    continue
                optimiser.zero_grad()
                loss = loss_fn(private(x).squeeze(-1), y)
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", UserWarning)  # full backward hook notice from Opacus' grad sampler
                    loss.backward()
                optimiser.step()
                total, batches = total + float(loss.detach()), batches + 1
    finally:
        private.remove_hooks()  # the model trains again next round, with a fresh engine
    return total / max(batches, 1)
