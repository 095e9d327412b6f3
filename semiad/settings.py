"""What the app (and `python -m semiad`) exposes of each detector: display name, main
hyperparameters, app defaults. The data-dependent choices (representation, default method) are in
semiad/defaults.py, which reads this table.

App defaults differ from the paper schedules on purpose: a first model in about a minute on a CPU,
and a retrain click that fine-tunes in seconds (warm start, labeled samples oversampled so a
handful of expert labels are seen in every batch). bench/ reproduces the papers' schedules.

CPU-friendly first fits (issue 12; every method's first fit on the bundled digits within 2 minutes
on a 2-core CPU, measured by bench/first_fit.py, figures in bench/RESULTS.md):
- Toll and AMA start with the fast setting on (their FAST: narrower nets); the full-size networks
  stay one toggle away (the paper's widths; about 16× and 60× the convolution work).
- Image first fits of Toll, AMA and GANomaly get a budget in samples passed through the networks
  (`default_hyper`): on the 198 bundled digits Toll runs 50 iterations (paper: 2,000 of batch 1,000),
  AMA 8 epochs (paper: 100), GANomaly its 15 epochs; larger pools get proportionally fewer
  iterations / epochs. Every value stays editable under Settings. The methods' code is unchanged.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from semiad import detectors
from semiad.detectors.toll.model import DEFAULTS as TOLL_DEFAULTS, architecture as toll_architecture


@dataclass(frozen=True)
class Param:
    name: str
    label: str
    default: Any
    help: str = ""
    min: float | None = None
    max: float | None = None
    warm: bool = False  # also adjustable for a warm-start retrain
    options: tuple[str, ...] = ()  # the choices of a text setting


METHODS: dict[str, tuple[str, list[Param]]] = {
    "fusion": ("Fusion (default: classical ranking + your labels)", [
        Param("prior", "First ranking", "iforest",
              "before any label: IsolationForest (tables), kNN distance (image features), or both",
              options=("iforest", "knn", "iforest+knn")),
        Param("eta", "η (how fast the weights follow each scorer's record)", 4.0, "Hedge rate", 0.0, 100.0,
              warm=True),
        Param("k", "k nearest neighbours", 10, "kNN first ranking", 1, 1000),
        Param("n_estimators", "Trees", 100, "IsolationForest first ranking", 10, 10_000),
        Param("max_negatives", "Unlabeled counter-examples per fit", 5000,
              "drawn from the lower half of the first ranking", 10, 1_000_000, warm=True),
    ]),
    "deepsad": ("Deep SAD", [
        Param("pretrain_epochs", "Autoencoder pretraining epochs", 30, "first fit only", 0, 1000),
        Param("epochs", "Deep SAD epochs", 30, "first fit only", 1, 1000),
        Param("finetune_epochs", "Fine-tune epochs per retrain", 20, "warm start", 1, 500, warm=True),
        Param("finetune_lr", "Fine-tune learning rate", 1e-4, "warm start", 1e-6, 1e-2, warm=True),
        Param("eta", "η (weight of labeled samples)", 1.0, "", 0.01, 100.0, warm=True),
        Param("lr", "Learning rate", 1e-4, "first fit", 1e-6, 1e-2),
        Param("batch_size", "Batch size", 128, "", 2, 4096),
        Param("oversample_labeled", "Show labeled samples in every batch", True,
              "off = paper mode; on = a few expert labels are seen in every step", warm=True),
    ]),
    "ganomaly": ("GANomaly", [
        Param("epochs", "Epochs", 15.0, "first fit; fractions of an epoch allowed", 0.01, 500.0),
        Param("finetune_epochs", "Fine-tune epochs per retrain", 1.0, "warm start", 0.01, 50.0, warm=True),
        Param("batch_size", "Batch size", 64, "", 2, 4096),
        Param("nz", "Latent size nz", 100, "", 2, 512),
        Param("w_con", "Contextual weight w_con", 50.0, "", 0.0, 1000.0),
        Param("precision", "Training arithmetic", "fp32",
              "bf16 autocasts the training step (about 1.7× faster on CPUs with native bf16); scores stay fp32",
              options=("fp32", "bf16")),
    ]),
    "toll": ("Toll", [
        Param("iters", "Training iterations", 300, "first fit; one batch each (paper: 2000; the default "
              "shrinks for larger image pools)", 1, 100_000),
        Param("finetune_iters", "Fine-tune iterations per retrain", 100, "warm start", 1, 10_000, warm=True),
        Param("beta", "β (weight of the latent norm ‖z‖, in loss and score)", 1000.0,
              "paper defaults: 1000 for 28×28 gray, 10 for colour and tables; 0 = a plain autoencoder",
              0.0, 100_000.0),
    ]),
    "esad": ("ESAD (provisional)", [
        Param("epochs", "Epochs", 30, "first fit", 1, 1000),
        Param("finetune_epochs", "Fine-tune epochs per retrain", 10, "warm start", 1, 500, warm=True),
        Param("finetune_lr", "Fine-tune learning rate", 1e-4, "warm start", 1e-6, 1e-2, warm=True),
        Param("lr", "Learning rate", 1e-4, "first fit", 1e-6, 1e-2),
        Param("lambda_ent", "λ₁ (latent-norm entropy term)", 1.0, "", 0.0, 100.0, warm=True),
        Param("batch_size", "Batch size", 128, "", 2, 4096),
    ]),
    "ama": ("AMA", [
        Param("epochs", "Epochs", 20, "first fit (paper: 100)", 1, 1000),
        Param("finetune_epochs", "Fine-tune epochs per retrain", 3, "warm start, constant small lr", 1, 100, warm=True),
        Param("anom_lambda", "λ_a (weight of labeled anomalies)", 1.0, "", 0.0, 100.0, warm=True),
        Param("batch_size", "Batch size", 256, "", 2, 4096),
        Param("nz", "Latent size nz", 128, "", 2, 512),
    ]),
    "iforest": ("IsolationForest", [
        Param("n_estimators", "Trees", 100, "", 10, 10_000),
    ]),
    "knn": ("kNN distance", [
        Param("k", "k nearest neighbours", 10, "", 1, 1000),
    ]),
}


def available() -> list[str]:
    return [m for m in METHODS if m in {c.method for c in detectors.ALL}]


def display_name(method: str) -> str:
    return METHODS.get(method, (method, []))[0]


def params_of(method: str) -> list[Param]:
    return METHODS[method][1]


# Image first fits of the costly methods get a budget in samples passed through the networks, so
# that the first fit takes about a minute on a CPU (bench/first_fit.py) whatever the pool size.
TOLL_FIRST_FIT_SAMPLES = 10_000  # fast width: ~50 iterations over the 198 bundled digits
AMA_FIRST_FIT_SAMPLES = 1_600  # fast width: 8 epochs over the 198 bundled digits
GANOMALY_FIRST_FIT_SAMPLES = 3_000  # full width: the paper's 15 epochs over the 198 bundled digits


def default_hyper(method: str, kind: str = "image", n_samples: int = 0,
                  input_shape: tuple[int, ...] = (1, 28, 28),
                  representation: dict[str, Any] | None = None) -> dict[str, Any]:
    """App defaults for a project: `kind` "image" or "tabular", `input_shape` one sample's (C×H×W or D).

    Given the pool size, image first fits of Toll, AMA and GANomaly get a sample budget (the
    *_FIRST_FIT_SAMPLES above; Toll at most 300 iterations, AMA 20 epochs, GANomaly 15 epochs)."""
    from semiad import defaults

    hyper = {p.name: p.default for p in params_of(method)}
    if method in ("fusion", "iforest", "knn"):  # first ranking and scaling for the data they will see
        hyper.update(defaults.classical_params(method, kind, representation or defaults.representation_for(kind, method)))
        return hyper
    if method == "deepsad" and n_samples > 20_000:  # keep the first model within minutes on a CPU
        hyper.update(pretrain_epochs=10, epochs=10, finetune_epochs=5)
    if method == "toll":  # the paper's β for the architecture this data gets (methods.md §6.4)
        hyper["beta"] = TOLL_DEFAULTS[toll_architecture(input_shape)]["beta"]
    if kind == "image" and n_samples > 0:
        if method == "toll":  # one iteration = one batch of min(pool, the paper's batch) samples
            batch = min(n_samples, int(TOLL_DEFAULTS[toll_architecture(input_shape)]["batch_size"]))
            hyper["iters"] = int(min(max(round(TOLL_FIRST_FIT_SAMPLES / batch), 10), hyper["iters"]))
        if method == "ama":
            hyper["epochs"] = int(min(max(round(AMA_FIRST_FIT_SAMPLES / n_samples), 1), hyper["epochs"]))
        if method == "ganomaly":  # fractional epochs are allowed (at least one step)
            hyper["epochs"] = float(min(round(GANOMALY_FIRST_FIT_SAMPLES / n_samples, 2) or 0.01, hyper["epochs"]))
    return hyper


def fast_setting(method: str) -> dict[str, Any]:
    """Narrower networks / fewer steps for CPU-only users, where the method defines one."""
    cls = {c.method: c for c in detectors.ALL}[method]
    return dict(getattr(cls, "FAST", {}))


FAST_BY_DEFAULT = ("toll", "ama")  # full width is far beyond 2 minutes per first fit on a CPU


def default_fast(method: str) -> bool:
    """Whether the Train page's fast toggle starts on for this method."""
    return method in FAST_BY_DEFAULT and bool(fast_setting(method))


def app_first_fit(method: str, kind: str = "image", n_samples: int = 0, input_shape: tuple[int, ...] = (1, 28, 28),
                  fast: bool | None = None, representation: dict[str, Any] | None = None) -> dict[str, Any]:
    """The run params the Train page queues for a fresh model when nothing is changed (fast=None:
    the toggle's default), e.g. for benchmarks of the first fit."""
    fast = default_fast(method) if fast is None else fast and bool(fast_setting(method))
    hyper = default_hyper(method, kind, n_samples, input_shape, representation)
    if fast:
        hyper.update(fast_setting(method))
    out = {"hyper": hyper, "warm_start": False, "fast": fast}
    if representation is not None:
        out["representation"] = representation
    return out
