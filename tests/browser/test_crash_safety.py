"""Crash safety (issue 8, item 2): SIGKILL the server in the middle of a retrain; after a restart on
the same workspace every label is there, the run shows as interrupted, and a new retrain works."""
from __future__ import annotations

import re
import socket
import subprocess
import time

from browser_util import (
    card_button,
    click_to_queue_run,
    expect_counts,
    focus_page,
    focused_sample,
    go,
    grid_samples,
    heading,
    keyed_button,
    no_exception,
    open_project,
    set_number,
    shot,
    table_rows,
    trained_project,
    wait_focused_changes,
    wait_for_model_round,
    wait_saved,
)
from playwright.sync_api import expect

from state.store import Store


def test_labels_survive_a_kill_mid_training_and_the_run_shows_interrupted(server_factory, new_page):
    server = server_factory()
    pid = trained_project(server.home)
    server.start()
    page = new_page()
    open_project(page, server.url, "carol", pid)

    given = {}
    first = focused_sample(page)
    given[first] = "anomalous"
    focus_page(page)
    page.keyboard.press("a")
    wait_focused_changes(page, first)
    expect_counts(page, **{"Labeled anomalous": 1, "Label events": 1})
    for n, (name, value) in enumerate((("Normal", "normal"), ("Anomalous", "anomalous")), start=2):
        time.sleep(0.5)  # a person's pace: two clicks at one place within 0.3 s are a double-click (one answer)
        sid = grid_samples(page)[0]
        card_button(page, sid, name).click()
        given[sid] = value
        expect_counts(page, **{"Label events": n})
    wait_saved(page)
    expect_counts(page, **{"Labeled normal": 1, "Labeled anomalous": 2, "Unlabeled": 195})

    # A retrain long enough to be killed in the middle: 500 fine-tune epochs (half a minute or more).
    go(page, "Train")
    page.get_by_text("Settings", exact=True).click()
    set_number(page, "Fine-tune epochs per retrain", 500)
    click_to_queue_run(page, keyed_button(page, "retrain"), server.home, pid)
    page.get_by_test_id("stSidebar").get_by_test_id("stProgress").wait_for(timeout=240_000)
    store = Store(home=server.home)
    end = time.monotonic() + 240
    while True:  # kill only once the worker is really training (progress reported by an epoch)
        run = store.active_run(pid)
        if run is not None and run.status == "running" and run.progress > 0:
            break
        assert time.monotonic() < end, f"the retrain never started: {store.runs(pid)[-1]}"
        time.sleep(0.2)
    shot(page, "crash-before-kill")
    server.kill()

    killed = store.run(run.id)
    assert killed.status == "running" and killed.progress < 0.9, killed  # it really died mid-training
    labels = store.samples(pid).set_index("sample_id")["label"].dropna().to_dict()
    assert labels == given

    # The person opens the Train page's link again (a new port only because the test picks a free
    # one: the old tab cannot reconnect by itself and race this one's first run, see the report).
    server.start()
    page.goto(f"{server.url}/train?project={pid}&who=carol")
    heading(page, "Train")
    no_exception(page)
    history = table_rows(page)
    assert [(r["run"], r["status"]) for r in history] == [(str(run.id), "interrupted"), ("1", "done")], history
    expect(page.get_by_text("is running")).to_have_count(0)
    assert store.run(run.id).status == "interrupted"
    shot(page, "crash-train-after-restart")

    go(page, "Review")
    expect_counts(page, Round=1, **{"Labeled normal": 1, "Labeled anomalous": 2, "Unlabeled": 195,
                                    "Label events": 3})
    assert store.samples(pid).set_index("sample_id")["label"].dropna().to_dict() == given

    go(page, "Train")
    page.get_by_text("Settings", exact=True).click()
    set_number(page, "Fine-tune epochs per retrain", 2)
    retrain = keyed_button(page, "retrain")
    expect(retrain).to_be_enabled()
    new_run = click_to_queue_run(page, retrain, server.home, pid)
    wait_for_model_round(page, 2)
    go(page, "Train")  # a fresh look at the page, however the run's end was noticed
    page.get_by_text("Current model: round 2", exact=False).wait_for()
    status = {r["run"]: r["status"] for r in table_rows(page)}
    assert (status[str(new_run)], status[str(run.id)], status["1"]) == ("done", "interrupted", "done"), status
    assert store.latest_done_run(pid).n_labels == 3
    go(page, "Review")
    expect_counts(page, Round=2, **{"Labeled normal": 1, "Labeled anomalous": 2, "Label events": 3})
    shot(page, "crash-review-after-retrain")


def test_a_page_link_opened_first_after_a_restart_runs_inside_the_app(server_factory, new_page):
    """A fresh server starts in Streamlit's legacy pages/ folder mode; the first request, a reload of
    a page URL, must still run app.py: the worker starts (it marks the dead server's run
    interrupted) and the menu is the app's, not a list of the files in pages/."""
    from semiad.data import load_digits

    server = server_factory()
    store = Store(home=server.home)
    pid = store.create_project("digits", load_digits(), source="digits")
    run_id = store.request_run(pid, "deepsad", {}, "setup")
    gone = subprocess.Popen(["true"])
    gone.wait()
    assert store.claim_next_run(f"{socket.gethostname()}:{gone.pid}").id == run_id  # its server died
    server.start()
    page = new_page()
    page.goto(f"{server.url}/train?project={pid}&who=dana")
    heading(page, "Train")
    no_exception(page)
    menu = page.get_by_test_id("stSidebarNav").get_by_test_id("stSidebarNavLink")
    expect(menu).to_have_text([re.compile(f"{title}$") for title in  # after each link's icon name
                               ("Projects", "Review", "Train", "Latent map", "Progress", "Export")])
    expect(page.get_by_role("dialog")).to_have_count(0)  # no "page not found"
    assert store.run(run_id).status == "interrupted"
    shot(page, "restart-page-link")
