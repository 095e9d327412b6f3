"""GANomaly detector: real (small) networks, real training steps, no mocks."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from semiad.detectors import GANomaly, make
from tests.toydata import images

SMALL = {"nz": 8, "ngf": 8, "ndf": 8, "hidden": (16, 8), "batch_size": 16, "device": "cpu", "seed": 0}


class Recording(GANomaly):
    """The real GANomaly, keeping a copy of every batch its training loop trains on."""

    def _train_step(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        self.seen = getattr(self, "seen", []) + [x.detach().clone()]
        return super()._train_step(x)


@pytest.mark.parametrize("shape", [(1, 28, 28), (3, 32, 32), (12,)])
def test_shapes_per_input_kind(shape: tuple[int, ...]) -> None:
    if len(shape) == 3:
        X = images(40, shape[0], shape[1])
    else:
        X = np.random.default_rng(0).normal(size=(40, 12)).astype(np.float32)
    det = GANomaly(epochs=1, **SMALL).fit(X)
    assert det.decision_function(X).shape == (40,)
    assert det.embed(X).shape == (40, 8)
    rec = det.reconstruct(X)
    assert rec.shape == X.shape and rec.dtype == np.float32
    if len(shape) == 3:
        assert det.net_shape_ == (shape[0], 32, 32)  # 28 → 32 inside the model
        assert rec.min() >= 0.0 and rec.max() <= 1.0
        x_hat, z, z_hat = det.gen_(det._prepare(det._to_tensor(X[:2])))
        assert x_hat.shape == (2, shape[0], 32, 32) and z.shape == z_hat.shape == (2, 8)


def test_a_few_steps_lower_the_generator_loss() -> None:
    X = images(64)
    losses: list[float] = []
    GANomaly(epochs=10, report_every=1, **SMALL).fit(X, progress=lambda p: losses.append(p.loss))
    assert len(losses) == 40  # 4 batches of 16 per epoch, one report per step
    assert np.mean(losses[-5:]) < 0.95 * np.mean(losses[:5])  # Adam at lr 2e-4: slow but steady
    assert sum(b < a for a, b in zip(losses, losses[1:])) > 0.8 * len(losses)


def test_labeled_anomalies_never_enter_a_training_batch() -> None:
    X = images(48)
    X[:8] = 1.0  # labeled anomalies: the only all-white images, +1 after scaling
    y = np.zeros(48, dtype=np.int64)
    y[:8] = -1
    y[8:12] = 1
    det = Recording(epochs=3, **SMALL).fit(X, y)
    det.fit(X, y, warm_start=True)
    seen = torch.cat(det.seen)
    assert len(det.seen) == 3 * 2 + 2  # 40 kept samples: 2 batches per epoch (+1 epoch of warm start)
    assert seen.shape[1:] == (1, 32, 32)
    assert seen.min() >= -1.0 and seen.max() < 0.9  # scaled to [−1, 1]; no all-white image
    assert not np.isin(np.arange(8), det.train_index_).any()
    assert len(seen) == 8 * 16 and len(np.unique(det.train_index_)) == 40


def test_warm_start_continues_from_the_saved_optimizer_state(tmp_path) -> None:
    X = images(48)
    det = GANomaly(epochs=2, finetune_steps=3, **SMALL).fit(X)
    assert det.n_steps_ == 6
    det.save(tmp_path / "g.pt")
    back = GANomaly.load(tmp_path / "g.pt", device="cpu")
    for opt in (back.opt_g_, back.opt_d_):
        assert all(float(s["step"]) == 6 for s in opt.state_dict()["state"].values())
    before = {k: v.clone() for k, v in back.gen_.state_dict().items()}
    back.fit(X, warm_start=True)
    for opt in (back.opt_g_, back.opt_d_):
        assert all(float(s["step"]) == 9 for s in opt.state_dict()["state"].values())
    assert back.n_steps_ == 9 and back.n_fits_ == 2
    assert not torch.equal(before["encoder1.0.weight"], back.gen_.state_dict()["encoder1.0.weight"])
    # a fresh fit (no warm start) starts the optimizers over
    det.fit(X)
    assert det.n_steps_ == 6 and all(float(s["step"]) == 6 for s in det.opt_g_.state_dict()["state"].values())


def test_fast_setting_fixed_step_counts_and_make() -> None:
    assert GANomaly.FAST["ngf"] < GANomaly().ngf and GANomaly.FAST["steps"] <= 300
    det = make("ganomaly", **{**GANomaly.FAST, "steps": 5, "finetune_steps": 2, "device": "cpu", "batch_size": 16})
    assert isinstance(det, GANomaly) and det.ngf == 16 and det.nz == 32
    X = images(32)
    det.fit(X)  # 2 batches per epoch; a fixed step count ignores epochs
    assert det.n_steps_ == 5 and det.decision_function(X).shape == (32,)
    det.fit(X, warm_start=True)
    assert det.n_steps_ == 7


def test_bf16_precision_trains_like_fp32_and_scores_in_float32() -> None:
    X = images(64)
    runs = {}
    for precision in ("fp32", "bf16"):
        losses: list[float] = []
        det = GANomaly(epochs=10, report_every=1, precision=precision, **SMALL)
        det.fit(X, progress=lambda p, out=losses: out.append(p.loss))
        runs[precision] = (np.array(losses), det.decision_function(X))
    (l32, _), (l16, s16) = runs["fp32"], runs["bf16"]
    assert not np.array_equal(l16, l32)  # autocast really changed the arithmetic
    assert np.mean(l16[-5:]) < 0.95 * np.mean(l16[:5])  # and it still learns
    assert np.allclose(l16, l32, rtol=0.05)  # about as fp32 does
    assert np.isfinite(s16).all() and len(np.unique(s16)) == len(s16)
    with pytest.raises(ValueError, match="precision"):
        GANomaly(precision="fp16")
