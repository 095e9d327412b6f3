from semiad.detectors.esad.model import ESAD

__all__ = ["ESAD"]
