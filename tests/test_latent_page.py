"""The Latent map page: a lasso selection (injected as Streamlit would report it) labels samples."""
from __future__ import annotations

import json
import socket
import subprocess

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from semiad import embed
from state.store import Store
from state.worker import Worker, default_map_params, map_version, project_map
from tests.conftest import open_app, trained_project


def selection(keys: list[str], as_dict: bool) -> dict:
    points = [{"customdata": {"0": k, "1": 1.0} if as_dict else [k, 1.0], "curve_number": 0, "point_index": i}
              for i, k in enumerate(keys)]
    return {"selection": {"points": points, "point_indices": list(range(len(keys))), "box": [], "lasso": []}}


def map_with_selection(home, n: int, as_dict: bool = True):
    """A trained project's Latent map with its first `n` samples lasso-selected (as Streamlit reports a
    selection): (store, pid, run, the app, the selected keys)."""
    store, pid = trained_project(home)
    run = store.latest_done_run(pid)
    at = open_app(pid, "pages/latent.py")
    keys = store.samples(pid)["key"].tolist()[:n]
    at.session_state[f"map-{run.id}-0"] = selection(keys, as_dict)
    at.run()
    return store, pid, run, at, keys


def chart_key(at: AppTest) -> str:
    return next(k for k in at.session_state.filtered_state if str(k).startswith("map-"))


@pytest.mark.parametrize("as_dict", [True, False])
def test_lasso_selection_labels_every_selected_sample_in_one_batch(home, as_dict):
    store, pid, run, at, keys = map_with_selection(home, 5, as_dict)
    assert any("PCA" in c.value for c in at.caption)  # UMAP off in tests: PCA map shown
    assert not at.exception
    assert at.subheader[0].value == "5 selected"
    at.checkbox(key=f"keep-{run.id}-{keys[0]}").uncheck().run()  # deselect one
    at.button(key="map_anomalous").click().run()
    assert not at.exception
    events = store.events(pid)
    assert sorted(events["key"]) == sorted(keys[1:]) and set(events["source"]) == {"map"}
    assert events["batch"].nunique() == 1  # one undo reverts the batch
    assert store.undo_last(pid, "alice") and store.label_counts(pid)["anomalous"] == 0


def test_a_tick_taken_off_just_before_the_click_is_left_out_and_undo_stays_after_the_bulk_label(home):
    """A quick person unticks a picture and clicks before the untick's rerun has drawn the page
    again: the click arrives with the untick, and the button's callback must read it (not the
    previous run's list of ticked pictures)."""
    store, pid, run, at, keys = map_with_selection(home, 6)
    assert at.button(key="map_anomalous").label == "Label all 6 anomalous"
    at.checkbox(key=f"keep-{run.id}-{keys[1]}").uncheck()
    at.checkbox(key=f"keep-{run.id}-{keys[4]}").uncheck()
    at.button(key="map_anomalous").click().run()  # one rerun: the unticks and the click together
    assert not at.exception
    assert sorted(store.events(pid)["key"]) == sorted(keys[:1] + keys[2:4] + keys[5:])
    assert at.info[0].value == "Labeled 4 samples anomalous (one undo reverts them all)."
    assert not at.subheader  # the selection is cleared ...
    at.button(key="map_undo").click().run()  # ... and its undo is still at hand
    assert store.label_counts(pid)["anomalous"] == 0
    assert at.info[0].value == "Undid the last label of 4 sample(s)."
    sid = store.samples(pid).set_index("key")["sample_id"]
    store.record_label(pid, int(sid[keys[3]]), "anomalous", "alice")  # a label given on Review, say
    at.button(key="map_undo").click().run()
    assert at.info[0].value == f"Undid the last label of 1 sample(s): {keys[3]}."  # named: it was not the map's


def test_samples_labeled_already_start_unticked_so_a_bulk_label_leaves_them_as_they_are(home):
    store, pid = trained_project(home)
    run = store.latest_done_run(pid)
    keys = store.samples(pid)["key"].tolist()[:6]
    sid = store.samples(pid).set_index("key")["sample_id"]
    store.record_labels(pid, [int(sid[k]) for k in keys[1:3]], "anomalous", "bob")  # found earlier
    at = open_app(pid, "pages/latent.py")
    at.session_state[f"map-{run.id}-0"] = selection(keys, True)
    at.run()
    assert not at.exception
    assert [at.checkbox(key=f"keep-{run.id}-{k}").value for k in keys] == [True, False, False, True, True, True]
    assert any(c.value.startswith("2 of the selected samples are labeled already") for c in at.caption)
    at.button(key="map_normal").click().run()
    labels = store.samples(pid).set_index("key")["label"]
    assert labels[keys].tolist() == ["normal", "anomalous", "anomalous", "normal", "normal", "normal"]
    at.session_state[f"map-{run.id}-1"] = selection(keys[:3], True)  # a tick put back changes that one
    at.run()
    at.checkbox(key=f"keep-{run.id}-{keys[1]}").check()
    at.button(key="map_normal").click().run()
    assert store.samples(pid).set_index("key")["label"][keys[:3]].tolist() == ["normal", "normal", "anomalous"]


def test_umap_map_is_cached_per_run_and_recomputed_after_a_new_run(home):
    store, pid = trained_project(home)
    run1 = store.latest_done_run(pid)
    params = default_map_params()
    first = project_map(store, run1, params)
    assert first.shape == (198, 2)
    cache = embed.ProjectionCache(store.run_files(run1).maps)
    keys = store.samples(pid)["key"].tolist()
    np.testing.assert_array_equal(cache.get(map_version(run1), "umap", params, ids=keys), first)
    assert project_map(store, run1, params) is not None  # hit: read back, same file
    store.record_label(pid, int(store.samples(pid)["sample_id"][0]), "anomalous", "alice")
    store.request_run(pid, "deepsad", {"hyper": {"finetune_epochs": 1}}, "alice", parent_id=run1.id)
    assert Worker(store, maps=False).run_once()
    run2 = store.latest_done_run(pid)
    newer = embed.ProjectionCache(store.run_files(run2).maps)
    assert newer.get(map_version(run2), "umap", params, ids=keys) is None
    second = project_map(store, run2, params)  # seeded with run 1's layout
    assert second.shape == (198, 2) and not np.array_equal(first, second)


def test_a_map_the_page_asks_for_is_computed_by_the_worker(home, monkeypatch):
    store, pid = trained_project(home)
    run = store.latest_done_run(pid)
    at = open_app(pid, "pages/latent.py")  # the app's worker has maps off: it leaves map requests alone
    monkeypatch.setenv("SEMIAD_MAPS", "1")
    at.number_input[0].set_value(5).run()  # neighbours: settings the worker has no map for
    params = {**default_map_params(), "n_neighbors": 5}
    assert not at.exception
    assert any("worker computes UMAP" in c.value for c in at.caption)
    job = store.latest_map_request(run.id, params)
    assert job is not None and job.status == "queued"
    at.run()
    assert store.latest_map_request(run.id, params).id == job.id  # asked once, not at every rerun
    assert Worker(store).map_once()  # what the worker loop does when no run is queued
    assert store.map_request(job.id).status == "done" and not Worker(store).map_once()
    keys = store.samples(pid)["key"].tolist()
    assert embed.ProjectionCache(store.run_files(run).maps).get(map_version(run), "umap", params, ids=keys) is not None
    at.run()
    assert not at.exception
    assert any(c.value.startswith(f"UMAP of round {run.round}") for c in at.caption)


def table_project(store, name: str, n: int) -> tuple[int, object]:
    """A project on a random table with a first IsolationForest model (trained here, in a second)."""
    from semiad.data import SampleSet

    X = np.random.default_rng(n).normal(size=(n, 16)).astype(np.float32)
    pid = store.create_project(name, SampleSet([f"r{i}" for i in range(n)], X, "tabular", name), source=name)
    store.request_run(pid, "iforest", {"hyper": {}}, "setup")
    assert Worker(store, maps=False).run_once()
    return pid, store.latest_done_run(pid)


def test_a_retrain_does_not_wait_behind_a_map_being_computed(home):
    """Maps have their own thread: a run queued while a long map is computed trains at once."""
    import time

    store = Store(home=home)
    big, big_run = table_project(store, "big", 5000)
    small, _ = table_project(store, "small", 200)
    job = store.request_map(big_run.id, default_map_params())
    worker = Worker(store, poll_s=0.05).start()
    try:
        deadline = time.monotonic() + 60
        while store.map_request(job).status == "queued" and time.monotonic() < deadline:
            time.sleep(0.02)
        store.request_run(small, "iforest", {"hyper": {}, "warm_start": True}, "alice",
                          parent_id=store.latest_done_run(small).id)
        while len([r for r in store.runs(small) if r.status == "done"]) < 2 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert [r.status for r in store.runs(small)] == ["done", "done"]
        assert store.map_request(job).status == "running"  # the run did not wait for the map
        while store.map_request(job).active and time.monotonic() < deadline + 120:
            time.sleep(0.1)
    finally:
        worker.stop(timeout=120)
    assert store.map_request(job).status == "done"


def test_a_map_of_a_model_a_newer_run_replaced_is_skipped(home):
    store = Store(home=home)
    pid, run1 = table_project(store, "t", 200)
    old = store.request_map(run1.id, default_map_params())
    store.request_run(pid, "iforest", {"hyper": {}, "warm_start": True}, "alice", parent_id=run1.id)
    assert Worker(store, maps=False).run_once()
    run2 = store.latest_done_run(pid)
    new = store.request_map(run2.id, default_map_params())
    worker = Worker(store)
    assert worker.map_once() and store.map_request(old).status == "skipped"
    assert store.map_request(old).error == f"run {run2.id} is newer"
    assert embed.ProjectionCache(store.run_files(run1).maps).get(map_version(run1), "umap", default_map_params(),
                                                                  ids=store.samples(pid)["key"].tolist()) is None
    assert worker.map_once() and store.map_request(new).status == "done"


def test_a_map_left_running_by_a_dead_worker_is_queued_again(home):
    store, pid = trained_project(home)
    run = store.latest_done_run(pid)
    first = store.request_map(run.id, default_map_params())
    assert store.request_map(run.id, default_map_params()) == first  # the same map is queued once
    gone = subprocess.Popen(["true"])
    gone.wait()
    assert store.claim_next_map(f"{socket.gethostname()}:{gone.pid}").id == first
    assert store.requeue_dead_maps() == [first] and store.map_request(first).status == "queued"


def test_the_selection_outlives_a_figure_redrawn_by_someone_elses_label(home):
    """Bob labels on Review while Alice looks at her selection: the figure is drawn anew (a point changes
    colour) and Streamlit makes it a new chart with no selection. The selection is held by the page and
    drawn into the figure; Label all still labels it; Clear the selection lets it go."""
    store, pid, run, at, keys = map_with_selection(home, 5)
    assert at.subheader[0].value == "5 selected"
    sid = store.samples(pid).set_index("key")["sample_id"]
    store.record_label(pid, int(sid[keys[4]]), "normal", "bob")  # meanwhile, in another browser
    at.session_state[f"map-{run.id}-0"] = selection([], as_dict=True)  # what the new chart reports
    at.run()
    assert not at.exception, at.exception
    assert at.subheader[0].value == "5 selected"
    figure = json.loads(at.get("plotly_chart")[0].proto.spec)
    assert len(figure["data"][0]["selectedpoints"]) == 5  # drawn as selected
    at.checkbox(key=f"keep-{run.id}-{keys[0]}").uncheck().run()
    at.button(key="map_anomalous").click().run()
    assert sorted(store.events(pid).query("annotator == 'alice'")["key"]) == sorted(keys[1:])
    at.session_state[f"map-{run.id}-1"] = selection(keys[:2], as_dict=True)  # a new selection on the new chart
    at.run()
    assert at.subheader[0].value == "2 selected"
    at.button(key="map_clear").click().run()
    assert not at.subheader


def test_the_umap_warm_up_waits_for_a_spell_without_training(home, monkeypatch):
    """UMAP's numba compilation holds the GIL for about a minute: beside a new project's first model it
    made that model 3× slower, so it waits until no run has trained for a while."""
    import time

    import state.worker as worker_module
    from semiad.data import load_digits

    store = Store(home=home)
    pid = store.create_project("digits", load_digits(), source="digits")
    store.request_run(pid, "deepsad", {"hyper": {"pretrain_epochs": 10, "epochs": 10}}, "setup")
    calls = []
    monkeypatch.setattr(worker_module, "_warm_up_umap",
                        lambda: calls.append(([r.status for r in store.runs(pid)], time.monotonic())))
    monkeypatch.setattr(Worker, "map_once", lambda self: False)  # the run's own map is not what is tested
    worker = Worker(store, poll_s=0.05)
    worker.warm_up_after_s = 1.0
    worker.start()
    try:
        deadline = time.monotonic() + 180
        while store.latest_done_run(pid) is None and time.monotonic() < deadline:
            time.sleep(0.02)
        done_seen = time.monotonic()
        while not calls and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        worker.stop(timeout=60)
    ((statuses, at),) = calls
    assert statuses == ["done"]  # not beside the run
    assert at > done_seen + 0.5  # and only after a quiet spell

    calls.clear()
    idle = Worker(store, poll_s=0.05)  # a server with nothing to train warms up once the spell has passed
    idle.warm_up_after_s = 0.5
    started = time.monotonic()
    idle.start()
    try:
        while not calls and time.monotonic() < started + 30:
            time.sleep(0.05)
    finally:
        idle.stop(timeout=30)
    assert len(calls) == 1 and calls[0][1] - started >= 0.5


def test_a_tables_selection_ticks_name_their_rows(home):
    """A table's rows have no picture: each tick says which row it is (it read 'unlabel…', the id in a tooltip)."""
    store = Store(home=home)
    pid, run = table_project(store, "t", 200)
    store.record_label(pid, int(store.samples(pid)["sample_id"].iloc[1]), "anomalous", "alice")
    at = open_app(pid, "pages/latent.py")
    at.session_state[f"map-{run.id}-0"] = selection(["r0", "r1", "r2"], as_dict=True)
    at.run()
    assert not at.exception, at.exception
    assert [c.label for c in at.checkbox if c.key.startswith("keep-")] == ["r0 · unlabeled", "r1 · anomalous",
                                                                           "r2 · unlabeled"]
