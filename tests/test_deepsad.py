"""Deep SAD (methods.md §2) with the real networks on tiny real data (scikit-learn digits) or random tables."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from semiad.data import load_digits
from semiad.detectors import DeepSAD
from semiad.detectors.base import batch_slices
from semiad.detectors.deepsad.loss import EPS, center, deep_sad_loss

FAST = dict(pretrain_epochs=2, epochs=2, batch_size=64, device="cpu")


@pytest.fixture(scope="module")
def digits() -> tuple[np.ndarray, np.ndarray]:
    """~200 digits 28×28: the zeros are normal, ~10% other digits; half the anomalies labeled (−1)."""
    s = load_digits(normal=(0,), anomaly_fraction=0.1, seed=0)
    y = np.zeros(len(s), dtype=np.int64)
    anomalies = np.flatnonzero(s.truth == 1)
    y[anomalies[::2]] = -1
    return s.X, y


def _state(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def _distances(det: DeepSAD, X: np.ndarray) -> np.ndarray:
    return det.decision_function(X)


def test_encoder_weights_are_copied_from_the_pretrained_autoencoder(digits):
    X, y = digits
    untrained = DeepSAD(**{**FAST, "pretrain_epochs": 0, "epochs": 0}).fit(X, y)
    det = DeepSAD(**{**FAST, "epochs": 0}).fit(X, y)
    phi, enc, init = det.phi_.state_dict(), det.ae_.encoder.state_dict(), untrained.phi_.state_dict()
    assert phi.keys() == enc.keys() and len(phi) > 0
    for k in phi:
        assert torch.equal(phi[k], enc[k]), k
    # pretraining moved the weights, so equality above is with trained weights, not the random init
    for k in ("conv1.weight", "conv2.weight", "fc1.weight"):
        assert not torch.equal(phi[k], init[k]), k
    assert phi["bn1.running_var"].ne(1).any()  # BN statistics come along with the weights
    # φ is its own copy: Deep SAD training must not write into the autoencoder
    assert det.phi_.conv1.weight.data_ptr() != det.ae_.encoder.conv1.weight.data_ptr()


def test_center_function_pushes_small_coordinates_to_plus_minus_eps():
    z = torch.tensor([[0.04, -0.06, 0.5, 0.0, -0.3], [0.0, -0.02, 0.7, 0.0, -0.5]])
    c = center(z)
    assert torch.allclose(c, torch.tensor([0.1, -0.1, 0.6, 0.1, -0.4]))


def test_center_is_eval_mode_mean_over_unlabeled_and_labeled_normals(digits):
    X, y = digits
    y = y.copy()
    y[np.flatnonzero(y == 0)[:10]] = 1  # some labeled normals: they count towards c
    det = DeepSAD(**{**FAST, "epochs": 0}).fit(X, y)
    keep = torch.as_tensor(X[y >= 0]).contiguous(memory_format=torch.channels_last)
    det.phi_.eval()
    with torch.no_grad():
        z_eval = det.phi_(keep)
        z_all = det.phi_(torch.as_tensor(X).contiguous(memory_format=torch.channels_last))
        det.phi_.train()
        z_train = det.phi_(keep)  # batch statistics instead of running ones
    assert torch.allclose(det.c_, center(z_eval), atol=1e-6)
    assert (det.c_.abs() >= 0.1 - 1e-7).all()
    assert not torch.allclose(det.c_, center(z_all), atol=1e-4)  # labeled anomalies were left out
    assert not torch.allclose(det.c_, center(z_train), atol=1e-4)  # and eval mode was used


def test_training_pushes_labeled_anomalies_away_from_c(digits):
    X, y = digits
    hyper = {**FAST, "pretrain_epochs": 3, "lr": 1e-3}
    before = DeepSAD(**{**hyper, "epochs": 0}).fit(X, y)  # same seed: same pretraining and same c
    after = DeepSAD(**{**hyper, "epochs": 10}).fit(X, y)
    assert torch.equal(before.c_, after.c_)
    d0, d1 = _distances(before, X), _distances(after, X)
    anomalous, unlabeled = y == -1, y == 0
    assert np.median(d1[anomalous]) > np.median(d0[anomalous])
    # relative to the unlabeled (mostly normal) samples, too: the scale of φ may change as a whole
    ratio = lambda d: np.median(d[anomalous]) / np.median(d[unlabeled])  # noqa: E731
    assert ratio(d1) > 1.5 * ratio(d0)


def test_warm_start_keeps_c_and_continues_from_the_weights(digits):
    X, y = digits
    det = DeepSAD(**FAST, finetune_epochs=2).fit(X, y)
    c, phi, ae = det.c_.clone(), _state(det.phi_), _state(det.ae_)
    y2 = y.copy()
    y2[np.flatnonzero(y == 0)[:5]] = 1  # the expert labelled more samples
    det.fit(X, y2, warm_start=True)
    assert torch.equal(det.c_, c)  # c is never recomputed (pitfall 3)
    assert det.n_fits_ == 2
    for k, v in _state(det.ae_).items():  # no new pretraining
        assert torch.equal(v, ae[k]), k
    moved = {k: (v - phi[k]).norm() / phi[k].norm() for k, v in _state(det.phi_).items() if k.endswith("weight")}
    assert all(0 < m < 0.5 for m in moved.values()), moved  # fine-tuned from the old weights, not re-initialised
    # with a zero learning rate the weights stay exactly where the last fit left them
    frozen = _state(det.phi_)
    det.finetune_lr = 0.0
    det.fit(X, y2, warm_start=True)
    for k, v in _state(det.phi_).items():
        if k.endswith("weight"):
            assert torch.equal(v, frozen[k]), k


def _record_bn_batches(det: DeepSAD) -> list[int]:
    """Batch sizes that BatchNorm layers see in train mode, from a forward pre-hook."""
    seen: list[int] = []
    for net in (det.ae_, det.phi_):
        for m in net.modules():
            if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
                m.register_forward_pre_hook(lambda mod, args: seen.append(len(args[0])) if mod.training else None)
    return seen


def test_pool_smaller_than_a_batch_trains(digits):
    X, y = digits
    X5, y5 = X[:5], np.array([0, 0, 0, 0, -1])
    det = DeepSAD(pretrain_epochs=2, epochs=3, batch_size=128, device="cpu", seed=0)
    losses: list[tuple[str, int]] = []
    det.fit(X5, y5, progress=lambda p: losses.append((p.phase, p.epoch)))
    assert losses.count(("train", 3)) == 1
    # Deep SAD steps really ran: φ moved away from the encoder it was copied from (pitfall 4)
    assert not torch.equal(det.phi_.fc1.weight, det.ae_.encoder.fc1.weight)
    assert np.isfinite(det.decision_function(X5)).all()


@pytest.mark.parametrize("n,batch", [(5, 128), (9, 8), (17, 8)])
def test_batchnorm_never_sees_a_batch_of_one(digits, n, batch):
    X, _ = digits
    det = DeepSAD(pretrain_epochs=1, epochs=1, batch_size=batch, device="cpu", finetune_epochs=1)
    det.fit(X[:n])
    seen = _record_bn_batches(det)
    det.fit(X[:n], warm_start=True)
    assert seen and min(seen) > 1
    for b in batch_slices(n, batch, torch.Generator().manual_seed(0), shuffle=True):
        assert len(b) > 1


def test_same_seed_same_scores_other_seed_other_scores(digits):
    X, y = digits
    a = DeepSAD(**FAST, seed=3).fit(X, y).decision_function(X)
    b = DeepSAD(**FAST, seed=3).fit(X, y).decision_function(X)
    c = DeepSAD(**FAST, seed=4).fit(X, y).decision_function(X)
    assert np.array_equal(a, b)
    assert not np.allclose(a, c)


def test_loss_matches_the_formula_on_hand_made_numbers():
    z = torch.tensor([[1.0, 0.0], [0.0, 2.0], [3.0, 0.0], [0.5, 0.0], [1.0, 1.0]])
    c = torch.tensor([0.0, 0.0])
    y = torch.tensor([0, 1, -1, 0, -1])
    eta = 2.0
    # distances 1, 4, 9, 0.25, 2 → unlabeled: d; labeled normal: η(d+ε); labeled anomaly: η/(d+ε)
    expected = (1 + eta * (4 + EPS) + eta / (9 + EPS) + 0.25 + eta / (2 + EPS)) / 5
    assert deep_sad_loss(z, c, y, eta).item() == pytest.approx(expected, rel=1e-6)
    # no labels: the one-class Deep SVDD loss, the mean squared distance
    loss = deep_sad_loss(z, c, torch.zeros(5, dtype=torch.long), eta).item()
    assert loss == pytest.approx((1 + 4 + 9 + 0.25 + 2) / 5)
    # the gradient pushes a labeled anomaly away from c and pulls an unlabeled sample in
    zg = z.clone().requires_grad_()
    deep_sad_loss(zg, c, y, eta).backward()
    assert zg.grad[2, 0] < 0 and zg.grad[0, 0] > 0


def test_inputs_without_a_network_raise_a_clear_value_error(digits):
    X, _ = digits
    with pytest.raises(ValueError, match="N×D|N×C×H×W"):
        DeepSAD(**FAST).fit(X[:, 0])  # N×H×W: channel axis missing
    with pytest.raises(ValueError, match="1×28×28"):
        DeepSAD(**FAST).fit(np.zeros((10, 1, 16, 16), dtype=np.float32))


def test_tabular_inputs_use_the_mlp_and_rank_anomalies_first():
    rng = np.random.default_rng(0)
    normal = rng.normal(size=(300, 6))
    anomalies = rng.normal(loc=4.0, size=(30, 6))
    X = np.concatenate([normal, anomalies]).astype(np.float32)
    truth = np.r_[np.zeros(300), np.ones(30)]
    y = np.zeros(len(X), dtype=np.int64)
    y[300:310] = -1  # a third of the anomalies labeled
    det = DeepSAD(pretrain_epochs=5, epochs=10, lr=1e-3, ae_lr=1e-3, batch_size=64, device="cpu").fit(X, y)
    assert det.net_ == "mlp"
    assert det.embed(X).shape == (len(X), 4)  # rep_dim 4 for fewer than 8 columns (methods.md §2.4)
    scores = det.decision_function(X)
    from sklearn.metrics import roc_auc_score

    unseen = np.r_[np.arange(300), np.arange(310, 330)]  # AUC on samples whose label the model never saw
    assert roc_auc_score(truth[unseen], scores[unseen]) > 0.9
