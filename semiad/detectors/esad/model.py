"""ESAD — End-to-end Deep Semi-supervised Anomaly Detection (Huang et al., arXiv 2012.04905). methods.md §5."""
from __future__ import annotations

import torch
from torch import nn

from semiad.detectors.base import BaseDetector, Param, ProgressFn, arguments
from semiad.detectors.esad.loss import EPS, anomaly_score, esad_loss, reconstruction_target
from semiad.detectors.esad.networks import EncoderDecoderEncoder, build


class ESAD(BaseDetector):
    """ESAD: encoder E₁ → decoder D → encoder E₂, trained end to end. **PROVISIONAL** — the paper
    body was not available; the loss is assembled from the abstract and a third-party port
    (methods.md §5.3, pitfall 21) and must be validated against the published gains (§5.6).

    Labels: y=0 (unlabeled) and y=+1 (labeled normal) are treated alike as normal: reconstruct x,
    keep ‖z₂‖ small. y=−1 (labeled anomaly) gets the opposite pressure on both terms: its
    reconstruction target is a noisy copy x + N(0, noise_std²) (ours; the port's default perturbation
    is identity) and its entropy term is the inverse norm 1/(‖z₂‖ + ε), which pushes z₂ away from 0.
    Loss per batch: L = L_rec + λ₁·L_ent + λ₂·L_cons with L_rec = mean ‖x̂ − t‖² (summed over
    pixels), L_ent = mean of ‖z₂‖ or 1/(‖z₂‖+ε), L_cons = mean (z₁ − z₂)²; λ₁ = λ₂ = 1.
    Score: mean over pixels (x̂ − x)² + ‖z₂‖, eval mode (BatchNorm running statistics).
    Embedding: z₁ = E₁(x).

    Networks: Deep SAD's LeNets (28×28 gray: rep 32; 32×32 colour: rep 128) and MLP rule for
    tables, with biases and affine BatchNorm allowed; E₁ and E₂ have separate weights. Inputs in
    [0, 1] (tables standardized then min-max scaled by the base class).

    Training (ours, methods.md §5.5; the paper's schedule is unknown): no pretraining, Adam lr 1e-4,
    weight decay 1e-6, batch 128, 150 epochs with lr ×0.1 after epoch 50. `grad_clip` (off by
    default) clips the global gradient norm, should the inverse term spike (pitfall 20).

    Warm start (methods.md §5.7): continues all weights (E₁, D, E₂) and the Adam state (saved in
    the model file) for `finetune_epochs` at the constant `finetune_lr`, on the current semi-labels.
    """

    method = "esad"
    display_name = "ESAD (provisional)"
    app_settings = (
        Param("epochs", "Epochs", 30, "first fit", 1, 1000),
        Param("finetune_epochs", "Fine-tune epochs per retrain", 10, "warm start", 1, 500, warm=True),
        Param("finetune_lr", "Fine-tune learning rate", 1e-4, "warm start", 1e-6, 1e-2, warm=True),
        Param("lr", "Learning rate", 1e-4, "first fit", 1e-6, 1e-2),
        Param("lambda_ent", "λ₁ (latent-norm entropy term)", 1.0, "", 0.0, 100.0, warm=True),
        Param("batch_size", "Batch size", 128, "", 2, 4096),
    )

    def __init__(self, lambda_ent: float = 1.0, lambda_cons: float = 1.0, noise_std: float = 0.5,
                 eps: float = EPS, rep_dim: int | None = None, hidden: tuple[int, ...] | None = None,
                 epochs: int = 150, lr: float = 1e-4, milestones: tuple[int, ...] = (50,),
                 weight_decay: float = 1e-6, finetune_epochs: int = 10, finetune_lr: float = 1e-5,
                 grad_clip: float | None = None, batch_size: int = 128, device: str = "auto",
                 seed: int | None = 0, score_batch_size: int = 2048, contamination: float = 0.1) -> None:
        super().__init__(**arguments(locals()))

    # ----- networks ------------------------------------------------------------------------
    def _build(self) -> None:
        e1, dec, e2, self.net_, self.rep_dim_ = build(self.input_shape_, self.rep_dim, self.hidden)
        self.model_ = self._place(EncoderDecoderEncoder(e1, dec, e2))
        self.opt_ = torch.optim.Adam(self.model_.parameters(), lr=self.lr, weight_decay=self.weight_decay)
        self.n_steps_ = 0

    def _modules(self) -> dict[str, nn.Module]:
        return {"model": self.model_}

    def _optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"opt": self.opt_}

    # ----- training ------------------------------------------------------------------------
    def _fit(self, X: torch.Tensor, y: torch.Tensor, warm_start: bool, report: ProgressFn) -> None:
        self._need_two(len(X), "ESAD")
        if warm_start:
            epochs, lr, milestones, phase = self.finetune_epochs, self.finetune_lr, (), "finetune"
        else:
            epochs, lr, milestones, phase = self.epochs, self.lr, self.milestones, "train"
        self._set_lr([self.opt_], lr, weight_decay=self.weight_decay)
        sched = torch.optim.lr_scheduler.MultiStepLR(self.opt_, milestones=list(milestones), gamma=0.1)

        def step(idx: torch.Tensor) -> tuple[torch.Tensor, int]:
            return self._train_step(X[idx], y[idx]), len(idx)

        self._run_epochs(X, epochs, step, phase, report, self._generator(), [sched], [self.model_])

    def _train_step(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """One Adam step of the provisional ESAD loss on batch (x, y); returns the loss."""
        x_hat, z1, z2 = self.model_(x)
        target = reconstruction_target(x, y, self.noise_std, generator=self._noise)
        loss, _ = esad_loss(x_hat, target, z1, z2, y, self.lambda_ent, self.lambda_cons, self.eps)
        self.opt_.zero_grad(set_to_none=True)
        loss.backward()
        if self.grad_clip is not None:
            nn.utils.clip_grad_norm_(self.model_.parameters(), self.grad_clip)
        self.opt_.step()
        self.n_steps_ += 1
        return loss.detach()

    # ----- scoring -------------------------------------------------------------------------
    def _score(self, X: torch.Tensor) -> torch.Tensor:
        x_hat, _, z2 = self.model_(X)
        return anomaly_score(X, x_hat, z2)

    def _embed(self, X: torch.Tensor) -> torch.Tensor:
        return self.model_.encoder1(X)

    def _reconstruct(self, X: torch.Tensor) -> torch.Tensor:
        return self.model_(X)[0].contiguous()
