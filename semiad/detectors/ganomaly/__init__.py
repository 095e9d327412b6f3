from semiad.detectors.ganomaly.model import GANomaly

__all__ = ["GANomaly"]
