"""Benchmark protocols from the papers, on ../shared/data (shared by the bench scripts)."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from semiad.data import read_idx

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def mnist(split: str, folder: Path = DATA / "mnist") -> tuple[np.ndarray, np.ndarray]:
    """(N×1×28×28 float32 in [0,1], digit labels) of the train or test split."""
    prefix = "train" if split == "train" else "t10k"
    images = read_idx(folder / f"{prefix}-images-idx3-ubyte.gz")
    labels = read_idx(folder / f"{prefix}-labels-idx1-ubyte.gz")
    return (images.astype(np.float32) / 255.0)[:, None], labels.astype(np.int64)


def semisupervised_setting(labels: np.ndarray, normal: list[int], known_anomaly: list[int],
                           ratio_known_normal: float, ratio_known_anomaly: float, ratio_pollution: float,
                           rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Deep SAD's training set (methods.md §2.7): all normals, γ_p pollution of the unlabeled part,
    γ_l labeled anomalies of the known classes (as a share of the whole training set).

    Returns (indices into `labels`, semi-targets +1/0/−1). Counts solve the same four equations as
    the reference. Deviation: labeled anomalies are drawn apart from the unlabeled ones, so no image
    appears twice (the reference may draw one image into both).
    """
    idx_normal = np.flatnonzero(np.isin(labels, normal))
    idx_anom = np.flatnonzero(~np.isin(labels, normal))
    n_normal = len(idx_normal)
    # unknowns: known normal, unlabeled normal, unlabeled anomaly, known anomaly
    a = np.array([
        [1, 1, 0, 0],
        [1 - ratio_known_normal, -ratio_known_normal, -ratio_known_normal, -ratio_known_normal],
        [-ratio_known_anomaly, -ratio_known_anomaly, -ratio_known_anomaly, 1 - ratio_known_anomaly],
        [0, -ratio_pollution, 1 - ratio_pollution, 0],
    ])
    n_kn, n_un, n_ua, n_ka = (int(v) for v in np.linalg.solve(a, np.array([n_normal, 0, 0, 0])))
    perm_normal = rng.permutation(idx_normal)
    known_candidates = rng.permutation(np.flatnonzero(np.isin(labels, known_anomaly)))[:n_ka]
    unlabeled_pool = rng.permutation(np.setdiff1d(idx_anom, known_candidates))[:n_ua]
    idx = np.concatenate([perm_normal[:n_kn], perm_normal[n_kn:n_kn + n_un], unlabeled_pool, known_candidates])
    semi = np.concatenate([np.ones(n_kn), np.zeros(n_un), np.zeros(len(unlabeled_pool)),
                           -np.ones(len(known_candidates))]).astype(np.int64)
    return idx, semi
