"""Originals on the Review page (issue 12, item 4): for an image-folder project the focused card shows
the original file scaled to fit, a click zooms to full resolution, the grid shows thumbnails made
from the originals, and the model input stays one click away."""
from __future__ import annotations

import re
from pathlib import Path

from browser_util import card_frame, focus_button, no_exception, open_project, shot, wait_focused_changes
from playwright.sync_api import expect

from semiad.data import load_image_folder
from state.store import Store
from state.worker import Worker
from tests.test_originals import photo_folder


def photo_project(home: Path, folder: Path) -> int:
    store = Store(home=home)
    pid = store.create_project("photos", load_image_folder(folder), source=str(folder))
    store.request_run(pid, "deepsad", {"hyper": {"pretrain_epochs": 1, "epochs": 1}}, "setup")
    assert Worker(store, maps=False).run_once()
    assert store.latest_done_run(pid) is not None, store.runs(pid)[-1].error
    store.close()
    return pid


def open_photos(server_factory, new_page, folder: Path, who: str):
    """A project on `folder`, trained, on a running server, open on Review as `who`: (page, the cards' frame)."""
    server = server_factory()
    pid = photo_project(server.home, folder)
    server.start()
    page = new_page()
    open_project(page, server.url, who, pid)
    return page, card_frame(page)


def natural_size(locator) -> tuple[int, int]:
    return tuple(locator.evaluate("img => [img.naturalWidth, img.naturalHeight]"))


def test_focused_card_shows_the_original_and_zooms_to_full_resolution(server_factory, new_page, tmp_path):
    folder = photo_folder(tmp_path / "photos", n=12, size=(640, 480))
    page, frame = open_photos(server_factory, new_page, folder, "dana")

    main = frame.locator("[data-testid='focusedCard'] .pic img").first
    expect(main).to_have_attribute("src", re.compile(r"^data:image/jpeg"))
    main.evaluate("img => img.decode()")
    assert natural_size(main) == (560, 420)  # the 640×480 original scaled to fit the card, not the 32×32 input
    thumbs = frame.locator("[data-testid='gridCard'] .pic img")
    expect(thumbs).to_have_count(11)
    for i in range(3):
        thumbs.nth(i).evaluate("img => img.decode()")
        assert natural_size(thumbs.nth(i)) == (192, 144)  # thumbnails of the originals
    shot(page, "review-originals")

    # a click zooms to the original at full resolution, over the page; a click closes it
    frame.locator("[data-testid='zoomOriginal']").click()
    zoom = page.get_by_test_id("semiadZoom").locator("img")
    expect(zoom).to_have_count(1)
    zoom.evaluate("img => img.decode()")
    assert natural_size(zoom) == (640, 480)
    expect(page.get_by_test_id("semiadZoom")).to_contain_text("640×480")
    shot(page, "review-originals-zoom")
    page.get_by_test_id("semiadZoom").click()
    expect(page.get_by_test_id("semiadZoom")).to_have_count(0)
    # Escape closes it too, though the click on the picture left the keyboard focus in the card's frame
    frame.locator("[data-testid='zoomOriginal']").click()
    expect(page.get_by_test_id("semiadZoom").locator("img")).to_have_count(1)
    page.keyboard.press("Escape")
    expect(page.get_by_test_id("semiadZoom")).to_have_count(0)

    # the model input is one click away
    frame.locator("[data-testid='view-input']").click()
    main = frame.locator("[data-testid='focusedCard'] .pic img").first
    expect(main).to_have_attribute("src", re.compile(r"^data:image/png"))
    main.evaluate("img => img.decode()")
    assert natural_size(main) == (32, 32)
    # and labeling still goes on: the next card shows its original again
    first = int(frame.locator("[data-testid='focusedCard']").get_attribute("data-sid"))
    focus_button(page, "Normal").click()
    wait_focused_changes(page, first)
    expect(frame.locator("[data-testid='focusedCard'] .pic img").first).to_have_attribute(
        "src", re.compile(r"^data:image/jpeg"))
    no_exception(page)


def test_small_originals_are_drawn_with_sharp_pixels_and_zoom_to_fill_the_window(server_factory, new_page, tmp_path):
    """A folder of 28×28 pictures: the cards draw them pixel for pixel (no smoothing), and the zoom blows
    the original up by a whole factor, where a large one stays at its own size (test above)."""
    folder = photo_folder(tmp_path / "tiny", n=12, size=(28, 28))
    page, frame = open_photos(server_factory, new_page, folder, "ed")
    expect(frame.locator("[data-testid='focusedCard'] .pic img").first).to_have_class(re.compile(r"\bpixel\b"))
    expect(frame.locator("[data-testid='gridCard'] .pic img").first).to_have_class(re.compile(r"\bpixel\b"))
    frame.locator("[data-testid='zoomOriginal']").click()
    zoom = page.get_by_test_id("semiadZoom")
    expect(zoom).to_contain_text(re.compile(r"shown (\d+)× its size"))
    factor = int(re.search(r"shown (\d+)×", zoom.inner_text()).group(1))
    assert factor >= 20  # a 1400×1000 window
    assert zoom.locator("img").evaluate("img => [img.naturalWidth, img.clientWidth]") == [28, 28 * factor]
    shot(page, "review-small-original-zoom")
    page.keyboard.press("Escape")
    expect(zoom).to_have_count(0)
    no_exception(page)
