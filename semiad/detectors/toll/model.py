"""Toll — targeted collapse regularized autoencoder (Ghafourian et al., arXiv 2306.12627). methods.md §6."""
from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn

from semiad.detectors.base import BaseDetector, Param, ProgressFn, arguments
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

    Training length: a fixed budget of `steps` (the official code's niter, 2000), one batch each,
    taken from shuffled passes over the normal pool. `steps` / `finetune_steps` were called `iters` /
    `finetune_iters`; the old names are still accepted (saved runs and model files carry them).
    Deviation from the reference (pitfall 22): no checkpoint is chosen by validation AUC every 20
    iterations — the app has no labeled validation set — the model after the last step is the model.

    Input scaling (methods.md §7.1, app variant): images z-scored per channel, tables per column,
    with statistics fitted on the first training pool and frozen (saved with the model). The paper's
    per-dataset constants (MNIST 0.1307/0.3081; GCN + min-max on CIFAR) are not used.

    Warm start (methods.md §6.6): keeps the weights and the Adam state (saved in the model file),
    keeps β, and runs `finetune_steps` steps on the current pool — new normals come in, new
    labeled anomalies go out.

    Fast setting for CPU users: ``Toll(**Toll.FAST)`` — conv nets at a quarter width (about 1/16
    of the convolution work); not the paper's setting. It leaves the step budget alone (the
    app's settings choose it).
    """

    method = "toll"
    FAST: ClassVar[dict[str, Any]] = {"width": 16}
    fast_by_default = True  # full width is far beyond 2 minutes per first fit on a CPU
    RENAMED: ClassVar[dict[str, str]] = {"iters": "steps", "finetune_iters": "finetune_steps"}
    display_name = "Toll"
    app_settings = (
        Param("steps", "Training steps", 300, "first fit; one batch each (paper: 2000; the default "
              "shrinks for larger image pools)", 1, 100_000),
        Param("finetune_steps", "Fine-tune steps per retrain", 100, "warm start", 1, 10_000, warm=True),
        Param("beta", "β (weight of the latent norm ‖z‖, in loss and score)", 1000.0,
              "paper defaults: 1000 for 28×28 gray, 10 for colour and tables; 0 = a plain autoencoder",
              0.0, 100_000.0),
    )
    # image first fits at the fast width: ~50 steps over the 198 bundled digits, fewer for larger pools
    FIRST_FIT_SAMPLES: ClassVar[int] = 10_000

    @classmethod
    def app_defaults(cls, kind: str = "image", n_samples: int = 0, input_shape: tuple[int, ...] = (1, 28, 28),
                     representation: dict[str, Any] | None = None) -> dict[str, Any]:
        """The paper's β for the network this data gets (methods.md §6.4)."""
        from semiad import represent

        hyper = super().app_defaults(kind, n_samples, input_shape, representation)
        hyper["beta"] = DEFAULTS[architecture(represent.input_shape(representation, input_shape))]["beta"]
        return hyper

    @classmethod
    def _image_first_fit(cls, hyper: dict[str, Any], n_samples: int, input_shape: tuple[int, ...]) -> dict[str, Any]:
        """Steps of one batch of min(pool, the paper's batch), at least ten."""
        batch = min(n_samples, int(DEFAULTS[architecture(input_shape)]["batch_size"]))
        return {"steps": int(min(max(round(cls.FIRST_FIT_SAMPLES / batch), 10), hyper["steps"]))}

    def __init__(self, beta: float | None = None, z_dim: int | None = None, lr: float | None = None,
                 steps: int = 2000, finetune_steps: int = 300, width: int | None = None,
                 hidden: tuple[int, ...] | None = None, report_every: int = 50, batch_size: int | None = None,
                 device: str = "auto", seed: int | None = 0, score_batch_size: int = 1024,
                 contamination: float = 0.1, iters: int | None = None, finetune_iters: int | None = None) -> None:
        super().__init__(**arguments(locals()))

    # ----- networks ------------------------------------------------------------------------
    def _build(self) -> None:
        d = DEFAULTS[architecture(self.input_shape_)]
        self.beta_ = float(d["beta"] if self.beta is None else self.beta)
        self.z_dim_ = int(d["z_dim"] if self.z_dim is None else self.z_dim)
        self.lr_ = float(d["lr"] if self.lr is None else self.lr)
        self.batch_size_ = int(d["batch_size"] if self.batch_size is None else self.batch_size)
        ae, self.net_ = build(self.input_shape_, self.z_dim_, self.width, self.hidden)
        self.ae_ = self._place(ae)
        self.opt_ = torch.optim.Adam(self.ae_.parameters(), lr=self.lr_)
        self.n_steps_ = 0

    def _modules(self) -> dict[str, nn.Module]:
        return {"ae": self.ae_}

    def _optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"opt": self.opt_}

    def _extra_state(self) -> dict[str, Any]:
        # β is in the params too; stored here as well because the score needs it (methods.md §7.3)
        return {"beta": self.beta_}

    def _set_extra_state(self, extra: dict[str, Any]) -> None:
        self.beta_ = float(extra["beta"])

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
        keep = self._normal_rows(y)  # labeled anomalies (y = −1) never train Toll
        self.train_index_ = keep.cpu().numpy()  # which rows of X this fit trained on
        pool = self._training_pool(X, keep)
        steps = max(int(self.finetune_steps if warm_start else self.steps), 1)
        self._run_steps(pool, steps, self._train_step, "finetune" if warm_start else "train", report,
                        self.batch_size_, self.report_every, [self.ae_])

    def _train_step(self, x: torch.Tensor) -> torch.Tensor:
        """One Adam step on batch x of normal samples; returns the loss."""
        z = self.ae_.encode(x)
        loss, _ = toll_loss(x, self.ae_.decode(z), z, self.beta_)
        self.opt_.zero_grad(set_to_none=True)
        loss.backward()
        self.opt_.step()
        self.n_steps_ += 1
        return loss.detach()

    # ----- scoring -------------------------------------------------------------------------
    def _score(self, X: torch.Tensor) -> torch.Tensor:
        z = self.ae_.encode(X)
        return toll_score(X, self.ae_.decode(z), z, self.beta_)

    def _embed(self, X: torch.Tensor) -> torch.Tensor:
        return self.ae_.encode(X)

    def _reconstruct(self, X: torch.Tensor) -> torch.Tensor:
        return self.ae_.decode(self.ae_.encode(X)).contiguous()
