"""GANomaly (Akcay et al., ACCV 2018) — methods.md §3."""
from __future__ import annotations

from typing import Any, ClassVar

import torch
from torch import nn

from semiad.detectors.base import (
    PRECISIONS,
    BaseDetector,
    Param,
    ProgressFn,
    arguments,
    batch_slices,
    training_autocast,
    training_length,
)
from semiad.detectors.ganomaly.loss import REINIT_D_BELOW, anomaly_score, discriminator_loss, generator_loss
from semiad.detectors.ganomaly.networks import Discriminator, Generator, build, dcgan_init


class GANomaly(BaseDetector):
    """GANomaly: an encoder–decoder–encoder generator trained adversarially on normal data only.

    Labels: trains on y=0 (unlabeled) and y=+1 (labeled normal) alike, as normal data; samples
    labeled y=−1 (anomaly) are dropped from the training set and never enter a batch (methods.md §3.1).
    Score: s(x) = mean_k (z_k − ẑ_k)², z = G_E(x), ẑ = E(G_D(z)), computed in eval mode (BatchNorm
    running statistics, so a sample's score does not depend on its batch) and never min-max scaled
    (pitfalls 10, 11). Embedding: z (nz-d). `reconstruct(X)` returns G(x) in the input's scale and shape.

    Images (C×H×W, square) are scaled to [−1, 1] by the base class (input_range) and resized up to
    the next multiple of 16 (28 → 32) inside the model with one batched bilinear interpolation; the
    training set is resized once and kept resident on the device. Tables get the MLP variant of
    methods.md §3.5 — **experimental**, not from the paper.

    Defaults are the official ones (methods.md §3.2): nz=100, ngf=ndf=64, batch 64, Adam(2e-4,
    β=(0.5, 0.999)) for G and D, w_adv=1, w_con=50, w_enc=1, 15 epochs; D is re-initialised whenever
    its loss falls under 1e-5. There is no model selection on a test set (pitfall 9): the model after
    the last step is the model.

    Training length (the base module's two words, `epochs` and `steps`): `epochs` for the first fit
    and `finetune_epochs` for `fit(..., warm_start=True)` may be fractional — a fit runs
    round(epochs × batches per epoch) steps (at least one), where an epoch is one shuffled pass in
    batches of `batch_size` (drop_last as in base.batch_slices).
    `steps` / `finetune_steps`, when set, override `epochs` / `finetune_epochs` with a fixed number of
    steps (useful for small pools, where a few epochs are only a handful of steps).

    Warm start (methods.md §3.8): keeps G, D and both Adam states (all three are saved in the model
    file) and trains on the current pool, so new normals come in and new anomalies go out.

    Fast setting for CPU users: ``GANomaly(**GANomaly.FAST)`` — networks a quarter as wide
    (ngf=ndf=16, about 1/16 of the convolution work), nz=32, 300 steps for the first fit and 60 per
    warm start, whatever the pool size. Not the paper's setting; expect lower AUCs than the defaults.

    Deviations from the reference loop, none changing the maths of an update: D's forward passes
    are shared between the G and D losses (the reference runs D four times per step; it runs twice
    here, on x and on x̂, with BatchNorm batch statistics taken over the same batches), each loss's
    backward only computes the gradients its optimizer uses, and the images are channels_last.
    D's BatchNorm running statistics therefore move twice per step instead of four times; they
    never enter a score.

    `precision="bf16"` runs the training step's forward passes under bfloat16 autocast (weights,
    optimizer state and losses stay float32; scores are always computed in float32). Not the paper's
    arithmetic: an option for CPUs with native bf16 and for GPUs, measured in bench/RESULTS.md.

    Progress reports count steps (`epoch` = steps done, `epochs` = steps in this fit): one at the
    end of every epoch and one every `report_every` steps in between. The stop flag is checked at
    every step (and between a step's operations, base.BaseDetector.fit).
    """

    method = "ganomaly"
    input_range = (-1.0, 1.0)
    FAST: ClassVar[dict[str, Any]] = {"ngf": 16, "ndf": 16, "nz": 32, "steps": 300, "finetune_steps": 60}
    display_name = "GANomaly"
    app_settings = (
        Param("epochs", "Epochs", 15.0, "first fit; fractions of an epoch allowed", 0.01, 500.0),
        Param("finetune_epochs", "Fine-tune epochs per retrain", 1.0, "warm start", 0.01, 50.0, warm=True),
        Param("batch_size", "Batch size", 64, "", 2, 4096),
        Param("nz", "Latent size nz", 100, "", 2, 512),
        Param("w_con", "Contextual weight w_con", 50.0, "", 0.0, 1000.0),
        Param("precision", "Training arithmetic", "fp32",
              "bf16 autocasts the training step (about 1.7× faster on CPUs with native bf16); scores stay fp32",
              options=("fp32", "bf16")),
    )
    # image first fits: the paper's 15 epochs over the 198 bundled digits, proportionally fewer above
    FIRST_FIT_SAMPLES: ClassVar[int] = 3_000

    @classmethod
    def _image_first_fit(cls, hyper: dict[str, Any], n_samples: int, input_shape: tuple[int, ...]) -> dict[str, Any]:
        """Fractional epochs, at least 0.01."""
        return {"epochs": float(min(round(cls.FIRST_FIT_SAMPLES / n_samples, 2) or 0.01, hyper["epochs"]))}

    def __init__(self, nz: int = 100, ngf: int = 64, ndf: int = 64, extra_layers: int = 0,
                 epochs: float = 15, lr: float = 2e-4, beta1: float = 0.5, w_adv: float = 1.0,
                 w_con: float = 50.0, w_enc: float = 1.0, steps: int | None = None,
                 finetune_epochs: float = 1.0, finetune_steps: int | None = None, hidden: tuple[int, ...] = (128, 64),
                 report_every: int = 50, batch_size: int = 64, device: str = "auto", seed: int | None = 0,
                 score_batch_size: int = 1024, precision: str = "fp32", contamination: float = 0.1) -> None:
        super().__init__(**arguments(locals()))
        if precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")

    # ----- networks ------------------------------------------------------------------------
    def _build(self) -> None:
        gen, disc, self.net_shape_ = build(self.input_shape_, self.nz, self.ngf, self.ndf, self.extra_layers,
                                           self.hidden)
        self.gen_: Generator = self._place(gen)
        self.disc_: Discriminator = self._place(disc)
        betas = (self.beta1, 0.999)
        self.opt_g_ = torch.optim.Adam(self.gen_.parameters(), lr=self.lr, betas=betas)
        self.opt_d_ = torch.optim.Adam(self.disc_.parameters(), lr=self.lr, betas=betas)
        self.n_steps_ = 0
        self.n_reinit_d_ = 0

    def _modules(self) -> dict[str, nn.Module]:
        return {"generator": self.gen_, "discriminator": self.disc_}

    def _optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"opt_g": self.opt_g_, "opt_d": self.opt_d_}

    def _extra_state(self) -> dict[str, Any]:
        return {"n_reinit_d": self.n_reinit_d_}

    def _set_extra_state(self, extra: dict[str, Any]) -> None:
        self.n_reinit_d_ = int(extra["n_reinit_d"])

    # ----- training ------------------------------------------------------------------------
    def _fit(self, X: torch.Tensor, y: torch.Tensor, warm_start: bool, report: ProgressFn) -> None:
        keep = self._normal_rows(y)  # labeled anomalies (y = −1) never train GANomaly
        pool = self._training_pool(X, keep)  # resized once: the training set sits on the device
        self.train_index_ = keep.cpu().numpy()  # which rows of X this fit trained on
        self.steps_per_epoch_ = len(batch_slices(len(pool), self.batch_size, None, shuffle=False))
        if warm_start:
            steps = training_length(self.finetune_epochs, self.finetune_steps, self.steps_per_epoch_)
        else:
            steps = training_length(self.epochs, self.steps, self.steps_per_epoch_)
        self._run_steps(pool, steps, self._step, "finetune" if warm_start else "train", report, self.batch_size,
                        self.report_every, [self.gen_, self.disc_], self.steps_per_epoch_)

    def _step(self, xb: torch.Tensor) -> torch.Tensor:
        """One update and the reference's D re-initialisation rule (pitfall 14; a host sync, free on CPU)."""
        loss_g, loss_d = self._train_step(xb)
        if loss_d.item() < REINIT_D_BELOW:
            self.disc_.apply(dcgan_init)
            self.n_reinit_d_ += 1
        self.n_steps_ += 1
        return loss_g

    def _train_step(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """One GANomaly update on batch x (methods.md §3.3): G step, then D step. Returns (L_G, L_D)."""
        with training_autocast(self.device_, self.precision):
            x_hat, z, z_hat = self.gen_(x)
            p_real, f_real = self.disc_(x)
            p_fake, f_fake = self.disc_(x_hat)  # one D pass on x̂ serves both losses
        # losses in float32 (a no-op for fp32 outputs)
        x_hat, z, z_hat, p_real, f_real, p_fake, f_fake = (
            t.float() for t in (x_hat, z, z_hat, p_real, f_real, p_fake, f_fake))
        # f(x) carries no gradient G needs; detaching it keeps L_G's backward off D(x)
        loss_g, _ = generator_loss(x, x_hat, z, z_hat, f_real.detach(), f_fake, self.w_adv, self.w_con, self.w_enc)
        loss_d = discriminator_loss(p_real, p_fake)
        self.opt_g_.zero_grad(set_to_none=True)
        self.opt_d_.zero_grad(set_to_none=True)
        # G's gradients come from L_G only, D's from L_D only (D sees x̂ as if detached)
        loss_g.backward(inputs=list(self.gen_.parameters()), retain_graph=True)
        loss_d.backward(inputs=list(self.disc_.parameters()))
        self.opt_g_.step()
        self.opt_d_.step()
        return loss_g.detach(), loss_d.detach()

    # ----- scoring -------------------------------------------------------------------------
    def _score(self, X: torch.Tensor) -> torch.Tensor:
        _, z, z_hat = self.gen_(self._prepare(X))
        return anomaly_score(z, z_hat)

    def _embed(self, X: torch.Tensor) -> torch.Tensor:
        return self.gen_.encode(self._prepare(X))

    def _reconstruct(self, X: torch.Tensor) -> torch.Tensor:
        return self._to_input_size(self.gen_(self._prepare(X))[0])
