"""GANomaly networks (methods.md §3.2): DCGAN encoder / decoder, generator G_E → G_D → E, discriminator.

Images: the DCGAN family of the official code (samet-akcay/ganomaly lib/networks.py, read, not copied),
for square inputs whose side is a multiple of 16. Tabular: an MLP variant (methods.md §3.5, ours,
experimental). Modules only; the losses are in loss.py and the training loop in model.py.
"""
from __future__ import annotations

import torch
from torch import nn


def dcgan_encoder(size: int, nc: int, width: int, nz: int, extra_layers: int = 0) -> nn.Sequential:
    """nc×size×size → nz×1×1. First conv has no BatchNorm; the last layer is the 4×4 'final conv'."""
    if size % 16 != 0:
        raise ValueError(f"DCGAN networks need a side that is a multiple of 16, got {size}")
    layers: list[nn.Module] = [nn.Conv2d(nc, width, 4, 2, 1, bias=False), nn.LeakyReLU(0.2, inplace=True)]
    c, s = width, size // 2
    for _ in range(extra_layers):
        layers += [nn.Conv2d(c, c, 3, 1, 1, bias=False), nn.BatchNorm2d(c), nn.LeakyReLU(0.2, inplace=True)]
    while s > 4:
        layers += [nn.Conv2d(c, 2 * c, 4, 2, 1, bias=False), nn.BatchNorm2d(2 * c), nn.LeakyReLU(0.2, inplace=True)]
        c, s = 2 * c, s // 2
    layers.append(nn.Conv2d(c, nz, 4, 1, 0, bias=False))
    return nn.Sequential(*layers)


def dcgan_decoder(size: int, nc: int, width: int, nz: int, extra_layers: int = 0) -> nn.Sequential:
    """nz×1×1 → nc×size×size in [−1, 1] (tanh)."""
    if size % 16 != 0:
        raise ValueError(f"DCGAN networks need a side that is a multiple of 16, got {size}")
    c = width * size // 8  # 256 for size 32, width 64
    layers: list[nn.Module] = [nn.ConvTranspose2d(nz, c, 4, 1, 0, bias=False), nn.BatchNorm2d(c), nn.ReLU(True)]
    s = 4
    while s < size // 2:
        layers += [nn.ConvTranspose2d(c, c // 2, 4, 2, 1, bias=False), nn.BatchNorm2d(c // 2), nn.ReLU(True)]
        c, s = c // 2, s * 2
    for _ in range(extra_layers):
        layers += [nn.Conv2d(c, c, 3, 1, 1, bias=False), nn.BatchNorm2d(c), nn.ReLU(True)]
    layers += [nn.ConvTranspose2d(c, nc, 4, 2, 1, bias=False), nn.Tanh()]
    return nn.Sequential(*layers)


def _mlp(dims: tuple[int, ...], out_act: nn.Module | None) -> nn.Sequential:
    """Linear → BN → LeakyReLU(0.2) blocks, then a plain linear output (optionally activated)."""
    layers: list[nn.Module] = []
    for a, b in zip(dims[:-2], dims[1:-1]):
        layers += [nn.Linear(a, b), nn.BatchNorm1d(b), nn.LeakyReLU(0.2, inplace=True)]
    layers.append(nn.Linear(dims[-2], dims[-1]))
    if out_act is not None:
        layers.append(out_act)
    return nn.Sequential(*layers)


class Generator(nn.Module):
    """x → z = G_E(x) → x̂ = G_D(z) → ẑ = E(x̂). Returns (x̂, z, ẑ) with z, ẑ flattened to N×nz."""

    def __init__(self, encoder: nn.Module, decoder: nn.Module, encoder2: nn.Module, image: bool):
        super().__init__()
        self.encoder1 = encoder
        self.decoder = decoder
        self.encoder2 = encoder2
        self.image = image

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder1(x).flatten(1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        z = self.encoder1(x)
        x_hat = self.decoder(z)
        z_hat = self.encoder2(x_hat)
        return x_hat, z.flatten(1), z_hat.flatten(1)


class Discriminator(nn.Module):
    """`features` = every layer but the last (the map used for feature matching), `classifier` = last
    layer + sigmoid. Returns (probability real, N; features)."""

    def __init__(self, encoder: nn.Sequential):
        super().__init__()
        layers = list(encoder.children())
        self.features = nn.Sequential(*layers[:-1])
        self.classifier = nn.Sequential(layers[-1], nn.Sigmoid())

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        f = self.features(x)
        return self.classifier(f).flatten(), f


def dcgan_init(module: nn.Module) -> None:
    """DCGAN init (methods.md §3.2): conv weights N(0, 0.02); BatchNorm weight N(1, 0.02), bias 0.

    Linear layers of the tabular variant get the same N(0, 0.02) weights and zero bias [ours].
    """
    if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
        nn.init.normal_(module.weight, 0.0, 0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, (nn.BatchNorm1d, nn.BatchNorm2d)):
        nn.init.normal_(module.weight, 1.0, 0.02)
        nn.init.zeros_(module.bias)


def build(input_shape: tuple[int, ...], nz: int, ngf: int, ndf: int, extra_layers: int = 0,
          hidden: tuple[int, ...] = (128, 64)) -> tuple[Generator, Discriminator, tuple[int, ...]]:
    """Generator, discriminator and the shape the networks see, for an input shape.

    Images C×H×W with H = W: sides that are not a multiple of 16 are resized up to the next one
    inside the model (28 → 32 for MNIST, methods.md §7.2). Tabular D: MLPs D→128→64→nz and mirror
    (methods.md §3.5, experimental); the discriminator is D→128→64→1 with the 64-d layer as features.
    """
    if len(input_shape) == 1:
        d = input_shape[0]
        enc = _mlp((d, *hidden, nz), None)
        dec = _mlp((nz, *reversed(hidden), d), nn.Tanh())  # features are min-max scaled into [−1, 1]
        enc2 = _mlp((d, *hidden, nz), None)
        disc = Discriminator(_mlp((d, *hidden, 1), None))
        gen = Generator(enc, dec, enc2, image=False)
        net_shape: tuple[int, ...] = (d,)
    elif len(input_shape) == 3:
        nc, h, w = input_shape
        if h != w:
            raise ValueError(f"GANomaly needs square images, got {h}×{w}; load images through semiad.data")
        size = -(-h // 16) * 16
        gen = Generator(dcgan_encoder(size, nc, ngf, nz, extra_layers), dcgan_decoder(size, nc, ngf, nz, extra_layers),
                        dcgan_encoder(size, nc, ngf, nz, extra_layers), image=True)
        # the official NetD is built with ngf as its width; with ngf = ndf (the default) that is the same
        disc = Discriminator(dcgan_encoder(size, nc, ndf, 1, extra_layers))
        net_shape = (nc, size, size)
    else:
        raise ValueError(f"GANomaly takes C×H×W images or D-column tables, not shape {input_shape}")
    gen.apply(dcgan_init)
    disc.apply(dcgan_init)
    return gen, disc, net_shape
