"""Progress: what each round of labels bought — labels, anomalies found, precision of the batches,
the random-audit estimate of how many anomalies remain, and (with ground truth) ranking quality."""
from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from pages.common import blank_missing, require_project
from semiad import metrics, query
from semiad.settings import display_name

store, project = require_project()
pid = project.id
st.title("Progress")

current = store.labels_in_order(pid)  # each labeled sample counts in the round its label was given
runs = [r for r in store.runs(pid) if r.status == "done"]
if current.empty and not runs:
    st.info("No labels and no trained model yet.")
    st.stop()

table = metrics.progress_table(current["round"].to_numpy(), np.where(current["label"] == "anomalous", -1, 1),
                               current["source"].tolist()) if len(current) else pd.DataFrame()

model_rows = pd.DataFrame([{"round": r.round, "run": r.id, "method": display_name(r.method), "labels used": r.n_labels,
                            "AUC": r.metrics.get("auc"), "AP": r.metrics.get("ap"),
                            "AUC unlabeled": r.metrics.get("auc_unlabeled"), "seconds": r.metrics.get("train_seconds")}
                           for r in runs])
per_round = table.merge(model_rows, on="round", how="outer") if len(table) and len(model_rows) else (
    table if len(table) else model_rows)

c = st.columns(4)
c[0].metric("Labels", int(len(current)))
c[1].metric("Anomalies found", int((current["label"] == "anomalous").sum()))
c[2].metric("Rounds", len(runs))
audit = table["audit_labels"].iloc[-1] if len(table) else 0
if audit:
    c[3].metric("Anomaly rate (random audit)", f"{table['audit_anomaly_rate'].iloc[-1]:.1%}",
                help=f"From {audit} random-audit labels; 95% interval "
                     f"{table['audit_low'].iloc[-1]:.1%}–{table['audit_high'].iloc[-1]:.1%}.")
    unlabeled = store.label_counts(pid)["unlabeled"]
    rate, low, high = (float(table[k].iloc[-1]) for k in ("audit_anomaly_rate", "audit_low", "audit_high"))
    st.caption(f"By the random audit ({audit} labels), about **{rate * unlabeled:.0f}** anomalies remain among the "
               f"{unlabeled} unlabeled samples (95% interval {low * unlabeled:.0f}–{high * unlabeled:.0f}).")
else:
    c[3].metric("Anomaly rate (random audit)", "—", help="Label some samples with the Random audit strategy "
                                                           "(Top, audit when dry turns to it by itself after "
                                                           f"{query.AUDIT_AFTER} labels without an anomaly) "
                                                           "for an unbiased estimate.")

ROUND_TICKS = {"tickmode": "linear", "dtick": 1, "tickformat": "d"}  # rounds are whole numbers
LEGEND_ON_TOP = {"orientation": "h", "yanchor": "bottom", "y": 1.02, "x": 0}  # clear of the axis title


def round_axis(title: str, rounds: pd.Series) -> dict:
    """Whole-number ticks and at least four rounds of room, so one round is not one wall-wide bar."""
    lo, hi = int(rounds.min()), int(rounds.max())
    return {"title": title, **ROUND_TICKS, "range": [lo - 0.5, max(hi, lo + 3) + 0.5]}

if len(table):
    fig = go.Figure()
    fig.add_bar(x=table["round"], y=table["labels"], name="labels in round", marker_color="#b8bcc4", width=0.6)
    fig.add_scatter(x=table["round"], y=table["cum_anomalies"], name="anomalies found (total)", mode="lines+markers",
                    line={"color": "#d62728"})
    fig.add_scatter(x=table["round"], y=table["precision"], name="batch precision", mode="lines+markers",
                    yaxis="y2", line={"color": "#1f77b4", "dash": "dot"})
    fig.update_layout(xaxis=round_axis("round (model version the labels were given on)", table["round"]),
                      yaxis_title="count",
                      yaxis2={"overlaying": "y", "side": "right", "range": [0, 1], "title": "precision",
                              "tickformat": ".0%", "dtick": 0.25, "showgrid": False},
                      legend=LEGEND_ON_TOP, margin={"t": 30})
    st.plotly_chart(fig, width="stretch")

if len(model_rows) and model_rows["AUC"].notna().any():
    fig = go.Figure()
    for col, name in (("AUC", "AUC (all samples)"), ("AUC unlabeled", "AUC (unlabeled remainder)"), ("AP", "AP")):
        fig.add_scatter(x=model_rows["round"], y=model_rows[col], name=name, mode="lines+markers")
    fig.update_layout(xaxis=round_axis("round", model_rows["round"]), yaxis={"range": [0, 1]},
                      legend={"orientation": "h"}, margin={"t": 60},
                      title="Ranking quality against the ground truth shipped with the data")
    st.plotly_chart(fig, width="stretch")

if runs:
    last = runs[-1]
    scores = store.scores(last.id)
    y = np.select([scores["label"] == "normal", scores["label"] == "anomalous"], [1, -1], 0)
    st.subheader(f"Scores of round {last.round} by label")
    st.dataframe(metrics.score_summary(scores["score"].to_numpy(), y), hide_index=True)
    if scores["truth"].notna().all() and len(current):
        queried = current["sample_id"].map(scores.reset_index().set_index("sample_id")["index"]).to_numpy()
        order = metrics.screening_order(queried.astype(np.int64), scores["score"].to_numpy())
        hits = scores["truth"].to_numpy()[order]
        x, found = metrics.recall_curve(hits)
        fig = go.Figure(go.Scatter(x=x, y=found, name="this project"))
        fig.add_scatter(x=[0, 1], y=[0, 1], name="random screening", line={"dash": "dot", "color": "#999"})
        fig.update_layout(xaxis_title="share of samples screened", yaxis_title="share of anomalies found",
                          title="Recall curve (labels so far, then the current ranking)", margin={"t": 40})
        st.plotly_chart(fig, width="stretch")
        summary = metrics.screening_summary(hits)
        st.caption(f"WSS@95 {summary['wss_95']:.2f} · RRF@10 {summary['rrf_10']:.2f} · "
                   f"average time to discovery {summary['atd']:.0f} samples ({summary['atd_share']:.1%})")

st.subheader("Per round")
# headings in words on the page; the CSV keeps the column names a script reads
HEADINGS = {"labels": "labels given", "anomalies": "anomalies among them", "precision": "batch precision",
            "cum_labels": "labels so far", "cum_anomalies": "anomalies so far", "audit_labels": "audit labels so far",
            "audit_anomaly_rate": "audit anomaly rate", "audit_low": "rate, 95% low", "audit_high": "rate, 95% high"}
shown = per_round.copy()  # a round with no label yet (the current model's, say) gave none: 0, not blank
for column in ("labels", "anomalies"):
    if column in shown:
        shown[column] = shown[column].fillna(0).astype(int)
for column in ("cum_labels", "cum_anomalies", "audit_labels"):
    if column in shown:
        shown[column] = shown[column].ffill().fillna(0).astype(int)
st.dataframe(blank_missing(shown, {"precision": ".2f", "audit_anomaly_rate": ".3f", "audit_low": ".3f",
                                   "audit_high": ".3f", "AUC": ".3f", "AP": ".3f", "AUC unlabeled": ".3f",
                                   "seconds": ".1f"}),
             hide_index=True, width="stretch",
             column_config={k: st.column_config.Column(v) for k, v in HEADINGS.items() if k in per_round})
st.download_button("Download CSV", per_round.to_csv(index=False), f"{project.name}-progress.csv", "text/csv",
                   key="progress_csv")
