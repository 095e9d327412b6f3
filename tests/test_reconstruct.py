"""reconstruct(): every detector with a decoder returns x̂ in the inputs' scale and shape; Deep SAD has none."""
from __future__ import annotations

import numpy as np
import pytest

from semiad.detectors import AMA, ESAD, DeepSAD, GANomaly, Toll
from tests.toydata import images, table

TINY = {
    GANomaly: {"nz": 8, "ngf": 8, "ndf": 8, "hidden": (16, 8), "batch_size": 16, "epochs": 1},
    Toll: {"width": 4, "iters": 3, "batch_size": 16, "hidden": (16, 8)},
    ESAD: {"epochs": 1, "batch_size": 16},
    AMA: {"ndf": 4, "gen_ch": 8, "critic_ch": 8, "nz": 8, "epochs": 1, "batch_size": 16, "hidden": (16, 8)},
}


@pytest.mark.parametrize("cls", list(TINY), ids=lambda c: c.__name__)
@pytest.mark.parametrize("kind", ["gray", "table"])
def test_reconstruction_in_input_scale_and_shape(cls, kind) -> None:
    X = images(32) if kind == "gray" else table(32)
    det = cls(device="cpu", seed=0, **TINY[cls]).fit(X)
    assert det.can_reconstruct
    rec = det.reconstruct(X)
    assert rec.shape == X.shape and rec.dtype == np.float32 and np.isfinite(rec).all()
    if kind == "gray":
        assert rec.min() >= 0.0 and rec.max() <= 1.0
    else:  # back in the table's units: the reconstruction error is of the data's order, not of [0, 1]
        err = np.abs(rec - X).mean() / np.abs(X - X.mean(axis=0)).mean()
        assert 0.0 < err < 5.0
    np.testing.assert_allclose(det.reconstruct(X[:3]), rec[:3], rtol=1e-4, atol=1e-5)  # eval mode


def test_deep_sad_has_no_reconstruction() -> None:
    det = DeepSAD(pretrain_epochs=1, epochs=1, device="cpu").fit(images(16))
    assert not det.can_reconstruct
    with pytest.raises(NotImplementedError):
        det.reconstruct(images(2))
