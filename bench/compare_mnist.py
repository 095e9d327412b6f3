"""All five detectors on one one-class MNIST protocol (issue 5 item 5; methods.md §2.7 scenario (i)).

Normal class n, the other nine anomalous, γ_p = 0.1 pollution of the unlabeled part, γ_l labeled
anomalies of one known class, fixed epoch budgets (no model selection on the test set), several
seeds; test = the full MNIST test split. Prints AUC mean ± std per method and γ_l, and seconds per
epoch; `--json PATH` writes the same figures. Toll also runs with β = 0 (the same autoencoder
without the norm term, methods.md §8.6).

    python -m bench.compare_mnist --normal 0 --known 1 --seeds 0 1 2 --json bench/out/compare_mnist.json
    python -m bench.compare_mnist --budget cpu --gamma-l 0 --json bench/out/compare_mnist_cpu_gl0.json
    python -m bench.compare_mnist --smoke          # seconds-long check that everything runs
"""
from __future__ import annotations

import argparse
import json
import time

import numpy as np
from sklearn.metrics import roc_auc_score

from bench.protocols import mnist, semisupervised_setting
from bench.report import auc_summary
from semiad.detectors import make

# name → (method, params); the defaults are the paper budgets of methods.md
SETUPS: dict[str, tuple[str, dict]] = {
    "deepsad": ("deepsad", {}),
    "ganomaly": ("ganomaly", {}),
    "ama": ("ama", {}),
    "esad": ("esad", {}),
    "toll": ("toll", {}),
    "toll_beta0": ("toll", {"beta": 0.0}),
}
# CPU budgets, fixed up front from pilot timings (1 thread, 1,024 samples, before any AUC was seen) so
# that one fit takes one to a few minutes on a 2-core machine: each method's fast setting where it has
# one (GANomaly, AMA, Toll), short schedules. Not the papers' budgets: results say so.
CPU: dict[str, dict] = {
    "deepsad": {"pretrain_epochs": 30, "epochs": 30, "milestones": (20,)},
    "ganomaly": {"ngf": 16, "ndf": 16, "nz": 32, "epochs": 10},
    "ama": {"ndf": 8, "gen_ch": 32, "critic_ch": 16, "nz": 32, "epochs": 1},
    "esad": {"epochs": 30, "milestones": (20,)},
    "toll": {"width": 16, "iters": 25},
    "toll_beta0": {"width": 16, "iters": 25},
}
SMOKE: dict[str, dict] = {
    "deepsad": {"pretrain_epochs": 1, "epochs": 1},
    "ganomaly": {"steps": 2, "ngf": 8, "ndf": 8, "nz": 8},
    "ama": {"epochs": 1, "ndf": 4, "gen_ch": 8, "critic_ch": 8, "nz": 8},
    "esad": {"epochs": 1},
    "toll": {"iters": 2, "width": 4},
    "toll_beta0": {"iters": 2, "width": 4},
}


def passes(det, n_train: int) -> float:
    """Epochs (passes over the training pool) a fit ran, to turn fit seconds into seconds per epoch."""
    m = det.method
    if m == "deepsad":
        return det.pretrain_epochs + det.epochs
    if m in ("ganomaly",):
        return det.n_steps_ / max(det.steps_per_epoch_, 1)
    if m == "toll":
        return det.n_steps_ * det.batch_size_ / n_train
    return det.epochs


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--normal", type=int, default=0)
    ap.add_argument("--known", type=int, default=1, help="the known anomaly class")
    ap.add_argument("--gamma-l", type=float, nargs="+", default=[0.0, 0.05])
    ap.add_argument("--gamma-p", type=float, default=0.1)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--methods", nargs="+", default=list(SETUPS))
    ap.add_argument("--device", default="auto")
    ap.add_argument("--budget", choices=["paper", "cpu"], default="paper",
                    help="paper: each method's default (paper) schedule; cpu: the short CPU budgets above")
    ap.add_argument("--smoke", action="store_true", help="tiny subsets and budgets: checks that it runs")
    ap.add_argument("--json", default=None)
    args = ap.parse_args()

    X_train, lab_train = mnist("train")
    X_test, lab_test = mnist("test")
    if args.smoke:
        keep = np.random.default_rng(0).permutation(len(X_test))[:200]
        X_test, lab_test = X_test[keep], lab_test[keep]
    truth = (lab_test != args.normal).astype(int)
    rows = []
    for gamma_l in args.gamma_l:
        for seed in args.seeds:
            rng = np.random.default_rng(seed)
            idx, semi = semisupervised_setting(lab_train, [args.normal], [args.known], 0.0, gamma_l, args.gamma_p, rng)
            if args.smoke:
                pick = rng.permutation(len(idx))[:300]
                idx, semi = idx[pick], semi[pick]
            X = X_train[idx]
            for name in args.methods:
                method, params = SETUPS[name]
                budget = SMOKE[name] if args.smoke else CPU[name] if args.budget == "cpu" else {}
                hyper = {**params, **budget}
                det = make(method, device=args.device, seed=seed, **hyper)
                t0 = time.perf_counter()
                det.fit(X, semi)
                fit_s = time.perf_counter() - t0
                auc = float(roc_auc_score(truth, det.decision_function(X_test)))
                rows.append({"method": name, "gamma_l": gamma_l, "seed": seed, "auc": auc, "fit_seconds": fit_s,
                             "sec_per_epoch": fit_s / max(passes(det, len(X)), 1e-9), "device": str(det.device_)})
                print(f"{name:11s} γ_l={gamma_l:<5} seed={seed} AUC {auc:.4f}  fit {fit_s:.1f} s", flush=True)

    summary = auc_summary(rows, args.methods, "gamma_l", args.gamma_l, "sec_per_epoch")
    print(f"\nMNIST normal={args.normal}, known anomaly={args.known}, γ_p={args.gamma_p}, seeds {args.seeds}")
    print(f"{'method':11s} {'γ_l':>5s} {'AUC mean ± std':>16s} {'s/epoch':>9s}")
    for s in summary:
        print(f"{s['method']:11s} {s['gamma_l']:5.2f} {100 * s['auc_mean']:9.1f} ± {100 * s['auc_std']:4.1f} "
              f"{s['sec_per_epoch']:9.2f}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"protocol": vars(args), "runs": rows, "summary": summary}, f, indent=1)


if __name__ == "__main__":
    main()
