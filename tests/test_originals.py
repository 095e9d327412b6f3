"""Originals (issue 12, item 4): image-folder projects show the file a sample was loaded from —
scaled to fit on the focused card, at full resolution on a click, as a cached thumbnail in the grids
— and only files the project was created from, inside SEMIAD_DATA_ROOT when that is set."""
from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from pages.common import THUMB_ORIGINAL_PX, original_path, original_picture, sample_thumbnail
from semiad.data import DataError, confined, load_image_folder, picture_of_file
from state.store import Store
from state.worker import Worker


def photo_folder(root: Path, n: int = 12, size: tuple[int, int] = (640, 480)) -> Path:
    """Colour pictures bigger than the model input, in two class folders (the second = anomalies)."""
    rng = np.random.default_rng(0)
    for i in range(n):
        cls = "bad" if i % 6 == 5 else "good"
        (root / cls).mkdir(parents=True, exist_ok=True)
        a = (rng.random((size[1], size[0], 3)) * 60).astype(np.uint8)
        a[:, : size[0] // 2, i % 3] += 150  # a coloured half, so the pictures are really colour
        suffix = ".jpg" if i % 2 else ".png"
        Image.fromarray(a).save(root / cls / f"img{i:02d}{suffix}")
    return root


def decoded(data: bytes) -> Image.Image:
    im = Image.open(io.BytesIO(data))
    im.load()
    return im


def test_picture_of_file_scales_to_fit_and_gives_the_file_itself_at_full_size(tmp_path):
    folder = photo_folder(tmp_path / "photos", n=2)
    png = folder / "good" / "img00.png"
    data, mime, size = picture_of_file(png, 192)
    assert mime == "image/jpeg" and size == (640, 480) and decoded(data).size == (192, 144)
    full, mime, size = picture_of_file(png, None)
    assert full == png.read_bytes() and mime == "image/png" and size == (640, 480)
    tiny = tmp_path / "tiny.png"
    Image.fromarray(np.zeros((20, 30), np.uint8)).save(tiny)
    data, mime, _ = picture_of_file(tiny, 192)
    assert mime == "image/png" and decoded(data).size == (30, 20)  # never scaled up; small stays lossless
    (tmp_path / "broken.png").write_bytes(b"not a png")
    with pytest.raises(DataError):
        picture_of_file(tmp_path / "broken.png", 192)


def test_only_the_projects_own_files_inside_the_data_root_are_shown(tmp_path, monkeypatch):
    folder = photo_folder(tmp_path / "photos", n=4)
    samples = load_image_folder(folder)
    assert original_path(samples, 0) == Path(samples.paths[0])
    monkeypatch.setenv("SEMIAD_DATA_ROOT", str(tmp_path / "elsewhere"))
    assert original_path(samples, 0) is None  # outside the allowed data folder
    with pytest.raises(DataError, match="outside"):
        confined(samples.paths[0])
    monkeypatch.setenv("SEMIAD_DATA_ROOT", str(tmp_path))
    assert original_path(samples, 0) is not None
    # a file swapped for a symlink to another file since the project was made is refused
    secret = tmp_path / "secret.png"
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(secret)
    victim = Path(samples.paths[1])
    victim.unlink()
    os.symlink(secret, victim)
    assert original_path(samples, 1) is None
    Path(samples.paths[2]).unlink()  # gone: the model input is shown instead
    assert original_path(samples, 2) is None
    assert original_path(samples, 99) is None and original_path(samples, -1) is None
    no_paths = load_image_folder(folder)
    no_paths.paths = None
    assert original_path(no_paths, 0) is None


def test_grid_thumbnails_come_from_the_original_else_the_model_input(tmp_path):
    folder = photo_folder(tmp_path / "photos", n=4)
    samples = load_image_folder(folder)
    store = Store(home=tmp_path / "home")
    pid = store.create_project("photos", samples, source=str(folder))
    back = store.load_samples(pid)
    thumb = decoded(sample_thumbnail(store, back, pid, 0))
    assert max(thumb.size) == THUMB_ORIGINAL_PX and thumb.size == (192, 144)  # the original's aspect, not 32×32
    assert original_picture(back, 0, None)[2] == (640, 480)
    back.paths = None  # a project without files (digits, MNIST): the model input
    assert decoded(sample_thumbnail(store, back, pid, 0)).size[0] < THUMB_ORIGINAL_PX
    store.close()


def test_latent_map_selection_grid_shows_original_thumbnails(tmp_path, monkeypatch):
    from streamlit.testing.v1 import AppTest

    from tests.test_app import APP
    from tests.test_latent_page import selection

    monkeypatch.setenv("SEMIAD_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("SEMIAD_DB_URL", raising=False)
    monkeypatch.setenv("SEMIAD_MAPS", "0")
    folder = photo_folder(tmp_path / "photos", n=6)
    store = Store(home=tmp_path / "home")
    pid = store.create_project("photos", load_image_folder(folder), source=str(folder))
    store.request_run(pid, "deepsad", {"hyper": {"pretrain_epochs": 1, "epochs": 1}}, "setup")
    assert Worker(store, maps=False).run_once()
    run = store.latest_done_run(pid)
    at = AppTest.from_file(APP, default_timeout=120)
    at.query_params["project"] = str(pid)
    at.query_params["who"] = "alice"
    at.run()
    at.switch_page("pages/latent.py").run()
    keys = store.samples(pid)["key"].tolist()[:3]
    at.session_state[f"map-{run.id}-0"] = selection(keys, True)
    at.run()
    assert not at.exception
    urls = [im.url for image in at.image for im in image.proto.imgs]
    assert len(urls) == 3 and all(u.endswith(".jpg") for u in urls), urls  # JPEG thumbnails of the originals


@pytest.mark.parametrize("orientation, upright", [(1, (64, 48)), (3, (64, 48)), (6, (48, 64)), (8, (48, 64))])
def test_the_reported_size_is_the_upright_one(tmp_path, orientation, upright):
    exif = Image.Exif()
    exif[0x0112] = orientation
    path = tmp_path / "phone.jpg"
    Image.new("RGB", (64, 48), (200, 30, 30)).save(path, exif=exif)
    for max_px in (None, 32):
        _, _, size = picture_of_file(path, max_px=max_px)
        assert size == upright
    assert Image.open(io.BytesIO(picture_of_file(path, max_px=32)[0])).size[1] == (32 if upright[1] > 48 else 24)
