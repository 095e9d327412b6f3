"""GANomaly objective per mini-batch (methods.md §3.3), one function per term, comparable line by line."""
from __future__ import annotations

import torch
import torch.nn.functional as F

REINIT_D_BELOW = 1e-5  # methods.md §3.3 / pitfall 14: re-initialise D when L_D falls under this


def adversarial_loss(feat_real: torch.Tensor, feat_fake: torch.Tensor) -> torch.Tensor:
    """Feature matching: L_adv = mean((f(x) − f(x̂))²) over all elements of D's feature maps."""
    return torch.mean((feat_real - feat_fake) ** 2)


def contextual_loss(x: torch.Tensor, x_hat: torch.Tensor) -> torch.Tensor:
    """L_con = mean |x − x̂| (L1)."""
    return torch.mean(torch.abs(x - x_hat))


def encoder_loss(z: torch.Tensor, z_hat: torch.Tensor) -> torch.Tensor:
    """L_enc = mean((z − ẑ)²) (L2)."""
    return torch.mean((z - z_hat) ** 2)


def generator_loss(x: torch.Tensor, x_hat: torch.Tensor, z: torch.Tensor, z_hat: torch.Tensor,
                   feat_real: torch.Tensor, feat_fake: torch.Tensor,
                   w_adv: float, w_con: float, w_enc: float) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """L_G = w_adv·L_adv + w_con·L_con + w_enc·L_enc; also the three terms (detached) for reports."""
    adv = adversarial_loss(feat_real, feat_fake)
    con = contextual_loss(x, x_hat)
    enc = encoder_loss(z, z_hat)
    total = w_adv * adv + w_con * con + w_enc * enc
    return total, {"adv": adv.detach(), "con": con.detach(), "enc": enc.detach()}


def discriminator_loss(p_real: torch.Tensor, p_fake: torch.Tensor) -> torch.Tensor:
    """L_D = ½ [BCE(D(x), 1) + BCE(D(x̂.detach()), 0)]."""
    return 0.5 * (F.binary_cross_entropy(p_real, torch.ones_like(p_real))
                  + F.binary_cross_entropy(p_fake, torch.zeros_like(p_fake)))


def anomaly_score(z: torch.Tensor, z_hat: torch.Tensor) -> torch.Tensor:
    """s(x) = mean_k (z_k − ẑ_k)² per sample (methods.md §3.4); raw, never min-max scaled."""
    return torch.mean((z - z_hat) ** 2, dim=1)
