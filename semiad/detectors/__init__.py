"""Anomaly detectors with one interface: fit / decision_function / predict / embed / save / load.

The method registry lives here, once: `ALL` (in the app's order), `registry()` and `make()`; the
app settings (semiad/settings.py), the CLI and `BaseDetector.load` read it.
"""
from semiad.detectors.ama import AMA
from semiad.detectors.base import BaseDetector, Param, Progress, TrainingStopped
from semiad.detectors.classical import KNN, Fusion, IsolationForest
from semiad.detectors.deepsad import DeepSAD
from semiad.detectors.esad import ESAD
from semiad.detectors.ganomaly import GANomaly
from semiad.detectors.toll import Toll

ALL: list[type[BaseDetector]] = [Fusion, DeepSAD, GANomaly, Toll, ESAD, AMA, IsolationForest, KNN]


def registry() -> dict[str, type[BaseDetector]]:
    """Method name ("deepsad", ...) -> detector class, in the app's order."""
    return {cls.method: cls for cls in ALL}


def make(method: str, **params) -> BaseDetector:
    """A detector by its method name ("deepsad", ...)."""
    by_name = registry()
    if method not in by_name:
        raise ValueError(f"unknown method {method!r}; choose from {sorted(by_name)}")
    return by_name[method](**params)


__all__ = ["ALL", "AMA", "KNN", "BaseDetector", "DeepSAD", "ESAD", "Fusion", "GANomaly", "IsolationForest", "Param",
           "Progress", "Toll", "TrainingStopped", "make", "registry"]
