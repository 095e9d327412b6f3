"""Latent map speed on MNIST: UMAP / PCA projection of 10k and 70k latent vectors, and figure size.

The latent vectors are those of a short Deep SAD fit (MNIST protocol: normal digit 0, known anomaly
1, γ_l 0.05, γ_p 0.1; few epochs), embedded for all 70,000 MNIST images (train + test). UMAP times
are taken after `warm_up()` in the same process; the warm-up is reported on its own.

    nice -n 5 python -m bench.embed_speed --epochs 2 2 --json bench/out/embed_speed.json
"""
from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np
import torch

from bench.protocols import mnist, semisupervised_setting
from bench.report import cpu_name, write_json
from semiad.detectors import DeepSAD
from semiad.embed import pca_2d, umap_2d, warm_up
from semiad.latent_plot import center_position, scatter_figure


def latent_vectors(epochs: tuple[int, int], seed: int,
                   cache: Path | None) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict]:
    """(Z for all 70k images before and after a warm-start retrain (2×N×D), scores, digits, facts);
    cached as .npz if asked."""
    if cache is not None and cache.exists():
        d = np.load(cache)
        return d["Z"], d["scores"], d["digits"], json.loads(str(d["facts"]))
    X_train, d_train = mnist("train")
    X_test, d_test = mnist("test")
    idx, semi = semisupervised_setting(d_train, [0], [1], 0.0, 0.05, 0.1, np.random.default_rng(seed))
    det = DeepSAD(pretrain_epochs=epochs[0], epochs=epochs[1], device="cpu", seed=seed)
    t0 = time.perf_counter()
    det.fit(X_train[idx], semi)
    fit_s = time.perf_counter() - t0
    X_all = np.concatenate([X_train, X_test])
    t0 = time.perf_counter()
    Z = det.embed(X_all)
    embed_s = time.perf_counter() - t0
    scores = det.decision_function(X_all)
    # the retrain click: one warm-start epoch with 50 more labeled anomalies (digit 1 from the pool)
    extra = np.flatnonzero((d_train == 1) & ~np.isin(np.arange(len(d_train)), idx))[:50]
    idx2 = np.concatenate([idx, extra])
    semi2 = np.concatenate([semi, -np.ones(len(extra), dtype=semi.dtype)])
    det.finetune_epochs = 1
    det.fit(X_train[idx2], semi2, warm_start=True)
    Z = np.stack([Z, det.embed(X_all)])
    from sklearn.metrics import roc_auc_score
    auc = roc_auc_score((d_test != 0).astype(int), scores[60000:])
    facts = {"fit_samples": int(len(idx)), "pretrain_epochs": epochs[0], "epochs": epochs[1],
             "fit_s": round(fit_s, 1), "embed_70k_s": round(embed_s, 2), "latent_dim": int(Z.shape[2]),
             "test_auc_normal0": round(100 * auc, 2)}
    digits = np.concatenate([d_train, d_test])
    if cache is not None:
        cache.parent.mkdir(parents=True, exist_ok=True)
        np.savez(cache, Z=Z, scores=scores, digits=digits, facts=json.dumps(facts))
    return Z, scores, digits, facts


def layout_error(a: np.ndarray, b: np.ndarray) -> float:
    """RMS distance between two maps of the same samples after centring, relative to b's RMS radius."""
    a, b = a - a.mean(axis=0), b - b.mean(axis=0)
    return float(np.sqrt(((a - b) ** 2).sum(axis=1).mean() / (b ** 2).sum(axis=1).mean()))


def scaled(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """a with b's centre and RMS spread, as umap_2d(init=b) returns its maps: what the expert sees."""
    ac, bc = a - a.mean(axis=0), b - b.mean(axis=0)
    return ac * np.sqrt((bc ** 2).sum() / (ac ** 2).sum()) + b.mean(axis=0)


def similar(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """a rotated / mirrored, scaled and shifted to fit b best (orthogonal Procrustes): a map made
    without init= gets every chance to match the old one before it is compared."""
    ac, bc = a - a.mean(axis=0), b - b.mean(axis=0)
    u, sv, vt = np.linalg.svd(ac.T @ bc)
    rot = u @ vt
    return (ac @ rot) * (sv.sum() / (ac ** 2).sum()) + b.mean(axis=0)


CPU_SECONDS: dict[str, float] = {}  # CPU time of the last timed call, all threads of this process


def timed(fn, *args, **kwargs):
    """(result, wall seconds); the process CPU seconds go to CPU_SECONDS["last"]. On a shared
    machine wall time grows with other people's load; CPU time much less so."""
    t0, c0 = time.perf_counter(), time.process_time()
    out = fn(*args, **kwargs)
    CPU_SECONDS["last"] = time.process_time() - c0
    return out, time.perf_counter() - t0


def cpu() -> float:
    return round(CPU_SECONDS["last"], 1)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--epochs", type=int, nargs=2, default=[2, 2], metavar=("PRETRAIN", "TRAIN"))
    ap.add_argument("--sizes", type=int, nargs="+", default=[10_000, 70_000])
    ap.add_argument("--fresh-up-to", type=int, default=10_000,
                    help="also refit the retrained model's map without init= up to this size, for comparison")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--latent-cache", type=Path, help="reuse / store the latent vectors here (.npz)")
    ap.add_argument("--json", type=Path, help="write the figures here as JSON")
    args = ap.parse_args()

    t_import = time.perf_counter()
    Z_both, scores_all, _, facts = latent_vectors(tuple(args.epochs), args.seed, args.latent_cache)
    Z_all, Z_retrained = Z_both
    print(f"latent vectors: {Z_all.shape} from Deep SAD {facts}; load average {os.getloadavg()[0]:.1f}", flush=True)
    cpu0 = time.process_time()
    warm_s = warm_up()
    warm_cpu_s = round(time.process_time() - cpu0, 1)
    print(f"warm_up(): {warm_s:.1f} s wall, {warm_cpu_s} s CPU", flush=True)

    rng = np.random.default_rng(args.seed)
    ids_all = [f"mnist-{i:05d}" for i in range(len(Z_all))]
    rows = []
    for n in args.sizes:
        take = np.sort(rng.choice(len(Z_all), size=n, replace=False)) if n < len(Z_all) else np.arange(len(Z_all))
        Z, scores, ids = Z_all[take], scores_all[take], [ids_all[i] for i in take]
        _, pca_s = timed(pca_2d, Z)
        coords, umap_s = timed(umap_2d, Z)
        row_extra = {"umap_cpu_s": cpu()}
        if n == args.sizes[0]:  # the same fit again: any gap to the first is compilation warm_up missed
            _, again_s = timed(umap_2d, Z)
            row_extra.update(umap_repeat_s=round(again_s, 1), umap_repeat_cpu_s=cpu())
        # after the retrain: the new model's latent vectors, mapped seeded with the old map
        after, umap_init_s = timed(umap_2d, Z_retrained[take], init=coords)
        row_extra.update(umap_init_refit_cpu_s=cpu(), layout_error_init=round(layout_error(after, coords), 3))
        if n <= args.fresh_up_to:
            fresh, fresh_s = timed(umap_2d, Z_retrained[take])
            row_extra.update(umap_fresh_refit_s=round(fresh_s, 1),
                             layout_error_fresh=round(layout_error(scaled(fresh, coords), coords), 3),
                             layout_error_fresh_best_turn=round(layout_error(similar(fresh, coords), coords), 3))
        labels = np.zeros(n, dtype=int)
        labels[np.argsort(-scores)[:200]] = -1  # as if the expert had labeled the top 200
        labels[np.argsort(scores)[:100]] = 1
        row = {"n": n, "pca_s": round(pca_s, 3), "umap_s": round(umap_s, 1), "umap_init_refit_s": round(umap_init_s, 1),
               **row_extra}
        for max_points in (50_000, n):
            (fig, info), build_s = timed(scatter_figure, coords, ids, "score", scores=scores, labels=labels,
                                         center=center_position(coords, scores), max_points=max_points)
            payload, json_s = timed(fig.to_json)
            tag = "all" if max_points == n else "cap50k"
            row.update({f"fig_{tag}_points": info.drawn, f"fig_{tag}_build_s": round(build_s, 2),
                        f"fig_{tag}_json_s": round(json_s, 2), f"fig_{tag}_json_mb": round(len(payload) / 1e6, 2)})
            if n <= 50_000:
                break
        rows.append(row)
        print(json.dumps(row), flush=True)

    print("\nseconds wall (CPU seconds of this process, all threads, in brackets)")
    print(f"{'points':>7} {'PCA s':>7} {'UMAP s':>14} {'UMAP init= s':>14} {'drawn':>7} {'fig build s':>12} "
          f"{'to_json s':>10} {'JSON MB':>8}")
    for r in rows:
        for tag in ("cap50k", "all"):
            if f"fig_{tag}_points" not in r:
                continue
            umap = f"{r['umap_s']} ({r['umap_cpu_s']})"
            init = f"{r['umap_init_refit_s']} ({r['umap_init_refit_cpu_s']})"
            print(f"{r['n']:>7} {r['pca_s']:>7} {umap:>14} {init:>14} "
                  f"{r[f'fig_{tag}_points']:>7} {r[f'fig_{tag}_build_s']:>12} {r[f'fig_{tag}_json_s']:>10} "
                  f"{r[f'fig_{tag}_json_mb']:>8}")
    print("\nafter a warm-start retrain (layout error: RMS shift / RMS radius of the old map; 0 = unchanged)")
    for r in rows:
        fresh = (f"; without init= {r['umap_fresh_refit_s']} s, error {r['layout_error_fresh']} as drawn, "
                 f"{r['layout_error_fresh_best_turn']} even after the best rotation/mirror") \
            if "layout_error_fresh" in r else ""
        print(f"{r['n']:>7}: with init= {r['umap_init_refit_s']} s, error {r['layout_error_init']}{fresh}")
    first = rows[0]
    if "umap_repeat_s" in first:
        print(f"same {first['n']}-point UMAP fit again: {first['umap_repeat_s']} s "
              f"({first['umap_repeat_cpu_s']} CPU s)")
    result = {"device": cpu_name(), "load_avg_1min_end": round(os.getloadavg()[0], 1), "cpu_count": os.cpu_count(),
              "torch_threads": torch.get_num_threads(),
              "latent": facts, "warm_up_s": round(warm_s, 1), "warm_up_cpu_s": warm_cpu_s, "runs": rows,
              "total_s": round(time.perf_counter() - t_import, 1)}
    print(f"\nwarm-up {result['warm_up_s']} s; device {result['device']}; load average at the end "
          f"{result['load_avg_1min_end']} on {result['cpu_count']} CPUs (shared machine); total {result['total_s']} s")
    write_json(args.json, result)


if __name__ == "__main__":
    main()
