"""Latent map: the model's latent space in 2-D."""
from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
import streamlit as st

from pages.common import require_project

store, project = require_project()
st.title("Latent map")
run = store.latest_done_run(project.id)
if run is None:
    st.info("The map appears after the first training run.")
    st.stop()
folder = store.run_dir(run)
coords_file = next((folder / f for f in ("coords_umap.npy", "coords_pca.npy") if (folder / f).exists()), None)
if coords_file is None:
    st.info("The map of this round is being computed.")
    st.stop()
coords = np.load(coords_file)
scores = store.scores(run.id)
fig = go.Figure(go.Scattergl(x=coords[:, 0], y=coords[:, 1], mode="markers", customdata=scores["key"],
                             marker=dict(color=scores["score"], colorscale="Viridis", size=5, showscale=True)))
st.caption(f"{'UMAP' if 'umap' in coords_file.name else 'PCA'} of round {run.round}")
st.plotly_chart(fig, key=f"map-{run.id}")
