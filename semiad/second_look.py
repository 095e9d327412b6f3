"""A second look at the labels: which of them the other labels disagree with most.

A key pressed a moment too soon, or a tired afternoon, leaves a wrong label. A wrong "normal" on an
anomaly is the costly one: the sample never comes back to the review queue, and the scorers trained on
the labels learn that such samples are normal. Each labeled sample is judged by the other labels alone,
in the model's latent space (`BaseDetector.embed`):

- "classifier": the probability of the other class from a class-balanced logistic regression fitted
  on the other folds of the labeled samples (out-of-fold, as confident learning does: Northcutt et
  al. 2021), so a label never vouches for itself;
- "neighbours": the share of its `k` nearest labeled samples that carry the other label.

The disagreement is their mean, in [0, 1]. It ranks labels for a second look; it does not say which
are wrong: on labels without a slip the top of the list holds the hard cases near the boundary.
bench/second_look.py measures how many slips the top of the list holds (bench/RESULTS.md).
"""
from __future__ import annotations

import warnings

import numpy as np

K_NEIGHBOURS = 5
FOLDS = 5
LISTED = 10  # the Review page lists up to this many labels of each kind...
LEAN = 0.5  # ...whose disagreement is at least this: the other labels lean the other way


def disagreement(Z: np.ndarray, anomalous: np.ndarray, k: int = K_NEIGHBOURS, folds: int = FOLDS,
                 seed: int = 0) -> dict[str, np.ndarray]:
    """How much the other labels disagree with each label. `Z`: the labeled samples' latent vectors
    (n×d); `anomalous`: their labels (True = anomalous). Returns arrays of length n: "neighbours",
    "classifier" (the other class's out-of-fold probability; the neighbours' share again where a class
    has fewer than two labels, too few to leave one out) and "disagreement" (their mean). All zero
    while the labels hold one class only: there is nothing to disagree with."""
    Z = np.asarray(Z, dtype=np.float64)
    anomalous = np.asarray(anomalous, dtype=bool)
    if Z.ndim != 2 or len(Z) != len(anomalous):
        raise ValueError(f"Z must be n×d with one label per row, got {Z.shape} and {anomalous.shape}")
    zeros = np.zeros(len(Z))
    if anomalous.all() or not anomalous.any():
        return {"neighbours": zeros, "classifier": zeros, "disagreement": zeros}
    neighbours = _neighbour_disagreement(Z, anomalous, k)
    smaller = int(min(anomalous.sum(), (~anomalous).sum()))
    classifier = _out_of_fold(Z, anomalous, min(folds, smaller), seed) if smaller >= 2 else neighbours
    return {"neighbours": neighbours, "classifier": classifier, "disagreement": 0.5 * (neighbours + classifier)}


def _neighbour_disagreement(Z: np.ndarray, anomalous: np.ndarray, k: int) -> np.ndarray:
    from sklearn.neighbors import NearestNeighbors

    k = min(k, len(Z) - 1)
    _, nn = NearestNeighbors(n_neighbors=k + 1).fit(Z).kneighbors(Z)
    # drop each row's own index (an exact duplicate may come first instead: then drop the last)
    own = nn == np.arange(len(Z))[:, None]
    own[~own.any(axis=1), -1] = True
    others = nn[~own].reshape(len(Z), k)
    return (anomalous[others] != anomalous[:, None]).mean(axis=1)


def _out_of_fold(Z: np.ndarray, anomalous: np.ndarray, folds: int, seed: int) -> np.ndarray:
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold

    # one scale for the whole space (its shape kept): the regression's penalty (C = 1) must not depend on
    # the latent space's units (a GANomaly latent of std 0.008 left every probability at 0.5)
    Z = (Z - Z.mean(axis=0)) / max(float(Z.std()), 1e-12)
    p_anomalous = np.zeros(len(Z))
    for train, held in StratifiedKFold(folds, shuffle=True, random_state=seed).split(Z, anomalous):
        model = LogisticRegression(C=1.0, class_weight="balanced", max_iter=1000)
        with warnings.catch_warnings():  # a near-separable fold stops at max_iter: its ranking is still sound
            warnings.simplefilter("ignore", ConvergenceWarning)
            model.fit(Z[train], anomalous[train])
        p_anomalous[held] = model.predict_proba(Z[held])[:, 1]
    return np.where(anomalous, 1.0 - p_anomalous, p_anomalous)
