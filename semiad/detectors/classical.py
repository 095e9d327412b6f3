"""Classical detectors beside the deep ones, and semiad's default loop (`Fusion`).

- `IsolationForest` (Liu et al., ICDM 2008) and `KNN` (distance to the k nearest neighbours,
  Ramaswamy et al., SIGMOD 2000; on pretrained image features Bergman et al. 2020) are the
  unsupervised rankings a user would try first, with the same interface as the deep detectors.
- `Fusion` is the app's default loop: a classical first ranking, then after every round of labels
  a few scorers trained on those labels, weighted by how well each ranked the expert's newest batch.

Library: scikit-learn fits the forests, the PCA and the logistic regressions. It is already a
dependency, well kept, and PyOD's own IForest wraps the same class; PyOD would add a dependency for
nothing we need. A model file holds plain arrays only (forest nodes, reference points, weights), so
loading never unpickles, and one numpy/torch scoring path serves a model just fitted and one loaded.
"""
from __future__ import annotations

from collections.abc import Container
from typing import Any, ClassVar

import numpy as np
import torch

from semiad.detectors.base import BaseDetector, Param, Progress, ProgressFn, arguments

# ----- pieces: an input space, a forest, a neighbour score, logistic scorers -------------------


def _as_rows(X: torch.Tensor) -> np.ndarray:
    """Model inputs (N×D or N×C×H×W tensor) as float64 rows."""
    return X.detach().cpu().reshape(len(X), -1).numpy().astype(np.float64)


def fit_space(rows: np.ndarray, scale: str, n_components: int, seed: int | None) -> dict[str, np.ndarray]:
    """Scaling then PCA to at most `n_components` dimensions; the arrays that `to_space` needs.

    scale: "standard" (per column z-score: tables), "l2" (unit-length rows: pretrained features,
    where distances mean cosine) or "none" (pixels, whose near-constant border would explode).
    """
    from sklearn.decomposition import PCA

    if scale not in ("standard", "l2", "none"):
        raise ValueError(f"scale must be standard, l2 or none, got {scale!r}")
    space = {"mean": np.zeros(rows.shape[1]), "std": np.ones(rows.shape[1]), "l2": np.array(scale == "l2")}
    if scale == "standard":
        std = rows.std(axis=0)
        space.update(mean=rows.mean(axis=0), std=np.where(std > 0, std, 1.0))
    scaled = _scaled(rows, space)
    k = int(min(n_components, scaled.shape[1], max(len(scaled) - 1, 1)))
    pca = PCA(n_components=k, svd_solver="randomized" if min(scaled.shape) > 200 else "full",
              random_state=None if seed is None else seed).fit(scaled)
    space.update(pca_mean=pca.mean_, components=pca.components_)
    return space


def _scaled(rows: np.ndarray, space: dict[str, np.ndarray]) -> np.ndarray:
    # scale "none" stores mean 0 and std 1: skip two passes over a 70k-image pool
    plain = not space["mean"].any() and bool((space["std"] == 1).all())
    out = rows if plain else (rows - space["mean"]) / space["std"]
    if bool(space["l2"]):
        out = out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)
    return out


def to_space(rows: np.ndarray, space: dict[str, np.ndarray]) -> np.ndarray:
    return (_scaled(rows, space) - space["pca_mean"]) @ space["components"].T


def _avg_path(n: np.ndarray) -> np.ndarray:
    """c(n): the mean depth of an unsuccessful search in a binary tree of n points (the IF paper)."""
    n = np.asarray(n, dtype=np.float64)
    out = np.zeros_like(n)
    out[n == 2] = 1.0
    big = n > 2
    out[big] = 2.0 * (np.log(n[big] - 1.0) + np.euler_gamma) - 2.0 * (n[big] - 1.0) / n[big]
    return out


def fit_forest(rows: np.ndarray, n_estimators: int, seed: int | None,
               pool: np.ndarray | None = None) -> tuple[dict[str, np.ndarray], np.ndarray | None]:
    """scikit-learn's IsolationForest, exported as padded node arrays (T × nodes) for `forest_score`,
    and the scores of `pool` (if given) by scikit-learn's own walk: the same numbers as `forest_score`
    gives, 5× faster on 300k rows, and a retrain refits and rescores the whole pool."""
    from sklearn.ensemble import IsolationForest as SkForest

    forest = SkForest(n_estimators=n_estimators, random_state=seed).fit(rows.astype(np.float32))
    pool_scores = None if pool is None else -forest.score_samples(pool.astype(np.float32))
    trees = [e.tree_ for e in forest.estimators_]
    width = max(t.node_count for t in trees)
    shape = (len(trees), width)
    left, right = np.full(shape, -1, np.int64), np.full(shape, -1, np.int64)
    feature, threshold, value = np.zeros(shape, np.int64), np.zeros(shape), np.zeros(shape)
    for t, (tree, feats) in enumerate(zip(trees, forest.estimators_features_)):
        n = tree.node_count
        left[t, :n], right[t, :n] = tree.children_left, tree.children_right
        feature[t, :n] = np.asarray(feats)[np.maximum(tree.feature, 0)]
        threshold[t, :n] = tree.threshold
        # the path length credited at a leaf: depth + c(leaf size), in scikit-learn's own arithmetic
        # (depths from 1, then − 1), so that `forest_score` equals its scores to the last bit
        value[t, :n] = tree.compute_node_depths() + _avg_path(tree.n_node_samples) - 1.0
    norm = max(_avg_path(np.array([forest.max_samples_]))[0], 1.0)  # c(ψ) is 0 for a pool of one
    return {"left": left, "right": right, "feature": feature, "threshold": threshold, "value": value,
            "norm": np.array(norm)}, pool_scores


def forest_score(rows: np.ndarray, forest: dict[str, np.ndarray], chunk: int = 4096) -> np.ndarray:
    """IsolationForest anomaly score 2^(−E[h(x)]/c(ψ)) in (0, 1], higher = more anomalous
    (equals −sklearn's score_samples, summed tree by tree in its order)."""
    x32 = rows.astype(np.float32).astype(np.float64)  # sklearn compares float32 inputs to the thresholds
    left, right, feat, thr, val = (forest[k] for k in ("left", "right", "feature", "threshold", "value"))
    trees = np.arange(left.shape[0])[None, :]
    denominator = left.shape[0] * float(forest["norm"])
    out = np.empty(len(rows))
    for a in range(0, len(rows), chunk):
        x = x32[a:a + chunk]
        node = np.zeros((len(x), left.shape[0]), np.int64)
        while True:
            inner = left[trees, node] >= 0
            if not inner.any():
                break
            go_left = np.take_along_axis(x, feat[trees, node], axis=1) <= thr[trees, node]
            node = np.where(inner, np.where(go_left, left[trees, node], right[trees, node]), node)
        paths = val[trees, node]
        depths = np.zeros(len(x))
        for t in range(paths.shape[1]):
            depths += paths[:, t]
        out[a:a + chunk] = 2.0 ** (-(depths / denominator))
    return out


def knn_score(Z: np.ndarray, reference: np.ndarray, k: int, chunk: int = 1024) -> np.ndarray:
    """Mean Euclidean distance to the k nearest reference points. A point's own copy in the
    reference (distance ≈ 0) is not its neighbour, so a pool sample scores as a new sample would.

    Distances come from one float32 matrix product per chunk (relative error ~1e-7, far below any
    gap a ranking depends on); only the nearest candidate is measured again exactly (float64
    differences), so the own-copy test does not depend on rounding. That keeps a large k as cheap
    as a small one: the cost is the product, not the k neighbours."""
    ref32 = torch.as_tensor(reference, dtype=torch.float32)
    ref_sq = (ref32 ** 2).sum(1)
    kk = min(k + 1, len(ref32))
    out = np.empty(len(Z))
    for a in range(0, len(Z), chunk):
        q = torch.as_tensor(Z[a:a + chunk], dtype=torch.float32)
        d2 = (q ** 2).sum(1, keepdim=True) + ref_sq[None, :] - 2.0 * q @ ref32.T
        vals, near = d2.topk(kk, largest=False)  # ascending
        dist = vals.clamp_min(0.0).double().sqrt()
        dist[:, 0] = (q.double() - ref32[near[:, 0]].double()).norm(dim=1)
        self_copy = dist[:, :1] <= 1e-9 * (1.0 + q.double().norm(dim=1, keepdim=True))
        kept = torch.where(self_copy, dist[:, 1:kk], dist[:, :kk - 1]) if kk > k else dist
        out[a:a + chunk] = kept[:, :k].mean(dim=1).numpy()
    return out


def not_anomalous(y: np.ndarray) -> np.ndarray:
    """Mask of the samples that describe the data for a forest or kNN: those not labeled anomalous,
    or every sample when all of them are."""
    keep = y != -1
    return keep if keep.any() else np.ones_like(keep)


def reference_points(scaled: np.ndarray, y: np.ndarray, max_reference: int, seed: int | None) -> np.ndarray:
    """The kNN neighbours: the samples `not_anomalous` picks, or a seeded draw of `max_reference`."""
    pool = np.flatnonzero(not_anomalous(y))
    if len(pool) > max_reference:
        pool = np.sort(np.random.default_rng(seed).choice(pool, max_reference, replace=False))
    return scaled[pool].astype(np.float32)


def robust_scale(pool_scores: np.ndarray) -> np.ndarray:
    """(median, interquartile range) of a scorer's pool scores: the `robust_z` scale."""
    q1, median, q3 = np.percentile(pool_scores, [25, 50, 75])
    return np.array([median, max(q3 - q1, 1e-12)])


def robust_z(values: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """How many interquartile ranges above the pool's median: puts first-ranking scorers on one scale
    whose top keeps its spread (unlike a percentile), so the larger of two z-scores follows the scorer
    that finds a sample most out of place."""
    return (values - scale[0]) / scale[1]


def ecdf(values: np.ndarray, sorted_pool: np.ndarray) -> np.ndarray:
    """Where each value falls among the pool's scores at fit time, in [0, 1]: puts scorers on one
    scale without depending on the batch a sample is scored in."""
    if len(sorted_pool) < 2:
        return np.full(len(values), 0.5)
    return np.interp(values, sorted_pool, np.linspace(0.0, 1.0, len(sorted_pool)))


def logistic(F: np.ndarray, target: np.ndarray, weight: np.ndarray | None, C: float = 1.0,
             balanced: bool = False) -> dict[str, np.ndarray]:
    """A logistic regression's weights (coef, intercept); scores are F @ coef + intercept."""
    from sklearn.linear_model import LogisticRegression

    model = LogisticRegression(C=C, max_iter=1000, class_weight="balanced" if balanced else None)
    model.fit(F, target, sample_weight=weight)
    return {"coef": model.coef_[0].astype(np.float64), "intercept": model.intercept_.astype(np.float64)}


def fit_kernel(Z: np.ndarray, n_landmarks: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Nyström features of an RBF kernel (γ = 1/(d·Var Z)) on landmark rows of Z."""
    marks = Z[rng.choice(len(Z), size=min(n_landmarks, len(Z)), replace=False)]
    gamma = 1.0 / (Z.shape[1] * max(float(Z.var()), 1e-12))
    K = np.exp(-gamma * _sqdist(marks, marks))
    U, S, Vt = np.linalg.svd(K)  # K^(−1/2) by SVD: LAPACK's eigh crawls on this near-singular K
    return {"landmarks": marks, "gamma": np.array(gamma), "map": U / np.sqrt(np.maximum(S, 1e-12)) @ Vt}


def kernel_features(Z: np.ndarray, kernel: dict[str, np.ndarray]) -> np.ndarray:
    return np.exp(-float(kernel["gamma"]) * _sqdist(Z, kernel["landmarks"])) @ kernel["map"].T


def background_share(pixels: np.ndarray, max_rows: int = 2000) -> float:
    """Share of the pixels (of up to `max_rows` images) within 0.05 of the most common pixel value:
    high for strokes or scans on a plain background (MNIST 0.77–0.89, digits 0.33–0.46), low for
    photos (CIFAR-10 in gray 0.03–0.19)."""
    P = np.asarray(pixels[:max_rows], dtype=np.float64)
    counts, edges = np.histogram(P, bins=100, range=(float(P.min()), float(P.max()) + 1e-9))
    mode = 0.5 * (edges[np.argmax(counts)] + edges[np.argmax(counts) + 1])
    return float(np.mean(np.abs(P - mode) <= 0.05))


def looks_like_feature_vectors(rows: np.ndarray, max_rows: int = 2000) -> bool:
    """Whether a table's columns look like a network's feature vectors (embeddings of images or text):
    at least `VECTOR_COLUMNS` columns, nearly all of them continuous (many distinct values) and real-
    valued. Measured tables of measurements (ODDS) have fewer columns, or integer or one-hot ones."""
    R = np.asarray(rows[:max_rows], dtype=np.float64)
    if R.ndim != 2 or R.shape[1] < VECTOR_COLUMNS:
        return False
    distinct = np.array([len(np.unique(column)) for column in R.T])
    continuous = float(np.mean(distinct >= min(0.5 * len(R), 100)))
    return continuous >= VECTOR_CONTINUOUS and float(np.mean(R != np.round(R))) >= 0.5


def _reconstruction_error(rows: np.ndarray, space: dict[str, np.ndarray], k: int) -> np.ndarray:
    """Squared distance of each row from its projection on the space's k leading components."""
    P = space["components"][:k]
    x = _scaled(rows, space) - space["pca_mean"]
    # |x − x̂|² = |x|² − |x Pᵀ|² for orthonormal rows P: no N×D reconstruction
    return np.maximum(np.einsum("ij,ij->i", x, x) - ((x @ P.T) ** 2).sum(axis=1), 0.0)


def _sqdist(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.maximum((a ** 2).sum(1)[:, None] + (b ** 2).sum(1)[None, :] - 2.0 * a @ b.T, 0.0)


def _arrays_to_tensors(d: dict[str, Any]) -> dict[str, Any]:
    return {k: (_arrays_to_tensors(v) if isinstance(v, dict) else torch.as_tensor(np.asarray(v)))
            for k, v in d.items()}


def _tensors_to_arrays(d: dict[str, Any]) -> dict[str, Any]:
    return {k: (_tensors_to_arrays(v) if isinstance(v, dict) else v.numpy()) for k, v in d.items()}


# ----- the detectors ---------------------------------------------------------------------------


class _Classical(BaseDetector):
    """Shared by the classical detectors: rows in, an input space for the embedding, no torch nets."""

    input_range: ClassVar[tuple[float, float]] = (0.0, 1.0)
    trains_network: ClassVar[bool] = False
    # float64 copies of the rows and the PCA fits; per sample, each scorer's pool scores
    fit_memory: ClassVar[tuple[float, float]] = (50.0, 1000.0)

    @classmethod
    def app_defaults(cls, kind: str = "image", n_samples: int = 0, input_shape: tuple[int, ...] = (1, 28, 28),
                     representation: dict[str, Any] | None = None) -> dict[str, Any]:
        """First ranking and scaling for the data they will see (semiad.defaults.classical_params)."""
        from semiad import defaults

        rep = representation or defaults.representation_for(kind, cls.method, input_shape)
        hyper = super().app_defaults(kind, n_samples, input_shape, rep)
        hyper.update(defaults.classical_params(cls.method, kind, rep, input_shape))
        return hyper

    def _fit_scaler(self, X: np.ndarray) -> None:
        self.scaler_ = {}  # inputs as given: `scale` decides (z-score, unit length or none)

    def _build(self) -> None:
        self.state_: dict[str, Any] = {}

    def _modules(self) -> dict[str, torch.nn.Module]:
        return {}

    def _extra_state(self) -> dict[str, Any]:
        return _arrays_to_tensors(self.state_)

    def _set_extra_state(self, extra: dict[str, Any]) -> None:
        self.state_ = _tensors_to_arrays(extra)

    def _split(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """(the columns the input space is fitted on, a second view or None): one view here."""
        return rows, None

    def _embed(self, X: torch.Tensor) -> torch.Tensor:
        return torch.as_tensor(to_space(self._split(_as_rows(X))[0], self.state_["space"]), dtype=torch.float32)

    def _score(self, X: torch.Tensor) -> torch.Tensor:
        return torch.as_tensor(self._score_rows(_as_rows(X)))

    def _score_rows(self, rows: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def _setting(self, name: str) -> Any:
        """A constructor setting as this model uses it (Fusion: see `vector_gate`)."""
        return getattr(self, name)

    def _training_scores(self, X: np.ndarray) -> np.ndarray:
        # a fit that already scored its pool leaves `_fit_scores`: no second pass over 70k images
        scores = self.__dict__.pop("_fit_scores", None)
        if scores is None:
            return super()._training_scores(X)
        return np.asarray(scores, dtype=np.float32).astype(np.float64)  # as decision_function rounds them

    def _fit_space(self, rows: np.ndarray, warm: bool) -> None:
        if not warm:
            self.state_["space"] = fit_space(rows, self._setting("scale"), self.n_components, self.seed)


class IsolationForest(_Classical):
    """Isolation Forest (scikit-learn), score 2^(−E[h(x)]/c(ψ)): higher = isolated sooner.

    Labels: samples labeled anomalous (y=−1) are left out of the forest's fit, so the forest
    describes the rest; labeled normals and unlabeled samples are fitted alike. Warm start refits
    the forest with the current labels (it is cheap). Embedding: PCA of the scaled inputs.
    """

    method = "iforest"
    display_name = "IsolationForest"
    app_settings = (Param("n_estimators", "Trees", 100, "", 10, 10_000),)

    def __init__(self, n_estimators: int = 100, scale: str = "standard", n_components: int = 50,
                 device: str = "cpu", seed: int | None = 0, contamination: float = 0.1) -> None:
        super().__init__(**arguments(locals()))

    def _fit(self, X: torch.Tensor, y: torch.Tensor, warm_start: bool, report: ProgressFn) -> None:
        rows = _as_rows(X)
        self._fit_space(rows, warm_start)
        keep = not_anomalous(y.cpu().numpy())
        self.state_["forest"], self._fit_scores = fit_forest(rows[keep], self.n_estimators, self.seed, pool=rows)
        report(Progress("fitted", 1, 1, None, 1.0))

    def _score_rows(self, rows: np.ndarray) -> np.ndarray:
        return forest_score(rows, self.state_["forest"])


class KNN(_Classical):
    """Mean distance to the k nearest neighbours in the scaled input space (all dimensions).

    Labels: the neighbours are the unlabeled and labeled-normal samples (up to `max_reference`
    of them, a seeded draw); labeled anomalies are never a neighbour. Warm start re-draws the
    neighbours with the current labels. Embedding: the same PCA space.
    """

    method = "knn"
    display_name = "kNN distance"
    app_settings = (Param("k", "k nearest neighbours", 10, "", 1, 1000),)

    def __init__(self, k: int = 10, max_reference: int = 10_000, scale: str = "standard",
                 n_components: int = 50, device: str = "cpu", seed: int | None = 0,
                 contamination: float = 0.1) -> None:
        super().__init__(**arguments(locals()))

    def _fit(self, X: torch.Tensor, y: torch.Tensor, warm_start: bool, report: ProgressFn) -> None:
        rows = _as_rows(X)
        self._fit_space(rows, warm_start)
        self.state_["reference"] = reference_points(_scaled(rows, self.state_["space"]), y.cpu().numpy(),
                                                    self.max_reference, self.seed)
        report(Progress("fitted", 1, 1, None, 1.0))

    def _score_rows(self, rows: np.ndarray) -> np.ndarray:
        return knn_score(_scaled(rows, self.state_["space"]), self.state_["reference"], self.k)


LABEL_SCORERS = ("linear", "kernel", "labeled")
PRIORS = ("iforest", "knn", "iforest+knn", "knn+pixels")
PIXEL_COMPONENTS = 10  # the pixel view's reconstruction error: a coarse model of the typical image
PLAIN_BACKGROUND = 0.25  # prior "knn+pixels" lets the pixels in when at least this share is plain background
RAW_VARIANCE = 0.9  # the raw view's reconstruction error keeps the components explaining this share
RAW_MAX_COMPONENTS = 256  # ... or at most this many (a bound on the cost for very wide tables)
KERNEL_CHUNK = 50_000  # rows scored at once by the RBF scorers (their features take ~2.4 kB a row)
VECTOR_COLUMNS = 128  # `looks_like_feature_vectors`: embeddings have 128-2048 columns, ODDS tables fewer
VECTOR_CONTINUOUS = 0.8  # ... and this share of them continuous at least
AS_FEATURE_VECTORS = {"prior": "knn", "scale": "l2", "raw_view": False}  # what image features get


class Fusion(_Classical):
    """semiad's default loop: a classical first ranking, then scorers trained on the expert's labels,
    each weighted by how well it ranked the expert's newest batch.

    Before any anomaly is labeled the score is the prior: IsolationForest (`prior="iforest"`), kNN
    distance (`"knn"`), both (`"iforest+knn"`), or, with two views, the kNN distance among the features
    and among the pixels (`"knn+pixels"`; the pixels join only when at least `PLAIN_BACKGROUND` of them
    are plain background, as for strokes or scans: in photos their distances rank near chance). Several
    parts are put on one scale by `robust_z` (pool median and interquartile range) and the prior is their
    maximum: a sample far out in either view ranks high.
    Once at least one anomaly is labeled, these scorers are fitted on the labels and enter beside the prior:
      - "linear": logistic regression on the PCA space; labeled anomalies (weight 1 in all) against
        labeled normals (0.5) and unlabeled samples from the prior's lower half (0.5; at most
        `max_negatives`, a seeded draw), which are almost all normal: so the scorer learns what sets
        the found anomalies apart from the bulk, not only from the few normals labeled near the top;
      - "kernel": the same on RBF Nyström features (`n_landmarks` landmarks), for shapes a plane
        cannot cut;
      - "labeled": class-balanced logistic regression on the labeled samples alone (needs both
        classes) — the learner of the plain "logistic loop" users would build themselves.
    Every scorer is put on one scale by its percentile among the pool's scores at fit time, and the
    score is the weighted mean of the percentiles. Weights (a Hedge rule): at each warm start the
    previous model's scorers are first graded on the labels that are new since then, by their AUC
    among those samples (which the loop showed because they ranked high: so the grade measures how
    well a scorer sorts the top of the list, which is what the expert sees next); a scorer's weight
    is exp(`eta` · Σ (AUC − 0.5)), normalised. Until a batch holds both classes, batches of anomalies
    alone are graded by their AUC against the pool (mostly normal), so a first ranking that keeps
    finding keeps its lead; batches of normals alone are not graded. Scorers with no grade yet (those
    that joined since the last batch) share the weight of one scorer with an even record, however many
    they are: three to seven join with the first anomaly, and at a weight each they outvoted a first
    ranking whose batches had all been anomalies (small tables, bench/RESULTS.md, session 14).

    Two views (images, representation "features+pixels"): with `feature_columns` = n > 0 the first n
    input columns are pretrained features and the rest are the image's pixels. The embedding uses the
    features alone, and so does the first ranking unless `prior` is "knn+pixels" (the default for gray
    images: `semiad.defaults`). Once an anomaly is labeled, the three label scorers are also
    fitted on the features' PCA space joined with the pixels' PCA space (scaled to the same total
    variance; names "linear+pixels" and so on), and "pixels" joins: the pixels' reconstruction error
    from their `PIXEL_COMPONENTS` leading principal components. The Hedge then follows whichever view
    ranks the expert's batches better: small gray images (digits, strokes) are often told apart by
    their pixels, natural photos by their features.

    Raw view (tables, `raw_view=True`, the default for them: `semiad.defaults`): the columns as they are,
    beside the z-scored space. Tables come in units that differ per column (z-scoring is right) or in one
    unit throughout (pixels, counts: the raw scale carries the signal), and the data do not say which.
    So once an anomaly is labeled two scorers on the raw columns join: "pca", the reconstruction error
    from the principal components explaining `RAW_VARIANCE` of the variance (the static PCA ranking a
    user would try), and "labeled+raw", the class-balanced logistic regression on the labeled samples in
    the raw columns' PCA space (the user's own logistic loop). The Hedge then follows whichever space
    ranks the expert's batches better; the loop holds every ranking a user would build without semiad.

    Feature vectors (tables, `vector_gate=True`, the default for them): a table whose columns look like
    a network's feature vectors (`looks_like_feature_vectors`: embeddings of images or text, as ADBench
    gives its image and text sets) is ranked and learned as image features are (`AS_FEATURE_VECTORS`:
    kNN first ranking on unit-length rows, no raw view), whatever `prior`, `scale` and `raw_view` say;
    decided once per model, on its first pool. Measured in bench/RESULTS.md (session 9).

    Labels: y=−1 positive class of the label scorers, never a forest point and, at a first fit, never
    a kNN neighbour; y=+1 negative class; y=0 unlabeled (prior, pseudo-negatives). Warm start on the
    same pool refits the forest and the label scorers and their weights, and keeps the kNN part of the
    first ranking (its pass over the pool is the slow part on 70k images); the hedge needs the pool's
    order to know which labels are new, so another pool refits everything and resets the weights.
    Embedding: the PCA space of the features.
    """

    method = "fusion"
    display_name = "Fusion (default: classical ranking + your labels)"
    app_settings = (
        Param("prior", "First ranking", "iforest",
              "before any label: IsolationForest (tables), kNN distance (image features), both, or kNN "
              "among the features and among the pixels (gray images)",
              options=PRIORS),
        Param("eta", "η (how fast the weights follow each scorer's record)", 4.0, "Hedge rate", 0.0, 100.0,
              warm=True),
        Param("k", "k nearest neighbours", 10,
              "kNN first ranking. Raise it (100) when the anomalies may be many of one kind: a group of "
              "similar anomalies larger than k are each other's neighbours and look typical", 1, 1000),
        Param("n_estimators", "Trees", 100, "IsolationForest first ranking", 10, 10_000),
        Param("max_negatives", "Unlabeled counter-examples per fit", 5000,
              "drawn from the lower half of the first ranking", 10, 1_000_000, warm=True),
        Param("vector_gate", "Feature-vector tables as image features", False,
              "tables: when the columns look like a network's feature vectors (128 or more continuous, "
              "real-valued columns), rank and learn them as image features are (kNN on unit-length rows) "
              "instead of as measurements; on for tables, decided at a fresh fit"),
    )

    def __init__(self, prior: str = "iforest", scale: str = "standard", n_components: int = 50,
                 n_estimators: int = 100, k: int = 10, max_reference: int = 10_000, max_negatives: int = 5000,
                 n_landmarks: int = 300, kernel_scale: float = 10.0, C: float = 1.0, eta: float = 4.0,
                 feature_columns: int = 0, raw_view: bool = False, vector_gate: bool = False, device: str = "cpu",
                 seed: int | None = 0, contamination: float = 0.1) -> None:
        super().__init__(**arguments(locals()))

    def _setting(self, name: str) -> Any:
        if name in AS_FEATURE_VECTORS and self.treated_as_feature_vectors():
            return AS_FEATURE_VECTORS[name]
        return getattr(self, name)

    def treated_as_feature_vectors(self) -> bool:
        """Whether `vector_gate` found the table's columns to be feature vectors (see the class docstring)."""
        return bool(self.state_.get("feature_vectors", False))

    # -- views and spaces ----------------------------------------------------------------------
    def _split(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """(features, pixels) of the rows; pixels is None without a second view."""
        n = int(self.feature_columns)
        if n <= 0:
            return rows, None
        if n >= rows.shape[1]:
            raise ValueError(f"feature_columns={n} leaves no pixel columns in inputs of {rows.shape[1]} columns")
        return rows[:, :n], rows[:, n:]

    def _fit_spaces(self, rows: np.ndarray, warm: bool) -> dict[str, np.ndarray]:
        """Fit the input spaces (a warm start keeps them) and give the pool's `_spaces`, projected once:
        the pixel view's scale comes from the same projections."""
        feats, pixels = self._split(rows)
        self._fit_space(feats, warm)
        st = self.state_
        Z = to_space(feats, st["space"])
        projected = (self._fit_raw_space(rows) if self._setting("raw_view") and (not warm or "raw_space" not in st)
                     else None)
        if pixels is None:
            return self._with_raw({"": Z}, rows, projected)
        fresh = not warm or "pixel_space" not in st
        if fresh:
            st["pixel_space"] = fit_space(pixels, "none", self.n_components, self.seed)
        P = to_space(pixels, st["pixel_space"])
        if fresh:
            st["pixel_scale"] = np.array(np.sqrt(Z.var(axis=0).sum() / max(P.var(axis=0).sum(), 1e-12)))
        return self._joined(Z, P)

    def _spaces(self, rows: np.ndarray) -> dict[str, np.ndarray]:
        """The label scorers' spaces by name suffix: "" the features' PCA space; "+pixels" the same
        joined with the pixels' (two views only)."""
        feats, pixels = self._split(rows)
        Z = to_space(feats, self.state_["space"])
        if pixels is None:
            return self._with_raw({"": Z}, rows)
        return self._joined(Z, to_space(pixels, self.state_["pixel_space"]))

    def _joined(self, Z: np.ndarray, P: np.ndarray) -> dict[str, np.ndarray]:
        return {"": Z, "+pixels": np.hstack([Z, float(self.state_["pixel_scale"]) * P])}

    def _fit_raw_space(self, rows: np.ndarray) -> np.ndarray:
        """The raw columns' PCA (no scaling) and how many components explain `RAW_VARIANCE`; returns the
        rows projected on it (measuring the variance needs them, and so does the "+raw" space)."""
        if self.feature_columns:
            raise ValueError("raw_view is for tables: it cannot be combined with feature_columns (two views)")
        st = self.state_
        st["raw_space"] = space = fit_space(rows, "none", RAW_MAX_COMPONENTS, self.seed)
        centred = rows - space["pca_mean"]
        projected = to_space(rows, space)
        explained = np.cumsum((projected ** 2).sum(axis=0)) / max(float((centred ** 2).sum()), 1e-12)
        st["raw_components"] = np.array(min(int(np.searchsorted(explained, RAW_VARIANCE)) + 1, len(explained)))
        return projected

    def _with_raw(self, spaces: dict[str, np.ndarray], rows: np.ndarray,
                  projected: np.ndarray | None = None) -> dict[str, np.ndarray]:
        """`spaces` plus "+raw", the raw columns' leading `n_components` principal components (raw view);
        `projected`: the rows already projected on the raw space, if at hand."""
        if "raw_space" in self.state_:
            if projected is None:
                projected = to_space(rows, self.state_["raw_space"])
            spaces["+raw"] = projected[:, :self.n_components]
        return spaces

    # -- scorers -------------------------------------------------------------------------------
    def _raw_scores(self, rows: np.ndarray) -> dict[str, np.ndarray]:
        """Each fitted scorer's raw score for these rows."""
        feats, pixels = self._split(rows)
        raw = {"prior": self._prior(feats, pixels), **self._label_scores(self._spaces(rows))}
        return {**raw, **self._error_scores(rows, pixels, self.state_["pool"])}

    def _error_scores(self, rows: np.ndarray, pixels: np.ndarray | None,
                      names: Container[str]) -> dict[str, np.ndarray]:
        """The unsupervised scorers among `names` that this model's views allow: the pixel view's
        reconstruction error ("pixels") and the raw columns' ("pca")."""
        out = {}
        if pixels is not None and "pixels" in names:
            out["pixels"] = self._pixel_error(pixels)
        if "raw_space" in self.state_ and "pca" in names:
            out["pca"] = self._raw_error(rows)
        return out

    def _prior(self, feats: np.ndarray, pixels: np.ndarray | None) -> np.ndarray:
        """The larger `robust_z` of the first-ranking scorers (forest, kNN, kNN among the pixels)."""
        st = self.state_
        if self._saved_before_robust_z():
            raise ValueError("this Fusion model was saved by an earlier semiad (first ranking on percentiles); "
                             "retrain it to score new data")
        parts = []
        if "forest" in st:
            parts.append(robust_z(forest_score(feats, st["forest"]), st["zscale_forest"]))
        if "reference" in st:
            parts.append(robust_z(knn_score(_scaled(feats, st["space"]), st["reference"], self.k), st["zscale_knn"]))
        if "pixel_reference" in st:
            parts.append(robust_z(knn_score(pixels, st["pixel_reference"], self.k), st["zscale_pixel_knn"]))
        return np.max(parts, axis=0)

    def _saved_before_robust_z(self) -> bool:
        st = self.state_
        return "pool" in st and not any(k.startswith("zscale_") for k in st)

    def _label_scores(self, spaces: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        st, out = self.state_, {}
        for suffix, Z in spaces.items():
            for kind in LABEL_SCORERS:
                name = kind + suffix
                if name in st and kind == "kernel":  # its features are ~300 values a row: by chunks
                    out[name] = np.concatenate([self._kernel_space(Z[a:a + KERNEL_CHUNK], st["rbf" + suffix])
                                                @ st[name]["coef"] for a in range(0, max(len(Z), 1), KERNEL_CHUNK)])
                    out[name] += st[name]["intercept"][0]
                elif name in st:
                    out[name] = Z @ st[name]["coef"] + st[name]["intercept"][0]
        return out

    def _kernel_space(self, Z: np.ndarray, rbf: dict[str, np.ndarray]) -> np.ndarray:
        return np.hstack([Z, self.kernel_scale * kernel_features(Z, rbf)])

    def _pixel_error(self, pixels: np.ndarray) -> np.ndarray:
        return _reconstruction_error(pixels, self.state_["pixel_space"], PIXEL_COMPONENTS)

    def _raw_error(self, rows: np.ndarray) -> np.ndarray:
        return _reconstruction_error(rows, self.state_["raw_space"], int(self.state_["raw_components"]))

    def _combine(self, raw: dict[str, np.ndarray]) -> np.ndarray:
        """The score: the scorers' pool percentiles, weighted."""
        st = self.state_
        return sum(float(st["weights"][name]) * ecdf(raw[name], st["pool"][name]) for name in raw)

    def _score_rows(self, rows: np.ndarray) -> np.ndarray:
        return self._combine(self._raw_scores(rows))

    def first_ranking_parts(self) -> list[str]:
        """What the fitted first ranking is made of, in words (the pixels may have stayed out: see
        `PLAIN_BACKGROUND`)."""
        st = self.state_
        return [text for key, text in (("forest", "IsolationForest"), ("reference", "kNN among the features"),
                                       ("pixel_reference", "kNN among the pixels")) if key in st]

    def pixels_kept_out(self) -> bool:
        """Whether prior "knn+pixels" left the pixels out of the first ranking (too little plain background)."""
        return self._setting("prior") == "knn+pixels" and not bool(self.state_.get("plain_background", True))

    def scorer_weights(self) -> dict[str, float]:
        """Each scorer's share of the score (they sum to 1), by name: "prior", "linear", "kernel",
        "labeled", those with "+pixels" or "+raw", "pixels", "pca". Empty before the first fit."""
        return {name: float(w) for name, w in self.state_.get("weights", {}).items()}

    # -- fit -----------------------------------------------------------------------------------
    def _fit(self, X: torch.Tensor, y: torch.Tensor, warm_start: bool, report: ProgressFn) -> None:
        if self.prior not in PRIORS:
            raise ValueError(f"prior must be one of {', '.join(PRIORS)}, got {self.prior!r}")
        rows, y = _as_rows(X), y.cpu().numpy()
        feats, pixels = self._split(rows)
        if self.prior == "knn+pixels" and pixels is None:
            raise ValueError('prior "knn+pixels" needs two views (representation features+pixels)')
        st = self.state_
        if self.vector_gate and not self.feature_columns and "feature_vectors" not in st:  # once per model
            st["feature_vectors"] = np.array(looks_like_feature_vectors(feats))
        if self._saved_before_robust_z():  # a model file from before 2026-11-29: refit its first ranking
            for key in ("pool_forest", "pool_knn", "knn_pool", "last_y"):
                st.pop(key, None)
        same_pool = warm_start and len(st.get("last_y", ())) == len(y)
        if same_pool:
            self._grade(rows, y)
        else:
            st["perf"] = {}
            st.pop("graded_both", None)
        spaces = self._fit_spaces(rows, warm_start)
        report(Progress("first ranking", 0, 1, None, 0.1))
        prior = self._fit_prior(feats, pixels, y, keep_knn=same_pool)
        report(Progress("scorers on the labels", 1, 1, None, 0.5))
        self._check_stop()
        for name in [n for n in st if n.split("+")[0] in LABEL_SCORERS]:
            st.pop(name)
        self._fit_label_scorers(spaces, y, prior)
        raw = {"prior": prior, **self._label_scores(spaces)}
        if (y == -1).any():  # the unsupervised scorers join with the label scorers
            raw.update(self._error_scores(rows, pixels, ("pixels", "pca")))
        st["pool"] = {name: np.sort(s) for name, s in raw.items()}
        perf = np.array([float(st["perf"].get(name, 0.0)) for name in raw])
        w = np.exp(self.eta * (perf - perf.max()))
        # scorers with no record yet share the weight of one even record: how many are fitted on the labels is
        # our choice, and it must not outvote a scorer whose record the expert's batches made
        fresh = np.array([name not in st["perf"] for name in raw])
        if fresh.any() and not fresh.all():
            w[fresh] /= fresh.sum()
        st["weights"] = dict(zip(raw, w / w.sum()))
        st["last_y"] = y.astype(np.int8)
        # the pool's scores are at hand: no second kNN pass over 70k images for decision_scores_
        self._fit_scores = self._combine(raw)
        report(Progress("fitted", 1, 1, None, 1.0))

    def _fit_prior(self, feats: np.ndarray, pixels: np.ndarray | None, y: np.ndarray,
                   keep_knn: bool = False) -> np.ndarray:
        """Fit the first-ranking scorers on the samples not labeled anomalous; the pool's prior. The
        forest is refitted at every fit (cheap); with `keep_knn` (a warm start on the same pool) the
        kNN parts are kept: their pass over the pool is the slow part on 70k images, and labels enter
        through the label scorers anyway."""
        st, keep, parts = self.state_, not_anomalous(y), []
        st.pop("forest", None)
        prior = self._setting("prior")
        if "iforest" in prior:
            st["forest"], pool_scores = fit_forest(feats[keep], self.n_estimators, self.seed, pool=feats)
            parts.append(self._pool_part("forest", pool_scores))
        if prior == "knn+pixels" and "plain_background" not in st:  # decided once per model
            st["plain_background"] = np.array(background_share(pixels) >= PLAIN_BACKGROUND)
        wanted = {"knn": "knn" in prior,
                  "pixel_knn": prior == "knn+pixels" and bool(st["plain_background"])}
        for name, ref in (("knn", "reference"), ("pixel_knn", "pixel_reference")):
            kept = keep_knn and wanted[name] and "pool_" + name in st
            if not kept:
                st.pop(ref, None)
                st.pop("pool_" + name, None)
            if wanted[name] and not kept:
                rows = _scaled(feats, st["space"]) if name == "knn" else pixels
                st[ref] = reference_points(rows, y, self.max_reference, self.seed)
                st["pool_" + name] = self._pool_part(name, knn_score(rows, st[ref], self.k))  # kept for warm starts
            if wanted[name]:
                parts.append(st["pool_" + name])
        return np.max(parts, axis=0)

    def _pool_part(self, name: str, raw: np.ndarray) -> np.ndarray:
        """A first-ranking scorer's pool scores as `robust_z`, its scale kept for new samples."""
        self.state_["zscale_" + name] = robust_scale(raw)
        return robust_z(raw, self.state_["zscale_" + name])

    def _grade(self, rows: np.ndarray, y: np.ndarray) -> None:
        """Add each current scorer's AUC − 0.5 on the labels given since the last fit (Hedge). Until a
        batch has held both classes, a batch of anomalies alone is graded too: by their AUC against the
        pool, which is mostly normal (their mean pool percentile). Without that, a first ranking whose
        batches were all anomalies would be mixed at equal weight with scorers that never ranked one."""
        from sklearn.metrics import roc_auc_score

        st = self.state_
        new = np.flatnonzero((y != 0) & (st["last_y"] == 0))
        truth = y[new] == -1
        both = bool(truth.any() and not truth.all())
        # a model file from before this rule has no flag; there, any record came from a two-class batch
        seen_both = bool(st["graded_both"]) if "graded_both" in st else bool(st["perf"])
        if not truth.any() or (not both and seen_both):
            return
        st["graded_both"] = np.array(both or seen_both)
        for name, s in self._raw_scores(rows[new]).items():
            grade = roc_auc_score(truth, s) if both else float(ecdf(s, st["pool"][name]).mean())
            st["perf"][name] = float(st["perf"].get(name, 0.0)) + grade - 0.5

    def _fit_label_scorers(self, spaces: dict[str, np.ndarray], y: np.ndarray, prior: np.ndarray) -> None:
        """Fit the label scorers in every space (see the class docstring); nothing before an anomaly."""
        anomalies, normals = np.flatnonzero(y == -1), np.flatnonzero(y == 1)
        if len(anomalies) == 0:
            return
        st = self.state_
        rng = np.random.default_rng(None if self.seed is None else [self.seed, int(self.n_fits_)])
        negatives = np.flatnonzero((y == 0) & (prior < np.median(prior)))
        if len(negatives) > self.max_negatives:
            negatives = rng.choice(negatives, self.max_negatives, replace=False)
        idx = np.concatenate([anomalies, normals, negatives])
        target = np.concatenate([np.ones(len(anomalies)), np.zeros(len(normals) + len(negatives))])
        share = 0.5 if len(normals) else 0.0
        weight = np.concatenate([np.full(len(anomalies), 1.0 / len(anomalies)),
                                 np.full(len(normals), share / max(len(normals), 1)),
                                 np.full(len(negatives), (1.0 - share) / max(len(negatives), 1))]) * len(y)
        labeled = np.concatenate([anomalies, normals])
        for suffix, Z in spaces.items():
            if (len(negatives) or len(normals)) and suffix != "+raw":  # the raw view: the user's own loop only
                st["linear" + suffix] = logistic(Z[idx], target, weight, self.C)
                if "rbf" + suffix not in st:  # landmarks drawn once per model: a warm start refits the weights
                    st["rbf" + suffix] = fit_kernel(Z, self.n_landmarks, rng)
                F = self._kernel_space(Z[idx], st["rbf" + suffix])
                st["kernel" + suffix] = logistic(F, target, weight, self.C)
            if len(normals):
                st["labeled" + suffix] = logistic(Z[labeled], (y[labeled] == -1).astype(float), None, 1.0,
                                                  balanced=True)
