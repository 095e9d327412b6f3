"""All five detectors on four ODDS tables with Deep SAD's ODDS protocol (issue 5 item 6; methods.md §2.5, §2.7).

Data: ../shared/data/tabular — arrhythmia (452×274), cardio (1831×21), satellite (6435×36), thyroid
(3772×6); y = 1 marks an anomaly.

Protocol, per dataset and seed (the reference's src/base/odds_dataset.py + src/datasets/odds.py):
- split: normals and anomalies are each split 60/40 train/test with sklearn's train_test_split
  (random_state = seed), so the test set keeps the anomaly ratio;
- scaling: StandardScaler fit on the 60% training split, then MinMaxScaler fit on the standardized
  training split; both applied to the test split;
- training set: γ_l = 0.01, γ_p = 0 (`--gamma-l`, `--gamma-p`), counts solved as in Deep SAD's
  create_semisupervised_setting (bench.protocols.semisupervised_setting): all training normals
  (semi-target 0, unlabeled) plus int(γ_l/(1−γ_l)·n_normal) labeled anomalies (semi-target −1) drawn
  at random from the training anomalies. With γ_p = 0 the unlabeled part holds normals only, so **the
  other training anomalies are dropped** — the reference does the same (it subsets its training set to
  the indices the setting returns). Labeled anomalies per seed: arrhythmia 2, cardio 10, satellite 26,
  thyroid 22;
- test = the 40% split, untouched (no model selection on it); AUC with anomaly = positive class.

What each detector does with the labeled anomalies is its own business (methods.md §0): Deep SAD, ESAD
and AMA use them; GANomaly and Toll drop them and train one-class on the normals. Two extra rows are
not separate methods: `deepsad_gl0` is Deep SAD on the same split without the labeled anomalies (γ_l =
0, i.e. Deep SVDD on clean normals, the paper's Deep SVDD column), and `toll_beta0` is Toll with β = 0
(the same autoencoder without the norm term, methods.md §8.6).

Input scaling, not handled twice in a harmful way: the protocol's scaling above is applied here, and
every detector then fits its own per-column affine scaler on the pool it is given (base.py
`_fit_scaler`: Deep SAD / ESAD standardize then min-max into [0, 1], GANomaly / AMA into [−1, 1]; Toll
z-scores). All of these are per-column affine maps, so the composition is exactly the detector's own
scaler on the fit pool; the only difference from the reference is that the min/max (Deep SAD, ESAD) come
from the fit pool (training normals + labeled anomalies) instead of the whole 60% split including the
dropped anomalies. Test values may fall slightly outside the range, as in the reference.

Budgets are the detectors' own defaults, fixed before any run (no choice by test AUC):
- deepsad: 150 AE + 150 Deep SAD epochs, lr 1e-4 (milestone 50), batch 128, weight decay 0.5e-3 /
  0.5e-6 — the README values methods.md §2.6 says to use for ODDS; MLP sizes of methods.md §2.4;
- ganomaly: tabular MLP variant (experimental, §3.5), 15 epochs, batch 64, nz 100, hidden (128, 64);
- ama: tabular MLP variant (experimental), 100 epochs, batch 256, 5 critic steps, lr ×0.1 at 30/60/90;
- esad: 150 epochs, lr 1e-4 ×0.1 at 50, batch 128 (ours, §5.5; the loss is provisional);
- toll: the arrhythmia README command (β 10, z 16, lr 1e-3, batch 100), 2000 iterations.
Nothing is cut for the CPU: a one-seed pilot on satellite (the largest pool) took under a minute for all
seven rows on the shared 2-core machine, so the full defaults fit the time set for the run (the whole
3-seed run took about 6 minutes; bench/RESULTS.md).

Prints AUC mean ± std over seeds (np.std, ddof 0) per method × dataset and seconds per fit;
`--json PATH` writes the runs, the summary and the protocol. `--device cpu` by default.

    OMP_NUM_THREADS=1 python -m bench.compare_tabular --json bench/out/compare_tabular.json
    python -m bench.compare_tabular --smoke        # seconds-long check that everything runs
"""
from __future__ import annotations

import argparse
import json
import time

import numpy as np
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import MinMaxScaler, StandardScaler

from bench.protocols import DATA, semisupervised_setting
from bench.report import auc_summary
from semiad.detectors import make

TABLES = {"arrhythmia": "arrhythmia.npz", "cardio": "6_cardio.npz", "satellite": "30_satellite.npz",
          "thyroid": "38_thyroid.npz"}

# name → (method, params, drop the labeled anomalies before fit); the params are the defaults
SETUPS: dict[str, tuple[str, dict, bool]] = {
    "deepsad": ("deepsad", {}, False),
    "deepsad_gl0": ("deepsad", {}, True),
    "ganomaly": ("ganomaly", {}, False),
    "ama": ("ama", {}, False),
    "esad": ("esad", {}, False),
    "toll": ("toll", {}, False),
    "toll_beta0": ("toll", {"beta": 0.0}, False),
}
SMOKE: dict[str, dict] = {
    "deepsad": {"pretrain_epochs": 1, "epochs": 1},
    "deepsad_gl0": {"pretrain_epochs": 1, "epochs": 1},
    "ganomaly": {"steps": 2},
    "ama": {"epochs": 1},
    "esad": {"epochs": 1},
    "toll": {"iters": 2},
    "toll_beta0": {"iters": 2},
}

# Deep SAD paper, ODDS, γ_l = 0.01, γ_p = 0, 10 seeds (methods.md §2.7) — [recall], not verified
# against the paper: (Deep SVDD, Deep SAD) AUC % mean, std.
PAPER = {"arrhythmia": ((74.6, 9.0), (75.9, 8.7)), "cardio": ((84.8, 3.6), (95.0, 1.6)),
         "satellite": ((79.8, 4.1), (91.5, 1.1)), "thyroid": ((72.0, 9.7), (98.6, 0.9))}


def load_table(name: str) -> tuple[np.ndarray, np.ndarray]:
    d = np.load(DATA / "tabular" / TABLES[name])
    return d["X"].astype(np.float64), d["y"].astype(np.int64).ravel()


def odds_split(X: np.ndarray, y: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Deep SAD's ODDS split and scaling: (X_train, y_train, X_test, y_test), y 1 = anomaly."""
    parts = [train_test_split(X[y == c], y[y == c], test_size=0.4, random_state=seed) for c in (0, 1)]
    X_train = np.concatenate([parts[0][0], parts[1][0]])
    X_test = np.concatenate([parts[0][1], parts[1][1]])
    y_train = np.concatenate([parts[0][2], parts[1][2]])
    y_test = np.concatenate([parts[0][3], parts[1][3]])
    standard = StandardScaler().fit(X_train)
    minmax = MinMaxScaler().fit(standard.transform(X_train))
    def scale(A: np.ndarray) -> np.ndarray:
        return minmax.transform(standard.transform(A))

    return scale(X_train), y_train, scale(X_test), y_test


def budget(det) -> dict:
    """What the fit ran (steps / epochs), read off the fitted detector."""
    m = det.method
    if m == "deepsad":
        return {"pretrain_epochs": det.pretrain_epochs, "epochs": det.epochs}
    out = {"steps": int(getattr(det, "n_steps_", 0))}
    if m in ("ama", "esad"):
        out["epochs"] = det.epochs
    if m == "toll":
        out.update(beta=det.beta_, z_dim=det.z_dim_, lr=det.lr_, batch_size=det.batch_size_)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--datasets", nargs="+", default=list(TABLES), choices=list(TABLES))
    ap.add_argument("--methods", nargs="+", default=list(SETUPS), choices=list(SETUPS))
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--gamma-l", type=float, default=0.01, help="labeled anomalies / whole training set")
    ap.add_argument("--gamma-p", type=float, default=0.0, help="pollution of the unlabeled part")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--smoke", action="store_true", help="one-step budgets: checks that it runs")
    ap.add_argument("--json", default=None)
    args = ap.parse_args()

    rows, sizes = [], {}
    for ds in args.datasets:
        X_all, y_all = load_table(ds)
        for seed in args.seeds:
            X_train, y_train, X_test, y_test = odds_split(X_all, y_all, seed)
            idx, semi = semisupervised_setting(y_train, [0], [1], 0.0, args.gamma_l, args.gamma_p,
                                               np.random.default_rng(seed))
            X_fit = X_train[idx]
            sizes[ds] = {"features": int(X_all.shape[1]), "train_normals": int((semi == 0).sum()),
                         "train_labeled_anomalies": int((semi == -1).sum()),
                         "train_anomalies_dropped": int(y_train.sum() - (semi == -1).sum()),
                         "test": int(len(y_test)), "test_anomalies": int(y_test.sum())}
            for name in args.methods:
                method, params, drop_labeled = SETUPS[name]
                keep = semi >= 0 if drop_labeled else np.ones(len(semi), bool)
                hyper = {**params, **(SMOKE[name] if args.smoke else {})}
                det = make(method, device=args.device, seed=seed, **hyper)
                t0 = time.perf_counter()
                det.fit(X_fit[keep], semi[keep])
                fit_s = time.perf_counter() - t0
                scores = det.decision_function(X_test)
                auc = float(roc_auc_score(y_test, scores)) if np.isfinite(scores).all() else float("nan")
                rows.append({"method": name, "dataset": ds, "seed": seed, "auc": auc, "fit_seconds": fit_s,
                             "n_fit": int(keep.sum()), "budget": budget(det), "device": str(det.device_)})
                print(f"{ds:10s} {name:11s} seed={seed} AUC {auc:.4f}  fit {fit_s:6.1f} s", flush=True)

    summary = auc_summary(rows, args.methods, "dataset", args.datasets, "fit_seconds")
    cell = {(s["method"], s["dataset"]): s for s in summary}
    print(f"\nODDS, γ_l={args.gamma_l}, γ_p={args.gamma_p}, seeds {args.seeds}: AUC % mean ± std (std over seeds)")
    print(f"{'method':11s} " + " ".join(f"{ds:>13s}" for ds in args.datasets))
    for name in args.methods:
        aucs = [(100 * cell[name, ds]["auc_mean"], 100 * cell[name, ds]["auc_std"]) for ds in args.datasets]
        print(f"{name:11s} " + " ".join(f"{m:6.1f} ± {s:4.1f}" for m, s in aucs))
    print("\nseconds per fit (mean over seeds)")
    print(f"{'method':11s} " + " ".join(f"{ds:>13s}" for ds in args.datasets))
    for name in args.methods:
        print(f"{name:11s} " + " ".join(f"{cell[name, ds]['fit_seconds']:13.1f}" for ds in args.datasets))
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"protocol": vars(args), "sizes": sizes, "paper_recall": PAPER, "runs": rows,
                       "summary": summary}, f, indent=1)


if __name__ == "__main__":
    main()
