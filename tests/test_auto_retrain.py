"""Auto-retrain every k labels: a project setting in the store, turned into warm-start runs by the
worker. Real store (SQLite and PostgreSQL), real worker, real Deep SAD fits on a tiny project."""
from __future__ import annotations

import time

import numpy as np
import pytest

from semiad.data import SampleSet
from state.store import Store
from state.worker import AUTO_RETRAIN, AUTO_RETRAIN_BY, Worker, queue_auto_retrains

TINY = {"pretrain_epochs": 1, "epochs": 1, "finetune_epochs": 1, "batch_size": 8}


@pytest.fixture
def store(tmp_path, db_url) -> Store:
    s = Store(db_url(tmp_path), home=tmp_path)
    yield s
    s.close()


def trained(store: Store, name: str = "p") -> tuple[int, list[int]]:
    """A 24-image project with a first Deep SAD model, trained by a real worker."""
    rng = np.random.default_rng(0)
    data = SampleSet(ids=[f"s{i}" for i in range(24)], X=rng.random((24, 1, 28, 28), dtype=np.float32),
                     kind="image", name="tiny")
    pid = store.create_project(name, data)
    store.request_run(pid, "deepsad", {"hyper": TINY, "warm_start": False, "fast": False}, "ann")
    assert Worker(store, device="cpu", maps=False).run_once()
    assert store.latest_done_run(pid) is not None, store.runs(pid)[-1].error
    return pid, store.samples(pid)["sample_id"].tolist()


def label(store: Store, pid: int, sample_ids: list[int]) -> None:
    for i in sample_ids:
        store.record_label(pid, i, "normal", "ann")


def wait_until(predicate, timeout: float = 300.0) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError("timed out")


def test_the_setting_is_stored_per_project_and_off_by_default(store):
    a, _ = trained(store, "a")
    b, ids = trained(store, "b")
    assert store.project_setting(a, AUTO_RETRAIN) is None and store.projects_with_setting(AUTO_RETRAIN) == {}
    store.set_project_setting(a, AUTO_RETRAIN, 5)
    store.set_project_setting(a, AUTO_RETRAIN, 3)  # the last writer wins
    assert store.project_setting(a, AUTO_RETRAIN) == 3 and store.project_setting(b, AUTO_RETRAIN) is None
    assert store.projects_with_setting(AUTO_RETRAIN) == {a: 3}
    label(store, b, ids[:10])  # off: any number of labels queues nothing
    assert queue_auto_retrains(store) == []
    store.set_project_setting(a, AUTO_RETRAIN, None)
    assert store.projects_with_setting(AUTO_RETRAIN) == {}


def test_every_k_labels_a_warm_start_run_is_queued_like_a_retrain_click_never_two_at_once(store):
    pid, ids = trained(store)
    first = store.latest_done_run(pid)
    store.set_project_setting(pid, AUTO_RETRAIN, 3)
    label(store, pid, ids[:2])
    assert queue_auto_retrains(store) == []  # 2 of 3
    label(store, pid, ids[2:3])
    (run_id,) = queue_auto_retrains(store)
    run = store.run(run_id)
    assert (run.method, run.parent_id, run.status, run.requested_by) == ("deepsad", first.id, "queued", AUTO_RETRAIN_BY)
    assert run.params["hyper"] == first.params["hyper"] and run.params["warm_start"] is True
    assert run.n_labels == 3 and run.params["label_events"] == 3

    label(store, pid, ids[3:9])  # 6 more while it waits: still one run
    assert queue_auto_retrains(store) == [] and [r.status for r in store.runs(pid)] == ["done", "queued"]
    assert Worker(store, device="cpu", maps=False).run_once()
    assert store.run(run_id).status == "done" and store.run(run_id).round == 2
    # the 6 labels given during the run count from its snapshot (3): 9 - 3 = 6 ≥ 3, so one more
    (second,) = queue_auto_retrains(store)
    assert store.run(second).parent_id == run_id and store.run(second).params["label_events"] == 9


def test_a_user_run_or_a_cancelled_one_resets_the_count(store):
    pid, ids = trained(store)
    store.set_project_setting(pid, AUTO_RETRAIN, 2)
    label(store, pid, ids[:2])
    user = store.request_run(pid, "deepsad", {"hyper": TINY}, "ann", parent_id=store.latest_done_run(pid).id)
    assert queue_auto_retrains(store) == []  # the user's run is active
    store.cancel_run(user)  # still queued: cancelled at once
    assert queue_auto_retrains(store) == []  # no new label since the user's (cancelled) request
    label(store, pid, ids[2:4])
    assert len(queue_auto_retrains(store)) == 1


def test_the_worker_loop_retrains_by_itself_as_labels_come_in(store):
    """The real loop: no page involved, so it works with any number of annotators."""
    pid, ids = trained(store)
    store.set_project_setting(pid, AUTO_RETRAIN, 2)
    worker = Worker(store, device="cpu", maps=False, poll_s=0.05).start()
    try:
        store.record_label(pid, ids[0], "anomalous", "ann")
        store.record_label(pid, ids[1], "normal", "bob")  # two annotators, one count
        wait_until(lambda: store.latest_done_run(pid).round == 2)
        auto = store.latest_done_run(pid)
        assert auto.requested_by == AUTO_RETRAIN_BY and auto.n_labels == 2 and auto.parent_id is not None
        assert len(store.runs(pid)) == 2  # and nothing more until 2 more labels
    finally:
        worker.stop(timeout=60)
