"""ESAD (methods.md §5, provisional loss): real networks, real training steps on tiny data, no mocks."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from semiad.detectors import ESAD, make
from semiad.detectors.esad.loss import (
    EPS,
    anomaly_score,
    consistency_loss,
    entropy_loss,
    esad_loss,
    reconstruction_target,
)
from tests.toydata import images, table

SMALL = {"batch_size": 8, "device": "cpu", "seed": 0, "hidden": (16, 8), "rep_dim": 16}


def test_entropy_term_is_the_norm_for_normals_and_the_inverse_norm_for_labeled_anomalies() -> None:
    z2 = torch.tensor([[3.0, 4.0], [0.0, 2.0], [0.0, 0.0]])
    y = torch.tensor([0, -1, 1])
    expected = (5.0 + 1.0 / (2.0 + EPS) + 0.0) / 3
    assert entropy_loss(z2, y).item() == pytest.approx(expected)
    # a labeled anomaly at z₂ = 0 stays finite thanks to ε (pitfall 20)
    assert entropy_loss(torch.zeros(1, 2), torch.tensor([-1])).item() == pytest.approx(1 / EPS)
    # its gradient pushes ‖z₂‖ up, a normal's pulls it down
    z = torch.tensor([[0.6, 0.8], [0.6, 0.8]], requires_grad=True)
    entropy_loss(z, torch.tensor([-1, 0])).backward()
    assert (z.grad[0] * z[0]).sum() < 0 < (z.grad[1] * z[1]).sum()


def test_reconstruction_target_is_noisy_only_for_labeled_anomalies() -> None:
    torch.manual_seed(0)
    x = torch.rand(3, 1, 40, 40)
    t = reconstruction_target(x, torch.tensor([0, 1, -1]), noise_std=0.5)
    assert torch.equal(t[:2], x[:2])
    assert (t[2] - x[2]).std().item() == pytest.approx(0.5, rel=0.05)


def test_total_loss_and_score_on_a_constructed_example() -> None:
    x = torch.zeros(2, 4)
    x_hat = torch.tensor([[1.0, 1.0, 0.0, 0.0], [0.0, 0.0, 0.0, 2.0]])  # squared errors summed: 2 and 4
    z1 = torch.tensor([[0.0, 0.0], [1.0, 1.0]])
    z2 = torch.tensor([[3.0, 4.0], [1.0, 1.0]])  # norms 5 and √2; z₁ − z₂ squared: 9, 16, 0, 0
    y = torch.tensor([0, 0])
    loss, terms = esad_loss(x_hat, x, z1, z2, y, lambda_ent=2.0, lambda_cons=3.0)
    assert terms["rec"].item() == pytest.approx(3.0)
    assert terms["ent"].item() == pytest.approx((5 + 2 ** 0.5) / 2)
    assert terms["cons"].item() == pytest.approx(25 / 4) == consistency_loss(z1, z2).item()
    assert loss.item() == pytest.approx(3.0 + 2 * (5 + 2 ** 0.5) / 2 + 3 * 25 / 4)
    np.testing.assert_allclose(anomaly_score(x, x_hat, z2).numpy(), [2 / 4 + 5, 4 / 4 + 2 ** 0.5], rtol=1e-6)


@pytest.mark.parametrize("shape,net,rep", [((1, 28, 28), "mnist", 32), ((3, 32, 32), "cifar", 128), ((12,), "mlp", 8)])
def test_shapes_per_input_kind_and_separate_encoders(shape, net, rep) -> None:
    X = images(16, shape[0], shape[1]) if len(shape) == 3 else table(16)
    det = ESAD(epochs=1, batch_size=8, device="cpu").fit(X)
    assert det.net_ == net and det.rep_dim_ == rep
    assert det.decision_function(X).shape == (16,) and det.embed(X).shape == (16, rep)
    x_hat, z1, z2 = det.model_(det._to_tensor(X[:4]))
    assert x_hat.shape == (4, *shape) and z1.shape == z2.shape == (4, rep)
    e1, e2 = det.model_.encoder1.state_dict(), det.model_.encoder2.state_dict()
    assert e1.keys() == e2.keys() and any(k.endswith("bias") for k in e1)  # biases allowed
    assert all(not torch.equal(e1[k], e2[k]) for k in e1 if k.endswith("weight"))  # separate weights
    assert det.model_.encoder1 is not det.model_.encoder2


def test_labeled_anomalies_get_larger_latent_norms_than_without_labels() -> None:
    """A property of training, so judged over three seeds (one seed's noise draw may blur it)."""
    X = table(48)
    y = np.zeros(48, dtype=np.int64)
    y[:6] = -1

    def z2_norm(det: ESAD) -> np.ndarray:
        det.model_.eval()
        with torch.no_grad():
            return torch.linalg.vector_norm(det.model_(det._to_tensor(X))[2], dim=1).numpy()

    norms_with, norms_without, scores = [], [], []
    for seed in (0, 1, 2):
        hyper = {**SMALL, "epochs": 15, "lr": 1e-2, "seed": seed}
        with_labels = ESAD(**hyper).fit(X, y)
        norms_with.append(z2_norm(with_labels)[:6].mean())
        norms_without.append(z2_norm(ESAD(**hyper).fit(X))[:6].mean())
        scores.append(with_labels.decision_function(X))
    assert np.mean(norms_with) > 2 * np.mean(norms_without)
    mean_scores = np.mean(scores, axis=0)
    assert mean_scores[:6].mean() > mean_scores[6:].mean()


def test_warm_start_continues_weights_and_adam_state_at_the_finetune_lr(tmp_path) -> None:
    X = table(32)
    det = ESAD(epochs=2, finetune_epochs=1, finetune_lr=1e-3, **SMALL).fit(X)  # 4 batches per epoch
    det.save(tmp_path / "e.pt")
    back = ESAD.load(tmp_path / "e.pt", device="cpu")
    assert back.n_steps_ == 8 and all(float(s["step"]) == 8 for s in back.opt_.state_dict()["state"].values())
    before = {k: v.clone() for k, v in back.model_.state_dict().items()}
    y = np.zeros(32, dtype=np.int64)
    y[:2] = -1
    back.fit(X, y, warm_start=True)
    assert all(float(s["step"]) == 12 for s in back.opt_.state_dict()["state"].values())
    assert back.opt_.param_groups[0]["lr"] == 1e-3 and back.n_fits_ == 2
    after = back.model_.state_dict()
    assert all(not torch.equal(before[k], after[k]) for k in before if k.endswith("weight"))


def test_make() -> None:
    det = make("esad", epochs=1, batch_size=8, device="cpu").fit(images(16))
    assert isinstance(det, ESAD) and det.decision_function(images(3)).shape == (3,)
