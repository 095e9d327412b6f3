"""Labels in and out of a project, in formats other tools read.

Export: the current labels (one row per labeled sample: sample id, original path, label, annotator,
time, round of its latest event) as CSV or JSON, the full event history, and a copy of the
anomalous originals into a folder. Import: a labels CSV/JSON (the export's format; `sample_id` and
`label` are the columns that matter) seeds a project; each label becomes an event with source
"import" and the importing annotator, in one batch, so one undo reverts the whole import.
"""
from __future__ import annotations

import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from semiad.data import DataError, known_id, read_label_table
from state.models import LABELS
from state.store import Store, StoreError

LABEL_COLUMNS = ["sample_id", "path", "label", "annotator", "time", "round"]


class TransferError(StoreError):
    """An export or import that cannot be done; the message says which file or folder and why."""


# ----- export ---------------------------------------------------------------------------------

def current_labels(store: Store, project_id: int) -> pd.DataFrame:
    """One row per labeled sample with who gave its current label, when, and in which round (the event
    that gave it: an undo restores the earlier label and its giver, `Store.labels_in_order`)."""
    given = store.labels_in_order(project_id).set_index("sample_id")
    samples = store.samples(project_id)
    labeled = samples[samples["sample_id"].isin(given.index)]  # rows in the samples' order
    given = given.loc[labeled["sample_id"]]
    out = pd.DataFrame({
        "sample_id": labeled["key"].to_numpy(),
        "path": labeled["path"].to_numpy(),
        "label": given["label"].to_numpy(),
        "annotator": given["annotator"].to_numpy(),
        "time": given["time"].map(_iso).to_numpy(),
        "round": given["round"].astype("Int64").to_numpy(),
    })
    return out[LABEL_COLUMNS]


def history(store: Store, project_id: int) -> pd.DataFrame:
    """Every label event, oldest first (undo events included: nothing is ever overwritten)."""
    ev = store.events(project_id)
    ev["time"] = ev["time"].map(_iso)
    return ev.drop(columns=["sample_id"]).rename(columns={"key": "sample_id"})


def to_csv(table: pd.DataFrame) -> str:
    return table.to_csv(index=False)


def to_json(table: pd.DataFrame) -> str:
    records = [{k: _plain(v) for k, v in row.items()} for row in table.to_dict(orient="records")]
    return json.dumps(records, indent=1, ensure_ascii=False)


def _iso(t) -> str | None:  # a datetime or pandas Timestamp
    if t is None or pd.isna(t):
        return None
    ts = pd.Timestamp(t)
    return (ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")).isoformat()


def _plain(v):  # numpy/pandas scalars and missing values to JSON types
    if v is None or (not isinstance(v, str) and pd.isna(v)):
        return None
    return v.item() if hasattr(v, "item") else v


@dataclass
class CopyReport:
    folder: Path
    copied: list[str] = field(default_factory=list)  # sample ids, as relative paths under `folder`
    missing: list[tuple[str, str]] = field(default_factory=list)  # (sample id, reason)


def copy_originals(store: Store, project_id: int, dest: str | Path, label: str = "anomalous",
                   root: str | Path | None = None) -> CopyReport:
    """Copy the original files of the samples whose current label is `label` into `dest`, keeping
    their paths relative to the data folder. Refuses a folder outside `root` (when given), inside the
    workspace, or one where any target file exists already: nothing is ever overwritten."""
    if label not in LABELS:
        raise TransferError(f"label must be one of {LABELS}, not {label!r}")
    folder = Path(dest).expanduser().resolve()
    if root is not None and not folder.is_relative_to(Path(root).resolve()):
        raise TransferError(f"{folder}: outside the allowed export folder {root}")
    if folder.is_relative_to(store.home):
        raise TransferError(f"{folder}: inside the workspace {store.home}; choose another folder")
    if folder.exists() and not folder.is_dir():
        raise TransferError(f"{folder}: exists and is not a folder")
    samples = store.samples(project_id)
    chosen = samples[samples["label"] == label]
    if samples["path"].isna().all():
        raise TransferError("this project's samples have no original files (bundled digits, MNIST or a table)")
    report = CopyReport(folder)
    plan: list[tuple[str, Path, Path]] = []
    for key, path in zip(chosen["key"], chosen["path"]):
        target = (folder / key).resolve()
        if not target.is_relative_to(folder):  # a sample id must not climb out of the folder
            report.missing.append((key, "sample id is not a relative path"))
        elif path is None or not Path(path).is_file():
            report.missing.append((key, "original file not found"))
        else:
            plan.append((key, Path(path), target))
    exists = [key for key, _, target in plan if target.exists()]
    if exists:
        raise TransferError(f"{folder}: {len(exists)} file(s) exist already ({', '.join(exists[:3])}"
                            f"{' …' if len(exists) > 3 else ''}); nothing copied. Choose an empty folder.")
    for key, src, target in plan:
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            with open(src, "rb") as fin, open(target, "xb") as fout:  # "x": fail rather than overwrite
                shutil.copyfileobj(fin, fout)
            shutil.copystat(src, target)
        except FileExistsError:
            report.missing.append((key, "a file with this name appeared meanwhile; not overwritten"))
            continue
        except OSError as e:
            report.missing.append((key, f"cannot copy ({e.strerror or e})"))
            continue
        report.copied.append(key)
    return report


# ----- import ---------------------------------------------------------------------------------

@dataclass
class ImportReport:
    recorded: int = 0  # labels written as new events
    unchanged: int = 0  # rows whose sample already had that label
    unknown: list[str] = field(default_factory=list)  # sample ids not in the project
    bad: list[tuple[str, str]] = field(default_factory=list)  # (row, reason)
    batch: str | None = None  # the import's batch (undo reverts it)

    def summary(self) -> str:
        parts = [f"{self.recorded} label(s) imported", f"{self.unchanged} already so"]
        if self.unknown:
            parts.append(f"{len(self.unknown)} unknown sample id(s): {', '.join(self.unknown[:5])}"
                         f"{' …' if len(self.unknown) > 5 else ''}")
        if self.bad:
            parts.append(f"{len(self.bad)} row(s) skipped: " + "; ".join(f"{r}: {why}" for r, why in self.bad[:3]))
        return "; ".join(parts)


def read_labels(data: bytes | str | Path, name: str | None = None) -> pd.DataFrame:
    """A labels file as a table (semiad.data.read_label_table), its problems as TransferError."""
    try:
        return read_label_table(data, name)
    except DataError as e:
        raise TransferError(str(e)) from e


def import_labels(store: Store, project_id: int, table: pd.DataFrame, annotator: str,
                  source: str = "import") -> ImportReport:
    """Record the labels of `table` (columns sample_id, label; see read_labels) as events by
    `annotator`. Unknown ids and bad labels are reported, not fatal; a later row for the same
    sample wins, and where it says unlabeled the sample is left as it is; samples that already carry
    the label get no new event."""
    report = ImportReport()
    wanted: dict[str, str] = {}
    for row, (key, label) in enumerate(zip(table["sample_id"], table["label"]), start=2):  # row 1 = header
        if not key.strip():
            report.bad.append((f"row {row}", "no sample id"))
        elif label not in (*LABELS, "unlabeled"):
            report.bad.append((f"row {row}", f"label must be one of {', '.join(LABELS)}, not {label!r}"))
        else:
            wanted[key] = label
    # a sample whose last row says unlabeled (an undo in a history export) has no label in this file
    wanted = {k: lab for k, lab in wanted.items() if lab != "unlabeled"}
    ids = store.sample_ids(project_id, set(wanted) | {k.strip() for k in wanted})
    named = {k: known_id(k, ids) for k in wanted}
    report.unknown = [k for k, known in named.items() if known is None]
    current = store.samples(project_id).set_index("sample_id")["label"]
    found = {ids[named[k]]: lab for k, lab in wanted.items() if named[k] is not None}
    changes = {sid: lab for sid, lab in found.items() if current.get(sid) != lab}
    report.unchanged = len(found) - len(changes)
    if changes:
        report.batch = store.record_label_changes(project_id, changes, annotator, source=source)
        report.recorded = len(changes)
    return report
