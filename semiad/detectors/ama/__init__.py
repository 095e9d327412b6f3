from semiad.detectors.ama.model import AMA

__all__ = ["AMA"]
