"""Query strategies: only unlabeled picks, no duplicates, the requested size, and what each is for."""
import numpy as np
import pytest

from semiad import query

NAMES = list(query.STRATEGIES)


def pool(n: int = 200, n_labeled: int = 50, seed: int = 0):
    rng = np.random.default_rng(seed)
    scores = rng.normal(size=n)
    labeled = np.zeros(n, dtype=bool)
    labeled[rng.choice(n, n_labeled, replace=False)] = True
    embeddings = rng.normal(size=(n, 4))
    return scores, labeled, embeddings


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("n", [0, 1, 7, 20])
def test_only_unlabeled_no_duplicates_exact_size(name, n):
    scores, labeled, emb = pool()
    picks = query.select(name, scores, labeled, n, np.random.default_rng(1), embeddings=emb)
    idx = [i for i, _ in picks]
    assert len(idx) == n
    assert len(set(idx)) == n
    assert not labeled[idx].any()
    assert all(isinstance(i, int) and isinstance(r, str) and r for i, r in picks)


@pytest.mark.parametrize("name", NAMES)
def test_returns_all_that_remain_when_too_few(name):
    scores, labeled, emb = pool(n=60, n_labeled=55)
    picks = query.select(name, scores, labeled, 20, np.random.default_rng(1), embeddings=emb)
    assert sorted(i for i, _ in picks) == sorted(np.flatnonzero(~labeled).tolist())
    everything = np.ones(60, dtype=bool)
    assert query.select(name, scores, everything, 5, np.random.default_rng(1), embeddings=emb) == []


def test_top_takes_highest_scores_in_order():
    scores = np.array([0.1, 0.9, 0.5, 0.8, 0.7])
    labeled = np.array([False, True, False, False, False])
    assert query.top(scores, labeled, 3) == [(3, "top score"), (4, "top score"), (2, "top score")]


def test_boundary_takes_scores_nearest_the_contamination_threshold():
    scores = np.arange(100, dtype=float)  # threshold at 10% contamination = 89.1
    picks = query.boundary(scores, np.zeros(100, dtype=bool), 4, contamination=0.1)
    assert sorted(i for i, _ in picks) == [88, 89, 90, 91]
    assert picks[0][1].startswith("near threshold 89.1")


def test_diverse_spreads_over_clusters():
    # Three tight clusters of equally high scorers; the top three by score all sit in cluster 0.
    centers = np.array([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]])
    rng = np.random.default_rng(0)
    emb = np.repeat(centers, 10, axis=0) + rng.normal(scale=0.1, size=(30, 2))
    scores = np.r_[np.full(10, 3.0), np.full(10, 2.0), np.full(10, 2.0)] + rng.uniform(0, 0.01, 30)
    labeled = np.zeros(30, dtype=bool)
    picks = query.diverse(scores, labeled, 3, embeddings=emb, top_fraction=1.0)
    assert sorted(i // 10 for i, _ in picks) == [0, 1, 2]
    assert {i // 10 for i, _ in query.top(scores, labeled, 3)} == {0}
    # A labeled sample acts as a center: with cluster 0 already seen, two picks go to clusters 1 and 2.
    labeled[0] = True
    assert sorted(i // 10 for i, _ in query.diverse(scores, labeled, 2, embeddings=emb, top_fraction=1.0)) == [1, 2]


def test_diverse_stays_within_the_top_fraction():
    scores, labeled, emb = pool(n=400, n_labeled=0)
    picks = query.diverse(scores, labeled, 10, embeddings=emb, top_fraction=0.1)
    top40 = set(np.argsort(-scores)[:40].tolist())
    assert {i for i, _ in picks} <= top40


def test_random_is_reproducible_and_uniform():
    scores, labeled, _ = pool(n=100, n_labeled=0)
    a = query.random_audit(scores, labeled, 10, np.random.default_rng(5))
    assert a == query.random_audit(scores, labeled, 10, np.random.default_rng(5))
    # Over many draws every sample is picked about equally often, high score or not.
    counts = np.zeros(100)
    rng = np.random.default_rng(0)
    for _ in range(500):
        counts[[i for i, _ in query.random_audit(scores, labeled, 10, rng)]] += 1
    assert counts.min() > 25 and counts.max() < 80  # expected 50 each


def test_mixed_default_blend_and_reasons():
    scores, labeled, emb = pool(n=500, n_labeled=0)
    picks = query.mixed(scores, labeled, 20, np.random.default_rng(0), embeddings=emb)
    reasons = [r.split(",")[0] for _, r in picks]
    assert reasons.count("random audit") == 2
    assert reasons.count("spread-out high scorer") == 4
    assert reasons.count("top score") == 14
    # interleaved: the first ten cards already hold the blend (the audit slice was shown first before)
    assert [reasons[:10].count(r) for r in ("top score", "spread-out high scorer", "random audit")] == [7, 2, 1]
    tops = [scores[i] for i, r in picks if r.startswith("top score")]
    assert tops == sorted(tops, reverse=True)  # each part keeps its own order
    custom = query.select("mixed", scores, labeled, 10, np.random.default_rng(0), weights={"top": 1, "boundary": 1})
    assert sum(r.startswith("near threshold") for _, r in custom) == 5


def test_mixed_random_part_is_drawn_from_all_unlabeled():
    # The audit slice must not skip the top scorers, or its anomaly rate would be biased low.
    scores = np.arange(50, dtype=float)
    labeled = np.zeros(50, dtype=bool)
    seen = set()
    rng = np.random.default_rng(0)
    for _ in range(300):
        picks = query.mixed(scores, labeled, 10, rng, weights={"top": 0.5, "random": 0.5})
        seen |= {i for i, r in picks if r == "random audit"}
    assert {49, 48, 47, 46, 45} <= seen


def test_bad_inputs_are_named():
    scores, labeled, emb = pool()
    with pytest.raises(ValueError, match="unknown strategy"):
        query.select("nope", scores, labeled, 3)
    with pytest.raises(ValueError, match="boolean mask"):
        query.top(scores, labeled.astype(int), 3)
    with pytest.raises(ValueError, match="needs embeddings"):
        query.select("diverse", scores, labeled, 3)
    with pytest.raises(ValueError, match="NaN"):
        query.top(np.r_[scores[:-1], np.nan], labeled, 3)
    assert query.needs_embeddings("mixed") and not query.needs_embeddings("mixed", weights={"top": 1.0})


def test_labels_since_anomaly_counts_after_the_last_anomalous_label():
    assert query.labels_since_anomaly([]) == 0
    assert query.labels_since_anomaly([False, False, False]) == 3
    assert query.labels_since_anomaly([True, False, False]) == 2
    assert query.labels_since_anomaly([False, True, False, True]) == 0
    assert query.labels_since_anomaly(np.array([1, 0, 1, 0, 0, 0])) == 3


def test_top_audit_is_top_until_the_top_runs_dry_then_a_random_audit():
    scores, labeled, _ = pool()
    before = query.select("top-audit", scores, labeled, 10, np.random.default_rng(3),
                          since_anomaly=query.AUDIT_AFTER - 1)
    assert before == query.top(scores, labeled, 10) and not any(query.is_audit(r) for _, r in before)
    dry = query.select("top-audit", scores, labeled, 10, np.random.default_rng(3), since_anomaly=query.AUDIT_AFTER)
    assert [i for i, _ in dry] == [i for i, _ in query.random_audit(scores, labeled, 10, np.random.default_rng(3))]
    assert all(r == f"random audit: no anomaly in the last {query.AUDIT_AFTER} labels" for _, r in dry)
    assert all(query.is_audit(r) for _, r in dry)  # the progress view counts them as the audit
    low = query.select("top-audit", scores, labeled, 5, np.random.default_rng(3), since_anomaly=3, audit_after=3)
    assert all(query.is_audit(r) for _, r in low)
    with pytest.raises(ValueError, match="audit_after"):
        query.top_audit(scores, labeled, 5, since_anomaly=3, audit_after=0)


def test_needs_history_names_the_strategies_that_read_the_label_order():
    assert query.needs_history("top-audit")
    assert not any(query.needs_history(s) for s in ("top", "boundary", "diverse", "random", "mixed"))
    assert query.needs_history("mixed", weights={"top-audit": 0.5, "random": 0.5})
