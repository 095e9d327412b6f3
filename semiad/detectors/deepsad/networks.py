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


def _pool_act(bn: nn.Module, x: torch.Tensor) -> torch.Tensor:
    return F.max_pool2d(F.leaky_relu(bn(x)), 2)


def _deconv(c_in: int, c_out: int, padding: int = 2) -> nn.ConvTranspose2d:
    return nn.ConvTranspose2d(c_in, c_out, 5, bias=False, padding=padding)


def _up_block(c_in: int, c_out: int, padding: int = 2) -> list[nn.Module]:
    """Transposed conv 5×5 → BN → LeakyReLU → 2× nearest-neighbour upsampling, as in the reference."""
    return [_deconv(c_in, c_out, padding), _bn2d(c_out), nn.LeakyReLU(), nn.Upsample(scale_factor=2)]


class LeNetEncoder(nn.Module):
    """nc×side×side → rep_dim: conv 5×5 (pad 2) → BN → LeakyReLU → 2×2 max pool per channel count, then
    linear. The layers keep the reference's names (conv1, bn1, …, fc1): they are φ's keys in model files."""

    def __init__(self, nc: int, side: int, channels: tuple[int, ...], rep_dim: int):
        super().__init__()
        self.rep_dim = rep_dim
        self.n_convs = len(channels)
        for i, (a, b) in enumerate(zip((nc, *channels[:-1]), channels), start=1):
            self.add_module(f"conv{i}", nn.Conv2d(a, b, 5, bias=False, padding=2))
            self.add_module(f"bn{i}", _bn2d(b))
        out_side = side // 2 ** len(channels)
        self.fc1 = nn.Linear(channels[-1] * out_side * out_side, rep_dim, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for i in range(1, self.n_convs + 1):
            x = _pool_act(getattr(self, f"bn{i}"), getattr(self, f"conv{i}")(x))
        return self.fc1(x.flatten(1))


def mnist_encoder(rep_dim: int = 32) -> LeNetEncoder:
    """1×28×28 → 32: conv 1→8 → conv 8→4 → linear 196→32."""
    return LeNetEncoder(1, 28, (8, 4), rep_dim)


def mnist_decoder(rep_dim: int = 32) -> nn.Sequential:
    """32 → (rep/16)×4×4 → up 8 → convT 4 → up 16 → convT 8 (pad 3) → up 14→28 → convT → 1×28×28."""
    return nn.Sequential(nn.Unflatten(1, (rep_dim // 16, 4, 4)), nn.LeakyReLU(), nn.Upsample(scale_factor=2),
                         *_up_block(rep_dim // 16, 4), *_up_block(4, 8, padding=3), _deconv(8, 1), nn.Sigmoid())


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


def fmnist_decoder(rep_dim: int = 64) -> nn.Sequential:
    """64 → linear 128 → BN → 8×4×4, then the MNIST decoder's plan with 32 and 16 channels."""
    return nn.Sequential(nn.Linear(rep_dim, 128, bias=False), _bn1d(128), nn.Unflatten(1, (8, 4, 4)), nn.LeakyReLU(),
                         nn.Upsample(scale_factor=2), *_up_block(8, 32), *_up_block(32, 16, padding=3),
                         _deconv(16, 1), nn.Sigmoid())


def cifar_encoder(rep_dim: int = 128) -> LeNetEncoder:
    """3×32×32 → 128: conv 3→32 → 64 → 128 → linear 2048→128."""
    return LeNetEncoder(3, 32, (32, 64, 128), rep_dim)


def cifar_decoder(rep_dim: int = 128) -> nn.Sequential:
    """128 → (rep/16)×4×4 → convT 128 → up → 64 → up → 32 → up → convT → 3×32×32; Xavier-initialised
    transposed convs (gain of LeakyReLU), as in the reference."""
    net = nn.Sequential(nn.Unflatten(1, (rep_dim // 16, 4, 4)), nn.LeakyReLU(), *_up_block(rep_dim // 16, 128),
                        *_up_block(128, 64), *_up_block(64, 32), _deconv(32, 3), nn.Sigmoid())
    gain = nn.init.calculate_gain("leaky_relu")
    for d in net:
        if isinstance(d, nn.ConvTranspose2d):
            nn.init.xavier_uniform_(d.weight, gain=gain)
    return net


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
        pairs = {"mnist": (mnist_encoder, mnist_decoder), "fmnist": (FmnistEncoder, fmnist_decoder)}
    elif input_shape == (3, 32, 32):
        name = "cifar" if net == "auto" else net
        pairs = {"cifar": (cifar_encoder, cifar_decoder)}
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
