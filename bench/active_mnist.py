"""Active learning on MNIST: which query strategy finds the anomalies fastest (issue 4).

Pool: the MNIST training split, digit 0 normal (5,923 images) plus ~10% anomalies drawn from the other
digits (658), nobody labeled. Deep SAD's first fit (AE pretraining + Deep SVDD, since no label exists
yet) is done once and copied for every strategy, so they start from the same model. Then 10 rounds x
20 labels per strategy: query, answer from ground truth, warm-start fine-tune (oversample_labeled=True).
Reported per strategy: anomalies found among the 200 queries, AUC on the unlabeled remainder of the
pool, and AUC on the standard MNIST test split (digit 0 vs the rest, 10,000 images).

    python -m bench.active_mnist --epochs 10 10 2 --json bench/out/active_mnist.json --png bench/out/active_mnist.png
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from bench.protocols import DATA, mnist
from bench.report import cpu_name
from semiad.data import load_mnist
from semiad.detectors import DeepSAD
from semiad.simulate import json_safe, plot_curves, simulate

STRATEGIES = ["top", "mixed", "random", "diverse", "boundary"]


def first_fit(X: np.ndarray, args: argparse.Namespace) -> tuple[DeepSAD, float]:
    """The shared starting model: fitted here, or loaded from --initial if that file exists."""
    det = DeepSAD(pretrain_epochs=args.epochs[0], epochs=args.epochs[1], finetune_epochs=args.epochs[2],
                  finetune_lr=args.finetune_lr, eta=args.eta, oversample_labeled=True, device=args.device,
                  seed=args.seed)
    if args.initial and args.initial.exists():
        loaded = DeepSAD.load(args.initial, device=args.device)
        # Same weights and centre; the loop's settings (fine-tune length, lr, η) come from this run.
        for name in ("finetune_epochs", "finetune_lr", "eta", "oversample_labeled"):
            setattr(loaded, name, getattr(det, name))
        return loaded, 0.0
    start = time.perf_counter()
    det.fit(X, np.zeros(len(X), dtype=np.int64))
    seconds = time.perf_counter() - start
    if args.initial:
        det.save(args.initial)
    return det, seconds


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--strategies", nargs="+", default=STRATEGIES, choices=STRATEGIES)
    ap.add_argument("--normal", type=int, default=0)
    ap.add_argument("--rounds", type=int, default=10)
    ap.add_argument("--batch", type=int, default=20)
    ap.add_argument("--epochs", type=int, nargs=3, default=[10, 10, 2], metavar=("PRETRAIN", "TRAIN", "FINETUNE"),
                    help="first fit: AE pretraining and Deep SAD epochs; then epochs per warm-start fine-tune")
    ap.add_argument("--finetune-lr", type=float, default=1e-4)
    ap.add_argument("--eta", type=float, default=1.0)
    ap.add_argument("--mix", nargs="+", default=[], metavar="STRATEGY=WEIGHT",
                    help="weights of the mixed strategy (default top=0.7 diverse=0.2 random=0.1)")
    ap.add_argument("--no-test", action="store_true", help="skip the MNIST test split (pilot runs on the pool only)")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--initial", type=Path, help="cache of the first fit (loaded if present, else written)")
    ap.add_argument("--png", type=Path, help="write the curves of all strategies here")
    ap.add_argument("--json", type=Path, help="write the figures here as JSON")
    args = ap.parse_args()

    pool = load_mnist(DATA / "mnist", normal=[args.normal], split="train", anomaly_fraction=0.1, seed=args.seed)
    test = None
    if not args.no_test:
        X_test, digits_test = mnist("test")
        test = (X_test, (digits_test != args.normal).astype(np.int8))
    det, fit_s = first_fit(pool.X, args)
    print(f"pool {len(pool)} samples, {int(pool.truth.sum())} anomalies; first fit {fit_s:.0f} s "
          f"({args.epochs[0]}+{args.epochs[1]} epochs), fine-tune {args.epochs[2]} epochs at lr {args.finetune_lr:g}",
          flush=True)

    weights = {k: float(v) for k, v in (item.split("=", 1) for item in args.mix)} or None
    runs, rows = {}, []
    for strategy in args.strategies:
        options = {"weights": weights} if strategy == "mixed" and weights else {}
        name = strategy if not options else "mixed " + "/".join(f"{k}{v:g}" for k, v in weights.items())
        sim = simulate(pool.X, pool.truth, strategy=strategy, strategy_options=options, rounds=args.rounds,
                       batch=args.batch, seed=args.seed, detector=det, test=test, ids=pool.ids, data_name=pool.name,
                       test_every_round=False,
                       log=lambda line, s=name: print(f"  {s:<8} {line}", flush=True))
        runs[name] = sim.rounds
        s = sim.summary
        rows.append({"strategy": name, "weights": options.get("weights"), "labels": s["n_labeled"],
                     "anomalies_found": s["anomalies_found"],
                     "query_precision": round(s["query_precision"], 3),
                     "auc_unlabeled_start": round(100 * s["auc_unlabeled_start"], 2),
                     "auc_unlabeled": round(100 * s["auc_unlabeled"], 2),
                     "auc_test_start": round(100 * s["auc_test_start"], 2) if test else None,
                     "auc_test": round(100 * s["auc_test"], 2) if test else None,
                     "ap_unlabeled": round(100 * s["ap_unlabeled"], 2), "wss_95": round(s["wss_95"], 3),
                     "atd": round(s["atd"], 1), "loop_s": s["total_s"],
                     "rounds": sim.rounds})

        write(args, det, pool, fit_s, rows, runs)  # after each strategy, so a cut-short run keeps its figures

    print()
    head = f"{'strategy':<9} {'labels':>6} {'found':>5} {'prec':>5} {'AUC rest 0→end':>15} {'AUC test 0→end':>15} " \
           f"{'AP rest':>7} {'WSS@95':>6} {'loop s':>6}"
    print(head)
    print("-" * len(head))
    for r in rows:
        test_col = f"{r['auc_test_start']:.2f}→{r['auc_test']:.2f}" if r["auc_test"] is not None else "-"
        print(f"{r['strategy']:<9} {r['labels']:>6} {r['anomalies_found']:>5} {r['query_precision']:>5.3f} "
              f"{r['auc_unlabeled_start']:>6.2f}→{r['auc_unlabeled']:<8.2f} {test_col:>15} "
              f"{r['ap_unlabeled']:>7.2f} {r['wss_95']:>6.3f} {r['loop_s']:>6.0f}")


def write(args: argparse.Namespace, det: DeepSAD, pool, fit_s: float, rows: list[dict], runs: dict) -> None:
    """The JSON figures and the PNG of the curves, for the strategies done so far."""
    device = str(det.device_) if det.device_.type != "cuda" else torch.cuda.get_device_name()
    figures = {
        "normal": args.normal, "pool": len(pool), "pool_anomalies": int(pool.truth.sum()),
        "rounds": args.rounds, "batch": args.batch, "pretrain_epochs": args.epochs[0], "epochs": args.epochs[1],
        "finetune_epochs": args.epochs[2], "finetune_lr": args.finetune_lr, "eta": args.eta, "seed": args.seed,
        "oversample_labeled": True, "first_fit_s": round(fit_s, 1),
        "device": f"{device} ({cpu_name()})" if det.device_.type == "cpu" else device,
        "torch_threads": torch.get_num_threads(), "strategies": rows,
    }
    if args.png:
        plot_curves(runs, args.png,
                    title=f"MNIST digit {args.normal} normal, Deep SAD, {args.rounds}x{args.batch} labels",
                    n_anomalies=int(pool.truth.sum()), n_samples=len(pool))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(json_safe(figures), indent=1))

if __name__ == "__main__":
    main()
