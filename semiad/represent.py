"""What a detector sees: the samples' own inputs ("pixels": images or table rows as loaded),
pretrained image features ("features": `semiad.features`, one 1280-vector per image), or both side by
side ("features+pixels": the features, then the flattened model input; the default loop's two views).

    X = model_inputs(samples.X, {"kind": "features", "backbone": "efficientnet-lite0", "size": 224})

A representation is a small JSON-able dict, recorded with every run and in every model file, so
scoring new data turns it into the same inputs the model was fitted on.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

KINDS = ("pixels", "features", "features+pixels")


def uses_features(representation: dict[str, Any] | None) -> bool:
    """Whether the representation needs a pretrained backbone's features (computed once, cached)."""
    return (representation or {}).get("kind", "pixels") != "pixels"


def check(representation: dict[str, Any], images: bool) -> dict[str, Any]:
    """The representation with its defaults filled in; a clear error for one that cannot apply."""
    from semiad import features

    rep = dict(representation or {"kind": "pixels"})
    if rep.get("kind") not in KINDS:
        raise ValueError(f"representation kind must be one of {KINDS}, got {rep.get('kind')!r}")
    if uses_features(rep):
        if not images:
            raise ValueError("pretrained features need images; a table is used as it is (representation pixels)")
        rep.setdefault("backbone", features.DEFAULT_BACKBONE)
        rep.setdefault("size", features.DEFAULT_SIZE)
        if rep["backbone"] not in features.BACKBONES:
            raise ValueError(f"unknown backbone {rep['backbone']!r}; choose from {sorted(features.BACKBONES)}")
    return rep


def model_inputs(X: np.ndarray, representation: dict[str, Any], cache_path: str | Path | None = None,
                 device: str = "auto", progress: Callable[[int, int], None] | None = None,
                 should_stop: Callable[[], bool] | None = None,
                 paths: Sequence[str] | None = None, originals: Any = None) -> np.ndarray:
    """The detector's inputs for samples X (N×C×H×W images in [0, 1] or N×D rows) under `representation`.
    Features are cached at `cache_path` when one is given (see `semiad.features.features_for`). With
    `paths` (a folder of images: the original file per sample) features are computed from the original
    files at the backbone's input size, not from the small model input; a file that can no longer be
    read falls back to its model input. `originals` (`SampleSet.originals`: an image array's pictures
    at their own size) serve the same way."""
    from semiad import features

    rep = check(representation, images=np.ndim(X) == 4)
    if rep["kind"] == "pixels":
        return X
    options = dict(size=rep["size"], backbone=rep["backbone"], device=device, progress=progress,
                   should_stop=should_stop)
    if paths is not None:
        source = files_of(paths, int(rep["size"]), X)
    else:
        source = X if originals is None else originals
    F = features.extract_features(source, cache_path=cache_path, **options)
    if rep["kind"] == "features":
        return F
    d = F.shape[1]
    out = np.empty((len(F), d + int(np.prod(X.shape[1:]))), dtype=np.float32)
    out[:, :d] = F
    for a in range(0, len(X), 4096):  # the pixels in chunks: a memory-mapped X is never read whole
        out[a:a + 4096, d:] = np.asarray(X[a:a + 4096], dtype=np.float32).reshape(-1, out.shape[1] - d)
    return out


def files_of(paths: Sequence[str], size: int, fallback: np.ndarray, batch: int = 32) -> Any:
    """The original files as `semiad.features.Chunks` of N×3×size×size float images in [0, 1], read
    batch by batch (never all at once); sample i falls back to `fallback[i]`, resized, if its file
    cannot be read any more."""
    import torch
    import torch.nn.functional as F

    from semiad.data import DataError, _read_image
    from semiad.features import Chunks

    def resized(i: int) -> np.ndarray:
        x = torch.as_tensor(np.asarray(fallback[i:i + 1], dtype=np.float32))
        x = F.interpolate(x.expand(1, 3, *x.shape[2:]), size=(size, size), mode="bilinear", align_corners=False)
        return x[0].clamp(0, 1).numpy()

    def read(i: int) -> np.ndarray:
        try:
            return _read_image(Path(paths[i]), size, color=True)
        except (DataError, OSError):
            return resized(i)

    def chunks():
        for a in range(0, len(paths), batch):
            yield np.stack([read(i) for i in range(a, min(a + batch, len(paths)))])

    return Chunks(chunks, len(paths))


def input_shape(representation: dict[str, Any] | None, sample_shape: tuple[int, ...]) -> tuple[int, ...]:
    """The shape of one detector input under `representation`, for samples of `sample_shape`."""
    rep = representation or {"kind": "pixels"}
    if not uses_features(rep):
        return tuple(sample_shape)
    dims = feature_dims(rep)
    return (dims + int(np.prod(sample_shape)),) if rep["kind"] == "features+pixels" else (dims,)


def feature_dims(representation: dict[str, Any]) -> int:
    """How many pretrained features lead each input (0 for pixels)."""
    from semiad import features

    if not uses_features(representation):
        return 0
    return features.BACKBONES[representation.get("backbone", features.DEFAULT_BACKBONE)].dims


def describe(representation: dict[str, Any] | None) -> str:
    """A short human description, e.g. 'EfficientNet-Lite0 features (224 px)' or 'pixels'."""
    rep = representation or {"kind": "pixels"}
    if not uses_features(rep):
        return "the inputs as loaded (pixels or table columns)"
    text = f"{rep.get('backbone', 'pretrained')} features ({rep.get('size', '?')} px)"
    return text + " and the pixels" if rep["kind"] == "features+pixels" else text
