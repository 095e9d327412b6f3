"""What every detector shares: device, seeding, input scaling, batching, progress, save/load.

A method module only says what makes it different: its networks, its loss and its training
loop (`_build`, `_fit`, `_score`, `_embed`). Labels follow Deep SAD's semi-targets:
+1 labeled normal, -1 labeled anomaly, 0 unlabeled. Scores: higher = more anomalous.
"""
from __future__ import annotations

import contextlib
import json
import pickle
import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, ClassVar, Iterator

import numpy as np
import torch
from torch import nn


@dataclass
class Progress:
    """One report from a running fit, for progress bars."""

    phase: str  # e.g. "pretrain", "train", "finetune"
    epoch: int  # epochs (or steps) done in this phase
    epochs: int  # epochs (or steps) in this phase
    loss: float  # mean loss of the last epoch
    fraction: float  # of the whole fit, 0..1


ProgressFn = Callable[[Progress], None]
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
    if str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def seed_everything(seed: int | None) -> None:
    if seed is None:
        return
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    torch.cuda.manual_seed_all(seed)


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


def batch_slices(n: int, batch_size: int, generator: torch.Generator | None, shuffle: bool) -> list[torch.Tensor | slice]:
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


class RefusedModelFile(ValueError, pickle.UnpicklingError):
    """A model file that holds more than weights (a pickle with objects or code); the message names it."""


class BaseDetector:
    """Shared machinery; subclasses set `method`, `input_range` and the four hooks."""

    method: ClassVar[str] = "base"
    # Images arrive in [0,1]; tabular columns are scaled per method, fit once on the first pool.
    input_range: ClassVar[tuple[float, float]] = (0.0, 1.0)

    def __init__(self, device: str = "auto", seed: int | None = 0, batch_size: int = 128,
                 score_batch_size: int = 2048) -> None:
        self.device = device
        self.seed = seed
        self.batch_size = batch_size
        self.score_batch_size = score_batch_size

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

    # ----- public API -----------------------------------------------------------------------
    def get_params(self) -> dict[str, Any]:
        """The constructor arguments, as stored (scikit-learn habit)."""
        import inspect

        names = []
        for cls in type(self).__mro__[:-1]:  # all but object
            if "__init__" in cls.__dict__:
                names += [p.name for p in inspect.signature(cls.__init__).parameters.values()
                          if p.name != "self" and p.kind is p.POSITIONAL_OR_KEYWORD]
        return {n: getattr(self, n) for n in dict.fromkeys(names)}

    @property
    def fitted(self) -> bool:
        return hasattr(self, "input_shape_")

    def fit(self, X: Any, y: Any = None, warm_start: bool = False,
            progress: ProgressFn | None = None, should_stop: StopFn | None = None) -> "BaseDetector":
        """Train on X with semi-targets y (+1 / −1 / 0; None = all unlabeled); warm_start continues
        from the current weights. `progress` gets a Progress at each report (per epoch, or every
        `report_every` steps). `should_stop` is asked before the fit, at the start of every training
        step and, at most every STOP_CHECK_S, between the autograd operations of a step; when it
        returns True the fit raises TrainingStopped. It must be cheap (e.g. `threading.Event.is_set`)."""
        X, y = check_inputs(X, y)
        if y is None:
            y = np.zeros(len(X), dtype=np.int64)
        warm = warm_start and self.fitted
        if warm and tuple(X.shape[1:]) != self.input_shape_:
            raise ValueError(f"warm start needs inputs of shape {self.input_shape_}, got {tuple(X.shape[1:])}")
        self.device_ = resolve_device(self.device)
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
        return self

    def decision_function(self, X: Any) -> np.ndarray:
        """Anomaly score per sample, eval mode, higher = more anomalous."""
        return self._batched(self._score, X).astype(np.float64)

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
            "extra": self._extra_state(),
            # what the model's inputs are (e.g. pretrained image features), so `python -m semiad score`
            # turns new data into the same inputs; None when the caller fitted on its own arrays
            "representation": json.dumps(getattr(self, "representation_", None)),
        }
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(path.suffix + ".tmp")
        torch.save(blob, tmp)
        tmp.replace(path)  # atomic: a crash never leaves half a model file

    @classmethod
    def load(cls, path: str | Path, device: str = "auto") -> "BaseDetector":
        """Load a saved detector; weights_only=True, so a pickle with code is refused."""
        try:
            blob = torch.load(Path(path), map_location="cpu", weights_only=True)
        except pickle.UnpicklingError as e:  # code or arbitrary objects inside: never executed
            raise RefusedModelFile(f"{path}: refused, not a plain weights file (loading it would need "
                                   f"unpickling arbitrary objects)") from e
        if not isinstance(blob, dict) or blob.get("format") != "semiad-detector-1":
            raise ValueError(f"{path} is not a semiad model file")
        if cls.method not in ("base", blob["method"]):
            raise ValueError(f"{path} holds a {blob['method']} model, not {cls.method}")
        det_cls = cls if cls.method != "base" else registry()[blob["method"]]
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
        det._set_extra_state(blob["extra"])
        representation = json.loads(blob.get("representation") or "null")
        if representation is not None:
            det.representation_ = representation
        return det

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
            raise ValueError(f"expected inputs of shape {self.input_shape_}, got {tuple(X.shape[1:])}")
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

    def _generator(self) -> torch.Generator:
        g = torch.Generator()
        g.manual_seed(0 if self.seed is None else self.seed * 1000 + self.n_fits_)
        return g


def registry() -> dict[str, type[BaseDetector]]:
    """Method name -> detector class, for loading a model file of unknown method."""
    from semiad import detectors

    return {cls.method: cls for cls in detectors.ALL}
