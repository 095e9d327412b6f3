"""Every data source becomes one SampleSet: ids, model inputs, optional ground truth, originals.

Images are float32 N×C×H×W in [0,1], resized to the project's size (28×28 gray or 32×32 color);
tables are float32 N×D as read (each detector scales them). Bad files are skipped and reported by
name in `SampleSet.skipped`; a source with nothing usable raises `DataError`.
"""
from __future__ import annotations

import contextlib
import gzip
import io
import re
import warnings
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Container, Iterator, Sequence

import numpy as np

if TYPE_CHECKING:
    import pandas as pd

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff"}
GRAY_SIZE, COLOR_SIZE = 28, 32


class DataError(ValueError):
    """A data source that cannot be used; the message names the file and the reason."""


def available_memory() -> int | None:
    """Bytes of memory the system can still give (Linux: MemAvailable); None where unknown."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def check_fits(path: Path, shape: tuple[int, ...], itemsize: int) -> None:
    """Refuse an X that would not fit in memory once read, before reading it: a compressed .npz or .mat
    can expand far beyond its size on disk. Reading holds the array as stored (`itemsize` bytes per
    value), a copy of the usable rows where some are not, and the 4-byte model inputs: at most
    2 · itemsize + 5 bytes per value (the 1 for the finiteness check) must fit in what is free."""
    need = (2 * itemsize + 5) * int(np.prod(shape, dtype=np.int64))
    free = memory_short(need)
    if free is not None:
        dims = "×".join(str(d) for d in shape)
        raise DataError(f"{path.name}: X is {dims}, about {human_size(need)} once read, but only "
                        f"{human_size(free)} of memory is free; split the file into smaller parts")


def memory_short(need: int) -> int | None:
    """The free memory when `need` bytes exceed it; None when they fit or the free memory is unknown."""
    free = available_memory()
    return free if free is not None and need > free else None


def human_size(n: int) -> str:
    return f"{n / 2**30:.1f} GB" if n >= 2**30 else f"{n / 2**20:.0f} MB"


def _npz_header(archive: zipfile.ZipFile, name: str) -> tuple[tuple[int, ...], int]:
    """The shape and bytes per value an .npz member declares in its header, read without decompressing
    the data; ((), 0) when the header is not one this numpy reads (loading it then says what is wrong)."""
    fmt = np.lib.format
    with archive.open(name + ".npy") as f:
        try:
            version = fmt.read_magic(f)
            header = fmt.read_array_header_1_0 if version == (1, 0) else fmt.read_array_header_2_0
            shape, _, dtype = header(f)
            return tuple(shape), dtype.itemsize
        except ValueError:
            return (), 0


# bytes per value of the classes scipy's whosmat names (a class not listed counts as a double)
MAT_ITEMSIZE = {"int8": 1, "uint8": 1, "logical": 1, "int16": 2, "uint16": 2, "int32": 4, "uint32": 4,
                "single": 4, "int64": 8, "uint64": 8, "double": 8}


@dataclass
class SampleSet:
    ids: list[str]  # unique, stable per sample (what labels are attached to)
    X: np.ndarray  # model inputs (see module docstring)
    kind: str  # "image" or "tabular"
    name: str  # a short description of the source
    truth: np.ndarray | None = None  # ground truth if known: 1 anomaly, 0 normal
    classes: list[str] | None = None  # original class per sample (digit, folder), if any
    paths: list[str] | None = None  # original file per sample, for image folders
    columns: list[str] | None = None  # a table's column names (a CSV's header), if known
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (file, reason)
    # every sample the source held, in input order, the unusable ones (in `skipped`) included; None when
    # all were usable. `score` writes one row per input sample, so it needs the gaps' places.
    input_ids: list[str] | None = None
    # an image array's pictures at their own size (N×C×H×W uint8) when the model input X was made
    # smaller from them: the pretrained features are computed from these (a folder of images has `paths`)
    originals: np.ndarray | None = None

    def __post_init__(self) -> None:
        n = len(self.ids)
        if len(self.X) != n:
            raise DataError(f"{self.name}: {len(self.X)} inputs for {n} ids")
        if len(set(self.ids)) != n:
            raise DataError(f"{self.name}: sample ids are not unique")
        for attr in ("truth", "classes", "paths", "originals"):
            value = getattr(self, attr)
            if value is not None and len(value) != n:
                raise DataError(f"{self.name}: {attr} has {len(value)} entries for {n} samples")
        if self.columns is not None and (self.X.ndim != 2 or len(self.columns) != self.X.shape[1]):
            raise DataError(f"{self.name}: {len(self.columns)} column names for inputs of shape {self.X.shape}")

    def __len__(self) -> int:
        return len(self.ids)

    def thumbnail(self, i: int) -> np.ndarray:
        """uint8 H×W (gray) or H×W×3 picture of sample i, from the model input."""
        if self.kind != "image":
            raise ValueError("tabular samples have no picture")
        img = np.clip(self.X[i] * 255.0 + 0.5, 0, 255).astype(np.uint8)
        return img[0] if img.shape[0] == 1 else img.transpose(1, 2, 0)


# ----- default: scikit-learn's bundled digits -------------------------------------------------

def _one_vs_rest(images: np.ndarray, labels: np.ndarray, normal: Sequence[int], anomaly_fraction: float,
                 seed: int) -> np.ndarray:
    """Indices: every sample of the normal classes plus a random draw of the others so that they
    make up `anomaly_fraction` of the result (sorted, so the set is the same for the same seed)."""
    if not 0 <= anomaly_fraction < 1:
        raise DataError(f"anomaly fraction must be in [0, 1), got {anomaly_fraction}")
    is_normal = np.isin(labels, list(normal))
    if not is_normal.any():
        raise DataError(f"no samples of the normal class(es) {list(normal)}")
    normal_idx = np.flatnonzero(is_normal)
    other = np.flatnonzero(~is_normal)
    n_anom = int(round(len(normal_idx) * anomaly_fraction / (1 - anomaly_fraction)))
    rng = np.random.default_rng(seed)
    anom_idx = rng.choice(other, size=min(n_anom, len(other)), replace=False)
    return np.sort(np.concatenate([normal_idx, anom_idx]))


def _upscale(images: np.ndarray, size: int) -> np.ndarray:
    """N×h×w float [0,1] → N×1×size×size by bilinear resize (torch, batched, no PIL per sample)."""
    import torch
    import torch.nn.functional as F

    t = torch.as_tensor(images, dtype=torch.float32)[:, None]
    return F.interpolate(t, size=(size, size), mode="bilinear", align_corners=False).clamp(0, 1).numpy()


def load_digits(normal: Sequence[int] = (0,), anomaly_fraction: float = 0.1, seed: int = 0) -> SampleSet:
    """scikit-learn's 1,797 handwritten 8×8 digits, upscaled to 28×28; the other digits are anomalies."""
    from sklearn.datasets import load_digits as sk_digits

    d = sk_digits()
    keep = _one_vs_rest(d.images, d.target, normal, anomaly_fraction, seed)
    X = _upscale(d.images[keep] / 16.0, GRAY_SIZE)
    labels = d.target[keep]
    return SampleSet(
        ids=[f"digit-{i}" for i in keep], X=X, kind="image",
        name=f"scikit-learn digits, normal {','.join(map(str, normal))}",
        truth=(~np.isin(labels, list(normal))).astype(np.int8),
        classes=[str(v) for v in labels],
    )


# ----- MNIST / Fashion-MNIST idx files --------------------------------------------------------

def read_idx(path: str | Path) -> np.ndarray:
    """An idx file (optionally gzipped) as a uint8 array; images N×rows×cols, labels N."""
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            raw = f.read()
    except (OSError, EOFError) as e:
        raise DataError(f"{path.name}: cannot read ({e})") from e
    magic = int.from_bytes(raw[:4], "big") if len(raw) >= 8 else 0
    if magic == 2051 and len(raw) >= 16:
        n, r, c = (int.from_bytes(raw[i:i + 4], "big") for i in (4, 8, 12))
        shape, offset = (n, r, c), 16
    elif magic == 2049:
        shape, offset = (int.from_bytes(raw[4:8], "big"),), 8
    else:
        raise DataError(f"{path.name}: not an idx image or label file")
    if len(raw) - offset != int(np.prod(shape)):
        raise DataError(f"{path.name}: header says {shape} but the file holds {len(raw) - offset} bytes")
    return np.frombuffer(raw, np.uint8, offset=offset).reshape(shape)


def load_mnist(folder: str | Path, normal: Sequence[int] = (0,), split: str = "test",
               anomaly_fraction: float = 0.1, seed: int = 0) -> SampleSet:
    """MNIST or Fashion-MNIST from the four standard idx(.gz) files; split "train", "test" or "all"."""
    folder = Path(folder)
    if split not in ("train", "test", "all"):
        raise DataError(f"split must be train, test or all, not {split!r}")
    images, labels, ids = [], [], []
    for part, prefix in (("train", "train"), ("test", "t10k")):
        if split not in (part, "all"):
            continue
        img_file = _find(folder, f"{prefix}-images-idx3-ubyte")
        lab_file = _find(folder, f"{prefix}-labels-idx1-ubyte")
        imgs, labs = read_idx(img_file), read_idx(lab_file)
        if len(imgs) != len(labs):
            raise DataError(f"{img_file.name} has {len(imgs)} images but {lab_file.name} {len(labs)} labels")
        images.append(imgs)
        labels.append(labs)
        ids += [f"{part}-{i}" for i in range(len(imgs))]
    images, labels = np.concatenate(images), np.concatenate(labels)
    keep = _one_vs_rest(images, labels, normal, anomaly_fraction, seed)
    X = (images[keep].astype(np.float32) / 255.0)[:, None]
    return SampleSet(
        ids=[ids[i] for i in keep], X=X, kind="image",
        name=f"{folder.name} ({split}), normal {','.join(map(str, normal))}",
        truth=(~np.isin(labels[keep], list(normal))).astype(np.int8),
        classes=[str(v) for v in labels[keep]],
    )


def is_mnist_folder(path: Path) -> bool:
    """A folder holding MNIST's idx image files, named train-images-idx3-ubyte(.gz) or, as Kaggle ships
    them, train-images.idx3-ubyte."""
    return path.is_dir() and (any(path.glob("*-images-idx3-ubyte*")) or any(path.glob("*-images.idx3-ubyte*")))


def _find(folder: Path, stem: str) -> Path:
    for name in (stem + ".gz", stem, stem.replace("-idx", ".idx") + ".gz", stem.replace("-idx", ".idx")):
        if (folder / name).is_file():
            return folder / name
    raise DataError(f"{folder}: no {stem}(.gz) file")


# ----- a folder of images ---------------------------------------------------------------------

def _upright_8bit(im):
    """A PIL image read, turned as its EXIF orientation says, 16-bit and float images scaled to
    8 bits (the modes a browser and the models take)."""
    from PIL import Image, ImageOps

    im.load()
    im = ImageOps.exif_transpose(im)
    if im.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        a = np.asarray(im, dtype=np.float32)
        hi = 65535.0 if im.mode.startswith("I;16") else max(float(a.max()), 1.0)
        im = Image.fromarray(np.clip(a / hi * 255.0, 0, 255).astype(np.uint8))
    return im


def _read_image(path: Path, size: int, color: bool) -> np.ndarray:
    """One image as C×size×size float32 in [0,1]; raises DataError with the reason."""
    from PIL import Image

    if path.stat().st_size == 0:
        raise DataError("empty file")
    try:
        with _open_image(path) as im:
            im = _upright_8bit(im)
            if im.mode in ("RGBA", "LA", "P", "PA"):
                im = im.convert("RGBA")
                background = Image.new("RGBA", im.size, (255, 255, 255, 255))
                im = Image.alpha_composite(background, im)
            im = im.convert("RGB" if color else "L").resize((size, size), Image.Resampling.BILINEAR)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
        raise DataError(too_large()) from e
    except Image.UnidentifiedImageError as e:
        raise DataError("not an image PIL can read") from e
    except (OSError, SyntaxError, ValueError) as e:
        raise DataError(f"unreadable image ({e})") from e
    a = np.asarray(im, dtype=np.float32) / 255.0
    return a.transpose(2, 0, 1) if color else a[None]


def _looks_color(files: list[Path], probe: int = 20) -> bool:
    """Color if any of the first readable files has distinct channels."""
    from PIL import Image

    for path in files[:probe]:
        try:
            with Image.open(path) as im:
                if im.mode in ("L", "1", "I;16", "I;16B", "I;16L", "I", "F", "LA"):
                    continue
                rgb = np.asarray(im.convert("RGB").resize((16, 16)), dtype=np.int16)
                if np.abs(rgb[..., 0] - rgb[..., 1]).max() > 8 or np.abs(rgb[..., 1] - rgb[..., 2]).max() > 8:
                    return True
        except Exception:  # a bad file is reported by the real read below
            continue
    return False


def load_image_folder(folder: str | Path, color: bool | None = None, anomaly_folders: Sequence[str] = ()) -> SampleSet:
    """All png/jpg/bmp/webp/tiff files below `folder` (nested folders allowed).

    color=None picks from the data (32×32 RGB if any probed image has color, else 28×28 gray).
    The first folder level below `folder` is kept as each sample's class; when `anomaly_folders`
    names some of them, ground truth is 1 for those and 0 for the rest.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(f"{folder}: not a folder")
    files = sorted(p for p in folder.rglob("*") if p.is_file() and not p.name.startswith("."))
    candidates = [p for p in files if p.suffix.lower() in IMAGE_SUFFIXES]
    skipped = [(str(p.relative_to(folder)), "not an image file type") for p in files
               if p.suffix.lower() not in IMAGE_SUFFIXES]
    if color is None:
        color = _looks_color(candidates)
    size = COLOR_SIZE if color else GRAY_SIZE
    arrays, ids, paths, classes = [], [], [], []
    for p in candidates:
        rel = p.relative_to(folder)
        try:
            arrays.append(_read_image(p, size, color))
        except DataError as e:
            skipped.append((str(rel), str(e)))
            continue
        ids.append(rel.as_posix())
        paths.append(str(p.resolve()))
        classes.append(rel.parts[0] if len(rel.parts) > 1 else "")
    if not arrays:
        detail = "; ".join(f"{n}: {r}" for n, r in skipped[:5])
        more = " …" if len(skipped) > 5 else ""
        raise DataError(f"{folder}: no usable images" + (f" ({detail}{more})" if detail else ""))
    truth = None
    if anomaly_folders:
        anomaly_folders = [str(f).strip().rstrip("/\\") for f in anomaly_folders]  # as tab completion writes it
        unknown = set(anomaly_folders) - set(classes)
        if unknown:
            there = sorted({c for c in classes if c})
            raise DataError(f"{folder}: no sub-folder named {', '.join(sorted(unknown))} holds images (those that do: "
                            f"{', '.join(there[:10]) + (' …' if len(there) > 10 else '') if there else 'none'})")
        truth = np.isin(classes, list(anomaly_folders)).astype(np.int8)
    every = [p.relative_to(folder).as_posix() for p in candidates]
    return SampleSet(ids=ids, X=np.stack(arrays), kind="image", name=f"images in {folder.name}",
                     truth=truth, classes=classes, paths=paths, skipped=skipped,
                     input_ids=every if len(every) > len(ids) else None)


# ----- tables ---------------------------------------------------------------------------------

def _table(X: np.ndarray, y: np.ndarray | None, path: Path, columns: list[str] | None = None,
           names: list[str] | None = None, notes: dict[int, tuple[str, str]] | None = None) -> SampleSet:
    """A table's rows as samples; rows with a missing or non-finite value are skipped in place (`notes`:
    row → (where in the file, why) for rows that are empty for another reason, such as a CSV line with
    more fields than the header)."""
    if X.ndim != 2 or X.shape[0] == 0 or X.shape[1] == 0:
        raise DataError(f"{path.name}: X must be a non-empty 2-D table, got shape {X.shape}")
    bad_rows = ~np.isfinite(X).all(axis=1)
    notes = dict(notes or {})
    if np.issubdtype(X.dtype, np.number) and X.dtype.itemsize > 4:  # the model sees float32: ±3.4e38 at most
        beyond = np.flatnonzero(~bad_rows & (np.abs(X) > np.finfo(np.float32).max).any(axis=1))
        notes.update({int(i): ("", "a value beyond float32's range (±3.4e38)") for i in beyond if i not in notes})
        bad_rows[beyond] = True
    skipped = []
    for i in map(int, np.flatnonzero(bad_rows)):  # named only where skipped: a table may hold 300k rows
        where = f"{path.name} row {i}" + ("" if names is None else f" (id {names[i]})")
        line, why = notes.get(i, ("", "missing or non-finite value"))
        skipped.append((f"{where}, {line}" if line else where, why))
    keep = np.flatnonzero(~bad_rows)
    if len(keep) == 0:
        raise DataError(f"{path.name}: every row has a missing or non-finite value")
    if y is not None:
        y = np.asarray(y).ravel()
        if len(y) != len(X):
            raise DataError(f"{path.name}: X has {len(X)} rows but y has {len(y)}")
        y = (y[keep] != 0).astype(np.int8)
    every = [f"row-{i}" for i in range(len(X))] if names is None else names
    usable = X[keep] if bad_rows.any() else X  # no copy of a whole table before the float32 one
    X32 = usable.astype(np.float32)
    skipped += [(f"{path.name} column {(columns or [f'x{j}' for j in range(X.shape[1])])[j]}", why)
                for j, why in _detail_lost(usable, X32)]
    return SampleSet(ids=[every[i] for i in keep], X=X32, kind="tabular",
                     name=path.name, truth=y, skipped=skipped, columns=columns,
                     input_ids=list(every) if bad_rows.any() else None)


def _detail_lost(X: np.ndarray, X32: np.ndarray) -> list[tuple[int, str]]:
    """The columns whose values float32 (what the models see) cannot tell apart at their size, such as
    millisecond timestamps (1.7e12 ± 1000 all become one number), with why: (column, reason)."""
    if X.dtype.itemsize <= 4 or not np.issubdtype(X.dtype, np.number) or len(X) < 2:
        return []
    big = np.abs(X32).max(axis=0)
    # a column's range against float32's step at its size (reductions only: no copy of a large table)
    risky = np.flatnonzero(np.ptp(X, axis=0).astype(np.float64) < 1e3 * np.spacing(big).astype(np.float64))
    out = []
    for j in risky:  # few columns at most: counting distinct values is cheap there
        before, after = len(np.unique(X[:, j])), len(np.unique(X32[:, j]))
        if after < before / 2:
            out.append((int(j), f"kept, but float32 tells only {after} of its {before} distinct values apart at "
                                f"their size (about {float(big[j]):.2g}): subtract an offset, such as its first value, "
                                "and load the file again"))
    return out


# the words a ground-truth column may hold besides numbers (non-zero = anomaly), any case
ANOMALY_WORDS = ("anomalous", "anomaly", "abnormal", "outlier", "yes", "true")
NORMAL_WORDS = ("normal", "inlier", "no", "false")


def _truth(values, path: Path, what: str) -> np.ndarray:
    """Ground truth (a CSV column, a .npz's y) as 0/1: numbers (non-zero = anomaly; but −1 against +1
    is scikit-learn's and semiad's own convention, −1 = anomaly), the words in ANOMALY_WORDS and
    NORMAL_WORDS, or blank (normal: a column that marks only the anomalies). Any other text is refused,
    never read as normal (nor, as `y != 0` would, as anomalous)."""
    import pandas as pd

    values = values if isinstance(values, pd.Series) else pd.Series(np.asarray(values).ravel())
    numbers = pd.to_numeric(values, errors="coerce")
    anomalous = np.zeros(len(values), dtype=bool)
    if not pd.api.types.is_numeric_dtype(values):  # text, or numbers and words mixed
        words = values.astype("string").str.strip().str.lower().fillna("").to_numpy(dtype=str)
        anomalous = np.isin(words, ANOMALY_WORDS)
        known = anomalous | np.isin(words, NORMAL_WORDS) | numbers.notna().to_numpy() | (words == "")
        if not known.all():
            other = sorted({str(w) for w in words[~known]})
            raise DataError(f"{path.name}: {what} holds {', '.join(map(repr, other[:5]))}; ground truth must "
                            "be numbers (non-zero = anomaly) or words such as anomalous / normal, yes / no")
    # the convention is read from the numbers given: a blank, a word or a NaN beside −1 and +1 is no 0
    plus_minus = set(np.unique(numbers.dropna().to_numpy())) == {-1, 1}
    numbers = numbers.fillna(0).to_numpy()
    flagged = numbers == -1 if plus_minus else numbers != 0
    return (anomalous | flagged).astype(np.int8)


def load_npz(path: str | Path) -> SampleSet:
    """A .npz with a numeric X (rows = samples) and optional ground truth y (see `_truth`). Never unpickles."""
    path = Path(path)
    try:
        with open(path, "rb") as f:
            head = f.read(6)
    except OSError as e:
        raise DataError(f"{path.name}: cannot read ({e.strerror or e})") from e
    # np.load decides by content: a pickle or .npy named .npz would not give an archive
    if not head:
        raise DataError(f"{path.name}: empty file")
    if head.startswith(b"\x93NUMPY"):
        raise DataError(f"{path.name}: a single .npy array, not a .npz archive with X (and y)")
    if not head.startswith(b"PK"):
        what = ("a pickle file, which would need unpickling; refused" if head[:1] == b"\x80"
                else "not a .npz (zip) archive")
        raise DataError(f"{path.name}: {what}")
    try:
        with np.load(path, allow_pickle=False) as d:
            if "X" not in d.files:
                raise DataError(f"{path.name}: no array named X (found {', '.join(d.files) or 'none'})")
            check_fits(path, *_npz_header(d.zip, "X"))
            X = d["X"]
            key = _truth_key(d.files)
            y = _truth(d[key], path, key) if key else None
    except DataError:
        raise
    except ValueError as e:  # object arrays need pickle, which we refuse
        raise DataError(f"{path.name}: holds object arrays, which would need unpickling; refused") from e
    except (OSError, EOFError, zipfile.BadZipFile) as e:
        raise DataError(f"{path.name}: not a readable .npz file ({e})") from e
    return _from_arrays(X, y, path)


def _from_arrays(X: np.ndarray, y: np.ndarray | None, path: Path) -> SampleSet:
    """X and ground truth y read from a file (.npz, .mat): images if X has 3 or 4 dimensions, else a table."""
    if X.dtype == bool and X.ndim == 2:  # a one-hot table
        X = X.astype(np.uint8)
    if not np.issubdtype(X.dtype, np.number):
        raise DataError(f"{path.name}: X is not numeric (dtype {X.dtype})")
    if X.ndim in (3, 4):
        return _image_array(X, y, path)
    return _table(X, y, path)


def load_mat(path: str | Path) -> SampleSet:
    """A MATLAB .mat file (v5, as ODDS distributes its tables) with X and optional y, read like a .npz.
    scipy reads it as plain arrays: nothing in the file is executed."""
    from scipy.io import loadmat, whosmat
    from scipy.io.matlab import MatReadError

    path = Path(path)
    try:
        for name, shape, kind in whosmat(path):
            if name == "X":
                check_fits(path, tuple(shape), MAT_ITEMSIZE.get(kind, 8))
        d = loadmat(path)
    except NotImplementedError as e:  # v7.3 files are HDF5
        raise DataError(f"{path.name}: a MATLAB v7.3 (HDF5) file; save it with -v7, or as .npz or .csv") from e
    except (MatReadError, OSError, ValueError, IndexError, EOFError) as e:  # IndexError: a file cut short
        why = "cut short, or not a .mat file" if isinstance(e, (IndexError, EOFError)) else e
        raise DataError(f"{path.name}: not a readable .mat file ({why})") from e
    if "X" not in d:
        found = ", ".join(k for k in d if not k.startswith("__")) or "none"
        raise DataError(f"{path.name}: no array named X (found {found})")
    key = _truth_key(d)
    return _from_arrays(np.asarray(d["X"]), _truth(d[key], path, key) if key else None, path)


def _truth_key(names: Container[str]) -> str | None:
    """The array holding ground truth in a .npz or .mat: y (as ODDS writes it), else Y."""
    return next((k for k in ("y", "Y") if k in names), None)


def _image_array(X: np.ndarray, y: np.ndarray | None, path: Path) -> SampleSet:
    """An image set in a .npz: N×H×W gray, N×H×W×C or N×C×H×W with C = 1 or 3; integers 0–255 (uint16:
    0–65535) or float 0–1. Resized like a folder of images (28×28 gray, 32×32 colour); larger pictures
    are kept as `originals` for the features."""
    import torch
    import torch.nn.functional as F

    if X.ndim == 3:
        X = X[:, None]
    elif X.shape[-1] in (1, 3) and X.shape[1] not in (1, 3):
        X = X.transpose(0, 3, 1, 2)
    if X.shape[1] not in (1, 3) or len(X) == 0:
        raise DataError(f"{path.name}: images must be N×H×W, N×H×W×C or N×C×H×W with C = 1 or 3, got {X.shape}")
    if np.issubdtype(X.dtype, np.integer):  # 0–255, or 16-bit (0–65535) when it holds more
        low, high = int(X.min()), int(X.max())
        if low < 0 or high > 65535:
            raise DataError(f"{path.name}: integer images must lie in 0–255 (or 0–65535 for 16 bits), "
                            f"got {low}..{high}")
        X = X.astype(np.float32) / (255.0 if high <= 255 and X.dtype != np.uint16 else 65535.0)
    else:
        X = X.astype(np.float32)
        if not np.isfinite(X).all():
            raise DataError(f"{path.name}: images contain NaN or infinite values")
        if X.min() < 0 or X.max() > 1:
            raise DataError(f"{path.name}: float images must lie in [0, 1] (uint8 for 0–255), got "
                            f"{X.min():.3g}..{X.max():.3g}")
    size = GRAY_SIZE if X.shape[1] == 1 else COLOR_SIZE
    originals = None
    if max(X.shape[2:]) > size:  # kept for the features, which see 224 px: the detail is theirs
        originals = np.round(X * 255.0).astype(np.uint8)
    if X.shape[2:] != (size, size):
        t = torch.as_tensor(X)
        X = F.interpolate(t, size=(size, size), mode="bilinear", antialias=t.shape[-1] > size,
                          align_corners=False).clamp(0, 1).numpy()
    truth = None
    if y is not None:
        y = np.asarray(y).ravel()
        if len(y) != len(X):
            raise DataError(f"{path.name}: y has {len(y)} entries but X has {len(X)} images")
        truth = (y != 0).astype(np.int8)
    return SampleSet(ids=[f"image-{i}" for i in range(len(X))], X=np.ascontiguousarray(X), kind="image",
                     name=path.name, truth=truth, originals=originals)


def _delimiter(path: Path) -> str:
    """The CSV's field separator (comma, semicolon, tab or bar), from its first lines (`_separator`)."""
    try:
        with open(path, newline="", encoding="utf-8", errors="replace") as f:
            return _separator("".join(f.readline() for _ in range(20)))
    except OSError:
        return ","


def _separator(head: str) -> str:
    """The field separator of a CSV whose first lines are `head`; comma when unsure. A separator the
    header line does not hold is not believed (a line with extra fields can mislead the sniffer): then
    the one the header holds most."""
    import csv

    header = head.splitlines()[0] if head else ""
    try:
        sniffed = csv.Sniffer().sniff(head, delimiters=",;\t|").delimiter
    except csv.Error:
        sniffed = None
    if sniffed and sniffed in header:
        return sniffed
    most = max(",;\t|", key=header.count)
    return most if header.count(most) else ","


def load_csv(path: str | Path, label_column: str | None = None) -> SampleSet:
    """A .csv with a header (fields separated by commas, semicolons, tabs or bars); numeric columns
    become features, `label_column` the ground truth (see `_truth`), and a column named "id" (any case)
    the rows' ids, which labels and exports then carry (never a feature; used only when its values are
    unique). Other text columns are dropped and reported; rows with gaps are skipped."""
    import pandas as pd

    path = Path(path)
    try:
        # lines with more fields than the header: pandas warns per line and leaves them out
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", pd.errors.ParserWarning)
            sep, encoding = _delimiter(path), "utf-8"

            def read() -> pd.DataFrame:
                header = pd.read_csv(path, sep=sep, nrows=0, encoding=encoding).columns
                return pd.read_csv(path, sep=sep, on_bad_lines="warn", encoding=encoding, **_id_as_written(header))

            try:
                df = read()
            except UnicodeDecodeError:  # not UTF-8: Excel's "CSV" on Windows writes cp1252
                encoding = "cp1252"
                df = read()
        ragged = [(f"line {m.group(1)}", f"expected {m.group(2)} fields, saw {m.group(3)}")
                  for w in caught if issubclass(w.category, pd.errors.ParserWarning)
                  for m in re.finditer(r"line (\d+): expected (\d+) fields, saw (\d+)", str(w.message))]
        # read again with each such line kept in its place, empty, so the rows keep the input order
        placed = _ragged_in_place(path, sep, encoding, df, ragged) if ragged else None
        notes: dict[int, tuple[str, str]] = {}
        if placed is not None:
            df, notes = placed
        unplaced = [] if placed is not None else [(f"{path.name} {where}", why) for where, why in ragged]
    except pd.errors.EmptyDataError as e:
        raise DataError(f"{path.name}: empty file") from e
    except (pd.errors.ParserError, UnicodeDecodeError) as e:
        raise DataError(f"{path.name}: not a well-formed CSV ({str(e).strip()})") from e
    df = _without_trailing_blank_rows(df)
    if df.empty:
        raise DataError(f"{path.name}: no data rows")
    y = None
    if label_column is not None:
        if label_column not in df.columns:
            raise DataError(f"{path.name}: no column named {label_column!r}")
        y = _truth(df.pop(label_column), path, f"column {label_column!r}")
    names = _row_names(df, path)
    if sep != ",":  # where the comma separates nothing it may be the decimal mark (1,5), as Excel writes it
        df = df.apply(_decimal_comma)
    numeric = df.apply(pd.to_numeric, errors="coerce")
    empty = [c for c in df.columns if df[c].isna().all()]  # it would leave every row with a missing value
    text = [c for c in df.columns if numeric[c].isna().all() and c not in empty]
    numeric = numeric.drop(columns=text + empty)
    for c in numeric.columns:  # a word in a column of numbers: the row is skipped, and the note says why
        words = df[c].notna().to_numpy() & numeric[c].isna().to_numpy()
        for i in np.flatnonzero(words):
            if i not in notes and str(df[c].iat[i]).strip():
                notes[int(i)] = ("", f"{df[c].iat[i]!r} in column {c!r} is not a number")
    if numeric.shape[1] == 0:
        held = f" ({len(empty)} column(s) hold no value)" if empty else ""
        raise DataError(f"{path.name}: no numeric columns{held}")
    s = _table(numeric.to_numpy(dtype=np.float64), y, path, columns=[str(c) for c in numeric.columns], names=names,
               notes=notes)
    truth_like = [c for c in numeric.columns if label_column is None and str(c).strip().lower() in TRUTH_NAMES]
    s.skipped = ([(f"{path.name} column {c}", "not numeric") for c in text]
                 + [(f"{path.name} column {c}", "no value in any row") for c in empty] + unplaced + s.skipped
                 + [(f"{path.name} column {c}", "kept as a feature, but its name says ground truth: if it is, "
                     "name it as the label column, or the scores will follow it") for c in truth_like])
    return s


# column names that usually hold ground truth: a CSV loaded without a label column says so when it has one
TRUTH_NAMES = ("label", "labels", "y", "class", "target", "anomaly", "anomalous", "outlier", "is_anomaly",
               "ground_truth", "truth")


def _without_trailing_blank_rows(df: "pd.DataFrame") -> "pd.DataFrame":
    """The table less the rows at its end with no value in any field (a spreadsheet saved as CSV often
    ends in a line of separators alone): they are no samples."""
    import pandas as pd

    end = len(df)
    while end and all(pd.isna(v) or not str(v).strip() for v in df.iloc[end - 1]):
        end -= 1
    return df.iloc[:end]


_RAGGED = "\x00ragged"  # marks the fields of a line that could not be read (never in a text file's data)


def _ragged_in_place(path: Path, sep: str, encoding: str, parsed: "pd.DataFrame",
                     ragged: list[tuple[str, str]]) -> tuple["pd.DataFrame", dict[int, tuple[str, str]]] | None:
    """The CSV read again (pandas' Python engine) with each line of more fields than the header kept in
    its place as a row without values (its id kept where the header has an id column), so that `score`
    gives it a row and the ids of the rows after it follow the input order; `parsed`: the first reading,
    whose column types the rows keep. Returns the frame and row → (the line, why) for `_table`, or None
    when the lines cannot be paired with rows (they are then only reported, as pandas left them out)."""
    import pandas as pd

    columns = list(parsed.columns)
    id_at = next((i for i, c in enumerate(columns) if _is_id(c)), None)

    def in_place(fields: list[str]) -> list[str]:
        row = [_RAGGED] * len(columns)
        if id_at is not None and id_at < len(fields):
            row[id_at] = fields[id_at]
        return row

    df = pd.read_csv(path, sep=sep, encoding=encoding, engine="python", on_bad_lines=in_place,
                     **_id_as_written(columns))
    rows = np.flatnonzero(df.eq(_RAGGED).any(axis=1).to_numpy())
    for c in df.columns:  # the columns as the first reading typed them, the marks as gaps
        column = df[c].mask(df[c].eq(_RAGGED))
        df[c] = pd.to_numeric(column, errors="coerce") if pd.api.types.is_numeric_dtype(parsed[c]) else column
    if len(rows) != len(ragged) or len(df) != len(parsed) + len(rows):
        return None
    return df, {int(i): note for i, note in zip(rows, ragged)}


def _decimal_comma(column: "pd.Series") -> "pd.Series":
    """A text column whose every value is a number written with a decimal comma, as numbers."""
    import pandas as pd

    if pd.api.types.is_numeric_dtype(column) or pd.api.types.is_bool_dtype(column):
        return column
    swapped = pd.to_numeric(column.astype(str).str.replace(",", ".", regex=False).where(column.notna()),
                            errors="coerce")
    return swapped if swapped.notna().sum() == column.notna().sum() else column


def _is_id(column: object) -> bool:
    """Whether a CSV column names the rows: "id", in any case."""
    return str(column).strip().lower() == "id"


# pandas' own words for a missing value (its read_csv default), kept for every column but the id column
_MISSING = ("", "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan", "1.#IND", "1.#QNAN", "<NA>", "N/A",
            "NA", "NULL", "NaN", "None", "n/a", "nan", "null")


def _id_as_written(header) -> dict:
    """read_csv options that keep the id column's values as written: 007 stays 007, and NA (Namibia), null
    or None are ids, not missing values; the other columns read missing values as pandas does."""
    return {"dtype": {c: str for c in header if _is_id(c)}, "keep_default_na": False,
            "na_values": {c: list(_MISSING) for c in header if not _is_id(c)}}


def _row_names(df, path: Path) -> list[str] | None:
    """Pop the "id" column (any case) from `df`: the rows' names, or None when there is no such column.
    Ids must name every row once: a repeated or missing id is refused with its data rows (counted from 1
    below the header), since rows named by their place instead would not match the labels given on them
    once the file is fixed."""
    found = [c for c in df.columns if _is_id(c)]
    if not found:
        return None
    values = df.pop(found[0])
    names = [str(v).strip() for v in values]
    missing = np.flatnonzero(values.isna().to_numpy() | (np.array(names) == ""))
    fix = f"fix the file, or rename the column {found[0]!r} to load it without ids (rows named row-0, row-1, …)"
    if len(missing):
        rows = ", ".join(str(i + 1) for i in missing[:5]) + (f", … ({len(missing)} in all)" if len(missing) > 5 else "")
        raise DataError(f"{path.name}: no id on data row {rows}: {fix}")
    row_of: dict[str, int] = {}
    for i, name in enumerate(names):
        if name in row_of:
            raise DataError(f"{path.name}: id {name!r} is on data rows {row_of[name] + 1} and {i + 1}: {fix}")
        row_of[name] = i
    return names


def load(source: str | Path | None = None, **options) -> SampleSet:
    """One entry point: None → bundled digits; a folder of idx files → MNIST; another folder →
    images; .npz / .csv / .mat → table (or images, for a .npz or .mat whose X has 3 or 4 dimensions).
    `options` go to the specific loader."""
    if source is None or str(source) in ("", "digits"):
        return load_digits(**options)
    path = Path(source)
    if not path.exists():
        raise DataError(f"{path}: no such file or folder")
    if path.is_dir():
        if is_mnist_folder(path):
            return load_mnist(path, **options)
        return load_image_folder(path, **options)
    suffix = path.suffix.lower()
    if suffix == ".npz":
        return load_npz(path)
    if suffix == ".csv":
        return load_csv(path, **options)
    if suffix == ".mat":
        return load_mat(path)
    if suffix in IMAGE_SUFFIXES:
        raise DataError(f"{path.name} is one image: give the folder that holds the images")
    raise DataError(f"{path.name}: unsupported file type {suffix!r} (use a folder of images, .npz, .csv or .mat)")


# ----- labels files ---------------------------------------------------------------------------

def read_label_table(data: bytes | str | Path, name: str | None = None) -> "pd.DataFrame":
    """A labels file (CSV, or JSON records as the app exports them) as a table of strings with columns
    sample_id and label; `data` is a path or the file's content (an upload). The id column may be
    named sample_id, key or id; each label comes out as normal, anomalous or unlabeled (`LABEL_WORDS`;
    a word it does not know, as written, lower-cased). Raises DataError naming the file. The app's
    import and `python -m semiad fit --labels` both read labels through it; in both a later row for a
    sample wins."""
    import json

    import pandas as pd

    if isinstance(data, Path) or (isinstance(data, str) and name is None):
        path = Path(data)
        name = name or path.name
        try:
            data = path.read_bytes()
        except OSError as e:
            raise DataError(f"{name}: cannot read ({e.strerror or e})") from e
    raw = data.encode() if isinstance(data, str) else data
    name = name or "labels"
    if not raw.strip():
        raise DataError(f"{name}: empty file")
    try:
        if name.lower().endswith(".json") or raw.lstrip()[:1] == b"[":
            records = json.loads(raw)
            if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
                raise DataError(f"{name}: JSON must be a list of objects (as the export writes)")
            table = pd.DataFrame(records, dtype=object)
        else:  # separated and encoded as the data's CSVs may be (semicolons, Excel's cp1252)
            head = "".join(raw[:65536].decode("utf-8", errors="replace").splitlines(keepends=True)[:20])
            sep = _separator(head)
            try:
                table = pd.read_csv(io.BytesIO(raw), sep=sep, dtype=str, keep_default_na=False)
            except UnicodeDecodeError:
                table = pd.read_csv(io.BytesIO(raw), sep=sep, dtype=str, keep_default_na=False, encoding="cp1252")
    except DataError:
        raise
    except (ValueError, pd.errors.ParserError, UnicodeDecodeError) as e:
        raise DataError(f"{name}: not a readable labels file ({str(e).strip()[:200]})") from e
    columns = {str(c).strip().lower(): c for c in table.columns}
    id_col = next((columns[c] for c in ("sample_id", "key", "id") if c in columns), None)
    if id_col is None or "label" not in columns:
        found = ", ".join(map(str, table.columns))
        raise DataError(f"{name}: needs a sample_id and a label column (found {found})")

    def text(v) -> str:
        return "" if v is None or (not isinstance(v, str) and pd.isna(v)) else str(v)

    said = [text(v).strip().lower() for v in table[columns["label"]]]
    if "1" in said and "-1" not in said:  # 0 alone (no label) beside words or +1 is clear
        raise DataError(f"{name}: labels 0 and 1 are ambiguous (as ground truth 1 is an anomaly, as a "
                        "semi-target a normal sample): write normal and anomalous, or the semi-targets +1 and -1")
    # ids as written (a file name may begin with a space); `known_id` forgives spaces around them
    return pd.DataFrame({"sample_id": table[id_col].map(text), "label": [LABEL_WORDS.get(w, w) for w in said]})


def known_id(key: str, known: Container[str]) -> str | None:
    """The data's id that a labels file's `key` names: as written, else without the spaces around it (a
    hand-written "a.png, normal"); None when neither is an id of the data."""
    return key if key in known else key.strip() if key.strip() in known else None


# what a labels file may say, and what it means: the app's words, or the semi-targets (+1 / −1 / 0); an
# "unlabeled" row (an undo in the app's history export, or an empty label) means the sample has no label
LABEL_WORDS = {"normal": "normal", "anomalous": "anomalous", "anomaly": "anomalous", "unlabeled": "unlabeled",
               "": "unlabeled", "+1": "normal", "1": "normal", "-1": "anomalous", "0": "unlabeled"}


@contextlib.contextmanager
def _open_image(path: Path) -> "Iterator[Any]":
    """Image.open with Pillow's decompression-bomb warning raised as an error, at `pixel_limit` (the
    callers turn either into DataError(too_large()))."""
    from PIL import Image

    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        Image.MAX_IMAGE_PIXELS = pixel_limit()
        with Image.open(path) as im:
            yield im


def pixel_limit() -> int:
    """The most pixels an image file may have: Pillow's guard against decompression bombs (half its
    "bomb" size, 89 million), or SEMIAD_MAX_IMAGE_PIXELS for larger scans."""
    import os

    try:
        return int(os.environ.get("SEMIAD_MAX_IMAGE_PIXELS", "") or 89_478_485)
    except ValueError:
        raise DataError("SEMIAD_MAX_IMAGE_PIXELS must be a whole number of pixels") from None


def too_large() -> str:
    return (f"image too large: over {pixel_limit():,} pixels, the guard against decompression bombs "
            "(SEMIAD_MAX_IMAGE_PIXELS raises it)")


def confined(path: str | Path, root: str | Path | None = None) -> Path:
    """`path` resolved (symlinks followed); refused with DataError unless it lies inside `root`
    (default: the SEMIAD_DATA_ROOT environment variable; no root = any local path)."""
    import os

    resolved = Path(path).expanduser().resolve()
    root = root if root is not None else os.environ.get("SEMIAD_DATA_ROOT")
    if root and not resolved.is_relative_to(Path(root).expanduser().resolve()):
        raise DataError(f"{resolved}: outside the allowed data folder {root}")
    return resolved


BROWSER_TYPES = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".webp": "image/webp",
                 ".bmp": "image/bmp"}


def picture_of_file(path: str | Path, max_px: int | None = None,
                    max_bytes: int = 20_000_000) -> tuple[bytes, str, tuple[int, int]]:
    """An image file for a browser: (bytes, MIME type, (width, height) of the original).

    max_px=None: the file itself when a browser shows it as is and it is at most `max_bytes`, else
    re-encoded at full size; otherwise scaled down to fit max_px × max_px (never up), JPEG for
    photos, PNG for small or transparent pictures. EXIF orientation applied. Raises DataError."""
    from PIL import Image

    path = Path(path)
    try:
        with _open_image(path) as im:
            # EXIF orientations 5-8 turn the picture a quarter: the upright size, without decoding it
            size = im.size[::-1] if im.getexif().get(0x0112, 1) in (5, 6, 7, 8) else im.size
            suffix = path.suffix.lower()
            if max_px is None and suffix in BROWSER_TYPES and path.stat().st_size <= max_bytes:
                return path.read_bytes(), BROWSER_TYPES[suffix], size
            im = _upright_8bit(im)
            alpha = im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info)
            im = im.convert("RGBA" if alpha else ("L" if im.mode in ("L", "1") else "RGB"))
            if max_px is not None and max(im.size) > max_px:
                im.thumbnail((max_px, max_px), Image.Resampling.LANCZOS)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
        raise DataError(f"{path.name}: {too_large()}") from e
    except (OSError, SyntaxError, ValueError) as e:
        raise DataError(f"{path.name}: unreadable image ({e})") from e
    buf = io.BytesIO()
    if alpha or max(im.size) <= 64:
        im.save(buf, format="PNG")
        return buf.getvalue(), "image/png", size
    im.save(buf, format="JPEG", quality=88)
    return buf.getvalue(), "image/jpeg", size


def encode_png(img: np.ndarray) -> bytes:
    """PNG bytes of a uint8 picture (for thumbnails)."""
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format="PNG")
    return buf.getvalue()
