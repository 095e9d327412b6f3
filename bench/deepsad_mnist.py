"""Deep SAD on MNIST with the paper's protocol (methods.md §2.7): test AUC and seconds per epoch.

    python -m bench.deepsad_mnist --normal 0 --known 1 --gamma-l 0.05 --gamma-p 0.1 --epochs 150 150
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch
from sklearn.metrics import roc_auc_score

from bench.protocols import mnist, semisupervised_setting
from semiad.detectors import DeepSAD


def run(normal: int, known: int, gamma_l: float, gamma_p: float, pretrain_epochs: int, epochs: int,
        device: str, seed: int, batch_size: int = 128) -> dict:
    X_train, d_train = mnist("train")
    X_test, d_test = mnist("test")
    idx, semi = semisupervised_setting(d_train, [normal], [known], 0.0, gamma_l, gamma_p, np.random.default_rng(seed))
    times: dict[str, list[float]] = {"pretrain": [], "train": []}
    last = [time.perf_counter()]

    def clock(p) -> None:
        now = time.perf_counter()
        times[p.phase].append(now - last[0])
        last[0] = now
        if p.epoch % 10 == 0:  # a sign of life on stderr for the long runs
            print(f"  normal {normal}: {p.phase} epoch {p.epoch}/{p.epochs} loss {p.loss:.5f} "
                  f"{times[p.phase][-1]:.2f} s", file=sys.stderr, flush=True)

    det = DeepSAD(pretrain_epochs=pretrain_epochs, epochs=epochs, device=device, seed=seed, batch_size=batch_size)
    start = time.perf_counter()
    det.fit(X_train[idx], semi, progress=clock)
    fit_s = time.perf_counter() - start
    scores = det.decision_function(X_test)
    auc = roc_auc_score((d_test != normal).astype(int), scores)
    return {
        "normal": normal, "known": known, "gamma_l": gamma_l, "gamma_p": gamma_p, "seed": seed,
        "pretrain_epochs": pretrain_epochs, "epochs": epochs, "batch_size": batch_size,
        "n_train": int(len(idx)), "n_labeled_anomalies": int((semi == -1).sum()),
        "auc": round(100 * auc, 2),
        "sec_per_pretrain_epoch": round(float(np.median(times["pretrain"])), 3) if times["pretrain"] else None,
        "sec_per_epoch": round(float(np.median(times["train"])), 3) if times["train"] else None,
        "total_s": round(time.perf_counter() - start, 1), "fit_s": round(fit_s, 1),
        "device": str(det.device_) + ("" if det.device_.type != "cuda" else f" ({torch.cuda.get_device_name()})"),
        "torch_threads": torch.get_num_threads(),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--normal", type=int, nargs="+", default=[0], help="normal class(es); one run each")
    ap.add_argument("--known", type=int, default=None, help="known anomaly class (default: normal+1 mod 10)")
    ap.add_argument("--gamma-l", type=float, default=0.05)
    ap.add_argument("--gamma-p", type=float, default=0.1)
    ap.add_argument("--epochs", type=int, nargs=2, default=[150, 150], metavar=("PRETRAIN", "TRAIN"))
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", type=Path, help="write the figures here as JSON")
    args = ap.parse_args()
    rows = []
    for n in args.normal:
        known = (n + 1) % 10 if args.known is None else args.known
        r = run(n, known, args.gamma_l, args.gamma_p, args.epochs[0], args.epochs[1], args.device, args.seed,
                args.batch_size)
        rows.append(r)
        print(f"normal {n} known {known}: AUC {r['auc']:.2f}  s/pretrain-epoch {r['sec_per_pretrain_epoch']}  "
              f"s/epoch {r['sec_per_epoch']}  total {r['total_s']} s  device {r['device']}", flush=True)
    if len(rows) > 1:
        print(f"mean AUC {np.mean([r['auc'] for r in rows]):.2f} over {len(rows)} configurations")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"runs": rows, "mean_auc": float(np.mean([r["auc"] for r in rows]))}, indent=1))


if __name__ == "__main__":
    main()
