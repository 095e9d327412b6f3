"""The data loaders, each on real data: bundled digits, MNIST idx files, image folders, npz, csv."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from semiad.data import DataError, SampleSet, load, load_csv, load_digits, load_image_folder, load_mnist, load_npz

MNIST = Path(__file__).resolve().parents[2] / "shared" / "data" / "mnist"


def test_bundled_digits_are_28x28_with_about_10_percent_anomalies():
    s = load_digits()
    assert s.kind == "image" and s.X.shape[1:] == (1, 28, 28) and s.X.dtype == np.float32
    assert 0 <= s.X.min() and s.X.max() <= 1
    normal = np.array(s.classes) == "0"
    assert normal.sum() == 178  # every zero in the set
    assert s.truth.tolist() == (~normal).astype(int).tolist()
    assert s.truth.mean() == pytest.approx(0.1, abs=0.01)
    assert len(set(s.ids)) == len(s) and load_digits().ids == s.ids  # stable for the same seed
    thumb = s.thumbnail(0)
    assert thumb.shape == (28, 28) and thumb.dtype == np.uint8


def test_bundled_digits_normal_class_choice():
    s = load_digits(normal=(3, 7), anomaly_fraction=0.2, seed=1)
    classes = np.array(s.classes)
    assert set(classes[s.truth == 0]) == {"3", "7"} and not {"3", "7"} & set(classes[s.truth == 1])
    assert s.truth.mean() == pytest.approx(0.2, abs=0.01)
    assert load(None, normal=(3, 7), anomaly_fraction=0.2, seed=1).ids == s.ids  # the one entry point
    with pytest.raises(DataError, match="anomaly fraction"):
        load_digits(anomaly_fraction=1.0)
    with pytest.raises(DataError, match="no samples of the normal class"):
        load_digits(normal=(11,))


@pytest.mark.skipif(not MNIST.is_dir(), reason=f"MNIST idx files not found in {MNIST}")
def test_mnist_idx_test_split_with_normal_class_choice():
    s = load_mnist(MNIST, normal=(1,), split="test")
    assert s.X.shape[1:] == (1, 28, 28) and s.X.dtype == np.float32 and s.X.max() <= 1
    classes = np.array(s.classes)
    assert (classes[s.truth == 0] == "1").all() and (classes == "1").sum() == 1135  # all test-set ones
    assert s.truth.mean() == pytest.approx(0.1, abs=0.01)
    assert all(i.startswith("test-") for i in s.ids)
    assert load(MNIST, normal=(1,), split="test").ids == s.ids  # load() recognises the idx folder
    with pytest.raises(DataError, match="split must be"):
        load_mnist(MNIST, split="valid")


def test_an_mnist_folder_with_kaggles_dot_names_is_mnist(tmp_path):
    """train-images.idx3-ubyte, as Kaggle ships MNIST, is recognised like train-images-idx3-ubyte."""
    import struct

    rng = np.random.default_rng(0)
    for split, n in (("train", 30), ("t10k", 20)):
        images = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
        (tmp_path / f"{split}-images.idx3-ubyte").write_bytes(struct.pack(">IIII", 0x803, n, 28, 28) + images.tobytes())
        labels = np.arange(n, dtype=np.uint8) % 10
        (tmp_path / f"{split}-labels.idx1-ubyte").write_bytes(struct.pack(">II", 0x801, n) + labels.tobytes())
    s = load(tmp_path, normal=(1,), split="test")
    assert s.X.shape[1:] == (1, 28, 28) and set(np.array(s.classes)[s.truth == 0]) == {"1"}


def test_mnist_folder_without_idx_files(tmp_path):
    with pytest.raises(DataError, match="no t10k-images-idx3-ubyte"):
        load_mnist(tmp_path)
    (tmp_path / "t10k-images-idx3-ubyte").write_bytes(b"\x00\x00\x08\x03" + b"\x00" * 4)  # header cut short
    (tmp_path / "t10k-labels-idx1-ubyte").write_bytes(b"")
    with pytest.raises(DataError, match="t10k-images-idx3-ubyte: not an idx"):
        load_mnist(tmp_path)


def _png(path: Path, value: int | tuple, size: tuple[int, int] = (12, 9), mode: str = "L") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new(mode, size, value).save(path)


def test_image_folder_with_nested_class_folders_as_ground_truth(tmp_path):
    for k in range(3):
        _png(tmp_path / "ok" / f"a{k}.png", 200)
        _png(tmp_path / "ok" / "deeper" / f"b{k}.jpg", 180)
    _png(tmp_path / "scratch" / "s0.bmp", 20)
    _png(tmp_path / "top.webp", 90)
    s = load_image_folder(tmp_path, anomaly_folders=["scratch"])
    assert s.kind == "image" and s.X.shape == (8, 1, 28, 28)  # gray data → 28×28 gray
    assert "ok/deeper/b0.jpg" in s.ids and "top.webp" in s.ids
    cls = dict(zip(s.ids, s.classes))
    assert cls["ok/deeper/b1.jpg"] == "ok" and cls["scratch/s0.bmp"] == "scratch" and cls["top.webp"] == ""
    truth = dict(zip(s.ids, s.truth))
    assert truth["scratch/s0.bmp"] == 1 and sum(s.truth) == 1
    assert all(Path(p).is_file() and Path(p).is_absolute() for p in s.paths)
    x = s.X[s.ids.index("ok/a0.png")]
    assert np.allclose(x, 200 / 255, atol=1 / 255)
    with pytest.raises(DataError, match=r"no sub-folder named nope holds images \(those that do: ok, scratch\)"):
        load_image_folder(tmp_path, anomaly_folders=["nope"])
    assert load_image_folder(tmp_path, anomaly_folders=["scratch/"]).truth.tolist() == s.truth.tolist()  # as typed


def test_image_folder_gray_or_color(tmp_path):
    _png(tmp_path / "red.png", (200, 10, 10), mode="RGB")
    _png(tmp_path / "gray.png", 128)
    auto = load_image_folder(tmp_path)  # any colour in the data → 32×32 RGB
    assert auto.X.shape == (2, 3, 32, 32)
    red = auto.X[auto.ids.index("red.png")]
    assert red[0].mean() > 0.7 and red[1].mean() < 0.1
    assert auto.thumbnail(0).shape == (32, 32, 3)
    gray = load_image_folder(tmp_path, color=False)
    assert gray.X.shape == (2, 1, 28, 28)
    forced = load_image_folder(tmp_path / ".." / tmp_path.name, color=True)
    g = forced.X[forced.ids.index("gray.png")]
    assert forced.X.shape == (2, 3, 32, 32) and np.allclose(g[0], g[2])


def test_folder_with_a_corrupt_png_an_empty_file_and_a_text_file(tmp_path):
    for k in range(3):
        _png(tmp_path / f"good{k}.png", 100 + k)
    noise = np.random.default_rng(0).integers(0, 256, (64, 64), dtype=np.uint8)
    Image.fromarray(noise).save(tmp_path / "corrupt.png")
    data = (tmp_path / "corrupt.png").read_bytes()
    (tmp_path / "corrupt.png").write_bytes(data[: len(data) // 2])  # header intact, pixels cut off
    (tmp_path / "empty.png").write_bytes(b"")
    (tmp_path / "notes.txt").write_text("not an image")
    s = load(tmp_path)
    assert sorted(s.ids) == ["good0.png", "good1.png", "good2.png"]
    reasons = dict(s.skipped)
    assert set(reasons) == {"corrupt.png", "empty.png", "notes.txt"}
    assert reasons["empty.png"] == "empty file" and reasons["notes.txt"] == "not an image file type"
    assert reasons["corrupt.png"].startswith("unreadable image")


def test_npz_with_and_without_y(tmp_path):
    X = np.arange(20, dtype=np.float64).reshape(10, 2)
    np.savez(tmp_path / "t.npz", X=X, y=np.array([0] * 8 + [1, 2]))
    s = load(tmp_path / "t.npz")
    assert s.kind == "tabular" and s.X.dtype == np.float32 and np.array_equal(s.X, X)
    assert s.truth.tolist() == [0] * 8 + [1, 1] and s.ids[0] == "row-0"
    np.savez(tmp_path / "u.npz", X=X.astype(np.int16))
    assert load_npz(tmp_path / "u.npz").truth is None
    with pytest.raises(DataError, match="non-empty 2-D table"):
        np.savez(tmp_path / "v.npz", X=np.zeros(5))
        load_npz(tmp_path / "v.npz")


def test_what_float32_cannot_hold_is_said_not_lost_silently(tmp_path):
    """The models see float32: a value beyond its range skips its row with the reason (it made the whole
    file fail as 'NaN or infinite'), and a column whose values float32 cannot tell apart (millisecond
    timestamps) is named with what to do."""
    rng = np.random.default_rng(0)
    X = np.column_stack([1.7e12 + 10.0 * rng.permutation(200), rng.normal(size=200)])
    X[7, 1] = 1e39
    np.savez(tmp_path / "t.npz", X=X)
    s = load(tmp_path / "t.npz")
    assert len(s) == 199 and "row-7" not in s.ids and np.isfinite(s.X).all()
    assert ("t.npz row 7", "a value beyond float32's range (±3.4e38)") in s.skipped
    ((where, why),) = [w for w in s.skipped if "column" in w[0]]
    assert where == "t.npz column x0" and "tells only 1 of its 199 distinct values apart" in why
    assert "subtract an offset" in why
    X[:, 0] -= 1.7e12  # the same column less an offset loses nothing, and nothing is said
    X[7, 1] = 0
    np.savez(tmp_path / "u.npz", X=X)
    assert load(tmp_path / "u.npz").skipped == []
    pd_frame = __import__("pandas").DataFrame({"ts": X[:, 0] + 1.7e12, "v": X[:, 1]})
    pd_frame.to_csv(tmp_path / "t.csv", index=False)
    assert [w for w, _ in load(tmp_path / "t.csv").skipped] == ["t.csv column ts"]  # named by its header


def test_a_mat_file_cut_short_is_refused_in_words(tmp_path):
    from scipy.io import savemat

    savemat(tmp_path / "whole.mat", {"X": np.ones((50, 3)), "y": np.zeros((50, 1))})
    data = (tmp_path / "whole.mat").read_bytes()
    for n in (60, 100):
        (tmp_path / "cut.mat").write_bytes(data[:n])
        with pytest.raises(DataError, match=r"cut\.mat: not a readable \.mat file \(cut short, or not a \.mat file\)"):
            load(tmp_path / "cut.mat")


def test_an_array_too_large_for_memory_is_refused_before_it_is_read(tmp_path, monkeypatch):
    """A compressed file can expand far beyond its size on disk: the declared shape and type are checked
    first."""
    from scipy.io import savemat

    from semiad import data

    X = np.zeros((1000, 500), np.float32)  # 2 MB on the page, 6.5 MB to read (2 · 4 + 5 bytes per value)
    np.savez_compressed(tmp_path / "big.npz", X=X)
    savemat(tmp_path / "big.mat", {"X": X}, do_compression=True)
    assert (tmp_path / "big.npz").stat().st_size < 100_000
    assert load(tmp_path / "big.npz").X.shape == (1000, 500)  # fits: read as before
    monkeypatch.setattr(data, "available_memory", lambda: 4 * 2**20)
    for name in ("big.npz", "big.mat"):
        with pytest.raises(DataError, match=rf"{name}: X is 1000×500, about 6 MB once read, but only 4 MB"):
            load(tmp_path / name)
    # the same shape in bytes (2 · 1 + 5 bytes per value: 3.5 MB) fits, in either file
    np.savez_compressed(tmp_path / "bytes.npz", X=X.astype(np.uint8))
    savemat(tmp_path / "bytes.mat", {"X": X.astype(np.uint8)}, do_compression=True)
    for name in ("bytes.npz", "bytes.mat"):
        assert load(tmp_path / name).X.shape == (1000, 500)
    monkeypatch.setattr(data, "available_memory", lambda: None)  # unknown: no guard
    assert load(tmp_path / "big.mat").X.shape == (1000, 500)


def test_csv_with_a_label_column(tmp_path):
    (tmp_path / "t.csv").write_text("a,b,is_bad\n1,2,0\n3,4,1\n5,6,0\n")
    s = load(tmp_path / "t.csv", label_column="is_bad")
    assert s.X.tolist() == [[1, 2], [3, 4], [5, 6]] and s.truth.tolist() == [0, 1, 0]
    assert s.columns == ["a", "b"]  # the header, for the Review cards
    assert load_csv(tmp_path / "t.csv").X.shape == (3, 3)  # no label column named: all features
    with pytest.raises(DataError, match="t.csv: no column named 'label'"):
        load_csv(tmp_path / "t.csv", label_column="label")


def test_csv_ground_truth_in_words_and_other_separators(tmp_path):
    (tmp_path / "w.csv").write_text("a,truth\n1,Anomaly\n2,normal\n3,\n4,YES\n5,0\n6,2\n")
    assert load_csv(tmp_path / "w.csv", label_column="truth").truth.tolist() == [1, 0, 0, 1, 0, 1]
    (tmp_path / "bad.csv").write_text("a,truth\n1,anomaly\n2,maybe\n")
    with pytest.raises(DataError, match="bad.csv: column 'truth' holds 'maybe'; ground truth must be numbers"):
        load_csv(tmp_path / "bad.csv", label_column="truth")  # never read as normal
    for sep in (";", "\t", "|"):
        (tmp_path / "s.csv").write_text(f"a{sep}b{sep}truth\n1.5{sep}2{sep}normal\n3{sep}4{sep}anomalous\n")
        s = load_csv(tmp_path / "s.csv", label_column="truth")
        assert s.X.tolist() == [[1.5, 2], [3, 4]] and s.truth.tolist() == [0, 1] and s.columns == ["a", "b"]
    (tmp_path / "pm.csv").write_text("a,truth\n1,1\n2,-1\n3,1\n")  # scikit-learn's outlier convention
    assert load_csv(tmp_path / "pm.csv", label_column="truth").truth.tolist() == [0, 1, 0]
    # a blank, a word or a NaN beside -1 / +1 keeps the convention (it made every +1 an anomaly)
    (tmp_path / "pmb.csv").write_text("a,truth\n1,1\n2,-1\n3,\n4,normal\n5,1\n")
    assert load_csv(tmp_path / "pmb.csv", label_column="truth").truth.tolist() == [0, 1, 0, 0, 0]
    np.savez(tmp_path / "pmn.npz", X=np.zeros((3, 2)), y=np.array([1.0, np.nan, -1.0]))
    assert load_npz(tmp_path / "pmn.npz").truth.tolist() == [0, 0, 1]
    # a .npz's y the same way: text there made every sample an anomaly (y != 0)
    np.savez(tmp_path / "w.npz", X=np.zeros((3, 2)), y=np.array(["normal", "anomaly", "normal"]))
    assert load_npz(tmp_path / "w.npz").truth.tolist() == [0, 1, 0]
    np.savez(tmp_path / "wi.npz", X=np.zeros((3, 8, 8), np.uint8), y=np.array([True, False, False]))
    assert load_npz(tmp_path / "wi.npz").truth.tolist() == [1, 0, 0]
    np.savez(tmp_path / "bad.npz", X=np.zeros((2, 2)), y=np.array(["x", "normal"]))
    with pytest.raises(DataError, match="bad.npz: y holds 'x'"):
        load_npz(tmp_path / "bad.npz")
    (tmp_path / "eu.csv").write_text("a;b;name;truth\n1,5;2;x;normal\n-0,25;4;y;anomalous\n")  # decimal commas
    s = load_csv(tmp_path / "eu.csv", label_column="truth")
    assert s.X.tolist() == [[1.5, 2], [-0.25, 4]] and s.columns == ["a", "b"]
    assert ("eu.csv column name", "not numeric") in s.skipped
    (tmp_path / "win.csv").write_bytes("id;a;name\nx;1,5;café\n".encode("cp1252"))  # Excel on Windows
    (tmp_path / "bom.csv").write_bytes("id,a\nx,1\n".encode("utf-8-sig"))  # Excel's "CSV UTF-8"
    assert load_csv(tmp_path / "win.csv").X.tolist() == [[1.5]] and load_csv(tmp_path / "bom.csv").ids == ["x"]
    (tmp_path / "one.csv").write_text("a\n1\n2\n")
    assert load_csv(tmp_path / "one.csv").X.tolist() == [[1], [2]]


def test_integer_image_arrays_of_any_width(tmp_path):
    for X, expected in ((np.full((2, 8, 8), 204, np.int64), 0.8), (np.full((2, 8, 8), 13107, np.uint16), 0.2),
                        (np.full((2, 8, 8), 51, np.uint16), 51 / 65535)):
        np.savez(tmp_path / "i.npz", X=X)
        assert np.allclose(load_npz(tmp_path / "i.npz").X, expected)
    np.savez(tmp_path / "neg.npz", X=np.full((2, 8, 8), -1, np.int32))
    with pytest.raises(DataError, match="neg.npz: integer images must lie in 0–255"):
        load_npz(tmp_path / "neg.npz")


def test_load_refuses_unknown_sources(tmp_path):
    with pytest.raises(DataError, match="no such file or folder"):
        load(tmp_path / "missing")
    (tmp_path / "x.parquet").write_bytes(b"x")
    with pytest.raises(DataError, match="unsupported file type"):
        load(tmp_path / "x.parquet")


def test_sample_set_checks_its_parts():
    with pytest.raises(DataError, match="not unique"):
        SampleSet(ids=["a", "a"], X=np.zeros((2, 3)), kind="tabular", name="t")
    with pytest.raises(DataError, match="truth has 1 entries for 2 samples"):
        SampleSet(ids=["a", "b"], X=np.zeros((2, 3)), kind="tabular", name="t", truth=np.zeros(1))


def test_a_table_rows_card_shows_the_columns_furthest_from_the_typical_row():
    from semiad.columns import column_scale, telling_columns

    rng = np.random.default_rng(0)
    X = np.c_[rng.normal(size=(200, 3)), (rng.random(200) < 0.05).astype(float), np.full(200, 7.0)]
    X[0, 2] = 9.0  # far out in "c"
    X[0, 3] = 1.0  # rare in the mostly-0 "flag" column: its IQR is 0, so its spread is the standard deviation
    scale = column_scale(X)
    shown = telling_columns(X[0], scale, ["a", "b", "c", "flag", "const"], n=2)
    assert [name for name, _, _ in shown] == ["c", "flag"]
    assert shown[0][1] == 9.0 and shown[0][2] > 5
    assert 3 < shown[1][2] < 6  # (1 − 0) / std of a 5% binary column ≈ 4.6
    assert telling_columns(X[1], scale, n=5)[-1] == ("x4", 7.0, 0.0)  # a constant column never stands out


def test_a_csv_id_column_names_the_rows_and_is_not_a_feature(tmp_path):
    (tmp_path / "t.csv").write_text("ID,a,b\nx1,1,2\nx2,3,\nx3,5,6\n")
    s = load_csv(tmp_path / "t.csv")
    assert s.ids == ["x1", "x3"] and s.columns == ["a", "b"] and s.X.shape == (2, 2)  # x2 has a gap
    # a repeated or missing id is refused, with its rows: rows named by their place would not match the
    # labels given on them once the file is fixed (before: every row lost its id for one bad cell)
    (tmp_path / "u.csv").write_text("id,a\n7,1\n8,2\n7,3\n")
    with pytest.raises(DataError, match=r"u.csv: id '7' is on data rows 1 and 3: fix the file, or rename the "
                                        r"column 'id' to load it without ids"):
        load_csv(tmp_path / "u.csv")
    (tmp_path / "v.csv").write_text("id,a\np,1\n,2\nq,3\n\"\",4\n")
    with pytest.raises(DataError, match=r"v.csv: no id on data row 2, 4: fix the file"):
        load_csv(tmp_path / "v.csv")


def test_a_csv_ending_in_lines_of_separators_alone_keeps_its_ids(tmp_path):
    """A spreadsheet saved as CSV often ends in ",,,": those lines are no samples, and have no id to refuse."""
    (tmp_path / "t.csv").write_text("id,a,b\np1,1,2\np2,3,4\n,,\n , ,\n")
    s = load_csv(tmp_path / "t.csv")
    assert s.ids == ["p1", "p2"] and s.skipped == [] and s.input_ids is None


def test_a_word_in_a_column_of_numbers_is_named_where_its_row_is_skipped(tmp_path):
    (tmp_path / "t.csv").write_text("id,a,b\np1,1,2\np2,err,4\np3,5,\np4,6,7\n")
    s = load_csv(tmp_path / "t.csv")
    assert s.ids == ["p1", "p4"]
    assert s.skipped == [("t.csv row 1 (id p2)", "'err' in column 'a' is not a number"),
                         ("t.csv row 2 (id p3)", "missing or non-finite value")]


def test_csv_ids_that_pandas_would_read_as_missing_are_ids(tmp_path):
    """Country codes: NA is Namibia. NA, null or None in the id column are ids (all the rows lost their ids,
    and an import into a re-sorted copy then put labels on other rows); in a feature column NA is a gap."""
    (tmp_path / "c.csv").write_text("id,a,b\nUS,1,2\nNA,3,4\nnull,5,6\nNone,7,8\n007,9,NA\nFR,n/a,1\n")
    s = load_csv(tmp_path / "c.csv")
    assert s.ids == ["US", "NA", "null", "None"] and s.X.tolist() == [[1, 2], [3, 4], [5, 6], [7, 8]]
    assert not any("column id" in what for what, _ in s.skipped)  # the ids are used, two rows have gaps
    (tmp_path / "r.csv").write_text("id,a,b\nUS,1,2\nNA,3,4\nFR,5,6,7\nnull,5,6\n")  # a ragged line kept in place
    r = load_csv(tmp_path / "r.csv")
    assert r.input_ids == ["US", "NA", "FR", "null"] and r.ids == ["US", "NA", "null"]


def test_a_csv_column_with_no_value_in_any_row_is_left_out_and_named(tmp_path):
    (tmp_path / "t.csv").write_text("a,empty,b,name\n1,,2,x\n3,,4,y\n5,,6,z\n")
    s = load_csv(tmp_path / "t.csv")
    assert s.columns == ["a", "b"] and s.X.shape == (3, 2)  # no row is lost to the empty column
    assert s.skipped == [("t.csv column name", "not numeric"), ("t.csv column empty", "no value in any row")]
    (tmp_path / "u.csv").write_text("a,b,name\n,,x\n,,y\n")
    with pytest.raises(DataError, match=r"u.csv: no numeric columns \(2 column\(s\) hold no value\)"):
        load_csv(tmp_path / "u.csv")



def test_a_csv_column_named_like_ground_truth_is_flagged_when_no_label_column_is_named(tmp_path):
    pd = __import__("pandas")
    pd.DataFrame({"x": [0.1, 0.2, 0.3], "Label": [0, 0, 1]}).to_csv(tmp_path / "t.csv", index=False)
    s = load_csv(tmp_path / "t.csv")
    assert s.columns == ["x", "Label"]  # kept: the loader does not guess
    ((where, why),) = s.skipped
    assert where == "t.csv column Label" and "name it as the label column" in why
    named = load_csv(tmp_path / "t.csv", label_column="Label")
    assert named.skipped == [] and named.truth.tolist() == [0, 0, 1]


def test_ground_truth_named_Y_and_a_one_hot_table_of_booleans(tmp_path):
    from scipy.io import savemat

    X = np.eye(4, dtype=bool)[np.arange(20) % 4]
    np.savez(tmp_path / "b.npz", X=X, Y=(np.arange(20) == 3).astype(float))
    savemat(tmp_path / "b.mat", {"X": X.astype(float), "Y": (np.arange(20) == 3).astype(float)[:, None]})
    for name in ("b.npz", "b.mat"):
        s = load(tmp_path / name)
        assert s.X.dtype == np.float32 and s.X.sum() == 20 and s.truth.tolist() == [int(i == 3) for i in range(20)]
