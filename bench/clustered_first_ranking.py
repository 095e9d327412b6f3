"""The default loop's first ranking when the anomalies are all of one kind (clustered anomalies).

The label-efficiency bench draws its anomalies from every other class, so they are scattered. A user's
anomalies are often one kind (a defect type), and a kNN distance then has a blind spot: a group of
similar anomalies larger than k are each other's neighbours and look typical (masking). This bench
measures it: for every ordered pair of classes (c, d) a pool of class c plus 10% of class d, on the
CIFAR-10 subset (colour: features, Fusion prior "knn") and the MNIST test split (gray: features and
pixels, prior "knn+pixels"). Columns: the first ranking's AUC with each k of `--k`, and
IsolationForest on the features (the issue's bar: at least its AUC − 0.01).

With `--loop` it runs the whole review loop instead (session 8), on 20 of the pairs per source ((c, c+1)
and (c, c+5) mod 10): semiad's default loop with each k of `--k` beside the baselines of
`bench.label_efficiency` (IsolationForest, PCA and the logistic loop on the features, and for gray
images on the pixels too), anomalies found after 50, 100 and 200 reviews, one seed.

    python -m bench.clustered_first_ranking [--k 10 50 100] [--cache DIR] [--json out.json]
    python -m bench.clustered_first_ranking --loop --k 10 100 [--json out.json]

Features (EfficientNet-Lite0, 224 px) are computed once per source and cached in --cache.
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from bench import label_efficiency as le
from bench.gray_first_ranking import sources
from bench.label_efficiency import iforest_scores, model_inputs
from bench.report import cpu_name
from semiad import data, defaults
from semiad.detectors import Fusion
from semiad.metrics import roc_auc

ANOMALY_SHARE = 0.1
SOURCES = ("mnist-test", "cifar-all")  # of bench.gray_first_ranking's: one gray, one colour


def pool(labels: np.ndarray, normal: int, anomaly: int, rng: np.random.Generator) -> np.ndarray:
    """Every sample of class `normal` and a seeded draw of class `anomaly`, ANOMALY_SHARE of the pool."""
    norm = np.flatnonzero(labels == normal)
    others = np.flatnonzero(labels == anomaly)
    n = min(len(others), int(round(ANOMALY_SHARE * len(norm) / (1 - ANOMALY_SHARE))))
    return np.concatenate([norm, rng.choice(others, n, replace=False)])


def first_rankings(name: str, images: np.ndarray, labels: np.ndarray, F: np.ndarray, X: np.ndarray, rep: dict,
                   ks: list[int], rng: np.random.Generator) -> list[dict]:
    """Every ordered class pair of this source: the first ranking's AUC with each k, and IsolationForest's."""
    rows = []
    for c in range(10):
        for d in range(10):
            if c == d:
                continue
            keep = pool(labels, c, d, rng)
            truth = (labels[keep] == d).astype(int)
            params = defaults.method_params("fusion", "image", rep, len(keep), tuple(images.shape[1:]))
            row = {"normal": c, "anomaly": d, "IF": roc_auc(truth, iforest_scores(F[keep].astype(np.float64), 0))}
            for k in ks:
                det = Fusion(**{**params, "seed": 0, "k": k}).fit(X[keep])
                row[f"k={k}"] = roc_auc(truth, det.decision_scores_)
            rows.append(row)
            print(f"{name} normal {c} anomaly {d}: " + "  ".join(f"{key} {v:.3f}" for key, v in row.items()
                                                                if key.startswith(("k=", "IF"))), flush=True)
    for col in [f"k={k}" for k in ks]:
        aucs = np.array([r[col] for r in rows])
        below = sum(r[col] < r["IF"] - 0.01 for r in rows)
        print(f"{name} {col}: mean AUC {aucs.mean():.3f}, below IF − 0.01 on {below} of {len(rows)} pools, "
              f"below 0.5 on {(aucs < 0.5).sum()}", flush=True)
    print(f"{name} IF: mean AUC {np.mean([r['IF'] for r in rows]):.3f}", flush=True)
    return rows


def review_loops(name: str, images: np.ndarray, labels: np.ndarray, F: np.ndarray, X: np.ndarray, rep: dict,
                 ks: list[int], rng: np.random.Generator) -> list[dict]:
    """20 class pairs of this source ((c, c+1) and (c, c+5) mod 10): every loop's finds, semiad's with
    each k beside the baselines (on the features, and for gray images on the pixels too)."""
    rows = []
    for c, d in [(c, (c + 1) % 10) for c in range(10)] + [(c, (c + 5) % 10) for c in range(10)]:
        keep = pool(labels, c, d, rng)
        truth = (labels[keep] == d).astype(int)
        samples = data.SampleSet(ids=[str(i) for i in keep], X=images[keep], kind="image", name="pool", truth=truth)
        found = {f"semiad k={k}": le.semiad_loop(X[keep], truth, samples, rep, 0, overrides={"k": k}) for k in ks}
        views = {"": le.rows(F[keep])} | ({" (pixels)": le.rows(images[keep])} if images.shape[1] == 1 else {})
        for suffix, R in views.items():
            found["iforest" + suffix] = le.static_loop(iforest_scores(R, 0), truth)
            found["pca" + suffix] = le.static_loop(le.pca_scores(R, 0), truth)
            found["logistic" + suffix] = le.logistic_loop(R, truth, 0)
        rows.append({"normal": c, "anomaly": d, "loops": found})
        print(f"{name} normal {c} anomaly {d}: " + " | ".join(
            f"{k} {r['found_50']}/{r['found_100']}/{r['found_200']} (AUC first {r['auc_first']:.3f})"
            for k, r in found.items()), flush=True)
    for k in rows[0]["loops"]:
        total = np.sum([[r["loops"][k][f"found_{m}"] for m in (50, 100, 200)] for r in rows], axis=0)
        print(f"{name} {k}: found @50/@100/@200 in total {total.tolist()}", flush=True)
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--k", type=int, nargs="+", default=[10, 50, 100])
    ap.add_argument("--cache", type=Path, default=Path("/tmp/semiad-bench-cache"))
    ap.add_argument("--json", type=Path)
    ap.add_argument("--loop", action="store_true", help="run the review loop on 20 pairs per source")
    args = ap.parse_args()
    args.cache.mkdir(parents=True, exist_ok=True)
    measure = review_loops if args.loop else first_rankings
    results: dict[str, list[dict]] = {}
    for name, images, labels in sources(args.cache):
        if name not in SOURCES:
            continue
        F = model_inputs(images, dict(defaults.FEATURES), args.cache, name)
        gray = images.shape[1] == 1
        rep = dict(defaults.FEATURES_AND_PIXELS if gray else defaults.FEATURES)
        X = np.hstack([F, images.reshape(len(images), -1)]).astype(np.float32) if gray else F.astype(np.float32)
        results[name] = measure(name, images, labels, F, X, rep, args.k, np.random.default_rng(0))
    if args.json:
        args.json.write_text(json.dumps({"date": time.strftime("%Y-%m-%d %H:%M"), "cpu": cpu_name(),
                                         "results": results}, indent=1))


if __name__ == "__main__":
    main()
