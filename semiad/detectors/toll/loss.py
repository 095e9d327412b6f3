"""Toll's objective and score (methods.md §6.2): plain L2 norms, NOT squared (pitfall 23)."""
from __future__ import annotations

import torch


def recon_norm(x: torch.Tensor, x_hat: torch.Tensor) -> torch.Tensor:
    """‖x − x̂‖₂ per sample, over every pixel / column."""
    return torch.linalg.vector_norm((x - x_hat).flatten(1), dim=1)


def latent_norm(z: torch.Tensor) -> torch.Tensor:
    """‖z‖₂ per sample."""
    return torch.linalg.vector_norm(z, dim=1)


def toll_loss(x: torch.Tensor, x_hat: torch.Tensor, z: torch.Tensor,
              beta: float) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """L = mean_i ‖x_i − x̂_i‖₂ + β · mean_i ‖z_i‖₂; also both terms (detached) for reports and tests."""
    rec = recon_norm(x, x_hat).mean()
    norm = latent_norm(z).mean()
    return rec + beta * norm, {"rec": rec.detach(), "beta_norm": (beta * norm).detach()}


def toll_score(x: torch.Tensor, x_hat: torch.Tensor, z: torch.Tensor, beta: float) -> torch.Tensor:
    """s(x) = ‖x − x̂‖₂ + β · ‖z‖₂, with the β of training (changing β rescales the score)."""
    return recon_norm(x, x_hat) + beta * latent_norm(z)
