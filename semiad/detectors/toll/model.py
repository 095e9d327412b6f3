"""Toll — targeted collapse regularized autoencoder (Ghafourian et al., arXiv 2306.12627). methods.md §6."""
from __future__ import annotations

from typing import Any, ClassVar, Iterator

import numpy as np
import torch
from torch import nn

from semiad.detectors.base import BaseDetector, Progress, ProgressFn, batch_slices
from semiad.detectors.toll.loss import toll_loss, toll_score
from semiad.detectors.toll.networks import build

# Official README settings per dataset (methods.md §6.4), keyed by the network kind our inputs get.
# Fashion-MNIST (β 100, z 256, batch 500) shares the 28×28 net: pass beta / z_dim / batch_size for it.
DEFAULTS: dict[str, dict[str, float]] = {
    "mnist": {"beta": 1000.0, "z_dim": 128, "lr": 1e-4, "batch_size": 1000},
    "cifar": {"beta": 10.0, "z_dim": 64, "lr": 1e-2, "batch_size": 50},
    "mlp": {"beta": 10.0, "z_dim": 16, "lr": 1e-3, "batch_size": 100},  # arrhythmia's command
}



def architecture(input_shape: tuple[int, ...]) -> str:
    """Which of DEFAULTS' nets an input gets: "mlp" for tables, "mnist" for 1×28×28, "cifar" otherwise."""
    return "mlp" if len(input_shape) == 1 else ("mnist" if tuple(input_shape) == (1, 28, 28) else "cifar")

class Toll(BaseDetector):
    """An autoencoder whose loss and score add β·‖z‖₂ (not squared): normal codes collapse toward 0.

    Labels: trains on y=0 (unlabeled) and y=+1 (labeled normal) alike, as normal data; samples
    labeled y=−1 (anomaly) are dropped and never enter a training batch (methods.md §6.1 — the
    paper is one-class; no semi-supervised extension here).
    Loss: mean_i ‖x_i − x̂_i‖₂ + β·mean_i ‖z_i‖₂. Score: ‖x − x̂‖₂ + β·‖z‖₂ with the training β,
    eval mode (BatchNorm running statistics, so a score does not depend on its batch).
    Embedding: z = E(x).

    Networks (methods.md §6.3): 1×28×28 gray → the MNIST conv net, 3×32×32 colour → the CIFAR conv
    net, N×D tables → the MLP (hidden (256, 128) if D > 100 else (64, 32)). `width` scales the conv
    channels (None: 64 for MNIST, 32 for CIFAR), `hidden` sets the MLP.

    Defaults left as None take the official README value for the input kind (methods.md §6.4):
      - 28×28 gray (MNIST command): β = 1000, z_dim = 128, lr = 1e-4, batch 1000
        (Fashion-MNIST's command: β = 100, z_dim = 256, batch 500 — pass them explicitly);
      - 32×32 colour (CIFAR-10 command): β = 10, z_dim = 64, lr = 1e-2, batch 50;
      - tabular (arrhythmia command): β = 10, z_dim = 16, lr = 1e-3, batch 100.
    The resolved values are `beta_`, `z_dim_`, `lr_`, `batch_size_`. Adam without weight decay.

    Training length: a fixed budget of `iters` iterations (official niter 2000), one batch each,
    taken from shuffled passes over the normal pool. Deviation from the reference (pitfall 22): no
    checkpoint is chosen by validation AUC every 20 iterations — the app has no labeled validation
    set — the model after the last iteration is the model.

    Input scaling (methods.md §7.1, app variant): images z-scored per channel, tables per column,
    with statistics fitted on the first training pool and frozen (saved with the model). The paper's
    per-dataset constants (MNIST 0.1307/0.3081; GCN + min-max on CIFAR) are not used.

    Warm start (methods.md §6.6): keeps the weights and the Adam state (saved in the model file),
    keeps β, and runs `finetune_iters` iterations on the current pool — new normals come in, new
    labeled anomalies go out.

    Fast setting for CPU users: ``Toll(**Toll.FAST)`` — conv nets at a quarter width (about 1/16
    of the convolution work); not the paper's setting. It leaves the iteration budget alone (the
    app's settings choose it).
    """

    method = "toll"
    FAST: ClassVar[dict[str, Any]] = {"width": 16}

    def __init__(self, beta: float | None = None, z_dim: int | None = None, lr: float | None = None,
                 iters: int = 2000, finetune_iters: int = 300, width: int | None = None,
                 hidden: tuple[int, ...] | None = None, report_every: int = 50, batch_size: int | None = None,
                 device: str = "auto", seed: int | None = 0, score_batch_size: int = 1024) -> None:
        super().__init__(device=device, seed=seed, batch_size=batch_size, score_batch_size=score_batch_size)
        self.beta = beta
        self.z_dim = z_dim
        self.lr = lr
        self.iters = iters
        self.finetune_iters = finetune_iters
        self.width = width
        self.hidden = None if hidden is None else tuple(hidden)
        self.report_every = report_every

    # ----- networks ------------------------------------------------------------------------
    def _build(self) -> None:
        d = DEFAULTS[architecture(self.input_shape_)]
        self.beta_ = float(d["beta"] if self.beta is None else self.beta)
        self.z_dim_ = int(d["z_dim"] if self.z_dim is None else self.z_dim)
        self.lr_ = float(d["lr"] if self.lr is None else self.lr)
        self.batch_size_ = int(d["batch_size"] if self.batch_size is None else self.batch_size)
        ae, self.net_ = build(self.input_shape_, self.z_dim_, self.width, self.hidden)
        fmt = torch.channels_last if len(self.input_shape_) == 3 else torch.contiguous_format
        self.ae_ = ae.to(self.device_, memory_format=fmt)
        self.opt_ = torch.optim.Adam(self.ae_.parameters(), lr=self.lr_)
        self.n_steps_ = 0

    def _modules(self) -> dict[str, nn.Module]:
        return {"ae": self.ae_}

    def _extra_state(self) -> dict[str, Any]:
        # β is in the params too; stored here as well because the score needs it (methods.md §7.3)
        return {"beta": self.beta_, "opt": self.opt_.state_dict(), "n_steps": self.n_steps_}

    def _set_extra_state(self, extra: dict[str, Any]) -> None:
        self.beta_ = float(extra["beta"])
        self.opt_.load_state_dict(extra["opt"])
        self.n_steps_ = int(extra["n_steps"])

    # ----- input scaling: z-score instead of the base class's min-max ------------------------
    def _fit_scaler(self, X: np.ndarray) -> None:
        axes = (0,) if X.ndim == 2 else (0, 2, 3)  # per column / per channel
        mean = X.mean(axis=axes, keepdims=True)[0]
        std = X.std(axis=axes, keepdims=True)[0]
        std[std < 1e-8] = 1.0  # a constant column or channel stays at 0 instead of dividing by 0
        self.scaler_ = {"mean": mean.astype(np.float32), "std": std.astype(np.float32)}

    def _scale(self, X: np.ndarray) -> np.ndarray:
        return ((X - self.scaler_["mean"]) / self.scaler_["std"]).astype(np.float32)

    def _unscale(self, Z: np.ndarray) -> np.ndarray:
        return Z * self.scaler_["std"] + self.scaler_["mean"]

    # ----- training ------------------------------------------------------------------------
    def _fit(self, X: torch.Tensor, y: torch.Tensor, warm_start: bool, report: ProgressFn) -> None:
        keep = torch.nonzero(y >= 0).flatten()  # labeled anomalies (y = −1) never train Toll
        if len(keep) < 2:
            raise ValueError("Toll needs at least two samples not labeled anomalous to train on")
        self.train_index_ = keep.cpu().numpy()  # which rows of X this fit trained on
        pool = X[keep]
        if pool.ndim == 4:
            pool = pool.contiguous(memory_format=torch.channels_last)
        steps = max(int(self.finetune_iters if warm_start else self.iters), 1)
        self._train(pool, steps, "finetune" if warm_start else "train", report)

    def _batches(self, n: int, steps: int, g: torch.Generator) -> Iterator[torch.Tensor]:
        """`steps` index batches from consecutive shuffled passes over the pool."""
        done = 0
        while True:
            for idx in batch_slices(n, self.batch_size_, g, shuffle=True):
                if done == steps:
                    return
                done += 1
                yield idx

    def _train(self, pool: torch.Tensor, steps: int, phase: str, report: ProgressFn) -> None:
        self.ae_.train()
        g = self._generator()
        loss_sum = torch.zeros((), device=pool.device)  # summed on the device: no sync per step
        since = 0
        for step, idx in enumerate(self._batches(len(pool), steps, g), start=1):
            self._check_stop()
            loss_sum += self._train_step(pool[idx.to(pool.device)])
            since += 1
            self.n_steps_ += 1
            if step % self.report_every == 0 or step == steps:
                report(Progress(phase, step, steps, float(loss_sum) / since, step / steps))
                loss_sum.zero_()
                since = 0
                self.ae_.train()  # a progress callback may have scored in eval mode

    def _train_step(self, x: torch.Tensor) -> torch.Tensor:
        """One Adam step on batch x of normal samples; returns the loss."""
        z = self.ae_.encode(x)
        loss, _ = toll_loss(x, self.ae_.decode(z), z, self.beta_)
        self.opt_.zero_grad(set_to_none=True)
        loss.backward()
        self.opt_.step()
        return loss.detach()

    # ----- scoring -------------------------------------------------------------------------
    def _score(self, X: torch.Tensor) -> torch.Tensor:
        z = self.ae_.encode(X)
        return toll_score(X, self.ae_.decode(z), z, self.beta_)

    def _embed(self, X: torch.Tensor) -> torch.Tensor:
        return self.ae_.encode(X)

    def _reconstruct(self, X: torch.Tensor) -> torch.Tensor:
        return self.ae_.decode(self.ae_.encode(X)).contiguous()
