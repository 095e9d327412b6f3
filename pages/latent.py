"""Latent map: the model's latent space in 2-D; lasso a group, look at it, label it in one go.

PCA is drawn at once; the UMAP map replaces it when ready: the worker computes it after each run
with the default settings, and for other settings when this page asks the store for it. Coordinates
are cached per run.
"""
from __future__ import annotations

import streamlit as st

from pages.common import annotator, maps_enabled, require_project, sample_thumbnail, samples_of, score_meaning
from semiad import embed
from semiad.latent_plot import center_position, scatter_figure, selected_ids
from state.store import StoreError
from state.worker import default_map_params, map_version

MAX_GRID = 120  # selected samples shown as pictures

store, project = require_project()
pid = project.id
st.title("Latent map")
run = store.latest_done_run(pid)
if run is None:
    st.info("The map appears after the first training run.")
    st.stop()


samples = samples_of(store, pid)
table = store.scores(run.id)
keys = table["key"].tolist()
cache = embed.ProjectionCache(store.run_files(run).maps)

with st.expander("Map settings"):
    c = st.columns(3)
    defaults = default_map_params()
    params = {
        "n_neighbors": int(c[0].number_input(embed.UMAP_PARAMS["n_neighbors"]["label"], 2, 200,
                                             defaults["n_neighbors"], help=embed.UMAP_PARAMS["n_neighbors"]["help"])),
        "min_dist": float(c[1].slider(embed.UMAP_PARAMS["min_dist"]["label"], 0.0, 0.99, defaults["min_dist"], 0.05,
                                      help=embed.UMAP_PARAMS["min_dist"]["help"])),
        "metric": c[2].selectbox(embed.UMAP_PARAMS["metric"]["label"], embed.UMAP_PARAMS["metric"]["options"],
                                 help=embed.UMAP_PARAMS["metric"]["help"]),
    }


def wait_for_umap(params: dict) -> None:
    """Ask the worker for the UMAP map with these settings (once), say how it goes, and rerun the
    page when it is done."""
    job = store.latest_map_request(run.id, params)
    if job is None:
        job = store.map_request(store.request_map(run.id, params))
    if job.status == "done" and cache.get(map_version(run), "umap", params, ids=keys) is not None:
        st.rerun()  # finished since this run read the cache
    if not job.active:  # failed, or done but its file does not match the samples
        why = job.error or "its file is missing or does not match the samples"
        st.warning(f"The UMAP map could not be computed ({why}); showing PCA.")
        st.button("Compute the UMAP map again", key="map_retry", on_click=store.request_map, args=(run.id, params))
        return
    st.caption("Showing the PCA map while the worker computes UMAP (it replaces it when ready).")

    @st.fragment(run_every=2.0)
    def poll() -> None:
        if not store.map_request(job.id).active:
            st.rerun(scope="app")

    poll()


coords = cache.get(map_version(run), "umap", params, ids=keys)
kind = "UMAP"
if coords is None:
    kind = "PCA"
    coords = cache.get(map_version(run), "pca", None, ids=keys)
    if coords is None:
        coords = embed.pca_2d(store.run_embedding(run))
    if maps_enabled():
        wait_for_umap(params)
    else:
        st.caption("UMAP maps are switched off on this server (SEMIAD_MAPS=0): showing PCA.")

options = ["score", "label"] + (["truth"] if samples.truth is not None else [])
names = {"score": "anomaly score", "label": "current label", "truth": "ground truth"}
color_by = st.radio("Colour by", options, format_func=names.get, horizontal=True, key="map_color")
y = store.semi_targets(pid)
centre = center_position(coords, table["score"].to_numpy()) if run.method == "deepsad" else None
fig, info = scatter_figure(coords, keys, color_by, scores=table["score"].to_numpy(), labels=y,
                           truth=samples.truth, center=centre)
score_cue = f"Colour = {score_meaning(run.method)}" + ("; the ring marks the centre region." if centre is not None
                                                      else ".")
space = (" The map is laid out from the model's input space (the pretrained features or the columns, reduced by "
         "PCA)." if run.method == "fusion" else "")
st.caption(f"{kind} of round {run.round} (run {run.id}). {info.message()}{space} "
           f"{score_cue if color_by == 'score' else ''} Labeled samples are drawn larger, with an outline. "
           "Drag to lasso (or pick box select in the toolbar) to select samples.")

nonce_key = f"_map_nonce-{pid}"
st.session_state.setdefault(nonce_key, 0)
chart_key = f"map-{run.id}-{st.session_state[nonce_key]}"
by_key = table.set_index("key")
# Streamlit names a chart by its figure as well as its key: a figure drawn anew (a label given by anyone, in
# any tab, recolours a point) is a new chart without the selection. So the selection is held here and drawn
# into the figure; it goes when the person selects again, labels it, clears it, or a new run's map comes.
held_key = f"_map_held-{pid}"
held = st.session_state.get(held_key)
if held is not None and held[0] != chart_key:
    st.session_state.pop(held_key)
    held = None
if held is not None:
    drawn = {k: i for i, k in enumerate(fig.data[0].customdata[:, 0])}
    fig.data[0].selectedpoints = [drawn[k] for k in held[1] if k in drawn]
st.plotly_chart(fig, key=chart_key, on_select="rerun", selection_mode=("box", "lasso"), width="stretch")
now = [k for k in selected_ids(st.session_state.get(chart_key)) if k in by_key.index]
if now and (held is None or now != held[1]):
    st.session_state[held_key] = (chart_key, now)


def selected() -> list[str]:
    """The keys of the samples selected on the map (held across a redrawn figure)."""
    held = st.session_state.get(held_key)
    return list(held[1]) if held is not None and held[0] == chart_key else []


def clear_selection() -> None:
    st.session_state.pop(held_key, None)
    st.session_state[nonce_key] += 1  # a new chart key: the chart's own selection goes too


labeled_keys = set(by_key.index[[isinstance(v, str) for v in by_key["label"]]])


def unlabeled(key: str) -> bool:
    """Whether a sample starts ticked: a bulk label is for the unlabeled; a labeled sample (an anomaly found
    earlier, say) changes only when its own tick is put back, one picture at a time."""
    return key not in labeled_keys


def selection() -> list[str]:
    """The selected samples' keys, less those unticked, read from the session state when called: a
    button's callback runs before the script, with the ticks sent along with the click (a tick taken
    off just before the click is not in the previous run's list). Beyond the pictures shown, the unlabeled."""
    return [k for i, k in enumerate(selected())
            if (st.session_state.get(f"keep-{run.id}-{k}", unlabeled(k)) if i < MAX_GRID else unlabeled(k))]


def label_selection(value: str) -> None:
    ids = [int(by_key.loc[k, "sample_id"]) for k in selection()]
    if not ids:
        st.session_state["_map_note"] = "Nothing labeled: every selected sample is unticked."
        return
    try:
        store.record_labels(pid, ids, value, annotator(), source="map")
        st.session_state["_map_note"] = f"Labeled {len(ids)} samples {value} (one undo reverts them all)."
        st.session_state[nonce_key] += 1  # a new chart key clears the selection
    except StoreError as e:
        st.session_state["_map_note"] = f"Not labeled: {e}"


def undo() -> None:
    try:
        undone = store.undo_last(pid, annotator())
    except StoreError as e:  # everything it labeled was labeled again since
        st.session_state["_map_note"] = str(e)
        return
    # your last label may be one given on Review: name it, so the person knows what was taken back
    named = f": {store.sample_key(pid, undone[0])}" if len(undone) == 1 else ""
    st.session_state["_map_note"] = (f"Undid the last label of {len(undone)} sample(s){named}." if undone
                                     else "Nothing of yours to undo.")


def undo_button(where) -> None:
    where.button("Undo your last label", key="map_undo", on_click=undo, help="Revert your last label in this project "
                 "(a bulk label is one label)")


if "_map_note" in st.session_state:
    st.info(st.session_state.pop("_map_note"))
picked = selected()
if not picked:
    undo_button(st)  # after a bulk label the selection is cleared: its undo stays at hand
    st.stop()

st.subheader(f"{len(picked)} selected")
shown = picked[:MAX_GRID]
if len(picked) > MAX_GRID:
    st.caption(f"Showing the first {MAX_GRID} pictures; labeling applies to all {len(picked)} "
               "selected samples except those you untick and those labeled already.")
done = sum(not unlabeled(k) for k in picked)
if done:
    st.caption(f"{done} of the selected samples are labeled already: they start unticked and keep their label "
               "unless you tick one among the pictures.")
per_row = 8 if samples.kind == "image" else 4  # a table's tick carries its id: wider columns, no cut-off names
cols = st.columns(per_row)
for i, k in enumerate(shown):
    row = by_key.loc[k]
    with cols[i % per_row]:
        label = row["label"] if isinstance(row["label"], str) else "unlabeled"
        if samples.kind == "image":  # the id under the picture, the label beside the tick (a narrow column)
            st.image(sample_thumbnail(store, samples, pid, int(row["idx"])), caption=k, width="stretch")
            st.checkbox(label, value=unlabeled(k), key=f"keep-{run.id}-{k}")
        else:
            st.checkbox(f"{k} · {label}", value=unlabeled(k), key=f"keep-{run.id}-{k}",
                        help=f"score {row['score']:.3g}")
keep = selection()

b = st.columns(3)
b[0].button(f"Label all {len(keep)} normal", key="map_normal", on_click=label_selection, args=("normal",),
            disabled=not keep)
b[1].button(f"Label all {len(keep)} anomalous", key="map_anomalous", on_click=label_selection, args=("anomalous",),
            type="primary", disabled=not keep)
undo_button(b[2])
st.button("Clear the selection", key="map_clear", on_click=clear_selection)
