"""What several pages share: the store and worker singletons, who is labeling, the open project,
the job status, thumbnails. No business logic: that lives in semiad/ and state/."""
from __future__ import annotations

import base64
import os
from pathlib import Path

import numpy as np
import streamlit as st

from semiad.data import DataError, SampleSet, confined, encode_png, picture_of_file
from state.store import ProjectInfo, RunInfo, Store
from state.worker import Worker, load_model

THUMB_PX = 84


@st.cache_resource(show_spinner=False)
def _store(url: str | None, home: str | None) -> Store:
    return Store(url, home)


def get_store() -> Store:
    """Process-wide store for the configured database (cached per URL and workspace)."""
    return _store(os.environ.get("SEMIAD_DB_URL"), os.environ.get("SEMIAD_HOME"))


def maps_enabled() -> bool:
    """UMAP maps can be switched off (SEMIAD_MAPS=0), e.g. for tests; PCA is always available."""
    return os.environ.get("SEMIAD_MAPS", "1") != "0"


@st.cache_resource(show_spinner=False)
def _worker(url: str | None, home: str | None) -> Worker:
    return Worker(_store(url, home), maps=maps_enabled()).start()


def get_worker() -> Worker:
    return _worker(os.environ.get("SEMIAD_DB_URL"), os.environ.get("SEMIAD_HOME"))


# ----- who and what ---------------------------------------------------------------------------

def annotator() -> str:
    return st.session_state.get("who", "").strip()


def sidebar_identity() -> None:
    """The annotator's name, asked once; kept in session state and the URL, so a reload remembers it."""
    if not st.session_state.get("who"):
        st.session_state["who"] = st.query_params.get("who", "")
    name = st.text_input("Your name", value=st.session_state["who"], placeholder="who is labeling?",
                         help="Stored with every label you give.").strip()
    if name != st.session_state["who"]:
        st.session_state["who"] = name
    if name and st.query_params.get("who") != name:
        st.query_params["who"] = name


def _leave_pages_directory_mode() -> None:
    """Streamlit runs a fresh server's first requests in its old `pages/` directory mode (the page
    script alone, without app.py, and a menu of every file in pages/) until a run has called
    st.navigation; a reload of a page URL right after a restart would then miss app.py (no worker,
    wrong menu). Detected per run from the registered pages (only that mode registers
    pages/common.py); the mode is switched off and the run restarted so app.py routes to the same
    page. AppTest runs every page in that mode by design, so it is left alone there."""
    import sys

    from streamlit.runtime.pages_manager import PagesManager
    from streamlit.runtime.scriptrunner import get_script_run_ctx

    if "streamlit.testing.v1.app_test" in sys.modules:
        return
    ctx = get_script_run_ctx()
    pages = ctx.pages_manager.get_pages().values() if ctx is not None else []
    if any(str(p.get("script_path", "")).endswith("common.py") for p in pages):
        PagesManager.uses_pages_directory = False
        st.rerun()


def page_setup() -> tuple[Store, ProjectInfo | None]:
    """Sidebar of every page: who is labeling, the open project and its job status."""
    _leave_pages_directory_mode()
    store = get_store()
    project = current_project(store)
    with st.sidebar:
        sidebar_identity()
        if project is not None:
            st.caption(f"Project **{project.name}** · {project.n_samples:,} samples")
            job_status(project.id)
    return store, project


def current_project(store: Store) -> ProjectInfo | None:
    """The open project: kept in session state, mirrored in the URL (?project=ID) so a reload or a
    shared link opens it again (Streamlit drops query parameters on page switches)."""
    pid = st.session_state.get("project") or st.query_params.get("project")
    if pid is None or not str(pid).isdigit():
        return None
    try:
        project = store.project(int(pid))
    except ValueError:
        return None
    st.session_state["project"] = project.id
    if st.query_params.get("project") != str(project.id):
        st.query_params["project"] = str(project.id)
    return project


def open_project(project_id: int) -> None:
    st.session_state["project"] = int(project_id)
    st.query_params["project"] = str(project_id)


def require_project() -> tuple[Store, ProjectInfo]:
    store, project = page_setup()
    if project is None:
        st.info("Open or create a project first.")
        st.page_link("pages/home.py", label="Go to Projects", icon=":material/folder_open:")
        st.stop()
    return store, project


# ----- data and models, cached per project / run ---------------------------------------------

@st.cache_resource(show_spinner=False, max_entries=4)
def project_samples(_store: Store, url: str, project_id: int) -> SampleSet:
    return _store.load_samples(project_id)


def samples_of(store: Store, project_id: int) -> SampleSet:
    return project_samples(store, store.url, project_id)


@st.cache_resource(show_spinner=False, max_entries=4)
def _model(_store: Store, url: str, run_id: int):
    return load_model(_store, _store.run(run_id), device="cpu")


def model_of(store: Store, run: RunInfo):
    return _model(store, store.url, run.id)


@st.cache_data(show_spinner=False, max_entries=20_000)
def _png(url: str, project_id: int, idx: int, img: np.ndarray) -> bytes:  # url, project_id, idx: the cache key
    return encode_png(img)


def thumbnail_png(store: Store, samples: SampleSet, project_id: int, idx: int) -> bytes:
    """A small PNG of a sample, scaled up with nearest neighbour so pixels stay crisp."""
    img = samples.thumbnail(idx)
    factor = max(1, THUMB_PX // img.shape[0])
    img = np.repeat(np.repeat(img, factor, axis=0), factor, axis=1)
    return _png(store.url, project_id, idx, img)


def picture_png(img01: np.ndarray) -> bytes:
    """PNG of a C×H×W array in [0,1] (a reconstruction or a difference map), upscaled."""
    img = np.clip(img01 * 255 + 0.5, 0, 255).astype(np.uint8)
    img = img[0] if img.shape[0] == 1 else img.transpose(1, 2, 0)
    factor = max(1, THUMB_PX // img.shape[0])
    return encode_png(np.repeat(np.repeat(img, factor, axis=0), factor, axis=1))


# ----- originals: the file a sample was loaded from, checked ---------------------------------

THUMB_ORIGINAL_PX = 192  # grid cards and the map's selection grid
VIEW_ORIGINAL_PX = 560  # the focused card (scaled to fit; a click zooms to full resolution)


def original_path(samples: SampleSet, idx: int) -> Path | None:
    """The original file of sample `idx`, or None. Only the path recorded when the project was
    created from files (image folders; never a path from a request), and only while it is still that
    file: resolved again it must give the same path (a symlink swapped in since is refused), be a
    regular file, and lie inside SEMIAD_DATA_ROOT when that is set."""
    if samples.kind != "image" or not samples.paths or not 0 <= idx < len(samples.paths):
        return None
    recorded = samples.paths[idx]
    if not recorded:
        return None
    try:
        path = confined(recorded)
    except (DataError, OSError, RuntimeError):
        return None
    return path if str(path) == recorded and path.is_file() else None


@st.cache_data(show_spinner=False, max_entries=20_000)
def _file_picture(path: str, stamp: tuple[int, int],  # stamp: the cache key
                  max_px: int | None) -> tuple[bytes, str, tuple[int, int]] | None:
    try:
        return picture_of_file(path, max_px)
    except DataError:
        return None


def original_picture(samples: SampleSet, idx: int, max_px: int | None) -> tuple[bytes, str, tuple[int, int]] | None:
    """(bytes, MIME type, original size) of the sample's original scaled to fit max_px (None: full
    resolution), cached per file version; None when the sample has no usable original."""
    path = original_path(samples, idx)
    if path is None:
        return None
    st_ = path.stat()
    return _file_picture(str(path), (st_.st_mtime_ns, st_.st_size), max_px)


def sample_thumbnail(store: Store, samples: SampleSet, project_id: int, idx: int) -> bytes:
    """The picture of a sample for grids: a thumbnail of the original file where there is one,
    else the model input (thumbnail_png)."""
    pic = original_picture(samples, idx, THUMB_ORIGINAL_PX)
    return pic[0] if pic is not None else thumbnail_png(store, samples, project_id, idx)


def data_uri(data: bytes, mime: str = "image/png") -> str:
    return f"data:{mime};base64," + base64.b64encode(data).decode("ascii")


# ----- job status -----------------------------------------------------------------------------

def run_label(run: RunInfo) -> str:
    mode = f"warm start from run {run.parent_id}" if run.parent_id else "fresh"
    return f"run {run.id} · {run.method} · {mode}"


@st.fragment(run_every=1.0)
def job_status(project_id: int) -> None:
    """Polls the store; when a run finishes, reruns the whole page so rankings refresh."""
    store = get_store()
    run = store.active_run(project_id)
    seen = st.session_state.get("_active_run")
    if run is not None and not run.stale:
        st.session_state["_active_run"] = run.id
        st.progress(min(max(run.progress, 0.0), 1.0), text=f"{run_label(run)}: {run.message}")
        return
    if run is not None and run.stale:
        st.warning(f"Run {run.id} stopped reporting; it will be marked interrupted.")
    if seen is not None:
        st.session_state.pop("_active_run", None)
        finished = store.run(seen)
        st.session_state["_finished_note"] = f"Run {finished.id} {finished.status}: {finished.message}"
        st.rerun(scope="app")
    done = store.latest_done_run(project_id)
    if done is not None:
        st.caption(f"Model: round {done.round} · {run_label(done)}")
    else:
        st.caption("No model trained yet.")
