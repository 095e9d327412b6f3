from semiad.detectors.deepsad.model import DeepSAD

__all__ = ["DeepSAD"]
