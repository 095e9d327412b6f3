"""Deep SAD (Ruff et al., ICLR 2020) — and Deep SVDD when no sample is labeled. methods.md §2."""
from __future__ import annotations

import copy
from typing import Any

import torch
from torch import nn

from semiad.detectors.base import BaseDetector, Param, ProgressFn, arguments, torch_threads
from semiad.detectors.deepsad.loss import center, deep_sad_loss
from semiad.detectors.deepsad.networks import AutoEncoder, build


class DeepSAD(BaseDetector):
    """Deep Semi-supervised Anomaly Detection.

    Labels: y=0 (unlabeled) and y=+1 (labeled normal, weight η) are pulled to the centre c;
    y=−1 (labeled anomaly) is pushed away through the inverse distance η/(‖φ(x)−c‖²+ε). With no
    labels the objective is Deep SVDD's. Score: ‖φ(x)−c‖². Embedding: φ(x).

    First fit: autoencoder pretraining on all samples → the encoder's weights are copied into φ
    (and checked, methods.md pitfall 1) → c from an eval-mode pass over y∈{0,+1} → Deep SAD epochs.
    `fit(..., warm_start=True)` keeps φ and c and fine-tunes for `finetune_epochs` at `finetune_lr`.

    Defaults follow the official MNIST README command (lr 1e-4, 150+150 epochs, milestone 50, weight
    decays 0.5e-6 / 0.5e-3, batch 128). Deviation: the LR scheduler steps after each epoch (the
    reference steps before, firing milestones one epoch early). `oversample_labeled` (off by default,
    i.e. paper mode) adds up to batch_size/8 labeled samples to every batch, so a handful of expert
    labels is seen in every step.

    Speed: on CPU, training can be pinned to `num_threads` intra-op threads (default None: torch's
    setting). On an unshared 2-core machine two threads are faster (1.2 vs 1.65 s per pretraining
    epoch on MNIST); on an oversubscribed one their OpenMP threads spin against other jobs and one
    thread was 7× faster per step (bench/RESULTS.md): set num_threads=1 there. Adam runs fused where the device
    supports it, and the epoch loss is summed on the device (no host sync per batch).
    """

    method = "deepsad"
    display_name = "Deep SAD"
    app_settings = (
        Param("pretrain_epochs", "Autoencoder pretraining epochs", 30, "first fit only", 0, 1000),
        Param("epochs", "Deep SAD epochs", 30, "first fit only", 1, 1000),
        Param("finetune_epochs", "Fine-tune epochs per retrain", 20, "warm start", 1, 500, warm=True),
        Param("finetune_lr", "Fine-tune learning rate", 1e-4, "warm start", 1e-6, 1e-2, warm=True),
        Param("eta", "η (weight of labeled samples)", 1.0, "", 0.01, 100.0, warm=True),
        Param("lr", "Learning rate", 1e-4, "first fit", 1e-6, 1e-2),
        Param("batch_size", "Batch size", 128, "", 2, 4096),
        Param("oversample_labeled", "Show labeled samples in every batch", True,
              "off = paper mode; on = a few expert labels are seen in every step", warm=True),
    )

    @classmethod
    def app_defaults(cls, kind: str = "image", n_samples: int = 0, input_shape: tuple[int, ...] = (1, 28, 28),
                     representation: dict[str, Any] | None = None) -> dict[str, Any]:
        """Shorter schedules above 20,000 samples, so the first model comes within minutes on a CPU."""
        hyper = super().app_defaults(kind, n_samples, input_shape, representation)
        if n_samples > 20_000:
            hyper.update(pretrain_epochs=10, epochs=10, finetune_epochs=5)
        return hyper

    def __init__(self, eta: float = 1.0, net: str = "auto", epochs: int = 150, lr: float = 1e-4,
                 milestones: tuple[int, ...] = (50,), weight_decay: float = 0.5e-6,
                 pretrain_epochs: int = 150, ae_lr: float = 1e-4, ae_milestones: tuple[int, ...] = (),
                 ae_weight_decay: float = 0.5e-3, finetune_epochs: int = 10, finetune_lr: float = 1e-5,
                 oversample_labeled: bool = False, batch_size: int = 128, device: str = "auto",
                 seed: int | None = 0, score_batch_size: int = 2048, num_threads: int | None = None,
                 contamination: float = 0.1) -> None:
        super().__init__(**arguments(locals()))

    # ----- networks ------------------------------------------------------------------------
    def _build(self) -> None:
        encoder, decoder, self.net_ = build(self.input_shape_, self.net)
        self.ae_ = self._place(AutoEncoder(encoder, decoder))
        self.phi_ = copy.deepcopy(self.ae_.encoder)
        self.c_ = torch.zeros(encoder.rep_dim, device=self.device_)

    def _modules(self) -> dict[str, nn.Module]:
        return {"phi": self.phi_}

    def _extra_state(self) -> dict[str, Any]:
        return {"c": self.c_.detach().cpu()}

    def _set_extra_state(self, extra: dict[str, Any]) -> None:
        self.c_ = extra["c"].to(self.device_)

    # ----- training ------------------------------------------------------------------------
    def _adam(self, params: Any, lr: float, weight_decay: float) -> torch.optim.Adam:
        # fused Adam: one kernel for all parameters instead of a loop of small ops per tensor
        fused = self.device_.type in ("cpu", "cuda")
        return torch.optim.Adam(params, lr=lr, weight_decay=weight_decay, fused=fused)

    def _fit(self, X: torch.Tensor, y: torch.Tensor, warm_start: bool, report: ProgressFn) -> None:
        with torch_threads(self.num_threads if self.device_.type == "cpu" else None):
            self._fit_phases(X, y, warm_start, report)

    def _fit_phases(self, X: torch.Tensor, y: torch.Tensor, warm_start: bool, report: ProgressFn) -> None:
        g = self._generator()
        if warm_start:
            self._train_phi(X, y, self.finetune_epochs, self.finetune_lr, (), "finetune", g, report, 0.0, 1.0)
            return
        total = max(self.pretrain_epochs + self.epochs, 1)
        share = self.pretrain_epochs / total
        self._pretrain(X, g, report, share)
        self.phi_.load_state_dict(self.ae_.encoder.state_dict())
        self._check_encoder_copied()
        self.c_ = self._center(X, y)
        self._train_phi(X, y, self.epochs, self.lr, self.milestones, "train", g, report, share, 1.0)

    def _check_encoder_copied(self) -> None:
        """Pitfall 1: the pretrained encoder's weights really are φ's (the reference silently keeps
        random ones). A raise, not an assert, so `python -O` keeps the check."""
        phi = self.phi_.state_dict()
        for k, v in self.ae_.encoder.state_dict().items():
            if not torch.equal(phi[k], v):
                raise RuntimeError(f"encoder weight {k} was not copied into φ")

    def _pretrain(self, X: torch.Tensor, g: torch.Generator, report: ProgressFn, share: float) -> None:
        ae = self.ae_
        opt = self._adam(ae.parameters(), self.ae_lr, self.ae_weight_decay)
        sched = torch.optim.lr_scheduler.MultiStepLR(opt, milestones=list(self.ae_milestones), gamma=0.1)

        def step(idx: torch.Tensor) -> tuple[torch.Tensor, int]:
            xb = X[idx]
            loss = torch.mean((ae(xb) - xb) ** 2)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            return loss.detach(), len(xb)

        self._run_epochs(X, self.pretrain_epochs, step, "pretrain", report, g, [sched], [ae], 0.0, share)

    @torch.no_grad()
    def _center(self, X: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        self.phi_.eval()
        keep = X[y >= 0] if bool((y >= 0).any()) else X
        step = self.score_batch_size
        z = torch.cat([self.phi_(keep[i:i + step]) for i in range(0, len(keep), step)])
        return center(z)

    def _train_phi(self, X: torch.Tensor, y: torch.Tensor, epochs: int, lr: float, milestones: tuple[int, ...],
                   phase: str, g: torch.Generator, report: ProgressFn, start: float, end: float) -> None:
        phi = self.phi_
        opt = self._adam(phi.parameters(), lr, self.weight_decay)
        sched = torch.optim.lr_scheduler.MultiStepLR(opt, milestones=list(milestones), gamma=0.1)
        labeled = torch.nonzero(y != 0).flatten()
        extra = min(len(labeled), max(self.batch_size // 8, 1)) if self.oversample_labeled else 0

        def step(idx: torch.Tensor) -> tuple[torch.Tensor, int]:
            if extra:
                pick = labeled[torch.randint(len(labeled), (extra,), generator=g)]
                idx = torch.cat([idx, pick])
            loss = deep_sad_loss(phi(X[idx]), self.c_, y[idx], self.eta)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            return loss.detach(), len(idx)

        self._run_epochs(X, epochs, step, phase, report, g, [sched], [phi], start, end)

    # ----- scoring -------------------------------------------------------------------------
    def _score(self, X: torch.Tensor) -> torch.Tensor:
        return torch.sum((self.phi_(X) - self.c_) ** 2, dim=1)

    def _embed(self, X: torch.Tensor) -> torch.Tensor:
        return self.phi_(X)
