"""The latent map as one plotly WebGL scatter, and reading lasso/box selections back as sample ids.

One trace only: Streamlit reports selected points per trace, and browsers cap WebGL contexts, so
categories are coded as colours of a single `go.Scattergl`, never as separate traces. Every point
carries its sample id in `customdata[0]`; selections are mapped through it, never through point
indices. No streamlit import: the page passes `fig` to `st.plotly_chart` and the event back here.
"""
from __future__ import annotations

import zlib
from dataclasses import dataclass
from typing import Any, Iterable, Mapping, Sequence

import numpy as np
import plotly.graph_objects as go

LABEL_NAMES = ("unlabeled", "normal", "anomalous")
LABEL_COLORS = ("#b8bcc4", "#1f77b4", "#d62728")
TRUTH_NAMES = ("normal", "anomaly")
TRUTH_COLORS = ("#1f77b4", "#d62728")
# Share of the drawing budget given to the highest-scored unlabeled points when subsampling;
# the rest is a stable pseudo-random draw so dense low-score regions still show their shape.
TOP_SHARE = 0.5


@dataclass(frozen=True)
class PlotInfo:
    """What the figure shows, for the page to say so."""

    total: int  # samples given
    drawn: int  # points in the figure
    labeled: int  # labeled samples (always drawn)
    top_kept: int  # unlabeled samples kept because of a high score while subsampling
    color_by: str

    @property
    def hidden(self) -> int:
        return self.total - self.drawn

    @property
    def subsampled(self) -> bool:
        return self.drawn < self.total

    def message(self) -> str:
        if not self.subsampled:
            return f"All {self.total:,} samples are drawn."
        return (f"Drawing {self.drawn:,} of {self.total:,} samples: all {self.labeled:,} labeled and the "
                f"{self.top_kept:,} highest-scored are kept, {self.hidden:,} unlabeled lower-scored are hidden.")


def label_codes(labels: Sequence[Any] | np.ndarray | None, n: int) -> np.ndarray:
    """0 unlabeled, 1 normal, 2 anomalous, from semi-targets (+1/−1/0) or names.

    Names: "normal"; "anomalous"/"anomaly"; anything else (None, "", "unlabeled") is unlabeled.
    """
    if labels is None:
        return np.zeros(n, dtype=np.int8)
    arr = np.asarray(labels, dtype=object).ravel()
    if len(arr) != n:
        raise ValueError(f"labels has {len(arr)} entries for {n} samples")
    codes = np.zeros(n, dtype=np.int8)
    for i, v in enumerate(arr):
        if isinstance(v, str):
            v = v.strip().lower()
            codes[i] = 1 if v == "normal" else 2 if v in ("anomalous", "anomaly") else 0
        elif v is not None and not (isinstance(v, float) and np.isnan(v)):
            codes[i] = 1 if v > 0 else 2 if v < 0 else 0
    return codes


def center_position(coords: np.ndarray, scores: np.ndarray, fraction: float = 0.02) -> tuple[float, float]:
    """Where Deep SAD's centre lands on the map: the median position of the lowest-score samples.

    The centre c itself is not a sample, so it has no map position; the samples nearest to it do.
    The median resists a few of them sitting in another cluster.
    """
    coords = np.asarray(coords, dtype=np.float64)
    scores = np.asarray(scores, dtype=np.float64)
    k = max(1, int(round(len(scores) * fraction)))
    low = np.argsort(scores, kind="stable")[:k]
    x, y = np.median(coords[low], axis=0)
    return float(x), float(y)


def _stable_priority(ids: Sequence[str]) -> np.ndarray:
    # A per-id pseudo-random number: the same sample stays shown (or hidden) across reruns,
    # whatever else was labeled in between, so the map does not flicker.
    return np.fromiter((zlib.crc32(str(s).encode()) for s in ids), dtype=np.uint32, count=len(ids))


def _choose(n: int, ids: Sequence[str], forced: np.ndarray, scores: np.ndarray | None,
            max_points: int) -> tuple[np.ndarray, int]:
    """Boolean mask of the points to draw, and how many were kept for their score."""
    if n <= max_points:
        return np.ones(n, dtype=bool), 0
    show = forced.copy()
    budget = max(max_points - int(forced.sum()), 0)
    free = np.flatnonzero(~forced)
    top_kept = 0
    if scores is not None and budget:
        top_kept = min(int(budget * TOP_SHARE), len(free))
        order = free[np.argsort(-scores[free], kind="stable")]
        show[order[:top_kept]] = True
        free = order[top_kept:]
        budget -= top_kept
    if budget:
        prio = _stable_priority([ids[i] for i in free])
        show[free[np.argsort(prio, kind="stable")[:budget]]] = True
    return show, top_kept


def _stepped_scale(colors: Sequence[str]) -> list[list[Any]]:
    """A colorscale that maps integer codes 0..k−1 (with cmin=0, cmax=k−1) to flat colours."""
    k = len(colors)
    scale: list[list[Any]] = []
    for i, c in enumerate(colors):
        scale += [[i / k, c], [(i + 1) / k, c]]
    return scale


def _legend_text(names: Sequence[str], colors: Sequence[str]) -> str:
    return "   ".join(f"<span style='color:{c}'>●</span> {name}" for name, c in zip(names, colors))


def scatter_figure(coords: np.ndarray, sample_ids: Sequence[str], color_by: str, scores: np.ndarray | None = None,
                   labels: Sequence[Any] | np.ndarray | None = None, truth: np.ndarray | None = None,
                   center: tuple[float, float] | None = None, max_points: int = 50_000,
                   keep: Iterable[str] | np.ndarray | None = None) -> tuple[go.Figure, PlotInfo]:
    """The latent map: one Scattergl trace, lasso as the default drag, ids in customdata.

    color_by: "score" (continuous; colour range clipped to the 1st–99th percentile so a few huge
    scores do not wash out the rest), "label" (unlabeled / normal / anomalous; `labels` as +1/−1/0
    or names) or "truth" (`truth`: 1 anomaly, 0 normal). Labeled points are drawn last (on top) and
    larger, with an outline; within each group higher scores are drawn later.
    Above `max_points`, unlabeled points are subsampled: labeled ones, those in `keep` (ids or a
    boolean mask, e.g. the current selection) and the top-scored are always drawn.
    center: 2-D position of Deep SAD's centre region (see `center_position`), drawn as a ring; it
    is a layout shape, not a trace, so it never shows up in selections.
    """
    coords = np.asarray(coords, dtype=np.float32)
    n = len(sample_ids)
    if coords.shape != (n, 2):
        raise ValueError(f"coords must be N×2 for {n} sample ids; got shape {coords.shape}")
    if color_by not in ("score", "label", "truth"):
        raise ValueError(f"color_by must be 'score', 'label' or 'truth', not {color_by!r}")
    score_arr = None if scores is None else np.asarray(scores, dtype=np.float64).ravel()
    if score_arr is not None and len(score_arr) != n:
        raise ValueError(f"scores has {len(score_arr)} entries for {n} samples")
    if color_by == "score" and score_arr is None:
        raise ValueError("color_by='score' needs scores")
    truth_arr = None if truth is None else np.asarray(truth).astype(np.int8).ravel()
    if color_by == "truth" and truth_arr is None:
        raise ValueError("color_by='truth' needs ground truth, which this data set does not have")
    if truth_arr is not None and len(truth_arr) != n:
        raise ValueError(f"truth has {len(truth_arr)} entries for {n} samples")
    codes = label_codes(labels, n)
    labeled = codes > 0

    forced = labeled.copy()
    if keep is not None:
        keep_arr = np.asarray(keep if isinstance(keep, np.ndarray) else list(keep))
        if keep_arr.dtype == bool and len(keep_arr) == n:
            forced |= keep_arr
        elif len(keep_arr):
            forced |= np.isin(np.asarray(sample_ids, dtype=str), keep_arr.astype(str))
    show, top_kept = _choose(n, sample_ids, forced, score_arr, max_points)

    idx = np.flatnonzero(show)
    sort_score = np.zeros(len(idx)) if score_arr is None else score_arr[idx]
    idx = idx[np.lexsort((sort_score, labeled[idx]))]  # last key is primary: labeled last

    ids_drawn = np.asarray(sample_ids, dtype=object)[idx]
    marker: dict[str, Any] = {
        "size": np.where(labeled[idx], 8, 4).astype(np.float32),
        "line": {"width": np.where(labeled[idx], 1.0, 0.0).astype(np.float32), "color": "#222"},
        "opacity": 0.85,
    }
    legend = ""
    if color_by == "score":
        lo, hi = np.percentile(score_arr, [1, 99]) if n else (0.0, 1.0)
        marker.update(color=score_arr[idx].astype(np.float32), colorscale="Viridis", cmin=float(lo),
                      cmax=float(hi if hi > lo else lo + 1e-9), showscale=True, colorbar={"title": {"text": "score"}})
    else:
        names, colors, values = ((LABEL_NAMES, LABEL_COLORS, codes) if color_by == "label"
                                 else (TRUTH_NAMES, TRUTH_COLORS, truth_arr))
        marker.update(color=values[idx].astype(np.float32), colorscale=_stepped_scale(colors), cmin=-0.5,
                      cmax=len(colors) - 0.5, showscale=False)
        legend = _legend_text(names, colors)

    if score_arr is not None:
        customdata = np.empty((len(idx), 2), dtype=object)
        customdata[:, 0] = ids_drawn
        # 4 significant digits: plenty for a tooltip, and a much smaller JSON on every rerun
        customdata[:, 1] = [float(f"{s:.4g}") for s in score_arr[idx]]
        hover = "%{customdata[0]}<br>score %{customdata[1]}<extra></extra>"
    else:
        customdata = ids_drawn[:, None]
        hover = "%{customdata[0]}<extra></extra>"

    fig = go.Figure(go.Scattergl(x=coords[idx, 0], y=coords[idx, 1], mode="markers", marker=marker,
                                 customdata=customdata, hovertemplate=hover, name="samples", showlegend=False))
    fig.update_layout(dragmode="lasso", hovermode="closest", uirevision="latent-map",
                      margin={"l": 10, "r": 10, "t": 30, "b": 10}, plot_bgcolor="white",
                      xaxis={"showticklabels": False, "showgrid": False, "zeroline": False, "title": None},
                      yaxis={"showticklabels": False, "showgrid": False, "zeroline": False, "title": None,
                             "scaleanchor": "x", "scaleratio": 1})
    if legend:
        fig.add_annotation(text=legend, xref="paper", yref="paper", x=0, y=1.0, yanchor="bottom",
                           xanchor="left", showarrow=False, align="left")
    if center is not None and n:
        cx, cy = float(center[0]), float(center[1])
        span = float(np.ptp(coords, axis=0).max()) or 1.0
        r = 0.04 * span
        fig.add_shape(type="circle", x0=cx - r, x1=cx + r, y0=cy - r, y1=cy + r, layer="above",
                      line={"color": "#111", "width": 2, "dash": "dot"})
        fig.add_annotation(x=cx, y=cy + r, text="centre", showarrow=False, yanchor="bottom",
                           font={"color": "#111"})
    info = PlotInfo(total=n, drawn=len(idx), labeled=int(labeled.sum()), top_kept=top_kept, color_by=color_by)
    return fig, info


def _point_id(customdata: Any) -> str | None:
    """The sample id in one point's customdata: [id, ...], {'0': id, ...}, or a bare id."""
    if customdata is None:
        return None
    if isinstance(customdata, Mapping):
        for key in ("0", 0):
            if key in customdata:
                return _point_id(customdata[key])
        return None
    if isinstance(customdata, (list, tuple, np.ndarray)):
        return _point_id(customdata[0]) if len(customdata) else None
    if isinstance(customdata, float):
        if np.isnan(customdata):
            return None
        if customdata.is_integer():  # an integer id that made a round trip through JSON as 42.0
            customdata = int(customdata)
    return str(customdata)


def selected_ids(event: Mapping[str, Any] | None) -> list[str]:
    """Sample ids of a Streamlit plotly selection event (`st.plotly_chart(..., on_select=...)`).

    Reads `event["selection"]["points"]` with dict keys (works for the real PlotlyState and for a
    plain dict injected by a test). Points without customdata are ignored; order kept, no repeats.
    """
    if not event:
        return []
    selection = event.get("selection") if isinstance(event, Mapping) else None
    points = selection.get("points") if isinstance(selection, Mapping) else None
    out: list[str] = []
    seen: set[str] = set()
    for point in points or []:
        if not isinstance(point, Mapping):
            continue
        sid = _point_id(point.get("customdata"))
        if sid is not None and sid not in seen:
            seen.add(sid)
            out.append(sid)
    return out
