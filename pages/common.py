"""What several pages share: the store and worker singletons, who is labeling, the open project,
the job status, thumbnails. No business logic: that lives in semiad/ and state/."""
from __future__ import annotations

import base64
import os
from pathlib import Path

import numpy as np
import pandas as pd
import streamlit as st
from PIL import Image

from semiad.data import DataError, SampleSet, confined, encode_png, picture_of_file
from state.store import ProjectInfo, RunInfo, Store
from state.worker import Worker, load_model

THUMB_PX = 84


@st.cache_resource(show_spinner=False)  # app.py asks on every run of every page: drawn once per server
def app_icon() -> "Image.Image":
    """The tab's icon, drawn here: eight gray dots and one red, the odd one out. A material icon or an
    emoji would be fetched from Google's or Twitter's servers on every run, from an app meant to work
    offline."""
    yy, xx = np.mgrid[:32, :32]
    icon = np.full((32, 32, 3), 255, dtype=np.uint8)
    for k, (cy, cx) in enumerate((y, x) for y in (6, 16, 26) for x in (6, 16, 26)):
        icon[(yy - cy) ** 2 + (xx - cx) ** 2 <= 12] = (220, 40, 60) if k == 5 else (150, 150, 150)
    return Image.fromarray(icon)  # an image, not the array: set_page_config tests the icon's truth


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
    """The annotator's name, asked once; kept in session state and the URL, so a reload remembers it.
    The box is keyed and its edits are taken in a callback: an unkeyed box whose starting value changes is a
    new widget to Streamlit, which dropped a correction typed right after the first name (labels then went
    to the first one). "who" is the name; the box is drawn from it on every page."""
    if "who" not in st.session_state:
        st.session_state["who"] = st.query_params.get("who", "").strip()
    st.session_state["who_box"] = st.session_state["who"]
    st.text_input("Your name", key="who_box", on_change=_take_name, placeholder="who is labeling?",
                  help="Stored with every label you give.")
    name = st.session_state["who"]
    if name and st.query_params.get("who") != name:
        st.query_params["who"] = name
    elif not name and "who" in st.query_params:  # a cleared name must not come back with a reload
        del st.query_params["who"]


def _take_name() -> None:
    st.session_state["who"] = st.session_state["who_box"].strip()


# ----- navigation: every page runs inside app.py -------------------------------------------

PAGES = (  # file in pages/, title, icon; the first is the default page
    ("home.py", "Projects", ":material/folder_open:"),
    ("review.py", "Review", ":material/fact_check:"),
    ("train.py", "Train", ":material/model_training:"),
    ("latent.py", "Latent map", ":material/scatter_plot:"),
    ("progress.py", "Progress", ":material/monitoring:"),
    ("export.py", "Export", ":material/download:"),
)
_IN_APP = "_in_app"  # session state: app.py's navigation has run in this session


def navigation(position: str = "sidebar"):
    """The app's menu (st.navigation over PAGES); app.py runs the page it returns. Page files are
    named by absolute path, so the menu is the same whichever script Streamlit runs as the main one."""
    st.session_state[_IN_APP] = True
    here = Path(__file__).resolve().parent
    return st.navigation([st.Page(here / file, title=title, icon=icon, default=i == 0)
                          for i, (file, title, icon) in enumerate(PAGES)], position=position)


def _run_inside_app() -> None:
    """A page whose session has not run app.py yet calls st.navigation and reruns, so app.py
    routes to it. Streamlit starts a fresh server in its legacy `pages/` folder mode, where a page
    URL runs that page's script alone (no app.py: no worker, a menu of every file in pages/),
    until some run calls st.navigation; from then on it ignores the folder for the whole process.
    So a reload of a page URL right after a restart goes through here once."""
    if st.session_state.get(_IN_APP):
        return
    navigation(position="hidden")  # marks the session, so a page run as the main script goes on
    st.rerun()


def page_setup(outbox: bool = True) -> tuple[Store, ProjectInfo | None]:
    """Sidebar of every page: who is labeling, the open project and its job status; and (but on the
    Review page, whose cards send their own) the Review page's outbox, applied before the page reads
    the store."""
    _run_inside_app()
    store = get_store()
    project = current_project(store)
    with st.sidebar:
        sidebar_identity()
        if project is not None:
            st.caption(f"Project **{project.name}** · {project.n_samples:,} samples")
            job_status(project.id)
        if outbox:  # last in the sidebar: its frame has no height, but it takes a gap
            flush_review_outbox(store)
    return store, project


OUTBOX_KEY = "review_outbox"


def skips_key(project_id: int) -> str:
    """Session state: the samples this session skipped on Review (shared by the cards and the outbox)."""
    return f"_skipped-{project_id}"


def front_key(project_id: int) -> str:
    """Session state: samples an undo brought back, for the Review queue to show first."""
    return f"_front-{project_id}"


def flush_review_outbox(store: Store) -> None:
    """Store the label requests the Review page had not seen acknowledged when it was left
    (`review_outbox`): nothing a key press asked for waits on a return to Review."""
    from pages.review_card import apply_outbox, review_outbox

    value = st.session_state.get(OUTBOX_KEY)
    acked = st.session_state.get("_outbox_acked", [])
    if isinstance(value, dict) and value.get("seq") != st.session_state.get("_outbox_seen"):
        st.session_state["_outbox_seen"] = value.get("seq")
        acked, errors = apply_outbox(store, value.get("outbox"),
                                     lambda pid: st.session_state.setdefault(skips_key(pid), []),
                                     lambda pid: st.session_state.setdefault(front_key(pid), []))
        st.session_state["_outbox_acked"] = acked
        for e in errors:
            st.warning(e["message"], icon=":material/error:")
    review_outbox(key=OUTBOX_KEY, url=store.url, acked=acked)


def current_project(store: Store) -> ProjectInfo | None:
    """The open project: kept in session state, mirrored in the URL (?project=ID) so a reload or a
    shared link opens it again (Streamlit drops query parameters on page switches)."""
    pid = st.session_state.get("project") or st.query_params.get("project")
    if pid is None:
        return None
    try:
        project = store.project(int(pid))
    except ValueError:  # not a number, or no such project (deleted, or a link from another workspace)
        st.warning(f"There is no project {str(pid)[:40]!r} in this workspace (deleted, or a link from another "
                   "workspace).", icon=":material/link_off:")
        st.session_state.pop("project", None)
        st.query_params.pop("project", None)
        return None
    st.session_state["project"] = project.id
    if st.query_params.get("project") != str(project.id):
        st.query_params["project"] = str(project.id)
    return project


def open_project(project_id: int) -> None:
    st.session_state["project"] = int(project_id)
    st.query_params["project"] = str(project_id)


def require_project(outbox: bool = True) -> tuple[Store, ProjectInfo]:
    store, project = page_setup(outbox)
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


# what a method's score is: shown beside it on the cards and the map, so a fused score near 1 is not read as a
# probability
SCORE_MEANING = {"deepsad": "distance to the centre c (Deep SAD score)",
                 "ganomaly": "latent mismatch ‖z − ẑ‖² (GANomaly score)",
                 "fusion": "the fused score, 0–1: the weighted mean of its scorers' percentiles in the pool, "
                           "a place in the ranking, not a probability"}


def score_meaning(method: str) -> str:
    return SCORE_MEANING.get(method, "the detector's own scale: only the order counts")


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
        st.session_state["_finished_note"] = f"Run {finished.id}: {finished.message or finished.status}"
        st.rerun(scope="app")
    done = store.latest_done_run(project_id)
    if done is not None:
        st.caption(f"Model: round {done.round} · {run_label(done)}")
    else:
        st.caption("No model trained yet.")


def blank_missing(table: pd.DataFrame, formats: dict[str, str] | None = None) -> pd.DataFrame:
    """A copy of `table` for st.dataframe, whose cells show a missing value as "None": the columns in
    `formats` (column → format spec) and every other column holding a missing value are written out as
    text, with blanks where values are missing (numbers as `formats` says, else to 4 significant digits)."""
    out = table.copy()
    for column in out.columns:
        values = out[column]
        if column not in (formats or {}) and not values.isna().any():
            continue
        spec = (formats or {}).get(column, ".4g")
        out[column] = ["" if pd.isna(v) else format(v, spec) if isinstance(v, (int, float, np.number)) else str(v)
                       for v in values]
    return out
