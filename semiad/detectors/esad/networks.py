"""ESAD networks (methods.md §5.2): Deep SAD's LeNet / MLP layer plans (§2.4), with biases allowed.

E₁ → D → E₂: the two encoders have the same architecture and separate weights (the third-party
Julia port shares one encoder object; methods.md says not to copy that). Unlike Deep SAD's φ these
layers keep their biases and affine BatchNorm: the reconstruction term already prevents collapse,
and a z₂ pinned at zero would make the inverse-norm term of labeled anomalies blow up.
Decoders end in a sigmoid (inputs are in [0, 1], methods.md §7.1).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def _up(x: torch.Tensor) -> torch.Tensor:
    return F.interpolate(x, scale_factor=2)  # nearest neighbour, as in Deep SAD's decoders


class ConvEncoder(nn.Module):
    """conv 5×5 (pad 2) → BN → LeakyReLU → 2×2 max pool, per channel count; flatten → linear → rep_dim."""

    def __init__(self, nc: int, side: int, channels: tuple[int, ...], rep_dim: int):
        super().__init__()
        layers: list[nn.Module] = []
        for a, b in zip((nc, *channels[:-1]), channels):
            layers += [nn.Conv2d(a, b, 5, padding=2), nn.BatchNorm2d(b, eps=1e-4), nn.LeakyReLU(), nn.MaxPool2d(2)]
        self.features = nn.Sequential(*layers, nn.Flatten())
        out_side = side // 2 ** len(channels)
        self.code = nn.Linear(channels[-1] * out_side * out_side, rep_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.code(self.features(x))


class MnistDecoder(nn.Module):
    """rep_dim → (rep/16)×4×4 → up 8 → convT 4 → up 16 → convT (pad 3) 14 → up 28 → convT → 1×28×28."""

    def __init__(self, rep_dim: int = 32):
        super().__init__()
        self.c0 = rep_dim // 16
        self.deconv1 = nn.ConvTranspose2d(self.c0, 4, 5, padding=2)
        self.bn1 = nn.BatchNorm2d(4, eps=1e-4)
        self.deconv2 = nn.ConvTranspose2d(4, 8, 5, padding=3)
        self.bn2 = nn.BatchNorm2d(8, eps=1e-4)
        self.deconv3 = nn.ConvTranspose2d(8, 1, 5, padding=2)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        x = _up(F.leaky_relu(z.view(len(z), self.c0, 4, 4)))
        x = _up(F.leaky_relu(self.bn1(self.deconv1(x))))
        x = _up(F.leaky_relu(self.bn2(self.deconv2(x))))
        return torch.sigmoid(self.deconv3(x))


class CifarDecoder(nn.Module):
    """rep_dim → (rep/16)×4×4 → convT 128 → up → 64 → up → 32 → up → convT → 3×32×32."""

    def __init__(self, rep_dim: int = 128):
        super().__init__()
        self.c0 = rep_dim // 16
        chans = (self.c0, 128, 64, 32)
        self.blocks = nn.ModuleList(
            nn.Sequential(nn.ConvTranspose2d(a, b, 5, padding=2), nn.BatchNorm2d(b, eps=1e-4), nn.LeakyReLU())
            for a, b in zip(chans[:-1], chans[1:]))
        self.out = nn.ConvTranspose2d(32, 3, 5, padding=2)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        x = F.leaky_relu(z.view(len(z), self.c0, 4, 4))
        for block in self.blocks:
            x = _up(block(x))
        return torch.sigmoid(self.out(x))


def _mlp(dims: tuple[int, ...]) -> nn.Sequential:
    """Linear → BN → LeakyReLU for every hidden size, then a plain linear layer."""
    layers: list[nn.Module] = []
    for a, b in zip(dims[:-2], dims[1:-1]):
        layers += [nn.Linear(a, b), nn.BatchNorm1d(b, eps=1e-4), nn.LeakyReLU()]
    return nn.Sequential(*layers, nn.Linear(dims[-2], dims[-1]))


def mlp_sizes(x_dim: int) -> tuple[tuple[int, ...], int]:
    """Deep SAD's generic rule (methods.md §2.4): (128, 64) → 32 if D > 100, else (32, 16) → 8 (4 if D < 8)."""
    if x_dim > 100:
        return (128, 64), 32
    return (32, 16), (4 if x_dim < 8 else 8)


def build(input_shape: tuple[int, ...], rep_dim: int | None = None,
          hidden: tuple[int, ...] | None = None) -> tuple[nn.Module, nn.Module, nn.Module, str, int]:
    """E₁, D, E₂ (separate weights), the net's name and its rep_dim for an input shape."""
    if len(input_shape) == 1:
        d = input_shape[0]
        auto_hidden, auto_rep = mlp_sizes(d)
        hidden, rep = hidden or auto_hidden, rep_dim or auto_rep
        encoders = [_mlp((d, *hidden, rep)) for _ in range(2)]
        return encoders[0], nn.Sequential(_mlp((rep, *reversed(hidden), d)), nn.Sigmoid()), encoders[1], "mlp", rep
    if input_shape == (1, 28, 28):
        rep = rep_dim or 32
        return ConvEncoder(1, 28, (8, 4), rep), MnistDecoder(rep), ConvEncoder(1, 28, (8, 4), rep), "mnist", rep
    if input_shape == (3, 32, 32):
        rep = rep_dim or 128
        encoders = [ConvEncoder(3, 32, (32, 64, 128), rep) for _ in range(2)]
        return encoders[0], CifarDecoder(rep), encoders[1], "cifar", rep
    raise ValueError(f"ESAD has networks for 1×28×28, 3×32×32 and tabular inputs, not {input_shape}; "
                     "load images through semiad.data, which resizes them")


class EncoderDecoderEncoder(nn.Module):
    """x → z₁ = E₁(x) → x̂ = D(z₁) → z₂ = E₂(x̂). Returns (x̂, z₁, z₂)."""

    def __init__(self, encoder1: nn.Module, decoder: nn.Module, encoder2: nn.Module):
        super().__init__()
        self.encoder1 = encoder1
        self.decoder = decoder
        self.encoder2 = encoder2

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        z1 = self.encoder1(x)
        x_hat = self.decoder(z1)
        return x_hat, z1, self.encoder2(x_hat)
