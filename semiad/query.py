"""Active-learning query strategies: which unlabeled samples the expert should see next.

Each strategy is a plain function of arrays (modAL habit), testable without a model or a store:

    picks = top(scores, labeled, n, rng)            # [(index, reason), ...]
    picks = select("mixed", scores, labeled, n, rng, embeddings=Z)

- `scores`: anomaly score per sample (higher = more anomalous), shape (N,).
- `labeled`: boolean mask, True where the sample already has a label; those are never returned.
- `n`: batch size; exactly n picks come back, or every unlabeled sample when fewer remain.
- `rng`: a numpy Generator, so a batch is reproducible from its seed.
- `embeddings`: latent vectors (N×d) from the detector's `embed`, for `diverse` (and `mixed`).
- `since_anomaly`: labels given since the last anomalous one, for `top-audit` (`labels_since_anomaly`).

A pick is `(index into the arrays, short human reason)`; the Review page shows the reason on the card.
"""
from __future__ import annotations

from typing import Any, Callable

import numpy as np

Pick = tuple[int, str]

AUDIT_AFTER = 40  # "top-audit" turns to random batches after this many labels in a row without an anomaly
AUDIT = "random audit"  # the reason of every uniformly drawn pick (the progress view counts them)

STRATEGIES: dict[str, str] = {
    "top": "Highest anomaly scores first: fastest way to find anomalies.",
    "top-audit": (f"Highest scores first; once {AUDIT_AFTER} labels in a row hold no anomaly, random-audit "
                  "batches until one turns up: they tell how many anomalies remain, and they show the model "
                  "the kinds its ranking has not reached."),
    "boundary": "Scores nearest the alarm threshold (at the expected contamination): where the model is unsure.",
    "diverse": "High scorers spread out in latent space: one of each kind of suspect, not ten near-copies.",
    "random": "A uniform random slice: an unbiased audit of how many anomalies remain.",
    "mixed": "A blend (default 70% top, 20% diverse, 10% random audit).",
}

MIXED_DEFAULT = {"top": 0.7, "diverse": 0.2, "random": 0.1}


def _check(scores: Any, labeled: Any, n: int,
           embeddings: Any = None) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Validate once at the public boundary; returns float scores, bool mask, float embeddings."""
    scores = np.asarray(scores, dtype=np.float64)
    if scores.ndim != 1:
        raise ValueError(f"scores must be 1-D, got shape {scores.shape}")
    if not np.isfinite(scores).all():
        raise ValueError("scores contain NaN or infinite values")
    labeled = np.asarray(labeled)
    if labeled.dtype != bool:
        raise ValueError(f"labeled must be a boolean mask, got dtype {labeled.dtype}")
    if labeled.shape != scores.shape:
        raise ValueError(f"labeled has shape {labeled.shape} but scores {scores.shape}")
    if int(n) != n or n < 0:
        raise ValueError(f"n must be a non-negative integer, got {n}")
    if embeddings is not None:
        embeddings = np.asarray(embeddings, dtype=np.float64)
        if embeddings.ndim != 2 or len(embeddings) != len(scores):
            raise ValueError(f"embeddings must be N×d with N={len(scores)}, got shape {embeddings.shape}")
        if not np.isfinite(embeddings).all():
            raise ValueError("embeddings contain NaN or infinite values")
    return scores, labeled, embeddings


def _by_score(scores: np.ndarray, candidates: np.ndarray) -> np.ndarray:
    """Candidates ordered by descending score; ties keep index order (stable, reproducible)."""
    return candidates[np.argsort(-scores[candidates], kind="stable")]


def top(scores: Any, labeled: Any, n: int, rng: np.random.Generator | None = None) -> list[Pick]:
    """The n highest-scoring unlabeled samples, most anomalous first. (The reason names no rank among the
    unlabeled: that changes with every label, and a card picked earlier said another than one picked since;
    the card shows the sample's place in the whole ranking.)"""
    scores, labeled, _ = _check(scores, labeled, n)
    order = _by_score(scores, np.flatnonzero(~labeled))[:n]
    return [(int(i), "top score") for i in order]


def threshold_at(scores: Any, contamination: float = 0.1) -> float:
    """The score above which the expected share `contamination` of all samples lies."""
    if not 0 < contamination < 1:
        raise ValueError(f"contamination must be in (0, 1), got {contamination}")
    return float(np.quantile(np.asarray(scores, dtype=np.float64), 1 - contamination))


def boundary(scores: Any, labeled: Any, n: int, rng: np.random.Generator | None = None,
             contamination: float = 0.1) -> list[Pick]:
    """The n unlabeled samples whose scores are nearest the threshold at the expected contamination.

    The threshold is taken over all samples (labeled too): it is the model's alarm line, not a
    property of what is still unlabeled.
    """
    scores, labeled, _ = _check(scores, labeled, n)
    t = threshold_at(scores, contamination)
    candidates = np.flatnonzero(~labeled)
    order = candidates[np.argsort(np.abs(scores[candidates] - t), kind="stable")][:n]
    return [(int(i), f"near threshold {t:.3g} (score {scores[i]:.3g})") for i in order]


def _k_center_greedy(points: np.ndarray, centers: np.ndarray, n: int) -> list[int]:
    """Greedy k-center: repeatedly take the point farthest from every chosen point and center.

    Returns positions into `points`; with no centers, the first pick is position 0 (the caller
    orders points by score, so that is the top scorer). O(n · len(points)) distance evaluations.
    """
    nearest = np.full(len(points), np.inf)
    if len(centers):
        # ‖a−b‖² = ‖a‖² + ‖b‖² − 2ab, in chunks so a large labeled pool never builds a huge matrix.
        sq = (points ** 2).sum(1)
        for a in range(0, len(centers), 4096):
            c = centers[a:a + 4096]
            d = sq[:, None] + (c ** 2).sum(1)[None, :] - 2.0 * points @ c.T
            nearest = np.minimum(nearest, np.maximum(d, 0.0).min(axis=1))
    chosen: list[int] = []
    for _ in range(min(n, len(points))):
        j = 0 if not np.isfinite(nearest).any() else int(np.argmax(nearest))
        chosen.append(j)
        nearest = np.minimum(nearest, ((points - points[j]) ** 2).sum(-1))
        nearest[j] = -1.0  # never again
    return chosen


def diverse(scores: Any, labeled: Any, n: int, rng: np.random.Generator | None = None,
            embeddings: Any = None, top_fraction: float = 0.1) -> list[Pick]:
    """n high scorers spread out in latent space (k-center greedy over `embeddings`).

    Candidates: the unlabeled samples in the top `top_fraction` of scores among the unlabeled (at
    least n of them). Already labeled samples act as existing centers, so the batch also moves away
    from what the expert has seen. Distances are Euclidean in the embedding space.
    """
    scores, labeled, embeddings = _check(scores, labeled, n, embeddings)
    if embeddings is None:
        raise ValueError("the diverse strategy needs embeddings (the detector's embed(X))")
    if not 0 < top_fraction <= 1:
        raise ValueError(f"top_fraction must be in (0, 1], got {top_fraction}")
    unlabeled = _by_score(scores, np.flatnonzero(~labeled))
    pool = unlabeled[:max(n, int(np.ceil(top_fraction * len(unlabeled))))]
    chosen = _k_center_greedy(embeddings[pool], embeddings[labeled], n)
    return [(int(pool[j]), "spread-out high scorer") for j in chosen]


def random_audit(scores: Any, labeled: Any, n: int, rng: np.random.Generator | None = None) -> list[Pick]:
    """n unlabeled samples drawn uniformly: the anomaly share among them estimates precision without bias."""
    scores, labeled, _ = _check(scores, labeled, n)
    rng = np.random.default_rng() if rng is None else rng
    candidates = np.flatnonzero(~labeled)
    picked = rng.choice(candidates, size=min(n, len(candidates)), replace=False) if len(candidates) else candidates
    return [(int(i), AUDIT) for i in picked]


def is_audit(reason: str) -> bool:
    """Whether a pick was drawn uniformly (`random_audit`, or `top_audit` once dry), by its reason: its
    label is stored as the random audit, whose anomaly rate Progress turns into how many remain."""
    return reason.startswith(AUDIT)


def labels_since_anomaly(anomalous: Any) -> int:
    """How many labels came after the last anomalous one; `anomalous`: one flag per label, oldest first
    (all of them when none is anomalous)."""
    flags = np.asarray(anomalous, dtype=bool).ravel()
    hits = np.flatnonzero(flags)
    return int(len(flags) - 1 - hits[-1]) if len(hits) else int(len(flags))


def top_audit(scores: Any, labeled: Any, n: int, rng: np.random.Generator | None = None,
              since_anomaly: int = 0, audit_after: int = AUDIT_AFTER) -> list[Pick]:
    """`top`, until `audit_after` labels in a row hold no anomaly: then a `random_audit` batch.

    Why: when the top of the ranking runs dry, the anomalies left are often ones the ranking places in
    the bulk, and the label scorers have learned the bulk as normal. A uniform batch is the unbiased
    estimate of how many remain (so the expert knows whether to go on), and its labels correct the
    model where it was sure. Measured in bench/RESULTS.md ("when the top of the ranking runs dry"): not
    the default, since a random batch can cost one of the last anomalies the top still holds.
    """
    if audit_after < 1:
        raise ValueError(f"audit_after must be at least 1, got {audit_after}")
    if since_anomaly < audit_after:
        return top(scores, labeled, n, rng)
    picks = random_audit(scores, labeled, n, rng)
    return [(i, f"{AUDIT}: no anomaly in the last {since_anomaly} labels") for i, _ in picks]


def _split(n: int, weights: dict[str, float]) -> dict[str, int]:
    """Integer shares of n in proportion to weights (largest remainder; ties go to the earlier key)."""
    total = sum(weights.values())
    if total <= 0 or any(w < 0 for w in weights.values()):
        raise ValueError(f"mixed weights must be non-negative with a positive sum, got {weights}")
    exact = {k: n * w / total for k, w in weights.items()}
    counts = {k: int(np.floor(v)) for k, v in exact.items()}
    left = n - sum(counts.values())
    for k in sorted(exact, key=lambda k: -(exact[k] - counts[k]))[:left]:
        counts[k] += 1
    return counts


def mixed(scores: Any, labeled: Any, n: int, rng: np.random.Generator | None = None,
          embeddings: Any = None, weights: dict[str, float] | None = None, **options: Any) -> list[Pick]:
    """A blend of the other strategies, by `weights` (default 70% top, 20% diverse, 10% random).

    The random audit slice is drawn first, uniformly over everything unlabeled, so its anomaly
    share stays an unbiased estimate; then the others fill the rest in the order given, each
    skipping what an earlier part took. The parts are returned interleaved in proportion (each part
    keeps its own order), so any stretch of the list holds the blend. `options` go to the parts (e.g.
    contamination=, top_fraction=).
    """
    scores, labeled, embeddings = _check(scores, labeled, n, embeddings)
    weights = dict(MIXED_DEFAULT if weights is None else weights)
    unknown = set(weights) - (set(_FUNCTIONS) - {"mixed"})
    if unknown:
        raise ValueError(f"unknown strategies in mixed weights: {sorted(unknown)}")
    counts = _split(n, weights)
    order = (["random"] if "random" in counts else []) + [k for k in counts if k != "random"]
    taken = labeled.copy()
    parts: list[list[Pick]] = []
    for name in order:
        if counts[name] == 0:
            continue
        part = select(name, scores, taken, counts[name], rng, embeddings=embeddings, **options)
        for i, _ in part:
            taken[i] = True
        parts.append(part)
    # shown interleaved, so that every stretch of the list holds the blend: the audit slice is drawn
    # first for its unbiasedness, not to fill the first cards
    keyed = [((j + 0.5) / len(part), k, j) for k, part in enumerate(parts) for j in range(len(part))]
    return [parts[k][j] for _, k, j in sorted(keyed)]


_FUNCTIONS: dict[str, Callable[..., list[Pick]]] = {
    "top-audit": top_audit, "top": top, "boundary": boundary, "diverse": diverse, "random": random_audit,
    "mixed": mixed,
}

# Which keyword options each strategy accepts, so `select` can pass a shared options dict safely.
_OPTIONS = {"top-audit": ("since_anomaly", "audit_after"), "top": (), "boundary": ("contamination",),
            "diverse": ("top_fraction",), "random": (),
            "mixed": ("weights", "contamination", "top_fraction", "since_anomaly", "audit_after")}


def select(strategy: str, scores: Any, labeled: Any, n: int, rng: np.random.Generator | None = None,
           embeddings: Any = None, **options: Any) -> list[Pick]:
    """One entry point for every strategy by name (see STRATEGIES); options a strategy does not use are ignored."""
    if strategy not in _FUNCTIONS:
        raise ValueError(f"unknown strategy {strategy!r}; choose from {sorted(_FUNCTIONS)}")
    kwargs = {k: v for k, v in options.items() if k in _OPTIONS[strategy]}
    if strategy in ("diverse", "mixed"):
        kwargs["embeddings"] = embeddings
    return _FUNCTIONS[strategy](scores, labeled, n, rng, **kwargs)


def needs_embeddings(strategy: str, **options: Any) -> bool:
    """Whether `select` needs embeddings for this strategy (so a caller can skip the embed pass)."""
    if strategy == "diverse":
        return True
    if strategy == "mixed":
        return (options.get("weights") or MIXED_DEFAULT).get("diverse", 0) > 0
    return False


def needs_history(strategy: str, **options: Any) -> bool:
    """Whether the strategy looks at the order of the labels (pass `since_anomaly`)."""
    if strategy == "mixed":
        return (options.get("weights") or MIXED_DEFAULT).get("top-audit", 0) > 0
    return strategy == "top-audit"
