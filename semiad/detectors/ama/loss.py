"""AMA's objectives and score (methods.md §4.4–4.5), one function per term, comparable with the spec."""
from __future__ import annotations

import torch


def pair(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Two inputs stacked on the channel (or feature) axis, the critic's input."""
    return torch.cat([a, b], dim=1)


def sample_weights(y: torch.Tensor, anom_lambda: float) -> torch.Tensor:
    """l_i = +1 for y ∈ {0, +1}, −λ_a for labeled anomalies (y = −1): their critic and AE terms flip sign."""
    return 1.0 - (1.0 + anom_lambda) * (y == -1).float()


def interpolate(x: torch.Tensor, x_hat: torch.Tensor, alpha: torch.Tensor) -> torch.Tensor:
    """x̃ = α x + (1 − α) x̂, α per sample."""
    return alpha * x + (1 - alpha) * x_hat


def gradient_penalty(grad: torch.Tensor) -> torch.Tensor:
    """GP = mean((‖∇D‖ − 1)²) with the norm taken over the channel axis only (dim=1), i.e. per pixel,
    as in the official code (pitfall 18) — not over the flattened input. For tables dim=1 is the
    feature axis, so the norm is per sample."""
    return torch.mean((torch.linalg.vector_norm(grad, dim=1) - 1) ** 2)


def critic_loss(d_real: torch.Tensor, d_fake: torch.Tensor, l: torch.Tensor, gp: torch.Tensor,
                lambda_gp: float = 10.0) -> torch.Tensor:
    """L_D = mean_i[ −l_i·D(x_i, x_i) + l_i·D(x_i, x̂_i) ] + λ_gp·GP (x̂ detached)."""
    return torch.mean(-l * d_real + l * d_fake) + lambda_gp * gp


def ae_loss(d_fake: torch.Tensor, l: torch.Tensor, z: torch.Tensor, lambda_reg: float = 1.0) -> torch.Tensor:
    """L_AE = −mean_i[ l_i·D(x_i, x̂_i) ] + λ_reg·mean_{i: l_i = +1} ‖E(x_i)‖₂ (0 if no such sample)."""
    normal = l > 0
    reg = torch.linalg.vector_norm(z[normal], dim=1).mean() if bool(normal.any()) else z.sum() * 0
    return -torch.mean(l * d_fake) + lambda_reg * reg


def feature_distance(f_mirror: torch.Tensor, f_recon: torch.Tensor) -> torch.Tensor:
    """d(x) = ‖φ_D(x, x) − φ_D(x, x̂)‖₁ per sample."""
    return torch.sum(torch.abs(f_mirror - f_recon), dim=1)


def deviation_score(d: torch.Tensor, mu: float, sigma: float) -> torch.Tensor:
    """|d − μ| / σ: two-sided, so unusually small distances are anomalous too (pitfall 17)."""
    return torch.abs(d - mu) / sigma
