"""Two annotators labeling one project at the same time, on SQLite and on PostgreSQL."""
from __future__ import annotations

import threading

import numpy as np
import pytest

from semiad.data import SampleSet
from state.ranking import next_batch
from state.store import Store

N_EACH = 500


def table(n: int) -> SampleSet:
    return SampleSet(ids=[f"r{i}" for i in range(n)], X=np.zeros((n, 2), np.float32), kind="tabular", name="t")


@pytest.fixture
def store(tmp_path, db_url) -> Store:
    s = Store(db_url(tmp_path), home=tmp_path)
    yield s
    s.close()


def test_two_annotators_500_labels_each_at_once(store, tmp_path, db_url):
    pid = store.create_project("shared", table(700))
    sid = store.samples(pid)["sample_id"].tolist()
    # ann labels samples 0..499, bob 200..699: 300 samples get a label from both, in random order
    plans = {"ann": (sid[:N_EACH], "normal"), "bob": (sid[200:200 + N_EACH], "anomalous")}
    barrier = threading.Barrier(2)
    errors: list[BaseException] = []

    def annotate(who: str) -> None:
        # Each annotator has their own app server, so their own Store (engine, connection pool).
        own = Store(db_url(tmp_path), home=tmp_path)
        targets, label = plans[who]
        order = np.random.default_rng(len(who) + ord(who[0])).permutation(targets).tolist()
        try:
            barrier.wait()
            for i in order:
                own.record_label(pid, i, label, who)
        except BaseException as e:  # re-raised in the main thread below
            errors.append(e)
        finally:
            own.close()

    threads = [threading.Thread(target=annotate, args=(who,)) for who in plans]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    assert not errors, errors
    assert not any(t.is_alive() for t in threads)

    ev = store.events(pid)
    assert len(ev) == 2 * N_EACH and ev["event_id"].is_unique
    assert not ev.duplicated(["sample_id", "annotator"]).any()  # one event per click, none doubled
    for who, (targets, label) in plans.items():
        mine = ev[ev["annotator"] == who]
        assert sorted(mine["sample_id"]) == sorted(targets) and set(mine["label"]) == {label}
    # the denormalised current label is the latest event of every sample, whoever wrote it
    latest = ev.drop_duplicates("sample_id", keep="last").set_index("sample_id")["label"]
    current = store.samples(pid).set_index("sample_id")["label"]
    assert current.to_dict() == latest.reindex(current.index).to_dict()
    counts = store.label_counts(pid)
    assert counts["normal"] + counts["anomalous"] == 700 and counts["unlabeled"] == 0
    assert counts["events"] == 2 * N_EACH
    assert counts["normal"] == int((latest == "normal").sum())
    # every doubly labeled sample is disputed, with both names
    both = sid[200:N_EACH]
    disputed = store.disputes(pid, sid)
    assert sorted(disputed) == sorted(both)
    assert all(v == [("ann", "normal"), ("bob", "anomalous")] for v in disputed.values())


def test_two_labels_on_one_sample_keep_both_and_the_latest_is_current(store):
    pid = store.create_project("p", table(5))
    a, b = store.samples(pid)["sample_id"].tolist()[:2]
    store.record_label(pid, a, "anomalous", "ann")
    store.record_label(pid, a, "normal", "bob")
    store.record_label(pid, b, "normal", "ann")
    ev = store.events(pid)
    assert ev[["sample_id", "annotator", "label"]].values.tolist() == [
        [a, "ann", "anomalous"], [a, "bob", "normal"], [b, "ann", "normal"]]
    assert store.samples(pid).set_index("sample_id")["label"][a] == "normal"
    assert store.disputes(pid, [a, b]) == {a: [("ann", "anomalous"), ("bob", "normal")]}
    assert store.events(pid, last=2)["event_id"].tolist() == ev["event_id"].tolist()[1:]
    # ann changes her mind and agrees: no longer disputed; her earlier event is still kept
    store.record_label(pid, a, "normal", "ann")
    assert store.disputes(pid, [a, b]) == {}
    assert len(store.events(pid)) == 4


def test_disputes_compares_each_annotators_latest_label(store):
    """Five annotators relabel 500 samples twice each; only their latest labels count (the speed of
    this query on a 1M-event history is measured by bench/store_load.py)."""
    pid = store.create_project("p", table(500))
    sid = store.samples(pid)["sample_id"].tolist()
    for k, who in enumerate(["ann", "bob", "cy", "dee", "eve"] * 2):
        store.record_labels(pid, sid, "normal" if k % 2 else "anomalous", who)
    expected = [("ann", "normal"), ("bob", "anomalous"), ("cy", "normal"), ("dee", "anomalous"), ("eve", "normal")]
    assert store.disputes(pid, sid[:24]) == {i: expected for i in sid[:24]}
    store.undo_last(pid, "eve")  # eve's latest batch undone: her label goes back to "anomalous"
    assert store.disputes(pid, sid[:1])[sid[0]][-1] == ("eve", "anomalous")


def test_an_undo_restores_the_label_but_never_makes_it_the_undoers_vote(store):
    """erin labels over alice and undoes it: the sample is alice's again, and erin said nothing of it
    (before, erin's vote became alice's label, and a dispute listed erin saying what she never said)."""
    pid = store.create_project("p", table(5))
    a = int(store.samples(pid)["sample_id"][0])
    store.record_label(pid, a, "normal", "alice")
    store.record_label(pid, a, "anomalous", "erin")
    store.undo_last(pid, "erin")
    assert store.samples(pid).set_index("sample_id")["label"][a] == "normal"
    store.record_label(pid, a, "anomalous", "bob")
    assert store.disputes(pid, [a]) == {a: [("alice", "normal"), ("bob", "anomalous")]}
    assert store.disputes(pid) == {a: [("alice", "normal"), ("bob", "anomalous")]}


def test_next_batch_follows_labels_and_undos_of_two_annotators(store):
    """After labels, relabels and undos by two annotators, the review batch equals the ranking
    recomputed from the scores and the current labels, for every run."""
    pid = store.create_project("q", table(60))
    sid = store.samples(pid)["sample_id"].tolist()
    rng = np.random.default_rng(0)
    runs = []
    for _ in range(2):  # two scored runs: the batch of each must follow
        run = store.request_run(pid, "deepsad", {}, "ann")
        store.claim_next_run("w:1")
        store.record_labels(pid, rng.choice(sid, 5, replace=False).tolist(), "normal", "ann")  # before scoring
        store.save_scores(run, rng.random(60))
        store.finish_run(run, "done")
        runs.append(run)

    def expected(run: int, n: int, exclude=()) -> list[int]:
        sc = store.scores(run).merge(store.samples(pid)[["sample_id"]], on="sample_id")
        sc = sc[sc["label"].isna() & ~sc["sample_id"].isin(list(exclude))]
        return sc.sort_values("score", ascending=False, kind="stable")["sample_id"].head(n).tolist()

    for step in range(40):
        who = ("ann", "bob")[step % 2]
        if step % 5 == 4:
            store.undo_last(pid, who)
        else:
            store.record_labels(pid, rng.choice(sid, 3, replace=False).tolist(),
                                ("normal", "anomalous")[step % 3 == 0], who)
        for run in runs:
            assert next_batch(store, run, "top", 8)["sample_id"].tolist() == expected(run, 8), (step, run)
    skip = expected(runs[1], 3)
    assert next_batch(store, runs[1], "top", 5, exclude=skip)["sample_id"].tolist() == expected(runs[1], 5, skip)
    # asking for more than are left gives all of them
    assert next_batch(store, runs[0], "top", 100)["sample_id"].tolist() == expected(runs[0], 100)


def test_counts_and_votes_are_rebuilt_for_a_database_from_before_they_existed(store, tmp_path, db_url):
    from sqlalchemy import delete

    from state.models import LabelCounts, LabelVote

    pid = store.create_project("old", table(10))
    a, b, c = store.samples(pid)["sample_id"].tolist()[:3]
    store.record_labels(pid, [a, b], "anomalous", "ann")
    store.record_label(pid, a, "normal", "bob")
    store.record_label(pid, c, "normal", "bob")
    store.undo_last(pid, "bob")  # c back to unlabeled
    counts, disputes = store.label_counts(pid), store.disputes(pid)
    assert counts == {"normal": 1, "anomalous": 1, "unlabeled": 8, "events": 5}
    assert disputes == {a: [("ann", "anomalous"), ("bob", "normal")]}
    with store.session() as s:  # what an older semiad's database lacks
        s.execute(delete(LabelVote))
        s.execute(delete(LabelCounts))
        s.commit()
    again = Store(db_url(tmp_path), home=tmp_path)
    assert again.label_counts(pid) == counts and again.disputes(pid) == disputes
    assert again.disputes(pid, [a, b, c]) == disputes
    again.close()
