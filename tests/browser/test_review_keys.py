"""One key press or click is exactly one label event, on the sample that was on screen when it was
pressed, at any pace (issue 12, items 1 and 3). The sidebar's job status polls the store every
second throughout (a run_every fragment), so these presses also race its reruns.

The expected event log is computed here from the queue order and the keys alone: n / a label the
focused card and move on, s skips it (no event), u takes back this tab's latest press that is not
taken back yet and brings that card back to the front: a label by one undo event, a skip by none."""
from __future__ import annotations

import time

import numpy as np
from browser_util import (
    card_button,
    card_frame,
    cards_ready,
    expect_counts,
    focus_button,
    focus_page,
    focused_sample,
    go,
    grid_samples,
    heading,
    no_exception,
    open_project,
    review_root,
    settle,
    shot,
    trained_project,
    wait_focused_changes,
    wait_saved,
)
from playwright.sync_api import expect

from bench.review_latency import key_plan
from state.ranking import next_batch
from state.store import Store

LABEL = {"n": "normal", "a": "anomalous"}


def initial_order(store: Store, pid: int) -> list[int]:
    """The "top scores" queue: unlabeled samples by rank in the latest run."""
    return next_batch(store, store.latest_done_run(pid), "top", 200)["sample_id"].astype(int).tolist()


class Model:
    """What the keys mean, independent of the page: the expected focused sample and events."""

    def __init__(self, order: list[int]) -> None:
        self.order = list(order)
        self.front: list[int] = []
        self.done: set[int] = set()
        self.history: list[tuple[int, str]] = []  # (sample, key) of the labels and skips
        self.events: list[tuple[int, str]] = []

    def focused(self) -> int:
        return next(s for s in self.front + self.order if s not in self.done)

    def press(self, key: str) -> None:
        if key == "u":
            sid, taken_back = self.history.pop()
            self.done.discard(sid)
            self.front = [sid] + [s for s in self.front if s != sid]
            if taken_back in LABEL:
                self.events.append((sid, "unlabeled"))
            return
        sid = self.focused()
        self.done.add(sid)
        self.front = [s for s in self.front if s != sid]
        self.history.append((sid, key))
        if key in LABEL:
            self.events.append((sid, LABEL[key]))


def key_sequence(n: int, seed: int) -> list[str]:
    """n keys mixing n, a, s and u (u only when this tab has a label left to undo; some u u pairs):
    the latency bench's key plan, with more s and u."""
    return key_plan(n, seed, p=(0.35, 0.3, 0.15, 0.2))


def stored(store: Store, pid: int) -> list[tuple[int, str]]:
    ev = store.events(pid)
    return list(zip(ev["sample_id"].astype(int), ev["label"]))


def on_screen(page) -> int:
    return int(review_root(page).get_attribute("data-focused"))


def open_review(server_factory, new_page, who: str):
    """A trained project on a running server and its Review page open as `who`: (store, pid, page)."""
    server = server_factory()
    pid = trained_project(server.home)
    server.start()
    store = Store(home=server.home)
    page = new_page()
    open_project(page, server.url, who, pid)
    return store, pid, page


def test_thirty_keys_50_to_100_ms_apart_give_exactly_the_intended_events(server_factory, new_page):
    store, pid, page = open_review(server_factory, new_page, "alice")
    model = Model(initial_order(store, pid))
    assert focused_sample(page) == model.focused()

    keys = key_sequence(30, seed=12)
    assert {"n", "a", "s", "u"} <= set(keys) and "uu" in "".join(keys)
    gaps = np.random.default_rng(5).uniform(0.05, 0.10, len(keys))
    focus_page(page)
    seen, expected = [], []
    t = time.monotonic()
    for key, gap in zip(keys, gaps):
        seen.append(on_screen(page))  # what the person sees as they press
        expected.append(model.focused())
        page.keyboard.press(key)
        model.press(key)
        t += gap
        time.sleep(max(0.0, t - time.monotonic()))  # the typing pace, not a wait for the app
    assert seen == expected, "a key landed on a card that was not the focused one"

    wait_saved(page)
    assert card_frame(page).locator("#root").evaluate("() => window.reviewIgnored") == 0  # every key found a card
    assert stored(store, pid) == model.events
    ev = store.events(pid)
    assert ev["annotator"].eq("alice").all()
    assert set(ev["source"]) <= {"review:top", "undo"}
    labels = store.samples(pid).set_index("sample_id")["label"]
    current: dict[int, str] = {}
    for sid, lab in model.events:
        current[sid] = lab
    for sid, lab in current.items():
        assert (labels[sid] if isinstance(labels[sid], str) else "unlabeled") == lab, sid
    expect(review_root(page)).to_have_attribute("data-focused", str(model.focused()))
    expect_counts(page, **{"Label events": len(model.events)})
    no_exception(page)
    shot(page, "review-keys-after-30")


def test_single_keys_one_second_apart_write_one_event_each(server_factory, new_page):
    store, pid, page = open_review(server_factory, new_page, "bob")
    model = Model(initial_order(store, pid))
    focus_page(page)
    for key in ["a", "n", "s", "n", "u", "a", "n"]:
        assert on_screen(page) == model.focused()
        page.keyboard.press(key)
        model.press(key)
        time.sleep(1.0)  # the pace of the keys
        assert len(stored(store, pid)) <= len(model.events), "one key wrote more than one event"
    wait_saved(page)
    assert stored(store, pid) == model.events
    expect_counts(page, **{"Label events": len(model.events)})


def test_two_tabs_of_one_annotator_each_label_and_undo_their_own_presses(server_factory, new_page):
    store, pid, one = open_review(server_factory, new_page, "carol")
    two = one.context.new_page()  # a second tab of the same browser
    two.goto(one.url)
    card_frame(two).locator("[data-testid='focusedCard']").wait_for()
    order = initial_order(store, pid)
    assert focused_sample(one) == focused_sample(two) == order[0]

    # Both tabs label the card they show (the same one); each press is one event. (Tab one's label is
    # saved before tab two's key, so the two sessions' writes have a known order.)
    focus_page(one)
    one.keyboard.press("n")
    wait_saved(one)
    focus_page(two)
    two.keyboard.press("a")
    wait_saved(two)
    assert stored(store, pid) == [(order[0], "normal"), (order[0], "anomalous")]

    # Tab one goes on with two more; tab two's undo reverts tab two's own label, not tab one's latest.
    focus_page(one)
    first = on_screen(one)
    one.keyboard.press("a")
    expect(review_root(one)).not_to_have_attribute("data-focused", str(first))
    second = on_screen(one)
    one.keyboard.press("n")
    wait_saved(one)
    focus_page(two)
    two.keyboard.press("u")
    expect(review_root(two)).to_have_attribute("data-focused", str(order[0]))  # back in front, in tab two
    wait_saved(two)
    focus_page(one)
    one.keyboard.press("u")  # tab one's latest: the n on `second`
    expect(review_root(one)).to_have_attribute("data-focused", str(second))
    wait_saved(one)

    assert stored(store, pid) == [(order[0], "normal"), (order[0], "anomalous"), (first, "anomalous"),
                                  (second, "normal"), (order[0], "normal"), (second, "unlabeled")]
    labels = store.samples(pid).set_index("sample_id")["label"]
    assert labels[order[0]] == "normal" and labels[first] == "anomalous" and labels.isna()[second]
    assert store.events(pid)["annotator"].eq("carol").all()
    for tab in (one, two):
        no_exception(tab)


def test_keys_pressed_just_before_leaving_review_are_stored_on_the_next_page(server_factory, new_page):
    """A click on another page right after a key press ends the run that would have applied it; the
    other page's outbox sends what the cards left unacknowledged, before the page reads the store."""
    store, pid, page = open_review(server_factory, new_page, "dora")
    model = Model(initial_order(store, pid))
    focus_page(page)
    for key in "nanan":
        page.keyboard.press(key)
        model.press(key)
        time.sleep(0.12)  # a quick typist
    page.get_by_test_id("stSidebarNavLink").filter(has=page.get_by_text("Train", exact=True)).click()
    heading(page, "Train")
    normal = sum(lab == "normal" for _, lab in model.events)
    caption = f"{normal} normal and {len(model.events) - normal} anomalous labels so far"
    page.get_by_text(caption).wait_for(timeout=30_000)  # the page read the store after the outbox's labels
    assert stored(store, pid) == model.events
    assert store.events(pid)["annotator"].eq("dora").all()
    # the browser lets go of them once the outbox's answer comes back (on a loaded machine, after the page drew)
    held = ("() => Object.keys(sessionStorage).filter((k) => k.startsWith('semiad-review:'))"
            ".map((k) => JSON.parse(sessionStorage.getItem(k)).pending.length)")
    page.wait_for_function(f"() => ({held})().every((n) => n === 0)", timeout=30_000)
    assert page.evaluate(held) == [0], "the browser still holds requests the server has stored"
    no_exception(page)

    go(page, "Review")  # back on Review, nothing is sent twice and the queue goes on after the five
    expect(review_root(page)).to_have_attribute("data-focused", str(model.focused()))
    wait_saved(page)
    assert stored(store, pid) == model.events



def test_closing_the_tab_with_presses_not_yet_saved_asks_first(server_factory, new_page):
    """Closing the tab would lose a press the server has not acknowledged, so the browser asks first
    (beforeunload); with every press saved, the tab closes without a word."""
    server = server_factory()
    pid = trained_project(server.home)
    server.start()
    asked: list[str] = []
    saved = new_page()
    saved.on("dialog", lambda d: (asked.append(d.type), d.dismiss()))
    open_project(saved, server.url, "erin", pid)
    focus_page(saved)
    saved.keyboard.press("n")
    wait_saved(saved)
    with saved.expect_event("close", timeout=10_000):  # (Playwright sees events only inside its calls)
        saved.close(run_before_unload=True)
    assert asked == []

    page = new_page()
    open_project(page, server.url, "erin", pid)
    server.kill()  # nothing can be acknowledged now
    focus_page(page)
    page.keyboard.press("a")
    expect(review_root(page)).to_have_attribute("data-pending", "1")
    with page.expect_event("dialog", timeout=10_000) as asking:
        page.close(run_before_unload=True)
    assert asking.value.type == "beforeunload"
    asking.value.dismiss()  # stay on the page
    expect(review_root(page)).to_have_attribute("data-pending", "1")  # the press is still held
    assert not page.is_closed()

    # requests kept under the name this tab had before (changed while they were on their way) count too
    other = new_page()
    server.start()
    open_project(other, server.url, "erin", pid)
    other.evaluate("""() => sessionStorage.setItem('semiad-review:' + 'elsewhere|1|erin-before',
                                                   JSON.stringify({pending: [{t: 'tab_0123456789', op: 'skip'}]}))""")
    with other.expect_event("dialog", timeout=10_000) as asking:
        other.close(run_before_unload=True)
    assert asking.value.type == "beforeunload"
    asking.value.dismiss()


def test_undo_after_a_reload_brings_the_card_back_to_the_front(server_factory, new_page):
    """The tab remembers its presses across a reload, but no longer holds the card it moved past: the
    server puts the card an undo reverted first in the queue."""
    store, pid, page = open_review(server_factory, new_page, "gus")
    focus_page(page)
    first = on_screen(page)
    page.keyboard.press("n")
    wait_saved(page)
    page.reload()
    cards_ready(page)
    assert on_screen(page) != first
    focus_page(page)
    page.keyboard.press("u")
    expect(review_root(page)).to_have_attribute("data-focused", str(first))
    wait_saved(page)
    assert stored(store, pid) == [(first, "normal"), (first, "unlabeled")]


def test_undo_right_after_a_skip_brings_the_skipped_card_back_and_writes_nothing(server_factory, new_page):
    """"u" takes back the tab's last press: after "s" the skipped card is in focus again (and stays in the
    queue after the page reruns), and the undo that follows reverts the label before it."""
    store, pid, page = open_review(server_factory, new_page, "hal")
    focus_page(page)
    first = on_screen(page)
    page.keyboard.press("a")
    expect(review_root(page)).not_to_have_attribute("data-focused", str(first))
    second = on_screen(page)
    page.keyboard.press("s")
    expect(review_root(page)).not_to_have_attribute("data-focused", str(second))
    page.keyboard.press("u")
    expect(review_root(page)).to_have_attribute("data-focused", str(second))
    wait_saved(page)
    page.reload()  # the server forgot the skip: the card is still first
    cards_ready(page)
    assert on_screen(page) == second
    assert stored(store, pid) == [(first, "anomalous")]
    focus_page(page)
    page.keyboard.press("u")
    expect(review_root(page)).to_have_attribute("data-focused", str(first))
    wait_saved(page)
    assert stored(store, pid) == [(first, "anomalous"), (first, "unlabeled")]


def test_the_card_on_screen_stays_when_a_new_models_ranking_arrives(server_factory, new_page):
    """A run finishes while the person looks at a card: that card stays in focus until answered (the new
    ranking used to replace it at once, and a key pressed just then landed on the new first card)."""
    store, pid, page = open_review(server_factory, new_page, "ivy")
    focus_page(page)
    for key in "nnnn":
        page.keyboard.press(key)
    wait_saved(page)
    held = on_screen(page)
    first_run = store.latest_done_run(pid).id
    rid = store.request_run(pid, "iforest", {"hyper": {}}, "test")  # another method: another first card
    deadline = time.monotonic() + 240
    while store.latest_done_run(pid).id == first_run and time.monotonic() < deadline:
        time.sleep(0.2)
    assert store.latest_done_run(pid).id == rid
    expect(page.get_by_text(f"run {rid} (fresh model)", exact=False)).to_be_visible(timeout=60_000)  # the page has it
    settle(page)
    new_first = initial_order(store, pid)[0]
    assert new_first != held  # else this test could not tell
    assert on_screen(page) == held
    page.keyboard.press("a")
    expect(review_root(page)).to_have_attribute("data-focused", str(new_first))
    wait_saved(page)
    assert stored(store, pid)[-1] == (held, "anomalous")


def test_keys_label_again_right_after_a_strategy_is_picked(server_factory, new_page):
    """Picking "Mixed" in "Show next" leaves the keyboard in that box: n and a typed a search there and
    labeled nothing. The next key labels the focused card, at once (before the page has run again)."""
    store, pid, page = open_review(server_factory, new_page, "jo")
    first = on_screen(page)
    page.get_by_test_id("stSelectbox").first.click()
    page.get_by_role("option", name="Mixed").click()
    page.keyboard.press("a")  # no click anywhere first: the person goes on typing
    expect(review_root(page)).not_to_have_attribute("data-focused", str(first))
    wait_saved(page)
    assert stored(store, pid) == [(first, "anomalous")]
    settle(page)
    expect(page.get_by_role("listbox")).to_have_count(0)  # the key opened no search in the box
    no_exception(page)


def test_a_key_with_no_card_left_says_it_labeled_nothing(server_factory, new_page):
    """Once the queue is answered, a key labels nothing, and the page says so instead of staying silent."""
    from tests.test_latent_page import table_project

    server = server_factory()
    store = Store(home=server.home)
    pid, _ = table_project(store, "six rows", 6)
    server.start()
    page = new_page()
    open_project(page, server.url, "erin", pid)
    focus_page(page)
    for _ in range(6):
        page.keyboard.press("n")
        time.sleep(0.3)
    expect(card_frame(page).get_by_test_id("reviewEmpty")).to_have_text("Nothing left to show in this queue.")
    wait_saved(page)
    page.keyboard.press("a")
    expect(card_frame(page).get_by_test_id("reviewStatus")).to_have_text(
        "That key labeled nothing: no card is left in this queue.")
    shot(page, "review-queue-answered")
    assert store.events(pid)["label"].tolist() == ["normal"] * 6


def double_click(page, button, gap_s: float) -> None:
    """Two presses of the mouse at one place, as a person's double-click (each a click of its own)."""
    box = button.bounding_box()
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    time.sleep(gap_s)
    page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)


def test_a_double_click_labels_only_the_card_clicked(server_factory, new_page):
    """The second click of a double-click lands on the card that just moved into the answered one's place:
    it must label nothing (before: it labeled that unseen card)."""
    store, pid, page = open_review(server_factory, new_page, "dora")
    meant = []
    for gap in (0.1, 0.2):
        sid = grid_samples(page)[0]
        meant.append((sid, "normal"))
        double_click(page, card_button(page, sid, "Normal"), gap)
        expect(card_frame(page).locator(f"[data-testid='gridCard'][data-sid='{sid}']")).to_have_count(0)
        time.sleep(1.0)
    for gap in (0.1, 0.2):
        sid = focused_sample(page)
        meant.append((sid, "anomalous"))
        double_click(page, focus_button(page, "Anomalous"), gap)
        wait_focused_changes(page, sid)
        time.sleep(1.0)
    sid = focused_sample(page)
    meant.append((sid, "normal"))
    focus_button(page, "Normal").dblclick()  # the browser's own double-click (its second click has detail 2)
    wait_focused_changes(page, sid)
    expect(card_frame(page).get_by_test_id("reviewStatus")).to_contain_text("A second click right after the first")
    time.sleep(1.0)
    nxt = focused_sample(page)
    focus_button(page, "Normal").click()  # a click a second later answers the next card as usual
    wait_focused_changes(page, nxt)
    meant.append((nxt, "normal"))
    wait_saved(page)
    events = store.events(pid)
    assert list(zip(events["sample_id"].astype(int), events["label"])) == meant


def test_a_press_held_back_by_a_dropped_connection_never_overwrites_a_later_label(server_factory, new_page):
    """Max's connection drops: he labels the card on screen and the next; meanwhile Nia labels the first card
    anomalous. When max's connection comes back, his first press is refused, saying Nia's label is newer (it
    wrote over hers before); his second is stored. (A name typed while presses are on their way does not take
    them over: test_label_requests.)"""
    store, pid, a = open_review(server_factory, new_page, "max")
    b = new_page()
    open_project(b, a.url.split("/review")[0], "nia", pid)
    x = focused_sample(a)
    assert focused_sample(b) == x
    a.context.set_offline(True)
    focus_page(a)
    a.keyboard.press("n")
    y = wait_focused_changes(a, x)
    a.keyboard.press("a")
    wait_focused_changes(a, y)
    time.sleep(3.0)  # Nia's label comes well after max's press (two presses at once are both recorded)
    focus_page(b)
    b.keyboard.press("a")
    wait_saved(b)
    expect(card_frame(a).get_by_test_id("reviewStatus")).to_contain_text(  # max is told, not left guessing
        "Saving 2 request(s)… no answer from the server for", timeout=20_000)
    shot(a, "review-connection-down")
    a.context.set_offline(False)
    wait_saved(a)  # sent again once the connection is back, and answered
    events = store.events(pid)
    assert list(zip(events["sample_id"].astype(int), events["label"], events["annotator"])) == [
        (x, "anomalous", "nia"), (y, "anomalous", "max")]
    expect(card_frame(a).get_by_test_id("reviewStatus")).to_contain_text(
        "was labeled anomalous by nia after your key press")
    shot(a, "review-held-back-press-refused")
