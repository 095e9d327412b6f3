"""Toll (methods.md §6): real (narrow) networks, real training steps on tiny data, no mocks."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from semiad.detectors import Toll, make
from semiad.detectors.toll.loss import toll_loss, toll_score
from tests.toydata import images, table

SMALL = {"width": 4, "hidden": (16, 8), "z_dim": 6, "batch_size": 8, "device": "cpu", "seed": 0}


class Recording(Toll):
    """The real Toll, keeping a copy of every batch its training loop trains on."""

    def _train_step(self, x: torch.Tensor) -> torch.Tensor:
        self.seen = getattr(self, "seen", []) + [x.detach().clone()]
        return super()._train_step(x)


def test_loss_terms_are_plain_norms_and_beta_times_mean_latent_norm() -> None:
    x = torch.zeros(2, 1, 2, 2)
    x_hat = torch.tensor([[3.0, 4.0, 0.0, 0.0], [0.0, 0.0, 0.0, 1.0]]).view(2, 1, 2, 2)  # errors 5 and 1
    z = torch.tensor([[6.0, 8.0], [0.0, 0.0]])  # norms 10 and 0
    loss, terms = toll_loss(x, x_hat, z, beta=2.0)
    assert terms["rec"].item() == pytest.approx(3.0)  # mean(5, 1): not squared (that would be 13)
    assert terms["beta_norm"].item() == pytest.approx(2.0 * 5.0)  # β · mean ‖z‖ = 2 · mean(10, 0)
    assert loss.item() == pytest.approx(13.0)
    np.testing.assert_allclose(toll_score(x, x_hat, z, beta=2.0).numpy(), [5 + 20, 1 + 0])


@pytest.mark.parametrize("shape,net,beta,z_dim", [((1, 28, 28), "mnist", 1000.0, 128),
                                                  ((3, 32, 32), "cifar", 10.0, 64), ((12,), "mlp", 10.0, 16)])
def test_shapes_and_per_input_defaults(shape, net, beta, z_dim) -> None:
    X = images(16, shape[0], shape[1]) if len(shape) == 3 else table(16)
    det = Toll(iters=1, **{**SMALL, "z_dim": None}).fit(X)
    assert (det.net_, det.beta_, det.z_dim_) == (net, beta, z_dim)
    assert det.decision_function(X).shape == (16,)
    assert det.embed(X).shape == (16, z_dim)


def test_score_is_reconstruction_norm_plus_beta_latent_norm_in_eval_mode() -> None:
    X = table(24)
    det = Toll(iters=3, beta=0.5, **SMALL).fit(X)
    det.ae_.eval()
    with torch.no_grad():
        x = det._to_tensor(X)
        z = det.ae_.encode(x)
        manual = torch.linalg.vector_norm(x - det.ae_.decode(z), dim=1) + 0.5 * torch.linalg.vector_norm(z, dim=1)
    np.testing.assert_allclose(det.decision_function(X), manual.numpy(), rtol=1e-5)
    np.testing.assert_allclose(det.embed(X), z.numpy(), rtol=1e-6)


def test_inputs_are_z_scored_with_statistics_frozen_at_the_first_fit() -> None:
    X = images(16, 3, 32) * np.array([1.0, 0.5, 0.2], dtype=np.float32)[None, :, None, None]
    det = Toll(iters=1, **SMALL).fit(X)
    x = det._to_tensor(X).numpy()
    np.testing.assert_allclose(x.mean(axis=(0, 2, 3)), 0.0, atol=1e-4)
    np.testing.assert_allclose(x.std(axis=(0, 2, 3)), 1.0, atol=1e-3)
    det.fit(X * 2, warm_start=True)
    assert det.scaler_["std"].ravel() == pytest.approx(X.std(axis=(0, 2, 3)), rel=1e-4)


def test_the_beta_term_pulls_latent_codes_toward_the_origin() -> None:
    X = table(64)
    plain = Toll(beta=0.0, iters=60, lr=1e-2, **SMALL).fit(X)
    toll = Toll(beta=10.0, iters=60, lr=1e-2, **SMALL).fit(X)
    norms = [np.linalg.norm(d.embed(X), axis=1).mean() for d in (plain, toll)]
    assert norms[1] < 0.5 * norms[0]


def test_labeled_anomalies_never_enter_a_training_batch() -> None:
    X = table(40)
    X[:6] = 50.0  # labeled anomalies: the only rows far outside the rest
    y = np.zeros(40, dtype=np.int64)
    y[:6] = -1
    y[6:10] = 1
    det = Recording(iters=5, finetune_iters=3, **SMALL).fit(X, y)
    det.fit(X, y, warm_start=True)
    seen = torch.cat(det.seen)
    assert len(det.seen) == 8 and len(seen) == 8 * 8  # 34 kept rows: batches of 8 (drop_last)
    assert seen.abs().max() < 20  # z-scored rows; a row of 50s would stand far out
    assert not np.isin(np.arange(6), det.train_index_).any() and len(det.train_index_) == 34


def test_warm_start_continues_weights_and_adam_state(tmp_path) -> None:
    X = table(32)
    det = Toll(iters=4, finetune_iters=3, **SMALL).fit(X)
    det.save(tmp_path / "t.pt")
    back = Toll.load(tmp_path / "t.pt", device="cpu")
    assert all(float(s["step"]) == 4 for s in back.opt_.state_dict()["state"].values())
    before = {k: v.clone() for k, v in back.ae_.state_dict().items()}
    y = np.zeros(32, dtype=np.int64)
    y[:3] = -1
    back.fit(X, y, warm_start=True)
    assert all(float(s["step"]) == 7 for s in back.opt_.state_dict()["state"].values())
    assert back.n_steps_ == 7 and back.n_fits_ == 2 and back.beta_ == det.beta_
    assert not torch.equal(before["encoder.0.weight"], back.ae_.state_dict()["encoder.0.weight"])
    det.fit(X)  # a fresh fit starts the optimizer over
    assert det.n_steps_ == 4


def test_fast_setting_and_make() -> None:
    det = make("toll", **{**Toll.FAST, "iters": 2, "device": "cpu", "batch_size": 8})
    det.fit(images(16))
    assert det.ae_.width == 16 and det.decision_function(images(4)).shape == (4,)
