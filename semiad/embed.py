"""2-D maps of a model's latent space: PCA (instant) and UMAP (seconds), plus a per-model-version cache.

The map shows `detector.embed(X)`. PCA is shown first; UMAP replaces it when ready. After a retrain
the latent vectors change, so the map is recomputed for the new model version, seeded with the
previous layout (`init=`) so that clusters stay roughly where the expert last saw them.

numba compiles umap-learn's and pynndescent's kernels on first use in every process (tens of
seconds); `warm_up()` pays that once, meant for a background thread at server start.
No streamlit, no database here: the caller hands `ProjectionCache` a folder (a run's artifacts).
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import time
import warnings
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

# Below this many points UMAP's neighbour graph is meaningless (and spectral init can fail): use PCA.
MIN_UMAP_POINTS = 10
# umap-learn's exact path for small sets calls the metric from Python once per pair (O(N²) calls:
# ~20 s at 3k points here); above this size use the approximate search large sets use anyway.
EXACT_NEIGHBOURS_BELOW = 500
# A refit seeded with the previous map starts near its answer: a gentler, shorter optimisation keeps
# the map steadier and is faster. Measured on 10k MNIST Deep SAD latents after a warm-start retrain
# (bench/RESULTS.md, issue 3): shift 0.12 vs 0.18 (umap-learn's defaults, 1.0 and 500 epochs) vs 0.48
# (fresh spectral layout), same 10-NN recall (0.157 / 0.159 / 0.161), 15 s vs 50 s.
REFIT_LEARNING_RATE = 0.25
REFIT_EPOCHS = 100
# Below this size the layout runs single-threaded: numba's parallel start-up per epoch dominates
# there, and on a busy machine it made a 300-point map 4-10× slower.
SINGLE_THREAD_BELOW = 5000

# What the UI may expose, with ranges that keep umap-learn in its documented regime.
UMAP_PARAMS: dict[str, dict[str, Any]] = {
    "n_neighbors": {
        "label": "Neighbours", "default": 15, "min": 2, "max": 200, "step": 1,
        "help": "How many neighbours define local structure: small values show fine clusters, "
                "large values the global shape. Capped at the number of samples minus one.",
    },
    "min_dist": {
        "label": "Minimum distance", "default": 0.1, "min": 0.0, "max": 0.99, "step": 0.05,
        "help": "How tightly points may pack: 0 gives dense clumps (good for spotting clusters), "
                "larger values spread points out evenly.",
    },
    "metric": {
        "label": "Metric", "default": "euclidean", "options": ["euclidean", "cosine", "manhattan", "correlation"],
        "help": "Distance between latent vectors. Deep SAD scores are Euclidean distances to the "
                "centre, so 'euclidean' matches what the model optimises.",
    },
}


def _check_latent(Z: Any) -> np.ndarray:
    Z = np.asarray(Z, dtype=np.float32)
    if Z.ndim == 1:
        Z = Z[:, None]
    if Z.ndim != 2:
        raise ValueError(f"Z must be N×D latent vectors; got shape {Z.shape}")
    if not np.isfinite(Z).all():
        raise ValueError("Z contains NaN or infinite values")
    return Z


def pca_2d(Z: Any) -> np.ndarray:
    """First two principal components of Z as float32 N×2 (zeros where there is no variance).

    Signs are fixed (largest loading positive) so the same Z always gives the same picture.
    """
    Z = _check_latent(Z)
    out = np.zeros((len(Z), 2), dtype=np.float32)
    if len(Z) < 2:
        return out
    centred = Z.astype(np.float64) - Z.mean(axis=0, dtype=np.float64)
    # D×D covariance is cheap for latent sizes (≤ a few hundred) however many samples there are.
    evals, evecs = np.linalg.eigh(centred.T @ centred)
    k = min(2, Z.shape[1])
    comps = evecs[:, ::-1][:, :k]
    comps *= np.sign(comps[np.abs(comps).argmax(axis=0), np.arange(k)])
    out[:, :k] = centred @ comps
    out[:, :k][:, evals[::-1][:k] <= 1e-12 * max(evals.max(), 1e-30)] = 0.0
    return out


def align_layout(prev_ids: Sequence[str], prev_coords: np.ndarray, ids: Sequence[str]) -> np.ndarray:
    """The previous map's coordinates reordered to `ids`; NaN rows for samples it did not have.

    Use this to build `umap_2d(init=...)` when the sample set changed between two model versions.
    """
    prev_coords = np.asarray(prev_coords, dtype=np.float32)
    if len(prev_ids) != len(prev_coords):
        raise ValueError(f"prev_ids has {len(prev_ids)} entries but prev_coords {len(prev_coords)} rows")
    where = {sid: i for i, sid in enumerate(prev_ids)}
    out = np.full((len(ids), 2), np.nan, dtype=np.float32)
    for row, sid in enumerate(ids):
        i = where.get(sid)
        if i is not None:
            out[row] = prev_coords[i]
    return out


def _complete_init(Z: np.ndarray, init: np.ndarray, metric: str) -> np.ndarray | None:
    """Fill unknown rows of a previous layout; None when it cannot be lined up with Z.

    Rules (documented on `umap_2d`): NaN rows are new samples; fewer rows than Z means the extra
    samples were appended after the previous map. A new sample goes to the mean previous position
    of its 5 nearest known samples in latent space.
    """
    from sklearn.neighbors import NearestNeighbors

    init = np.asarray(init, dtype=np.float32)
    if init.ndim != 2 or init.shape[1] != 2:
        raise ValueError(f"init must be an N×2 layout; got shape {init.shape}")
    if len(init) > len(Z):
        return None
    full = np.full((len(Z), 2), np.nan, dtype=np.float32)
    full[:len(init)] = init
    known = np.isfinite(full).all(axis=1)
    if known.sum() < MIN_UMAP_POINTS:
        return None
    if known.all():
        return full
    nn_metric = metric if metric in ("euclidean", "cosine", "manhattan", "correlation") else "euclidean"
    nn = NearestNeighbors(n_neighbors=min(5, int(known.sum())), metric=nn_metric).fit(Z[known])
    _, idx = nn.kneighbors(Z[~known])
    full[~known] = full[known][idx].mean(axis=1)
    return full


def umap_2d(Z: Any, n_neighbors: int = 15, min_dist: float = 0.1, metric: str = "euclidean",
            init: np.ndarray | None = None, seed: int | None = None) -> np.ndarray:
    """UMAP of the latent vectors Z to float32 N×2.

    - Fewer than `MIN_UMAP_POINTS` samples: PCA instead (UMAP needs a neighbour graph).
      `n_neighbors` is capped at N−1.
    - `init`: the previous map, so clusters stay where the expert saw them after a retrain. The
      result gets `init`'s centre and spread (scaled and shifted, never rotated). Rows line up
      with Z by position; NaN rows are samples the previous map lacked (see `align_layout`); if `init`
      has fewer rows than Z, the extra samples are taken to be appended at the end. Each new sample
      starts at the mean position of its 5 nearest known samples in latent space. If `init` has
      more rows than Z, or fewer than `MIN_UMAP_POINTS` known rows, it cannot be lined up: a
      warning is issued and UMAP's spectral initialisation is used. A seeded refit runs
      `REFIT_EPOCHS` epochs at `REFIT_LEARNING_RATE` (steadier and ~3× faster than from scratch).
    - `seed`: reproducible but single-threaded (umap-learn disables parallelism; ~2× slower on
      large sets). Below `SINGLE_THREAD_BELOW` points the map is always single-threaded and
      seeded (0 unless given), because that is faster there.
    """
    Z = _check_latent(Z)
    n = len(Z)
    if n < MIN_UMAP_POINTS:
        return pca_2d(Z)
    start = "spectral"
    frame: tuple[np.ndarray, float] | None = None
    refit: dict[str, Any] = {}
    if init is not None:
        full = _complete_init(Z, init, metric)
        if full is None:
            warnings.warn(f"init has {len(init)} rows for {n} samples and cannot be lined up; "
                          "using spectral initialisation", stacklevel=2)
        else:
            # UMAP's optimiser expects coordinates of order ±10; work there, answer in init's frame.
            mid = full.mean(axis=0)
            spread = float(np.abs(full - mid).max()) or 1.0
            scale = 10.0 / spread
            start = ((full - mid) * scale).astype(np.float32)
            frame = (mid, scale)
            refit = {"learning_rate": REFIT_LEARNING_RATE, "n_epochs": REFIT_EPOCHS}
    import umap  # slow import (numba): only when a UMAP map is asked for

    if seed is None and n < SINGLE_THREAD_BELOW:
        seed = 0  # umap-learn runs single-threaded exactly when a seed is set
    reducer = umap.UMAP(n_neighbors=max(2, min(int(n_neighbors), n - 1)), min_dist=float(min_dist),
                        metric=metric, init=start, random_state=seed, n_components=2,
                        force_approximation_algorithm=n >= EXACT_NEIGHBOURS_BELOW, **refit)
    with warnings.catch_warnings():
        # "n_jobs overridden by setting random_state" is the documented price of a seed.
        warnings.filterwarnings("ignore", message=".*n_jobs value.*overridden.*")
        coords = reducer.fit_transform(Z).astype(np.float32)
    if frame is not None:
        # The optimiser settles at its own scale: give the result the previous map's centre and
        # spread (scale + shift only, so the shape is untouched), then its units.
        coords = _match_centre_spread(coords, start) / frame[1] + frame[0]
    return coords.astype(np.float32)


def _match_centre_spread(coords: np.ndarray, target: np.ndarray) -> np.ndarray:
    c = coords - coords.mean(axis=0)
    t = target - target.mean(axis=0)
    return c * float(np.sqrt((t * t).sum() / max((c * c).sum(), 1e-12))) + target.mean(axis=0)


def warm_up(metric: str = "euclidean") -> float:
    """Compile UMAP's numba kernels (neighbour search, layout, transform) on tiny data; seconds taken.

    Call once per process, e.g. in a background thread at server start, so that the expert's first
    map does not pay the compilation. Forces the approximate neighbour search that large sets use
    (small sets take an exact path that would leave it uncompiled).
    """
    t0 = time.perf_counter()
    import umap

    rng = np.random.default_rng(0)
    Z = rng.normal(size=(300, 8)).astype(np.float32)
    reducer = umap.UMAP(n_neighbors=10, metric=metric, n_epochs=20, force_approximation_algorithm=True)
    reducer.fit(Z)
    reducer.transform(rng.normal(size=(20, 8)).astype(np.float32))
    # the init= path runs the same optimiser with a user array: compile its setup too
    umap_2d(Z, n_neighbors=10, metric=metric, init=reducer.embedding_)
    return time.perf_counter() - t0


class ProjectionCache:
    """2-D coordinates on disk, one .npy per (model version, method, parameters).

    Reopening the page or another tab reads the file instead of recomputing. Writes are atomic
    (temp file + rename), so a page never reads half a file the background worker is writing.
    If `ids` are given to `put`, they are stored too and `get(..., ids=...)` misses when the
    sample set differs (e.g. samples were added without a new model version).
    """

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)

    def _path(self, version: str, method: str, params: Mapping[str, Any] | None) -> Path:
        key = json.dumps({"v": str(version), "m": method, "p": dict(params or {})}, sort_keys=True, default=str)
        digest = hashlib.sha1(key.encode()).hexdigest()[:16]
        slug = re.sub(r"[^A-Za-z0-9_.-]+", "_", f"{version}-{method}")[:60]
        return self.folder / f"coords-{slug}-{digest}.npy"

    def get(self, version: str, method: str, params: Mapping[str, Any] | None = None,
            ids: Sequence[str] | None = None) -> np.ndarray | None:
        """The stored N×2 coordinates, or None on a miss."""
        path = self._path(version, method, params)
        try:
            coords = np.load(path, allow_pickle=False)
        except (FileNotFoundError, ValueError, OSError):
            return None
        if ids is not None:
            try:
                stored = np.load(path.with_suffix(".ids.npy"), allow_pickle=False)
            except (FileNotFoundError, ValueError, OSError):
                return None
            if len(stored) != len(ids) or not np.array_equal(stored, np.asarray(ids, dtype=str)):
                return None
        return coords

    def ids(self, version: str, method: str, params: Mapping[str, Any] | None = None) -> list[str] | None:
        """The sample ids stored with those coordinates (None if none were stored), e.g. to seed a
        new map with `align_layout(cache.ids(...), cache.get(...), new_ids)` after samples were added."""
        try:
            return np.load(self._path(version, method, params).with_suffix(".ids.npy"), allow_pickle=False).tolist()
        except (FileNotFoundError, ValueError, OSError):
            return None

    def put(self, version: str, method: str, params: Mapping[str, Any] | None, coords: np.ndarray,
            ids: Sequence[str] | None = None) -> Path:
        """Store coordinates (and optionally the sample ids they belong to); returns the file."""
        coords = np.asarray(coords, dtype=np.float32)
        if coords.ndim != 2 or coords.shape[1] != 2:
            raise ValueError(f"coords must be N×2; got shape {coords.shape}")
        if ids is not None and len(ids) != len(coords):
            raise ValueError(f"{len(ids)} ids for {len(coords)} coordinates")
        self.folder.mkdir(parents=True, exist_ok=True)
        path = self._path(version, method, params)
        if ids is not None:
            _atomic_save(path.with_suffix(".ids.npy"), np.asarray(ids, dtype=str))
        _atomic_save(path, coords)
        return path


def _atomic_save(path: Path, array: np.ndarray) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "wb") as f:
        np.save(f, array, allow_pickle=False)
    os.replace(tmp, path)
