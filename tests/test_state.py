"""The store: label events, undo, current labels, runs, scores, reopening the database."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from semiad.data import SampleSet
from state.store import JobBusy, Store, StoreError


def tiny_set(n: int = 12) -> SampleSet:
    rng = np.random.default_rng(0)
    return SampleSet(ids=[f"s{i}" for i in range(n)], X=rng.random((n, 1, 28, 28), dtype=np.float32),
                     kind="image", name="tiny", truth=(np.arange(n) % 4 == 0).astype(np.int8))


@pytest.fixture
def store(tmp_path, db_url) -> Store:
    s = Store(db_url(tmp_path), home=tmp_path)
    yield s
    s.close()


@pytest.fixture
def project(store) -> int:
    return store.create_project("p", tiny_set(), source="test")


def ids(store: Store, pid: int) -> list[int]:
    return store.samples(pid)["sample_id"].tolist()


def test_project_round_trip(store, project):
    info = store.project(project)
    assert (info.name, info.kind, info.n_samples) == ("p", "image", 12)
    back = store.load_samples(project)
    np.testing.assert_array_equal(back.X, tiny_set().X)
    assert back.ids == tiny_set().ids and back.truth.tolist() == tiny_set().truth.tolist()
    with pytest.raises(StoreError, match="exists already"):
        store.create_project("p", tiny_set())


def test_a_tables_column_names_are_kept_with_the_project(store, tmp_path):
    from semiad.data import load_csv

    (tmp_path / "t.csv").write_text("id,heart_rate,age\nx,60,30\ny,61,40\nz,200,50\n")
    pid = store.create_project("t", load_csv(tmp_path / "t.csv"), source=str(tmp_path / "t.csv"))
    assert store.load_samples(pid).columns == ["heart_rate", "age"]


def test_label_events_are_appended_and_latest_wins(store, project):
    a, b = ids(store, project)[:2]
    store.record_label(project, a, "anomalous", "ann")
    store.record_label(project, a, "normal", "bob")
    store.record_labels(project, [b], "anomalous", "ann", source="map")
    ev = store.events(project)
    assert ev["label"].tolist() == ["anomalous", "normal", "anomalous"]
    assert ev["annotator"].tolist() == ["ann", "bob", "ann"]
    assert ev["source"].tolist() == ["review", "review", "map"]
    assert ev["time"].notna().all() and (ev["round"] == 0).all()
    current = store.samples(project).set_index("sample_id")["label"]
    assert current[a] == "normal" and current[b] == "anomalous"
    assert store.label_counts(project) == {"normal": 1, "anomalous": 1, "unlabeled": 10, "events": 3}
    y = store.semi_targets(project)
    assert y[0] == 1 and y[1] == -1 and (y[2:] == 0).all()


def test_bad_labels_are_refused(store, project):
    a = ids(store, project)[0]
    with pytest.raises(StoreError, match="label must be"):
        store.record_label(project, a, "weird", "ann")
    with pytest.raises(StoreError, match="annotator"):
        store.record_label(project, a, "normal", "  ")
    with pytest.raises(StoreError, match="not in project"):
        store.record_label(project, 10_000, "normal", "ann")
    assert store.label_counts(project)["events"] == 0


def test_undo_reverts_a_whole_batch_with_new_events(store, project):
    a, b, c = ids(store, project)[:3]
    store.record_label(project, a, "normal", "ann")
    store.record_labels(project, [a, b, c], "anomalous", "ann")
    store.record_label(project, c, "normal", "bob")  # someone else's label is not undone by ann
    assert sorted(store.undo_last(project, "ann")) == [a, b]  # c was relabeled by bob since: kept
    current = store.samples(project).set_index("sample_id")["label"]
    assert current[a] == "normal" and pd.isna(current[b]) and current[c] == "normal"
    assert store.undo_last(project, "ann") == [a]  # then the first label
    assert store.undo_last(project, "ann") == []
    assert store.label_counts(project)["events"] == 1 + 3 + 1 + 2 + 1  # nothing deleted
    assert store.events(project)["source"].tolist()[-3:] == ["undo"] * 3


def test_everything_survives_reopening_the_database(tmp_path, db_url, project, store):
    a = ids(store, project)[0]
    store.record_label(project, a, "anomalous", "ann")
    run = store.request_run(project, "deepsad", {"hyper": {"epochs": 1}}, "ann")
    store.close()
    again = Store(db_url(tmp_path), home=tmp_path)
    assert again.label_counts(project)["anomalous"] == 1
    assert again.events(project)["annotator"].tolist() == ["ann"]
    assert again.run(run).params == {"hyper": {"epochs": 1}, "label_events": 1}  # + the label snapshot
    again.close()


def test_one_active_run_per_project_and_rounds(store, project):
    run = store.request_run(project, "deepsad", {}, "ann")
    with pytest.raises(JobBusy):
        store.request_run(project, "deepsad", {}, "ann")
    claimed = store.claim_next_run("w:1")
    assert claimed.id == run and claimed.status == "running" and store.claim_next_run("w:1") is None
    assert store.report_progress(run, 0.5, "half") is False
    store.finish_run(run, "done", {"auc": 0.9})
    assert store.current_round(project) == 1 and store.run(run).round == 1
    a = ids(store, project)[0]
    store.record_label(project, a, "normal", "ann")
    assert store.events(project)["round"].tolist() == [1]


def test_cancel_and_dead_worker(store, project):
    run = store.request_run(project, "deepsad", {}, "ann")
    store.claim_next_run("nohost:1")
    store.cancel_run(run)
    assert store.report_progress(run, 0.1, "x") is True  # the worker sees the request
    store.finish_run(run, "cancelled")
    run2 = store.request_run(project, "deepsad", {}, "ann")
    store.claim_next_run("thishost:999999999")
    assert store.interrupt_dead_runs(host="thishost") == [run2]
    assert store.run(run2).status == "interrupted"


def test_save_scores_writes_the_run_files_and_the_ranked_table(store, project):
    run = store.request_run(project, "deepsad", {}, "ann")
    scores = np.linspace(0, 1, 12)
    Z = np.arange(24, dtype=np.float64).reshape(12, 2)
    store.save_scores(run, scores, embedding=Z)
    files = store.run_files(run)
    assert files.folder == store.project_dir(project) / "runs" / str(run)
    np.testing.assert_array_equal(np.load(files.scores), scores)
    np.testing.assert_array_equal(store.run_scores(run), scores)
    assert store.run_embedding(run).dtype == np.float32 and np.array_equal(store.run_embedding(run), Z)
    table = store.scores(run)
    assert np.allclose(table["score"], scores)
    with pytest.raises(StoreError, match="11 scores for 12 samples"):
        store.save_scores(run, scores[:11])


def test_disputes(store, project):
    a, b = ids(store, project)[:2]
    store.record_label(project, a, "anomalous", "ann")
    store.record_label(project, a, "normal", "bob")
    store.record_label(project, b, "normal", "ann")
    store.record_label(project, b, "normal", "bob")
    assert store.disputes(project, [a, b]) == {a: [("ann", "anomalous"), ("bob", "normal")]}
