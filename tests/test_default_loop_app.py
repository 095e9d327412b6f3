"""The default loop in the app: the worker computes a project's image features once (cached in the
workspace, progress on the run), fits Fusion on them, warm-starts on labels; the Train page shows and
records what the model sees. Real store, real worker, real backbone (at a small input size)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from semiad import defaults
from semiad.data import load_digits
from semiad.settings import app_first_fit
from state.store import Store
from state.worker import Worker, features_path, load_model

SMALL = {**defaults.FEATURES_AND_PIXELS, "size": 32}  # the real backbone at 32 px: seconds, not minutes


@pytest.fixture
def store(tmp_path) -> Store:
    s = Store(f"sqlite:///{tmp_path / 'db.sqlite'}", home=tmp_path)
    yield s
    s.close()


def test_worker_fits_the_default_loop_on_cached_features_and_warm_starts(store):
    digits = load_digits()
    pid = store.create_project("digits", digits)
    params = app_first_fit("fusion", "image", len(digits), digits.X.shape[1:], representation=SMALL)
    assert params["hyper"]["prior"] == "knn+pixels" and params["hyper"]["scale"] == "l2"  # gray: both views
    assert params["hyper"]["feature_columns"] == 1280  # the 8×8 pixels follow the features
    store.request_run(pid, "fusion", params, "ann")
    worker = Worker(store, device="cpu", maps=False)
    assert worker.run_once()
    first = store.latest_done_run(pid)
    assert first is not None, store.runs(pid)[-1].error
    cache = features_path(store, pid, SMALL)
    assert cache.exists() and np.load(cache).shape == (len(digits), 1280)
    assert first.metrics["auc"] > 0.8  # kNN on features ranks the bundled digits well at once
    assert first.metrics["first_ranking"] == "kNN among the features and kNN among the pixels"
    model = load_model(store, first, device="cpu")
    assert model.method == "fusion" and model.representation_ == SMALL

    # label the top 20, as an expert would, then the Retrain click's warm start
    scores = store.run_scores(first)
    table = store.samples(pid)
    for i in np.argsort(-scores)[:20]:
        store.record_label(pid, int(table["sample_id"].iloc[i]), "anomalous" if digits.truth[i] else "normal", "ann")
    mtime = cache.stat().st_mtime_ns
    store.request_run(pid, "fusion", {"hyper": {}, "warm_start": True, "representation": SMALL}, "ann",
                      parent_id=first.id)
    assert worker.run_once()
    second = store.latest_done_run(pid)
    assert second.id != first.id and second.parent_id == first.id, store.runs(pid)[-1].error
    assert cache.stat().st_mtime_ns == mtime  # the features were read from the cache, not recomputed
    assert second.metrics["labeled_anomalous"] + second.metrics["labeled_normal"] == 20
    weights = load_model(store, second, device="cpu").state_["weights"]
    assert {"prior", "linear", "linear+pixels", "pixels"} <= set(weights)  # both views joined after labels


def test_train_page_shows_and_records_the_representation(home):
    from streamlit.testing.v1 import AppTest

    store = Store(None, home)
    pid = store.create_project("digits", load_digits())
    at = AppTest.from_file(str(Path(__file__).resolve().parents[1] / "pages" / "train.py"), default_timeout=60)
    at.session_state["project"] = pid
    at.session_state["who"] = "ann"
    at.run()
    assert at.selectbox(key="train_method").value == "fusion"
    radio = at.radio(key="representation-fusion")
    assert radio.value == "features+pixels"
    at.button(key="retrain").click().run()
    run = store.runs(pid)[-1]
    assert run.method == "fusion" and run.params["representation"]["kind"] == "features+pixels"
    # settings without a widget keep their default: unit-length features, then the 8×8 pixels
    assert run.params["hyper"]["scale"] == "l2" and run.params["hyper"]["feature_columns"] == 1280
    store.cancel_run(run.id)
    at.radio(key="representation-fusion").set_value("features").run()  # features alone: one view
    at.button(key="retrain").click().run()
    run = store.runs(pid)[-1]
    assert run.params["representation"]["kind"] == "features" and run.params["hyper"]["feature_columns"] == 0
    store.cancel_run(run.id)
    at.selectbox(key="train_method").select("knn").run()
    assert at.radio(key="representation-knn").value == "features"  # the other vector methods: features alone
    store.cancel_run(run.id)
    at.selectbox(key="train_method").select("deepsad").run()
    assert at.radio(key="representation-deepsad").value == "pixels"  # the deep methods' networks see pixels
