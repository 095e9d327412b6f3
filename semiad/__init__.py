"""semiad: deep anomaly detection with a human in the loop."""
__version__ = "0.1.0"
