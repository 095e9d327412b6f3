"""The first ranking of the default loop on gray and colour images, on pools the label-efficiency
bench does not use: the MNIST test split and all scikit-learn digits (gray), and the CIFAR-10 subset
(colour), each with every class 0-9 as the normal class and 10% other classes. No labels: the AUC of
the first ranking; and, as a check of the gray rule on natural photos, the CIFAR-10 subset turned
gray. Columns: the features' kNN alone (Fusion prior "knn"), Fusion's two-view prior
"knn+pixels" (the larger robust z of the kNN distance among the features and among the pixels), and
IsolationForest on the pixels and on the features (what a user would try without semiad).

    python -m bench.gray_first_ranking [--cache DIR] [--json out.json]

Features (EfficientNet-Lite0, 224 px) are computed once per source and cached in --cache.
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Iterator

import numpy as np

from bench import protocols
from bench.label_efficiency import SHARED, iforest_scores, luma, model_inputs
from bench.report import cpu_name
from semiad import data, defaults
from semiad.detectors import Fusion
from semiad.metrics import roc_auc

COLUMNS = ("features kNN", "two-view prior", "pixels IF", "features IF")


def sources(cache: Path) -> Iterator[tuple[str, np.ndarray, np.ndarray]]:
    """(name, images N×C×H×W in [0, 1], class labels) of each source."""
    yield "mnist-test", *protocols.mnist("test")
    from sklearn.datasets import load_digits

    digits = load_digits()
    yield "digits-all", data._upscale(digits.images / 16.0, data.GRAY_SIZE), digits.target
    cifar = np.load(SHARED / "cifar10" / "cifar10_train_subset.npz", allow_pickle=False)
    colour = cifar["images"].transpose(0, 3, 1, 2).astype(np.float32) / 255.0
    yield "cifar-all", colour, cifar["labels"]
    # the same photos in gray (ITU-R 601 luma): natural images with one channel, which the gray rule meets too
    yield "cifar-gray", luma(colour), cifar["labels"]


def pool_aucs(F: np.ndarray, P: np.ndarray, truth: np.ndarray) -> dict[str, float]:
    both = np.hstack([F, P.reshape(len(P), -1)]).astype(np.float32)
    out = {}
    for column, prior, X in (("features kNN", "knn", F), ("two-view prior", "knn+pixels", both)):
        det = Fusion(prior=prior, scale="l2", feature_columns=F.shape[1] if X is both else 0).fit(X)
        out[column] = roc_auc(truth, det.decision_scores_)
    out["pixels IF"] = roc_auc(truth, iforest_scores(P.reshape(len(P), -1), 0))
    out["features IF"] = roc_auc(truth, iforest_scores(F, 0))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--cache", type=Path, default=Path("/tmp/semiad-bench-cache"))
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    args.cache.mkdir(parents=True, exist_ok=True)
    results: dict[str, dict[str, dict[str, float]]] = {}
    for name, images, labels in sources(args.cache):
        F = model_inputs(images, dict(defaults.FEATURES), args.cache, name)
        for c in range(10):
            keep = data._one_vs_rest(images, labels, [c], 0.1, 0)
            aucs = pool_aucs(F[keep], images[keep], (labels[keep] != c).astype(int))
            results.setdefault(name, {})[str(c)] = aucs
            print(f"{name} normal {c}: " + "  ".join(f"{k} {v:.3f}" for k, v in aucs.items()), flush=True)
        mean = {k: float(np.mean([r[k] for r in results[name].values()])) for k in COLUMNS}
        print(f"{name} MEAN: " + "  ".join(f"{k} {v:.3f}" for k, v in mean.items()), flush=True)
    if args.json:
        args.json.write_text(json.dumps({"date": time.strftime("%Y-%m-%d %H:%M"), "cpu": cpu_name(),
                                         "results": results}, indent=1))


if __name__ == "__main__":
    main()
