"""Export and import of labels (state/transfer.py) on SQLite and PostgreSQL, with real files."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from semiad.data import load_image_folder
from state.store import Store
from state.transfer import (
    LABEL_COLUMNS,
    TransferError,
    copy_originals,
    current_labels,
    history,
    import_labels,
    read_labels,
    to_csv,
    to_json,
)


@pytest.fixture
def store(tmp_path, db_url) -> Store:
    s = Store(db_url(tmp_path), home=tmp_path / "workspace")
    yield s
    s.close()


@pytest.fixture
def images(tmp_path) -> Path:
    """Eight small PNGs in two class folders."""
    root = tmp_path / "data"
    for k in range(8):
        folder = root / ("bad" if k % 4 == 0 else "good")
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.full((10, 10), 30 * k, np.uint8)).save(folder / f"img{k}.png")
    return root


def labeled_project(store: Store, images: Path, name: str = "a") -> int:
    pid = store.create_project(name, load_image_folder(images), source=str(images))
    sid = store.samples(pid).set_index("key")["sample_id"]
    store.record_labels(pid, [sid["bad/img0.png"], sid["bad/img4.png"]], "anomalous", "ann")
    store.record_label(pid, sid["good/img1.png"], "normal", "bob")
    store.record_label(pid, sid["good/img2.png"], "anomalous", "bob")
    store.record_label(pid, sid["good/img2.png"], "normal", "ann")  # relabeled: the latest counts
    return pid


def labels_by_key(store: Store, pid: int) -> dict[str, str]:
    df = store.samples(pid)
    return dict(zip(df["key"], df["label"].where(df["label"].notna(), None)))


def test_export_has_one_row_per_labeled_sample_with_who_when_and_round(store, images):
    pid = labeled_project(store, images)
    table = current_labels(store, pid)
    assert list(table.columns) == LABEL_COLUMNS
    rows = table.set_index("sample_id")
    assert sorted(rows.index) == ["bad/img0.png", "bad/img4.png", "good/img1.png", "good/img2.png"]
    assert rows.loc["good/img2.png", "label"] == "normal" and rows.loc["good/img2.png", "annotator"] == "ann"
    assert rows.loc["bad/img0.png", "path"] == str((images / "bad" / "img0.png").resolve())
    assert (rows["round"] == 0).all()
    assert pd.Timestamp(rows.loc["good/img1.png", "time"]).tzinfo is not None  # ISO 8601 with UTC offset

    csv_back = pd.read_csv(pd.io.common.StringIO(to_csv(table)))
    assert list(csv_back.columns) == LABEL_COLUMNS and len(csv_back) == 4
    records = json.loads(to_json(table))
    assert records[0].keys() == set(LABEL_COLUMNS) and {r["sample_id"] for r in records} == set(rows.index)
    assert all(isinstance(r["round"], int) for r in records)

    events = history(store, pid)
    assert len(events) == 5 and events["label"].tolist()[-2:] == ["anomalous", "normal"]
    assert {"sample_id", "annotator", "time", "round", "source", "batch", "undoes"} <= set(events.columns)


def test_a_label_an_undo_restores_is_credited_to_whoever_gave_it(store, images):
    """Alice says normal, Bob anomalous, Bob undoes: the label is Alice's again, with her time and source;
    a map batch undone gives back the Review labels under it (the export and Progress read this)."""
    pid = store.create_project("u", load_image_folder(images), source=str(images))
    sid = store.samples(pid).set_index("key")["sample_id"]
    a, b, c = sid["good/img1.png"], sid["good/img2.png"], sid["good/img3.png"]
    store.record_label(pid, a, "normal", "alice", source="review:random")
    store.record_label(pid, a, "anomalous", "bob", source="review:top")
    store.undo_last(pid, "bob")
    store.record_label(pid, b, "anomalous", "bob", source="review:top")
    store.record_labels(pid, [b, c], "normal", "alice", source="map")
    store.undo_last(pid, "alice")
    given = store.labels_in_order(pid).set_index("sample_id")
    assert given.loc[a, ["label", "annotator", "source"]].tolist() == ["normal", "alice", "review:random"]
    assert given.loc[b, ["label", "annotator", "source"]].tolist() == ["anomalous", "bob", "review:top"]
    assert c not in given.index
    rows = current_labels(store, pid).set_index("sample_id")
    assert rows.loc["good/img1.png", ["label", "annotator"]].tolist() == ["normal", "alice"]
    assert rows.loc["good/img1.png", "time"] == history(store, pid)["time"].iloc[0]  # Alice's, not the undo's
    assert rows.loc["good/img2.png", ["label", "annotator"]].tolist() == ["anomalous", "bob"]
    assert list(rows.index) == ["good/img1.png", "good/img2.png"]  # in the samples' order


@pytest.mark.parametrize("fmt", ["csv", "json"])
def test_round_trip_export_new_project_import_gives_identical_labels(store, images, fmt):
    pid = labeled_project(store, images)
    table = current_labels(store, pid)
    content = to_csv(table) if fmt == "csv" else to_json(table)
    other = store.create_project("b", load_image_folder(images), source=str(images))
    report = import_labels(store, other, read_labels(content.encode(), f"labels.{fmt}"), "carol")
    assert (report.recorded, report.unchanged, report.unknown, report.bad) == (4, 0, [], [])
    assert labels_by_key(store, other) == labels_by_key(store, pid)
    ev = store.events(other)
    assert set(ev["source"]) == {"import"} and set(ev["annotator"]) == {"carol"} and ev["batch"].nunique() == 1
    # importing the same file again changes nothing and writes no event
    again = import_labels(store, other, read_labels(content.encode(), f"labels.{fmt}"), "carol")
    assert (again.recorded, again.unchanged) == (0, 4) and len(store.events(other)) == 4
    # one undo reverts the whole import
    assert len(store.undo_last(other, "carol")) == 4
    assert set(labels_by_key(store, other).values()) == {None}


def test_import_reports_unknown_ids_and_bad_rows_and_keeps_the_rest(store, images, tmp_path):
    pid = store.create_project("p", load_image_folder(images), source=str(images))
    f = tmp_path / "labels.csv"
    f.write_text("sample_id,label\n"
                 "bad/img0.png,anomalous\n"
                 "nowhere/x.png,normal\n"
                 "good/img1.png,maybe\n"
                 ",normal\n"
                 "good/img3.png, Normal \n"
                 "good/img3.png,anomalous\n")  # a later row for the same sample wins
    report = import_labels(store, pid, read_labels(f), "ann")
    assert report.recorded == 2 and report.unknown == ["nowhere/x.png"]
    assert report.bad == [("row 4", "label must be one of normal, anomalous, not 'maybe'"), ("row 5", "no sample id")]
    assert "nowhere/x.png" in report.summary() and "row 4" in report.summary()
    labels = labels_by_key(store, pid)
    assert labels["bad/img0.png"] == "anomalous" and labels["good/img3.png"] == "anomalous"


def test_unreadable_label_files_are_refused_with_the_file_name(tmp_path):
    for name, content, reason in [("empty.csv", "", "empty file"),
                                  ("cols.csv", "a,b\n1,2\n", "needs a sample_id and a label column"),
                                  ("obj.json", '{"sample_id": "x"}', "JSON must be a list of objects"),
                                  ("broken.json", "[{", "not a readable labels file")]:
        (tmp_path / name).write_text(content)
        with pytest.raises(TransferError, match=f"{name}: {reason}"):
            read_labels(tmp_path / name)
    with pytest.raises(TransferError, match="missing.csv: cannot read"):
        read_labels(tmp_path / "missing.csv")


def test_copy_anomalous_originals_keeps_folders_and_never_overwrites(store, images, tmp_path):
    pid = labeled_project(store, images)
    out = tmp_path / "export" / "anomalies"
    report = copy_originals(store, pid, out)
    assert sorted(report.copied) == ["bad/img0.png", "bad/img4.png"] and report.missing == []
    assert (out / "bad" / "img0.png").read_bytes() == (images / "bad" / "img0.png").read_bytes()
    assert sorted(p.name for p in out.rglob("*.png")) == ["img0.png", "img4.png"]

    before = (out / "bad" / "img4.png").stat().st_mtime_ns
    with pytest.raises(TransferError, match="exist already.*nothing copied"):
        copy_originals(store, pid, out)
    assert (out / "bad" / "img4.png").stat().st_mtime_ns == before

    (images / "bad" / "img4.png").unlink()  # an original deleted since loading: reported, not fatal
    report = copy_originals(store, pid, tmp_path / "again")
    assert report.copied == ["bad/img0.png"] and report.missing == [("bad/img4.png", "original file not found")]


def test_copy_destination_is_checked(store, images, tmp_path):
    pid = labeled_project(store, images)
    with pytest.raises(TransferError, match="outside the allowed export folder"):
        copy_originals(store, pid, tmp_path / "elsewhere", root=tmp_path / "exports")
    with pytest.raises(TransferError, match="inside the workspace"):
        copy_originals(store, pid, store.home / "projects")
    (tmp_path / "file.txt").write_text("x")
    with pytest.raises(TransferError, match="not a folder"):
        copy_originals(store, pid, tmp_path / "file.txt")
    table = store.create_project("t", _table())
    with pytest.raises(TransferError, match="no original files"):
        copy_originals(store, table, tmp_path / "t")
    assert copy_originals(store, pid, tmp_path / "exports" / "ok", root=tmp_path / "exports").copied


def _table():
    from semiad.data import SampleSet

    return SampleSet(ids=["r0", "r1"], X=np.zeros((2, 3), np.float32), kind="tabular", name="t")


def test_export_page_copies_originals_and_shows_refusals(tmp_path, images, monkeypatch):
    from streamlit.testing.v1 import AppTest

    monkeypatch.setenv("SEMIAD_HOME", str(tmp_path / "workspace"))
    monkeypatch.delenv("SEMIAD_DB_URL", raising=False)
    monkeypatch.delenv("SEMIAD_EXPORT_ROOT", raising=False)
    monkeypatch.setenv("SEMIAD_MAPS", "0")
    store = Store(home=tmp_path / "workspace")
    pid = labeled_project(store, images)
    at = AppTest.from_file(str(Path(__file__).resolve().parents[1] / "app.py"), default_timeout=60)
    at.query_params["project"] = str(pid)
    at.query_params["who"] = "ann"
    at.run()
    at.switch_page("pages/export.py").run()
    assert not at.exception, at.exception
    assert len(at.dataframe) == 1 and len(at.dataframe[0].value) == 4
    at.text_input(key="copy_dest").input(str(tmp_path / "out")).run()
    at.button(key="copy_go").click().run()
    assert not at.exception and "Copied 2 file(s)" in at.success[0].value
    at.button(key="copy_go").click().run()  # again: refused, shown as a message
    assert not at.exception and "exist already" in at.error[0].value
    store.close()


def test_importing_the_full_history_leaves_undone_labels_undone(store, images):
    """The history export holds every event, undos as 'unlabeled' rows: the last row of each sample
    is its state, so a label that was undone does not come back."""
    pid = labeled_project(store, images)
    sid = store.samples(pid).set_index("key")["sample_id"]
    store.record_label(pid, sid["good/img3.png"], "anomalous", "ann")
    store.undo_last(pid, "ann")  # img3: labeled, then undone
    content = to_csv(history(store, pid))
    other = store.create_project("b", load_image_folder(images), source=str(images))
    report = import_labels(store, other, read_labels(content.encode(), "history.csv"), "carol")
    assert report.bad == [] and report.recorded == 4
    assert labels_by_key(store, other) == labels_by_key(store, pid)
    assert not isinstance(labels_by_key(store, other)["good/img3.png"], str)  # unlabeled


def test_a_labels_file_may_be_separated_and_encoded_as_the_data_csvs(store, images, tmp_path):
    pid = store.create_project("p", load_image_folder(images), source=str(images))
    (tmp_path / "semi.csv").write_bytes("sample_id;label;note\nbad/img0.png;anomalous;ça déborde\n"
                                        "good/img1.png;normal;\n".encode("cp1252"))  # Excel's CSV on Windows
    report = import_labels(store, pid, read_labels(tmp_path / "semi.csv"), "ann")
    assert (report.recorded, report.bad) == (2, [])
    labels = labels_by_key(store, pid)
    assert labels["bad/img0.png"] == "anomalous" and labels["good/img1.png"] == "normal"


def test_a_file_name_that_begins_with_a_space_comes_back_to_its_sample(store, tmp_path):
    """An image named " leading space.png" is exported as written and imported onto itself (the reader
    stripped ids, so it was "unknown"); a hand-written id with spaces around it still finds its sample."""
    root = tmp_path / "imgs"
    (root / " folder").mkdir(parents=True)
    for name in (" leading space.png", " folder/inner.png", "plain.png"):
        Image.fromarray(np.full((10, 10), len(name) * 7, np.uint8)).save(root / name)
    pid = store.create_project("a", load_image_folder(root), source=str(root))
    sid = store.samples(pid).set_index("key")["sample_id"]
    store.record_labels(pid, [sid[" leading space.png"], sid[" folder/inner.png"]], "anomalous", "ann")
    store.record_label(pid, sid["plain.png"], "normal", "ann")
    (tmp_path / "out.csv").write_text(to_csv(current_labels(store, pid)))
    other = store.create_project("b", load_image_folder(root), source=str(root))
    report = import_labels(store, other, read_labels(tmp_path / "out.csv"), "ann")
    assert (report.recorded, report.unknown, report.bad) == (3, [], [])
    assert labels_by_key(store, other) == labels_by_key(store, pid)
    (tmp_path / "hand.csv").write_text("sample_id,label\n plain.png ,anomalous\n")
    report = import_labels(store, other, read_labels(tmp_path / "hand.csv"), "ann")
    assert (report.recorded, report.unknown) == (1, []) and labels_by_key(store, other)["plain.png"] == "anomalous"
