"""A corpus of bad inputs, built here: every one gives one clear message naming the file and the
reason, the good data beside it loads, and the app shows the message instead of a traceback."""
from __future__ import annotations

import os
import struct
import warnings
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from semiad.data import DataError, load, load_csv, load_image_folder, load_npz

APP = str(Path(__file__).resolve().parents[1] / "app.py")


# ----- builders -------------------------------------------------------------------------------

def good_png(path: Path, value: int = 120, size: tuple[int, int] = (16, 16)) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("L", size, value).save(path)
    return path


def truncated_png(path: Path) -> Path:
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (64, 64), dtype=np.uint8)).save(path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])  # header intact, pixel data cut off
    return path


def huge_png_header(path: Path, side: int = 100_000) -> Path:
    """A 60-byte PNG that declares side×side pixels: over PIL's bomb limit without any memory used."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    ihdr = struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IEND", b""))
    return path


def bad_files(folder: Path, n: int) -> list[str]:
    """n bad files of four kinds; returns their names."""
    folder.mkdir(parents=True, exist_ok=True)
    names = []
    for k in range(n):
        kind = k % 4
        p = folder / f"bad{k:03d}.{['png', 'jpg', 'png', 'gif'][kind]}"
        if kind == 0:
            p.write_bytes(b"")
        elif kind == 1:
            p.write_text("this is text, not a JPEG")
        elif kind == 2:
            truncated_png(p)
        else:
            p.write_bytes(b"GIF89a")  # not a type semiad reads
        names.append(p.name)
    return names


# ----- images ---------------------------------------------------------------------------------

def test_each_bad_image_is_named_with_its_reason_and_the_good_one_loads(tmp_path):
    good_png(tmp_path / "good.png")
    truncated_png(tmp_path / "truncated.png")
    (tmp_path / "zero.png").write_bytes(b"")
    (tmp_path / "text.jpg").write_text("hello, I am not a JPEG")
    huge_png_header(tmp_path / "bomb.png")
    s = load_image_folder(tmp_path)
    assert s.ids == ["good.png"]
    reasons = dict(s.skipped)
    assert reasons.keys() == {"truncated.png", "zero.png", "text.jpg", "bomb.png"}
    assert reasons["truncated.png"].startswith("unreadable image (image file is truncated")
    assert reasons["zero.png"] == "empty file"
    assert reasons["text.jpg"] == "not an image PIL can read"
    assert reasons["bomb.png"].startswith("image too large: over 89,478,485 pixels, the guard against")


def test_decompression_bomb_warning_and_error_thresholds(tmp_path, monkeypatch):
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)
    monkeypatch.setenv("SEMIAD_MAX_IMAGE_PIXELS", "1000")  # the loader sets Pillow's limit from it
    good_png(tmp_path / "small.png", size=(30, 30))  # 900 pixels: under the limit
    good_png(tmp_path / "warn.png", size=(40, 40))  # 1,600: PIL only warns; semiad refuses it
    good_png(tmp_path / "error.png", size=(50, 50))  # 2,500 > 2 × limit: PIL raises
    with warnings.catch_warnings(record=True) as caught, Image.open(tmp_path / "warn.png"):
        pass  # PIL itself only warns
    assert caught and issubclass(caught[0].category, Image.DecompressionBombWarning)
    with pytest.raises(Image.DecompressionBombError):
        Image.open(tmp_path / "error.png")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # and no warning leaks out of the loader
        s = load_image_folder(tmp_path)
    assert s.ids == ["small.png"]
    too_large = "image too large: over 1,000 pixels, the guard against decompression bombs " \
                "(SEMIAD_MAX_IMAGE_PIXELS raises it)"
    assert dict(s.skipped) == {"warn.png": too_large, "error.png": too_large}
    monkeypatch.setenv("SEMIAD_MAX_IMAGE_PIXELS", "3000")  # a user with large scans raises it
    assert load_image_folder(tmp_path).ids == ["error.png", "small.png", "warn.png"]


def test_16_bit_rgba_palette_images_are_read_right(tmp_path):
    Image.fromarray(np.full((8, 8), 32768, np.uint16)).save(tmp_path / "g16.png")
    assert Image.open(tmp_path / "g16.png").mode.startswith("I")
    rgba = np.zeros((8, 8, 4), np.uint8)
    rgba[:, :4] = (0, 0, 0, 255)  # left half opaque black, right half fully transparent
    Image.fromarray(rgba, "RGBA").save(tmp_path / "rgba.png")
    pal = Image.new("P", (8, 8), 1)
    pal.putpalette([0, 0, 0, 64, 64, 64] + [0] * 762)
    pal.save(tmp_path / "palette.png")
    s = load_image_folder(tmp_path, color=False)
    x = dict(zip(s.ids, s.X[:, 0]))
    assert s.skipped == []
    assert np.allclose(x["g16.png"], 32768 / 65535, atol=2 / 255)  # scaled from 16 bits, not clipped
    assert x["rgba.png"][:, :10].max() < 0.05 and x["rgba.png"][:, 18:].min() > 0.95  # transparent → white
    assert np.allclose(x["palette.png"], 64 / 255, atol=1 / 255)  # the palette colour, not the index


def test_tiff_scans_are_images_and_shown_in_the_browser_as_png_or_jpeg(tmp_path):
    from semiad.data import picture_of_file

    Image.fromarray(np.full((8, 8), 16384, np.uint16)).save(tmp_path / "scan16.tif")
    Image.fromarray(np.full((80, 80, 3), (200, 10, 10), np.uint8)).save(tmp_path / "photo.tiff")
    s = load_image_folder(tmp_path, color=True)
    assert s.ids == ["photo.tiff", "scan16.tif"] and s.skipped == []
    x = dict(zip(s.ids, s.X))
    assert np.allclose(x["scan16.tif"], 16384 / 65535, atol=2 / 255) and x["photo.tiff"][0].min() > 0.75
    assert picture_of_file(tmp_path / "photo.tiff")[1] == "image/jpeg"  # a browser cannot show TIFF
    assert picture_of_file(tmp_path / "scan16.tif")[1] == "image/png"


def test_exif_rotation_is_applied(tmp_path):
    a = np.zeros((20, 40), np.uint8)
    a[:, 20:] = 255  # stored: left half black, right half white (40 wide, 20 high)
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: rotate 90° clockwise to display
    Image.fromarray(a).save(tmp_path / "rotated.jpg", exif=exif, quality=95)
    Image.fromarray(a).save(tmp_path / "plain.jpg", quality=95)
    s = load_image_folder(tmp_path, color=False)
    rotated, plain = s.X[s.ids.index("rotated.jpg"), 0], s.X[s.ids.index("plain.jpg"), 0]
    assert plain[:, :10].mean() < 0.1 and plain[:, 18:].mean() > 0.9
    # displayed upright the black half is on top
    assert rotated[:10].mean() < 0.1 and rotated[18:].mean() > 0.9


def test_one_good_image_among_hundreds_of_bad_ones(tmp_path):
    names = bad_files(tmp_path, 300)
    good_png(tmp_path / "zz" / "good.png")
    s = load(tmp_path)
    assert s.ids == ["zz/good.png"] and s.X.shape == (1, 1, 28, 28)
    assert sorted(f for f, _ in s.skipped) == sorted(names)
    assert all(reason for _, reason in s.skipped)


def test_folders_with_no_usable_image(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match=r"empty: no usable images$"):
        load(tmp_path / "empty")
    bad_files(tmp_path / "bad", 8)
    with pytest.raises(DataError, match=r"bad: no usable images \(.*bad000.png: empty file; "
                                        r"bad001.jpg: not an image PIL can read; bad002.png: unreadable image"):
        load(tmp_path / "bad")


# ----- tables ---------------------------------------------------------------------------------

def test_csv_with_nan_text_columns_and_ragged_rows(tmp_path):
    f = tmp_path / "t.csv"
    f.write_text("a,b,name\n1,2,x\n3,,y\nnan,4,z\n5,6,w,extra\n7,8,v\n9,10\n")
    s = load_csv(f)
    # the line with an extra field keeps its place (row 3): the rows after it are named in input order
    assert s.X.tolist() == [[1, 2], [7, 8], [9, 10]] and s.ids == ["row-0", "row-4", "row-5"]
    assert s.input_ids == [f"row-{i}" for i in range(6)]
    assert s.skipped == [("t.csv column name", "not numeric"), ("t.csv row 1", "missing or non-finite value"),
                         ("t.csv row 2", "missing or non-finite value"),
                         ("t.csv row 3, line 5", "expected 3 fields, saw 4")]


@pytest.mark.parametrize("content, message", [
    ("a,b,c\n", "h.csv: no data rows"),
    ("", "h.csv: empty file"),
    ("name,kind\nx,y\nz,w\n", "h.csv: no numeric columns"),
    ("a,b\nnan,1\n2,inf\n", "h.csv: every row has a missing or non-finite value"),
    ('a,b\n"1,2\n', "h.csv: not a well-formed CSV"),
])
def test_unusable_csv_files(tmp_path, content, message):
    (tmp_path / "h.csv").write_text(content)
    with pytest.raises(DataError, match=message):
        load(tmp_path / "h.csv")


def test_mat_files_as_odds_distributes_them_and_those_refused(tmp_path):
    from scipy.io import savemat

    savemat(tmp_path / "t.mat", {"X": np.arange(12.0).reshape(6, 2), "y": np.array([[0], [1], [0], [0], [0], [0]])})
    s = load(tmp_path / "t.mat")
    assert s.kind == "tabular" and s.X.tolist()[1] == [2, 3] and s.truth.tolist() == [0, 1, 0, 0, 0, 0]
    savemat(tmp_path / "noX.mat", {"data": np.zeros((3, 2))})
    header = b"MATLAB 7.3 MAT-file".ljust(116, b" ") + b"\x00" * 8 + b"\x00\x02IM"
    (tmp_path / "v73.mat").write_bytes(header + b"\x89HDF\r\n" + b"\x00" * 100)
    (tmp_path / "junk.mat").write_bytes(b"hello")
    for name, message in (("noX.mat", "no array named X \\(found data\\)"),
                          ("v73.mat", "a MATLAB v7.3 \\(HDF5\\) file"), ("junk.mat", "not a readable .mat file")):
        with pytest.raises(DataError, match=f"{name}: {message}"):
            load(tmp_path / name)


def test_npz_files_that_are_refused(tmp_path):
    np.savez(tmp_path / "noX.npz", data=np.zeros((3, 2)))
    np.savez(tmp_path / "obj.npz", X=np.array([{"a": 1}, None], dtype=object))
    np.savez(tmp_path / "objy.npz", X=np.zeros((2, 2)), y=np.array(["a", None], dtype=object))
    np.savez(tmp_path / "mismatch.npz", X=np.zeros((5, 2)), y=np.zeros(4))
    np.savez(tmp_path / "text.npz", X=np.array([["a", "b"]]))
    (tmp_path / "pickle.npz").write_bytes(__import__("pickle").dumps({"X": [1, 2]}))
    np.save(tmp_path / "single.npy", np.zeros((3, 2)))
    os.replace(tmp_path / "single.npy", tmp_path / "single.npz")
    (tmp_path / "zero.npz").write_bytes(b"")
    (tmp_path / "cut.npz").write_bytes((tmp_path / "mismatch.npz").read_bytes()[:100])
    expected = {
        "noX.npz": "noX.npz: no array named X (found data)",
        "obj.npz": "obj.npz: holds object arrays, which would need unpickling; refused",
        "objy.npz": "objy.npz: holds object arrays, which would need unpickling; refused",
        "mismatch.npz": "mismatch.npz: X has 5 rows but y has 4",
        "text.npz": "text.npz: X is not numeric",
        "pickle.npz": "pickle.npz: a pickle file, which would need unpickling; refused",
        "single.npz": "single.npz: a single .npy array, not a .npz archive",
        "zero.npz": "zero.npz: empty file",
        "cut.npz": "cut.npz: not a readable .npz file",
    }
    for name, message in expected.items():
        with pytest.raises(DataError) as e:
            load_npz(tmp_path / name)
        assert str(e.value).startswith(message), (name, str(e.value))


def test_a_pickled_model_file_is_refused_without_running_it(tmp_path):
    import pickle

    from semiad.detectors.base import BaseDetector

    marker = tmp_path / "payload-ran"

    class Payload:
        def __reduce__(self):
            return (os.mkdir, (str(marker),))

    model = tmp_path / "model.pt"
    model.write_bytes(pickle.dumps({"format": "semiad-detector-1", "x": Payload()}))
    with pytest.raises(pickle.UnpicklingError, match=r"model.pt: refused, not a plain weights file") as e:
        BaseDetector.load(model)
    assert isinstance(e.value, ValueError)
    assert not marker.exists()


# ----- the app shows the message --------------------------------------------------------------

@pytest.fixture
def app(tmp_path, monkeypatch):
    from streamlit.testing.v1 import AppTest

    monkeypatch.setenv("SEMIAD_HOME", str(tmp_path / "workspace"))
    monkeypatch.delenv("SEMIAD_DB_URL", raising=False)
    monkeypatch.delenv("SEMIAD_DATA_ROOT", raising=False)
    monkeypatch.setenv("SEMIAD_MAPS", "0")
    at = AppTest.from_file(APP, default_timeout=60)
    at.query_params["who"] = "alice"
    return at.run()


def create_from(at, kind: str, path: Path):
    at.radio(key="new_kind").set_value(kind).run()
    at.text_input(key="new_path").input(str(path)).run()
    return at.button(key="create").click().run()


def test_the_projects_page_shows_why_a_bad_folder_cannot_be_used(app, tmp_path):
    bad_files(tmp_path / "bad", 12)
    at = create_from(app, "Folder of images", tmp_path / "bad")
    assert not at.exception, at.exception
    assert len(at.error) == 1
    assert "no usable images" in at.error[0].value and "bad000.png: empty file" in at.error[0].value
    from state.store import Store

    assert Store(home=tmp_path / "workspace").projects() == []  # nothing half-created


def test_the_projects_page_shows_why_a_bad_csv_cannot_be_used(app, tmp_path):
    (tmp_path / "header.csv").write_text("a,b,c\n")
    at = create_from(app, "Table (.npz, .csv or .mat)", tmp_path / "header.csv")
    assert not at.exception, at.exception
    assert [e.value for e in at.error] == ["header.csv: no data rows"]
    (tmp_path / "obj.npz").write_bytes(__import__("pickle").dumps([1]))
    at = create_from(at, "Table (.npz, .csv or .mat)", tmp_path / "obj.npz")
    assert not at.exception
    assert [e.value for e in at.error] == ["obj.npz: a pickle file, which would need unpickling; refused"]
    from scipy.io import savemat

    from state.store import Store

    savemat(tmp_path / "odds.mat", {"X": np.random.default_rng(0).normal(size=(40, 3)), "y": np.eye(40)[0][:, None]})
    at = create_from(at, "Table (.npz, .csv or .mat)", tmp_path / "odds.mat")
    assert not at.exception and not at.error
    (project,) = Store(home=tmp_path / "workspace").projects()
    assert project.n_samples == 40
    (tmp_path / "gaps.csv").write_text("id,a,b\nx,1,2\ny,3,\nz,5,6\n")
    at = create_from(at.switch_page("pages/home.py").run(), "Table (.npz, .csv or .mat)", tmp_path / "gaps.csv")
    assert not at.exception and not at.error
    def review_note():
        return [e for e in at.expander if "left out or flagged" in e.label]

    assert len(review_note()) == 1  # Review shows what was left out
    at.switch_page("pages/review.py").run()
    (note,) = review_note()  # and still does when it draws again (it does while the first model trains)
    note.button[0].click().run()
    at.switch_page("pages/review.py").run()
    assert review_note() == []  # hidden when asked
    at.switch_page("pages/home.py").run()
    (left_out,) = [e for e in at.expander if "from loading gaps" in e.label]  # on record after the note is gone
    assert left_out.label.startswith("1 note(s)")
    assert left_out.dataframe[0].value["file"].tolist() == ["gaps.csv row 1 (id y)"]  # the CSV's own id too


def test_the_project_name_follows_the_folder_typed_after_the_page_drew(app, tmp_path):
    """The name box proposes the folder's name even though the page first drew with no path (a user
    who types only the path must not be told that the project needs a name)."""
    for i in range(6):
        good_png(tmp_path / "scans" / f"s{i}.png", value=40 * i)
    at = create_from(app, "Folder of images", tmp_path / "scans")
    assert not at.exception, at.exception
    assert not at.error, [e.value for e in at.error]
    from state.store import Store

    assert [p.name for p in Store(home=tmp_path / "workspace").projects()] == ["scans"]


def test_a_project_name_typed_before_the_path_arrives_is_kept_and_an_empty_one_is_the_files(app, tmp_path):
    """The folder's name is only proposed (the box's placeholder): a name typed in the same rerun as the path
    is the project's (the box was drawn anew with the folder's name, and the typed one was lost)."""
    from state.store import Store

    rng = np.random.default_rng(0)
    np.savez(tmp_path / "arr.npz", X=rng.normal(size=(40, 3)))
    app.radio(key="new_kind").set_value("Table (.npz, .csv or .mat)").run()
    app.text_input(key="new_path").input(str(tmp_path / "arr.npz"))
    app.text_input(key="new_name-Table (.npz, .csv or .mat)").input("my table")  # before the page runs again
    at = app.button(key="create").click().run()
    assert not at.exception and not at.error, (at.exception, at.error)
    at.switch_page("pages/home.py").run()
    at.radio(key="new_kind").set_value("Table (.npz, .csv or .mat)").run()
    at.text_input(key="new_path").input(str(tmp_path / "arr.npz")).run()
    assert at.text_input(key="new_name-Table (.npz, .csv or .mat)").placeholder == "arr"
    at.text_input(key="new_name-Table (.npz, .csv or .mat)").input("").run()
    at.button(key="create").click().run()
    assert not at.exception and not at.error, (at.exception, [e.value for e in at.error])
    assert sorted(p.name for p in Store(home=tmp_path / "workspace").projects()) == ["arr", "my table"]


def test_a_path_pasted_with_spaces_around_it_proposes_its_name_and_a_name_taken_is_said_before_loading(
        app, tmp_path, monkeypatch):
    from semiad import data
    from state.store import Store

    for i in range(6):
        good_png(tmp_path / "scans" / f"s{i}.png", value=40 * i)
    at = create_from(app, "Folder of images", f" {tmp_path / 'scans'}/ ")  # as pasted from a terminal
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert [p.name for p in Store(home=tmp_path / "workspace").projects()] == ["scans"]
    at.switch_page("pages/home.py").run()
    loads = []
    monkeypatch.setattr(data, "load", lambda *a, **k: loads.append(a))  # would the page load it again?
    at = create_from(at, "Folder of images", tmp_path / "scans")
    assert [e.value for e in at.error] == ["A project named 'scans' exists already: give this one another name."]
    assert loads == []  # said at once, not after loading the data


def test_the_path_of_one_image_asks_for_its_folder(tmp_path):
    good_png(tmp_path / "one.png")
    with pytest.raises(DataError, match="one.png is one image: give the folder that holds the images"):
        load(tmp_path / "one.png")
