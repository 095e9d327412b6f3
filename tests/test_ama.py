"""AMA (methods.md §4): real (narrow) networks, real training steps on tiny data, no mocks."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from semiad.detectors import AMA, make
from semiad.detectors.ama.loss import (
    ae_loss,
    critic_loss,
    deviation_score,
    gradient_penalty,
    interpolate,
    pair,
    sample_weights,
)
from tests.toydata import images, table

SMALL = {"nz": 6, "ndf": 4, "gen_ch": 8, "critic_ch": 8, "hidden": (16, 8), "batch_size": 8, "device": "cpu",
         "seed": 0}


def test_gradient_penalty_takes_the_norm_per_pixel_over_channels() -> None:
    grad = torch.zeros(2, 2, 3, 3)
    grad[:, 0], grad[:, 1] = 3.0, 4.0  # every pixel's channel vector has norm 5
    assert gradient_penalty(grad).item() == pytest.approx(16.0)  # (5 − 1)²
    flat = (torch.linalg.vector_norm(grad.flatten(1), dim=1) - 1) ** 2  # norm over the whole input: 15 → 196
    assert flat.mean().item() == pytest.approx(196.0)


def test_gradient_penalty_of_the_real_critic_has_per_pixel_shape_and_is_positive() -> None:
    det = AMA(epochs=0, **SMALL).fit(images(8, 3, 32))
    x = det._prepare(det._to_tensor(images(4, 3, 32)))
    x_hat = det.gen_(det.enc_(x)).detach()
    gp_in = pair(x, interpolate(x, x_hat, torch.rand(4, 1, 1, 1))).requires_grad_(True)
    (grad,) = torch.autograd.grad(det.critic_(gp_in)[0].sum(), gp_in, create_graph=True)
    assert grad.shape == (4, 6, 32, 32) and torch.linalg.vector_norm(grad, dim=1).shape == (4, 32, 32)
    gp = gradient_penalty(grad)
    assert gp.ndim == 0 and gp.item() > 0 and gp.requires_grad  # it trains the critic (double backward)


def test_critic_and_autoencoder_losses_on_a_constructed_example() -> None:
    l = sample_weights(torch.tensor([0, 1, -1]), anom_lambda=5.0)
    assert l.tolist() == [1.0, 1.0, -5.0]
    l = torch.tensor([1.0, -2.0])
    d_real, d_fake = torch.tensor([1.0, 2.0]), torch.tensor([3.0, 5.0])
    # mean(−l·D(x,x) + l·D(x,x̂)) = mean(−1 + 3, 4 − 10) = −2; + λ_gp·GP = 10 · 0.5
    assert critic_loss(d_real, d_fake, l, torch.tensor(0.5), 10.0).item() == pytest.approx(3.0)
    z = torch.tensor([[3.0, 4.0], [30.0, 40.0]])  # the anomaly's code is not regularised
    # −mean(l·D(x,x̂)) = −mean(3, −10) = 3.5; + λ_reg · mean ‖z‖ over l = +1 = 2 · 5
    assert ae_loss(d_fake, l, z, lambda_reg=2.0).item() == pytest.approx(13.5)
    assert ae_loss(d_fake, torch.tensor([-1.0, -1.0]), z).item() == pytest.approx(4.0)  # no normal: no reg


def test_score_is_two_sided() -> None:
    np.testing.assert_allclose(deviation_score(torch.tensor([0.0, 5.0, 10.0]), 5.0, 2.5).numpy(), [2, 0, 2])


@pytest.mark.parametrize("shape", [(1, 28, 28), (3, 32, 32), (12,)])
def test_shapes_per_input_kind(shape) -> None:
    X = images(16, shape[0], shape[1]) if len(shape) == 3 else table(16)
    det = AMA(epochs=1, **SMALL).fit(X)
    assert det.decision_function(X).shape == (16,) and det.embed(X).shape == (16, 6)
    if len(shape) == 3:
        assert det.net_shape_ == (shape[0], 32, 32)  # 28 → 32, nc kept
        x = det._prepare(det._to_tensor(X[:2]))
        assert det.gen_(det.enc_(x)).shape == (2, shape[0], 32, 32)
        assert det.critic_.blocks[0].conv1.parametrizations.weight.original.shape[1] == 2 * shape[0]
        assert x.min() >= -1.0 and x.max() <= 1.0
    assert det.critic_(torch.zeros(2, *((2 * shape[0],) + det.net_shape_[1:])))[1].shape == (2, 8)


def test_five_critic_steps_per_autoencoder_step_and_the_official_betas() -> None:
    det = AMA(epochs=2, **SMALL).fit(table(24))  # 3 batches per epoch
    steps = {k: {float(s["step"]) for s in o.state_dict()["state"].values()} for k, o in det._optimizers().items()}
    assert steps == {"opt_e": {6.0}, "opt_g": {6.0}, "opt_d": {30.0}}
    assert det.opt_d_.param_groups[0]["betas"] == det.opt_g_.param_groups[0]["betas"] == (0.0, 0.9)
    assert det.opt_e_.param_groups[0]["betas"] == (0.5, 0.9)


def test_gaussian_is_fitted_on_training_normals_and_refitted_after_a_warm_start() -> None:
    X = images(24)
    y = np.zeros(24, dtype=np.int64)
    y[:4] = -1
    det = AMA(epochs=1, finetune_epochs=1, **SMALL).fit(X, y)
    d = det.raw_distance(X[4:])
    assert det.mu_ == pytest.approx(d.mean(), rel=1e-5) and det.sigma_ == pytest.approx(d.std(ddof=1), rel=1e-4)
    np.testing.assert_allclose(det.decision_function(X), np.abs(det.raw_distance(X) - det.mu_) / det.sigma_,
                               rtol=1e-5)
    before = det.mu_
    det.fit(X, y, warm_start=True)
    assert det.mu_ != before and det.mu_ == pytest.approx(det.raw_distance(X[4:]).mean(), rel=1e-5)


def test_warm_start_keeps_all_three_optimizers_at_a_constant_small_lr(tmp_path) -> None:
    X = table(24)
    det = AMA(epochs=2, milestones=(1,), finetune_epochs=2, finetune_lr=1e-5, **SMALL).fit(X)
    assert det.opt_e_.param_groups[0]["lr"] == pytest.approx(3e-5)  # the first fit's schedule fired
    det.save(tmp_path / "a.pt")
    back = AMA.load(tmp_path / "a.pt", device="cpu")
    before = {k: v.clone() for k, v in back.enc_.state_dict().items()}
    back.fit(X, warm_start=True)
    for k, opt in back._optimizers().items():
        assert opt.param_groups[0]["lr"] == 1e-5, k  # constant: no milestone in a warm start
        assert {float(s["step"]) for s in opt.state_dict()["state"].values()} == ({60.0} if k == "opt_d" else {12.0})
    assert not torch.equal(before["0.weight"], back.enc_.state_dict()["0.weight"])


def test_fast_setting_and_make() -> None:
    det = make("ama", **{**AMA.FAST, "epochs": 1, "device": "cpu", "batch_size": 8})
    det.fit(images(16))
    assert det.critic_ch == 16 and det.decision_function(images(4)).shape == (4,)
