"""GANomaly (Akcay et al., ACCV 2018) — methods.md §3."""
from __future__ import annotations

from typing import Any, ClassVar, Iterator

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from semiad.detectors.base import PRECISIONS, BaseDetector, Progress, ProgressFn, batch_slices, training_autocast
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

    Training length: `epochs` for the first fit and `finetune_epochs` for `fit(..., warm_start=True)`
    may be fractional — a fit runs round(epochs × batches per epoch) steps (at least one), where an
    epoch is one shuffled pass in batches of `batch_size` (drop_last as in base.batch_slices).
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

    def __init__(self, nz: int = 100, ngf: int = 64, ndf: int = 64, extra_layers: int = 0,
                 epochs: float = 15, lr: float = 2e-4, beta1: float = 0.5, w_adv: float = 1.0,
                 w_con: float = 50.0, w_enc: float = 1.0, steps: int | None = None,
                 finetune_epochs: float = 1.0, finetune_steps: int | None = None, hidden: tuple[int, ...] = (128, 64),
                 report_every: int = 50, batch_size: int = 64, device: str = "auto", seed: int | None = 0,
                 score_batch_size: int = 1024, precision: str = "fp32") -> None:
        super().__init__(device=device, seed=seed, batch_size=batch_size, score_batch_size=score_batch_size)
        self.nz = nz
        self.ngf = ngf
        self.ndf = ndf
        self.extra_layers = extra_layers
        self.epochs = epochs
        self.lr = lr
        self.beta1 = beta1
        self.w_adv = w_adv
        self.w_con = w_con
        self.w_enc = w_enc
        self.steps = steps
        self.finetune_epochs = finetune_epochs
        self.finetune_steps = finetune_steps
        self.hidden = tuple(hidden)
        self.report_every = report_every
        if precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
        self.precision = precision

    # ----- networks ------------------------------------------------------------------------
    def _build(self) -> None:
        gen, disc, self.net_shape_ = build(self.input_shape_, self.nz, self.ngf, self.ndf, self.extra_layers,
                                           self.hidden)
        self.image_ = len(self.input_shape_) == 3
        # channels_last: same maths; a full step measured 1.6× faster than contiguous on this CPU
        fmt = torch.channels_last if self.image_ else torch.contiguous_format
        self.gen_: Generator = gen.to(self.device_, memory_format=fmt)
        self.disc_: Discriminator = disc.to(self.device_, memory_format=fmt)
        betas = (self.beta1, 0.999)
        self.opt_g_ = torch.optim.Adam(self.gen_.parameters(), lr=self.lr, betas=betas)
        self.opt_d_ = torch.optim.Adam(self.disc_.parameters(), lr=self.lr, betas=betas)
        self.n_steps_ = 0
        self.n_reinit_d_ = 0

    def _modules(self) -> dict[str, nn.Module]:
        return {"generator": self.gen_, "discriminator": self.disc_}

    def _extra_state(self) -> dict[str, Any]:
        # Adam states hold only tensors, numbers, tuples and None: loadable with weights_only=True
        return {"opt_g": self.opt_g_.state_dict(), "opt_d": self.opt_d_.state_dict(),
                "n_steps": self.n_steps_, "n_reinit_d": self.n_reinit_d_}

    def _set_extra_state(self, extra: dict[str, Any]) -> None:
        self.opt_g_.load_state_dict(extra["opt_g"])
        self.opt_d_.load_state_dict(extra["opt_d"])
        self.n_steps_ = int(extra["n_steps"])
        self.n_reinit_d_ = int(extra["n_reinit_d"])

    def _prepare(self, X: torch.Tensor) -> torch.Tensor:
        """Scaled inputs → what the networks see: images resized to net_shape_, channels_last."""
        if not self.image_:
            return X
        size = self.net_shape_[-1]
        if X.shape[-1] != size:
            X = F.interpolate(X, size=(size, size), mode="bilinear", align_corners=False)
        return X.contiguous(memory_format=torch.channels_last)

    # ----- training ------------------------------------------------------------------------
    def _fit(self, X: torch.Tensor, y: torch.Tensor, warm_start: bool, report: ProgressFn) -> None:
        keep = torch.nonzero(y >= 0).flatten()  # labeled anomalies (y = −1) never train GANomaly
        if len(keep) < 2:
            raise ValueError("GANomaly needs at least two samples not labeled anomalous to train on")
        # resize the pool once, in chunks, so the training set sits on the device as one tensor
        pool = torch.cat([self._prepare(X[keep[i:i + 4096]]) for i in range(0, len(keep), 4096)])
        if self.image_:
            pool = pool.contiguous(memory_format=torch.channels_last)
        self.train_index_ = keep.cpu().numpy()  # which rows of X this fit trained on
        per_epoch = len(batch_slices(len(pool), self.batch_size, None, shuffle=False))
        self.steps_per_epoch_ = per_epoch
        fixed = self.finetune_steps if warm_start else self.steps
        if fixed is not None:
            steps = max(int(fixed), 1)
        else:
            steps = max(round((self.finetune_epochs if warm_start else self.epochs) * per_epoch), 1)
        self._train(pool, steps, "finetune" if warm_start else "train", report)

    def _batches(self, n: int, steps: int, g: torch.Generator) -> Iterator[torch.Tensor | slice]:
        """`steps` index batches: whole shuffled epochs, the last one cut short if steps say so."""
        done = 0
        while done < steps:
            for idx in batch_slices(n, self.batch_size, g, shuffle=True):
                if done == steps:
                    return
                done += 1
                yield idx

    def _train(self, pool: torch.Tensor, steps: int, phase: str, report: ProgressFn) -> None:
        gen, disc = self.gen_, self.disc_
        gen.train()
        disc.train()
        g = self._generator()
        loss_sum = torch.zeros((), device=pool.device)  # summed on the device: no sync per step
        since = 0
        idx_device = pool.device
        for step, idx in enumerate(self._batches(len(pool), steps, g), start=1):
            self._check_stop()
            xb = pool[idx.to(idx_device)]
            loss_g, loss_d = self._train_step(xb)
            loss_sum += loss_g
            since += 1
            # the reference's rule (pitfall 14); a host sync, free on CPU
            if loss_d.item() < REINIT_D_BELOW:
                disc.apply(dcgan_init)
                self.n_reinit_d_ += 1
            self.n_steps_ += 1
            if step % self.steps_per_epoch_ == 0 or step % self.report_every == 0 or step == steps:
                report(Progress(phase, step, steps, float(loss_sum) / since, step / steps))
                loss_sum.zero_()
                since = 0
                gen.train()  # a progress callback may have scored in eval mode
                disc.train()

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
        x_hat = self.gen_(self._prepare(X))[0]
        if self.image_ and x_hat.shape[-1] != self.input_shape_[-1]:
            size = self.input_shape_[-2:]
            x_hat = F.interpolate(x_hat, size=size, mode="bilinear", align_corners=False, antialias=True)
        return x_hat.contiguous()
