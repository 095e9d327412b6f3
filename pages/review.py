"""Review: the samples the model finds most anomalous; label them Normal / Anomalous / Skip.

The cards and the keys live in one component (pages/review_card): the focused card answers
n = normal, a = anomalous, s = skip, u = undo (your last label or skip in this tab), and moves to the next
card in the browser at once. Every press is one request with its own token, applied by the store
exactly once, with who and when. Only the labeling fragment below reruns on a press (counts, the
queue window, disputes, recent labels); scores, model and reconstructions are cached. Below it, the
second look (a toggle, off by default) lists the labels the other labels disagree with most.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import streamlit as st

from pages.common import (
    THUMB_ORIGINAL_PX,
    VIEW_ORIGINAL_PX,
    annotator,
    data_uri,
    front_key,
    model_of,
    original_picture,
    require_project,
    sample_thumbnail,
    samples_of,
    score_meaning,
    skips_key,
)
from pages.review_card import apply_requests, review_card, scope_of
from semiad import defaults, query, represent, second_look
from semiad.columns import column_scale, telling_columns
from semiad.data import encode_png
from semiad.settings import display_name
from state.ranking import next_batch, ranked_rows, since_anomaly
from state.store import Store

LOOKAHEAD = 48  # cards the browser holds beyond the visible ones, to move on without the server
VIEW_AHEAD = 8  # cards of the window that carry the larger picture of the original for the focused card
TABLE_COLUMNS = 12  # a table row's card shows this many columns, those furthest from the typical row

store, project = require_project(outbox=False)  # the cards send their own requests
pid = project.id
samples = samples_of(store, pid)
skipped_key = skips_key(pid)
st.session_state.setdefault(skipped_key, [])
st.session_state.setdefault(f"_skip_epoch-{pid}", 0)

for note in ("_finished_note",):
    if note in st.session_state:
        st.toast(st.session_state.pop(note))
# what the loader left out of a new project: shown until hidden (the page reruns while the first model
# trains; popping the note on the first draw showed it for a moment), and kept on the Projects page
if st.session_state.get(f"_skipped_note-{pid}"):
    bad = st.session_state[f"_skipped_note-{pid}"]
    with st.expander(f"{len(bad)} note(s) from loading the data: files, rows or columns left out or flagged",
                     expanded=True):
        st.dataframe(pd.DataFrame(bad, columns=["file", "reason"]), hide_index=True)
        if st.button("Hide (the list stays on the Projects page)", key=f"hide_skipped-{pid}"):
            st.session_state.pop(f"_skipped_note-{pid}")
            st.rerun()


STRATEGY_NAMES = {"top": "Top scores", "top-audit": "Top, audit when dry", "boundary": "Near the threshold",
                  "diverse": "Diverse high scorers", "random": "Random audit", "mixed": "Mixed (70/20/10)"}


def review_queue(store: Store, pid: int, run, strategy: str, n: int, skipped: list[int],
                 since_anomaly: int) -> pd.DataFrame:
    """The window of cards the expert works through: the batch of n plus LOOKAHEAD more, chosen by
    the strategy and kept in the session (so random or diverse picks do not reshuffle on every
    press). Labeled and skipped cards drop out; when fewer than n + LOOKAHEAD / 2 remain, the window
    is topped up at its end with the strategy's next picks (the cards already in it keep their
    order), so the browser, which runs ahead of the server, never runs out of cards. "Top, audit
    when dry" starts a new window when it turns to the audit or back (`since_anomaly`: labels since
    the last anomalous one). Columns: sample_id, idx, key, score, rank, reason."""
    state_key = f"_queue-{pid}"
    want = (run.id, strategy, auditing(strategy, since_anomaly))
    size = n + LOOKAHEAD
    queue = st.session_state.get(state_key)
    items, last = None, False
    if queue is not None and queue["for"] == want:
        current = store.current_labels(pid, queue["items"]["sample_id"])
        keep = np.array([current.get(int(i)) is None and int(i) not in skipped for i in queue["items"]["sample_id"]],
                        dtype=bool)  # an array: an empty list would select no columns, not no rows
        items = queue["items"].loc[keep].reset_index(drop=True)
        last = queue["last"]
    if items is None or not (len(items) >= n + LOOKAHEAD // 2 or (len(items) and last)):
        taken = list(skipped) if items is None else list(skipped) + items["sample_id"].tolist()
        want_more = size - (0 if items is None else len(items))
        more = next_batch(store, run, strategy, want_more, exclude=taken, since_anomaly=since_anomaly)
        items = more if items is None or items.empty else pd.concat([items, more], ignore_index=True)
        # "last": the strategy had no more to give (fewer unlabeled than asked), so a short window is all
        last = len(more) < want_more
    items = bring_back(run, items)
    st.session_state[state_key] = {"for": want, "items": items, "last": last}
    return items


def auditing(strategy: str, since_anomaly: int) -> bool:
    """Whether "Top, audit when dry" is drawing random-audit cards now."""
    return strategy == "top-audit" and since_anomaly >= query.AUDIT_AFTER


def dry_note(strategy: str, since_anomaly: int, found: int) -> str | None:
    """What to tell the expert when the last `query.AUDIT_AFTER` labels or more hold no anomaly."""
    if since_anomaly < query.AUDIT_AFTER:
        return None
    what = (f"No anomaly in the last {since_anomaly} labels" if found
            else f"No anomaly in the {since_anomaly} labels so far")
    if auditing(strategy, since_anomaly):
        return (f"{what}, so these cards are a **random audit** until one turns up. Its share of anomalies "
                "estimates how many remain (Progress), and its labels show the model the kinds its ranking has "
                "not reached: retrain after a batch. If the audit keeps finding none, there may be few left.")
    if strategy == "random":
        return None
    return (f"{what}. The top of this ranking may have run dry: **Top, audit when dry** or **Random audit** "
            "shows whether anomalies remain, and teaches the model where it was sure.")


def bring_back(run, items: pd.DataFrame) -> pd.DataFrame:
    """Samples an undo put back without the browser knowing which (its "u" with nothing of this
    tab's to revert) go first, once."""
    back = st.session_state.pop(front_key(pid), [])
    if not back:
        return items
    rows = ranked_rows(store, run, list(dict.fromkeys(int(i) for i in back)), "your undo: back for another look")
    return pd.concat([rows, items[~items["sample_id"].isin(rows["sample_id"])]], ignore_index=True)


@st.cache_resource(show_spinner=False, max_entries=8)
def _picture_cache(url: str, project_id: int) -> dict:  # the arguments: the cache key
    return {}


def pictures(idx: int, view: bool) -> dict:
    """Data URIs of a sample's pictures for the component: `thumb` (grid), `view` (focused card:
    the original scaled to fit, only with view=True), `input` (the model input, for projects
    with originals), `pixel` (draw without smoothing), `zoomable` (a full-resolution original)."""
    cache = _picture_cache(store.url, pid)
    key = (idx, view)
    if key not in cache:
        thumb = original_picture(samples, idx, THUMB_ORIGINAL_PX)
        model_input = data_uri(encode_png(samples.thumbnail(idx)))
        if thumb is None:
            out = {"thumb": model_input, "pixel": True, "zoomable": False}
        else:
            small = max(thumb[2]) <= THUMB_ORIGINAL_PX // 2  # drawn at twice its size or more: pixels kept sharp
            out = {"thumb": data_uri(thumb[0], thumb[1]), "input": model_input, "pixel": small, "zoomable": True}
            big = original_picture(samples, idx, VIEW_ORIGINAL_PX) if view else None
            if big is not None:
                out["view"] = data_uri(big[0], big[1])
        if len(cache) > 20_000:
            cache.clear()
        cache[key] = out
        return out  # not cache[key]: another session may clear the shared cache in between
    return cache[key]


@st.cache_resource(show_spinner=False, max_entries=4)
def _recon_cache(url: str, run_id: int) -> dict:  # the arguments: the cache key
    return {}


def _png01(img01: np.ndarray) -> str:
    img = np.clip(img01 * 255 + 0.5, 0, 255).astype(np.uint8)
    return data_uri(encode_png(img[0] if img.shape[0] == 1 else img.transpose(1, 2, 0)))


def difference_maps(run, idxs: list[int]) -> dict[int, tuple[str, str]]:
    """|x − x̂| (scaled to its maximum) and x̂ per sample, for detectors that reconstruct; computed once
    per run and sample, in one batch for the samples not seen yet."""
    if samples.kind != "image" or represent.uses_features(run.params.get("representation")):
        return {}  # a model of image features reconstructs features, not pictures
    model = model_of(store, run)
    if not getattr(model, "can_reconstruct", False):
        return {}
    cache = _recon_cache(store.url, run.id)
    out = {i: cache[i] for i in idxs if i in cache}
    missing = [i for i in idxs if i not in out]
    if missing:
        recon = model.reconstruct(samples.X[missing])
        if len(cache) > 20_000:
            cache.clear()  # the result is built from `out`, not read back from the cache
        for i, r in zip(missing, recon):
            diff = np.abs(samples.X[i] - r)
            out[i] = cache[i] = (_png01(diff / max(float(diff.max()), 1e-6)), _png01(r))
    return {i: out[i] for i in idxs}


@st.cache_data(show_spinner=False, max_entries=4)
def pool_column_scale(url: str, project_id: int) -> tuple[np.ndarray, np.ndarray]:  # the arguments: the cache key
    return column_scale(samples.X)


def show_counts(store: Store) -> dict[str, int]:
    counts = store.label_counts(pid)
    run = store.latest_done_run(pid)
    c = st.columns(5)
    c[0].metric("Round", run.round if run else 0,
                help="Finished training runs; a label records the round it was given in.")
    c[1].metric("Labeled normal", counts["normal"])
    c[2].metric("Labeled anomalous", counts["anomalous"])
    c[3].metric("Unlabeled", counts["unlabeled"])
    c[4].metric("Label events", counts["events"], help="Every click, undo included; nothing is overwritten.")
    return counts


st.title("Review")
run = store.latest_done_run(pid)
if run is None:
    show_counts(store)
    active = store.active_run(pid)
    if active is not None:
        st.info("The first model is training (progress in the sidebar). The ranking appears here when it is done.")
    else:
        st.info("No model yet. Train one on the Train page.")
        st.page_link("pages/train.py", label="Go to Train", icon=":material/model_training:")
    st.stop()

top = st.columns([3, 2, 2, 3])
strategy = top[0].selectbox("Show next", list(query.STRATEGIES), format_func=STRATEGY_NAMES.get, key="strategy",
                            index=list(query.STRATEGIES).index(defaults.DEFAULT_STRATEGY),
                            help="\n\n".join(f"**{STRATEGY_NAMES[k]}**: {v}" for k, v in query.STRATEGIES.items()))
per_page = top[1].select_slider("Batch", options=[6, 12, 24, 48], value=12, key="cards")
per_row = top[2].select_slider("Per row", options=[2, 3, 4, 5, 6], value=4, key="per_row")
top[3].caption(f"Ranking of **round {run.round}**: {display_name(run.method)}, run {run.id} "
               f"({'warm start from run ' + str(run.parent_id) if run.parent_id else 'fresh model'}), "
               f"trained with {run.n_labels} labels. Highest score = most anomalous.")
second_look_hint = top[3].empty()  # filled below, once the second look is defined

CARD_KEY = f"review_card-{pid}"


@st.cache_data(show_spinner=False, max_entries=4)
def sample_index(url: str, project_id: int) -> dict[int, int]:  # url: the cache key
    """sample id → row of the project's data (fixed when the project is made)."""
    table = store.samples(project_id)
    return dict(zip(table["sample_id"].astype(int), table["idx"].astype(int)))


def handle_value() -> tuple[list[str], list[dict], str, dict | None]:
    """Apply the component's new requests (if its value changed since the last run of this session)
    and answer a zoom request. Returns (acked tokens, refusals, note, zoom answer)."""
    value = st.session_state.get(CARD_KEY)
    done_key = f"_card_seen-{pid}"
    acked, errors, note = st.session_state.get(f"_acked-{pid}", ([], [], ""))
    zoom = None
    if isinstance(value, dict) and value.get("seq") != st.session_state.get(done_key):
        acked, errors, note = apply_requests(store, pid, annotator(), value.get("pending") or [],
                                             st.session_state[skipped_key], strategies=query.STRATEGIES,
                                             brought_back=st.session_state.setdefault(front_key(pid), []))
        st.session_state[f"_acked-{pid}"] = (acked, errors, "")
        st.session_state[done_key] = value.get("seq")
        ask = value.get("zoom")
        if isinstance(ask, dict) and ask.get("n") != st.session_state.get(f"_zoom_n-{pid}"):
            st.session_state[f"_zoom_n-{pid}"] = ask.get("n")
            zoom = {"n": ask.get("n"), "src": None, "text": "This sample has no original file to show."}
            idx = sample_index(store.url, pid).get(int(ask.get("sid", -1)))
            full = original_picture(samples, idx, None) if idx is not None else None
            if full is not None:
                w, h = full[2]
                zoom.update(src=data_uri(full[0], full[1]),
                            text=f"Original at full resolution ({w}×{h} px) — click or press Escape to close")
    return acked, errors, note, zoom


def show_skipped() -> None:
    """The button's callback: the skipped samples join the queue again (the browser is told by the epoch)."""
    st.session_state[skipped_key] = []
    st.session_state[f"_skip_epoch-{pid}"] += 1


@st.fragment
def labeling() -> None:
    """Everything a label changes: reruns alone on every press."""
    acked, errors, note, zoom = handle_value()
    counts = show_counts(store)
    if not annotator():
        st.warning("Enter your name in the sidebar to label: it is stored with every label.")
    since = since_anomaly(store, pid)
    dry = dry_note(strategy, since, counts["anomalous"])
    if dry:
        st.info(dry, icon=":material/travel_explore:")
    queue = review_queue(store, pid, run, strategy, per_page, st.session_state[skipped_key], since)
    if queue.empty:
        st.success("Every sample of this project is labeled or skipped. Retrain, or clear the skips.")
        if st.session_state[skipped_key]:
            st.button("Show skipped samples again", key="show_skipped", on_click=show_skipped)
    idxs = queue["idx"].astype(int).tolist()
    maps = difference_maps(run, idxs)
    cards = []
    for pos, row in enumerate(queue.itertuples(index=False)):
        card = {"sid": int(row.sample_id), "key": str(row.key), "rank": int(row.rank), "of": len(samples),
                "score": f"{row.score:.4g}", "score_help": score_meaning(run.method),
                "reason": str(row.reason),
                "src": "review:random" if query.is_audit(str(row.reason)) else f"review:{strategy}", "round": run.round}
        if samples.kind == "image":
            card.update(pictures(int(row.idx), view=pos < VIEW_AHEAD))
            if int(row.idx) in maps:
                card["diff"], card["recon"] = maps[int(row.idx)]
        else:
            card.update(thumb=None, features=telling_columns(samples.X[int(row.idx)], pool_column_scale(store.url, pid),
                                                             samples.columns, TABLE_COLUMNS))
        cards.append(card)
    review_card(key=CARD_KEY, cards=cards, acked=acked, errors=errors, per_page=per_page, per_row=per_row,
                who=annotator(), scope=scope_of(store.url, pid, annotator()),
                skip_epoch=st.session_state[f"_skip_epoch-{pid}"], run=run.id, zoom=zoom, note=note)

    disputed = store.disputes(pid)
    if disputed:
        with st.expander(f"⚠️ {len(disputed)} disputed sample(s): annotators disagree", expanded=True):
            shown = list(disputed)[:50]  # the run's ranking and one query, not the whole samples table per press
            keys = ranked_rows(store, run, shown, "").set_index("sample_id")
            labels = store.current_labels(pid, shown)
            for sid in shown:
                said = disputed[sid]
                cols = st.columns([1, 5])
                if samples.kind == "image":
                    cols[0].image(sample_thumbnail(store, samples, pid, int(keys.loc[sid, "idx"])), width=56)
                current = labels.get(sid)
                cols[1].markdown(f"`{keys.loc[sid, 'key']}` — disputed: "
                                 + ", ".join(f"**{who}** said {lab}" for who, lab in said)
                                 + f"; current (latest): **{current}**")

    with st.expander("Recent labels"):
        events = store.events(pid, last=15).iloc[::-1]
        if events.empty:
            st.caption("No labels yet.")
        else:
            st.dataframe(events[["key", "label", "annotator", "time", "round", "source"]], hide_index=True)


SECOND_LOOK_MAX = 5000  # the most recent labels it weighs (bulk labels can number tens of thousands)
SECOND_LOOK_HINT_MAX = 2000  # up to this many labels, the top of the page says what it would list


@st.cache_data(show_spinner=False, max_entries=4)
def second_look_list(url: str, project_id: int, run_id: int, events: int) -> pd.DataFrame:  # events: the cache key
    """The current labels ranked by how much the other labels disagree with them, in the run's latent
    space (`semiad.second_look`). Columns: sample_id, idx, key, label, neighbours, classifier,
    disagreement, k (neighbours asked); empty while the labels hold fewer than two of either kind."""
    given = store.labels_in_order(project_id).tail(SECOND_LOOK_MAX)
    anomalous = (given["label"] == "anomalous").to_numpy()
    if min(anomalous.sum(), (~anomalous).sum()) < 2:
        return pd.DataFrame()
    table = store.samples(project_id).set_index("sample_id").loc[given["sample_id"]]
    try:
        Z = store.run_embedding(run_id)[table["idx"].to_numpy()]
    except FileNotFoundError:  # a run saved without its latent vectors
        return pd.DataFrame()
    found = second_look.disagreement(Z, anomalous)
    out = pd.DataFrame({"sample_id": given["sample_id"].to_numpy(), "idx": table["idx"].to_numpy(),
                        "key": table["key"].to_numpy(), "label": given["label"].to_numpy(), **found,
                        "k": min(second_look.K_NEIGHBOURS, len(given) - 1)})  # fewer labels, fewer neighbours
    return out.sort_values("disagreement", ascending=False, kind="stable").reset_index(drop=True)


def second_look_listed(events: int, kept: dict[str, str]) -> dict[str, pd.DataFrame] | None:
    """What the second look lists, per kind of label: up to `LISTED` labels whose disagreement is at
    least `LEAN`, `kept` labels (sample id → label) left out; None while there is nothing to compare a
    label with. `events`: the project's label events now (the cache key)."""
    ranked = second_look_list(store.url, pid, run.id, events)
    if ranked.empty:
        return None
    ranked = ranked[[kept.get(str(sid)) != lab for sid, lab in zip(ranked["sample_id"], ranked["label"])]]
    ranked = ranked[ranked["disagreement"] >= second_look.LEAN]
    return {label: ranked[ranked["label"] == label].head(second_look.LISTED) for label in ("normal", "anomalous")}


def hint_second_look() -> None:
    """Beside the ranking's caption: how many normal labels the second look would list (the costly slips),
    for projects small enough that looking costs little on a page run (never on a key press)."""
    counts = store.label_counts(pid)
    if counts["normal"] + counts["anomalous"] > SECOND_LOOK_HINT_MAX or st.session_state.get(f"second_look-{pid}"):
        return
    listed = second_look_listed(counts["events"], store.project_setting(pid, "second_look_kept", {}))
    n = 0 if listed is None else len(listed["normal"])
    if n:
        second_look_hint.caption(f"{n} normal label(s) your other labels lean anomalous on: "
                                 "turn on **Second look** below the cards.")


def show_second_look() -> None:
    """Per kind of label, the labels the others disagree with most, each with a button to change it
    and one to keep it (a kept label stays off the list while it stands). Normal labels come first: a
    slip there hides an anomaly for good."""
    if not st.toggle("Second look at your labels", key=f"second_look-{pid}",
                     help="Lists the labels your other labels disagree with most, in the latest model's latent "
                          "space. A slip of the key on an anomaly hides it for good: it is never shown again, "
                          "and the model learns that such samples are normal."):
        return
    if "_second_look_note" in st.session_state:
        st.warning(st.session_state.pop("_second_look_note"))
    kept = store.project_setting(pid, "second_look_kept", {})
    listed = second_look_listed(store.label_counts(pid)["events"], kept)
    if listed is None:
        st.caption("A second look needs at least two labels of each kind.")
        return
    st.caption(f"Each label judged by your other labels alone: how many of its {second_look.K_NEIGHBOURS} nearest "
               "labeled samples carry the other label, and how sure a classifier fitted on the others is of the "
               f"other label. Listed: up to {second_look.LISTED} of each kind where the others lean the other way. "
               "A place here says *look again*, not *wrong*: anomalies are unlike each other, so a true one may "
               "well sit among normals. Kept labels leave the list.")
    who = annotator()
    for label, title in (("normal", "Labeled normal, but your other labels lean anomalous"),
                         ("anomalous", "Labeled anomalous, but your other labels lean normal")):
        st.markdown(f"**{title}** ({len(listed[label]) or 'none'})")
        other = "normal" if label == "anomalous" else "anomalous"
        for row in listed[label].itertuples(index=False):
            cols = st.columns([1, 6, 2, 2])
            if samples.kind == "image":
                cols[0].image(sample_thumbnail(store, samples, pid, int(row.idx)), width=56)
            cols[1].markdown(f"`{row.key}` — labeled **{label}**. {int(round(row.neighbours * row.k))} of its {row.k} "
                             f"nearest labeled samples are {other}; your other labels make it {row.classifier:.0%} "
                             f"{other}.")
            sid = int(row.sample_id)
            # callbacks, keyed by the label shown too: a click on a list drawn before someone changed the label
            # still runs (a button the next run does not draw loses its click) and acts only while that label stands
            cols[2].button(f"Make it {other}", key=f"second_look_change-{pid}-{sid}-{label}", disabled=not who,
                           on_click=second_look_act, args=(sid, label, who, other))
            cols[3].button(f"Keep {label}", key=f"second_look_keep-{pid}-{sid}-{label}", disabled=not who,
                           on_click=second_look_act, args=(sid, label, who, None))


def second_look_act(sid: int, listed: str, who: str, change_to: str | None) -> None:
    """A second-look button: change the label to `change_to`, or (None) keep it off the list, if the sample
    still carries the label the list showed; else say so."""
    now = store.current_labels(pid, [sid]).get(sid)
    if now != listed:
        st.session_state["_second_look_note"] = (f"Not changed: that sample's label is {now or 'gone'} now (someone "
                                                 "changed it since the list was drawn).")
    elif change_to is not None:
        store.record_label(pid, sid, change_to, who, source="second-look")
    else:
        kept = store.project_setting(pid, "second_look_kept", {})
        store.set_project_setting(pid, "second_look_kept", {**kept, str(sid): listed})


labeling()
show_second_look()
hint_second_look()
