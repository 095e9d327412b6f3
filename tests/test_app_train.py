"""The Train page's cancel and auto-retrain controls, through Streamlit's AppTest with the real store."""
from __future__ import annotations

from state.worker import AUTO_RETRAIN
from tests.test_app import home, open_app, trained_project  # noqa: F401  (home is a fixture)


def test_cancel_shows_the_run_as_cancelling_at_once(home):  # noqa: F811
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


def test_auto_retrain_is_off_by_default_and_its_k_is_stored_for_the_project(home):  # noqa: F811
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
