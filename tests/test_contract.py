"""The detector contract, written once for every detector in the registry: a sample's score does not
depend on its batch, save/load gives the same model (weights, optimizer state, threshold), a warm start
continues the model, bad inputs raise a clear ValueError, and `should_stop` ends a fit with
TrainingStopped. Tiny settings: the whole file runs in seconds."""
from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch

from semiad.detectors import ALL, BaseDetector, TrainingStopped, make, registry
from tests.toydata import images, table

# per method: settings small enough for a few hundred milliseconds per fit on 40 28×28 images
TINY: dict[str, dict] = {
    "fusion": {"prior": "iforest+knn", "scale": "none", "n_estimators": 20, "n_landmarks": 10},
    "iforest": {"scale": "none", "n_estimators": 20},
    "knn": {"scale": "none", "k": 3},
    "deepsad": {"pretrain_epochs": 1, "epochs": 1, "finetune_epochs": 1, "batch_size": 16},
    "ganomaly": {"nz": 8, "ngf": 8, "ndf": 8, "steps": 3, "finetune_steps": 2, "batch_size": 16},
    "toll": {"width": 4, "z_dim": 6, "steps": 3, "finetune_steps": 2, "batch_size": 16},
    "esad": {"rep_dim": 16, "epochs": 1, "finetune_epochs": 1, "batch_size": 16},
    "ama": {"nz": 6, "ndf": 4, "gen_ch": 8, "critic_ch": 8, "n_critic": 1, "epochs": 1, "finetune_epochs": 1,
            "batch_size": 16},
}
METHODS = list(registry())
N = 40
# float32 rounding differs between batch sizes (convolution algorithms); AMA's |d − μ|/σ divides it by a small σ
RTOL = {"ama": 1e-3}


def test_every_registered_detector_is_covered():
    assert set(TINY) == set(METHODS) == {cls.method for cls in ALL}


def detector(method: str, **over) -> BaseDetector:
    return make(method, device="cpu", seed=0, **{**TINY[method], **over})


def labels() -> np.ndarray:
    y = np.zeros(N, dtype=np.int64)
    y[:3], y[3:6] = -1, 1
    return y


@pytest.fixture(scope="module")
def X() -> np.ndarray:
    """Images for the checks on a fitted model (conv nets, BatchNorm, resizing); tables (MLPs, fast)
    for the checks that fit several times."""
    return images(N)


@pytest.fixture(scope="module")
def T() -> np.ndarray:
    return table(N)


@pytest.fixture(scope="module", params=METHODS)
def fitted(request, X) -> BaseDetector:
    """One fitted detector per method, shared by the read-only checks."""
    return detector(request.param).fit(X, labels())


def test_a_sample_scores_the_same_alone_and_in_a_batch(fitted, X):
    together = fitted.decision_function(X)
    alone = np.array([fitted.decision_function(X[i:i + 1])[0] for i in (0, 17, 39)])
    np.testing.assert_allclose(alone, together[[0, 17, 39]], rtol=RTOL.get(fitted.method, 1e-4), atol=1e-9)
    assert together.shape == (N,) and together.dtype == np.float64 and np.std(together) > 0


def test_training_scores_threshold_and_predict_follow_contamination(fitted, X):
    np.testing.assert_array_equal(fitted.decision_scores_, fitted.decision_function(X))
    assert fitted.threshold_ == pytest.approx(np.quantile(fitted.decision_scores_, 1 - fitted.contamination))
    flagged = fitted.predict(X)
    assert set(np.unique(flagged)) <= {0, 1} and flagged.sum() == np.sum(fitted.decision_scores_ > fitted.threshold_)
    assert flagged.mean() <= fitted.contamination + 1 / N


def test_save_load_round_trip(fitted, X, tmp_path):
    fitted.representation_ = {"kind": "pixels"}
    fitted.save(tmp_path / "m.pt")
    back = BaseDetector.load(tmp_path / "m.pt", device="cpu")
    assert type(back) is type(fitted) and back.get_params() == {**fitted.get_params(), "device": "cpu"}
    assert back.representation_ == {"kind": "pixels"} and back.threshold_ == fitted.threshold_
    np.testing.assert_array_equal(back.decision_function(X), fitted.decision_function(X))
    np.testing.assert_array_equal(back.embed(X), fitted.embed(X))
    np.testing.assert_array_equal(back.predict(X), fitted.predict(X))
    if fitted.can_reconstruct:
        np.testing.assert_array_equal(back.reconstruct(X), fitted.reconstruct(X))


class _Payload:
    """Stands in for code hidden in a model file: loading must not construct it."""

    def __reduce__(self):
        return (print, ("pickle payload ran",))


@pytest.mark.parametrize("method", METHODS)
def test_loading_a_file_with_code_is_refused(method, tmp_path, capsys):
    cls = registry()[method]
    path = tmp_path / "evil.pt"
    torch.save({"format": "semiad-detector-1", "method": method, "payload": _Payload()}, path)
    with pytest.raises(pickle.UnpicklingError):
        cls.load(path)
    plain = tmp_path / "plain.pkl"
    plain.write_bytes(pickle.dumps({"payload": _Payload()}, protocol=2))
    with pytest.raises(pickle.UnpicklingError):
        BaseDetector.load(plain)
    assert "pickle payload ran" not in capsys.readouterr().out


@pytest.mark.parametrize("method", METHODS)
def test_a_warm_start_continues_the_saved_model_as_it_would_the_live_one(method, T, tmp_path):
    X = T
    y = labels()
    det = detector(method).fit(X, y)
    det.save(tmp_path / "m.pt")
    back = BaseDetector.load(tmp_path / "m.pt", device="cpu")
    y[10:12] = -1  # a new round of labels
    warm = {p.name: det.get_params()[p.name] for p in type(det).app_settings if p.warm}
    back.set_params(**warm)  # as the worker applies a retrain's settings
    det.fit(X, y, warm_start=True)
    back.fit(X, y, warm_start=True)
    assert det.n_fits_ == back.n_fits_ == 2
    np.testing.assert_allclose(back.decision_function(X), det.decision_function(X), rtol=1e-5, atol=1e-7)
    with pytest.raises(ValueError, match="warm start needs inputs of shape"):
        back.fit(table(N, d=5), warm_start=True)


@pytest.mark.parametrize("method", METHODS)
def test_bad_inputs_raise_a_clear_value_error(method, T):
    X = T
    det = detector(method)
    with pytest.raises(RuntimeError, match="fit"):
        det.decision_function(X[:3])
    with pytest.raises(ValueError, match="N×D"):
        det.fit(X[0])
    with pytest.raises(ValueError, match="NaN"):
        det.fit(np.full_like(X, np.nan))
    with pytest.raises(ValueError, match="y has"):
        det.fit(X, np.zeros(N - 1))
    with pytest.raises(ValueError, match="semi-targets"):
        det.fit(X, np.full(N, 2))
    with pytest.raises(ValueError, match="contamination"):
        detector(method, contamination=0.9).fit(X)
    with pytest.raises(ValueError, match="no parameter"):
        det.set_params(not_a_setting=1)
    det.fit(X[:20])
    with pytest.raises(ValueError, match=r"expected inputs of shape .*: this model takes \d+ values each .*, "
                                         r"these are 5 values each"):
        det.decision_function(table(3, d=5))
    with pytest.raises(ValueError, match="these are 28×28 colour images"):
        det.decision_function(np.zeros((2, 3, 28, 28), np.float32))


@pytest.mark.parametrize("method", METHODS)
def test_should_stop_ends_the_fit_with_training_stopped(method, T):
    X = T
    calls = []

    def stop_at_once() -> bool:
        calls.append(1)
        return True

    det = detector(method)
    with pytest.raises(TrainingStopped):
        det.fit(X, should_stop=stop_at_once)
    assert calls
    asked = []

    def stop_on_second_ask() -> bool:  # lets the fit start, stops it at its next check
        asked.append(1)
        return len(asked) >= 2

    with pytest.raises(TrainingStopped):
        detector(method).fit(X, should_stop=stop_on_second_ask)
    det.fit(X)  # a stopped detector can be fitted again
    assert det.fitted
