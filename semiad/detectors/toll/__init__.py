from semiad.detectors.toll.model import Toll

__all__ = ["Toll"]
