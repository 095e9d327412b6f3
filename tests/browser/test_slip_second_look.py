"""The second look, as a person meets it: thirty cards labeled with the keys at a real pace, one of them
a slip ("n" on an anomaly); the next page run says so at the top, the toggle lists that label first among
the normal ones, and one click stores the change, with who and where."""
from __future__ import annotations

import re
import time

from browser_util import (
    focus_page,
    focused_sample,
    keyed_button,
    no_exception,
    open_project,
    settle,
    shot,
    wait_focused_changes,
    wait_saved,
)
from playwright.sync_api import expect

from semiad.data import load_digits
from state.store import Store
from state.worker import Worker


def test_a_slip_of_the_key_is_listed_for_a_second_look_and_put_right(server_factory, new_page):
    server = server_factory()
    store = Store(home=server.home)
    pid = store.create_project("digits", load_digits(), source="digits")
    store.request_run(pid, "fusion", {"hyper": {}, "representation": {"kind": "pixels"}}, "setup")
    assert Worker(store, maps=False).run_once() and store.latest_done_run(pid) is not None
    server.start()
    truth = store.samples(pid).set_index("sample_id")["truth"]
    page = new_page()
    open_project(page, server.url, "alice", pid)

    focus_page(page)
    pressed, anomalies_seen, slip = [], 0, None
    for _ in range(30):
        sid = focused_sample(page)
        key = "a" if truth[sid] == 1 else "n"
        if key == "a":
            anomalies_seen += 1
            if anomalies_seen == 3:
                key, slip = "n", sid  # the slip: an anomaly marked normal
        page.keyboard.press(key)
        pressed.append((sid, "anomalous" if key == "a" else "normal"))
        wait_focused_changes(page, sid)
        time.sleep(0.3)  # a person's pace
    wait_saved(page)
    events = store.events(pid)
    assert list(zip(events["sample_id"].astype(int), events["label"])) == pressed  # exactly the keys pressed
    assert slip is not None and truth[slip] == 1

    page.reload()  # a page run (a reload, another page, a finished retrain) tells at the top what it would list
    expect(page.get_by_text("normal label(s) your other labels lean anomalous on", exact=False)).to_be_visible()
    settle(page)
    shot(page, "second-look-hint")
    page.get_by_text("Second look at your labels", exact=True).click()
    expect(page.get_by_text("Labeled normal, but your other labels lean anomalous", exact=False)).to_be_visible()
    settle(page)
    change = keyed_button(page, f"second_look_change-{pid}-{slip}-normal")
    expect(change).to_be_visible()
    key = store.samples(pid).set_index("sample_id")["key"][slip]
    lines = page.locator("[data-testid='stMarkdownContainer']")
    first_normal = lines.filter(has_text=re.compile(r"— labeled normal\.")).first
    expect(first_normal).to_contain_text(key)  # the slip heads the normal list
    first_normal.scroll_into_view_if_needed()
    shot(page, "second-look-listed")
    change.click()
    expect(keyed_button(page, f"second_look_change-{pid}-{slip}-normal")).to_have_count(0)
    settle(page)
    no_exception(page)
    page.get_by_text("Labeled normal, but your other labels lean anomalous", exact=False).scroll_into_view_if_needed()
    shot(page, "second-look-put-right")
    last = store.events(pid, last=1).iloc[0]
    assert (int(last["sample_id"]), last["label"], last["annotator"], last["source"]) == (
        slip, "anomalous", "alice", "second-look")
    assert store.current_labels(pid, [slip]) == {slip: "anomalous"}
    assert len(store.events(pid)) == len(pressed) + 1
