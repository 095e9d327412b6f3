"""What a detector sees: the model input as loaded, or pretrained features; for a folder of images the
features come from the original files, not from the small model input (real backbone, at 32 px)."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from semiad import represent
from semiad.data import load_image_folder
from semiad.features import extract_features

REP = {"kind": "features", "backbone": "efficientnet-lite0", "size": 64}


@pytest.fixture
def folder(tmp_path):
    rng = np.random.default_rng(0)
    for i in range(5):  # 96 px photos with fine detail a 32 px model input loses
        pixels = rng.integers(0, 256, size=(96, 96, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(tmp_path / f"{i}.png")
    return tmp_path


def test_features_of_a_folder_come_from_the_originals(folder):
    samples = load_image_folder(folder)
    assert samples.X.shape[1:] == (3, 32, 32)
    from_files = represent.model_inputs(samples.X, REP, device="cpu", paths=samples.paths)
    originals = np.stack([np.asarray(Image.open(p).convert("RGB").resize((64, 64), Image.Resampling.BILINEAR),
                                     dtype=np.float32).transpose(2, 0, 1) / 255 for p in samples.paths])
    assert np.allclose(from_files, extract_features(originals, size=64, device="cpu"), atol=1e-4)
    from_inputs = represent.model_inputs(samples.X, REP, device="cpu")
    assert not np.allclose(from_files, from_inputs, atol=1e-2)  # the small model input is not what was used


def test_features_of_an_image_array_come_from_its_own_size_also_in_a_project(tmp_path):
    from semiad.data import load_npz
    from state.store import Store

    pictures = np.random.default_rng(1).integers(0, 256, size=(5, 96, 96, 3), dtype=np.uint8)
    np.savez(tmp_path / "big.npz", X=pictures)
    samples = load_npz(tmp_path / "big.npz")
    assert samples.X.shape[1:] == (3, 32, 32) and samples.originals.shape == (5, 3, 96, 96)
    assert np.array_equal(samples.originals, pictures.transpose(0, 3, 1, 2))
    got = represent.model_inputs(samples.X, REP, device="cpu", originals=samples.originals)
    assert np.allclose(got, extract_features(samples.originals, size=64, device="cpu"), atol=1e-5)
    assert not np.allclose(got, represent.model_inputs(samples.X, REP, device="cpu"), atol=1e-2)
    store = Store(home=tmp_path / "workspace")  # a project keeps them, read back as a memory map
    kept = store.load_samples(store.create_project("big", samples)).originals
    assert isinstance(kept, np.memmap) and np.array_equal(kept, samples.originals)
    np.savez(tmp_path / "small.npz", X=pictures[:, :32, :32])
    assert load_npz(tmp_path / "small.npz").originals is None  # nothing finer than the model input
    store.close()


def test_a_file_gone_since_falls_back_to_its_model_input(folder):
    samples = load_image_folder(folder)
    (folder / "2.png").unlink()
    got = represent.model_inputs(samples.X, REP, device="cpu", paths=samples.paths)
    assert got.shape == (5, 1280) and np.isfinite(got).all()
    alone = represent.model_inputs(samples.X[2:3], REP, device="cpu")
    assert np.allclose(got[2], alone[0], atol=1e-2)


def test_pixels_and_bad_representations():
    X = np.zeros((3, 4), dtype=np.float32)
    assert represent.model_inputs(X, {"kind": "pixels"}) is X
    with pytest.raises(ValueError, match="need images"):
        represent.model_inputs(X, {"kind": "features"})
    with pytest.raises(ValueError, match="representation kind"):
        represent.check({"kind": "words"}, images=True)


def test_features_and_pixels_side_by_side():
    rng = np.random.default_rng(0)
    X = rng.random((4, 3, 32, 32)).astype(np.float32)
    both = {**REP, "kind": "features+pixels"}
    got = represent.model_inputs(X, both, device="cpu")
    assert got.shape == (4, 1280 + 3 * 32 * 32) == (4, *represent.input_shape(both, X.shape[1:]))
    assert np.allclose(got[:, :1280], represent.model_inputs(X, REP, device="cpu"), atol=1e-5)
    assert np.array_equal(got[:, 1280:], X.reshape(4, -1))
    assert represent.feature_dims(both) == 1280 and represent.feature_dims({"kind": "pixels"}) == 0
    assert represent.describe(both).endswith("and the pixels")
    with pytest.raises(ValueError, match="need images"):
        represent.model_inputs(X.reshape(4, -1), both)
