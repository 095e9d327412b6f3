"""Toll, ESAD and AMA through the app's Train page (AppTest), with the real store, worker and models:
a fresh model with tiny settings, then a warm-start retrain after one label, each seen on the Review page."""
from __future__ import annotations

import pytest
from streamlit.testing.v1 import AppTest

from semiad.data import load_digits
from semiad.settings import display_name
from state.store import Store
from tests.conftest import open_app, review_cards, wait_for

WAIT_S = 600  # generous: seconds on an idle machine, minutes on a loaded shared one

# per method: the tiny first-fit settings, the fine-tune setting, and whether it has a FAST toggle
TINY = {
    "toll": ({"steps": 2, "beta": 500.0}, {"finetune_steps": 1}, True),
    "esad": ({"epochs": 1}, {"finetune_epochs": 1}, False),
    "ama": ({"epochs": 1}, {"finetune_epochs": 1}, True),
}


def set_settings(at: AppTest, method: str, values: dict) -> None:
    for name, value in values.items():
        at.number_input(key=f"hp-{method}-pixels-{name}").set_value(value).run()


def done(store: Store, pid: int, round_: int) -> bool:
    """The run of this round finished; a failed run fails the test at once with its error."""
    last = store.runs(pid)[-1]
    assert last.status != "failed", last.error
    return last.status == "done" and last.round == round_


def review_shows_round(at: AppTest, method: str, round_: int) -> None:
    at.switch_page("pages/review.py").run()
    assert not at.exception, at.exception
    captions = [c.value for c in at.caption]
    assert any(f"round {round_}**: {display_name(method)}" in c for c in captions), captions
    assert all(c.get("diff") for c in review_cards(at))  # every one of them reconstructs: |x − x̂| on each card


@pytest.mark.parametrize("method", sorted(TINY))
def test_train_fresh_then_retrain_warm_through_the_train_page(home, method):
    first, finetune, has_fast = TINY[method]
    store = Store(home=home)
    pid = store.create_project("digits", load_digits(), source="digits")
    at = open_app(pid, "pages/train.py")
    at.selectbox(key="train_method").set_value(method).run()
    assert at.radio(key=f"train_mode-{method}").options == ["a fresh model"]
    if has_fast:
        at.toggle(key=f"fast-{method}").set_value(True).run()
    if method == "toll":  # the paper's β for 28×28 gray images is the default shown
        assert at.number_input(key="hp-toll-pixels-beta").value == 1000.0
    set_settings(at, method, first)
    at.button(key="retrain").click().run()
    assert not at.exception, at.exception
    wait_for(lambda: done(store, pid, 1), at, timeout=WAIT_S)
    run = store.latest_done_run(pid)
    assert run.method == method and run.parent_id is None and run.params["fast"] == has_fast
    assert {k: run.params["hyper"][k] for k in first} == first
    review_shows_round(at, method, run.round)

    sid = store.samples(pid)["sample_id"].tolist()
    store.record_label(pid, sid[0], "anomalous", "alice")
    at.switch_page("pages/train.py").run()
    assert at.radio(key=f"train_mode-{method}").value.startswith("the current model")
    set_settings(at, method, finetune)
    at.button(key="retrain").click().run()
    assert not at.exception, at.exception
    wait_for(lambda: done(store, pid, 2), at, timeout=WAIT_S)
    warm = store.latest_done_run(pid)
    assert warm.method == method and warm.parent_id == run.id and warm.n_labels == 1
    review_shows_round(at, method, warm.round)


def test_toll_beta_default_follows_the_architecture_the_data_gets():
    from semiad.settings import default_hyper
    assert default_hyper("toll", "image", input_shape=(1, 28, 28))["beta"] == 1000.0  # 28×28 gray: the MNIST command
    assert default_hyper("toll", "image", input_shape=(3, 32, 32))["beta"] == 10.0  # CIFAR command
    assert default_hyper("toll", "tabular", input_shape=(12,))["beta"] == 10.0  # arrhythmia command
