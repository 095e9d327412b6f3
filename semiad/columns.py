"""What a table row's card shows: the columns where the row is furthest from the typical row."""
from __future__ import annotations

from typing import Sequence

import numpy as np


def column_scale(X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each column's median and spread over the rows: the interquartile range, or the standard
    deviation where that is 0 (a mostly constant or binary column), or 1 for a constant column."""
    X = np.asarray(X, dtype=np.float64)
    q1, median, q3 = np.percentile(X, [25, 50, 75], axis=0)
    spread = np.where(q3 > q1, q3 - q1, X.std(axis=0))
    return median, np.where(spread > 0, spread, 1.0)


def telling_columns(row: np.ndarray, scale: tuple[np.ndarray, np.ndarray], names: Sequence[str] | None = None,
                    n: int = 12) -> list[tuple[str, float, float]]:
    """The row's n columns furthest from the median, as (name, value, z) with z in spreads from the
    median (`column_scale`), largest |z| first: what an expert checks first. Names default to x0, x1, …"""
    values = np.asarray(row, dtype=np.float64)
    z = (values - scale[0]) / scale[1]
    names = list(names) if names is not None else [f"x{i}" for i in range(len(values))]
    return [(names[i], float(values[i]), float(z[i])) for i in np.argsort(-np.abs(z), kind="stable")[:n]]
