"""semiad — Streamlit entry point: navigation, the annotator's name, the project, the job status.

Run with `streamlit run app.py`. Pages are thin: they read the store, call the library, draw.
"""
from __future__ import annotations

import streamlit as st

from pages.common import app_icon, get_worker, navigation

st.set_page_config(page_title="semiad", page_icon=app_icon(), layout="wide")
get_worker()  # one background training worker per server process

navigation().run()  # each page draws the sidebar through pages.common.page_setup
