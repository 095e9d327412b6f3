"""semiad.latent_plot: the single-trace latent map and parsing Streamlit selection events."""
from __future__ import annotations

import json

import numpy as np
import pytest

from semiad.latent_plot import center_position, label_codes, scatter_figure, selected_ids


def _data(n: int = 200, seed: int = 0):
    rng = np.random.default_rng(seed)
    ids = [f"id-{i:04d}" for i in range(n)]
    coords = rng.normal(size=(n, 2)).astype(np.float32)
    scores = rng.gamma(2.0, size=n)
    labels = np.zeros(n, dtype=int)
    labels[[i for i in (3, 15) if i < n]] = 1
    labels[[i for i in (7, 19, n - 1) if i < n]] = -1
    return ids, coords, scores, labels


def _trace_ids(fig) -> list[str]:
    return [row[0] for row in fig.data[0].customdata]


@pytest.mark.parametrize("color_by", ["score", "label", "truth"])
def test_one_trace_with_ids_in_customdata(color_by):
    ids, coords, scores, labels = _data()
    truth = (scores > 4).astype(int)
    fig, info = scatter_figure(coords, ids, color_by, scores=scores, labels=labels, truth=truth)
    assert len(fig.data) == 1 and fig.data[0].type == "scattergl"
    drawn = _trace_ids(fig)
    assert sorted(drawn) == sorted(ids) and info.drawn == info.total == 200 and not info.subsampled
    # x/y follow the ids, whatever order the points are drawn in
    row = {sid: i for i, sid in enumerate(ids)}
    np.testing.assert_allclose(np.column_stack([fig.data[0].x, fig.data[0].y]),
                               coords[[row[s] for s in drawn]])
    assert fig.layout.dragmode == "lasso"
    assert "customdata[0]" in fig.data[0].hovertemplate and "score" in fig.data[0].hovertemplate
    json.loads(fig.to_json())  # serialisable as Streamlit will send it


def test_labeled_points_come_last_and_high_scores_above_low():
    ids, coords, scores, labels = _data()
    fig, info = scatter_figure(coords, ids, "score", scores=scores, labels=labels)
    drawn = _trace_ids(fig)
    labeled = {ids[i] for i in np.flatnonzero(labels)}
    assert set(drawn[-len(labeled):]) == labeled and info.labeled == 5
    unlabeled_scores = [row[1] for row in fig.data[0].customdata[:-len(labeled)]]
    assert unlabeled_scores == sorted(unlabeled_scores)
    sizes = np.asarray(fig.data[0].marker.size)
    assert (sizes[-5:] > sizes[0]).all()  # labeled points are drawn larger


def test_label_colours_code_each_state():
    ids, coords, scores, labels = _data(20)
    as_names = np.where(labels == 1, "normal", np.where(labels == -1, "anomalous", "unlabeled"))
    np.testing.assert_array_equal(label_codes(labels, 20), label_codes(as_names, 20))
    fig, _ = scatter_figure(coords, ids, "label", labels=as_names)
    code_of = {sid: c for sid, c in zip(_trace_ids(fig), fig.data[0].marker.color)}
    assert code_of["id-0003"] == 1 and code_of["id-0007"] == 2 and code_of["id-0000"] == 0
    assert "unlabeled" in fig.layout.annotations[0].text  # the one-trace figure's legend
    # no scores: hover shows the id only
    assert fig.data[0].hovertemplate.startswith("%{customdata[0]}") and "score" not in fig.data[0].hovertemplate


def test_subsampling_keeps_labeled_kept_and_top_scored():
    ids, coords, scores, labels = _data(2000, seed=1)
    keep = ["id-0010", "id-0011"]
    fig, info = scatter_figure(coords, ids, "score", scores=scores, labels=labels, max_points=500, keep=keep)
    drawn = set(_trace_ids(fig))
    assert len(drawn) == info.drawn == 500 and info.hidden == 1500 and info.subsampled
    assert {ids[i] for i in np.flatnonzero(labels)} <= drawn
    assert set(keep) <= drawn
    top = {ids[i] for i in np.argsort(-scores)[:info.top_kept]}
    assert info.top_kept > 100 and top <= drawn
    assert "1,500" in info.message()
    # stable: the same call draws the same samples; labeling one more does not reshuffle the rest
    assert set(_trace_ids(scatter_figure(coords, ids, "score", scores=scores, labels=labels,
                                         max_points=500, keep=keep)[0])) == drawn
    hidden_one = next(i for i, sid in enumerate(ids) if sid not in drawn)
    labels2 = labels.copy()
    labels2[hidden_one] = 1
    drawn2 = set(_trace_ids(scatter_figure(coords, ids, "label", scores=scores, labels=labels2,
                                           max_points=500, keep=keep)[0]))
    assert ids[hidden_one] in drawn2 and len(drawn2) == 500 and len(drawn ^ drawn2) <= 4


def test_centre_cue_is_not_a_trace():
    ids, coords, scores, _ = _data()
    c = center_position(coords, scores, fraction=0.05)
    low = np.argsort(scores)[:10]
    np.testing.assert_allclose(c, np.median(coords[low], axis=0))
    fig, _ = scatter_figure(coords, ids, "score", scores=scores, center=c)
    assert len(fig.data) == 1 and fig.layout.shapes[0].type == "circle"
    assert fig.layout.shapes[0].x0 < c[0] < fig.layout.shapes[0].x1


def test_bad_arguments_are_named():
    ids, coords, scores, _ = _data(10)
    with pytest.raises(ValueError, match="truth"):
        scatter_figure(coords, ids, "truth")
    with pytest.raises(ValueError, match="scores"):
        scatter_figure(coords, ids, "score")
    with pytest.raises(ValueError, match="color_by"):
        scatter_figure(coords, ids, "digit", scores=scores)
    with pytest.raises(ValueError, match="coords"):
        scatter_figure(coords[:5], ids, "label")


# ----- selection events ------------------------------------------------------------------------

def _event(points):
    return {"selection": {"points": points, "point_indices": list(range(len(points))), "box": [], "lasso": []}}


def test_selection_with_dict_customdata():
    # what Streamlit 1.67 + Plotly 7 returned on this machine (product-research §3)
    ev = _event([{"curve_number": 0, "point_index": 4, "customdata": {"0": "id-0004", "1": 2.5}},
                 {"curve_number": 0, "point_index": 9, "customdata": {"0": "id-0009"}}])
    assert selected_ids(ev) == ["id-0004", "id-0009"]


def test_selection_with_list_and_scalar_customdata():
    ev = _event([{"customdata": ["id-0001", 0.3]}, {"customdata": "id-0002"}, {"customdata": [17]},
                 {"customdata": 18.0}, {"x": 1.0, "y": 2.0}, {"customdata": None}, {"customdata": []},
                 {"customdata": ["id-0001"]}])
    assert selected_ids(ev) == ["id-0001", "id-0002", "17", "18"]


def test_selection_round_trip_through_the_figure():
    ids, coords, scores, labels = _data(50)
    fig, _ = scatter_figure(coords, ids, "score", scores=scores, labels=labels)
    payload = json.loads(fig.to_json())["data"][0]["customdata"]  # what the browser holds
    picked = [payload[i] for i in (0, 10, 49)]
    assert selected_ids(_event([{"customdata": cd} for cd in picked])) == [cd[0] for cd in picked]
    assert selected_ids(_event([{"customdata": {str(k): v for k, v in enumerate(cd)}} for cd in picked])) \
        == [cd[0] for cd in picked]


def test_selection_empty_forms():
    assert selected_ids(None) == [] and selected_ids({}) == []
    assert selected_ids({"selection": {}}) == [] and selected_ids(_event([])) == []


def test_selection_from_streamlits_own_state_object():
    # the object st.plotly_chart(on_select=...) returns, built by Streamlit's deserializer from the
    # JSON the browser sends (customdata as the dict form seen on this machine)
    plotly_chart = pytest.importorskip("streamlit.elements.plotly_chart")
    ui_value = json.dumps({"selection": {"points": [{"curve_number": 0, "point_number": 2, "point_index": 2,
                                                     "x": 0.1, "y": 0.2, "customdata": {"0": "id-0002", "1": 1.5}},
                                                    {"curve_number": 0, "point_index": 5, "customdata": ["id-0005"]}],
                                         "point_indices": [2, 5], "box": [], "lasso": []}})
    state = plotly_chart.PlotlyChartSelectionSerde().deserialize(ui_value)
    assert selected_ids(state) == ["id-0002", "id-0005"]
    assert selected_ids(plotly_chart.PlotlyChartSelectionSerde().deserialize(None)) == []
