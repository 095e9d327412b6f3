"""semiad — Streamlit entry point: navigation, the annotator's name, the project, the job status.

Run with `streamlit run app.py`. Pages are thin: they read the store, call the library, draw.
"""
from __future__ import annotations

import streamlit as st

from pages.common import get_worker

st.set_page_config(page_title="semiad", page_icon=":material/fact_check:", layout="wide")
get_worker()  # one background training worker per server process

pages = [
    st.Page("pages/home.py", title="Projects", icon=":material/folder_open:", default=True),
    st.Page("pages/review.py", title="Review", icon=":material/fact_check:"),
    st.Page("pages/train.py", title="Train", icon=":material/model_training:"),
    st.Page("pages/latent.py", title="Latent map", icon=":material/scatter_plot:"),
    st.Page("pages/progress.py", title="Progress", icon=":material/monitoring:"),
    st.Page("pages/export.py", title="Export", icon=":material/download:"),
]
st.navigation(pages).run()  # each page draws the sidebar through pages.common.page_setup
