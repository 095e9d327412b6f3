"""Deep SAD networks (methods.md §2.4): bias-free encoders φ and the decoders used only for pretraining.

Every conv/linear layer has bias=False and every BatchNorm is affine=False, eps=1e-4, so φ cannot
map all inputs to the constant c (hypersphere collapse, methods.md §1 and pitfall 2).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def _bn2d(c: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(c, eps=1e-4, affine=False)


def _bn1d(c: int) -> nn.BatchNorm1d:
    return nn.BatchNorm1d(c, eps=1e-4, affine=False)


def _up(x: torch.Tensor) -> torch.Tensor:
    return F.interpolate(x, scale_factor=2)  # nearest neighbour, as in the reference


def _pool_act(bn: nn.Module, x: torch.Tensor) -> torch.Tensor:
    return F.max_pool2d(F.leaky_relu(bn(x)), 2)


class MnistEncoder(nn.Module):
    """1×28×28 → 32: conv 1→8 → conv 8→4 → linear 196→32."""

    def __init__(self, rep_dim: int = 32):
        super().__init__()
        self.rep_dim = rep_dim
        self.conv1 = nn.Conv2d(1, 8, 5, bias=False, padding=2)
        self.bn1 = _bn2d(8)
        self.conv2 = nn.Conv2d(8, 4, 5, bias=False, padding=2)
        self.bn2 = _bn2d(4)
        self.fc1 = nn.Linear(4 * 7 * 7, rep_dim, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = _pool_act(self.bn1, self.conv1(x))
        x = _pool_act(self.bn2, self.conv2(x))
        return self.fc1(x.flatten(1))


class MnistDecoder(nn.Module):
    def __init__(self, rep_dim: int = 32):
        super().__init__()
        self.rep_dim = rep_dim
        self.deconv1 = nn.ConvTranspose2d(rep_dim // 16, 4, 5, bias=False, padding=2)
        self.bn3 = _bn2d(4)
        self.deconv2 = nn.ConvTranspose2d(4, 8, 5, bias=False, padding=3)
        self.bn4 = _bn2d(8)
        self.deconv3 = nn.ConvTranspose2d(8, 1, 5, bias=False, padding=2)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        x = _up(F.leaky_relu(z.view(len(z), self.rep_dim // 16, 4, 4)))
        x = _up(F.leaky_relu(self.bn3(self.deconv1(x))))
        x = _up(F.leaky_relu(self.bn4(self.deconv2(x))))
        return torch.sigmoid(self.deconv3(x))


class FmnistEncoder(nn.Module):
    """1×28×28 → 64, wider LeNet for textured gray images."""

    def __init__(self, rep_dim: int = 64):
        super().__init__()
        self.rep_dim = rep_dim
        self.conv1 = nn.Conv2d(1, 16, 5, bias=False, padding=2)
        self.bn1 = _bn2d(16)
        self.conv2 = nn.Conv2d(16, 32, 5, bias=False, padding=2)
        self.bn2 = _bn2d(32)
        self.fc1 = nn.Linear(32 * 7 * 7, 128, bias=False)
        self.bn3 = _bn1d(128)
        self.fc2 = nn.Linear(128, rep_dim, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = _pool_act(self.bn1, self.conv1(x))
        x = _pool_act(self.bn2, self.conv2(x))
        x = F.leaky_relu(self.bn3(self.fc1(x.flatten(1))))
        return self.fc2(x)


class FmnistDecoder(nn.Module):
    def __init__(self, rep_dim: int = 64):
        super().__init__()
        self.fc3 = nn.Linear(rep_dim, 128, bias=False)
        self.bn4 = _bn1d(128)
        self.deconv1 = nn.ConvTranspose2d(8, 32, 5, bias=False, padding=2)
        self.bn5 = _bn2d(32)
        self.deconv2 = nn.ConvTranspose2d(32, 16, 5, bias=False, padding=3)
        self.bn6 = _bn2d(16)
        self.deconv3 = nn.ConvTranspose2d(16, 1, 5, bias=False, padding=2)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        x = self.bn4(self.fc3(z)).view(len(z), 8, 4, 4)
        x = _up(F.leaky_relu(x))
        x = _up(F.leaky_relu(self.bn5(self.deconv1(x))))
        x = _up(F.leaky_relu(self.bn6(self.deconv2(x))))
        return torch.sigmoid(self.deconv3(x))


class CifarEncoder(nn.Module):
    """3×32×32 → 128."""

    def __init__(self, rep_dim: int = 128):
        super().__init__()
        self.rep_dim = rep_dim
        self.conv1 = nn.Conv2d(3, 32, 5, bias=False, padding=2)
        self.bn1 = _bn2d(32)
        self.conv2 = nn.Conv2d(32, 64, 5, bias=False, padding=2)
        self.bn2 = _bn2d(64)
        self.conv3 = nn.Conv2d(64, 128, 5, bias=False, padding=2)
        self.bn3 = _bn2d(128)
        self.fc1 = nn.Linear(128 * 4 * 4, rep_dim, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = _pool_act(self.bn1, self.conv1(x))
        x = _pool_act(self.bn2, self.conv2(x))
        x = _pool_act(self.bn3, self.conv3(x))
        return self.fc1(x.flatten(1))


class CifarDecoder(nn.Module):
    def __init__(self, rep_dim: int = 128):
        super().__init__()
        self.rep_dim = rep_dim
        self.deconv1 = nn.ConvTranspose2d(rep_dim // 16, 128, 5, bias=False, padding=2)
        self.bn4 = _bn2d(128)
        self.deconv2 = nn.ConvTranspose2d(128, 64, 5, bias=False, padding=2)
        self.bn5 = _bn2d(64)
        self.deconv3 = nn.ConvTranspose2d(64, 32, 5, bias=False, padding=2)
        self.bn6 = _bn2d(32)
        self.deconv4 = nn.ConvTranspose2d(32, 3, 5, bias=False, padding=2)
        gain = nn.init.calculate_gain("leaky_relu")
        for d in (self.deconv1, self.deconv2, self.deconv3, self.deconv4):
            nn.init.xavier_uniform_(d.weight, gain=gain)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        x = F.leaky_relu(z.view(len(z), self.rep_dim // 16, 4, 4))
        x = _up(F.leaky_relu(self.bn4(self.deconv1(x))))
        x = _up(F.leaky_relu(self.bn5(self.deconv2(x))))
        x = _up(F.leaky_relu(self.bn6(self.deconv3(x))))
        return torch.sigmoid(self.deconv4(x))


def _mlp_block(d_in: int, d_out: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(d_in, d_out, bias=False), _bn1d(d_out), nn.LeakyReLU())


class MlpEncoder(nn.Module):
    def __init__(self, x_dim: int, hidden: tuple[int, ...], rep_dim: int):
        super().__init__()
        dims = (x_dim, *hidden)
        self.hidden = nn.Sequential(*[_mlp_block(a, b) for a, b in zip(dims[:-1], dims[1:])])
        self.code = nn.Linear(dims[-1], rep_dim, bias=False)
        self.rep_dim = rep_dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.code(self.hidden(x))


class MlpDecoder(nn.Module):
    def __init__(self, x_dim: int, hidden: tuple[int, ...], rep_dim: int):
        super().__init__()
        dims = (rep_dim, *reversed(hidden))
        self.hidden = nn.Sequential(*[_mlp_block(a, b) for a, b in zip(dims[:-1], dims[1:])])
        self.out = nn.Linear(dims[-1], x_dim, bias=False)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.out(self.hidden(z)))


def mlp_sizes(x_dim: int) -> tuple[tuple[int, ...], int]:
    """Hidden sizes and rep_dim for a table of x_dim columns (methods.md §2.4 generic rule)."""
    if x_dim > 100:
        return (128, 64), 32
    return (32, 16), (4 if x_dim < 8 else 8)


def build(input_shape: tuple[int, ...], net: str = "auto") -> tuple[nn.Module, nn.Module, str]:
    """Encoder φ, decoder and the resolved net name for an input shape."""
    if len(input_shape) == 1:
        hidden, rep = mlp_sizes(input_shape[0])
        return MlpEncoder(input_shape[0], hidden, rep), MlpDecoder(input_shape[0], hidden, rep), "mlp"
    if input_shape == (1, 28, 28):
        name = "mnist" if net == "auto" else net
        pairs = {"mnist": (MnistEncoder, MnistDecoder), "fmnist": (FmnistEncoder, FmnistDecoder)}
    elif input_shape == (3, 32, 32):
        name = "cifar" if net == "auto" else net
        pairs = {"cifar": (CifarEncoder, CifarDecoder)}
    else:
        raise ValueError(f"Deep SAD has networks for 1×28×28, 3×32×32 and tabular inputs, not {input_shape}; "
                         "load images through semiad.data, which resizes them")
    if name not in pairs:
        raise ValueError(f"net {net!r} does not fit inputs of shape {input_shape}; choose from {sorted(pairs)}")
    enc, dec = pairs[name]
    return enc(), dec(), name


class AutoEncoder(nn.Module):
    def __init__(self, encoder: nn.Module, decoder: nn.Module):
        super().__init__()
        self.encoder = encoder
        self.decoder = decoder

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.encoder(x))
