"""Export and import: current labels and the full history as CSV or JSON, a copy of the anomalous
originals into a folder, and a labels file imported to seed the project (logic: state/transfer.py)."""
from __future__ import annotations

import os

import streamlit as st

from pages.common import annotator, require_project
from state import transfer
from state.store import StoreError

store, project = require_project()
st.title("Export")
labels = transfer.current_labels(store, project.id)
events = transfer.history(store, project.id)
st.caption(f"{len(labels)} labeled samples, {len(events)} label events.")
c = st.columns(4)
c[0].download_button("Labels (CSV)", transfer.to_csv(labels), f"{project.name}-labels.csv", "text/csv")
c[1].download_button("Labels (JSON)", transfer.to_json(labels), f"{project.name}-labels.json", "application/json")
c[2].download_button("Full history (CSV)", transfer.to_csv(events), f"{project.name}-events.csv", "text/csv")
c[3].download_button("Full history (JSON)", transfer.to_json(events), f"{project.name}-events.json", "application/json")
st.dataframe(labels, hide_index=True)

if store.samples(project.id)["path"].notna().any():  # only image folders keep their original files
    st.subheader("Copy the anomalous originals")
    root = os.environ.get("SEMIAD_EXPORT_ROOT")
    dest = st.text_input("Into folder (on the machine running the app; must not hold these files yet)",
                         key="copy_dest", help=f"Confined to {root}" if root else None)
    if st.button("Copy originals", key="copy_go", disabled=not dest.strip()):
        try:
            report = transfer.copy_originals(store, project.id, dest.strip(), root=root)
        except transfer.TransferError as e:
            st.error(str(e))
        else:
            st.success(f"Copied {len(report.copied)} file(s) into {report.folder}.")
            if report.missing:
                st.warning("Not copied: " + "; ".join(f"{k}: {why}" for k, why in report.missing[:10]))

st.subheader("Import labels")
st.caption("A CSV or JSON file with `sample_id` and `label` columns (normal / anomalous, or the semi-targets "
           "+1 / -1), like the export above; a later row for a sample wins, and a last row that says unlabeled "
           "(an undo in the full history) leaves the sample as it is. Each label is recorded as an event by "
           "you, with source “import”; one undo reverts the whole import (the button below it, while this page is "
           "open).")


def import_upload() -> None:
    """The Import button's callback: it runs before the page draws, so the counts, the table and the
    downloads above already hold what it imported."""
    upload = st.session_state.get("import_file")
    if upload is None:
        return
    if not annotator():
        st.session_state["_import_note"] = ("warning", "Enter your name in the sidebar first: it is stored with "
                                                       "every label.")
        return
    try:
        given = transfer.read_labels(upload.getvalue(), upload.name)
        report = transfer.import_labels(store, project.id, given, annotator())
    except transfer.TransferError as e:
        st.session_state["_import_note"] = ("error", str(e))
    else:
        st.session_state["_import_note"] = ("warning" if report.unknown or report.bad else "success",
                                            report.summary())
        if report.batch:
            st.session_state["_import_batch"] = report.batch


def undo_import() -> None:
    """The Undo button's callback: reverts the import (its batch), leaving labels given since as they are."""
    try:
        n = len(store.undo_last(project.id, annotator(), batch_id=st.session_state.pop("_import_batch", None)))
    except StoreError as e:
        st.session_state["_import_note"] = ("warning", str(e))
    else:
        st.session_state["_import_note"] = ("success", f"Undid the import: {n} label(s) reverted." if n
                                            else "Nothing to undo: the import is undone already.")


upload = st.file_uploader("Labels file", type=["csv", "json"], key="import_file")
st.button("Import", key="import_go", type="primary", on_click=import_upload, disabled=upload is None)
if "_import_note" in st.session_state:
    kind, text = st.session_state.pop("_import_note")
    {"warning": st.warning, "error": st.error, "success": st.success}[kind](text)
if "_import_batch" in st.session_state:
    st.button("Undo this import", key="import_undo", on_click=undo_import)
