"""What every detector shares: device, seeding, input scaling, batching, the training loops, progress
and stop checks, optimizer state in save/load, pool resizing, parameters and the app settings it
declares, and the scikit-learn / PyOD vocabulary (`contamination`, `decision_scores_`, `threshold_`,
`predict`).

A method module only says what makes it different: its networks and loss wiring (`_build`), one
training step and how its phases are run (`_fit`, using `_run_epochs` / `_run_steps`), the score and the
embedding (`_score`, `_embed`). Labels follow Deep SAD's semi-targets: +1 labeled normal, -1 labeled
anomaly, 0 unlabeled. Scores: higher = more anomalous.

Training length has two words, each with one meaning: `epochs` (shuffled passes over the training
pool) and `steps` (optimizer updates, one batch each). Deep SAD, ESAD and AMA count epochs (their
papers' schedules); GANomaly counts epochs and takes an optional fixed `steps`; Toll counts steps
(the official code's `niter`). Toll's former names `iters` / `finetune_iters` are still accepted
(`RENAMED`) because saved runs and model files carry them.
"""
from __future__ import annotations

import contextlib
import json
import pickle
import random
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, ClassVar, Iterator, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn


@dataclass
class Progress:
    """One report from a running fit, for progress bars."""

    phase: str  # e.g. "pretrain", "train", "finetune"
    epoch: int  # epochs (or steps) done in this phase
    epochs: int  # epochs (or steps) in this phase
    loss: float | None  # mean loss of the last epoch; None where a fit has no loss (the classical methods)
    fraction: float  # of the whole fit, 0..1


ProgressFn = Callable[[Progress], None]
StepFn = Callable[[torch.Tensor], torch.Tensor]


@dataclass(frozen=True)
class Param:
    """One setting a detector shows in the app (Train page) and the CLI's defaults."""

    name: str  # the constructor argument
    label: str
    default: Any
    help: str = ""
    min: float | None = None
    max: float | None = None
    warm: bool = False  # also adjustable for a warm-start retrain
    options: tuple[str, ...] = ()  # the choices of a text setting
StopFn = Callable[[], bool]


class TrainingStopped(Exception):
    """Raised inside `fit` when the stop flag is set; the model keeps the weights of its last completed
    update (a stop can land between a step's forward and backward passes, before its update)."""


# Inside a training step, `should_stop` is asked at most this often (between autograd operations),
# so a stop lands within a fraction of a second even when one step of a wide net takes many seconds.
STOP_CHECK_S = 0.05


@contextlib.contextmanager
def stop_between_operations(should_stop: StopFn | None) -> Iterator[None]:
    """Within the block, ask `should_stop` between the autograd operations of forward and backward
    passes (at most every STOP_CHECK_S) and raise TrainingStopped when it says so.

    Uses autograd's saved-tensor hooks, which run for every operation that saves a tensor for its
    backward (in the forward pass) and again when backward uses it: the numbers computed are the
    same. The pack hook hands autograd a detached alias (same storage, no graph), so a graph that is
    never backwarded (a step stopped half-way) is freed instead of kept by a reference cycle."""
    if should_stop is None:
        yield
        return
    last = [time.monotonic()]

    def check() -> None:
        now = time.monotonic()
        if now - last[0] >= STOP_CHECK_S:
            last[0] = now
            if should_stop():
                raise TrainingStopped()

    def pack(t: torch.Tensor) -> torch.Tensor:
        check()
        return t.detach()

    def unpack(t: torch.Tensor) -> torch.Tensor:
        check()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, unpack):
        yield


def resolve_device(device: str | torch.device) -> torch.device:
    """"auto" (the GPU when there is one), "cpu", "cuda" or "cuda:N"; ValueError in words otherwise (a typo,
    or a GPU asked for where none is), not torch's RuntimeError deep inside a fit."""
    if str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        found = torch.device(device)
    except (RuntimeError, TypeError):
        raise ValueError(f"device {str(device)!r}: say auto, cpu or cuda (cuda:N for one GPU of several)") from None
    if found.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {str(device)!r}: no CUDA GPU is available here; use cpu or auto")
    return found


# Torch's global generator is shared by every thread of the process: a fit seeds it and builds its
# networks under this lock, so a fit in another thread (the app's worker) cannot draw in between.
_SEEDED_BUILD = threading.Lock()


def seed_everything(seed: int | None) -> None:
    if seed is None:
        return
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    torch.cuda.manual_seed_all(seed)


def _inputs_in_words(shape: tuple[int, ...]) -> str:
    """A sample's shape as a person names it: "21 values each (table columns, or image features and
    pixels)" or "28×28 gray images"."""
    if len(shape) == 3:
        return f"{shape[1]}×{shape[2]} {'gray' if shape[0] == 1 else 'colour'} images"
    return f"{shape[0]} values each (table columns, or image features and pixels)"


def check_inputs(X: Any, y: Any = None) -> tuple[np.ndarray, np.ndarray | None]:
    """Validate at the public boundary: 2-D tables or 4-D N×C×H×W images, finite, labels in {-1,0,1}."""
    X = np.asarray(X, dtype=np.float32)
    if X.ndim not in (2, 4):
        raise ValueError(f"X must be N×D (tabular) or N×C×H×W (images); got shape {X.shape}")
    if len(X) == 0:
        raise ValueError("X is empty")
    if not np.isfinite(X).all():
        raise ValueError("X contains NaN or infinite values")
    if y is None:
        return X, None
    y = np.asarray(y).astype(np.int64).ravel()
    if len(y) != len(X):
        raise ValueError(f"y has {len(y)} entries but X has {len(X)} samples")
    if not np.isin(y, (-1, 0, 1)).all():
        raise ValueError("y must hold semi-targets: +1 labeled normal, -1 labeled anomaly, 0 unlabeled")
    return X, y


PRECISIONS = ("fp32", "bf16")


def training_autocast(device: torch.device, precision: str) -> contextlib.AbstractContextManager:
    """Context for a training step's forward passes: nothing for "fp32"; for "bf16", autocast runs
    convolutions and matrix products in bfloat16 while weights, gradients, optimizer state and the
    losses (computed on `.float()` outputs outside the context) stay float32. Worth it on CPUs with
    native bf16 (AVX512-BF16, AMX) and on recent GPUs; scoring always runs in float32."""
    if precision == "fp32":
        return contextlib.nullcontext()
    if precision == "bf16":
        return torch.autocast(device.type, dtype=torch.bfloat16)
    raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")


def batch_slices(n: int, batch_size: int, generator: torch.Generator | None,
                 shuffle: bool) -> list[torch.Tensor | slice]:
    """Index batches for one epoch over a resident tensor (no DataLoader).

    drop_last only when there are at least two full batches, so a small pool still trains
    (methods.md pitfall 4); a trailing batch of one is merged into the previous one because
    BatchNorm cannot train on a single sample.
    """
    if n == 0:
        return []
    order = torch.randperm(n, generator=generator) if shuffle else torch.arange(n)
    if n >= 2 * batch_size:
        cuts = list(range(0, n - batch_size + 1, batch_size))
        return [order[i:i + batch_size] for i in cuts]
    bounds = list(range(0, n, batch_size)) + [n]
    if len(bounds) > 2 and bounds[-1] - bounds[-2] == 1:
        bounds.pop(-2)
    return [order[a:b] for a, b in zip(bounds[:-1], bounds[1:])]


def step_batches(n: int, batch_size: int, steps: int, generator: torch.Generator) -> Iterator[torch.Tensor | slice]:
    """`steps` index batches: consecutive shuffled epochs (`batch_slices`), the last one cut short."""
    done = 0
    while done < steps:
        for idx in batch_slices(n, batch_size, generator, shuffle=True):
            if done == steps:
                return
            done += 1
            yield idx


def training_length(epochs: float, steps: int | None, steps_per_epoch: int) -> int:
    """Steps a fit runs: `steps` when set, else round(epochs × steps per epoch); at least one."""
    if steps is not None:
        return max(int(steps), 1)
    return max(round(epochs * steps_per_epoch), 1)


class RefusedModelFile(ValueError, pickle.UnpicklingError):
    """A model file that holds more than weights (a pickle with objects or code); the message names it."""


@contextlib.contextmanager
def torch_threads(n: int | None) -> Iterator[None]:
    """Run the block with `n` intra-op threads (torch's setting is process-wide), then restore it;
    None leaves the setting alone."""
    if n is None:
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def arguments(local_names: dict[str, Any]) -> dict[str, Any]:
    """A constructor's arguments from its `locals()` taken first thing: all but `self` and the
    `__class__` cell that `super()` adds."""
    return {k: v for k, v in local_names.items() if k not in ("self", "__class__")}


class BaseDetector:
    """Shared machinery; subclasses set `method`, `input_range`, their app settings and the hooks.

    What a detector declares for the app (semiad/settings.py only reads it): `display_name`,
    `app_settings` (the Params the Train page shows), `FAST` (narrower nets / fewer steps for CPU
    users) and `fast_by_default`, and `app_defaults(...)`, its defaults for a data set's kind, pool
    size and input shape.

    `contamination` (PyOD's meaning: the expected share of anomalies, in (0, 0.5]) sets `threshold_`,
    the score above which `predict` says anomalous; `decision_scores_` are the training samples' scores.
    """

    method: ClassVar[str] = "base"
    # Images arrive in [0,1]; tabular columns are scaled per method, fit once on the first pool.
    input_range: ClassVar[tuple[float, float]] = (0.0, 1.0)
    display_name: ClassVar[str] = ""
    app_settings: ClassVar[tuple[Param, ...]] = ()
    FAST: ClassVar[dict[str, Any]] = {}
    fast_by_default: ClassVar[bool] = False
    trains_network: ClassVar[bool] = True  # False: a fit of seconds, no epochs (the classical methods)
    # former constructor argument -> its current name (still accepted by __init__ and set_params)
    RENAMED: ClassVar[dict[str, str]] = {}
    # memory a fit takes beside its inputs: bytes per input value, per sample (bench/RESULTS.md, session 11)
    fit_memory: ClassVar[tuple[float, float]] = (40.0, 0.0)

    def __init__(self, device: str = "auto", seed: int | None = 0, batch_size: int = 128,
                 score_batch_size: int = 2048, contamination: float = 0.1, **hyper: Any) -> None:
        """Stores the constructor arguments under their own names (scikit-learn habit). A subclass keeps
        its explicit, typed signature (get_params reads it) and hands all of it here:
        `super().__init__(**arguments(locals()))`. A value given under a former name (`RENAMED`) sets
        the current one; the former name is not stored."""
        given = dict(device=device, seed=seed, batch_size=batch_size, score_batch_size=score_batch_size,
                     contamination=contamination, **hyper)
        for name, value in given.items():
            if name not in self.RENAMED:
                self._store(name, value)
        for name, value in given.items():
            if name in self.RENAMED and value is not None:
                self._store(self.RENAMED[name], value)

    def _store(self, name: str, value: Any) -> None:
        # lists as tuples: a model file's JSON params give lists for the tuple settings (milestones, hidden)
        setattr(self, name, tuple(value) if isinstance(value, list) else value)

    @classmethod
    def app_defaults(cls, kind: str = "image", n_samples: int = 0, input_shape: tuple[int, ...] = (1, 28, 28),
                     representation: dict[str, Any] | None = None) -> dict[str, Any]:
        """The app's settings for a fresh model on this data: `kind` "image" or "tabular", the pool's
        size (0: unknown), one sample's shape as loaded (C×H×W or D) and what the model sees of it
        (`representation`; None: the sample itself). By default the `app_settings` defaults, with an
        image first fit on a pool of known size shortened by `_image_first_fit`."""
        from semiad import represent

        hyper = {p.name: p.default for p in cls.app_settings}
        if kind == "image" and n_samples > 0:
            hyper.update(cls._image_first_fit(hyper, n_samples, represent.input_shape(representation, input_shape)))
        return hyper

    @classmethod
    def _image_first_fit(cls, hyper: dict[str, Any], n_samples: int, input_shape: tuple[int, ...]) -> dict[str, Any]:
        """The training length that keeps a first fit on `n_samples` images within a CPU budget (a
        class's FIRST_FIT_SAMPLES samples), never above the default in `hyper`; none by default.
        `input_shape`: one model input (the representation's, e.g. (1280,) for features)."""
        return {}

    # ----- hooks -----------------------------------------------------------------------------
    def _build(self) -> None:
        raise NotImplementedError

    def _fit(self, X: torch.Tensor, y: torch.Tensor, warm_start: bool, report: ProgressFn) -> None:
        raise NotImplementedError

    def _score(self, X: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def _embed(self, X: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def _modules(self) -> dict[str, nn.Module]:
        """Named modules whose state_dicts make up the saved model."""
        raise NotImplementedError

    def _extra_state(self) -> dict[str, Any]:
        """Tensors and plain values besides module weights that the score needs (e.g. c)."""
        return {}

    def _set_extra_state(self, extra: dict[str, Any]) -> None:
        pass

    def _optimizers(self) -> dict[str, torch.optim.Optimizer]:
        """Named optimizers whose state is saved with the model, so a warm start continues them."""
        return {}

    # ----- public API -----------------------------------------------------------------------
    def get_params(self) -> dict[str, Any]:
        """The constructor arguments, as stored (scikit-learn habit): the class's own signature, which
        declares them all (it hands them to this base)."""
        import inspect

        names = [p.name for p in inspect.signature(type(self).__init__).parameters.values()
                 if p.name != "self" and p.kind is p.POSITIONAL_OR_KEYWORD]
        return {n: getattr(self, n) for n in names if n not in self.RENAMED}

    def set_params(self, **params: Any) -> "BaseDetector":
        """Change constructor arguments (scikit-learn habit), e.g. a warm start's fine-tune settings;
        a former name (`RENAMED`) sets its current one. Unknown names raise ValueError."""
        valid = self.get_params()
        for name, value in params.items():
            name = self.RENAMED.get(name, name)
            if name not in valid:
                raise ValueError(f"{type(self).__name__} has no parameter {name!r}; valid: {sorted(valid)}")
            self._store(name, value)
        return self

    @property
    def fitted(self) -> bool:
        return hasattr(self, "input_shape_")

    def _check_memory(self, X: np.ndarray) -> None:
        """Refuse a fit that would not fit in free memory (`fit_memory`) before it starts: running out
        part-way takes down the process, and with it the app's server."""
        from semiad.data import human_size, memory_short

        per_value, per_sample = self.fit_memory
        need = int(per_value * X.size + per_sample * len(X))
        free = memory_short(need)
        if free is not None:
            shape = "×".join(str(d) for d in X.shape)
            raise MemoryError(f"training {self.display_name or self.method} on {shape} inputs needs about "
                              f"{human_size(need)} of memory, but only {human_size(free)} is free; "
                              "train on a part of the data, or on a machine with more memory")

    def fit(self, X: Any, y: Any = None, warm_start: bool = False,
            progress: ProgressFn | None = None, should_stop: StopFn | None = None) -> "BaseDetector":
        """Train on X with semi-targets y (+1 / −1 / 0; None = all unlabeled); warm_start continues
        from the current weights. `progress` gets a Progress at each report (per epoch, or every
        `report_every` steps). `should_stop` is asked before the fit, at the start of every training
        step and, at most every STOP_CHECK_S, between the autograd operations of a step; when it
        returns True the fit raises TrainingStopped. It must be cheap (e.g. `threading.Event.is_set`)."""
        X, y = check_inputs(X, y)
        self._check_memory(X)
        if not 0.0 < float(self.contamination) <= 0.5:
            raise ValueError(f"contamination must be in (0, 0.5], got {self.contamination!r}")
        if y is None:
            y = np.zeros(len(X), dtype=np.int64)
        warm = warm_start and self.fitted
        if warm and tuple(X.shape[1:]) != self.input_shape_:
            raise ValueError(f"warm start needs inputs of shape {self.input_shape_}, got {tuple(X.shape[1:])}")
        self.device_ = resolve_device(self.device)
        with _SEEDED_BUILD:
            seed_everything(self.seed if not warm else (None if self.seed is None else self.seed + self.n_fits_))
            if not warm:
                for attr in ("input_shape_", "n_fits_"):  # a failed build must not leave a "fitted" detector
                    self.__dict__.pop(attr, None)
                shape = tuple(int(s) for s in X.shape[1:])
                self._fit_scaler(X)
                self.input_shape_ = shape  # _build reads it
                try:
                    self._build()
                except Exception:
                    del self.input_shape_
                    raise
                self.n_fits_ = 0
        self.n_fits_ += 1
        # random draws inside training steps come from the fit's own stream, never the global one
        self._noise = self._generator(stream=1)
        Xt = self._to_tensor(X)
        yt = torch.as_tensor(y, device=self.device_)

        def report(p: Progress) -> None:
            if should_stop is not None and should_stop():
                raise TrainingStopped()
            if progress is not None:
                progress(p)

        self._stop_fn = should_stop  # read by _check_stop in every method's step loop
        try:
            self._check_stop()
            with stop_between_operations(should_stop):
                self._fit(Xt, yt, warm, report)
        finally:
            self.__dict__.pop("_stop_fn", None)
        self.decision_scores_ = self._training_scores(X)
        self.threshold_ = float(np.quantile(self.decision_scores_, 1.0 - float(self.contamination)))
        return self

    def _training_scores(self, X: np.ndarray) -> np.ndarray:
        """The training samples' scores after a fit (`decision_scores_`): a scoring pass, unless a
        method already has them from its fit."""
        return self.decision_function(X)

    def decision_function(self, X: Any) -> np.ndarray:
        """Anomaly score per sample, eval mode, higher = more anomalous."""
        return self._batched(self._score, X).astype(np.float64)

    def predict(self, X: Any) -> np.ndarray:
        """1 for samples scored above `threshold_` (the training scores' 1 − contamination quantile), else 0."""
        if not hasattr(self, "threshold_"):
            raise RuntimeError("fit the detector first (a model file saved before thresholds has none: fit it again)")
        return (self.decision_function(X) > self.threshold_).astype(np.int64)

    def embed(self, X: Any) -> np.ndarray:
        """Latent vector per sample (the space shown on the map)."""
        return self._batched(self._embed, X)

    def save(self, path: str | Path) -> None:
        if not self.fitted:
            raise RuntimeError("fit the detector before saving it")
        blob = {
            "format": "semiad-detector-1",
            "method": self.method,
            "params": json.dumps(self.get_params()),
            "input_shape": list(self.input_shape_),
            "n_fits": self.n_fits_,
            "scaler": {k: torch.as_tensor(v) for k, v in self.scaler_.items()},
            "modules": {name: m.state_dict() for name, m in self._modules().items()},
            "extra": self._saved_extra(),
            # what the model's inputs are (e.g. pretrained image features), so `python -m semiad score`
            # turns new data into the same inputs; None when the caller fitted on its own arrays
            "representation": json.dumps(getattr(self, "representation_", None)),
            # a table's column names, so new data is matched by name (None where the inputs had none)
            "columns": json.dumps(getattr(self, "columns_", None)),
            "threshold": json.dumps(getattr(self, "threshold_", None)),
        }
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(path.suffix + ".tmp")
        torch.save(blob, tmp)
        tmp.replace(path)  # atomic: a crash never leaves half a model file

    @classmethod
    def load(cls, path: str | Path, device: str = "auto") -> "BaseDetector":
        """Load a saved detector (a model file, or the app's run folder that holds one); weights_only=True,
        so a pickle with code is refused."""
        path = Path(path)
        if path.is_dir() and (path / "model.pt").is_file():  # an app run's folder (state.store.run_files)
            path = path / "model.pt"
        try:
            blob = torch.load(path, map_location="cpu", weights_only=True)
        except pickle.UnpicklingError as e:  # code or arbitrary objects inside: never executed
            raise RefusedModelFile(f"{path}: refused, not a plain weights file (loading it would need "
                                   f"unpickling arbitrary objects)") from e
        except OSError as e:
            raise ValueError(f"{path}: cannot read the model ({e.strerror or e})") from e
        except Exception as e:  # not a torch file, or a cut-off one: torch says so in its own words
            raise ValueError(f"{path} is not a semiad model file (unreadable: {type(e).__name__})") from e
        if not isinstance(blob, dict) or blob.get("format") != "semiad-detector-1":
            raise ValueError(f"{path} is not a semiad model file")
        if cls.method not in ("base", blob["method"]):
            raise ValueError(f"{path} holds a {blob['method']} model, not {cls.method}")
        if cls.method == "base":
            from semiad.detectors import registry

            det_cls = registry()[blob["method"]]
        else:
            det_cls = cls
        params = json.loads(blob["params"])
        params["device"] = device
        det = det_cls(**params)
        det.device_ = resolve_device(device)
        det.input_shape_ = tuple(blob["input_shape"])
        det.n_fits_ = int(blob["n_fits"])
        det.scaler_ = {k: v.numpy() for k, v in blob["scaler"].items()}
        det._build()
        for name, module in det._modules().items():
            module.load_state_dict(blob["modules"][name])
        det._load_extra(blob["extra"])
        representation = json.loads(blob.get("representation") or "null")
        if representation is not None:
            det.representation_ = representation
        columns = json.loads(blob.get("columns") or "null")
        if columns is not None:
            det.columns_ = columns
        threshold = json.loads(blob.get("threshold") or "null")
        if threshold is not None:
            det.threshold_ = float(threshold)
        return det

    def _saved_extra(self) -> dict[str, Any]:
        """The method's extra state, its optimizers' states and its step count, under one key each."""
        extra = {**self._extra_state(), **{k: o.state_dict() for k, o in self._optimizers().items()}}
        if "n_steps_" in self.__dict__:
            extra["n_steps"] = self.n_steps_
        return extra

    def _load_extra(self, extra: dict[str, Any]) -> None:
        self._set_extra_state(extra)
        # Adam states hold only tensors, numbers, tuples and None: loadable with weights_only=True
        for k, o in self._optimizers().items():
            o.load_state_dict(extra[k])
        if "n_steps" in extra:
            self.n_steps_ = int(extra["n_steps"])

    # ----- reconstructions (for difference maps) -------------------------------------------
    @property
    def can_reconstruct(self) -> bool:
        """Whether this detector has a decoder whose output x̂ is worth showing (`reconstruct`)."""
        return type(self)._reconstruct is not BaseDetector._reconstruct

    def _reconstruct(self, X: torch.Tensor) -> torch.Tensor:
        """Scaled inputs → x̂ in the scaled space and the inputs' shape; subclasses with a decoder."""
        raise NotImplementedError(f"{type(self).__name__} has no reconstruction")

    def _unscale(self, Z: np.ndarray) -> np.ndarray:
        """Inverse of `_scale`: model space → the inputs' units."""
        lo, hi = self.input_range
        unit = (Z - lo) / (hi - lo)
        if not self.scaler_:
            return unit
        s = self.scaler_
        return (unit * s["span"] + s["min"]) * s["std"] + s["mean"]

    def reconstruct(self, X: Any) -> np.ndarray:
        """x̂ per sample, eval mode, in the inputs' scale and shape (images in [0, 1], e.g. 28×28 for
        28×28 input; tables in the original column units) — for |x − x̂| difference maps."""
        if not self.can_reconstruct:
            raise NotImplementedError(f"{type(self).__name__} has no reconstruction")
        out = self._unscale(self._batched(self._reconstruct, X))
        if out.ndim == 4:
            out = np.clip(out, 0.0, 1.0)
        return out.astype(np.float32)

    # ----- helpers for subclasses ------------------------------------------------------------
    def _check_stop(self) -> None:
        """Called by every method's training loop at the start of each step (each optimizer update):
        raises TrainingStopped when the fit's `should_stop` says so."""
        stop = self.__dict__.get("_stop_fn")
        if stop is not None and stop():
            raise TrainingStopped()

    def _run_epochs(self, X: torch.Tensor, epochs: int, step: Callable[[torch.Tensor], tuple[torch.Tensor, int]],
                    phase: str, report: ProgressFn, generator: torch.Generator,
                    schedulers: Sequence[torch.optim.lr_scheduler.LRScheduler] = (),
                    modules: Sequence[nn.Module] = (), start: float = 0.0, end: float = 1.0) -> None:
        """`epochs` shuffled passes over X in batches (`batch_slices`). `step(idx)` runs one update on
        the rows idx (an index tensor on X's device) and returns (loss, samples it saw). Before each
        epoch `modules` go to train mode; after it the schedulers step and one Progress reports the
        epoch's mean loss (summed on the device: no host sync per batch), its fraction of the fit
        running from `start` to `end`."""
        for epoch in range(epochs):
            for m in modules:
                m.train()
            total, count = torch.zeros((), device=X.device), 0
            for idx in batch_slices(len(X), self.batch_size, generator, shuffle=True):
                self._check_stop()
                loss, n = step(idx.to(X.device))
                total += loss * n
                count += n
            for s in schedulers:
                s.step()
            report(Progress(phase, epoch + 1, epochs, total.item() / max(count, 1),
                            start + (end - start) * (epoch + 1) / max(epochs, 1)))

    def _run_steps(self, pool: torch.Tensor, steps: int, step: StepFn, phase: str, report: ProgressFn,
                   batch_size: int, report_every: int, modules: Sequence[nn.Module],
                   steps_per_epoch: int | None = None) -> None:
        """`steps` updates, `step(batch)` each on a batch of pool rows from consecutive shuffled epochs;
        a Progress every `report_every` steps, at the last one and (given `steps_per_epoch`) at the end of
        every epoch, with the mean loss since the last report. After a report `modules` go back to train
        mode: a progress callback may have scored in eval mode."""
        for m in modules:
            m.train()
        g = self._generator()
        loss_sum = torch.zeros((), device=pool.device)  # summed on the device: no sync per step
        since = 0
        for done, idx in enumerate(step_batches(len(pool), batch_size, steps, g), start=1):
            self._check_stop()
            loss_sum += step(pool[idx.to(pool.device)])
            since += 1
            at_epoch_end = steps_per_epoch is not None and done % steps_per_epoch == 0
            if at_epoch_end or done % report_every == 0 or done == steps:
                report(Progress(phase, done, steps, float(loss_sum) / since, done / steps))
                loss_sum.zero_()
                since = 0
                for m in modules:
                    m.train()

    @staticmethod
    def _need_two(n: int, what: str) -> None:
        """The two-sample check: a method cannot train on fewer than two samples (BatchNorm, batches)."""
        if n < 2:
            raise ValueError(f"{what} needs at least two samples to train on, got {n}")

    def _normal_rows(self, y: torch.Tensor) -> torch.Tensor:
        """Rows not labeled anomalous (y ≥ 0): the training set of a one-class method; at least two."""
        keep = torch.nonzero(y >= 0).flatten()
        if len(keep) < 2:
            raise ValueError(f"{type(self).__name__} needs at least two samples not labeled anomalous to train on")
        return keep

    @staticmethod
    def _set_lr(optimizers: Sequence[torch.optim.Optimizer], lr: float, **group: Any) -> None:
        """Reset the learning rate (and e.g. weight decay) of every parameter group: a warm start's
        fine-tune rate, or the first fit's rate again after one."""
        for opt in optimizers:
            for g in opt.param_groups:
                g["lr"] = lr
                g.update(group)

    def _memory_format(self) -> torch.memory_format:
        """channels_last for images: same maths; oneDNN's convolutions run much faster in NHWC on CPU
        (a GANomaly step measured 1.6×)."""
        return torch.channels_last if len(self.input_shape_) == 3 else torch.contiguous_format

    def _place(self, module: nn.Module) -> nn.Module:
        """A freshly built module on the fit's device, in the inputs' memory format."""
        return module.to(self.device_, memory_format=self._memory_format())

    def _prepare(self, X: torch.Tensor) -> torch.Tensor:
        """Scaled inputs → what the networks see. Detectors whose image nets take a fixed side set
        `net_shape_` (C×H×W) in `_build`: images are resized to it (one batched bilinear
        interpolation) and kept channels_last. Others see their inputs as they are."""
        shape = getattr(self, "net_shape_", None)
        if X.ndim != 4 or shape is None:
            return X
        if tuple(X.shape[-2:]) != tuple(shape[-2:]):
            X = F.interpolate(X, size=tuple(shape[-2:]), mode="bilinear", align_corners=False)
        return X.contiguous(memory_format=torch.channels_last)

    def _training_pool(self, X: torch.Tensor, rows: torch.Tensor | None = None) -> torch.Tensor:
        """The training rows through `_prepare`, in chunks, resident on the device as one tensor."""
        rows = torch.arange(len(X), device=X.device) if rows is None else rows
        pool = torch.cat([self._prepare(X[rows[i:i + 4096]]) for i in range(0, len(rows), 4096)])
        return pool.contiguous(memory_format=torch.channels_last) if pool.ndim == 4 else pool

    def _to_input_size(self, x_hat: torch.Tensor) -> torch.Tensor:
        """A reconstruction of a resized image back at the inputs' side (antialiased when shrinking)."""
        if x_hat.ndim == 4 and x_hat.shape[-1] != self.input_shape_[-1]:
            x_hat = F.interpolate(x_hat, size=tuple(self.input_shape_[-2:]), mode="bilinear", align_corners=False,
                                  antialias=True)
        return x_hat.contiguous()

    def _fit_scaler(self, X: np.ndarray) -> None:
        """Tabular only: standardize, then min-max into `input_range`; frozen after the first fit."""
        if X.ndim != 2:
            self.scaler_ = {}
            return
        mean = X.mean(axis=0)
        std = X.std(axis=0)
        std[std == 0] = 1.0
        Z = (X - mean) / std
        lo, hi = Z.min(axis=0), Z.max(axis=0)
        span = hi - lo
        span[span == 0] = 1.0
        self.scaler_ = {"mean": mean, "std": std, "min": lo, "span": span}

    def _scale(self, X: np.ndarray) -> np.ndarray:
        if not self.scaler_:
            lo, hi = self.input_range
            return X if (lo, hi) == (0.0, 1.0) else X * (hi - lo) + lo
        s = self.scaler_
        unit = ((X - s["mean"]) / s["std"] - s["min"]) / s["span"]
        lo, hi = self.input_range
        return (unit * (hi - lo) + lo).astype(np.float32)

    def _to_tensor(self, X: np.ndarray) -> torch.Tensor:
        t = torch.as_tensor(np.ascontiguousarray(self._scale(X)), dtype=torch.float32, device=self.device_)
        # channels_last: oneDNN's convolutions on few-channel images run ~2.5x faster on CPU in NHWC
        return t.contiguous(memory_format=torch.channels_last) if t.ndim == 4 else t

    def _batched(self, fn: Callable[[torch.Tensor], torch.Tensor], X: Any) -> np.ndarray:
        if not self.fitted:
            raise RuntimeError("fit the detector first")
        X, _ = check_inputs(X)
        if tuple(X.shape[1:]) != self.input_shape_:
            raise ValueError(f"expected inputs of shape {self.input_shape_}, got {tuple(X.shape[1:])}: this model "
                             f"takes {_inputs_in_words(self.input_shape_)}, these are "
                             f"{_inputs_in_words(tuple(X.shape[1:]))}; score data of the kind it was fitted on")
        if not hasattr(self, "device_"):
            self.device_ = resolve_device(self.device)
        for m in self._modules().values():
            m.eval()
        out = []
        with torch.inference_mode():
            for i in range(0, len(X), self.score_batch_size):
                xb = self._to_tensor(X[i:i + self.score_batch_size])
                out.append(fn(xb).float().cpu())
        return torch.cat(out).numpy()

    def _generator(self, stream: int = 0) -> torch.Generator:
        """A CPU generator for this fit (seed and fit count); `stream` 0 orders batches, 1 draws noise."""
        g = torch.Generator()
        base = 0 if self.seed is None else self.seed * 1000 + self.n_fits_
        g.manual_seed(base + stream * 7919)
        return g
