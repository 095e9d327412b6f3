"""Anomalies found per review: semiad's default loop beside what a user could build without it (issue 14).

In one run, per data set, side by side:
- **semiad**: the app's default loop (semiad.defaults: the representation for the data and the
  `fusion` detector), replayed by `semiad.simulate` with an oracle: first fit with no labels, then
  10 rounds, each reviewing the top 20 unlabeled samples and warm-start refitting on the labels
  (`--strategy` picks another of `semiad.query`'s strategies for this loop, e.g. top-audit);
- **iforest**: IsolationForest's static ranking (scikit-learn defaults), reviewed top down;
- **pca**: PCA's static ranking (squared reconstruction error, components explaining 90% of the
  variance), reviewed top down;
- **logistic**: the loop a user would write in thirty lines, exactly as the issue describes it: review
  IsolationForest's top 20, then each round fit a class-balanced LogisticRegression on PCA(50) of the
  labeled samples (PCA fitted on every sample; min(50, D) components for narrower tables) and review
  its top 20 unlabeled; while the labels hold one class only, IsolationForest's ranking stays.
Inputs: for tables every loop sees the columns. For images semiad's default sees what
`semiad.defaults` gives it (gray images: pretrained features and the pixels side by side, representation
"features+pixels"; colour images: the features alone), the baselines see the features, and with
`--baseline-pixels` they also run on the raw pixels (and, for two views, IsolationForest on exactly
semiad's input): the best of them all is the bar.

Data sets (11): scikit-learn's bundled digits (normal 0, 10% others); MNIST train split with normal
class 0, 3 and 7 (others drawn to 10%); the four ODDS tables in shared/data/tabular; CIFAR-10 pools
from shared/data/cifar10 (the 4000-image subset) with normal class airplane (0), cat (3) and ship (8),
others drawn to 10%. The classes were fixed before any run.

Figures per set and loop: anomalies found after 50, 100 and 200 reviews, AUC of the first ranking
(before any label, on every sample), AUC of the final ranking on the samples still unlabeled, and
seconds per loop (the feature extraction is reported apart: it runs once per set and is cached;
`--no-cache` to redo it).
With `--seeds S` every loop runs S times (model seeds 0..S−1 on the same pool, drawn with seed 0) and
the table shows means.

    python -m bench.label_efficiency                       # all sets, 1 seed
    python -m bench.label_efficiency --sets digits cardio --seeds 3 --json out.json
    python -m bench.label_efficiency --dev --seeds 2 --baseline-pixels   # the pools the defaults were chosen on
    python -m bench.label_efficiency --dev tables --seeds 3             # only the tables among them
    python -m bench.label_efficiency --sets cifar-gray-deer --seeds 3   # one of the gray-photo pools
    python -m bench.label_efficiency --dev --seeds 2 --strategy top-audit  # another review strategy
    python -m bench.label_efficiency --noise 0.02 --seeds 3 --baseline-pixels  # an expert who slips once in 50
    python -m bench.label_efficiency --markdown out.json                # RESULTS.md's tables from a run
"""
from __future__ import annotations

import argparse
import json
import time
from functools import partial
from pathlib import Path
from typing import Any, Callable

import numpy as np

from bench import protocols
from semiad import data, defaults, query, represent
from semiad.cli import key_values
from semiad.metrics import roc_auc

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
DEFAULT_CACHE = Path("/tmp/semiad-bench-cache")  # --cache's default: features computed once per pool
ROUNDS, BATCH, MARKS = 10, 20, (50, 100, 200)
CIFAR_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
CIFAR_NAMES = {c: CIFAR_CLASSES[c] for c in (0, 3, 8)}  # the bench's three normal classes


# ----- data ------------------------------------------------------------------------------------

def luma(images: np.ndarray) -> np.ndarray:
    """N×3×H×W colour images in [0, 1] as N×1×H×W gray (ITU-R 601 luma)."""
    return np.tensordot(np.array([0.299, 0.587, 0.114], np.float32), images, axes=(0, 1))[:, None]


def cifar_pool(normal: int | tuple[int, ...], seed: int, anomaly_fraction: float = 0.1,
               gray: bool = False) -> data.SampleSet:
    """CIFAR-10 normal class(es) of the 4000-image subset plus other classes drawn to `anomaly_fraction`
    (`gray`: the photos in ITU-R 601 luma, one channel)."""
    d = np.load(SHARED / "cifar10" / "cifar10_train_subset.npz", allow_pickle=False)
    images, labels = d["images"], d["labels"]
    normal = (normal,) if isinstance(normal, int) else tuple(normal)
    keep = data._one_vs_rest(images, labels, normal, anomaly_fraction, seed)
    X = images[keep].transpose(0, 3, 1, 2).astype(np.float32) / 255.0
    if gray:
        X = luma(X)
    return data.SampleSet(ids=[f"cifar-{i}" for i in keep], X=X, kind="image",
                          name="CIFAR-10 normal " + "+".join(CIFAR_CLASSES[c] for c in normal),
                          truth=(~np.isin(labels[keep], normal)).astype(np.int8))


SETS: dict[str, Callable[[int], data.SampleSet]] = {
    "digits": lambda seed: data.load_digits(seed=seed),
    **{f"mnist-{c}": (lambda seed, c=c: data.load_mnist(SHARED / "mnist", normal=(c,), split="train", seed=seed))
       for c in (0, 3, 7)},
    **{name: (lambda seed, file=file: data.load_npz(SHARED / "tabular" / f"{file}.npz"))
       for name, file in (("arrhythmia", "arrhythmia"), ("cardio", "6_cardio"), ("thyroid", "38_thyroid"),
                          ("satellite", "30_satellite"))},
    **{f"cifar-{CIFAR_NAMES[c]}": (lambda seed, c=c: cifar_pool(c, seed)) for c in CIFAR_NAMES},
}
# Pools the sets above never use, on which session 5 chose the gray first ranking and the colour
# representation (`--dev`): the MNIST test split and the other CIFAR-10 classes, one normal class (10%
# others) or three (5% others).
MULTI = ((1, 2, 4), (5, 6, 9), (0, 3, 8))
DEV_SETS: dict[str, Callable[[int], data.SampleSet]] = {
    **{f"mnist-test-{c}": (lambda seed, c=c: data.load_mnist(SHARED / "mnist", normal=(c,), split="test", seed=seed))
       for c in (1, 2, 4, 5, 6, 8, 9)},
    **{"mnist-test-" + "".join(map(str, cs)): (lambda seed, cs=cs: data.load_mnist(
        SHARED / "mnist", normal=cs, split="test", anomaly_fraction=0.05, seed=seed)) for cs in MULTI},
    **{f"cifar-{CIFAR_CLASSES[c]}": (lambda seed, c=c: cifar_pool(c, seed)) for c in (1, 2, 4, 5, 6, 7, 9)},
    **{"cifar-" + "+".join(CIFAR_CLASSES[c] for c in cs): (lambda seed, cs=cs: cifar_pool(cs, seed, 0.05))
       for cs in MULTI},
}


def table_pool(name: str, X: np.ndarray, labels: np.ndarray, normal: tuple[int, ...], seed: int,
               anomaly_fraction: float = 0.1) -> data.SampleSet:
    """A table: every row of the normal class(es) plus rows of the others drawn to `anomaly_fraction`."""
    keep = data._one_vs_rest(X, labels, normal, anomaly_fraction, seed)
    return data.SampleSet(ids=[f"row-{i}" for i in keep], X=X[keep].astype(np.float32), kind="tabular", name=name,
                          truth=(~np.isin(labels[keep], normal)).astype(np.int8))


def _sklearn_table(loader: str) -> tuple[np.ndarray, np.ndarray]:
    from sklearn import datasets

    d = getattr(datasets, loader)()
    return d.data.astype(np.float64), d.target


def _mnist_test_table() -> tuple[np.ndarray, np.ndarray]:
    images, labels = protocols.mnist("test")
    return images.reshape(len(images), -1), labels


def _zero_vs_six() -> tuple[np.ndarray, np.ndarray]:
    X, labels = _mnist_test_table()
    keep = np.isin(labels, (0, 6))
    return X[keep], labels[keep]


# Tables the bench never uses (session 6; the loop variants for tables tried then, none adopted, ran on
# them): scikit-learn's bundled breast cancer (benign normal), wine (class 0 normal) and digits as 64
# columns, and the MNIST test split as 784 columns (like ODDS' "mnist"), where IsolationForest's first
# ranking is weak and a static PCA ranking strong.
DEV_TABLES: dict[str, Callable[[int], data.SampleSet]] = {
    "table-breast-cancer": lambda seed: table_pool("breast cancer, benign normal", *_sklearn_table(
        "load_breast_cancer"), (1,), seed),
    "table-wine": lambda seed: table_pool("wine, class 0 normal", *_sklearn_table("load_wine"), (0,), seed),
    **{f"table-digits-{c}": (lambda seed, c=c: table_pool(f"digits as a table, normal {c}",
                                                          *_sklearn_table("load_digits"), (c,), seed))
       for c in (1, 4, 8)},
    "table-digits-0-6": lambda seed: table_pool("digits as a table, normal 0-6", *_sklearn_table("load_digits"),
                                                tuple(range(7)), seed, 0.05),
    **{f"table-mnist-test-{c}": (lambda seed, c=c: table_pool(f"MNIST test as a table, normal {c}",
                                                              *_mnist_test_table(), (c,), seed)) for c in (2, 5)},
    "table-mnist-test-0v6": lambda seed: table_pool("MNIST test 0 (normal) and 6 as a table",
                                                    *_zero_vs_six(), (0,), seed, 0.09),
}


def clustered_table(seed: int, n_normal: int = 45_600, per_cluster: int = 700) -> data.SampleSet:
    """A synthetic table shaped like ODDS' shuttle (session 8): 9 columns in one unit, rounded;
    normals in four heavy-tailed clusters, anomalies (7% at the defaults) in five tight ones. There
    IsolationForest alone ranks almost perfectly (the issue's 49k-row table: 198 of its top 200), so
    the loop must keep following it."""
    rng = np.random.default_rng(seed)
    normal = np.concatenate([c + 0.6 * rng.standard_t(3, (n_normal // 4, 9)) for c in rng.normal(0, 3, (4, 9))])
    anomalous = np.concatenate([c + rng.normal(0, 1.0, (per_cluster, 9)) for c in rng.normal(0, 3, (5, 9))])
    X = np.round(np.concatenate([normal, anomalous]) * 10).astype(np.float32)
    return data.SampleSet(ids=[f"row-{i}" for i in range(len(X))], X=X, kind="tabular",
                          name="synthetic clusters (shuttle-like)",
                          truth=np.r_[np.zeros(len(normal)), np.ones(len(anomalous))].astype(np.int8))


def feature_table(normal: int, seed: int) -> data.SampleSet:
    """A CIFAR-10 pool's pretrained features given as a table (session 9): how ADBench gives its image and
    text sets, embeddings as columns. semiad sees a table; its vector gate (Fusion) should see feature
    vectors. The features are the image pool's own (cached in DEFAULT_CACHE under the same name)."""
    pool = cifar_pool(normal, seed)
    F = model_inputs(pool.X, dict(defaults.FEATURES), DEFAULT_CACHE, f"cifar-{CIFAR_CLASSES[normal]}-seed{seed}")
    return data.SampleSet(ids=pool.ids, X=np.asarray(F, dtype=np.float32), kind="tabular",
                          name=pool.name + ", features as a table", truth=pool.truth)


DEV_TABLES["table-synthetic-clusters"] = clustered_table
FEATURE_TABLES = {f"table-cifar-features-{CIFAR_CLASSES[c]}": (lambda seed, c=c: feature_table(c, seed))
                  for c in range(10)}
DEV_SETS.update(DEV_TABLES)
DEV_SETS.update(FEATURE_TABLES)
# Gray photos (session 6): every CIFAR-10 class as the normal one, in gray, where the gray rule's pixel
# view is no help; a check of the default on the kind of gray images it was not chosen for.
DEV_SETS.update({f"cifar-gray-{CIFAR_CLASSES[c]}": (lambda seed, c=c: cifar_pool(c, seed, gray=True))
                 for c in range(10)})


def inputs(samples: data.SampleSet, name: str, seed: int, cache: Path | None) -> tuple[np.ndarray, dict, float]:
    """What the detectors see for this set under semiad's defaults, and the seconds it took."""
    rep = defaults.representation_for(samples.kind, defaults.DEFAULT_METHOD, samples.X.shape[1:])
    start = time.perf_counter()
    if not represent.uses_features(rep):
        return samples.X, rep, 0.0
    X = model_inputs(samples.X, rep, cache, f"{name}-seed{seed}")
    return X, rep, time.perf_counter() - start


def model_inputs(images: np.ndarray, rep: dict, cache: Path | None, stem: str) -> np.ndarray:
    """The detector inputs of these images under `rep`; the features cached in the folder `cache`
    (None: computed afresh and not cached)."""
    path = None if cache is None else cache / f"{stem}-{rep['backbone']}-{rep['size']}.npy"
    return represent.model_inputs(images, rep, cache_path=path, device="cpu")


# ----- the loops -------------------------------------------------------------------------------

def rows(X: np.ndarray) -> np.ndarray:
    return X.reshape(len(X), -1).astype(np.float64)


def iforest_scores(X: np.ndarray, seed: int) -> np.ndarray:
    from sklearn.ensemble import IsolationForest

    return -IsolationForest(random_state=seed).fit(X).score_samples(X)


def pca_scores(X: np.ndarray, seed: int) -> np.ndarray:
    from sklearn.decomposition import PCA

    pca = PCA(n_components=0.9, random_state=seed).fit(X)
    return ((X - pca.inverse_transform(pca.transform(X))) ** 2).sum(axis=1)


def review(next_scores: Callable[[np.ndarray], np.ndarray], truth: np.ndarray) -> dict[str, Any]:
    """ROUNDS × BATCH reviews of the top unlabeled samples; `next_scores(reviewed indices)` gives the
    ranking after each round (called with none first)."""
    reviewed: list[int] = []
    scores = next_scores(np.array([], dtype=int))
    first = roc_auc(truth, scores)
    for _ in range(ROUNDS):
        left = np.setdiff1d(np.arange(len(truth)), reviewed)
        reviewed += [int(i) for i in left[np.argsort(-scores[left], kind="stable")[:BATCH]]]
        scores = next_scores(np.array(reviewed))
    return summary(truth, reviewed, scores, first)


def summary(truth: np.ndarray, reviewed: list[int], scores: np.ndarray, first: float) -> dict[str, Any]:
    hits = truth[np.array(reviewed)]
    rest = np.setdiff1d(np.arange(len(truth)), reviewed)
    out = {f"found_{m}": int(hits[:m].sum()) for m in MARKS}
    out.update(auc_first=first, auc_final=roc_auc(truth[rest], scores[rest]))
    return out


def static_loop(scores: np.ndarray, truth: np.ndarray) -> dict[str, Any]:
    return review(lambda reviewed: scores, truth)


def logistic_loop(X: np.ndarray, truth: np.ndarray, seed: int, said: np.ndarray | None = None) -> dict[str, Any]:
    """IsolationForest's top first, then a class-balanced logistic regression on PCA(50) of the labeled
    samples; `said`: the labels the expert gives (default: the ground truth)."""
    from sklearn.decomposition import PCA
    from sklearn.linear_model import LogisticRegression

    said = truth if said is None else said
    first = iforest_scores(X, seed)
    Z = PCA(n_components=min(50, X.shape[1], len(X) - 1), random_state=seed).fit_transform(X)

    def next_scores(reviewed: np.ndarray) -> np.ndarray:
        if len(np.unique(said[reviewed])) < 2:
            return first
        model = LogisticRegression(class_weight="balanced", max_iter=1000).fit(Z[reviewed], said[reviewed])
        return model.predict_proba(Z)[:, 1]

    return review(next_scores, truth)


def slips(truth: np.ndarray, rate: float, seed: int) -> np.ndarray:
    """What an expert who gives the wrong label on a share `rate` of the samples says (1 = anomaly); one
    draw per seed, so a sample shown twice gets the same answer."""
    return truth ^ (np.random.default_rng([seed, 1]).random(len(truth)) < rate).astype(truth.dtype)


def semiad_params(samples: data.SampleSet, rep: dict, n: int, seed: int,
                  overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """The app's default detector settings for this set (as a new project gets them), seeded."""
    return {"seed": seed, **defaults.method_params(defaults.DEFAULT_METHOD, samples.kind, rep, n,
                                                   tuple(samples.X.shape[1:])), **(overrides or {})}


def semiad_loop(X: np.ndarray, truth: np.ndarray, samples: data.SampleSet, rep: dict, seed: int,
                strategy: str = defaults.DEFAULT_STRATEGY, overrides: dict[str, Any] | None = None,
                said: np.ndarray | None = None) -> dict[str, Any]:
    from semiad.simulate import simulate

    params = semiad_params(samples, rep, len(X), seed, overrides)
    sim = simulate(X, truth, method=defaults.DEFAULT_METHOD, strategy=strategy, rounds=ROUNDS,
                   batch=BATCH, seed=seed, params=params, answers=said)
    reviewed = [q["index"] for q in sim.queries]
    return {**{f"found_{m}": int(truth[reviewed[:m]].sum()) for m in MARKS},
            "auc_first": sim.rounds[0]["auc_unlabeled"], "auc_final": _nan(sim.summary["auc_unlabeled"])}


def _nan(v: float | None) -> float:
    return float("nan") if v is None else float(v)


# ----- CIFAR-10 one-class: fit on an unlabeled pool, score images it never saw -------------------

def cifar_one_class(cache: Path | None, seed: int = 0, log: Callable[[str], None] = print) -> dict[str, Any]:
    """For each class c: the pool is a random half of class c plus other-class images making up 10% of
    the pool (no labels); semiad's default detector for images is fitted on it; the AUC is measured on
    the images it never saw: the other half of class c (normal) and every other-class image not in the
    pool (anomalous)."""
    from semiad.detectors import make

    d = np.load(SHARED / "cifar10" / "cifar10_train_subset.npz", allow_pickle=False)
    images, labels = d["images"].transpose(0, 3, 1, 2).astype(np.float32) / 255.0, d["labels"]
    rep = defaults.representation_for("image", defaults.DEFAULT_METHOD, images.shape[1:])
    start = time.perf_counter()
    F = model_inputs(images, rep, cache, "cifar-all")
    feat_s = time.perf_counter() - start
    rng = np.random.default_rng(seed)
    aucs = {}
    for c in range(10):
        own = rng.permutation(np.flatnonzero(labels == c))
        half = own[: len(own) // 2]
        n_other = int(round(len(half) * 0.1 / 0.9))
        others = rng.choice(np.flatnonzero(labels != c), size=n_other, replace=False)
        pool = np.concatenate([half, others])
        test = np.setdiff1d(np.arange(len(labels)), pool)
        det = make(defaults.DEFAULT_METHOD, seed=seed, **defaults.method_params(defaults.DEFAULT_METHOD, "image", rep))
        det.fit(F[pool])
        aucs[c] = roc_auc((labels[test] != c).astype(int), det.decision_function(F[test]))
        log(f"one-class {c}: pool {len(pool)} ({n_other} others), test {len(test)}, AUC {aucs[c]:.3f}")
    return {"auc": aucs, "mean_auc": float(np.mean(list(aucs.values()))), "feature_seconds": feat_s}


# ----- the table -------------------------------------------------------------------------------

def _static(scores_of: Callable[[np.ndarray, int], np.ndarray], R: np.ndarray, seed: int,
            truth: np.ndarray) -> dict[str, Any]:
    """A baseline that never retrains: its scores (computed inside the timed call), reviewed top down."""
    return static_loop(scores_of(R, seed), truth)


def run_set(name: str, seeds: int, cache: Path | None, pixels: bool, log: Callable[[str], None],
            strategy: str = defaults.DEFAULT_STRATEGY, overrides: dict[str, Any] | None = None,
            noise: float = 0.0) -> dict[str, Any]:
    """Every loop on one set, `seeds` times. `noise`: the share of samples on which the expert gives the
    wrong label (drawn per seed; the loops that learn from labels get those, finds count the truth)."""
    per_seed: dict[str, list[dict[str, Any]]] = {}
    info: dict[str, Any] = {}
    samples = {**SETS, **DEV_SETS}[name](0)  # one pool per set (its features are computed once); seeds vary the models
    truth = samples.truth.astype(np.int64)
    X, rep, feat_s = inputs(samples, name, 0, cache)
    R = rows(X[:, :represent.feature_dims(rep)] if rep["kind"] == "features+pixels" else X)  # the baselines' inputs
    for seed in range(seeds):
        said = slips(truth, noise, seed)
        info = {"n": len(truth), "anomalies": int(truth.sum()), "kind": samples.kind, "representation": rep["kind"],
                "feature_seconds": feat_s}
        loops: dict[str, Callable[[], dict[str, Any]]] = {
            "semiad": partial(semiad_loop, X, truth, samples, rep, seed, strategy, overrides, said),
            "iforest": partial(_static, iforest_scores, R, seed, truth),
            "pca": partial(_static, pca_scores, R, seed, truth),
            "logistic": partial(logistic_loop, R, truth, seed, said),
        }
        if pixels and represent.uses_features(rep):
            P = rows(samples.X)
            loops.update({"iforest (pixels)": partial(_static, iforest_scores, P, seed, truth),
                          "pca (pixels)": partial(_static, pca_scores, P, seed, truth),
                          "logistic (pixels)": partial(logistic_loop, P, truth, seed, said)})
            if rep["kind"] == "features+pixels":  # exactly what semiad sees, features then pixels
                loops["iforest (features+pixels)"] = partial(_static, iforest_scores, rows(X), seed, truth)
        for loop, fn in loops.items():
            start = time.perf_counter()
            result = fn()
            result["seconds"] = time.perf_counter() - start
            per_seed.setdefault(loop, []).append(result)
            log(f"{name} seed {seed} {loop}: " + " ".join(f"{k}={_fmt(v)}" for k, v in result.items()))
    means = {loop: {k: float(np.nanmean([r[k] for r in rs])) for k in rs[0]} for loop, rs in per_seed.items()}
    return {**info, "loops": means, "per_seed": per_seed}


def verdict(result: dict[str, Any]) -> dict[str, bool]:
    """The issue's targets for one set: semiad's finds at 100 and 200 reviews ≥ the best baseline's, and
    its first-ranking AUC ≥ IsolationForest's − 0.01 (on the same inputs)."""
    loops = result["loops"]
    ours = loops["semiad"]
    base = [v for k, v in loops.items() if k != "semiad"]
    return {"found_100": ours["found_100"] >= max(b["found_100"] for b in base),
            "found_200": ours["found_200"] >= max(b["found_200"] for b in base),
            "auc_first": ours["auc_first"] >= loops["iforest"]["auc_first"] - 0.01}


def markdown(results: dict[str, Any]) -> str:
    """RESULTS.md's two tables for these sets: every loop's figures, then the targets per set."""
    lines = ["| set (n, anomalies, semiad sees) | loop | found @50 | @100 | @200 | AUC first | AUC final (unlabeled) "
             "| s / run |", "|---|---|---|---|---|---|---|---|"]
    for name, res in results.items():
        for i, (loop, m) in enumerate(res["loops"].items()):
            head = f"{name} ({res['n']}, {res['anomalies']}, {res['representation']})" if i == 0 else ""
            lines.append(f"| {head} | {'**semiad**' if loop == 'semiad' else loop} | {m['found_50']:.1f} | "
                         f"{m['found_100']:.1f} | {m['found_200']:.1f} | {_fmt(m['auc_first'])} | "
                         f"{_fmt(m['auc_final'])} | {m['seconds']:.1f} |")
    lines += ["", "| set | @100 ≥ best baseline | @200 ≥ best baseline | first AUC ≥ IF − 0.01 |", "|---|---|---|---|"]
    for name, res in results.items():
        loops, met = res["loops"], verdict(res)
        cells = []
        for mark in (100, 200):
            best = max((v[f"found_{mark}"], k) for k, v in loops.items() if k != "semiad")
            ours = loops["semiad"][f"found_{mark}"]
            cells.append(f"{'yes' if met[f'found_{mark}'] else '**no**'} ({ours:.1f} vs {best[0]:.1f}, {best[1]})")
        first = (loops["semiad"]["auc_first"], loops["iforest"]["auc_first"])
        cells.append(f"{'yes' if met['auc_first'] else '**no**'} ({first[0]:.3f} vs {first[1]:.3f})")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return "-" if not np.isfinite(v) else (f"{v:.3f}" if abs(v) < 2 else f"{v:.1f}")
    return str(v)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sets", nargs="+", default=list(SETS), choices=list(SETS) + list(DEV_SETS))
    ap.add_argument("--dev", nargs="?", const="all", choices=("all", "images", "tables"),
                    help="run the pools the defaults were chosen on (DEV_SETS; tables: DEV_TABLES and FEATURE_TABLES)")
    ap.add_argument("--seeds", type=int, default=1)
    ap.add_argument("--cache", type=Path, default=DEFAULT_CACHE,
                    help="folder for cached image features (default /tmp/semiad-bench-cache)")
    ap.add_argument("--no-cache", action="store_true", help="recompute image features")
    ap.add_argument("--baseline-pixels", action="store_true", help="also run the baselines on raw pixels")
    ap.add_argument("--one-class", action="store_true",
                    help="only the CIFAR-10 one-class check (fit on an unlabeled pool, score unseen images)")
    ap.add_argument("--strategy", default=defaults.DEFAULT_STRATEGY, choices=list(query.STRATEGIES),
                    help=f"semiad's query strategy (default {defaults.DEFAULT_STRATEGY}, the app's)")
    ap.add_argument("--set", nargs="+", default=[], metavar="KEY=VALUE",
                    help="override a setting of semiad's detector (e.g. k=100), as `python -m semiad --set`")
    ap.add_argument("--noise", type=float, default=0.0, metavar="RATE",
                    help="the expert gives the wrong label on this share of the samples (default 0)")
    ap.add_argument("--json", type=Path)
    ap.add_argument("--markdown", type=Path, metavar="JSON",
                    help="only print RESULTS.md's tables for the sets in a --json file of an earlier run")
    args = ap.parse_args()
    if args.markdown:
        print(markdown(json.loads(args.markdown.read_text())["sets"]))
        return
    import torch

    if args.one_class:
        res = cifar_one_class(None if args.no_cache else args.cache)
        print(f"CIFAR-10 one-class, mean AUC over the ten classes: {res['mean_auc']:.3f}")
        if args.json:
            args.json.write_text(json.dumps({"device": "cpu", "date": time.strftime("%Y-%m-%d"), **res}, indent=1))
        return
    overrides = key_values(args.set)
    results = {}
    tables = [*DEV_TABLES, *FEATURE_TABLES]
    dev = {"all": list(DEV_SETS), "tables": tables, "images": [n for n in DEV_SETS if n not in tables]}
    for name in dev[args.dev] if args.dev else args.sets:
        results[name] = run_set(name, args.seeds, None if args.no_cache else args.cache, args.baseline_pixels,
                                lambda line: print(line, flush=True), args.strategy, overrides, args.noise)
        results[name]["targets_met"] = verdict(results[name])
    print(f"\n{'set':<16}{'loop':<20}{'@50':>7}{'@100':>7}{'@200':>7}{'AUC first':>11}{'AUC final':>11}{'s':>8}")
    for name, res in results.items():
        for loop, m in res["loops"].items():
            print(f"{name:<16}{loop:<20}{m['found_50']:>7.1f}{m['found_100']:>7.1f}{m['found_200']:>7.1f}"
                  f"{_fmt(m['auc_first']):>11}{_fmt(m['auc_final']):>11}{m['seconds']:>8.1f}")
        print(f"{'':<16}targets met: {res['targets_met']}  ({res['n']} samples, {res['anomalies']} anomalies, "
              f"{res['representation']}; features {res['feature_seconds']:.0f} s, cached after the first run)")
    if args.json:
        out = {"device": "cpu", "threads": torch.get_num_threads(), "seeds": args.seeds, "strategy": args.strategy,
               "overrides": overrides, "noise": args.noise,
               "date": time.strftime("%Y-%m-%d"), "sets": results}
        args.json.write_text(json.dumps(out, indent=1, default=float))


if __name__ == "__main__":
    main()
