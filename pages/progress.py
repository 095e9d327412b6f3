"""Progress: what each round of labels bought."""
from __future__ import annotations

import pandas as pd
import streamlit as st

from pages.common import require_project
from pages.methods import display_name

store, project = require_project()
st.title("Progress")
runs = [r for r in store.runs(project.id) if r.status == "done"]
events = store.events(project.id)
if not runs:
    st.info("No finished training run yet.")
    st.stop()
rows = []
for r in runs:
    upto = events[events["round"] < r.round] if len(events) else events
    rows.append({"round": r.round, "run": r.id, "method": display_name(r.method), "labels used": r.n_labels,
                 "anomalous labeled": int((upto.drop_duplicates("sample_id", keep="last")["label"] == "anomalous").sum())
                 if len(upto) else 0,
                 "AUC": r.metrics.get("auc"), "AP": r.metrics.get("ap"),
                 "AUC unlabeled": r.metrics.get("auc_unlabeled")})
table = pd.DataFrame(rows)
st.dataframe(table, hide_index=True)
st.download_button("Download CSV", table.to_csv(index=False), f"{project.name}-progress.csv", "text/csv")
