"""What a detector sees: the samples' own inputs ("pixels": images or table rows as loaded) or
pretrained image features ("features": `semiad.features`, one 1280-vector per image).

    X = model_inputs(samples.X, {"kind": "features", "backbone": "efficientnet-lite0", "size": 224})

A representation is a small JSON-able dict, recorded with every run and in every model file, so
scoring new data turns it into the same inputs the model was fitted on.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import numpy as np

KINDS = ("pixels", "features")


def check(representation: dict[str, Any], images: bool) -> dict[str, Any]:
    """The representation with its defaults filled in; a clear error for one that cannot apply."""
    from semiad import features

    rep = dict(representation or {"kind": "pixels"})
    if rep.get("kind") not in KINDS:
        raise ValueError(f"representation kind must be one of {KINDS}, got {rep.get('kind')!r}")
    if rep["kind"] == "features":
        if not images:
            raise ValueError("pretrained features need images; a table is used as it is (representation pixels)")
        rep.setdefault("backbone", features.DEFAULT_BACKBONE)
        rep.setdefault("size", features.DEFAULT_SIZE)
        if rep["backbone"] not in features.BACKBONES:
            raise ValueError(f"unknown backbone {rep['backbone']!r}; choose from {sorted(features.BACKBONES)}")
    return rep


def model_inputs(X: np.ndarray, representation: dict[str, Any], cache_path: str | Path | None = None,
                 device: str = "auto", progress: Callable[[int, int], None] | None = None,
                 should_stop: Callable[[], bool] | None = None) -> np.ndarray:
    """The detector's inputs for samples X (N×C×H×W images in [0, 1] or N×D rows) under `representation`.
    Features are cached at `cache_path` when one is given (see `semiad.features.features_for`)."""
    from semiad import features

    rep = check(representation, images=np.ndim(X) == 4)
    if rep["kind"] == "pixels":
        return X
    options = dict(size=rep["size"], backbone=rep["backbone"], device=device, progress=progress,
                   should_stop=should_stop)
    if cache_path is not None:
        return features.features_for(X, cache_path, **options)
    return features.extract_features(X, **options)


def describe(representation: dict[str, Any] | None) -> str:
    """A short human description, e.g. 'EfficientNet-Lite0 features (224 px)' or 'pixels'."""
    rep = representation or {"kind": "pixels"}
    if rep.get("kind") == "features":
        return f"{rep.get('backbone', 'pretrained')} features ({rep.get('size', '?')} px)"
    return "the inputs as loaded (pixels or table columns)"
