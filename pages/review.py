"""Review: the samples the model finds most anomalous; label them Normal / Anomalous / Skip.

Every click is written to the store at once (one event, with who and when). The focused card
(the first one) answers keyboard shortcuts: n = normal, a = anomalous, s = skip, u = undo.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import streamlit as st

from pages.common import (annotator, model_of, picture_png, require_project, samples_of, thumbnail_png)
from pages.methods import display_name
from semiad import query
from state.store import Store, StoreError

store, project = require_project()
pid = project.id
samples = samples_of(store, pid)
skipped_key = f"_skipped-{pid}"
st.session_state.setdefault(skipped_key, [])

for note in ("_finished_note",):
    if note in st.session_state:
        st.toast(st.session_state.pop(note))
if "_skipped_note" in st.session_state:
    bad = st.session_state.pop("_skipped_note")
    with st.expander(f"{len(bad)} file(s) could not be used and were skipped", expanded=True):
        st.dataframe(pd.DataFrame(bad, columns=["file", "reason"]), hide_index=True)


def label(sample_id: int, value: str) -> None:
    try:
        store.record_label(pid, sample_id, value, annotator(), source=f"review:{st.session_state.get('strategy', 'top')}")
    except StoreError as e:
        st.session_state["_label_error"] = str(e)


def skip(sample_id: int) -> None:
    st.session_state[skipped_key].append(sample_id)


def undo() -> None:
    reverted = store.undo_last(pid, annotator())
    st.session_state["_undo_note"] = (f"Undid the last label of {len(reverted)} sample(s)." if reverted
                                      else "Nothing of yours to undo.")


STRATEGY_NAMES = {"top": "Top scores", "boundary": "Near the threshold", "diverse": "Diverse high scorers",
                  "random": "Random audit", "mixed": "Mixed (70/20/10)"}


@st.cache_data(show_spinner=False, max_entries=8)
def run_arrays(url: str, run_id: int, folder: str) -> tuple[np.ndarray, np.ndarray]:  # noqa: ARG001 (cache key)
    """Scores and embedding of a run, in sample order (files written once by the worker)."""
    return np.load(f"{folder}/scores.npy"), np.load(f"{folder}/embedding.npy")


def review_queue(store: Store, pid: int, run, strategy: str, n: int, skipped: list[int]) -> pd.DataFrame:
    """The batch the expert works through, chosen by the strategy once and kept in the session
    (so random or diverse picks do not reshuffle on every click); labeled cards drop out, and a
    new batch is drawn when this one is done. Columns: sample_id, idx, key, score, rank, reason."""
    state_key = f"_queue-{pid}"
    want = (run.id, strategy, n)
    queue = st.session_state.get(state_key)
    if queue is not None and queue["for"] == want:
        items = queue["items"]
        current = store.current_labels(pid, items["sample_id"])
        items = items[[current.get(int(i)) is None and int(i) not in skipped for i in items["sample_id"]]]
        if len(items):
            return items
    table = store.samples(pid)
    scores, Z = run_arrays(store.url, run.id, str(store.run_dir(run)))
    labeled = table["label"].notna().to_numpy() | table["sample_id"].isin(skipped).to_numpy()
    rank = np.empty(len(scores), dtype=np.int64)
    rank[np.argsort(-scores, kind="stable")] = np.arange(1, len(scores) + 1)
    picks = query.select(strategy, scores, labeled, n, np.random.default_rng([run.id, int(labeled.sum())]),
                         embeddings=Z if query.needs_embeddings(strategy) else None)
    idx = [i for i, _ in picks]
    items = table.iloc[idx][["sample_id", "idx", "key"]].assign(
        score=scores[idx], rank=rank[idx], reason=[r for _, r in picks]).reset_index(drop=True)
    st.session_state[state_key] = {"for": want, "items": items}
    return items


def show_counts(store: Store) -> None:
    counts = store.label_counts(pid)
    run = store.latest_done_run(pid)
    c = st.columns(5)
    c[0].metric("Round", run.round if run else 0, help="Finished training runs; a label records the round it was given in.")
    c[1].metric("Labeled normal", counts["normal"])
    c[2].metric("Labeled anomalous", counts["anomalous"])
    c[3].metric("Unlabeled", counts["unlabeled"])
    c[4].metric("Label events", counts["events"], help="Every click, undo included; nothing is overwritten.")


st.title("Review")
show_counts(store)
for key in ("_label_error", "_undo_note"):
    if key in st.session_state:
        (st.error if key == "_label_error" else st.info)(st.session_state.pop(key))

run = store.latest_done_run(pid)
if run is None:
    active = store.active_run(pid)
    if active is not None:
        st.info("The first model is training (progress in the sidebar). The ranking appears here when it is done.")
    else:
        st.info("No model yet. Train one on the Train page.")
        st.page_link("pages/train.py", label="Go to Train", icon=":material/model_training:")
    st.stop()

if not annotator():
    st.warning("Enter your name in the sidebar to label: it is stored with every label.")

top = st.columns([3, 2, 2, 3])
strategy = top[0].selectbox("Show next", list(query.STRATEGIES), format_func=STRATEGY_NAMES.get, key="strategy",
                            help="\n\n".join(f"**{STRATEGY_NAMES[k]}**: {v}" for k, v in query.STRATEGIES.items()))
per_page = top[1].select_slider("Batch", options=[6, 12, 24, 48], value=12, key="cards")
per_row = top[2].select_slider("Per row", options=[2, 3, 4, 5, 6], value=4, key="per_row")
top[3].caption(f"Ranking of **round {run.round}**: {display_name(run.method)}, run {run.id} "
               f"({'warm start from run ' + str(run.parent_id) if run.parent_id else 'fresh model'}), "
               f"trained with {run.n_labels} labels. Highest score = most anomalous.")

queue = review_queue(store, pid, run, strategy, per_page, st.session_state[skipped_key])
if queue.empty:
    st.success("Every sample of this project is labeled or skipped. Retrain, or clear the skips.")
    if st.session_state[skipped_key] and st.button("Show skipped samples again"):
        st.session_state[skipped_key] = []
        st.rerun()
    st.stop()

model = model_of(store, run) if samples.kind == "image" and getattr(model_of(store, run), "can_reconstruct", False) else None
recon = model.reconstruct(samples.X[queue["idx"].to_numpy()]) if model is not None else None


def picture(i: int, big: bool = False) -> None:
    idx = int(queue["idx"].iloc[i])
    if samples.kind == "image":
        if recon is not None:
            diff = np.abs(samples.X[idx] - recon[i])
            a, b = st.columns(2)
            a.image(thumbnail_png(store, samples, pid, idx), caption="sample", width="stretch")
            b.image(picture_png(diff / max(float(diff.max()), 1e-6)), caption="|x − x̂|", width="stretch")
            if big:
                with st.popover("Reconstruction"):
                    st.image(picture_png(recon[i]), caption="x̂ (reconstruction)", width=168)
        else:
            st.image(thumbnail_png(store, samples, pid, idx), width=168 if big else "stretch")
    else:
        row = samples.X[idx]
        st.dataframe(pd.DataFrame({"feature": range(len(row)), "value": row}).head(12), hide_index=True,
                     height=200 if big else 150)


def caption(i: int) -> str:
    r = queue.iloc[i]
    return f"**#{int(r['rank'])}** · score {r['score']:.4g}  \n`{r['key']}`  \n_{r['reason']}_"


# The focused card: biggest, with keyboard shortcuts.
focus = queue.iloc[0]
fid = int(focus["sample_id"])
with st.container(border=True):
    left, right = st.columns([1, 2])
    with left:
        picture(0, big=True)
    with right:
        st.markdown("Focused sample — " + caption(0))
        b = st.columns(4)
        b[0].button("Normal", key=f"fn-{fid}", shortcut="n", on_click=label, args=(fid, "normal"),
                    help="shortcut: n", width="stretch")
        b[1].button("Anomalous", key=f"fa-{fid}", shortcut="a", on_click=label, args=(fid, "anomalous"),
                    help="shortcut: a", type="primary", width="stretch")
        b[2].button("Skip", key=f"fs-{fid}", shortcut="s", on_click=skip, args=(fid,), help="shortcut: s",
                    width="stretch")
        b[3].button("Undo", key="undo", shortcut="u", on_click=undo, help="undo your last label (shortcut: u)",
                    width="stretch")

rest = list(range(1, len(queue)))
for start in range(0, len(rest), per_row):
    cols = st.columns(per_row)
    for col, i in zip(cols, rest[start:start + per_row]):
        sid = int(queue["sample_id"].iloc[i])
        with col.container(border=True):
            picture(i)
            st.markdown(caption(i))
            b = st.columns(2, gap="small")
            b[0].button("Normal", key=f"n-{sid}", on_click=label, args=(sid, "normal"), width="stretch")
            b[1].button("Anomal.", key=f"a-{sid}", on_click=label, args=(sid, "anomalous"), help="Anomalous",
                        width="stretch")
            st.button("Skip", key=f"s-{sid}", on_click=skip, args=(sid,), type="tertiary", width="stretch")

disputed = store.disputes(pid)
if disputed:
    with st.expander(f"⚠️ {len(disputed)} disputed sample(s): annotators disagree", expanded=True):
        keys = store.samples(pid).set_index("sample_id")
        for sid, said in list(disputed.items())[:50]:
            cols = st.columns([1, 5])
            if samples.kind == "image":
                cols[0].image(thumbnail_png(store, samples, pid, int(keys.loc[sid, "idx"])), width=56)
            current = keys.loc[sid, "label"]
            cols[1].markdown(f"`{keys.loc[sid, 'key']}` — disputed: "
                             + ", ".join(f"**{who}** said {lab}" for who, lab in said)
                             + f"; current (latest): **{current}**")

with st.expander("Recent labels"):
    events = store.events(pid, last=15).iloc[::-1]
    if events.empty:
        st.caption("No labels yet.")
    else:
        st.dataframe(events[["key", "label", "annotator", "time", "round", "source"]], hide_index=True)
