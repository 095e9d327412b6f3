"""Projects: open one, or create one from the bundled digits (one click) or your own data."""
from __future__ import annotations

from pathlib import Path

import pandas as pd
import streamlit as st

from pages.common import annotator, open_project, page_setup
from semiad import defaults
from semiad.data import DataError, confined, load
from semiad.settings import app_first_fit
from state.store import StoreError

store, _ = page_setup()
st.title("semiad — find the anomalies, with you in the loop")

projects = store.projects()
if projects:
    st.subheader("Open a project")
    for p in reversed(projects):
        counts = store.label_counts(p.id)
        cols = st.columns([4, 3, 1])
        cols[0].markdown(f"**{p.name}**  \n{p.source or 'bundled digits'}")
        cols[1].caption(f"{p.n_samples:,} samples · {counts['normal']} normal · {counts['anomalous']} anomalous")
        if cols[2].button("Open", key=f"open-{p.id}"):
            open_project(p.id)
            st.switch_page("pages/review.py")
        if p.skipped:  # what the loader could not use stays on record, not only in the note after creation
            with st.expander(f"{len(p.skipped)} note(s) from loading {p.name}: left out or flagged"):
                st.dataframe(pd.DataFrame(p.skipped, columns=["file", "reason"]), hide_index=True)

st.subheader("New project")
kind = st.radio("Data", ["Bundled digits (scikit-learn)", "MNIST-format folder", "Folder of images",
                         "Table (.npz, .csv or .mat)"], horizontal=True, key="new_kind")
options: dict = {}
source = ""
if kind.startswith("Bundled"):
    st.caption("The handwritten 8×8 digits that ship with scikit-learn, shown at 28×28. Pick the normal "
               "digit(s): the project holds every image of them (about 180 each) and, as ~10% of the pool, images "
               "of the other digits: the hidden anomalies to find.")
if kind.startswith("Bundled") or kind.startswith("MNIST"):
    options["normal"] = st.multiselect("Normal digit(s) / class(es)", list(range(10)), default=[0], key="new_normal")
    options["anomaly_fraction"] = st.slider("Share of anomalies", 0.01, 0.3, 0.1, 0.01, key="new_frac")
if not kind.startswith("Bundled"):
    source = st.text_input("Path on this machine", key="new_path",
                           placeholder="/data/inspection/images  or  /data/table.csv").strip()  # as pasted, spaces too
if kind.startswith("MNIST"):
    options["split"] = st.selectbox("Split", ["test", "train", "all"], key="new_split")
if kind.startswith("Folder"):
    color = st.selectbox("Image size", ["decide from the data", "28×28 gray", "32×32 color"], key="new_color")
    options["color"] = None if color.startswith("decide") else color.startswith("32")
    folders = st.text_input("Sub-folders that hold known anomalies (optional, comma-separated)", key="new_anom")
    if folders.strip():
        options["anomaly_folders"] = [f.strip() for f in folders.split(",") if f.strip()]
if kind.startswith("Table"):
    st.caption("A .csv needs a header: numeric columns are features, a column named id names the rows, other "
               "text columns are left out. A .npz or .mat (MATLAB v5, as ODDS ships its tables) holds X and "
               "optional ground truth y; one whose X has 3 or 4 dimensions (N×H×W gray, N×H×W×3 or N×3×H×W "
               "colour; integers 0–255 or float 0–1) is read as images.")
if kind.startswith("Table") and source.lower().endswith(".csv"):
    label_col = st.text_input("Label column (optional; non-zero, anomalous or yes = anomaly)", key="new_labelcol")
    if label_col.strip():
        options["label_column"] = label_col.strip()

default_name = f"digits-{len(projects) + 1}" if kind.startswith("Bundled") else (Path(source).stem if source else "")
# the proposed name is the box's placeholder, never its value: a name typed while the path box's change was still
# on its way was replaced by the folder's name when the box was drawn anew with it
typed = st.text_input("Project name", key=f"new_name-{kind}", placeholder=default_name or "name of the project",
                      help="Left empty: the name shown in grey (the data's file or folder name).")
name = typed.strip() or default_name


if st.button("Create project and train", type="primary", key="create"):
    if not annotator():
        st.warning("Enter your name in the sidebar first: it is stored with every label.")
        st.stop()
    if (kind.startswith("Bundled") or kind.startswith("MNIST")) and not options.get("normal"):
        st.error("Pick at least one normal class.")
        st.stop()
    if not kind.startswith("Bundled") and not source:
        st.error("Enter the path of your data.")
        st.stop()
    if not name or name in {p.name for p in projects}:  # said before the data is loaded, which may take minutes
        st.error(f"A project named {name!r} exists already: give this one another name." if name
                 else "Give the project a name.")
        st.stop()
    try:
        with st.spinner("Loading data…"):
            if kind.startswith("Bundled"):
                samples = load(None, **options)
            else:
                samples = load(confined(source), **options)  # inside SEMIAD_DATA_ROOT when set
        pid = store.create_project(name, samples, source=source or "digits", options=options)
        method = defaults.DEFAULT_METHOD
        representation = defaults.representation_for(samples.kind, method, samples.X.shape[1:])
        store.request_run(pid, method, app_first_fit(method, samples.kind, len(samples), samples.X.shape[1:],
                                                     representation=representation),
                          requested_by=annotator())
    except (DataError, StoreError) as e:
        st.error(str(e))
        st.stop()
    except Exception as e:  # anything unexpected is shown, not raised as a traceback
        st.error(f"Could not create the project: {type(e).__name__}: {e}")
        st.stop()
    if samples.skipped:
        st.session_state[f"_skipped_note-{pid}"] = samples.skipped
    open_project(pid)
    st.switch_page("pages/review.py")
