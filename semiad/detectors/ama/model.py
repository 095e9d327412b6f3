"""AMA — Adversarial Mirrored Autoencoder (Somepalli et al., UAI 2021, arXiv 2003.10713). methods.md §4."""
from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn

from semiad.detectors.ama.loss import (
    ae_loss,
    critic_loss,
    deviation_score,
    feature_distance,
    gradient_penalty,
    interpolate,
    pair,
    sample_weights,
)
from semiad.detectors.ama.networks import build
from semiad.detectors.base import BaseDetector, Param, ProgressFn, arguments


class AMA(BaseDetector):
    """An autoencoder (E, G) trained against a Wasserstein critic D that compares the mirrored pair
    (x, x) with the pair (x, x̂), x̂ = G(E(x)), stacked on the channel axis.

    Labels: y=0 (unlabeled) and y=+1 (labeled normal) get weight l = +1; **labeled anomalies
    (y=−1) enter with weight l = −λ_a** (`anom_lambda`, code default 1; the README command uses 5):
    their critic and AE terms flip sign, so the critic learns to call their reconstructions real and
    the AE is pushed to reconstruct them badly (methods.md §4.2). The latent-norm regulariser covers
    only l = +1 samples. The code's synthetic inward negatives (`--sampling`) are not implemented.

    Losses (methods.md §4.4): L_D = mean[−l·D(x,x) + l·D(x,x̂)] + 10·GP, GP on (x, αx + (1−α)x̂)
    with the gradient norm per pixel over channels (dim=1); L_AE = −mean[l·D(x,x̂)] + λ_reg·mean ‖E(x)‖.
    Per batch: `n_critic` = 5 critic steps, then one E+G step, all on the same batch. Adam lr 3e-4,
    betas (0, 0.9) for D and G, (0.5, 0.9) for E; lr ×0.1 after epochs 30, 60, 90; 100 epochs;
    batch 256 (drop_last as in base.batch_slices).

    Score (methods.md §4.5): d(x) = ‖φ_D(x,x) − φ_D(x,x̂)‖₁ on the critic's features, then the
    two-sided deviation |d − μ|/σ from the Gaussian fitted to d over the training normals
    (y ∈ {0, +1}) at the end of every fit, warm or not; μ_, σ_ are saved with the model. Eval mode
    (BatchNorm running statistics; spectral norm uses its stored vectors), so a score does not
    depend on its batch. Embedding: E(x) (nz-d).

    Inputs: images scaled to [−1, 1]; square images of any side are resized to 32×32 inside the model
    (28×28 gray → nc=1: critic input 2 channels, generator output 1). Tables: MLP E / G and an MLP
    critic on [x, y] — **experimental**, not in the paper. Widths `ndf` (encoder: 2·, 4·, 8·ndf
    channels), `gen_ch`, `critic_ch` default to the official 32 / 256 / 128.

    Warm start (methods.md §4.7): continues E, G, D and all three Adam states (saved in the model file)
    at the constant `finetune_lr` for `finetune_epochs`, then refits μ, σ.

    Deviations, none changing an update's maths: x̂ is computed once per batch (E and G do not change
    during the critic steps; the reference recomputes it, moving G's BatchNorm running statistics more
    often), and each critic step runs D once on the three kinds of pairs stacked in one batch (D has no
    BatchNorm, so this equals three passes; spectral norm's power iteration then runs once per step).
    No model selection on a labeled validation set (pitfall 16): the model after the last step is the model.

    Fast setting for CPU users: ``AMA(**AMA.FAST)`` — narrow networks (ndf 8, 32-channel generator,
    16-channel critic, nz 32; about 1/60 of the default convolution work); not the paper's setting.
    """

    method = "ama"
    input_range = (-1.0, 1.0)
    FAST: ClassVar[dict[str, Any]] = {"ndf": 8, "gen_ch": 32, "critic_ch": 16, "nz": 32}
    fast_by_default = True  # full width is far beyond 2 minutes per first fit on a CPU
    display_name = "AMA"
    app_settings = (
        Param("epochs", "Epochs", 20, "first fit (paper: 100)", 1, 1000),
        Param("finetune_epochs", "Fine-tune epochs per retrain", 3, "warm start, constant small lr", 1, 100,
              warm=True),
        Param("anom_lambda", "λ_a (weight of labeled anomalies)", 1.0, "", 0.0, 100.0, warm=True),
        Param("batch_size", "Batch size", 256, "", 2, 4096),
        Param("nz", "Latent size nz", 128, "", 2, 512),
    )
    # image first fits at the fast width: 8 epochs over the 198 bundled digits, fewer for larger pools
    FIRST_FIT_SAMPLES: ClassVar[int] = 1_600

    @classmethod
    def _image_first_fit(cls, hyper: dict[str, Any], n_samples: int, input_shape: tuple[int, ...]) -> dict[str, Any]:
        """Whole epochs, at least one."""
        return {"epochs": int(min(max(round(cls.FIRST_FIT_SAMPLES / n_samples), 1), hyper["epochs"]))}

    def __init__(self, nz: int = 128, ndf: int = 32, gen_ch: int = 256, critic_ch: int = 128,
                 hidden: tuple[int, ...] = (128, 64), anom_lambda: float = 1.0, lambda_reg: float = 1.0,
                 lambda_gp: float = 10.0, n_critic: int = 5, epochs: int = 100, lr: float = 3e-4,
                 milestones: tuple[int, ...] = (30, 60, 90), finetune_epochs: int = 3, finetune_lr: float = 3e-5,
                 batch_size: int = 256, device: str = "auto", seed: int | None = 0,
                 score_batch_size: int = 512, contamination: float = 0.1) -> None:
        super().__init__(**arguments(locals()))

    # ----- networks ------------------------------------------------------------------------
    def _build(self) -> None:
        enc, gen, critic, self.net_shape_ = build(self.input_shape_, self.nz, self.ndf, self.gen_ch, self.critic_ch,
                                                  self.hidden)
        self.enc_ = self._place(enc)
        self.gen_ = self._place(gen)
        self.critic_ = self._place(critic)
        self.opt_e_ = torch.optim.Adam(self.enc_.parameters(), lr=self.lr, betas=(0.5, 0.9))
        self.opt_g_ = torch.optim.Adam(self.gen_.parameters(), lr=self.lr, betas=(0.0, 0.9))
        self.opt_d_ = torch.optim.Adam(self.critic_.parameters(), lr=self.lr, betas=(0.0, 0.9))
        self.mu_, self.sigma_ = 0.0, 1.0
        self.n_steps_ = 0

    def _optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"opt_e": self.opt_e_, "opt_g": self.opt_g_, "opt_d": self.opt_d_}

    def _modules(self) -> dict[str, nn.Module]:
        return {"encoder": self.enc_, "generator": self.gen_, "critic": self.critic_}

    def _extra_state(self) -> dict[str, Any]:
        return {"mu": self.mu_, "sigma": self.sigma_}

    def _set_extra_state(self, extra: dict[str, Any]) -> None:
        self.mu_, self.sigma_ = float(extra["mu"]), float(extra["sigma"])

    # ----- training ------------------------------------------------------------------------
    def _fit(self, X: torch.Tensor, y: torch.Tensor, warm_start: bool, report: ProgressFn) -> None:
        self._need_two(len(X), "AMA")
        pool = self._training_pool(X)  # resized once: the training set sits on the device
        l_all = sample_weights(y, self.anom_lambda)
        if warm_start:  # constant small lr for all three (methods.md §4.7)
            epochs, milestones, phase, lr = self.finetune_epochs, (), "finetune", self.finetune_lr
        else:
            epochs, milestones, phase, lr = self.epochs, self.milestones, "train", self.lr
        optimizers = list(self._optimizers().values())
        self._set_lr(optimizers, lr)
        scheds = [torch.optim.lr_scheduler.MultiStepLR(o, milestones=list(milestones), gamma=0.1) for o in optimizers]

        def step(idx: torch.Tensor) -> tuple[torch.Tensor, int]:
            return self._train_step(pool[idx], l_all[idx]), len(idx)

        self._run_epochs(pool, epochs, step, phase, report, self._generator(), scheds)
        self._fit_gaussian(pool[y >= 0] if bool((y >= 0).any()) else pool)

    def _train_step(self, x: torch.Tensor, l: torch.Tensor) -> torch.Tensor:
        """n_critic critic updates, then one E+G update, on batch x with weights l. Returns L_AE."""
        for m in self._modules().values():
            m.train()
        n = len(x)
        z = self.enc_(x)
        x_hat = self.gen_(z)
        x_fixed = x_hat.detach()
        alpha_shape = (n,) + (1,) * (x.ndim - 1)
        for i in range(self.n_critic):
            if i:
                self._check_stop()  # a critic update is a step of its own (the loop checks before the first)
            alpha = torch.rand(alpha_shape, generator=self._noise).to(x.device)
            gp_in = pair(x, interpolate(x, x_fixed, alpha)).requires_grad_(True)
            d_all, _ = self.critic_(torch.cat([pair(x, x), pair(x, x_fixed), gp_in]))
            d_real, d_fake, d_gp = d_all[:n], d_all[n:2 * n], d_all[2 * n:]
            (grad,) = torch.autograd.grad(d_gp.sum(), gp_in, create_graph=True)
            loss_d = critic_loss(d_real, d_fake, l, gradient_penalty(grad), self.lambda_gp)
            self.opt_d_.zero_grad(set_to_none=True)
            loss_d.backward(inputs=list(self.critic_.parameters()))
            self.opt_d_.step()
        d_fake, _ = self.critic_(pair(x, x_hat))
        loss_ae = ae_loss(d_fake, l, z, self.lambda_reg)
        self.opt_e_.zero_grad(set_to_none=True)
        self.opt_g_.zero_grad(set_to_none=True)
        loss_ae.backward(inputs=[*self.enc_.parameters(), *self.gen_.parameters()])  # D's grads: from L_D only
        self.opt_e_.step()
        self.opt_g_.step()
        self.n_steps_ += 1
        return loss_ae.detach()

    @torch.no_grad()
    def _fit_gaussian(self, normals: torch.Tensor) -> None:
        """μ, σ of the raw distance over the training normals, eval mode (methods.md §4.5, pitfall 17)."""
        for m in self._modules().values():
            m.eval()
        d = torch.cat([self._distance(normals[i:i + self.score_batch_size])
                       for i in range(0, len(normals), self.score_batch_size)])
        self.mu_ = float(d.mean())
        self.sigma_ = max(float(d.std()) if len(d) > 1 else 0.0, 1e-8)  # a constant d would divide by 0

    # ----- scoring -------------------------------------------------------------------------
    def _distance(self, x: torch.Tensor) -> torch.Tensor:
        """d(x) on prepared inputs: ‖φ_D(x, x) − φ_D(x, x̂)‖₁ (both pairs through D in one batch)."""
        x_hat = self.gen_(self.enc_(x))
        _, f = self.critic_(torch.cat([pair(x, x), pair(x, x_hat)]))
        return feature_distance(f[:len(x)], f[len(x):])

    def raw_distance(self, X: Any) -> np.ndarray:
        """d(x) per sample (the code's one-sided `score_auc`), before the Gaussian deviation."""
        return self._batched(lambda x: self._distance(self._prepare(x)), X)

    def _score(self, X: torch.Tensor) -> torch.Tensor:
        return deviation_score(self._distance(self._prepare(X)), self.mu_, self.sigma_)

    def _embed(self, X: torch.Tensor) -> torch.Tensor:
        return self.enc_(self._prepare(X))

    def _reconstruct(self, X: torch.Tensor) -> torch.Tensor:
        return self._to_input_size(self.gen_(self.enc_(self._prepare(X))))  # 32 → the input's size, e.g. 28
