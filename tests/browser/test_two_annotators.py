"""Two annotators at once (issue 8, item 3, the browser part): two browsers with two names label the
same project at the same time through the Review page; the store keeps every click once, with the
right name, and the page shows a sample the two disagree on as disputed, with both names."""
from __future__ import annotations

import re
import time

from browser_util import (
    card_button,
    card_frame,
    expect_counts,
    focus_page,
    focused_sample,
    grid_samples,
    heading,
    no_exception,
    open_project,
    shot,
    trained_project,
    wait_focused_changes,
    wait_saved,
)
from playwright.sync_api import expect

from state.store import Store


def alice_and_bob(server_factory, new_page):
    """A trained project on a running server, open on Review in two browsers: (server, pid, alice, bob)."""
    server = server_factory()
    pid = trained_project(server.home)
    server.start()
    alice, bob = new_page(), new_page()
    open_project(alice, server.url, "alice", pid)
    open_project(bob, server.url, "bob", pid)
    return server, pid, alice, bob


def test_two_annotators_label_the_same_project_at_once(server_factory, new_page):
    server, pid, alice, bob = alice_and_bob(server_factory, new_page)
    clicks: list[tuple[str, int, str]] = []  # (who, sample id, label) of every click, in no set order

    # Both see the same focused sample; both press a key for it at the same moment, disagreeing.
    disputed = focused_sample(alice)
    assert focused_sample(bob) == disputed
    for page in (alice, bob):
        focus_page(page)
    alice.keyboard.press("n")
    bob.keyboard.press("a")
    clicks += [("alice", disputed, "normal"), ("bob", disputed, "anomalous")]
    for page in (alice, bob):
        wait_focused_changes(page, disputed)  # labeled: no longer focused
        wait_saved(page)

    # Three more rounds: each clicks a grid card at once, alice from the left, bob from the right
    # (the queue is the same for both, so their picks never collide).
    for _ in range(3):
        # a person looks at the card that moved in before clicking it: two clicks at one place within 0.4 s
        # are a double-click, whose second the page ignores (it would answer a card never looked at)
        time.sleep(0.5)
        a_sid, b_sid = grid_samples(alice)[0], grid_samples(bob)[-1]
        assert a_sid != b_sid
        card_button(alice, a_sid, "Normal").click()
        card_button(bob, b_sid, "Anomalous").click()
        clicks += [("alice", a_sid, "normal"), ("bob", b_sid, "anomalous")]
        for page, sid in ((alice, a_sid), (bob, b_sid)):
            expect(card_frame(page).locator(f"[data-sid='{sid}']")).to_have_count(0)  # labeled: gone from the queue
            wait_saved(page)

    store = Store(home=server.home)
    events = store.events(pid)
    stored = sorted(zip(events["annotator"], events["sample_id"], events["label"]))
    assert stored == sorted(clicks)  # every click once, with the right name; nothing else
    assert events["source"].str.startswith("review").all()  # all through the Review page
    last = events[events["sample_id"] == disputed]["label"].iloc[-1]  # the later event is current
    labels = store.samples(pid).set_index("sample_id")["label"]
    assert labels[disputed] == last
    truth = {lab: int((labels == lab).sum()) for lab in ("normal", "anomalous")}
    assert truth["normal"] + truth["anomalous"] == 7  # one sample labeled twice, six once
    counts = store.label_counts(pid)
    assert counts["events"] == 8

    # A fresh look (reload) shows the shared counts and the dispute, with both names, in each browser.
    key = store.samples(pid).set_index("sample_id")["key"][disputed]
    for who, page in (("alice", alice), ("bob", bob)):
        page.reload()
        heading(page, "Review")
        expect_counts(page, **{"Labeled normal": counts["normal"], "Labeled anomalous": counts["anomalous"],
                               "Label events": 8})
        note = page.get_by_text(f"{key} — disputed:", exact=False)
        expect(note).to_contain_text("alice said normal")
        expect(note).to_contain_text("bob said anomalous")
        expect(note).to_contain_text(f"current (latest): {last}")
        no_exception(page)
        shot(page, f"two-annotators-review-{who}")

    # Checked last so the checks above still run: the counters the pages show must agree with the
    # labels themselves even when two label transactions on one sample overlap.
    assert {lab: counts[lab] for lab in truth} == truth, (
        f"label counters {counts} disagree with the stored labels {truth} after concurrent labels")


def test_a_name_corrected_at_once_is_the_name_stored_and_a_cleared_name_stays_cleared(server_factory, new_page):
    """A typo fixed right after Enter: the box keeps the fix and the label is the fixed name's (the unkeyed
    box was a new widget once its starting value changed, and dropped the fix: labels went to the typo)."""
    from browser_util import cards_ready, enter_name, keyed_button, open_app, settle

    server = server_factory()
    pid = trained_project(server.home)
    server.start()
    page = new_page()
    open_app(page, server.url)
    box = page.get_by_label("Your name", exact=True)
    box.fill("alcie")
    box.press("Enter")
    box.fill("alice")  # at once, before the page has run again
    box.press("Enter")
    settle(page)
    expect(box).to_have_value("alice")
    keyed_button(page, f"open-{pid}").click()
    heading(page, "Review")
    cards_ready(page)
    expect(page.get_by_label("Your name", exact=True)).to_have_value("alice")
    sid = focused_sample(page)
    focus_page(page)
    page.keyboard.press("n")
    wait_saved(page)
    ev = Store(home=server.home).events(pid)
    assert list(zip(ev["sample_id"], ev["label"], ev["annotator"])) == [(sid, "normal", "alice")]
    enter_name(page, "bob")  # another person takes over the tab
    expect(page).to_have_url(re.compile(r"who=bob"))
    box = page.get_by_label("Your name", exact=True)
    box.fill("")  # and leaves: a reload must not bring a name back
    box.press("Enter")
    expect(page).not_to_have_url(re.compile(r"who="))
    settle(page)
    page.reload()
    heading(page, "Review")
    expect(page.get_by_label("Your name", exact=True)).to_have_value("")
    no_exception(page)


def test_an_undo_after_someone_else_relabeled_the_sample_says_so_and_leaves_their_label(server_factory, new_page):
    """Alice says normal, Bob then anomalous on the same card, Alice presses u: nothing is written, her tab
    says why and does not show the card as unlabeled again (it did, silently, and a key there replaced
    Bob's label)."""
    server, pid, alice, bob = alice_and_bob(server_factory, new_page)
    sid = focused_sample(alice)
    assert focused_sample(bob) == sid
    focus_page(alice)
    alice.keyboard.press("n")
    wait_saved(alice)
    focus_page(bob)
    bob.keyboard.press("a")
    wait_saved(bob)
    focus_page(alice)
    alice.keyboard.press("u")
    status = card_frame(alice).get_by_test_id("reviewStatus")
    expect(status).to_contain_text("Not undone: that sample was labeled again since (by bob)")
    assert focused_sample(alice) != sid
    wait_saved(alice)
    ev = Store(home=server.home).events(pid)
    assert list(zip(ev["sample_id"], ev["label"], ev["annotator"])) == [(sid, "normal", "alice"),
                                                                         (sid, "anomalous", "bob")]
    shot(alice, "undo-after-someone-else")
    no_exception(alice)
