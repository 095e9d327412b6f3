"""Tiny synthetic inputs shared by the detector unit tests."""
from __future__ import annotations

import numpy as np


def images(n: int, c: int = 1, side: int = 28, seed: int = 0) -> np.ndarray:
    """Blurry blobs in [0, 0.9]: structured enough that a few steps can fit them."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:side, :side] / side
    cx, cy = rng.uniform(0.3, 0.7, (2, n, 1, 1, 1))
    blob = np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / 0.02)
    return (0.9 * np.broadcast_to(blob, (n, c, side, side))).astype(np.float32)


def table(n: int, d: int = 12, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(n, d)).astype(np.float32)
