"""The classical detectors and the default loop (semiad.detectors.classical), on real tables."""
from pathlib import Path

import numpy as np
import pytest

from bench.label_efficiency import clustered_table
from semiad.data import load_npz
from semiad.detectors import KNN, Fusion, IsolationForest
from semiad.metrics import roc_auc

CARDIO = Path(__file__).resolve().parents[2] / "shared" / "data" / "tabular" / "6_cardio.npz"


@pytest.fixture(scope="module")
def cardio():
    if not CARDIO.exists():
        pytest.skip("shared/data/tabular not present")
    return load_npz(CARDIO)


def test_forest_export_scores_exactly_as_scikit_learn(cardio):
    from sklearn.ensemble import IsolationForest as SkForest

    det = IsolationForest(seed=3).fit(cardio.X)
    ours = det.decision_function(cardio.X)
    theirs = -SkForest(random_state=3).fit(cardio.X.astype(np.float32)).score_samples(cardio.X)
    assert np.abs(ours - theirs).max() < 1e-6
    # the fit scores its pool by scikit-learn's walk, new rows by the export: the same to the last bit
    assert np.array_equal(det.decision_scores_, ours)
    assert roc_auc(cardio.truth, ours) > 0.9


def test_forest_leaves_labeled_anomalies_out(cardio):
    y = np.where(cardio.truth == 1, -1, 0)
    plain = IsolationForest().fit(cardio.X).decision_function(cardio.X)
    told = IsolationForest().fit(cardio.X, y).decision_function(cardio.X)
    assert roc_auc(cardio.truth, told) > roc_auc(cardio.truth, plain)


def test_knn_scores_a_pool_sample_as_a_new_sample():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 5))
    det = KNN(k=5, scale="none").fit(X)
    one = det.decision_function(X[:1])
    assert one[0] > 0  # its own copy is not its nearest neighbour
    assert np.allclose(det.decision_function(X)[:1], one)
    far = det.decision_function(np.full((1, 5), 8.0))
    assert far[0] > det.decision_function(X).max()


def test_knn_never_uses_a_labeled_anomaly_as_neighbour():
    X = np.vstack([np.random.default_rng(1).normal(size=(200, 2)), [[10.0, 10.0], [10.1, 10.0]]])
    y = np.zeros(len(X), dtype=int)
    assert KNN(k=1, scale="none").fit(X).decision_function(X)[-1] < 1.0  # its twin is near
    y[-2] = -1
    assert KNN(k=1, scale="none").fit(X, y).decision_function(X)[-1] > 5.0


def test_fusion_before_labels_ranks_like_its_prior(cardio):
    fused = Fusion().fit(cardio.X).decision_function(cardio.X)
    forest = IsolationForest().fit(cardio.X).decision_function(cardio.X)
    assert np.array_equal(np.argsort(-fused, kind="stable")[:50], np.argsort(-forest, kind="stable")[:50])


def test_fusion_learns_from_labels_and_weights_its_scorers(cardio):
    truth = cardio.truth.astype(int)
    det = Fusion().fit(cardio.X)
    y = np.zeros(len(truth), dtype=int)
    found = []
    for _ in range(4):  # four rounds of the loop: review the top 20 unlabeled, refit
        scores = det.decision_function(cardio.X)
        left = np.flatnonzero(y == 0)
        top = left[np.argsort(-scores[left])[:20]]
        y[top] = np.where(truth[top] == 1, -1, 1)
        found.append(int(truth[top].sum()))
        det.fit(cardio.X, y, warm_start=True)
    weights = det.state_["weights"]
    assert set(weights) == {"prior", "linear", "kernel", "labeled"}
    assert abs(sum(float(w) for w in weights.values()) - 1) < 1e-9
    assert len(set(round(float(w), 6) for w in weights.values())) > 1  # graded, not uniform
    rest = y == 0
    before = roc_auc(truth[rest], Fusion().fit(cardio.X).decision_function(cardio.X)[rest])
    after = roc_auc(truth[rest], det.decision_function(cardio.X)[rest])
    assert after > before + 0.02  # the labels improved the ranking of what is still unlabeled
    assert sum(found) > 60


def test_fusion_rejects_an_unknown_prior(cardio):
    with pytest.raises(ValueError, match="prior"):
        Fusion(prior="lof").fit(cardio.X)


def test_images_are_flattened_rows():
    rng = np.random.default_rng(0)
    X = rng.random((60, 1, 8, 8)).astype(np.float32)
    X[-3:] += 2.0
    X = np.clip(X / 3, 0, 1)
    scores = Fusion(scale="none").fit(X).decision_function(X)
    assert set(np.argsort(-scores)[:3]) == {57, 58, 59}


@pytest.mark.parametrize("prior", ["iforest", "knn", "iforest+knn"])
def test_fusion_survives_odd_pools_and_label_sets(prior):
    """Two rows, a constant column, exact duplicates; then labels that leave no unlabeled sample, and
    every sample labeled anomalous: the loop keeps scoring, with finite scores."""
    rng = np.random.default_rng(0)
    for X in (rng.normal(size=(2, 3)), np.c_[rng.normal(size=(40, 3)), np.ones(40)],
              np.repeat(rng.normal(size=(10, 4)), 5, axis=0)):
        det = Fusion(prior=prior).fit(X)
        y = np.full(len(X), -1)
        y[-1] = 1
        det.fit(X, y, warm_start=True)
        det.fit(X, np.full(len(X), -1), warm_start=True)
        assert np.isfinite(det.decision_function(X)).all()
    assert np.isfinite(IsolationForest().fit(X, np.full(len(X), -1)).decision_function(X)).all()
    assert np.isfinite(KNN().fit(X, np.full(len(X), -1)).decision_function(X)).all()


def test_fusion_training_scores_come_from_the_fit_and_equal_a_scoring_pass(cardio):
    det = Fusion(prior="iforest+knn").fit(cardio.X)
    top = np.argsort(-det.decision_scores_)[:20]
    y = np.zeros(len(cardio.X), dtype=int)
    y[top] = np.where(cardio.truth[top] == 1, -1, 1)
    det.fit(cardio.X, y, warm_start=True)
    assert np.array_equal(det.decision_scores_, det.decision_function(cardio.X))


def two_views(n: int = 600, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """'Features' in which the anomalies look normal, then 'pixels' in which they stand out."""
    rng = np.random.default_rng(seed)
    truth = np.zeros(n, dtype=int)
    truth[rng.choice(n, n // 10, replace=False)] = 1
    feats = rng.normal(size=(n, 16))
    pixels = rng.random((n, 64)) * 0.2
    pixels[truth == 1, :8] += 0.5  # a stroke the features do not see
    return np.hstack([feats, pixels]).astype(np.float32), truth


def assert_a_saved_model_scores_the_same(det: Fusion, X: np.ndarray, folder: Path) -> None:
    det.save(folder / "m.pt")
    again = Fusion.load(folder / "m.pt", device="cpu")
    assert np.array_equal(again.decision_function(X), det.decision_function(X))


def test_fusion_two_views_first_ranks_on_the_features_then_follows_the_view_that_finds_anomalies(tmp_path):
    X, truth = two_views()
    det = Fusion(prior="knn", scale="l2", feature_columns=16).fit(X)
    alone = Fusion(prior="knn", scale="l2").fit(X[:, :16])
    assert np.allclose(det.decision_function(X), alone.decision_function(X[:, :16]))  # pixels unused before labels
    assert det.embed(X).shape == (len(X), 16)  # the map is the features' space
    y = np.zeros(len(X), dtype=int)
    for _ in range(3):
        scores = det.decision_function(X)
        left = np.flatnonzero(y == 0)
        top = left[np.argsort(-scores[left])[:20]]
        y[top] = np.where(truth[top] == 1, -1, 1)
        det.fit(X, y, warm_start=True)
    weights = det.state_["weights"]
    assert {"linear+pixels", "kernel+pixels", "labeled+pixels", "pixels"} <= set(weights)
    pixel_view = sum(float(w) for name, w in weights.items() if "pixels" in name)
    assert pixel_view > 0.8  # the Hedge followed the view that told the anomalies apart
    rest = y == 0
    assert roc_auc(truth[rest], det.decision_function(X)[rest]) > 0.95
    assert_a_saved_model_scores_the_same(det, X, tmp_path)


def test_fusion_needs_pixel_columns_after_its_features():
    X, _ = two_views(n=50)
    with pytest.raises(ValueError, match="no pixel columns"):
        Fusion(feature_columns=80).fit(X)


def test_fusion_two_view_first_ranking_finds_what_either_view_sees(tmp_path):
    """prior "knn+pixels": the larger robust z of the features' and the pixels' kNN distance, so
    anomalies seen only in the pixels rank high, and so do those seen only in the features."""
    rng = np.random.default_rng(1)
    n = 600
    feats, pixels = rng.normal(size=(n, 16)), rng.random((n, 64)) * 0.2
    odd = rng.choice(n, 60, replace=False)
    for i in odd[:30]:  # each its own stroke, which only the pixels see
        pixels[i, rng.choice(64, 8, replace=False)] += 0.8
    feats[odd[30:]] *= 4.0  # far out in the features, plain pixels
    X, truth = np.hstack([feats, pixels]).astype(np.float32), np.isin(np.arange(n), odd).astype(int)
    both = Fusion(prior="knn+pixels", scale="standard", feature_columns=16).fit(X)
    features = Fusion(prior="knn", scale="standard", feature_columns=16).fit(X)
    assert roc_auc(truth, both.decision_scores_) > 0.97
    assert roc_auc(truth, features.decision_scores_) < 0.8
    assert np.allclose(both.decision_function(X), both.decision_scores_)  # new samples on the pool's scale
    pool_z = both.state_["pool_pixel_knn"]
    y = np.zeros(len(X), dtype=int)
    y[np.argsort(-both.decision_scores_)[:20]] = -1
    both.fit(X, y, warm_start=True)
    assert both.state_["pool_pixel_knn"] is pool_z  # a warm start keeps the pixels' kNN pass
    assert_a_saved_model_scores_the_same(both, X, tmp_path)


def test_fusion_two_view_prior_needs_two_views():
    X, _ = two_views(n=50)
    with pytest.raises(ValueError, match="needs two views"):
        Fusion(prior="knn+pixels").fit(X)


def test_the_default_loop_sees_gray_images_in_two_views_and_colour_photos_through_their_features():
    from semiad import defaults

    assert defaults.representation_for("image", "fusion", (1, 28, 28)) == defaults.FEATURES_AND_PIXELS
    assert defaults.representation_for("image", "fusion", (3, 32, 32)) == defaults.FEATURES
    assert defaults.representation_for("image", "fusion") == defaults.FEATURES_AND_PIXELS  # shape unknown
    assert defaults.representation_for("image", "knn", (1, 28, 28)) == defaults.FEATURES
    assert defaults.representation_for("image", "deepsad", (3, 32, 32)) == defaults.PIXELS
    assert defaults.representation_for("tabular", "fusion", (12,)) == defaults.PIXELS
    colour = defaults.method_params("fusion", "image", defaults.FEATURES, 400, (3, 32, 32))
    assert colour["prior"] == "knn" and colour["feature_columns"] == 0


def test_the_default_first_ranking_uses_the_pixels_of_gray_images_only():
    from semiad import defaults

    both, feats = defaults.FEATURES_AND_PIXELS, defaults.FEATURES
    assert defaults.classical_params("fusion", "image", both, (1, 28, 28))["prior"] == "knn+pixels"
    assert defaults.classical_params("fusion", "image", both, (3, 32, 32))["prior"] == "knn"  # colour photos
    assert defaults.classical_params("fusion", "image", feats, (1, 28, 28))["prior"] == "knn"  # one view
    assert defaults.classical_params("fusion", "tabular", defaults.PIXELS, (12,))["prior"] == "iforest"


def test_a_fusion_model_from_before_the_robust_z_first_ranking_is_refitted_on_retrain(cardio):
    det = Fusion().fit(cardio.X)
    for key in [k for k in det.state_ if k.startswith("zscale_")]:
        det.state_.pop(key)  # what a model file written before 2026-11-29 holds
    with pytest.raises(ValueError, match="retrain it"):
        det.decision_function(cardio.X[:5])
    y = np.zeros(len(cardio.X), dtype=int)
    y[np.argsort(-det.decision_scores_)[:10]] = -1
    det.fit(cardio.X, y, warm_start=True)  # a Retrain click on such a model refits its first ranking
    fresh = Fusion().fit(cardio.X).fit(cardio.X, y, warm_start=True)
    rows = cardio.X.astype(np.float64)
    ours, theirs = det._raw_scores(rows), fresh._raw_scores(rows)
    assert set(ours) == set(theirs) == {"prior", "linear", "kernel"}
    for name in ours:  # every scorer as a fresh model's; only the weights differ: the old file's last
        assert np.allclose(ours[name], theirs[name])  # batch could not be graded, the fresh model's was


def correlated_table(n: int = 800, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Ten columns on a plane (rank 2) that the anomalies leave, then forty near-constant columns in
    the same unit: the raw columns' PCA sees the anomalies at once; z-scoring blows the forty up."""
    rng = np.random.default_rng(seed)
    truth = np.zeros(n, dtype=int)
    truth[rng.choice(n, n // 10, replace=False)] = 1
    basis = rng.normal(size=(2, 10))
    signal = rng.normal(size=(n, 2)) @ basis
    off = rng.normal(size=(n, 10))
    off -= off @ np.linalg.pinv(basis) @ basis  # a step off the plane
    signal[truth == 1] += 0.63 * off[truth == 1] / np.linalg.norm(off[truth == 1], axis=1, keepdims=True)
    return np.hstack([signal, rng.normal(size=(n, 40)) * 0.01]), truth


def loop_finds(det: Fusion, X: np.ndarray, truth: np.ndarray, rounds: int = 4) -> int:
    y, found = np.zeros(len(X), dtype=int), 0
    for _ in range(rounds):  # review the top 20 unlabeled, refit
        scores = det.decision_function(X)
        left = np.flatnonzero(y == 0)
        top = left[np.argsort(-scores[left], kind="stable")[:20]]
        y[top] = np.where(truth[top] == 1, -1, 1)
        found += int(truth[top].sum())
        det.fit(X, y, warm_start=True)
    return found


def test_fusion_raw_view_follows_the_raw_columns_when_they_find_the_anomalies(tmp_path):
    X, truth = correlated_table()
    plain, raw = Fusion().fit(X), Fusion(raw_view=True).fit(X)
    assert np.array_equal(plain.decision_scores_, raw.decision_scores_)  # no part before a label
    without, found = loop_finds(plain, X, truth), loop_finds(raw, X, truth)
    assert found >= 40 > 20 > without  # of the 80 reviewed
    weights = raw.state_["weights"]
    assert {"pca", "labeled+raw"} <= set(weights) and not {"linear+raw", "kernel+raw"} & set(weights)
    assert float(weights["pca"]) > 0.8
    assert_a_saved_model_scores_the_same(raw, X, tmp_path)


def test_fusion_raw_view_scorers_are_the_users_own_pca_ranking_and_logistic_loop():
    from sklearn.datasets import load_digits
    from sklearn.decomposition import PCA
    from sklearn.linear_model import LogisticRegression

    X = load_digits().data[:600]
    truth = (load_digits().target[:600] >= 7).astype(int)
    det = Fusion(raw_view=True).fit(X)
    y = np.zeros(len(X), dtype=int)
    top = np.argsort(-det.decision_scores_)[:40]
    y[top] = np.where(truth[top] == 1, -1, 1)
    det.fit(X, y, warm_start=True)
    raw = det._raw_scores(X)
    pca = PCA(n_components=0.9).fit(X)  # the static PCA ranking: error from 90% of the variance
    assert np.allclose(raw["pca"], ((X - pca.inverse_transform(pca.transform(X))) ** 2).sum(axis=1), rtol=1e-6)
    Z = PCA(n_components=50).fit_transform(X)  # the logistic loop: balanced, on the labeled samples alone
    loop = LogisticRegression(class_weight="balanced", max_iter=1000).fit(Z[top], truth[top])
    assert np.allclose(raw["labeled+raw"], loop.decision_function(Z), atol=1e-4)


def test_raw_view_is_for_tables():
    from semiad import defaults

    assert defaults.classical_params("fusion", "tabular", defaults.PIXELS, (12,))["raw_view"] is True
    assert defaults.classical_params("fusion", "image", defaults.FEATURES, (3, 32, 32))["raw_view"] is False
    X, _ = two_views(n=50)
    with pytest.raises(ValueError, match="raw_view is for tables"):
        Fusion(raw_view=True, feature_columns=16).fit(X)


def test_a_table_of_feature_vectors_is_ranked_as_image_features(tmp_path):
    from semiad import defaults
    from semiad.detectors import BaseDetector
    from semiad.detectors.classical import looks_like_feature_vectors

    rng = np.random.default_rng(0)
    # like embeddings: many real-valued columns; normals near a few directions, anomalies off them
    basis = rng.normal(size=(8, 160))
    normal = rng.normal(size=(380, 8)) @ basis + 0.3 * rng.normal(size=(380, 160))
    anomalous = 0.5 * rng.normal(size=(20, 160))
    X = np.vstack([anomalous, normal]).astype(np.float32)
    params = defaults.method_params("fusion", "tabular", defaults.PIXELS, len(X), (160,))
    assert params["vector_gate"] is True and params["prior"] == "iforest"
    det = Fusion(**params).fit(X)
    assert det.treated_as_feature_vectors() and det.first_ranking_parts() == ["kNN among the features"]
    assert "raw_space" not in det.state_  # no raw view, even once labels come
    y = np.zeros(len(X), dtype=int)
    y[:3], y[25:28] = -1, 1
    det.fit(X, y, warm_start=True)
    assert "raw_space" not in det.state_ and "labeled+raw" not in det.scorer_weights()
    det.save(tmp_path / "m.pt")
    assert BaseDetector.load(tmp_path / "m.pt").treated_as_feature_vectors()  # decided once, kept
    # measurements are not feature vectors: few columns, or integer ones, or mostly constant ones
    assert not looks_like_feature_vectors(X[:, :100])
    assert not looks_like_feature_vectors(np.round(X * 10))
    assert not looks_like_feature_vectors(np.where(X > 1.5, X, 0.0))
    assert not Fusion(**params).fit(X[:, :100]).treated_as_feature_vectors()
    assert not Fusion(**{**params, "vector_gate": False}).fit(X).treated_as_feature_vectors()
    assert not Fusion(**{**params, "raw_view": False, "feature_columns": 140}).fit(X).treated_as_feature_vectors()


def test_the_two_view_first_ranking_lets_the_pixels_in_only_on_a_plain_background():
    """Strokes on a plain background (digits, scans): the pixels' kNN joins the first ranking. Photos,
    whose pixels have no common background value, are ranked by the features alone."""
    from semiad.detectors.classical import PLAIN_BACKGROUND, background_share

    rng = np.random.default_rng(2)
    n = 400
    feats = rng.normal(size=(n, 16))
    strokes = np.where(rng.random((n, 64)) < 0.85, 0.0, rng.random((n, 64)))  # mostly background
    photos = rng.random((n, 64))  # every value equally common
    assert background_share(strokes) > PLAIN_BACKGROUND > background_share(photos)
    alone = Fusion(prior="knn", scale="standard").fit(feats).decision_scores_
    on_photos = Fusion(prior="knn+pixels", scale="standard", feature_columns=16).fit(np.hstack([feats, photos]))
    assert np.allclose(on_photos.decision_scores_, alone)
    assert on_photos.first_ranking_parts() == ["kNN among the features"]  # what Train shows
    assert on_photos.pixels_kept_out()
    on_strokes = Fusion(prior="knn+pixels", scale="standard", feature_columns=16).fit(np.hstack([feats, strokes]))
    assert on_strokes.first_ranking_parts() == ["kNN among the features", "kNN among the pixels"]
    assert not on_strokes.pixels_kept_out()
    assert not np.allclose(on_strokes.decision_scores_, alone)


def test_fusion_keeps_following_a_first_ranking_whose_batches_are_all_anomalies():
    found = 0
    for seed in (0, 1):
        table = clustered_table(seed, n_normal=3000, per_cluster=60)  # shaped like ODDS' shuttle
        X, truth = table.X, table.truth.astype(int)
        det = Fusion(raw_view=True).fit(X)
        found += loop_finds(det, X, truth, rounds=5)
        weights = det.scorer_weights()
        assert weights["prior"] > 0.5 and weights["prior"] == max(weights.values())
    assert found >= 195  # of 200 reviewed (mixed at equal weights until a batch held a normal: 183)


def test_scorers_without_a_grade_share_one_weight_and_do_not_outvote_a_perfect_first_ranking():
    """A small table like those of trial I (session 14): 30 anomalies shifted in one wide column. The forest
    ranks them on top; its first batch is all anomalies. Three scorers join, at a weight each they took 0.3
    of the score and sank some of the anomalies left (2 rounds found 23 of 30)."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(1000, 4))
    X[:, 0] *= 577.0
    truth = np.zeros(1000, dtype=int)
    truth[rng.choice(1000, 30, replace=False)] = 1
    X[truth == 1, 0] += 20_000.0
    det = Fusion(raw_view=True).fit(X)
    y = np.zeros(1000, dtype=int)
    top = np.argsort(-det.decision_scores_, kind="stable")[:20]
    assert truth[top].all()  # the first batch: anomalies alone
    y[top] = -1
    det.fit(X, y, warm_start=True)
    weights = det.scorer_weights()
    fresh = [n for n in weights if n != "prior"]
    assert len(fresh) >= 3 and weights["prior"] > 0.85
    assert sum(weights[n] for n in fresh) == pytest.approx(weights["prior"] * np.exp(-det.eta * 0.5), rel=0.05)
    rest = y == 0
    assert roc_auc(truth[rest], det.decision_scores_[rest]) > 0.99  # 0.976 at a weight each
    assert loop_finds(Fusion(raw_view=True).fit(X), X, truth, rounds=2) >= 29  # of 30 in 40 reviews (was 23)


def test_fusion_grades_batches_of_anomalies_alone_only_until_a_batch_holds_both_classes(cardio):
    truth = cardio.truth.astype(int)
    det = Fusion().fit(cardio.X)
    y = np.zeros(len(truth), dtype=int)
    anomalies, normals = np.flatnonzero(truth == 1), np.flatnonzero(truth == 0)
    y[anomalies[:10]] = -1  # anomalies alone: graded against the pool
    det.fit(cardio.X, y, warm_start=True)
    assert set(det.state_["perf"]) == {"prior"} and det.state_["perf"]["prior"] > 0
    y[anomalies[10:20]], y[normals[:10]] = -1, 1  # both classes: graded by the AUC among them
    det.fit(cardio.X, y, warm_start=True)
    graded = dict(det.state_["perf"])
    assert {"linear", "kernel"} <= set(graded)
    y[anomalies[20:30]] = -1  # anomalies alone again: no longer graded
    det.fit(cardio.X, y, warm_start=True)
    assert det.state_["perf"] == graded
    y[normals[10:30]] = 1  # normals alone: never graded
    det.fit(cardio.X, y, warm_start=True)
    assert det.state_["perf"] == graded


def test_a_fusion_model_from_before_the_rule_does_not_grade_anomalies_alone_after_both_classes(cardio):
    truth = cardio.truth.astype(int)
    det = Fusion().fit(cardio.X)
    y = np.zeros(len(truth), dtype=int)
    anomalies, normals = np.flatnonzero(truth == 1), np.flatnonzero(truth == 0)
    y[anomalies[:10]], y[normals[:10]] = -1, 1
    det.fit(cardio.X, y, warm_start=True)
    det.state_.pop("graded_both")  # what a model file written before 2026-11-29 (session 8) holds
    graded = dict(det.state_["perf"])
    y[anomalies[10:20]] = -1
    det.fit(cardio.X, y, warm_start=True)
    assert det.state_["perf"] == graded


def test_the_rbf_scorers_score_by_chunks_the_same_as_at_once(cardio, monkeypatch):
    from semiad.detectors import classical

    det = Fusion().fit(cardio.X)
    y = np.zeros(len(cardio.X), dtype=int)
    top = np.argsort(-det.decision_scores_)[:40]
    y[top] = np.where(cardio.truth[top] == 1, -1, 1)
    det.fit(cardio.X, y, warm_start=True)
    assert any(name.startswith("kernel") for name in det.scorer_weights())
    rows = cardio.X.astype(np.float64)
    at_once = det._raw_scores(rows)
    monkeypatch.setattr(classical, "KERNEL_CHUNK", 7)  # 1831 rows: 262 chunks, the last one short
    by_chunks = det._raw_scores(rows)
    assert by_chunks.keys() == at_once.keys()
    for name, scores in at_once.items():  # the same up to rounding (BLAS sums small blocks in another order)
        assert np.allclose(by_chunks[name], scores, rtol=1e-9, atol=1e-9), name


@pytest.mark.parametrize("method", [Fusion, IsolationForest])
def test_a_fit_that_would_not_fit_in_memory_is_refused_before_it_starts(method, monkeypatch):
    from semiad import data

    X = np.random.default_rng(0).random((2000, 30)).astype(np.float32)
    monkeypatch.setattr(data, "available_memory", lambda: 2 * 2**20)  # 2 MB free; the fit asks ~5 MB
    det = method()
    with pytest.raises(MemoryError, match=r"2000×30 inputs needs about 5 MB of memory, but only 2 MB is free"):
        det.fit(X)
    assert not det.fitted
    monkeypatch.setattr(data, "available_memory", lambda: 64 * 2**20)
    assert det.fit(X).fitted


def test_the_classical_fits_report_steps_in_words_without_a_loss(cardio):
    """The sidebar shows a run's phase: "first ranking", not "prior epoch 0/1 · loss 0" (they train no network)."""
    for det in (Fusion(), IsolationForest(), KNN()):
        reports = []
        det.fit(cardio.X, progress=reports.append)
        assert not det.trains_network and reports and all(p.loss is None for p in reports)
        assert reports[-1].phase == "fitted" and reports[-1].fraction == 1.0
        if isinstance(det, Fusion):
            assert [p.phase for p in reports] == ["first ranking", "scorers on the labels", "fitted"]
