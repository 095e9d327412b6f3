"""Export page: a labels file imported in the browser is what the store holds, and the page's counts,
table and downloads show it at once (they were drawn before the import ran, and stayed stale)."""
from __future__ import annotations

import io

import pandas as pd
from browser_util import go, no_exception, open_project, settle, shot, trained_project
from playwright.sync_api import expect

from state.store import Store


def test_an_imported_file_is_stored_exactly_and_shown_at_once(server_factory, new_page, tmp_path):
    server = server_factory()
    pid = trained_project(server.home)
    server.start()
    store = Store(home=server.home)
    keys = store.samples(pid)["key"].tolist()
    rows = [(keys[0], "anomalous"), (keys[1], "normal"), (keys[2], "+1"), (keys[3], "-1"),
            (keys[4], "anomalous"), (keys[4], "unlabeled"),  # labeled, then undone: stays unlabeled
            ("no-such-sample", "normal")]
    upload = tmp_path / "labels.csv"
    pd.DataFrame(rows, columns=["sample_id", "label"]).to_csv(upload, index=False)

    page = new_page()
    open_project(page, server.url, "fay", pid)
    go(page, "Export")
    expect(page.get_by_text("0 labeled samples, 0 label events.")).to_be_visible()
    page.get_by_test_id("stFileUploaderDropzoneInput").set_input_files(str(upload))
    page.get_by_text("labels.csv").wait_for()
    settle(page)
    page.get_by_role("button", name="Import").click()
    page.get_by_text("4 label(s) imported").wait_for()
    settle(page)
    expect(page.get_by_text("4 labeled samples, 4 label events.")).to_be_visible()  # drawn after the import
    assert "1 unknown sample id(s): no-such-sample" in page.get_by_test_id("stAlert").inner_text()

    labels = store.samples(pid).set_index("key")["label"]
    assert labels[keys[0]] == "anomalous" and labels[keys[1]] == "normal"
    assert labels[keys[2]] == "normal" and labels[keys[3]] == "anomalous" and labels.isna()[keys[4]]
    ev = store.events(pid)
    assert len(ev) == 4 and set(ev["annotator"]) == {"fay"} and set(ev["source"]) == {"import"}

    with page.expect_download() as download:  # the download holds the import too
        page.get_by_role("button", name="Labels (CSV)").click()
    got = pd.read_csv(io.StringIO(download.value.path().read_text()))
    assert sorted(got["sample_id"]) == sorted(keys[:4])
    no_exception(page)
    shot(page, "export-import")

    store.record_label(pid, int(store.samples(pid).set_index("key")["sample_id"][keys[0]]), "normal", "fay")
    page.get_by_role("button", name="Undo this import").click()  # one undo, here; the label given since stays
    expect(page.get_by_text("Undid the import: 3 label(s) reverted.")).to_be_visible()
    labels = store.samples(pid).set_index("key")["label"]
    assert labels[keys[0]] == "normal" and labels[keys[1:5]].isna().all()
    expect(page.get_by_role("button", name="Undo this import")).to_have_count(0)
    no_exception(page)
