"""What the browser tests do to the app, written once: navigate, wait for a finished script run,
read metrics, tables and the review cards, save screenshots."""
from __future__ import annotations

import re
from pathlib import Path

from playwright.sync_api import Page, expect

SHOTS = Path(__file__).resolve().parents[1] / "screenshots"
WAIT_MS = 240_000  # a shared 2-core machine can take minutes to train or to import torch
IDLE = "[data-testid='stApp'][data-test-script-state='notRunning']"
TITLES = {"Projects": "semiad — find the anomalies, with you in the loop", "Review": "Review", "Train": "Train",
          "Latent map": "Latent map", "Progress": "Progress", "Export": "Export"}


def settle(page: Page, timeout: float = WAIT_MS) -> None:
    """Wait until the script run is over and no element is left over from the previous run. Only
    meaningful after the expected new content is seen (right after a click the old run's state
    may still read notRunning)."""
    page.wait_for_selector(IDLE, timeout=timeout)
    page.wait_for_function("() => !document.querySelector(\"[data-testid='stMain'] [data-stale='true']\")",
                           timeout=timeout)


def no_exception(page: Page) -> None:
    expect(page.locator("[data-testid='stException']")).to_have_count(0)


def open_app(page: Page, url: str) -> None:
    page.goto(url)
    heading(page, TITLES["Projects"])


def heading(page: Page, title: str, timeout: float = WAIT_MS) -> None:
    page.get_by_role("heading", name=title, exact=True, level=1).wait_for(timeout=timeout)
    settle(page, timeout)


def go(page: Page, name: str) -> None:
    """Click the page's link in the sidebar navigation and wait for its title."""
    page.get_by_test_id("stSidebarNavLink").filter(has=page.get_by_text(name, exact=True)).click()
    heading(page, TITLES[name])
    if name == "Latent map":  # the chart draws after the script run: wait for Plotly's SVG
        page.get_by_test_id("stPlotlyChart").locator(".main-svg").first.wait_for(timeout=WAIT_MS)
    no_exception(page)


def enter_name(page: Page, name: str) -> None:
    box = page.get_by_label("Your name", exact=True)
    box.fill(name)
    box.press("Enter")
    page.wait_for_url(re.compile(rf"who={name}"))
    settle(page)
    page.get_by_role("heading", level=1).click()  # focus out of the text box, so keys reach shortcuts


def wait_for_model_round(page: Page, n: int, timeout: float = WAIT_MS) -> None:
    """Wait until the sidebar's job status (a fragment that polls the store every second) reports
    the model of round n. It does not depend on the page itself rerunning when the run ends."""
    page.get_by_test_id("stSidebar").get_by_text(f"Model: round {n} ", exact=False).wait_for(timeout=timeout)


def metric(page: Page, label: str):
    """The value element of a metric; use with expect(...).to_have_text."""
    return page.get_by_test_id("stMetric").filter(has_text=label).get_by_test_id("stMetricValue")


def expect_counts(page: Page, timeout: float = WAIT_MS, **values: int) -> None:
    """Review page metrics, e.g. expect_counts(page, Round=1, **{"Labeled normal": 0})."""
    for label, value in values.items():
        expect(metric(page, label)).to_have_text(str(value), timeout=timeout)


CARD_FRAME = "iframe[data-testid='stCustomComponentV1']"


def card_frame(page: Page):
    """The Review page's labeling component (the focused card, the grid and the keys)."""
    return page.frame_locator(CARD_FRAME).first


def review_root(page: Page):
    return card_frame(page).locator("#root")


def cards_ready(page: Page) -> None:
    """Wait until Review shows its focused card and the page's run is over (after opening or reloading it)."""
    card_frame(page).locator("[data-testid='focusedCard']").wait_for(timeout=WAIT_MS)
    settle(page)


def cards(page: Page) -> list[tuple[int, str, str]]:
    """Review cards in page order as (rank, score, sample key), the focused card first."""
    card_frame(page).locator("[data-testid='focusedCard']").wait_for(timeout=WAIT_MS)
    found = card_frame(page).locator("[data-testid='focusedCard'], [data-testid='gridCard']")
    return [(int(r), s, k) for r, s, k in found.evaluate_all(
        "els => els.map(e => [e.dataset.rank, e.dataset.score, e.dataset.key])")]


def focused_sample(page: Page) -> int:
    """Store id of the focused card's sample."""
    card_frame(page).locator("[data-testid='focusedCard']").wait_for(timeout=WAIT_MS)
    return int(card_frame(page).locator("[data-testid='focusedCard']").get_attribute("data-sid"))


def grid_samples(page: Page) -> list[int]:
    """Store ids of the grid cards, in page order."""
    return [int(x) for x in card_frame(page).locator("[data-testid='gridCard']").evaluate_all(
        "els => els.map(e => e.dataset.sid)")]


def card_button(page: Page, sid: int, name: str):
    """A grid card's button: name is Normal, Anomalous or Skip."""
    return card_frame(page).locator(f"[data-testid='gridCard'][data-sid='{sid}'] [data-testid='grid{name}']")


def focus_button(page: Page, name: str):
    """A focused-card button: Normal, Anomalous, Skip, or Undo."""
    return card_frame(page).locator(f"[data-testid='{'undo' if name == 'Undo' else 'focus' + name}']")


def wait_saved(page: Page, timeout: float = WAIT_MS) -> None:
    """Wait until the component has no request the server has not acknowledged."""
    expect(review_root(page)).to_have_attribute("data-pending", "0", timeout=timeout)


def wait_focused_changes(page: Page, old: int, timeout: float = WAIT_MS) -> int:
    """Wait until the focused card is another sample than `old`; returns it."""
    expect(review_root(page)).not_to_have_attribute("data-focused", str(old), timeout=timeout)
    return focused_sample(page)


def focus_page(page: Page) -> None:
    """Put the keyboard focus on the page itself (not a text box), as a person clicking beside it."""
    page.get_by_role("heading", name="Review", level=1).click()


def keyed_button(page: Page, key: str):
    # while a rerun replaces the element, the old and the new button can both be in the DOM
    return page.locator(f".st-key-{key} button").filter(visible=True).first


def table_rows(page: Page, index: int = 0) -> list[dict[str, str]]:
    """Rows of an st.dataframe, read from the accessible table the grid renders for screen readers
    (the visible grid is a canvas)."""
    grid = page.get_by_test_id("stDataFrame").nth(index).locator("table[role='grid']")
    return grid.evaluate("""t => {
        const head = [...t.querySelectorAll('th')].map(h => h.innerText.trim());
        return [...t.querySelectorAll('tbody tr')].map(r => Object.fromEntries(
            [...r.querySelectorAll('td')].map((c, i) => [head[i], c.innerText.trim()])));
    }""")


def shot(page: Page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def trained_project(home: Path, name: str = "digits", **hyper) -> int:
    """A project on the bundled digits with a tiny first model, trained here before the server
    starts (the first model's speed is not what these tests are about)."""
    from semiad.data import load_digits
    from state.store import Store
    from state.worker import Worker

    store = Store(home=home)
    pid = store.create_project(name, load_digits(), source="digits")
    store.request_run(pid, "deepsad", {"hyper": {"pretrain_epochs": 1, "epochs": 2, **hyper}}, "setup")
    assert Worker(store, maps=False).run_once()
    assert store.latest_done_run(pid) is not None, store.runs(pid)[-1].error
    store.close()
    return pid


def open_project(page: Page, url: str, who: str, project_id: int) -> None:
    """As a person: open the app, enter a name, click the project's Open button (lands on Review)."""
    open_app(page, url)
    enter_name(page, who)
    keyed_button(page, f"open-{project_id}").click()
    heading(page, "Review")
    cards_ready(page)
    no_exception(page)


def set_number(page: Page, label: str, value: int | float) -> None:
    """Type into a number input of the current page and commit it (Enter), waiting for the rerun."""
    box = page.get_by_label(label, exact=True)
    box.fill(str(value))
    box.press("Enter")
    expect(box).to_have_value(str(value))
    settle(page)


def click_to_queue_run(page: Page, button, home: Path, project_id: int) -> int:
    """Click a Train/Retrain button once and check in the store that the click queued a run
    (waiting for it, never clicking again). Returns the id of the queued run."""
    import time

    from state.store import Store

    store = Store(home=home)
    before = len(store.runs(project_id))
    settle(page)
    button.click()
    end = time.monotonic() + WAIT_MS / 1000
    try:
        while time.monotonic() < end:
            runs = store.runs(project_id)
            if len(runs) > before:
                return runs[before].id  # the run this click queued
            time.sleep(0.2)  # polling the store, not a wait for an outcome of fixed length
    finally:
        store.close()
    raise AssertionError("the click queued no run")
