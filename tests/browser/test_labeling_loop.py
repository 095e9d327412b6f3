"""The labeling loop in a real browser, by clicks and keys as a person would do it (issue 8, item 1)."""
from __future__ import annotations

import re

from browser_util import (
    card_button,
    card_frame,
    cards,
    click_to_queue_run,
    enter_name,
    expect_counts,
    focus_button,
    focus_page,
    focused_sample,
    go,
    grid_samples,
    heading,
    no_exception,
    open_app,
    review_root,
    settle,
    shot,
    table_rows,
    wait_focused_changes,
    wait_for_model_round,
    wait_saved,
)
from playwright.sync_api import expect

from state.store import Store


def test_create_train_label_undo_retrain_reload_and_every_page(server, new_page):
    page = new_page()
    elsewhere = []  # the app works offline: no page may fetch anything from another host (a tab icon did)
    page.on("request", lambda r: None if r.url.startswith((server.url, "data:", "blob:")) else elsewhere.append(r.url))
    open_app(page, server.url)
    shot(page, "loop-projects-empty")
    enter_name(page, "alice")

    # One click creates a project on the bundled digits and queues the first model of the default
    # loop (Fusion on pretrained image features and the pixels: seconds for 198 digits, features included).
    page.get_by_role("button", name="Create project and train").click()
    heading(page, "Review")
    wait_for_model_round(page, 1)
    go(page, "Train")  # a fresh look at the page, however the run's end was noticed
    history = table_rows(page)
    assert [(r["status"], r["sees"]) for r in history] == [("done", "features+pixels")], history

    go(page, "Review")
    expect_counts(page, Round=1, **{"Labeled normal": 0, "Labeled anomalous": 0, "Unlabeled": 198,
                                    "Label events": 0})
    shot(page, "loop-review-round1")
    # the first card's place among all 198, and what its score is on hover (a fused score is no probability)
    meta = card_frame(page).locator("[data-testid='focusedCard'] .meta")
    expect(meta).to_contain_text("#1 of 198 in the ranking")
    expect(meta.get_by_test_id("score")).to_have_attribute("title", re.compile("not a probability"))

    # 1: keyboard shortcut on the focused card (the next card is focused at once)
    first = focused_sample(page)
    focus_page(page)  # focus on the page, not a text box
    page.keyboard.press("a")
    second = wait_focused_changes(page, first)
    expect_counts(page, **{"Labeled anomalous": 1, "Label events": 1})
    # 2: the focused card's button
    focus_button(page, "Normal").click()
    wait_focused_changes(page, second)
    expect_counts(page, **{"Labeled normal": 1, "Label events": 2})
    # 3: a grid card's button, then undo it: the undone card comes back as the focused one
    third = grid_samples(page)[2]
    card_button(page, third, "Anomalous").click()
    expect(card_frame(page).locator(f"[data-testid='gridCard'][data-sid='{third}']")).to_have_count(0)
    expect_counts(page, **{"Labeled anomalous": 2, "Label events": 3})
    focus_button(page, "Undo").click()
    expect(review_root(page)).to_have_attribute("data-focused", str(third))
    expect_counts(page, **{"Labeled normal": 1, "Labeled anomalous": 1, "Unlabeled": 196, "Label events": 4})
    wait_saved(page)
    settle(page)
    no_exception(page)
    round1 = cards(page)

    store = Store(home=server.home)
    (project,) = store.projects()
    labels = store.samples(project.id).set_index("sample_id")["label"]
    assert labels[first] == "anomalous" and labels[second] == "normal" and labels.isna()[third]
    events = store.events(project.id)
    assert events["annotator"].eq("alice").all() and len(events) == 4

    # Retrain (warm start from round 1, default fine-tune schedule: seconds)
    go(page, "Train")
    run_id = click_to_queue_run(page, page.get_by_role("button", name="Retrain", exact=True), server.home,
                                project.id)
    wait_for_model_round(page, 2)
    go(page, "Train")  # a fresh look at the page, however the run's end was noticed
    page.get_by_text("Current model: round 2", exact=False).wait_for()
    (row,) = [r for r in table_rows(page) if r["run"] == str(run_id)]
    assert row["status"] == "done" and row["start"].startswith("warm from") and row["round"] == "2", row
    shot(page, "loop-train-round2")

    go(page, "Review")
    expect_counts(page, Round=2, **{"Labeled normal": 1, "Labeled anomalous": 1, "Label events": 4})
    page.get_by_text("round 2", exact=False).first.wait_for()
    round2 = cards(page)
    assert [c[2] for c in round2] and round2 != round1, "the ranking did not change after the retrain"
    shot(page, "loop-review-round2")

    # A reload starts a new Streamlit session: the URL reopens the project, the store has the labels.
    page.reload()
    heading(page, "Review")
    expect_counts(page, Round=2, **{"Labeled normal": 1, "Labeled anomalous": 1, "Unlabeled": 196,
                                    "Label events": 4})
    expect(page.get_by_label("Your name", exact=True)).to_have_value("alice")
    assert cards(page) == round2
    go(page, "Export")
    page.get_by_text("2 labeled samples, 4 label events.").wait_for()
    exported = {r["sample_id"]: r["label"] for r in table_rows(page)}
    keys = store.samples(project.id).set_index("sample_id")["key"]
    assert exported == {keys[first]: "anomalous", keys[second]: "normal"}

    for name in ("Projects", "Review", "Train", "Latent map", "Progress", "Export"):
        go(page, name)
        shot(page, f"loop-page-{name.lower().replace(' ', '-')}")
        no_exception(page)
    assert elsewhere == []
