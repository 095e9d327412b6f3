"""ESAD's objective and score (methods.md §5.3–5.4) — PROVISIONAL: assembled from the abstract and a
third-party port because the paper body was unread; validate against §5.6 before trusting it."""
from __future__ import annotations

import torch

EPS = 1e-6


def reconstruction_target(x: torch.Tensor, y: torch.Tensor, noise_std: float,
                          data_range: float = 1.0, generator: torch.Generator | None = None) -> torch.Tensor:
    """t_i = x_i for y ∈ {0, +1}; t_i = x_i + N(0, noise_std²)·data_range for labeled anomalies (y = −1).
    The noise comes from `generator` (a CPU generator; None: torch's global one).

    The noise target is ours (the port's perturbation defaults to identity): anomalies are trained to
    reconstruct an uninformative target, lowering I(X;Z), without an unbounded "maximize error" term.
    """
    anomalous = (y == -1).view(-1, *([1] * (x.ndim - 1)))
    noise = torch.randn(x.shape, generator=generator, dtype=x.dtype).to(x.device)
    return torch.where(anomalous, x + noise_std * data_range * noise, x)


def reconstruction_loss(x_hat: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """L_rec = mean_i ‖x̂_i − t_i‖² (squared errors summed over pixels, as in the port)."""
    return torch.sum((x_hat - target).flatten(1) ** 2, dim=1).mean()


def entropy_loss(z2: torch.Tensor, y: torch.Tensor, eps: float = EPS) -> torch.Tensor:
    """L_ent = mean_i g_i, g_i = ‖z₂,i‖ for y ∈ {0, +1} and 1/(‖z₂,i‖ + ε) for y = −1 (latent-norm proxy of H(Z))."""
    norm = torch.linalg.vector_norm(z2, dim=1)
    return torch.where(y == -1, 1.0 / (norm + eps), norm).mean()


def consistency_loss(z1: torch.Tensor, z2: torch.Tensor) -> torch.Tensor:
    """L_cons = mean (z₁ − z₂)², element-wise."""
    return torch.mean((z1 - z2) ** 2)


def esad_loss(x_hat: torch.Tensor, target: torch.Tensor, z1: torch.Tensor, z2: torch.Tensor, y: torch.Tensor,
              lambda_ent: float = 1.0, lambda_cons: float = 1.0,
              eps: float = EPS) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """L = L_rec + λ₁·L_ent + λ₂·L_cons; also the three terms (detached)."""
    rec = reconstruction_loss(x_hat, target)
    ent = entropy_loss(z2, y, eps)
    cons = consistency_loss(z1, z2)
    total = rec + lambda_ent * ent + lambda_cons * cons
    return total, {"rec": rec.detach(), "ent": ent.detach(), "cons": cons.detach()}


def anomaly_score(x: torch.Tensor, x_hat: torch.Tensor, z2: torch.Tensor) -> torch.Tensor:
    """s(x) = mean over pixels (x̂ − x)² + ‖z₂‖ (the port's score; note: a mean here, a sum in L_rec)."""
    return torch.mean((x_hat - x).flatten(1) ** 2, dim=1) + torch.linalg.vector_norm(z2, dim=1)
