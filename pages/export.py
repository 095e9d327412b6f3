"""Export: current labels and the full label history, as CSV or JSON."""
from __future__ import annotations

import streamlit as st

from pages.common import require_project

store, project = require_project()
st.title("Export")
events = store.events(project.id)
current = store.samples(project.id)
current = current[current["label"].notna()]
last = events.drop_duplicates("sample_id", keep="last").set_index("sample_id")
labels = current.assign(
    annotator=current["sample_id"].map(last["annotator"]), time=current["sample_id"].map(last["time"]),
    round=current["sample_id"].map(last["round"]),
)[["key", "path", "label", "annotator", "time", "round"]].rename(columns={"key": "sample_id"})
st.caption(f"{len(labels)} labeled samples, {len(events)} label events.")
c = st.columns(3)
c[0].download_button("Labels (CSV)", labels.to_csv(index=False), f"{project.name}-labels.csv", "text/csv")
c[1].download_button("Labels (JSON)", labels.to_json(orient="records", date_format="iso", indent=1),
                     f"{project.name}-labels.json", "application/json")
c[2].download_button("Full history (CSV)", events.to_csv(index=False), f"{project.name}-events.csv", "text/csv")
st.dataframe(labels, hide_index=True)
