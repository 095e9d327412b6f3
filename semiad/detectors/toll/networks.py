"""Toll networks (methods.md §6.3): one autoencoder per input kind, with the official layer plans.

Read from the description of Soltanilara/Toll src/models.py in methods.md, not copied. `width` scales
every hidden channel count so tests and the FAST setting can use narrow nets; the defaults give the
paper's sizes (MNIST width 64: 64-128-256-512 channels; CIFAR width 32: 32-64-128-256-512-512).
All decoders end in a linear layer: Toll's inputs are z-scored, not squashed into [0, 1].
"""
from __future__ import annotations

import torch
from torch import nn


def _conv(c_in: int, c_out: int, k: int, stride: int = 1, slope: float = 0.2, bias: bool = True) -> list[nn.Module]:
    return [nn.Conv2d(c_in, c_out, k, stride, bias=bias), nn.BatchNorm2d(c_out), nn.LeakyReLU(slope, inplace=True)]


def _deconv(c_in: int, c_out: int, k: int, stride: int = 1, slope: float = 0.2, bias: bool = True) -> list[nn.Module]:
    return [nn.ConvTranspose2d(c_in, c_out, k, stride, bias=bias), nn.BatchNorm2d(c_out),
            nn.LeakyReLU(slope, inplace=True)]


class MnistAE(nn.Module):
    """1×28×28 ↔ z_dim. Encoder 28 →25 →22 →10 (stride 2) →7 →4 (w channels) → linear; decoder mirrors it.

    LeakyReLU(0.2), BatchNorm after every hidden conv, convs with biases (the reference's defaults).
    """

    def __init__(self, z_dim: int = 128, width: int = 64):
        super().__init__()
        w = width
        self.width = w
        self.encoder = nn.Sequential(
            *_conv(1, w, 4), *_conv(w, 2 * w, 4), *_conv(2 * w, 4 * w, 4, 2), *_conv(4 * w, 8 * w, 4),
            nn.Conv2d(8 * w, w, 4), nn.Flatten(), nn.Linear(w * 16, z_dim))
        self.fc = nn.Linear(z_dim, w * 16)
        self.decoder = nn.Sequential(
            *_deconv(w, 8 * w, 4), *_deconv(8 * w, 4 * w, 4), *_deconv(4 * w, 2 * w, 4, 2), *_deconv(2 * w, w, 4),
            nn.ConvTranspose2d(w, 1, 4))

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder(x)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.fc(z).view(len(z), self.width, 4, 4))


class CifarAE(nn.Module):
    """3×32×32 ↔ z_dim. Encoder 32 →28 →13 (s2) →10 →4 (s2) →1, two 1×1 convs, 1×1 conv to z_dim.

    Hidden convs bias-free + BN + LeakyReLU(0.1). The decoder mirrors it with transposed convs
    (1 →4 →10 →13 →28 →32), two 1×1 convs, a final 1×1 conv to 3 channels and a learned per-pixel
    output bias (3×32×32), linear output. The exact decoder order is our mirror of the encoder [ours].
    """

    def __init__(self, z_dim: int = 64, width: int = 32):
        super().__init__()
        w = width
        self.encoder = nn.Sequential(
            *_conv(3, w, 5, slope=0.1, bias=False), *_conv(w, 2 * w, 4, 2, 0.1, False),
            *_conv(2 * w, 4 * w, 4, 1, 0.1, False), *_conv(4 * w, 8 * w, 4, 2, 0.1, False),
            *_conv(8 * w, 16 * w, 4, 1, 0.1, False), *_conv(16 * w, 16 * w, 1, 1, 0.1, False),
            nn.Conv2d(16 * w, z_dim, 1), nn.Flatten())
        self.decoder = nn.Sequential(
            *_deconv(z_dim, 8 * w, 4, 1, 0.1, False), *_deconv(8 * w, 4 * w, 4, 2, 0.1, False),
            *_deconv(4 * w, 2 * w, 4, 1, 0.1, False), *_deconv(2 * w, w, 4, 2, 0.1, False),
            *_deconv(w, w, 5, 1, 0.1, False), *_conv(w, w, 1, 1, 0.1, False), *_conv(w, w, 1, 1, 0.1, False),
            nn.Conv2d(w, 3, 1, bias=False))
        self.out_bias = nn.Parameter(torch.zeros(1, 3, 32, 32))

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder(x)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return self.decoder(z.view(len(z), -1, 1, 1)) + self.out_bias


class MlpAE(nn.Module):
    """D ↔ z_dim: D → h₁ → BN → ReLU → h₂ → BN → ReLU → z_dim; decoder mirror, linear output."""

    def __init__(self, x_dim: int, hidden: tuple[int, ...], z_dim: int):
        super().__init__()
        enc: list[nn.Module] = []
        for a, b in zip((x_dim, *hidden[:-1]), hidden):
            enc += [nn.Linear(a, b), nn.BatchNorm1d(b), nn.ReLU(inplace=True)]
        self.encoder = nn.Sequential(*enc, nn.Linear(hidden[-1], z_dim))
        back = tuple(reversed(hidden))
        dec: list[nn.Module] = []
        for a, b in zip((z_dim, *back[:-1]), back):
            dec += [nn.Linear(a, b), nn.BatchNorm1d(b), nn.ReLU(inplace=True)]
        self.decoder = nn.Sequential(*dec, nn.Linear(back[-1], x_dim))

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder(x)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return self.decoder(z)


def build(input_shape: tuple[int, ...], z_dim: int, width: int | None,
          hidden: tuple[int, ...] | None) -> tuple[nn.Module, str]:
    """The autoencoder and its kind ("mnist", "cifar" or "mlp") for an input shape."""
    if len(input_shape) == 1:
        d = input_shape[0]
        return MlpAE(d, hidden or ((256, 128) if d > 100 else (64, 32)), z_dim), "mlp"
    if input_shape == (1, 28, 28):
        return MnistAE(z_dim, width or 64), "mnist"
    if input_shape == (3, 32, 32):
        return CifarAE(z_dim, width or 32), "cifar"
    raise ValueError(f"Toll has networks for 1×28×28, 3×32×32 and tabular inputs, not {input_shape}; "
                     "load images through semiad.data, which resizes them")
