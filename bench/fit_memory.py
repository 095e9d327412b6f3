"""Memory a fit takes beside its inputs, per method: the figures behind each detector's `fit_memory`.

Each measurement runs in a fresh process (the peak resident size only grows): a fresh fit, a warm
start with labels and the embedding, with the app's defaults for the data (one epoch for the deep
methods: memory does not grow with epochs). Prints the peak above the inputs, per input value, and
what the detector's `fit_memory` asks for the same inputs.

    python -m bench.fit_memory --methods fusion deepsad --kind table --rows 400000 --columns 50
"""
from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys

import numpy as np

EPOCH_PARAMS = ("pretrain_epochs", "epochs", "finetune_epochs", "n_epochs", "niter", "steps")


def measure(method: str, kind: str, rows: int, columns: int) -> dict:
    """One method's peak memory above its inputs (run in this process: call it in a fresh one)."""
    import torch

    from semiad import defaults, detectors

    shape = (rows, columns) if kind == "table" else (rows, 1, 28, 28)
    X = torch.as_tensor(np.random.default_rng(0).random(shape, dtype=np.float32))
    torch.ones(8) @ torch.ones(8)  # torch's own start-up memory is not the fit's
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    params = defaults.method_params(method, kind, {"kind": "pixels"}, rows, shape[1:])
    params.update({k: 1 for k in EPOCH_PARAMS if k in params})
    det = detectors.make(method, **params)
    y = np.zeros(rows, dtype=np.int64)
    y[:5], y[5:30] = -1, 1
    det.fit(X)
    det.fit(X, torch.as_tensor(y), warm_start=True)
    det.embed(X)
    used = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base) * 1024  # Linux: kB
    per_value, per_sample = det.fit_memory
    return {"method": method, "kind": kind, "shape": list(shape), "values": int(X.numel()), "used_gb": used / 1e9,
            "bytes_per_value": used / X.numel(), "asked_gb": (per_value * X.numel() + per_sample * rows) / 1e9}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--methods", nargs="+", default=["fusion", "iforest", "knn", "deepsad", "ganomaly", "toll",
                                                       "esad", "ama"])
    ap.add_argument("--kind", choices=("table", "image"), default="table")
    ap.add_argument("--rows", type=int, default=400_000)
    ap.add_argument("--columns", type=int, default=50, help="tables only; images are 28×28 gray")
    ap.add_argument("--one", help=argparse.SUPPRESS)  # internal: measure this method here and print JSON
    args = ap.parse_args(argv)
    if args.one:
        print(json.dumps(measure(args.one, args.kind, args.rows, args.columns)))
        return
    print(f"{'method':9s} {'inputs':>16s} {'peak above inputs':>18s} {'per value':>10s} {'fit_memory asks':>16s}")
    for method in args.methods:
        out = subprocess.run([sys.executable, "-m", "bench.fit_memory", "--one", method, "--kind", args.kind,
                              "--rows", str(args.rows), "--columns", str(args.columns)],
                             capture_output=True, text=True, check=True).stdout
        r = json.loads(out.strip().splitlines()[-1])
        shape = "×".join(map(str, r["shape"]))
        print(f"{method:9s} {shape:>16s} {r['used_gb']:15.2f} GB {r['bytes_per_value']:8.1f} B "
              f"{r['asked_gb']:13.2f} GB", flush=True)


if __name__ == "__main__":
    main()
