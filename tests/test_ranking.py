"""The review batch (state.ranking.next_batch): every strategy through the store, labels and
exclusions never returned, the run's files read through the store."""
from __future__ import annotations

import numpy as np
import pytest

from semiad import query
from semiad.data import SampleSet
from state.ranking import COLUMNS, next_batch, ranked_rows, since_anomaly
from state.store import Store, StoreError

N = 40


@pytest.fixture
def store(tmp_path, db_url) -> Store:
    s = Store(db_url(tmp_path), home=tmp_path)
    yield s
    s.close()


def finished_run(store: Store, pid: int, scores: np.ndarray, Z: np.ndarray | None = None) -> int:
    run = store.request_run(pid, "deepsad", {}, "ann")
    store.claim_next_run("w:1")
    store.save_scores(run, scores, embedding=Z)
    store.finish_run(run, "done")
    return run


@pytest.fixture
def ranked(store):
    """A project of N samples and a finished run whose score of sample i is i / N (so the ranking is
    N-1, N-2, ...), with a 2-D embedding in two far-apart clusters (even / odd samples)."""
    X = np.zeros((N, 3), np.float32)
    pid = store.create_project("r", SampleSet(ids=[f"s{i}" for i in range(N)], X=X, kind="tabular", name="r"))
    Z = np.stack([np.arange(N) % 2 * 100.0, np.arange(N) * 0.01], axis=1)
    run = finished_run(store, pid, np.arange(N) / N, Z)
    return pid, run, store.samples(pid)["sample_id"].tolist()


def test_top_in_score_order_with_rank_and_reason(store, ranked):
    pid, run, sid = ranked
    batch = next_batch(store, run, "top", 5)
    assert list(batch.columns) == COLUMNS
    assert batch["sample_id"].tolist() == [sid[i] for i in (39, 38, 37, 36, 35)]
    assert batch["idx"].tolist() == [39, 38, 37, 36, 35]
    assert batch["key"].tolist() == ["s39", "s38", "s37", "s36", "s35"]
    assert batch["rank"].tolist() == [1, 2, 3, 4, 5]
    assert np.allclose(batch["score"], [39 / N, 38 / N, 37 / N, 36 / N, 35 / N])
    assert batch["reason"].iloc[0] == "top score"


def test_labeled_and_excluded_samples_are_never_returned(store, ranked):
    pid, run, sid = ranked
    store.record_labels(pid, [sid[39], sid[37]], "anomalous", "ann")
    store.record_label(pid, sid[36], "normal", "bob")
    batch = next_batch(store, run, "top", 3, exclude=[sid[38]])
    assert batch["sample_id"].tolist() == [sid[35], sid[34], sid[33]]
    assert batch["rank"].tolist() == [5, 6, 7]  # the rank among all samples of the run stays
    store.undo_last(pid, "bob")  # unlabeled again: back in the batch at its place
    assert next_batch(store, run, "top", 2, exclude=[sid[38]])["sample_id"].tolist() == [sid[36], sid[35]]
    labeled = set(store.labeled_sample_ids(pid).tolist())
    assert labeled == {sid[39], sid[37]}
    for strategy in query.STRATEGIES:
        batch = next_batch(store, run, strategy, 10, exclude=[sid[0], sid[1]])
        got = set(batch["sample_id"])
        assert len(got) == len(batch) == 10, strategy
        assert not got & (labeled | {sid[0], sid[1]}), strategy


def test_fewer_rows_when_fewer_samples_are_left(store, ranked):
    pid, run, sid = ranked
    store.record_labels(pid, sid[:30], "normal", "ann")
    for strategy in query.STRATEGIES:
        batch = next_batch(store, run, strategy, 24, exclude=[sid[30]])
        assert sorted(batch["sample_id"]) == sid[31:], strategy
    store.record_labels(pid, sid[30:], "normal", "ann")
    assert next_batch(store, run, "mixed", 24).empty


def test_each_strategy_as_semiad_query_picks_it(store, ranked):
    pid, run, sid = ranked
    store.record_label(pid, sid[39], "anomalous", "ann")
    scores = np.arange(N) / N
    labeled = np.zeros(N, bool)
    labeled[[39, 5]] = True  # 5: excluded
    Z = store.run_embedding(run)
    for strategy in query.STRATEGIES:
        expected = query.select(strategy, scores, labeled, 6, np.random.default_rng(7), embeddings=Z)
        batch = next_batch(store, run, strategy, 6, exclude=[sid[5]], rng=np.random.default_rng(7))
        assert batch["idx"].tolist() == [i for i, _ in expected], strategy
        assert batch["reason"].tolist() == [r for _, r in expected], strategy


def test_diverse_reads_the_embedding(store, ranked):
    pid, run, sid = ranked
    assert next_batch(store, run, "top", 2)["idx"].tolist() == [39, 38]
    # the top scorer, then the candidate farthest from it in latent space: the other cluster (x = 0)
    # and there the farthest along y (36 rather than 38)
    assert next_batch(store, run, "diverse", 2)["idx"].tolist() == [39, 36]


def test_same_state_same_batch_and_options_reach_the_strategy(store, ranked):
    pid, run, sid = ranked
    first = next_batch(store, run, "random", 8)["sample_id"].tolist()
    assert next_batch(store, run, "random", 8)["sample_id"].tolist() == first
    near = next_batch(store, run, "boundary", 1, contamination=0.5)
    assert abs(float(near["score"].iloc[0]) - query.threshold_at(np.arange(N) / N, 0.5)) < 1 / N


def test_ranked_rows_and_unfinished_runs(store, ranked):
    pid, run, sid = ranked
    rows = ranked_rows(store, run, [sid[3], 10**9, sid[39]], "your undo")
    assert rows["idx"].tolist() == [3, 39] and rows["rank"].tolist() == [37, 1]
    assert set(rows["reason"]) == {"your undo"}
    queued = store.request_run(pid, "deepsad", {}, "ann")
    with pytest.raises(StoreError, match="only a finished run"):
        next_batch(store, queued, "top", 3)


def test_a_new_run_of_the_same_store_is_its_own_ranking(store, ranked):
    pid, run, sid = ranked
    newer = finished_run(store, pid, 1 - np.arange(N) / N)
    assert next_batch(store, newer, "top", 2)["idx"].tolist() == [0, 1]
    assert next_batch(store, run, "top", 2)["idx"].tolist() == [39, 38]


def test_top_audit_turns_to_the_audit_after_a_dry_stretch_of_labels(store, tmp_path):
    """"Top, audit when dry" reads the order of the project's labels from the store: top cards while an
    anomaly is among the last AUDIT_AFTER labels, random-audit cards after that, top again once the
    audit finds one; an undo takes a label out of the stretch."""
    n = 3 * query.AUDIT_AFTER
    pid = store.create_project("dry", SampleSet(ids=[f"s{i}" for i in range(n)], X=np.zeros((n, 2), np.float32),
                                                kind="tabular", name="dry"))
    sid = store.samples(pid)["sample_id"].tolist()
    run = finished_run(store, pid, np.arange(n) / n)
    store.record_label(pid, sid[0], "anomalous", "ann")
    for i in range(1, query.AUDIT_AFTER):
        store.record_label(pid, sid[i], "normal", "ann")
    assert next_batch(store, run, "top-audit", 3)["idx"].tolist() == [n - 1, n - 2, n - 3]
    store.record_label(pid, sid[query.AUDIT_AFTER], "normal", "ann")
    audit = next_batch(store, run, "top-audit", 3)
    assert all(r == f"random audit: no anomaly in the last {query.AUDIT_AFTER} labels" for r in audit["reason"])
    assert not set(audit["sample_id"]) & set(store.labeled_sample_ids(pid).tolist())
    store.undo_last(pid, "ann")
    assert next_batch(store, run, "top-audit", 1)["idx"].tolist() == [n - 1]
    store.record_label(pid, sid[query.AUDIT_AFTER], "normal", "ann")
    store.record_label(pid, sid[1], "anomalous", "ann")  # relabeled: now the latest label, an anomaly
    assert next_batch(store, run, "top-audit", 1)["idx"].tolist() == [n - 1]
    store.record_labels(pid, sid[query.AUDIT_AFTER + 1:n - 10], "normal", "ann", source="map")
    assert since_anomaly(store, pid) == 0  # bulk labels from the Latent map are not reviews of the top
    assert next_batch(store, run, "top-audit", 1)["idx"].tolist() == [n - 1]


def test_labels_in_order_follow_the_latest_label_of_each_sample(store, ranked):
    pid, run, sid = ranked
    store.record_label(pid, sid[1], "normal", "ann")
    store.record_label(pid, sid[2], "anomalous", "ann", source="review:random")
    store.record_label(pid, sid[3], "normal", "ann")
    store.record_label(pid, sid[1], "anomalous", "bob")  # relabeled: moves to the end
    store.record_label(pid, sid[4], "normal", "ann")
    store.undo_last(pid, "ann")  # sid[4] is unlabeled again: not in the order
    order = store.labels_in_order(pid)
    assert order["sample_id"].tolist() == [sid[2], sid[3], sid[1]]
    assert order["label"].tolist() == ["anomalous", "normal", "anomalous"]
    assert order["source"].tolist() == ["review:random", "review", "review"]
    store.record_labels(pid, [sid[5], sid[6]], "normal", "ann", source="map")
    assert store.labels_in_order(pid)["sample_id"].tolist() == [sid[2], sid[3], sid[1], sid[5], sid[6]]
    assert store.labels_in_order(pid, source_prefix="review")["sample_id"].tolist() == [sid[2], sid[3], sid[1]]
    assert store.labels_in_order(pid, source_prefix="review:")["sample_id"].tolist() == [sid[2]]
