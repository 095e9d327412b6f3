"""GANomaly on MNIST with the paper's protocol (methods.md §3.6): per-epoch eval-mode test AUC and
seconds per training epoch.

One digit is the anomaly, the nine others are normal. The normals of the train and test splits are
pooled, shuffled with the seed (numpy's legacy shuffle, as the official loader does) and split 80% /
20%; the test set is the 20% plus every image of the anomalous digit from both splits. Scores are
computed in eval mode and never min-max scaled; no epoch is chosen on the test set (pitfalls 9–11).

    python -m bench.ganomaly_mnist --anomaly-digit 0 1 2 3 4 5 6 7 8 9 --epochs 1 --json out.json
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
from sklearn.metrics import roc_auc_score

from bench.protocols import mnist
from semiad.detectors import GANomaly
from semiad.detectors.base import Progress


def leave_one_digit_out(digit: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(train images, test images, test truth 1 = anomalous digit), as lib/data.py
    `get_mnist_anomaly_dataset` of samet-akcay/ganomaly builds them."""
    X_tr, d_tr = mnist("train")
    X_te, d_te = mnist("test")
    normal = np.concatenate([X_tr[d_tr != digit], X_te[d_te != digit]])
    anomalous = np.concatenate([X_tr[d_tr == digit], X_te[d_te == digit]])
    order = np.arange(len(normal))
    np.random.seed(seed)
    np.random.shuffle(order)
    cut = int(len(order) * 0.8)
    X_test = np.concatenate([normal[order[cut:]], anomalous])
    truth = np.concatenate([np.zeros(len(order) - cut), np.ones(len(anomalous))]).astype(np.int64)
    return normal[order[:cut]], X_test, truth


def run(digit: int, epochs: float, batch_size: int, device: str, seed: int, fast: bool,
        precision: str = "fp32") -> dict:
    X_train, X_test, truth = leave_one_digit_out(digit, seed)
    fast_params = {k: v for k, v in GANomaly.FAST.items() if k not in ("steps", "finetune_steps")}
    params = {**(fast_params if fast else {}), "epochs": epochs, "batch_size": batch_size,
              "device": device, "seed": seed, "precision": precision}
    det = GANomaly(**params)
    per_epoch: list[dict] = []
    clock = [0.0]

    def on_progress(p: Progress) -> None:
        if p.epoch % det.steps_per_epoch_ and p.epoch != p.epochs:
            return
        train_s = time.perf_counter() - clock[0]  # training only: the test pass below is not counted
        auc = roc_auc_score(truth, det.decision_function(X_test))
        per_epoch.append({"epoch": round(p.epoch / det.steps_per_epoch_, 3), "auc": round(float(auc), 4),
                          "sec": round(train_s, 2), "loss_g": round(p.loss, 4)})
        print(f"  digit {digit} epoch {per_epoch[-1]['epoch']:g}: AUC {auc:.4f}  train {train_s:.1f} s  "
              f"L_G {p.loss:.3f}", flush=True)
        clock[0] = time.perf_counter()

    clock[0] = time.perf_counter()
    det.fit(X_train, progress=on_progress)
    dev = str(det.device_) + ("" if det.device_.type != "cuda" else f" ({torch.cuda.get_device_name()})")
    return {
        "anomaly_digit": digit, "seed": seed, "epochs": epochs, "batch_size": batch_size, "fast": fast,
        "params": {k: v for k, v in det.get_params().items() if k != "device"},
        "n_train": int(len(X_train)), "n_test": int(len(X_test)), "n_test_anomalous": int(truth.sum()),
        "steps_per_epoch": det.steps_per_epoch_, "d_reinits": det.n_reinit_d_,
        "auc_per_epoch": [e["auc"] for e in per_epoch], "sec_per_epoch": [e["sec"] for e in per_epoch],
        "auc": per_epoch[-1]["auc"], "device": dev, "torch_threads": torch.get_num_threads(),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--anomaly-digit", type=int, nargs="+", default=[0], help="one run per digit")
    ap.add_argument("--epochs", type=float, default=15, help="training epochs (the paper: 15)")
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--fast", action="store_true",
                    help="GANomaly.FAST networks (narrower, nz 32); the length still comes from --epochs")
    ap.add_argument("--precision", choices=["fp32", "bf16"], default="fp32",
                    help="bf16: autocast the training step's forward passes (not the paper's arithmetic)")
    ap.add_argument("--json", type=Path, help="write the figures here as JSON")
    args = ap.parse_args()
    rows = []
    for digit in args.anomaly_digit:
        rows.append(run(digit, args.epochs, args.batch_size, args.device, args.seed, args.fast, args.precision))
    print(f"\nGANomaly, MNIST leave-one-digit-out, seed {args.seed}, {args.epochs:g} epoch(s), batch "
          f"{args.batch_size}{', fast setting' if args.fast else ''}, {args.precision}, eval-mode AUC, "
          f"device {rows[0]['device']}")
    print("| anomalous digit | " + " | ".join(str(r["anomaly_digit"]) for r in rows) + " | mean |")
    print("|---" * (len(rows) + 2) + "|")
    aucs = [r["auc"] for r in rows]
    secs = [float(np.mean(r["sec_per_epoch"])) for r in rows]
    print("| AUC (last epoch) | " + " | ".join(f"{a:.3f}" for a in aucs) + f" | {np.mean(aucs):.3f} |")
    print("| s / training epoch | " + " | ".join(f"{s:.0f}" for s in secs) + f" | {np.mean(secs):.0f} |")
    summary = {"runs": rows, "mean_auc": round(float(np.mean(aucs)), 4),
               "mean_sec_per_epoch": round(float(np.mean(secs)), 2), "device": rows[0]["device"]}
    without_1 = [r["auc"] for r in rows if r["anomaly_digit"] != 1]
    if len(without_1) < len(rows) and without_1:
        summary["mean_auc_without_digit_1"] = round(float(np.mean(without_1)), 4)
        print(f"mean AUC without digit 1: {summary['mean_auc_without_digit_1']:.3f}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
