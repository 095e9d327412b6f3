"""Metrics against scikit-learn on fixed inputs, and the screening curves on hand-checked cases."""
import math

import numpy as np
import pytest
from sklearn.metrics import average_precision_score, roc_auc_score

from semiad import metrics

# Fixed inputs with ties in the scores and between classes.
TRUTH = np.array([0, 1, 0, 0, 1, 1, 0, 0, 0, 1, 0, 0])
SCORES = np.array([0.1, 0.9, 0.3, 0.3, 0.3, 0.7, 0.2, 0.9, 0.05, 0.6, 0.6, 0.0])


def test_auc_and_ap_match_sklearn_on_fixed_inputs():
    assert metrics.roc_auc(TRUTH, SCORES) == pytest.approx(roc_auc_score(TRUTH, SCORES), abs=1e-12)
    assert metrics.average_precision(TRUTH, SCORES) == pytest.approx(average_precision_score(TRUTH, SCORES), abs=1e-12)


def test_auc_and_ap_match_sklearn_on_random_inputs_with_ties():
    rng = np.random.default_rng(0)
    for trial in range(50):
        truth = rng.integers(0, 2, 40)
        truth[:2] = [0, 1]
        scores = rng.integers(0, 6, 40).astype(float) if trial % 2 else rng.normal(size=40)
        assert metrics.roc_auc(truth, scores) == pytest.approx(roc_auc_score(truth, scores), abs=1e-12)
        expected = average_precision_score(truth, scores)
        assert metrics.average_precision(truth, scores) == pytest.approx(expected, abs=1e-12)


def test_one_class_gives_nan():
    assert math.isnan(metrics.roc_auc([0, 0, 0], [1, 2, 3]))
    assert math.isnan(metrics.average_precision([0, 0], [1, 2]))


def test_precision_at_k():
    # Top 4 by score: 0.9 (1), 0.9 (0), 0.7 (1), 0.6 (1)
    assert metrics.precision_at_k(TRUTH, SCORES, 4) == 0.75
    assert metrics.precision_at_k(TRUTH, SCORES, 1) == 1.0


def test_round_metrics_counts_batch_and_rest():
    labeled = np.zeros(len(TRUTH), dtype=bool)
    labeled[[1, 7, 5]] = True
    m = metrics.round_metrics(TRUTH, SCORES, labeled, [1, 7, 5], k=2)
    assert (m["n_labeled"], m["batch_anomalies"], m["anomalies_found"]) == (3, 2, 2)
    assert m["batch_precision"] == pytest.approx(2 / 3)
    assert m["share_found"] == 0.5
    rest = ~labeled
    assert m["auc_unlabeled"] == pytest.approx(roc_auc_score(TRUTH[rest], SCORES[rest]))
    assert m["ap_unlabeled"] == pytest.approx(average_precision_score(TRUTH[rest], SCORES[rest]))
    assert m["p_at_2_unlabeled"] == 0.5  # 0.6 (1) and 0.6 (0)


def test_progress_table_without_ground_truth():
    rounds = [1, 1, 1, 1, 2, 2, 2, 2]
    labels = [-1, -1, 1, 1, -1, 1, 1, 1]
    sources = ["top score, rank 1", "top score, rank 2", "random audit", "random audit",
               "top score, rank 1", "random audit", "random audit", "spread-out high scorer, rank 4"]
    t = metrics.progress_table(rounds, labels, sources)
    assert t["labels"].tolist() == [4, 4]
    assert t["anomalies"].tolist() == [2, 1]
    assert t["precision"].tolist() == [0.5, 0.25]
    assert t["cum_anomalies"].tolist() == [2, 3]
    assert t["audit_labels"].tolist() == [2, 4]
    assert t["audit_anomaly_rate"].tolist() == [0.0, 0.0]
    assert t["audit_low"].iloc[-1] == 0.0 and 0 < t["audit_high"].iloc[-1] < 1
    # labels from the Latent map, an import or the second look count, but are no batch the ranking showed
    t = metrics.progress_table([1, 1, 1, 2, 2], [-1, 1, -1, -1, -1],
                               ["review:top", "review:top", "import", "map", "map"])
    assert t["labels"].tolist() == [3, 2] and t["anomalies"].tolist() == [2, 2]
    assert t["precision"].iloc[0] == 0.5 and np.isnan(t["precision"].iloc[1])


def test_wilson_interval_known_value():
    lo, hi = metrics.wilson_interval(5, 20)
    assert lo == pytest.approx(0.1119, abs=1e-4) and hi == pytest.approx(0.4687, abs=1e-4)


def test_score_summary_per_label():
    s = metrics.score_summary([0.1, 0.2, 0.9, 0.8, 0.5], [1, 1, -1, -1, 0]).set_index("label")
    assert s.loc["normal", "count"] == 2 and s.loc["normal", "median"] == pytest.approx(0.15)
    assert s.loc["anomalous", "min"] == 0.8 and s.loc["unlabeled", "max"] == 0.5


def test_screening_curves_by_hand():
    # 10 samples, 4 anomalies, found at positions 1, 2, 5, 9.
    hits = np.array([1, 1, 0, 0, 1, 0, 0, 0, 1, 0])
    x, y = metrics.recall_curve(hits)
    assert x[0] == 0 and y[0] == 0 and x[-1] == 1 and y[-1] == 1
    assert y[2] == 0.5 and y[5] == 0.75
    # 95% of 4 anomalies needs all 4, reached after 9 screened: 1/10 left unscreened − 0.05.
    assert metrics.wss(hits, 0.95) == pytest.approx(0.1 - 0.05)
    assert metrics.rrf(hits, 0.2) == 0.5
    assert metrics.average_time_to_discovery(hits) == pytest.approx((1 + 2 + 5 + 9) / 4)
    # A perfect ranking saves the most work; random-like order saves about none.
    perfect = np.r_[np.ones(10), np.zeros(90)]
    assert metrics.wss(perfect) == pytest.approx(0.9 - 0.05)


def test_screening_order_puts_queries_first_then_scores():
    order = metrics.screening_order([3, 0], [0.5, 0.1, 0.9, 0.2, 0.7])
    assert order.tolist() == [3, 0, 2, 4, 1]
    with pytest.raises(ValueError):
        metrics.screening_order([1, 1], [0.1, 0.2])
