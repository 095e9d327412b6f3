"""Train: choose the method and its main settings, retrain on the current labels, see the history.

The click only queues a run; the server's background worker trains it. Retraining the method of
the current model warm-starts from it; choosing another method (or "fresh") starts a new model.
Cancel shows the run as cancelling at once; the worker stops it at its next training step.
Auto-retrain (off by default, stored per project): the worker queues the Retrain click's warm-start
run after every k new labels.
"""
from __future__ import annotations

import pandas as pd
import streamlit as st

from pages.common import annotator, blank_missing, model_of, require_project, run_label, samples_of
from semiad import defaults as data_defaults
from semiad import represent
from semiad.settings import (
    available,
    check_params,
    default_fast,
    default_hyper,
    display_name,
    fast_setting,
    params_of,
)
from state.store import JobBusy, StoreError
from state.worker import AUTO_RETRAIN, labels_since

store, project = require_project()
pid = project.id
st.title("Train")

current = store.latest_done_run(pid)
active = store.active_run(pid)
counts = store.label_counts(pid)
st.caption(f"{counts['normal']} normal and {counts['anomalous']} anomalous labels so far. "
           + (f"Current model: round {current.round}, {run_label(current)}." if current else "No model yet."))

methods = available()
start_with = current.method if current and current.method in methods else data_defaults.DEFAULT_METHOD
method = st.selectbox("Method", methods, format_func=display_name, index=methods.index(start_with),
                      key="train_method")
can_warm = current is not None and current.method == method
mode = st.radio("Start from", ["the current model (warm start)", "a fresh model"] if can_warm else ["a fresh model"],
                horizontal=True, key=f"train_mode-{method}",
                help="Warm start keeps the weights (and Deep SAD's centre c) and fine-tunes on the grown label pool.")
warm = mode.startswith("the current")

fast = False
if fast_setting(method) and not warm:
    fast = st.toggle("Fast setting (narrower networks, fewer steps; for CPU-only machines)", key=f"fast-{method}",
                     value=default_fast(method),
                     help="A model on screen quickly, not the paper's setting: expect a weaker ranking than the "
                          "full-size networks give (bench/RESULTS.md). On by default for Toll and AMA, whose "
                          "full-size networks take far more than minutes per first fit on a CPU.")

REPRESENTATIONS = {"features+pixels": "Features and pixels (two views)",
                   "features": "Pretrained image features (EfficientNet-Lite0, 224 px)",
                   "pixels": "The pixels (the model input, 28×28 gray or 32×32 colour)"}
SEEN = {"features+pixels": data_defaults.FEATURES_AND_PIXELS, "features": data_defaults.FEATURES,
        "pixels": data_defaults.PIXELS}
sample_shape = samples_of(store, pid).X.shape[1:]  # one sample as loaded: gray or colour, image or row
if warm:
    representation = current.params.get("representation") or {"kind": "pixels"}
    seen_text = "the table's columns" if project.kind != "image" else represent.describe(representation)
    st.caption(f"The model sees {seen_text} (kept for a warm start).")
elif project.kind == "image":
    default_rep = data_defaults.representation_for(project.kind, method, sample_shape)
    seen = st.radio("The model sees", list(REPRESENTATIONS), format_func=REPRESENTATIONS.get, horizontal=True,
                    index=list(REPRESENTATIONS).index(default_rep["kind"]), key=f"representation-{method}",
                    help="Features from an ImageNet-pretrained network, computed once per project and cached: "
                         "IsolationForest and kNN rank natural images far better on them (bench/RESULTS.md). "
                         "Fusion, the default, sees colour images through their features, and gray images as the "
                         "features and the pixels side by side, both used by its first ranking and its label "
                         "scorers, weighted by how well each ranks your labels. The deep methods default to the pixels "
                         "their papers' networks are built for. Review and the map show the images either way.")
    representation = dict(SEEN[seen])
else:
    representation = data_defaults.PIXELS
defaults = default_hyper(method, project.kind, project.n_samples, sample_shape, representation)
hyper: dict = {} if warm else dict(defaults)  # settings without a widget (e.g. Fusion's scaling) keep their default
with st.expander("Settings", expanded=False):
    cols = st.columns(3)
    shown = [p for p in params_of(method) if p.warm or not warm]
    for i, p in enumerate(shown):
        key = f"hp-{method}-{representation.get('kind', 'pixels')}-{p.name}"  # defaults differ per view
        col = cols[i % 3]
        value = current.params.get("hyper", {}).get(p.name, defaults[p.name]) if can_warm else defaults[p.name]
        if isinstance(p.default, bool):
            hyper[p.name] = col.checkbox(p.label, value=bool(value), key=key, help=p.help)
        elif isinstance(p.default, str):
            choice = value if value in p.options else p.default
            hyper[p.name] = col.selectbox(p.label, p.options, index=p.options.index(choice), key=key, help=p.help)
        else:  # no bounds on the box itself: a value out of range stayed in a bounded box, in red, while the run
            # quietly trained with the previous one; the range is checked below and said in words
            whole = isinstance(p.default, int)  # an int value makes an int box (step 1)
            hyper[p.name] = col.number_input(p.label, value=int(value) if whole else float(value), key=key,
                                             format=None if whole else "%g",
                                             help=f"{p.help} ({p.min:g}–{p.max:g})".lstrip())
try:
    hyper = check_params(method, hyper)
    out_of_range = None
except ValueError as e:
    out_of_range = str(e)
    st.error(f"Not trainable as set: {out_of_range}. Change it under Settings.")
if fast:
    hyper.update(fast_setting(method))

busy = active is not None and not active.stale
if busy and active.cancelling:
    st.info(f"{run_label(active)}: cancelling… (stops at its next training step; then a new run can start)")
elif busy:
    st.info(f"{run_label(active)} is {active.status}: a new run can start when it finishes.")
    if st.button("Cancel it", key="cancel"):
        store.cancel_run(active.id)
        st.rerun()

def queue_run() -> None:
    """Runs in the click's callback (once per click, before the page reruns)."""
    try:
        params = {"hyper": hyper, "warm_start": warm, "fast": fast, "representation": representation}
        run_id = store.request_run(pid, method, params,
                                   requested_by=annotator(), parent_id=current.id if warm else None)
        st.session_state["_active_run"] = run_id
    except JobBusy as e:
        st.session_state["_train_note"] = ("warning", str(e))
    except StoreError as e:
        st.session_state["_train_note"] = ("error", str(e))


st.button("Retrain" if warm else "Train a fresh model", type="primary", key="retrain",
          disabled=busy or out_of_range is not None,
          on_click=queue_run, help="Queues a run for the background worker; the page stays usable.")
if "_train_note" in st.session_state:
    kind, text = st.session_state.pop("_train_note")
    (st.warning if kind == "warning" else st.error)(text)


ON, K, LAST_K = f"auto_retrain-{pid}", f"auto_retrain_every-{pid}", f"_auto_retrain_k-{pid}"
AUTO_RETRAIN_K = 20  # the k offered when the setting is first switched on


def save_auto_retrain() -> None:
    """Runs in the widgets' callback: the setting lives in the store, shared by every annotator. The k
    last used is kept for this session: switched off and on again, the setting offers it again."""
    k = int(st.session_state.get(K) or st.session_state.get(LAST_K, AUTO_RETRAIN_K))
    st.session_state[LAST_K] = k
    store.set_project_setting(pid, AUTO_RETRAIN, k if st.session_state[ON] else None)


every = store.project_setting(pid, AUTO_RETRAIN)
# Streamlit forgets a widget's state on a page that does not draw it: seed it from the store on the first
# view, after another page, or when someone else changed the setting
if st.session_state.get(f"_auto_retrain_seen-{pid}", "never") != every or ON not in st.session_state:
    st.session_state[f"_auto_retrain_seen-{pid}"] = every
    st.session_state[ON] = every is not None
    st.session_state[LAST_K] = int(every or st.session_state.get(LAST_K, AUTO_RETRAIN_K))
    st.session_state.pop(K, None)  # seeded below, when drawn
st.toggle("Retrain automatically every k labels", key=ON, on_change=save_auto_retrain,
          help="Off by default. When on, after every k new labels (from anyone on this project) the worker "
               "queues the same warm-start run the Retrain button would (the current model's method and "
               "settings), never while another run is queued or running.")
runs = store.runs(pid)
if st.session_state[ON]:
    if K not in st.session_state:
        st.session_state[K] = int(every or st.session_state[LAST_K])
    st.number_input("k (labels between automatic retrains)", min_value=1, max_value=10_000, step=1,
                    key=K, on_change=save_auto_retrain)
    if every is not None and current is not None:
        since = labels_since(store, runs[-1])
        st.caption(f"Next automatic retrain after {max(every - since, 0)} more label(s) "
                   f"({since} since the latest run was requested).")
    elif every is not None:
        st.caption("Automatic retrains start once there is a model to warm-start from.")

st.subheader("History")
if not runs:
    st.caption("No runs yet.")
else:
    rows, images = [], project.kind == "image"
    for r in reversed(runs):
        status = "interrupted" if r.stale else ("cancelling…" if r.cancelling else r.status)
        rows.append({
            "run": r.id, "round": r.round, "method": r.method,
            "start": f"warm from {r.parent_id}" if r.parent_id else "fresh", "status": status,
            "sees": (r.params.get("representation") or {}).get("kind", "pixels") if images else "columns",
            "labels": r.n_labels, "AUC (ground truth)": r.metrics.get("auc"),
            "seconds": r.metrics.get("train_seconds"), "by": r.requested_by,
            "first ranking": r.metrics.get("first_ranking"),
            "settings": ", ".join(f"{k}={v}" for k, v in r.params.get("hyper", {}).items()),
            "message": r.error or r.message,
        })
    history = pd.DataFrame(rows)
    # no column of blanks: data without ground truth, runs of methods without a first ranking of their own
    history = history.drop(columns=[c for c in ("AUC (ground truth)", "first ranking") if history[c].isna().all()])
    st.dataframe(blank_missing(history, {"round": ".0f", "AUC (ground truth)": ".3f", "seconds": ".1f"}),
                 hide_index=True, width="stretch")


SCORER_NAMES = {"prior": "the first ranking (no labels)", "linear": "your labels: anomalies against the bulk",
                "kernel": "your labels: the same, curved (RBF)", "labeled": "your labels alone (balanced)",
                "pixels": "the pixels' reconstruction error", "pca": "the columns' PCA ranking"}
VIEW_NAMES = {"+pixels": ", features and pixels", "+raw": ", raw columns"}


def scorer_name(name: str) -> str:
    kind, _, view = name.partition("+")
    return SCORER_NAMES.get(kind, kind) + (VIEW_NAMES.get("+" + view, "") if view else "")


latest = store.latest_done_run(pid)
if latest is not None and latest.method == "fusion":
    with st.expander("What the ranking leans on"):
        model = model_of(store, latest)
        weights, parts = model.scorer_weights(), model.first_ranking_parts()
        kept_out = (" The pixels stay out of it: under a quarter of them are plain background, as in photos."
                    if model.pixels_kept_out() else "")
        if model.treated_as_feature_vectors():
            kept_out += (" The table's columns look like a network's feature vectors (embeddings), so they are "
                         "ranked and learned as image features are: unit-length rows, no raw-column view.")
        st.caption(f"Round {latest.round}: each scorer's share of the score. The shares follow how well each "
                   "scorer ranked your batches before it saw their labels (Hedge rule; see the README). "
                   + ("Scorers trained on your labels join once you mark an anomaly." if len(weights) < 2 else ""))
        st.caption(f"First ranking: {' and '.join(parts) or 'none yet'}.{kept_out}")
        share = st.column_config.ProgressColumn(min_value=0.0, max_value=1.0, format="%.2f")
        st.dataframe(pd.DataFrame({"scorer": [scorer_name(n) for n in weights], "share": list(weights.values())}),
                     hide_index=True, column_config={"share": share})
