"""The Deep SAD objective (methods.md §2.2), per mini-batch, comparable line by line with the spec."""
from __future__ import annotations

import torch

EPS = 1e-6


def deep_sad_loss(z: torch.Tensor, c: torch.Tensor, y: torch.Tensor, eta: float) -> torch.Tensor:
    """Mean over the batch of: ‖z−c‖² for y=0, η(‖z−c‖²+ε)^y for y=±1.

    y=−1 gives η/(‖z−c‖²+ε): labeled anomalies are pushed away from c. The weight decay term of the
    objective is Adam's weight_decay. With y all zero this is the one-class Deep SVDD loss.
    """
    dist = torch.sum((z - c) ** 2, dim=1)
    labeled = eta * (dist + EPS) ** y.float()
    return torch.where(y == 0, dist, labeled).mean()


def center(z: torch.Tensor, eps: float = 0.1) -> torch.Tensor:
    """Mean latent with every coordinate closer than eps to zero pushed to ±eps (methods.md §2.3).

    Deviation: a coordinate exactly 0 goes to +eps (the reference leaves it at 0, which a bias-free
    net can match with zero weights).
    """
    c = z.mean(dim=0)
    small = c.abs() < eps
    return torch.where(small & (c < 0), torch.full_like(c, -eps), torch.where(small, torch.full_like(c, eps), c))
