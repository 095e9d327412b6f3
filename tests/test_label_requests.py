"""Label and undo requests with a token (one per key press or click on the Review page) are applied
exactly once, whatever the number of deliveries; undo can target one request's labels."""
from __future__ import annotations

import threading
import uuid

import numpy as np
import pytest
from sqlalchemy import text

from semiad.data import SampleSet
from state.store import Store, StoreError


def tiny_set(n: int = 8) -> SampleSet:
    rng = np.random.default_rng(0)
    return SampleSet(ids=[f"s{i}" for i in range(n)], X=rng.random((n, 1, 28, 28), dtype=np.float32),
                     kind="image", name="tiny")


@pytest.fixture
def store(tmp_path, db_url) -> Store:
    s = Store(db_url(tmp_path), home=tmp_path)
    yield s
    s.close()


@pytest.fixture
def project(store) -> int:
    return store.create_project("p", tiny_set(), source="test")


def tok() -> str:
    return uuid.uuid4().hex


def history(store: Store, pid: int) -> list[tuple[int, str, str]]:
    ev = store.events(pid)
    return list(zip(ev["sample_id"], ev["label"], ev["source"]))


def test_a_label_request_delivered_three_times_is_one_event(store, project):
    a = store.samples(project)["sample_id"][0]
    t = tok()
    first = store.record_label(project, a, "anomalous", "ann", source="review:top", token=t)
    assert store.record_label(project, a, "anomalous", "ann", source="review:top", token=t) == first
    assert store.record_label(project, a, "normal", "ann", source="review:top", token=t) == first  # same press
    assert history(store, project) == [(a, "anomalous", "review:top")]
    assert store.label_counts(project) == {"normal": 0, "anomalous": 1, "unlabeled": 7, "events": 1}
    assert store.applied_tokens([t, tok()]) == {t}


def test_undo_requests_are_applied_once_and_can_target_one_press(store, project):
    a, b, c = store.samples(project)["sample_id"][:3]
    ta, tb, tc = tok(), tok(), tok()
    store.record_label(project, a, "normal", "ann", token=ta)
    store.record_label(project, b, "anomalous", "ann", token=tb)
    store.record_label(project, c, "normal", "ann", token=tc)
    u1 = tok()
    assert store.undo_last(project, "ann", token=u1, target=ta) == [a]  # the press on a, not the latest
    assert store.undo_last(project, "ann", token=u1, target=ta) == []  # delivered again: nothing
    assert store.undo_last(project, "ann", token=tok(), target=ta) == []  # a new press, but a is undone already
    assert store.undo_last(project, "ann", token=tok()) == [c]  # no target: the latest batch
    labels = store.samples(project).set_index("sample_id")["label"]
    assert labels.isna()[a] and labels[b] == "anomalous" and labels.isna()[c]
    assert [(s, lab) for s, lab, _ in history(store, project)] == [
        (a, "normal"), (b, "anomalous"), (c, "normal"), (a, "unlabeled"), (c, "unlabeled")]
    assert store.label_counts(project)["events"] == 5


def test_undo_cannot_target_someone_elses_press(store, project):
    a = store.samples(project)["sample_id"][0]
    t = tok()
    store.record_label(project, a, "normal", "ann", token=t)
    assert store.undo_last(project, "bob", token=tok(), target=t) == []
    assert store.samples(project).set_index("sample_id")["label"][a] == "normal"


def test_an_undo_of_a_label_someone_has_changed_since_is_refused_with_their_name(store, project):
    """Ann's label, then Bob's on the same sample: Ann's undo writes nothing and says why (the page shows
    it and hides the card it had brought back); the token stays free, so a repeat gets the same answer."""
    a, b = store.samples(project)["sample_id"][:2]
    ta = tok()
    store.record_label(project, a, "normal", "ann", token=ta)
    store.record_label(project, a, "anomalous", "bob", token=tok())
    u = tok()
    for _ in range(2):
        with pytest.raises(StoreError, match=r"Not undone: that sample was labeled again since \(by bob\)"):
            store.undo_last(project, "ann", token=u, target=ta)
    assert store.applied_tokens([u]) == set()
    with pytest.raises(StoreError, match="by bob"):
        store.undo_last(project, "ann")  # no target: the same latest label
    store.record_labels(project, [a, b], "normal", "ann", source="map")  # a batch half relabeled since
    store.record_label(project, b, "anomalous", "bob")
    assert store.undo_last(project, "ann") == [a]  # the half still hers is reverted
    assert [(s, lab) for s, lab, _ in history(store, project)][-1] == (a, "anomalous")


def test_a_press_applied_after_the_next_model_finished_keeps_the_round_of_the_card(store, project):
    """The card came from round 1's ranking; the press reached the store after round 2 finished: the event
    says round 1 (what the annotator was looking at). A round from the future, or none, is the store's."""
    a, b, c = store.samples(project)["sample_id"][:3]
    for _ in range(2):
        run = store.request_run(project, "iforest", {}, "test")
        assert store.claim_next_run("w").id == run
        store.finish_run(run, "done")
    assert store.current_round(project) == 2
    store.record_label(project, a, "normal", "ann", token=tok(), seen_round=1)
    store.record_label(project, b, "normal", "ann", token=tok(), seen_round=7)
    store.record_label(project, c, "normal", "ann", token=tok())
    assert store.events(project)["round"].tolist() == [1, 2, 2]


def test_an_undo_with_nothing_to_undo_is_still_a_done_request(store, project):
    a = store.samples(project)["sample_id"][0]
    u = tok()
    assert store.undo_last(project, "ann", token=u) == []
    store.record_label(project, a, "normal", "ann", token=tok())
    assert store.undo_last(project, "ann", token=u) == []  # the same press again does not undo the new label
    assert store.samples(project).set_index("sample_id")["label"][a] == "normal"


def test_bad_tokens_are_refused(store, project):
    a = store.samples(project)["sample_id"][0]
    for bad in ("short", "x" * 65, "has space in it", "semi;colon-12345"):
        with pytest.raises(StoreError, match="token"):
            store.record_label(project, a, "normal", "ann", token=bad)
    assert store.label_counts(project)["events"] == 0


def test_one_token_from_many_threads_at_once_writes_one_event(tmp_path, db_url):
    url = db_url(tmp_path)
    setup = Store(url, home=tmp_path)
    pid = setup.create_project("p", tiny_set(), source="test")
    a = int(setup.samples(pid)["sample_id"][0])
    t = tok()
    stores = [Store(url, home=tmp_path) for _ in range(4)]
    start = threading.Barrier(len(stores))
    batches, errors = [], []

    def send(st: Store) -> None:
        start.wait()
        try:
            batches.append(st.record_label(pid, a, "anomalous", "ann", token=t))
        except Exception as e:  # reported below
            errors.append(e)

    threads = [threading.Thread(target=send, args=(st,)) for st in stores]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert not errors and len(set(batches)) == 1
    assert setup.label_counts(pid)["events"] == 1 and len(setup.events(pid)) == 1
    for st in stores + [setup]:
        st.close()


def test_a_database_from_before_tokens_gets_the_table(tmp_path):
    old = Store(home=tmp_path)
    pid = old.create_project("p", tiny_set(), source="test")
    a = old.samples(pid)["sample_id"][0]
    old.record_label(pid, a, "normal", "ann")
    with old.engine.begin() as conn:
        conn.execute(text("DROP TABLE label_requests"))
    old.close()
    new = Store(home=tmp_path)
    t = tok()
    new.record_label(pid, a, "anomalous", "ann", token=t)
    new.record_label(pid, a, "anomalous", "ann", token=t)
    assert new.label_counts(pid)["events"] == 2
    new.close()


def test_a_press_held_back_past_a_label_given_elsewhere_is_refused_and_the_tabs_own_presses_are_not(store, project):
    """A press made before another label of the same sample, that reached the server after it (a dropped
    connection), must not write over it; presses of the same tab since (tokens "<tab>_…") come in order."""
    from datetime import timedelta

    from state.models import utcnow

    a, b = (int(i) for i in store.samples(project)["sample_id"][:2])
    pressed = utcnow() - timedelta(seconds=5)
    store.record_label(project, a, "anomalous", "nia", token="tabB_" + tok())  # nia, in another tab, now
    with pytest.raises(StoreError, match=r"s0 was labeled anomalous by nia after your key press, which reached "
                                         r"the server 5 s later; the newer label stands"):
        store.record_label(project, a, "normal", "max", token="tabA_" + tok(), pressed_at=pressed)
    assert store.samples(project)["label"][0] == "anomalous" and len(store.events(project)) == 1
    # max's own tab: a label, then (pressed before that label was written) a change of mind: both, in order
    store.record_label(project, b, "anomalous", "max", token="tabA_" + tok(), pressed_at=utcnow())
    store.record_label(project, b, "normal", "max", token="tabA_" + tok(), pressed_at=pressed)
    assert store.samples(project)["label"][1] == "normal"
    # a label given elsewhere since counts whoever gave it, the same person in another tab too
    with pytest.raises(StoreError, match="s1 was labeled normal by max after your key press"):
        store.record_label(project, b, "anomalous", "max", token="tabC_" + tok(), pressed_at=pressed)
    assert store.record_label(project, b, "anomalous", "max", token=tok())  # no press time: applied as before
    # two people pressing at once are both recorded (a dispute): a press is refused only when held back 2 s
    c = int(store.samples(project)["sample_id"][2])
    store.record_label(project, c, "anomalous", "nia", token="tabB_" + tok())
    store.record_label(project, c, "normal", "max", token="tabA_" + tok(), pressed_at=utcnow() - timedelta(seconds=1))
    assert store.disputes(project)


def test_each_request_is_applied_as_the_annotator_who_pressed(store, project):
    """A name changed in the sidebar while presses were on their way does not take them over."""
    import time

    from pages.review_card import apply_requests

    a, b = (int(i) for i in store.samples(project)["sample_id"][:2])
    pressed = time.time() * 1000 - 3000  # ms on the server's clock, as the browser stamps a press
    requests = [{"t": "tabA_" + tok(), "op": "label", "sid": a, "label": "normal", "who": "alice", "at": pressed},
                {"t": "tabA_" + tok(), "op": "label", "sid": b, "label": "anomalous", "who": "alice", "at": pressed}]
    acked, errors, _ = apply_requests(store, project, "bob", requests, [])
    assert errors == [] and acked == [r["t"] for r in requests]
    ev = store.events(project)
    assert ev["annotator"].tolist() == ["alice", "alice"] and ev["label"].tolist() == ["normal", "anomalous"]
    # bob labels a afterwards; alice's press on a, 3 s old and held back on its way, is refused, not applied
    store.record_label(project, a, "anomalous", "bob")
    late = {"t": "tabA_" + tok(), "op": "label", "sid": a, "label": "normal", "who": "alice", "at": pressed}
    acked, errors, _ = apply_requests(store, project, "alice", [late], [])
    assert acked == [late["t"]] and errors[0]["message"].startswith("Not saved: s0 was labeled anomalous by bob after")
    assert store.samples(project)["label"][0] == "anomalous"


def test_an_undo_of_your_last_label_given_elsewhere_names_its_sample(store, project):
    """A tab whose own presses are all undone takes back your last label, maybe given in another tab: it says
    which sample that was."""
    from pages.review_card import apply_requests

    a, b = (int(i) for i in store.samples(project)["sample_id"][:2])
    store.record_label(project, a, "normal", "ann", token=tok())  # in another tab
    undo = {"t": tok(), "op": "undo", "target": None, "who": "ann"}
    assert apply_requests(store, project, "ann", [undo], [])[2] == "Undid your last label: s0."
    store.record_labels(project, [a, b], "anomalous", "ann", source="map")
    assert apply_requests(store, project, "ann", [dict(undo, t=tok())], [])[2] == "Undid your last label (2 samples)."
    assert apply_requests(store, project, "bob", [dict(undo, t=tok(), who="bob")], [])[2] == "Nothing of yours to undo."
