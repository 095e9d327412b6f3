"""semiad.embed: PCA, UMAP with a previous layout, and the per-model-version projection cache.

The UMAP tests share one module-scoped fit on 144 points: the numba compilation costs tens of
seconds per fresh process and is paid once here (small data takes umap-learn's exact-neighbour
path, so pynndescent is not compiled).
"""
from __future__ import annotations

import warnings

import numpy as np
import pytest

from semiad.embed import UMAP_PARAMS, ProjectionCache, align_layout, pca_2d, umap_2d

# ----- PCA --------------------------------------------------------------------------------------

def test_pca_shape_dtype_and_variance_order():
    rng = np.random.default_rng(1)
    Z = rng.normal(size=(500, 6)) * np.array([10, 3, 1, 1, 1, 1])
    out = pca_2d(Z)
    assert out.shape == (500, 2) and out.dtype == np.float32
    assert out[:, 0].var() > out[:, 1].var() > 0
    np.testing.assert_allclose(out.mean(axis=0), 0, atol=1e-4)
    np.testing.assert_array_equal(out, pca_2d(Z))  # deterministic signs


def test_pca_degenerate_inputs():
    assert pca_2d(np.zeros((0, 4))).shape == (0, 2)
    np.testing.assert_array_equal(pca_2d(np.ones((1, 4))), np.zeros((1, 2)))
    np.testing.assert_array_equal(pca_2d(np.ones((5, 3))), np.zeros((5, 2)))  # no variance at all
    one_dim = pca_2d(np.arange(6.0)[:, None])
    assert one_dim.shape == (6, 2) and np.all(one_dim[:, 1] == 0) and one_dim[:, 0].std() > 0
    with pytest.raises(ValueError, match="NaN"):
        pca_2d(np.array([[0.0, np.nan], [1.0, 2.0]]))


def test_tiny_sets_fall_back_to_pca_without_umap():
    Z = np.random.default_rng(2).normal(size=(9, 4))  # under MIN_UMAP_POINTS
    np.testing.assert_array_equal(umap_2d(Z), pca_2d(Z))


# ----- UMAP (one shared fit) -------------------------------------------------------------------

def _sheet(side: int = 12, dim: int = 8, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A flat grid of side² points linearly embedded in `dim` dimensions: a map should unfold it."""
    rng = np.random.default_rng(seed)
    grid = np.stack(np.meshgrid(np.arange(side), np.arange(side)), -1).reshape(-1, 2).astype(float)
    Z = grid @ rng.normal(size=(2, dim)) + rng.normal(scale=0.1, size=(side * side, dim))
    return Z.astype(np.float32), grid


def _layout_error(a: np.ndarray, b: np.ndarray) -> float:
    """RMS distance between two maps after centring, relative to b's RMS radius (0 = same map)."""
    a, b = a - a.mean(axis=0), b - b.mean(axis=0)
    return float(np.sqrt(((a - b) ** 2).sum(axis=1).mean() / (b ** 2).sum(axis=1).mean()))


@pytest.fixture(scope="module")
def fitted():
    Z, grid = _sheet()
    return Z, grid, umap_2d(Z, n_neighbors=10, seed=0)


def test_umap_shape_and_neighbours(fitted):
    Z, grid, coords = fitted
    assert coords.shape == (len(Z), 2) and coords.dtype == np.float32 and np.isfinite(coords).all()
    # the unfolded sheet keeps grid neighbours together: each point's nearest map neighbour
    # is (almost always) within two grid steps
    d = np.linalg.norm(coords[:, None] - coords[None], axis=2)
    np.fill_diagonal(d, np.inf)
    steps = np.abs(grid[d.argmin(axis=1)] - grid).max(axis=1)
    assert (steps <= 2).mean() > 0.9


def test_umap_init_keeps_the_previous_layout(fitted):
    Z, _, prev = fitted
    # a "retrained model": slightly different latent vectors, seeded with the previous map
    Z2 = Z + np.random.default_rng(5).normal(scale=0.1, size=Z.shape).astype(np.float32)
    again = umap_2d(Z2, n_neighbors=10, init=prev, seed=1)
    assert again.shape == prev.shape
    np.testing.assert_allclose(again.mean(axis=0), prev.mean(axis=0), atol=1e-3)  # same place on screen
    np.testing.assert_allclose(again.std(), prev.std(), rtol=1e-3)
    assert _layout_error(again, prev) < 0.5
    # the result follows whatever layout it is given: a mirrored map stays mirrored
    mirror = prev * np.array([-1.0, 1.0], dtype=np.float32)
    follows = umap_2d(Z2, n_neighbors=10, init=mirror, seed=1)
    assert _layout_error(follows, mirror) < 0.5 < 1.0 < _layout_error(follows, prev)


def test_umap_init_with_new_samples_and_misfits(fitted):
    Z, grid, prev = fitted
    ids = [f"s{i}" for i in range(len(Z))]
    new = [0, 13, 70]  # samples the previous map did not have: aligned by id they get NaN rows
    known = [i for i in range(len(Z)) if i not in new]
    init = align_layout([ids[i] for i in known], prev[known], ids)
    assert np.isnan(init[new]).all() and np.isfinite(init[known]).all()
    out = umap_2d(Z, n_neighbors=10, init=init, seed=2)
    assert out.shape == (len(Z), 2) and np.isfinite(out).all()
    # each new sample lands among its grid neighbours
    for i in new:
        near = np.abs(grid - grid[i]).max(axis=1) == 1
        assert np.linalg.norm(out[near] - out[i], axis=1).min() < 0.1 * np.ptp(out, axis=0).max()
    # fewer rows than Z: the extra samples are taken as appended
    assert umap_2d(Z, n_neighbors=10, init=prev[:100], seed=2).shape == (len(Z), 2)
    # more rows than Z cannot be lined up: spectral init, with a warning
    with pytest.warns(UserWarning, match="cannot be lined up"):
        assert umap_2d(Z[:60], n_neighbors=10, init=prev, seed=2).shape == (60, 2)


def test_umap_caps_n_neighbors_on_small_sets(fitted):
    Z, _, _ = fitted
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # umap-learn would warn about truncating n_neighbors
        out = umap_2d(Z[:12], n_neighbors=15, seed=0)
    assert out.shape == (12, 2) and np.isfinite(out).all()


def test_umap_params_describe_the_defaults():
    assert set(UMAP_PARAMS) == {"n_neighbors", "min_dist", "metric"}
    assert UMAP_PARAMS["n_neighbors"]["default"] == 15 and UMAP_PARAMS["min_dist"]["default"] == 0.1
    assert UMAP_PARAMS["metric"]["default"] in UMAP_PARAMS["metric"]["options"]


# ----- cache ------------------------------------------------------------------------------------

def test_cache_hit_and_miss_per_version(tmp_path):
    cache = ProjectionCache(tmp_path / "run-1")
    params = {"n_neighbors": 15, "min_dist": 0.1, "metric": "euclidean"}
    coords = np.arange(20, dtype=np.float32).reshape(10, 2)
    assert cache.get("v1", "umap", params) is None
    cache.put("v1", "umap", params, coords)
    np.testing.assert_array_equal(cache.get("v1", "umap", params), coords)
    assert cache.get("v2", "umap", params) is None  # a retrained model misses
    assert cache.get("v1", "pca", params) is None
    assert cache.get("v1", "umap", {**params, "min_dist": 0.5}) is None
    # parameter order does not matter; a new cache object on the same folder (a reopened page) hits
    reopened = ProjectionCache(tmp_path / "run-1")
    np.testing.assert_array_equal(reopened.get("v1", "umap", dict(reversed(params.items()))), coords)
    cache.put("v2", "umap", params, coords + 1)
    np.testing.assert_array_equal(cache.get("v2", "umap", params), coords + 1)
    np.testing.assert_array_equal(cache.get("v1", "umap", params), coords)
    assert not list((tmp_path / "run-1").glob(".*tmp"))  # no temp files left behind


def test_cache_checks_sample_ids_and_odd_versions(tmp_path):
    cache = ProjectionCache(tmp_path)
    ids = [f"img/{i}.png" for i in range(4)]
    coords = np.ones((4, 2), dtype=np.float32)
    cache.put("run 3/model:v7", "pca", None, coords, ids=ids)
    np.testing.assert_array_equal(cache.get("run 3/model:v7", "pca", None, ids=ids), coords)
    assert cache.get("run 3/model:v7", "pca", None, ids=ids + ["img/4.png"]) is None  # a sample was added
    assert cache.get("run 3/model:v7", "pca", None, ids=ids[::-1]) is None
    assert cache.get("run 3/model:v7", "pca", None) is not None
    # the stored ids let a later map keep this layout for the samples it shares
    assert cache.ids("run 3/model:v7", "pca") == ids and cache.ids("v0", "pca") is None
    seeded = align_layout(cache.ids("run 3/model:v7", "pca"), cache.get("run 3/model:v7", "pca"), ids[1:] + ["new"])
    assert np.isfinite(seeded[:3]).all() and np.isnan(seeded[3]).all()
    assert all(p.parent == tmp_path for p in tmp_path.rglob("*.npy"))  # the version never makes folders
    with pytest.raises(ValueError):
        cache.put("v", "pca", None, np.ones((3, 3)))
