"""Seconds of the default loop's fits on a pool the size of MNIST (70,000 samples), with and without
the pixel view, and with the gray images' first ranking (kNN among the features and among the pixels):
what a Retrain click costs the worker on a large image project, features excluded. The case "table" is
a large table with the tables' defaults (IsolationForest first ranking, raw view): 300,000 rows × 10
columns.

The inputs are random (1280 "features" and 784 "pixels" per sample, float32; the table normal): the
time depends on the shapes, not on the values. Each case: a first fit (the kNN pass over the pool
dominates images), then two warm starts with 20 and 40 labels, as two rounds of review would give.

    python -m bench.fusion_scale [--n 70000] [--table-rows 300000] [--cases ...] [--json out.json]
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from semiad import defaults
from semiad.detectors import Fusion

IMAGE_CASES = {"features": (0, "knn"), "features+pixels": (1280, "knn"),
               "features+pixels, gray first ranking": (1280, "knn+pixels")}


def measure(inputs: np.ndarray, det: Fusion) -> dict[str, float]:
    n = len(inputs)
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
    ap.add_argument("--table-rows", type=int, default=300_000)
    ap.add_argument("--cases", nargs="+", default=[*IMAGE_CASES, "table"], choices=[*IMAGE_CASES, "table"])
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    results, X = {}, None
    for name in args.cases:
        if name == "table":
            inputs = rng.normal(size=(args.table_rows, 10)).astype(np.float32)
            det = Fusion(**defaults.method_params("fusion", "tabular", {"kind": "pixels"}, len(inputs), (10,)))
        else:
            if X is None:  # one draw for the image cases
                X = np.hstack([rng.random((args.n, 1280), dtype=np.float32),
                               rng.random((args.n, 784), dtype=np.float32)])
            columns, prior = IMAGE_CASES[name]
            inputs = X if columns else X[:, :1280]
            det = Fusion(prior=prior, scale="l2", feature_columns=columns)
        results[name] = measure(inputs, det)
        print(name, " ".join(f"{k}={v:.1f}" for k, v in results[name].items()), flush=True)
    if args.json:
        args.json.write_text(json.dumps({"n": args.n, "table_rows": args.table_rows, "date": time.strftime("%Y-%m-%d"),
                                         **results}, indent=1))


if __name__ == "__main__":
    main()
