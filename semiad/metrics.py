"""What each labeling round bought: discovery, ranking quality and screening-effort metrics.

Plain arrays in, plain numbers / dicts / DataFrames out, so the Progress page, the simulator and the
bench scripts share one implementation.

Conventions: `truth` is ground truth with 1 = anomaly, 0 = normal (benchmarks only); `label` is an
expert label in the detector's semi-target form, -1 = anomaly, +1 = normal; scores: higher = more
anomalous. AUC and average precision follow scikit-learn's definitions exactly (ties included) and
are tested against it; they are written out here so the library needs no scikit-learn at run time.
"""
from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np

# ----- ranking quality (ground truth known) ---------------------------------------------------


def _binary(truth: Any, scores: Any) -> tuple[np.ndarray, np.ndarray]:
    truth = np.asarray(truth).ravel()
    scores = np.asarray(scores, dtype=np.float64).ravel()
    if truth.shape != scores.shape:
        raise ValueError(f"truth has {truth.size} entries but scores {scores.size}")
    if not np.isin(truth, (0, 1)).all():
        raise ValueError("truth must be 0 (normal) or 1 (anomaly)")
    return truth.astype(bool), scores


def roc_auc(truth: Any, scores: Any) -> float:
    """Area under the ROC curve; NaN when only one class is present (sklearn raises instead)."""
    truth, scores = _binary(truth, scores)
    n_pos, n_neg = int(truth.sum()), int((~truth).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    # Mann-Whitney U with average ranks for ties: equals the trapezoidal ROC area.
    order = np.argsort(scores, kind="mergesort")
    sorted_scores = scores[order]
    ranks = np.empty(len(scores))
    starts = np.r_[0, np.flatnonzero(np.diff(sorted_scores)) + 1]
    ends = np.r_[starts[1:], len(scores)]
    for a, b in zip(starts, ends):
        ranks[order[a:b]] = (a + b + 1) / 2.0  # mean of 1-based ranks a+1..b
    u = ranks[truth].sum() - n_pos * (n_pos + 1) / 2.0
    return float(u / (n_pos * n_neg))


def average_precision(truth: Any, scores: Any) -> float:
    """Σ (R_k − R_{k−1}) P_k over distinct score thresholds (scikit-learn's definition); NaN without anomalies."""
    truth, scores = _binary(truth, scores)
    n_pos = int(truth.sum())
    if n_pos == 0:
        return float("nan")
    order = np.argsort(-scores, kind="mergesort")
    hits = np.cumsum(truth[order])
    # Evaluate only at the last position of each run of tied scores (a threshold takes all ties).
    last = np.r_[np.flatnonzero(np.diff(scores[order])), len(scores) - 1]
    tp = hits[last]
    precision = tp / (last + 1)
    recall = tp / n_pos
    return float(np.sum(np.diff(np.r_[0.0, recall]) * precision))


def precision_at_k(truth: Any, scores: Any, k: int) -> float:
    """Share of anomalies among the k highest scores (ties broken by index order)."""
    truth, scores = _binary(truth, scores)
    if k <= 0:
        raise ValueError(f"k must be positive, got {k}")
    top = np.argsort(-scores, kind="stable")[:k]
    return float(truth[top].mean()) if len(top) else float("nan")


# ----- one simulated round (ground truth known) -----------------------------------------------


def round_metrics(truth: Any, scores: Any, labeled: Any, batch: Sequence[int], k: int | None = None) -> dict[str, Any]:
    """Figures for one round, after the batch was labeled and the model retrained.

    `scores` are the retrained model's scores on all samples, `labeled` the mask including this
    batch, `batch` the indices queried this round (chosen with the previous model). The ranking
    metrics are over the unlabeled remainder only: samples the expert has labeled are no longer
    a question. `k` (default: the batch size, at least 1) is for precision@k on the remainder.
    """
    truth_b, scores = _binary(truth, scores)
    labeled = np.asarray(labeled, dtype=bool)
    batch = np.asarray(batch, dtype=np.int64)
    rest = ~labeled
    k = max(len(batch), 1) if k is None else k
    total = int(truth_b.sum())
    found = int(truth_b[labeled].sum())
    return {
        "n_labeled": int(labeled.sum()),
        "batch_size": int(len(batch)),
        "batch_anomalies": int(truth_b[batch].sum()),
        "batch_precision": float(truth_b[batch].mean()) if len(batch) else float("nan"),
        "anomalies_found": found,
        "share_found": found / total if total else float("nan"),
        "query_precision": found / int(labeled.sum()) if labeled.any() else float("nan"),
        "auc_unlabeled": roc_auc(truth_b[rest], scores[rest]),
        "ap_unlabeled": average_precision(truth_b[rest], scores[rest]),
        f"p_at_{k}_unlabeled": precision_at_k(truth_b[rest], scores[rest], k) if rest.any() else float("nan"),
    }


# ----- real projects (no ground truth): from the labels themselves ----------------------------


def wilson_interval(hits: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """95% Wilson score interval for a share hits/n; (nan, nan) when n == 0."""
    if n == 0:
        return float("nan"), float("nan")
    p = hits / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


NOT_A_BATCH = ("map", "import", "second-look")  # label sources that are no batch the ranking showed


def progress_table(rounds: Any, labels: Any, sources: Sequence[str] | None = None) -> "Any":
    """Per-round table of a labeling session, from the label events alone (no ground truth needed).

    rounds: round number per labeled sample; labels: -1 anomaly / +1 normal per labeled sample (the
    current label); sources: the strategy or reason that queued each sample (a source containing
    "random" counts toward the audit slice). Columns: round, labels, anomalies, precision (of that
    round's review batches: labels from the Latent map, an import or the second look are in the counts
    but are no batch the ranking showed; NaN for a round of those alone), cumulative labels /
    anomalies, and the anomaly rate estimated from the random audit slices so far, with its 95% Wilson
    interval — the unbiased estimate of how common anomalies are among samples nobody has looked at yet.
    """
    import pandas as pd

    rounds = np.asarray(rounds).ravel()
    labels = np.asarray(labels).ravel()
    if rounds.shape != labels.shape:
        raise ValueError(f"rounds has {rounds.size} entries but labels {labels.size}")
    if not np.isin(labels, (-1, 1)).all():
        raise ValueError("labels must be -1 (anomaly) or +1 (normal)")
    audit = np.zeros(len(labels), dtype=bool) if sources is None else np.array(["random" in str(s) for s in sources])
    if len(audit) != len(labels):
        raise ValueError(f"sources has {len(audit)} entries but labels {labels.size}")
    shown = np.ones(len(labels), dtype=bool) if sources is None else np.array([s not in NOT_A_BATCH for s in sources])
    rows = []
    cum_n = cum_a = audit_n = audit_a = 0
    for r in np.unique(rounds):
        sel = rounds == r
        n, a = int(sel.sum()), int((labels[sel] == -1).sum())
        batch = sel & shown
        precision = float((labels[batch] == -1).mean()) if batch.any() else float("nan")
        cum_n, cum_a = cum_n + n, cum_a + a
        audit_n += int(audit[sel].sum())
        audit_a += int((audit[sel] & (labels[sel] == -1)).sum())
        lo, hi = wilson_interval(audit_a, audit_n)
        rows.append({"round": r.item(), "labels": n, "anomalies": a, "precision": precision,
                     "cum_labels": cum_n, "cum_anomalies": cum_a, "audit_labels": audit_n,
                     "audit_anomaly_rate": audit_a / audit_n if audit_n else float("nan"),
                     "audit_low": lo, "audit_high": hi})
    return pd.DataFrame(rows, columns=["round", "labels", "anomalies", "precision", "cum_labels", "cum_anomalies",
                                       "audit_labels", "audit_anomaly_rate", "audit_low", "audit_high"])


def score_summary(scores: Any, labels: Any) -> "Any":
    """Score distribution of the labeled normal vs labeled anomalous samples (one row each).

    labels: -1 / +1 per sample, 0 (unlabeled) rows are summarized as "unlabeled". A good model puts
    the anomalous quartiles above the normal ones; overlap says where the model still confuses them.
    """
    import pandas as pd

    scores = np.asarray(scores, dtype=np.float64).ravel()
    labels = np.asarray(labels).ravel()
    if scores.shape != labels.shape:
        raise ValueError(f"scores has {scores.size} entries but labels {labels.size}")
    rows = []
    for name, value in (("normal", 1), ("anomalous", -1), ("unlabeled", 0)):
        s = scores[labels == value]
        q = np.quantile(s, [0.0, 0.25, 0.5, 0.75, 1.0]) if len(s) else [float("nan")] * 5
        rows.append({"label": name, "count": int(len(s)), "mean": float(s.mean()) if len(s) else float("nan"),
                     "min": q[0], "q25": q[1], "median": q[2], "q75": q[3], "max": q[4]})
    return pd.DataFrame(rows)


# ----- screening-effort curves (ASReview style) -----------------------------------------------


def screening_order(queried: Sequence[int], scores: Any) -> np.ndarray:
    """Every sample in the order an expert would screen them: the queried samples in query order,
    then the rest by descending score (how a session would continue with the last model)."""
    scores = np.asarray(scores, dtype=np.float64).ravel()
    queried = np.asarray(queried, dtype=np.int64)
    if len(np.unique(queried)) != len(queried):
        raise ValueError("queried holds an index twice")
    rest = np.setdiff1d(np.arange(len(scores)), queried)
    return np.r_[queried, rest[np.argsort(-scores[rest], kind="stable")]]


def recall_curve(hits_in_order: Any) -> tuple[np.ndarray, np.ndarray]:
    """(share screened, share of anomalies found) after each screened sample, starting at (0, 0).

    hits_in_order: 1/True where the i-th screened sample is an anomaly (e.g. truth[screening_order]).
    """
    hits = np.asarray(hits_in_order).astype(bool).ravel()
    n, total = len(hits), int(hits.sum())
    screened = np.arange(n + 1) / max(n, 1)
    found = np.r_[0, np.cumsum(hits)] / total if total else np.zeros(n + 1)
    return screened, found


def wss(hits_in_order: Any, recall: float = 0.95) -> float:
    """Work saved over sampling at a recall (WSS@95 by default): share of samples left unscreened
    when `recall` of the anomalies are found, minus the (1 − recall) that random screening saves."""
    hits = np.asarray(hits_in_order).astype(bool).ravel()
    total = int(hits.sum())
    if total == 0:
        return float("nan")
    needed = int(math.ceil(recall * total - 1e-9))
    screened = int(np.searchsorted(np.cumsum(hits), needed) + 1)
    return (len(hits) - screened) / len(hits) - (1 - recall)


def rrf(hits_in_order: Any, share: float = 0.1) -> float:
    """Relevant records found (RRF@10 by default): share of anomalies found after screening `share` of samples."""
    hits = np.asarray(hits_in_order).astype(bool).ravel()
    total = int(hits.sum())
    if total == 0:
        return float("nan")
    return float(hits[:int(round(share * len(hits)))].sum() / total)


def average_time_to_discovery(hits_in_order: Any) -> float:
    """Mean number of samples screened until each anomaly was found (its 1-based position), over all anomalies."""
    positions = np.flatnonzero(np.asarray(hits_in_order).astype(bool).ravel()) + 1
    return float(positions.mean()) if len(positions) else float("nan")


def screening_summary(hits_in_order: Any) -> dict[str, float]:
    """WSS@95, RRF@10 and average time to discovery (also as a share of all samples) in one dict."""
    n = max(len(np.asarray(hits_in_order).ravel()), 1)
    atd = average_time_to_discovery(hits_in_order)
    return {"wss_95": wss(hits_in_order, 0.95), "rrf_10": rrf(hits_in_order, 0.1),
            "atd": atd, "atd_share": atd / n}
