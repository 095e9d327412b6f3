"""AMA networks (methods.md §4.3): encoder, SNGAN-style ResNet generator, spectral-normalised ResNet
critic on channel-stacked pairs. Written from the description of somepago/AMA cifar_models_bNorm.py
in methods.md, not copied. Images are 32×32 (28×28 inputs are resized up in the model); the widths
(`ndf`, `gen_ch`, `critic_ch`) default to the official sizes and can be narrowed for tests / FAST.
Tabular inputs get MLPs of the same roles — ours, **experimental** (the paper has none).
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

SIZE = 32  # the side every image net works at


def conv_encoder(nc: int, ndf: int, nz: int) -> nn.Sequential:
    """nc×32×32 → nz: three conv 4×4 s2 (2·ndf, 4·ndf, 8·ndf channels) → BN → LReLU(0.2), conv 4×4 → nz."""
    layers: list[nn.Module] = []
    for a, b in ((nc, 2 * ndf), (2 * ndf, 4 * ndf), (4 * ndf, 8 * ndf)):
        layers += [nn.Conv2d(a, b, 4, 2, 1, bias=False), nn.BatchNorm2d(b), nn.LeakyReLU(0.2, inplace=True)]
    return nn.Sequential(*layers, nn.Conv2d(8 * ndf, nz, 4, 1, 0, bias=False), nn.Flatten())


class GenBlock(nn.Module):
    """BN → ReLU → up×2 → conv3×3 → BN → ReLU → conv3×3, plus shortcut up×2 → conv1×1."""

    def __init__(self, ch: int):
        super().__init__()
        self.bn1, self.bn2 = nn.BatchNorm2d(ch), nn.BatchNorm2d(ch)
        self.conv1, self.conv2 = nn.Conv2d(ch, ch, 3, padding=1), nn.Conv2d(ch, ch, 3, padding=1)
        self.shortcut = nn.Conv2d(ch, ch, 1)
        for c in (self.conv1, self.conv2):
            nn.init.xavier_uniform_(c.weight, math.sqrt(2))
        nn.init.xavier_uniform_(self.shortcut.weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.interpolate(F.relu(self.bn1(x)), scale_factor=2)
        h = self.conv2(F.relu(self.bn2(self.conv1(h))))
        return h + self.shortcut(F.interpolate(x, scale_factor=2))


class ResNetGenerator(nn.Module):
    """nz → linear 4·4·ch → 3 up-blocks (4 → 32) → BN → ReLU → conv3×3 → nc → tanh."""

    def __init__(self, nz: int, nc: int, ch: int = 256):
        super().__init__()
        self.ch = ch
        self.fc = nn.Linear(nz, 4 * 4 * ch)
        self.blocks = nn.Sequential(GenBlock(ch), GenBlock(ch), GenBlock(ch))
        self.bn = nn.BatchNorm2d(ch)
        self.out = nn.Conv2d(ch, nc, 3, padding=1)
        nn.init.xavier_uniform_(self.fc.weight)
        nn.init.xavier_uniform_(self.out.weight)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        h = self.blocks(self.fc(z).view(len(z), self.ch, 4, 4))
        return torch.tanh(self.out(F.relu(self.bn(h))))


def _sn_conv(a: int, b: int, k: int, gain: float = 1.0) -> nn.Module:
    conv = nn.Conv2d(a, b, k, padding=k // 2)
    nn.init.xavier_uniform_(conv.weight, gain)
    return spectral_norm(conv)


class CriticBlock(nn.Module):
    """ReLU → conv3×3 → ReLU → conv3×3 (→ avgpool2), shortcut conv1×1 (→ avgpool2) when the shape
    changes. `first=True` is SNGAN's first block: no leading ReLU, shortcut avgpool → conv1×1."""

    def __init__(self, c_in: int, ch: int, downsample: bool, first: bool = False):
        super().__init__()
        self.conv1, self.conv2 = _sn_conv(c_in, ch, 3, math.sqrt(2)), _sn_conv(ch, ch, 3, math.sqrt(2))
        self.shortcut = _sn_conv(c_in, ch, 1) if (downsample or c_in != ch) else None
        self.downsample, self.first = downsample, first

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv2(F.relu(self.conv1(x if self.first else F.relu(x))))
        if self.downsample:
            h = F.avg_pool2d(h, 2)
        if self.shortcut is None:
            return h + x
        if self.first:  # pool, then project
            return h + self.shortcut(F.avg_pool2d(x, 2))
        s = self.shortcut(x)
        return h + (F.avg_pool2d(s, 2) if self.downsample else s)


class ResNetCritic(nn.Module):
    """Pairs (2·nc channels) → 4 blocks (32 →16 →8 →8 →8) → ReLU → sum over positions = φ_D (ch-d) →
    linear ch → 1 (no bias). Spectral norm on every layer. Returns (D value N, features N×ch)."""

    def __init__(self, nc: int, ch: int = 128):
        super().__init__()
        self.blocks = nn.Sequential(CriticBlock(2 * nc, ch, True, first=True), CriticBlock(ch, ch, True),
                                    CriticBlock(ch, ch, False), CriticBlock(ch, ch, False))
        lin = nn.Linear(ch, 1, bias=False)
        nn.init.xavier_uniform_(lin.weight)
        self.head = spectral_norm(lin)

    def forward(self, pair: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        f = F.relu(self.blocks(pair)).sum(dim=(2, 3))
        return self.head(f).flatten(), f


class MlpCritic(nn.Module):
    """Tabular pairs [x, y] (2·D) → SN linear + ReLU per hidden size → features → SN linear → 1 (experimental)."""

    def __init__(self, d: int, hidden: tuple[int, ...]):
        super().__init__()
        layers: list[nn.Module] = []
        for a, b in zip((2 * d, *hidden[:-1]), hidden):
            layers += [spectral_norm(nn.Linear(a, b)), nn.ReLU()]
        self.features = nn.Sequential(*layers)
        self.head = spectral_norm(nn.Linear(hidden[-1], 1, bias=False))

    def forward(self, pair: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        f = self.features(pair)
        return self.head(f).flatten(), f


def _mlp(dims: tuple[int, ...], act: nn.Module, out: nn.Module | None) -> nn.Sequential:
    layers: list[nn.Module] = []
    for a, b in zip(dims[:-2], dims[1:-1]):
        layers += [nn.Linear(a, b), nn.BatchNorm1d(b), act]
    layers.append(nn.Linear(dims[-2], dims[-1]))
    return nn.Sequential(*layers, *([out] if out is not None else []))


def build(input_shape: tuple[int, ...], nz: int, ndf: int, gen_ch: int, critic_ch: int,
          hidden: tuple[int, ...]) -> tuple[nn.Module, nn.Module, nn.Module, tuple[int, ...]]:
    """Encoder E, generator G, critic D and the shape the nets see (images: nc×32×32)."""
    if len(input_shape) == 1:
        d = input_shape[0]
        enc = _mlp((d, *hidden, nz), nn.LeakyReLU(0.2), None)
        gen = _mlp((nz, *reversed(hidden), d), nn.ReLU(), nn.Tanh())  # features scaled into [−1, 1]
        return enc, gen, MlpCritic(d, hidden), (d,)
    if len(input_shape) == 3 and input_shape[1] == input_shape[2]:
        nc = input_shape[0]
        return conv_encoder(nc, ndf, nz), ResNetGenerator(nz, nc, gen_ch), ResNetCritic(nc, critic_ch), (nc, SIZE, SIZE)
    raise ValueError(f"AMA takes square C×H×W images or D-column tables, not shape {input_shape}")
