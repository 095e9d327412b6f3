"""The Train page's cancel and auto-retrain controls, through Streamlit's AppTest with the real store."""
from __future__ import annotations

from state.worker import AUTO_RETRAIN
from tests.conftest import open_app, trained_project, wait_for


def test_cancel_shows_the_run_as_cancelling_at_once(home):
    store, pid = trained_project(home)
    run_id = store.request_run(pid, "deepsad", {"hyper": {}}, "bob", parent_id=store.latest_done_run(pid).id)
    store.claim_next_run("elsewhere:1")  # running on another machine's worker, which will see the flag
    at = open_app(pid, "pages/train.py")
    assert any("is running" in i.value for i in at.info)
    at.button(key="cancel").click().run()
    assert not at.exception, at.exception
    assert store.run(run_id).cancelling and store.run(run_id).message == "cancelling…"
    assert not any("is running" in i.value for i in at.info)
    assert any("cancelling…" in i.value for i in at.info)
    assert not [b for b in at.button if b.key == "cancel"]  # nothing left to click
    history = at.dataframe[0].value
    assert history.loc[history["run"] == run_id, "status"].item() == "cancelling…"


def test_auto_retrain_is_off_by_default_and_its_k_is_stored_for_the_project(home):
    store, pid = trained_project(home)
    at = open_app(pid, "pages/train.py")
    toggle = at.toggle(key=f"auto_retrain-{pid}")
    assert toggle.value is False and store.project_setting(pid, AUTO_RETRAIN) is None
    toggle.set_value(True).run()
    assert not at.exception, at.exception
    assert store.project_setting(pid, AUTO_RETRAIN) == 20
    at.number_input(key=f"auto_retrain_every-{pid}").set_value(5).run()
    assert store.project_setting(pid, AUTO_RETRAIN) == 5
    assert any("after 5 more label" in c.value for c in at.caption)

    again = open_app(pid, "pages/train.py")  # a second annotator's session sees the project's setting
    assert again.toggle(key=f"auto_retrain-{pid}").value is True
    assert again.number_input(key=f"auto_retrain_every-{pid}").value == 5
    again.toggle(key=f"auto_retrain-{pid}").set_value(False).run()
    assert store.project_setting(pid, AUTO_RETRAIN) is None


def test_auto_retrain_shows_its_setting_after_another_page_and_offers_the_last_k_again(home):
    """Streamlit forgets the state of widgets a page does not draw: back on Train the toggle must
    still show what the store holds, and switched off and on, it offers the k used before."""
    store, pid = trained_project(home)
    at = open_app(pid, "pages/train.py")
    at.toggle(key=f"auto_retrain-{pid}").set_value(True).run()
    at.number_input(key=f"auto_retrain_every-{pid}").set_value(7).run()
    at.switch_page("pages/progress.py").run()
    at.switch_page("pages/train.py").run()
    assert not at.exception, at.exception
    assert at.toggle(key=f"auto_retrain-{pid}").value is True
    assert at.number_input(key=f"auto_retrain_every-{pid}").value == 7
    at.toggle(key=f"auto_retrain-{pid}").set_value(False).run()
    assert store.project_setting(pid, AUTO_RETRAIN) is None
    at.toggle(key=f"auto_retrain-{pid}").set_value(True).run()
    assert store.project_setting(pid, AUTO_RETRAIN) == 7
    assert at.number_input(key=f"auto_retrain_every-{pid}").value == 7
    store.set_project_setting(pid, AUTO_RETRAIN, 9)  # another annotator changes it
    at.run()
    assert at.number_input(key=f"auto_retrain_every-{pid}").value == 9


def test_cpu_friendly_first_fit_defaults_keep_the_full_choice():
    from semiad.settings import app_first_fit, default_fast, default_hyper, fast_setting

    assert [m for m in ("deepsad", "ganomaly", "toll", "esad", "ama") if default_fast(m)] == ["toll", "ama"]
    toll = app_first_fit("toll", "image", 198, (1, 28, 28))
    assert toll["fast"] and toll["hyper"]["width"] == 16 and toll["hyper"]["steps"] == 51  # 10,000 samples / 198
    assert toll["hyper"]["beta"] == 1000.0  # the paper's β is untouched
    full = app_first_fit("toll", "image", 198, (1, 28, 28), fast=False)
    assert not full["fast"] and "width" not in full["hyper"]  # the full-size nets stay one toggle away
    assert app_first_fit("ama", "image", 198)["hyper"] == {**default_hyper("ama", "image", 198), **fast_setting("ama")}
    assert default_hyper("ama", "image", 198)["epochs"] == 8 and default_hyper("ganomaly", "image", 198)["epochs"] == 15
    # larger pools: proportionally fewer passes; tables keep the methods' defaults
    assert default_hyper("toll", "image", 1800)["steps"] == 10 and default_hyper("ama", "image", 1800)["epochs"] == 1
    assert default_hyper("ganomaly", "image", 1800)["epochs"] == 1.67
    assert default_hyper("toll", "tabular", 500, (20,))["steps"] == 300


def test_the_train_page_starts_toll_with_the_fast_setting_and_the_budgeted_iterations(home):
    from semiad.data import load_digits
    from state.store import Store

    store = Store(home=home)
    pid = store.create_project("digits", load_digits(), source="digits")
    at = open_app(pid, "pages/train.py")
    at.selectbox(key="train_method").set_value("toll").run()
    assert at.toggle(key="fast-toll").value is True
    assert at.number_input(key="hp-toll-pixels-steps").value == 51
    at.selectbox(key="train_method").set_value("ganomaly").run()
    assert at.toggle(key="fast-ganomaly").value is False


def test_the_first_ranking_follows_the_view_chosen_on_train(home):
    """Gray images seen as features and pixels are ranked first by both views; choosing the features
    alone gives that view's default (a prior that needs pixels would fail the run)."""
    from semiad.data import load_digits
    from state.store import Store

    store = Store(home=home)
    pid = store.create_project("digits", load_digits(), source="digits")
    at = open_app(pid, "pages/train.py")
    assert at.radio(key="representation-fusion").value == "features+pixels"
    assert at.selectbox(key="hp-fusion-features+pixels-prior").value == "knn+pixels"
    at.radio(key="representation-fusion").set_value("features").run()
    assert at.selectbox(key="hp-fusion-features-prior").value == "knn"
    assert not at.exception


def test_a_colour_project_defaults_to_the_features_alone(home):
    import numpy as np

    from semiad.data import SampleSet
    from state.store import Store

    rng = np.random.default_rng(0)
    photos = SampleSet(ids=[f"p{i}" for i in range(40)], X=rng.random((40, 3, 32, 32), dtype=np.float32),
                       kind="image", name="colour")
    store = Store(home=home)
    pid = store.create_project("photos", photos, source="photos")
    at = open_app(pid, "pages/train.py")
    assert at.radio(key="representation-fusion").value == "features"
    assert at.selectbox(key="hp-fusion-features-prior").value == "knn"
    assert not at.exception


def test_a_table_project_says_it_sees_the_columns_and_reviews_without_error(home, tmp_path):
    from semiad import defaults
    from semiad.data import load_csv
    from state.store import Store
    from state.worker import Worker

    rows = "\n".join(f"r{i},{60 + i % 7},{30 + i % 11},{i % 2}" for i in range(60))
    (tmp_path / "t.csv").write_text("id,heart_rate,age,smoker\n" + rows + "\nr60,190,31,0\n")
    store = Store(home=home)
    pid = store.create_project("table", load_csv(tmp_path / "t.csv"), source=str(tmp_path / "t.csv"))
    store.request_run(pid, "fusion", {"hyper": defaults.method_params("fusion", "tabular", defaults.PIXELS)}, "setup")
    assert Worker(store, maps=False).run_once()
    at = open_app(pid, "pages/train.py")
    assert at.dataframe[0].value["sees"].tolist() == ["columns"]
    assert any("the table's columns" in c.value for c in at.caption)
    leans = at.dataframe[1].value  # "What the ranking leans on": the first ranking alone before labels
    assert leans["scorer"].tolist() == ["the first ranking (no labels)"] and leans["share"].tolist() == [1.0]
    assert any(c.value == "First ranking: IsolationForest." for c in at.caption)
    review = open_app(pid, "pages/review.py")  # its cards name the columns furthest from the typical row
    assert not review.exception

    sample_ids = store.samples(pid)["sample_id"].tolist()
    store.record_labels(pid, sample_ids[-1:], "anomalous", "alice")  # the row far out in heart rate
    store.record_labels(pid, sample_ids[:3], "normal", "alice")
    store.request_run(pid, "fusion", {"hyper": defaults.method_params("fusion", "tabular", defaults.PIXELS),
                                      "warm_start": True}, "alice", parent_id=store.latest_done_run(pid).id)
    assert Worker(store, maps=False).run_once()
    leans = open_app(pid, "pages/train.py").dataframe[1].value
    assert {"your labels alone (balanced), raw columns", "the columns' PCA ranking"} <= set(leans["scorer"])
    assert abs(leans["share"].sum() - 1) < 1e-9
    # the history of a table without ground truth: no AUC column; a cancelled run's cells blank, not "None"
    store.cancel_run(store.request_run(pid, "fusion", {"hyper": {}, "warm_start": True}, "alice",
                                       parent_id=store.latest_done_run(pid).id))
    history = open_app(pid, "pages/train.py").dataframe[0].value
    assert "AUC (ground truth)" not in history.columns
    assert history[["round", "seconds", "first ranking"]].values.tolist() == [
        ["", "", ""], ["2", history["seconds"][1], "IsolationForest"], ["1", history["seconds"][2], "IsolationForest"]]
    assert history["method"].tolist() == ["fusion"] * 3


def test_history_shows_the_first_ranking_the_run_used_not_only_the_one_asked_for(home):
    """A table of feature vectors is ranked by kNN (Fusion's vector gate) though its settings ask for
    IsolationForest: the history says what ranked it."""
    import numpy as np

    from semiad.data import SampleSet
    from semiad.settings import app_first_fit
    from state.store import Store
    from state.worker import Worker

    X = np.random.default_rng(0).normal(size=(120, 160)).astype(np.float32)
    table = SampleSet(ids=[f"r{i}" for i in range(120)], X=X, kind="tabular", name="embeddings")
    store = Store(home=home)
    pid = store.create_project("embeddings", table, source="embeddings")
    params = app_first_fit("fusion", "tabular", len(X), X.shape[1:])
    assert params["hyper"]["prior"] == "iforest" and params["hyper"]["vector_gate"] is True
    store.request_run(pid, "fusion", params, "setup")
    assert Worker(store, maps=False).run_once() and store.latest_done_run(pid) is not None
    at = open_app(pid, "pages/train.py")
    history = next(d.value for d in at.dataframe if "first ranking" in d.value.columns)
    assert history["first ranking"].tolist() == ["kNN among the features"]
    assert "prior=iforest" in history["settings"].iloc[0]


def test_a_setting_out_of_its_range_is_said_and_trains_nothing(home):
    """3000 pretraining epochs (the range is 0–1000): the page says so and the button waits; before, the box
    kept 3000 in red while the run quietly trained with the previous value."""
    store, pid = trained_project(home)
    at = open_app(pid, "pages/train.py")
    at.radio(key="train_mode-deepsad").set_value("a fresh model").run()
    at.number_input(key="hp-deepsad-pixels-pretrain_epochs").set_value(3000).run()
    assert not at.exception, at.exception
    assert any("pretrain_epochs: Autoencoder pretraining epochs must be between 0 and 1000, got 3000" in e.value
               for e in at.error)
    assert at.button(key="retrain").disabled
    runs = len(store.runs(pid))
    at.number_input(key="hp-deepsad-pixels-pretrain_epochs").set_value(1000).run()
    assert not at.error and not at.button(key="retrain").disabled
    at.button(key="retrain").click().run()
    assert len(store.runs(pid)) == runs + 1
    queued = store.runs(pid)[-1]
    assert queued.params["hyper"]["pretrain_epochs"] == 1000
    store.cancel_run(queued.id)  # 1000 epochs in this process's worker would outlast the test (and slow the rest)
    wait_for(lambda: store.active_run(pid) is None, at)
