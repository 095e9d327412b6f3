"""Seconds of the default loop's fits on a pool the size of MNIST (70,000 samples), with and without
the pixel view, and with the gray images' first ranking (kNN among the features and among the pixels):
what a Retrain click costs the worker on a large image project, features excluded.

The inputs are random (1280 "features" and 784 "pixels" per sample, float32): the time depends on the
shapes, not on the values. Each case: a first fit (the kNN pass over the pool dominates), then two
warm starts with 20 and 40 labels, as two rounds of review would give.

    python -m bench.fusion_scale [--n 70000] [--json out.json]
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from semiad.detectors import Fusion


def measure(n: int, feature_columns: int, X: np.ndarray, prior: str = "knn") -> dict[str, float]:
    inputs = X if feature_columns else X[:, :1280]
    det = Fusion(prior=prior, scale="l2", feature_columns=feature_columns)
    out = {}
    start = time.perf_counter()
    det.fit(inputs)
    out["first_fit_s"] = time.perf_counter() - start
    y = np.zeros(n, dtype=int)
    for round_ in (1, 2):
        y[(round_ - 1) * 20:(round_ - 1) * 20 + 10] = -1
        y[(round_ - 1) * 20 + 10:round_ * 20] = 1
        start = time.perf_counter()
        det.fit(inputs, y, warm_start=True)
        out[f"warm_start_{round_}_s"] = time.perf_counter() - start
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=70_000)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    X = np.hstack([rng.random((args.n, 1280), dtype=np.float32), rng.random((args.n, 784), dtype=np.float32)])
    results = {}
    for name, columns, prior in (("features", 0, "knn"), ("features+pixels", 1280, "knn"),
                                 ("features+pixels, gray first ranking", 1280, "knn+pixels")):
        results[name] = measure(args.n, columns, X, prior)
        print(name, " ".join(f"{k}={v:.1f}" for k, v in results[name].items()), flush=True)
    if args.json:
        args.json.write_text(json.dumps({"n": args.n, "date": time.strftime("%Y-%m-%d"), **results}, indent=1))


if __name__ == "__main__":
    main()
