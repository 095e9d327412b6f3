"""The store: projects, samples, label events, runs and scores, asked for by name.

SQLite file in the workspace folder by default (SEMIAD_HOME, default ./workspace), or any
SQLAlchemy URL in SEMIAD_DB_URL (PostgreSQL for teams). Large arrays (the project's inputs, model
weights, embeddings) live as files under the workspace; the database says where.
Every write is one short transaction; a label is committed before the call returns.
"""
from __future__ import annotations

import json
import os
import re
import socket
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Iterable

import numpy as np
import pandas as pd
from sqlalchemy import create_engine, delete, event, exists, func, insert, select, update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, aliased, sessionmaker

from semiad.data import SampleSet
from state.models import (
    LABELS,
    Base,
    LabelCounts,
    LabelEvent,
    LabelRequest,
    LabelVote,
    MapRequest,
    Project,
    ProjectSetting,
    Run,
    Sample,
    Score,
    utcnow,
)

ACTIVE = ("queued", "running")
STALE_AFTER = timedelta(seconds=90)  # a running job that has not reported for this long is dead


_TOKEN = re.compile(r"[A-Za-z0-9_-]{8,64}")
# a press refused for a label given since must have been held back this long: two people pressing at once
# are both recorded (a dispute), and the press's time, from the browser's clock, may be off by a render's way
HELD_BACK = timedelta(seconds=2)


def _not_undone(event: type[LabelEvent]):
    """"This event's batch is not undone", as a correlated NOT EXISTS on the partial index of undo events:
    each check is one index probe, where NOT IN (all undone batches) read the whole history every time.
    (No project filter: batch ids are unique, and with one SQLite would pick the project index and read
    the whole history.)"""
    undo = aliased(LabelEvent)
    return ~exists().where(undo.undoes == event.batch)


class StoreError(ValueError):
    """A request the store refuses, with a message for the user."""


class JobBusy(StoreError):
    pass


@dataclass(frozen=True)
class ProjectInfo:
    id: int
    name: str
    source: str
    options: dict
    kind: str
    n_samples: int
    skipped: list
    created_at: datetime


@dataclass(frozen=True)
class RunInfo:
    id: int
    project_id: int
    method: str
    params: dict
    parent_id: int | None
    status: str
    progress: float
    message: str
    metrics: dict
    error: str | None
    round: int | None
    n_labels: int
    requested_by: str
    worker: str | None
    created_at: datetime
    started_at: datetime | None
    heartbeat_at: datetime | None
    finished_at: datetime | None
    cancel_requested: bool = False  # a cancel was clicked; the worker stops the fit at its next step

    @property
    def active(self) -> bool:
        return self.status in ACTIVE

    @property
    def cancelling(self) -> bool:
        """Running, but cancelled by the user: the pages show it as cancelling, not as running."""
        return self.status == "running" and self.cancel_requested

    @property
    def stale(self) -> bool:
        """Running, but its worker stopped reporting: shown as interrupted."""
        if self.status != "running":
            return False
        beat = self.heartbeat_at or self.started_at or self.created_at
        return _aware(beat) < utcnow() - STALE_AFTER


@dataclass(frozen=True)
class MapInfo:
    """A requested UMAP map of a run (`Store.request_map`); its coordinates are in the run's files."""

    id: int
    run_id: int
    params: dict
    status: str  # queued | running | done | failed
    error: str | None
    worker: str | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None

    @property
    def active(self) -> bool:
        return self.status in ACTIVE


@dataclass(frozen=True)
class RunFiles:
    """A run's files in the workspace, written once by the worker when the run finishes."""

    folder: Path
    model: Path  # the fitted detector (BaseDetector.save / load)
    scores: Path  # float array, one score per sample in idx order
    embedding: Path  # float32 N×d latent vectors in idx order
    maps: Path  # folder of the 2-D map coordinates (semiad.embed.ProjectionCache)


def _aware(t: datetime) -> datetime:
    return t if t.tzinfo else t.replace(tzinfo=timezone.utc)


def default_home() -> Path:
    return Path(os.environ.get("SEMIAD_HOME", "workspace")).resolve()


def make_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn, _record) -> None:
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")  # readers never block the writer
            cur.execute("PRAGMA busy_timeout=30000")
            cur.execute("PRAGMA synchronous=NORMAL")  # durable at checkpoint; safe in WAL mode
            cur.execute("PRAGMA foreign_keys=ON")
            cur.close()

        return engine
    return create_engine(url, pool_pre_ping=True)


class Store:
    def __init__(self, url: str | None = None, home: str | Path | None = None) -> None:
        self.home = Path(home).resolve() if home else default_home()
        self.home.mkdir(parents=True, exist_ok=True)
        self.url = url or os.environ.get("SEMIAD_DB_URL") or f"sqlite:///{self.home / 'semiad.db'}"
        self.engine = make_engine(self.url)
        Base.metadata.create_all(self.engine)
        # create_all skips the indexes of tables that exist already: add any a newer version defines
        for table in Base.metadata.sorted_tables:
            for index in table.indexes:
                index.create(self.engine, checkfirst=True)
        self._session = sessionmaker(self.engine, expire_on_commit=False)
        self._derive_missing()

    def _derive_missing(self) -> None:
        """Fill the counters and votes tables for projects that predate them (a database written by an
        older semiad), from the samples and the event history. A no-op once they exist."""
        with self.session() as s:
            todo = s.scalars(select(Project.id).where(~exists().where(LabelCounts.project_id == Project.id))).all()
            for pid in todo:
                labels = dict(s.execute(select(Sample.label, func.count()).where(Sample.project_id == pid)
                                        .group_by(Sample.label)).all())
                events = s.scalar(select(func.count(LabelEvent.id)).where(LabelEvent.project_id == pid)) or 0
                s.add(LabelCounts(project_id=pid, events=int(events), normal=int(labels.get("normal", 0)),
                                  anomalous=int(labels.get("anomalous", 0))))
                if events and s.scalar(select(LabelVote.sample_id).where(LabelVote.project_id == pid).limit(1)) is None:
                    latest = (select(func.max(LabelEvent.id)).where(LabelEvent.project_id == pid)
                              .group_by(LabelEvent.sample_id, LabelEvent.annotator))
                    s.execute(insert(LabelVote).from_select(
                        ["sample_id", "annotator", "project_id", "label"],
                        select(LabelEvent.sample_id, LabelEvent.annotator, LabelEvent.project_id, LabelEvent.label)
                        .where(LabelEvent.id.in_(latest))))
            if todo:
                try:
                    s.commit()
                except IntegrityError:  # another server filled them at the same moment
                    s.rollback()

    def session(self) -> Session:
        return self._session()

    def close(self) -> None:
        self.engine.dispose()

    # ----- projects --------------------------------------------------------------------------
    def project_dir(self, project_id: int) -> Path:
        return self.home / "projects" / str(int(project_id))

    def create_project(self, name: str, samples: SampleSet, source: str = "", options: dict | None = None) -> int:
        name = name.strip()
        if not name:
            raise StoreError("a project needs a name")
        with self.session() as s:
            if s.scalar(select(Project.id).where(Project.name == name)) is not None:
                raise StoreError(f"a project named {name!r} exists already")
            project = Project(name=name, source=source, options=json.dumps(options or {}), kind=samples.kind,
                              n_samples=len(samples), skipped=json.dumps(samples.skipped))
            s.add(project)
            s.flush()
            pid = project.id
            folder = self.project_dir(pid)
            folder.mkdir(parents=True, exist_ok=True)
            self._save_samples(folder / "data.npz", samples)
            truth = samples.truth.tolist() if samples.truth is not None else [None] * len(samples)
            paths = samples.paths or [None] * len(samples)
            rows = [{"project_id": pid, "idx": i, "key": k, "path": p, "truth": None if t is None else int(t)}
                    for i, (k, p, t) in enumerate(zip(samples.ids, paths, truth))]
            for start in range(0, len(rows), 10_000):
                s.execute(insert(Sample), rows[start:start + 10_000])
            s.add(LabelCounts(project_id=pid, events=0, normal=0, anomalous=0))
            s.commit()
        return pid

    @staticmethod
    def _save_samples(path: Path, samples: SampleSet) -> None:
        arrays = {"X": samples.X, "ids": np.array(samples.ids, dtype=str), "kind": np.array(samples.kind),
                  "name": np.array(samples.name)}
        if samples.truth is not None:
            arrays["truth"] = samples.truth
        if samples.classes is not None:
            arrays["classes"] = np.array(samples.classes, dtype=str)
        if samples.paths is not None:
            arrays["paths"] = np.array(samples.paths, dtype=str)
        if samples.columns is not None:
            arrays["columns"] = np.array(samples.columns, dtype=str)
        tmp = path.with_suffix(".tmp.npz")
        np.savez(tmp, **arrays)
        tmp.replace(path)
        if samples.originals is not None:  # its own file, memory-mapped when read: never loaded whole
            tmp = path.with_name("originals.tmp.npy")
            np.save(tmp, samples.originals)
            tmp.replace(path.with_name("originals.npy"))

    def load_samples(self, project_id: int) -> SampleSet:
        originals = self.project_dir(project_id) / "originals.npy"
        with np.load(self.project_dir(project_id) / "data.npz", allow_pickle=False) as d:
            return SampleSet(
                ids=d["ids"].tolist(), X=d["X"], kind=str(d["kind"]), name=str(d["name"]),
                truth=d["truth"] if "truth" in d.files else None,
                classes=d["classes"].tolist() if "classes" in d.files else None,
                paths=d["paths"].tolist() if "paths" in d.files else None,
                columns=d["columns"].tolist() if "columns" in d.files else None,
                originals=np.load(originals, mmap_mode="r", allow_pickle=False) if originals.exists() else None,
            )

    def projects(self) -> list[ProjectInfo]:
        with self.session() as s:
            return [self._project_info(p) for p in s.scalars(select(Project).order_by(Project.id))]

    def project(self, project_id: int) -> ProjectInfo:
        with self.session() as s:
            return self._project_info(_get(s, Project, project_id, "project"))

    @staticmethod
    def _project_info(p: Project) -> ProjectInfo:
        return ProjectInfo(p.id, p.name, p.source, json.loads(p.options), p.kind, p.n_samples,
                           json.loads(p.skipped), p.created_at)

    # ----- project settings ------------------------------------------------------------------
    def project_setting(self, project_id: int, key: str, default: Any = None) -> Any:
        """A project's setting (any JSON value), shared by every annotator and the worker."""
        with self.session() as s:
            raw = s.scalar(select(ProjectSetting.value).where(ProjectSetting.project_id == project_id,
                                                              ProjectSetting.key == key))
        return default if raw is None else json.loads(raw)

    def set_project_setting(self, project_id: int, key: str, value: Any) -> None:
        """Set (or with None, remove) a project's setting; the last writer wins."""
        for attempt in range(2):
            with self.session() as s:
                s.execute(delete(ProjectSetting).where(ProjectSetting.project_id == project_id,
                                                       ProjectSetting.key == key))
                if value is not None:
                    s.add(ProjectSetting(project_id=project_id, key=key, value=json.dumps(value)))
                try:
                    s.commit()
                    return
                except IntegrityError:  # another writer inserted the same key in between: once more
                    s.rollback()
                    if attempt:
                        raise

    def projects_with_setting(self, key: str) -> dict[int, Any]:
        """project id → value, for every project that has this setting (one read, for the worker)."""
        with self.session() as s:
            rows = s.execute(select(ProjectSetting.project_id, ProjectSetting.value)
                             .where(ProjectSetting.key == key)).all()
        return {int(pid): json.loads(raw) for pid, raw in rows}

    # ----- samples and labels ----------------------------------------------------------------
    def _bulk_rows(self, query: Any) -> list[tuple]:
        """All rows of a select of plain columns (ints, text), as the driver returns them: SQLAlchemy's
        Row objects cost ~3 µs each, 10x the read itself, for the 100,000s of rows a project has."""
        with self.engine.connect() as conn:
            return conn.execute(query).cursor.fetchall()

    def samples(self, project_id: int) -> pd.DataFrame:
        """One row per sample, ordered by idx: sample_id, idx, key, path, truth, label."""
        rows = self._bulk_rows(select(Sample.id, Sample.idx, Sample.key, Sample.path, Sample.truth, Sample.label)
                               .where(Sample.project_id == project_id).order_by(Sample.idx))
        return pd.DataFrame(rows, columns=["sample_id", "idx", "key", "path", "truth", "label"])

    def sample_ids(self, project_id: int, keys: Iterable[str]) -> dict[str, int]:
        keys = list(keys)
        out: dict[str, int] = {}
        with self.session() as s:
            for start in range(0, len(keys), 1000):
                chunk = keys[start:start + 1000]
                out.update(s.execute(select(Sample.key, Sample.id).where(
                    Sample.project_id == project_id, Sample.key.in_(chunk))).all())
        return out

    def sample_key(self, project_id: int, sample_id: int) -> str:
        """The id users see of one sample (its file path, a CSV's id, "digit-12")."""
        with self.session() as s:
            key = s.scalar(select(Sample.key).where(Sample.project_id == project_id, Sample.id == int(sample_id)))
        if key is None:
            raise StoreError(f"no sample {sample_id} in project {project_id}")
        return key

    def labeled_sample_ids(self, project_id: int) -> np.ndarray:
        """The samples that have a label now (read from the (project, label) index, not the samples)."""
        rows = self._bulk_rows(select(Sample.id).where(Sample.project_id == project_id, Sample.label.is_not(None)))
        return np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))

    def current_labels(self, project_id: int, sample_ids: Iterable[int]) -> dict[int, str | None]:
        """Current label (or None) of the given samples."""
        ids = [int(i) for i in sample_ids]
        if not ids:
            return {}
        with self.session() as s:
            return dict(s.execute(select(Sample.id, Sample.label).where(
                Sample.project_id == project_id, Sample.id.in_(ids))).all())

    def labels_in_order(self, project_id: int, source_prefix: str = "") -> pd.DataFrame:
        """Every sample that holds a label now, once, in the order its label was given, with the event
        that gave it: the sample's latest event that is neither an undo nor undone (an undo restores the
        label before, and its giver: the undoer only took their own back). With `source_prefix`, only
        those whose giving event's source starts with it (e.g. "review"), filtered in the database: a
        project with 50,000 labels from the Latent map need not ship them for a count of the Review
        labels. Columns: sample_id, label (the current one), round, source, annotator, time."""
        latest = (select(func.max(LabelEvent.id).label("event_id"))
                  .where(LabelEvent.project_id == project_id, LabelEvent.source != "undo", _not_undone(LabelEvent))
                  .group_by(LabelEvent.sample_id).subquery())
        query = (select(LabelEvent.sample_id, Sample.label, LabelEvent.round, LabelEvent.source, LabelEvent.annotator,
                        LabelEvent.created_at)
                 .join(latest, LabelEvent.id == latest.c.event_id)
                 .join(Sample, Sample.id == LabelEvent.sample_id)
                 .where(Sample.label.is_not(None)))
        if source_prefix:
            query = query.where(LabelEvent.source.startswith(source_prefix, autoescape=True))
        rows = self._bulk_rows(query.order_by(LabelEvent.id))
        return pd.DataFrame(rows, columns=["sample_id", "label", "round", "source", "annotator", "time"])

    def current_round(self, project_id: int) -> int:
        """Rounds = finished training runs; labels carry the round the annotator was looking at."""
        with self.session() as s:
            return int(s.scalar(select(func.count(Run.id)).where(Run.project_id == project_id,
                                                                 Run.status == "done")) or 0)

    def record_labels(self, project_id: int, sample_ids: Iterable[int], label: str, annotator: str,
                      source: str = "review") -> str:
        """Label samples in one transaction (one event each); returns the batch id used by undo."""
        if label not in LABELS:
            raise StoreError(f"label must be one of {LABELS}, not {label!r}")
        return self.record_label_changes(project_id, {int(i): label for i in sample_ids}, annotator, source)

    def record_label_changes(self, project_id: int, labels: dict[int, str], annotator: str,
                             source: str = "review", token: str | None = None, seen_round: int | None = None,
                             pressed_at: datetime | None = None) -> str:
        """Give each sample its own label, all in one transaction and one batch (an import: one undo
        reverts it); returns the batch id. The events' round is the number of finished runs, or
        `seen_round` where that is lower: the round whose ranking showed the card (a press applied after
        the next model finished was still given on the card of the one before).

        With a `token` (one per key press or click, made by the browser) the request is applied at
        most once: a second call with the same token writes nothing and returns the first call's
        batch. With `pressed_at` (when the key was pressed), a sample labeled since then, other than by
        the same browser tab (tokens "<tab>_<random>": the tab's own presses come in their order), is
        refused with who labeled it: a press held back on its way (a dropped connection) does not write
        over a label given after it."""
        bad = sorted({lab for lab in labels.values() if lab not in LABELS})
        if bad:
            raise StoreError(f"label must be one of {LABELS}, not {bad[0]!r}")
        annotator = (annotator or "").strip()
        if not annotator:
            raise StoreError("say who is labeling (annotator name) before labeling")
        changes = sorted((int(i), lab) for i, lab in labels.items())
        if not changes:
            raise StoreError("no samples to label")
        batch = uuid.uuid4().hex
        with self.session() as s:
            if token is not None:
                earlier = self._claim_token(s, project_id, token, annotator, "label", batch)
                if earlier is not None:
                    return earlier[0] or ""
            if pressed_at is not None:
                self._refuse_if_labeled_since(s, project_id, [i for i, _ in changes], pressed_at, token)
            for start in range(0, len(changes), 5000):  # under the databases' bound-parameter limits
                self._write_events(s, project_id, changes[start:start + 5000], annotator, source, batch, None,
                                   seen_round=seen_round)
            s.commit()
        return batch

    def record_label(self, project_id: int, sample_id: int, label: str, annotator: str, source: str = "review",
                     token: str | None = None, seen_round: int | None = None,
                     pressed_at: datetime | None = None) -> str:
        if label not in LABELS:
            raise StoreError(f"label must be one of {LABELS}, not {label!r}")
        return self.record_label_changes(project_id, {int(sample_id): label}, annotator, source, token, seen_round,
                                         pressed_at)

    @staticmethod
    def _refuse_if_labeled_since(s: Session, project_id: int, ids: list[int], pressed_at: datetime,
                                 token: str | None) -> None:
        """Raise StoreError (the transaction is then rolled back) when one of `ids` has a label event written
        more than HELD_BACK after `pressed_at` that did not come from the same tab as `token`."""
        since = s.execute(select(LabelEvent.batch, LabelEvent.label, LabelEvent.annotator, Sample.key)
                          .join(Sample, Sample.id == LabelEvent.sample_id)
                          .where(LabelEvent.project_id == project_id, LabelEvent.sample_id.in_(ids),
                                 LabelEvent.created_at > pressed_at + HELD_BACK)
                          .order_by(LabelEvent.id.desc())).all()
        tab, mark, _ = (token or "").partition("_")  # a token is letters, digits, "-" and "_" (_claim_token)
        if since and mark:  # the tab's own presses since (a label, its undo, a new label) are in their order
            own = set(s.scalars(select(LabelRequest.batch).where(
                LabelRequest.batch.in_({row.batch for row in since}),
                LabelRequest.token.like(tab + "\\_%", escape="\\"))))
            since = [row for row in since if row.batch not in own]
        if since:
            late = (utcnow() - pressed_at).total_seconds()
            row = since[0]
            raise StoreError(f"{row.key} was labeled {row.label} by {row.annotator} after your key press, which "
                             f"reached the server {late:.0f} s later; the newer label stands")

    def applied_tokens(self, tokens: Iterable[str]) -> set[str]:
        """Which of these request tokens the store has applied already."""
        tokens = [t for t in tokens if isinstance(t, str)]
        if not tokens:
            return set()
        with self.session() as s:
            return set(s.scalars(select(LabelRequest.token).where(LabelRequest.token.in_(tokens))).all())

    @staticmethod
    def _claim_token(s: Session, project_id: int, token: str, annotator: str, kind: str,
                     batch: str | None) -> tuple[str | None] | None:
        """Record the request's token as the first write of the transaction (on SQLite this takes the
        write lock; on PostgreSQL a concurrent insert of the same token waits for this transaction).
        Returns None if the token is new, else (the batch it wrote,) after rolling back."""
        if not isinstance(token, str) or not _TOKEN.fullmatch(token):
            raise StoreError("a request token is 8 to 64 letters, digits, '-' or '_'")
        try:
            s.execute(insert(LabelRequest).values(token=token, project_id=project_id, annotator=annotator,
                                                  kind=kind, batch=batch, created_at=utcnow()))
            s.flush()
        except IntegrityError:
            s.rollback()
            row = s.execute(select(LabelRequest.batch, LabelRequest.project_id)
                            .where(LabelRequest.token == token)).first()
            if row is None:  # the other transaction rolled back after all: nothing was applied
                raise StoreError("that request is being applied by another server; try again") from None
            if row[1] != project_id:
                raise StoreError("that request token belongs to another project") from None
            return (row[0],)
        return None

    def _write_events(self, s: Session, project_id: int, changes: list[tuple[int, str]], annotator: str,
                      source: str, batch: str, undoes: str | None, votes: dict[int, str] | None = None,
                      seen_round: int | None = None) -> None:
        """Write `changes` (sample, new label) as events by `annotator`; `votes`: what the annotator now
        says of each sample, where that is not the new label (an undo restores labels others gave);
        `seen_round`: see record_label_changes."""
        ids = [i for i, _ in changes]
        # A write first: SQLite takes its write lock here (its driver starts the transaction at the first
        # write), so the labels read below cannot change before this transaction commits; on PostgreSQL
        # it row-locks the project's counters (label writes of one project queue here for milliseconds).
        s.execute(update(LabelCounts).where(LabelCounts.project_id == project_id).values(
            events=LabelCounts.events + len(changes)))
        # Lock the rows (PostgreSQL; SQLite serialises writers) so "latest event" and the
        # denormalised label cannot disagree under concurrent annotators.
        # The round rides along with the lock query: one round trip less per click on a server database.
        done_runs = (select(func.count(Run.id)).where(Run.project_id == project_id, Run.status == "done")
                     .scalar_subquery())
        found = s.execute(select(Sample.id, Sample.label, done_runs)
                          .where(Sample.project_id == project_id, Sample.id.in_(ids))
                          .order_by(Sample.id).with_for_update(of=Sample)).all()
        missing = set(ids) - {i for i, _, _ in found}
        if missing:
            raise StoreError(f"{len(missing)} sample(s) are not in project {project_id}: {sorted(missing)[:5]}")
        rnd = int(found[0][2] or 0)
        if isinstance(seen_round, int) and not isinstance(seen_round, bool) and 0 <= seen_round < rnd:
            rnd = seen_round
        before = [lab for _, lab, _ in found]
        after = [None if lab == "unlabeled" else lab for _, lab in changes]
        d_normal = after.count("normal") - before.count("normal")
        d_anomalous = after.count("anomalous") - before.count("anomalous")
        if d_normal or d_anomalous:
            s.execute(update(LabelCounts).where(LabelCounts.project_id == project_id).values(
                normal=LabelCounts.normal + d_normal, anomalous=LabelCounts.anomalous + d_anomalous))
        votes = votes or {}
        _upsert_votes(s, [{"sample_id": i, "annotator": annotator, "project_id": project_id,
                           "label": votes.get(i, lab)} for i, lab in changes])
        now = utcnow()
        s.execute(insert(LabelEvent), [
            {"project_id": project_id, "sample_id": i, "label": lab, "annotator": annotator, "created_at": now,
             "round": rnd, "source": source, "batch": batch, "undoes": undoes} for i, lab in changes])
        by_label: dict[str | None, list[int]] = {}
        for i, lab in changes:
            by_label.setdefault(None if lab == "unlabeled" else lab, []).append(i)
        for lab, group in by_label.items():
            s.execute(update(Sample).where(Sample.id.in_(group)).values(label=lab))

    def undo_last(self, project_id: int, annotator: str, token: str | None = None,
                  target: str | None = None, batch_id: str | None = None) -> list[int]:
        """Revert this annotator's latest not-yet-undone batch with new events; returns the samples.

        A sample labeled again after that batch (by anyone) keeps its newer label; when that is every
        sample of the batch, nothing is written and StoreError says who labeled them since.
        With `target` (the token of one of this annotator's label requests) that request's batch is
        reverted instead of the latest one, if it is not undone yet; so is the batch `batch_id` (an import's).
        With a `token` the undo is applied at most once: a repeat returns [] and writes nothing."""
        with self.session() as s:
            batch = uuid.uuid4().hex
            if token is not None and self._claim_token(s, project_id, token, annotator, "undo", None) is not None:
                return []
            mine = select(LabelEvent.batch).where(
                LabelEvent.project_id == project_id, LabelEvent.annotator == annotator,
                LabelEvent.source != "undo", _not_undone(LabelEvent))
            if target is not None or batch_id is not None:
                wrote = batch_id or s.scalar(select(LabelRequest.batch).where(LabelRequest.token == target,
                                                                              LabelRequest.kind == "label"))
                last = s.scalar(mine.where(LabelEvent.batch == wrote).limit(1)) if wrote else None
            else:
                last = s.scalar(mine.order_by(LabelEvent.id.desc()).limit(1))
            if last is None:
                if token is not None:
                    s.commit()  # the request is done: it had nothing to undo
                return []
            events = s.execute(select(LabelEvent.id, LabelEvent.sample_id).where(LabelEvent.batch == last)).all()
            changes, votes, since = [], {}, set()
            for event_id, sample_id in events:
                relabeled = s.scalar(select(LabelEvent.annotator).where(
                    LabelEvent.project_id == project_id, LabelEvent.sample_id == sample_id,
                    LabelEvent.id > event_id, LabelEvent.source != "undo", _not_undone(LabelEvent)).limit(1))
                if relabeled is not None:  # labeled again since (maybe by someone else): leave it
                    since.add(relabeled)
                    continue
                earlier = select(LabelEvent.label).where(
                    LabelEvent.project_id == project_id, LabelEvent.sample_id == sample_id,
                    LabelEvent.id < event_id).order_by(LabelEvent.id.desc()).limit(1)
                before = s.scalar(earlier)
                changes.append((sample_id, before or "unlabeled"))
                # the undoer's vote: what they said before and still stands, not a label someone else gave
                said = s.scalar(earlier.where(LabelEvent.annotator == annotator, LabelEvent.source != "undo",
                                              _not_undone(LabelEvent)))
                votes[sample_id] = said or "unlabeled"
            if not changes:  # the token stays unclaimed: a repeat gets the same answer
                what = "that sample was" if len(events) == 1 else f"all {len(events)} samples of that label were"
                raise StoreError(f"Not undone: {what} labeled again since (by {', '.join(sorted(since))}), "
                                 "and the newer label stands.")
            self._write_events(s, project_id, changes, annotator, "undo", batch, last, votes)
            if token is not None:
                s.execute(update(LabelRequest).where(LabelRequest.token == token).values(batch=batch))
            s.commit()
        return [i for i, _ in changes]

    def semi_targets(self, project_id: int) -> np.ndarray:
        """Current labels as Deep SAD semi-targets in sample order: +1 normal, −1 anomalous, 0 unlabeled."""
        df = self.samples(project_id)
        return np.select([df["label"] == "normal", df["label"] == "anomalous"], [1, -1], 0).astype(np.int64)

    def label_counts(self, project_id: int) -> dict[str, int]:
        """Samples normal / anomalous / unlabeled now, and label events so far (kept as counters)."""
        with self.session() as s:
            row = s.execute(select(LabelCounts.normal, LabelCounts.anomalous, LabelCounts.events, Project.n_samples)
                            .join(Project, Project.id == LabelCounts.project_id)
                            .where(LabelCounts.project_id == project_id)).first()
        normal, anomalous, events, n = row if row is not None else (0, 0, 0, 0)
        return {"normal": int(normal), "anomalous": int(anomalous), "unlabeled": int(n - normal - anomalous),
                "events": int(events)}

    def events(self, project_id: int, last: int | None = None) -> pd.DataFrame:
        """The full label history, oldest first; with `last`, only the latest `last` events (a page's
        "recent labels" without reading a long history)."""
        q = (select(LabelEvent.id, LabelEvent.sample_id, Sample.key, Sample.path, LabelEvent.label,
                    LabelEvent.annotator, LabelEvent.created_at, LabelEvent.round, LabelEvent.source,
                    LabelEvent.batch, LabelEvent.undoes)
             .join(Sample, Sample.id == LabelEvent.sample_id).where(LabelEvent.project_id == project_id))
        with self.session() as s:
            if last is None:
                rows = s.execute(q.order_by(LabelEvent.id)).all()
            else:
                rows = s.execute(q.order_by(LabelEvent.id.desc()).limit(int(last))).all()[::-1]
        return pd.DataFrame(rows, columns=["event_id", "sample_id", "key", "path", "label", "annotator", "time",
                                           "round", "source", "batch", "undoes"])

    def disputes(self, project_id: int, sample_ids: Iterable[int] | None = None) -> dict[int, list[tuple[str, str]]]:
        """Samples whose annotators' latest labels disagree: sample_id → [(annotator, label), ...].
        Without sample_ids: every such sample of the project. Reads the votes table (each annotator's
        latest label per sample), never the history."""
        votes = select(LabelVote.sample_id, LabelVote.annotator, LabelVote.label).where(
            LabelVote.project_id == project_id, LabelVote.label != "unlabeled")
        with self.session() as s:
            if sample_ids is None:
                contested = (select(LabelVote.sample_id).where(LabelVote.project_id == project_id,
                                                               LabelVote.label != "unlabeled")
                             .group_by(LabelVote.sample_id).having(func.count(func.distinct(LabelVote.label)) > 1))
                rows = s.execute(votes.where(LabelVote.sample_id.in_(contested))).all()
            else:
                ids = sorted({int(i) for i in sample_ids})
                rows = []
                for start in range(0, len(ids), 5000):
                    rows += s.execute(votes.where(LabelVote.sample_id.in_(ids[start:start + 5000]))).all()
        said: dict[int, dict[str, str]] = {}
        for sid, who, lab in rows:
            said.setdefault(sid, {})[who] = lab
        return {sid: sorted(by_who.items()) for sid, by_who in sorted(said.items()) if len(set(by_who.values())) > 1}

    # ----- runs ------------------------------------------------------------------------------
    def run_files(self, run: RunInfo | int) -> RunFiles:
        """Where a run's model, scores, embedding and maps are (the one place that names them)."""
        run = self.run(run) if isinstance(run, int) else run
        folder = self.project_dir(run.project_id) / "runs" / str(run.id)
        return RunFiles(folder=folder, model=folder / "model.pt", scores=folder / "scores.npy",
                        embedding=folder / "embedding.npy", maps=folder)

    def run_scores(self, run: RunInfo | int) -> np.ndarray:
        """A finished run's score of every sample, in sample (idx) order; higher = more anomalous."""
        return np.load(self.run_files(run).scores, allow_pickle=False)

    def run_embedding(self, run: RunInfo | int) -> np.ndarray:
        """A finished run's latent vector of every sample (N×d), in sample (idx) order."""
        return np.load(self.run_files(run).embedding, allow_pickle=False)

    def request_run(self, project_id: int, method: str, params: dict[str, Any], requested_by: str = "",
                    parent_id: int | None = None) -> int:
        """Queue a training run; refused while another run of this project is queued or running.
        The run's params also record `label_events`, the project's label-event count at this moment
        (the snapshot auto-retrain counts new labels from)."""
        with self.session() as s:
            busy = s.scalars(select(Run).where(Run.project_id == project_id, Run.status.in_(ACTIVE))
                             .with_for_update()).first()
            if busy is not None and not self._info(busy).stale:
                raise JobBusy(f"run {busy.id} ({busy.method}) is {busy.status}; wait for it to finish or cancel it")
            if busy is not None:
                self._interrupt(s, busy)
            n_labels = s.scalar(select(func.count(Sample.id)).where(Sample.project_id == project_id,
                                                                      Sample.label.is_not(None))) or 0
            events = s.scalar(select(LabelCounts.events).where(LabelCounts.project_id == project_id)) or 0
            params = {**params, "label_events": int(events)}
            run = Run(project_id=project_id, method=method, params=json.dumps(params), parent_id=parent_id,
                      status="queued", requested_by=requested_by, n_labels=int(n_labels), message="queued")
            s.add(run)
            s.commit()
            return run.id

    def claim_next_run(self, worker: str) -> RunInfo | None:
        """Atomically move the oldest queued run to running for this worker."""
        now = utcnow()
        claimed = self._claim_oldest(Run, worker=worker, started_at=now, heartbeat_at=now, message="starting")
        return None if claimed is None else self.run(claimed)

    def _claim_oldest(self, table: type[Run] | type[MapRequest], **values: Any) -> int | None:
        """Move the oldest queued row of `table` to running with `values`, atomically: rows another
        worker holds are skipped (PostgreSQL), and the update only wins while the row is still queued.
        The row's id, or None when nothing was claimed."""
        with self.session() as s:
            row = s.scalars(select(table).where(table.status == "queued").order_by(table.id).limit(1)
                            .with_for_update(skip_locked=True)).first()
            if row is None:
                return None
            claimed = s.execute(update(table).where(table.id == row.id, table.status == "queued")
                                .values(status="running", **values)).rowcount
            s.commit()
            return row.id if claimed else None

    def heartbeat(self, run_id: int) -> None:
        """The worker is alive (sent on a timer, also during scoring and saving)."""
        with self.session() as s:
            s.execute(update(Run).where(Run.id == run_id, Run.status == "running").values(heartbeat_at=utcnow()))
            s.commit()

    def report_progress(self, run_id: int, progress: float, message: str) -> bool:
        """Heartbeat with progress; returns True if a cancel was requested (then the run keeps its
        "cancelling…" message)."""
        with self.session() as s:
            s.execute(update(Run).where(Run.id == run_id, Run.status == "running",
                                        Run.cancel_requested.is_(False)).values(
                progress=float(progress), message=message, heartbeat_at=utcnow()))
            s.commit()
            return bool(s.scalar(select(Run.cancel_requested).where(Run.id == run_id)))

    def cancel_requested(self, run_id: int) -> bool:
        """Whether a cancel was clicked for this run (one indexed read: the worker polls it)."""
        with self.session() as s:
            return bool(s.scalar(select(Run.cancel_requested).where(Run.id == run_id)))

    def finish_run(self, run_id: int, status: str, metrics: dict | None = None, error: str | None = None,
                   message: str = "") -> None:
        with self.session() as s:
            run = s.get(Run, run_id)
            run.status = status
            run.finished_at = utcnow()
            run.metrics = json.dumps(metrics or {})
            run.error = error
            run.message = message or status
            if status == "done":
                run.progress = 1.0
                run.round = int(s.scalar(select(func.count(Run.id)).where(
                    Run.project_id == run.project_id, Run.status == "done")) or 1)
            s.commit()

    def update_metrics(self, run_id: int, **metrics: Any) -> None:
        with self.session() as s:
            run = s.get(Run, run_id)
            run.metrics = json.dumps({**json.loads(run.metrics), **metrics})
            s.commit()

    def cancel_run(self, run_id: int) -> None:
        """A queued run is cancelled at once; a running one is marked cancelling (shown so at once)
        and its worker stops the fit at the next training step, then marks it cancelled."""
        with self.session() as s:
            run = s.get(Run, run_id)
            if run.status == "queued":
                run.status, run.message, run.finished_at = "cancelled", "cancelled before it started", utcnow()
            elif run.status == "running":
                run.cancel_requested = True
                run.message = "cancelling…"
            s.commit()

    def interrupt_dead_runs(self, host: str | None = None) -> list[int]:
        """Mark running runs as interrupted when their worker is gone: a dead pid on this host, or no
        heartbeat for STALE_AFTER. Called when a worker starts (e.g. after a server crash)."""
        host = host or socket.gethostname()
        done = []
        with self.session() as s:
            for run in s.scalars(select(Run).where(Run.status == "running")).all():
                if _dead_worker(run.worker, host) or self._info(run).stale:
                    self._interrupt(s, run)
                    done.append(run.id)
            s.commit()
        return done

    @staticmethod
    def _interrupt(s: Session, run: Run) -> None:
        run.status = "interrupted"
        run.message = "interrupted: the server or worker stopped during training"
        run.finished_at = utcnow()

    def run(self, run_id: int) -> RunInfo:
        with self.session() as s:
            return self._info(_get(s, Run, run_id, "run"))

    def runs(self, project_id: int) -> list[RunInfo]:
        with self.session() as s:
            return [self._info(r) for r in s.scalars(select(Run).where(Run.project_id == project_id).order_by(Run.id))]

    def active_run(self, project_id: int) -> RunInfo | None:
        with self.session() as s:
            run = s.scalars(select(Run).where(Run.project_id == project_id, Run.status.in_(ACTIVE))
                            .order_by(Run.id.desc())).first()
            return self._info(run) if run is not None else None

    def latest_done_run(self, project_id: int) -> RunInfo | None:
        with self.session() as s:
            run = s.scalars(select(Run).where(Run.project_id == project_id, Run.status == "done")
                            .order_by(Run.id.desc())).first()
            return self._info(run) if run is not None else None

    @staticmethod
    def _info(r: Run) -> RunInfo:
        return RunInfo(r.id, r.project_id, r.method, json.loads(r.params), r.parent_id, r.status, r.progress,
                       r.message, json.loads(r.metrics), r.error, r.round, r.n_labels, r.requested_by, r.worker,
                       r.created_at, r.started_at, r.heartbeat_at, r.finished_at, bool(r.cancel_requested))

    # ----- maps ------------------------------------------------------------------------------
    def request_map(self, run_id: int, params: dict[str, Any]) -> int:
        """Ask the worker for a UMAP map of a run with these settings; returns the request's id
        (the one already queued or running for the same run and settings, if there is one)."""
        key = json.dumps(params, sort_keys=True)
        with self.session() as s:
            active = s.scalar(select(MapRequest.id).where(MapRequest.run_id == run_id, MapRequest.params == key,
                                                          MapRequest.status.in_(ACTIVE)).limit(1))
            if active is not None:
                return active
            job = MapRequest(run_id=run_id, params=key, status="queued")
            s.add(job)
            s.commit()
            return job.id

    def map_request(self, map_id: int) -> MapInfo:
        with self.session() as s:
            return self._map_info(_get(s, MapRequest, map_id, "map request"))

    def latest_map_request(self, run_id: int, params: dict[str, Any]) -> MapInfo | None:
        """The newest request for this run's map with these settings, or None."""
        with self.session() as s:
            job = s.scalars(select(MapRequest).where(MapRequest.run_id == run_id,
                                                     MapRequest.params == json.dumps(params, sort_keys=True))
                            .order_by(MapRequest.id.desc()).limit(1)).first()
            return self._map_info(job) if job is not None else None

    def claim_next_map(self, worker: str) -> MapInfo | None:
        """Atomically move the oldest queued map request to running for this worker."""
        claimed = self._claim_oldest(MapRequest, worker=worker, started_at=utcnow())
        return None if claimed is None else self.map_request(claimed)

    def finish_map(self, map_id: int, error: str | None = None, skipped: bool = False) -> None:
        """The worker is done with a map request: done, failed with `error`, or skipped (`error` says why)."""
        status = "skipped" if skipped else "failed" if error else "done"
        with self.session() as s:
            s.execute(update(MapRequest).where(MapRequest.id == map_id).values(
                status=status, error=error, finished_at=utcnow()))
            s.commit()

    def requeue_dead_maps(self, host: str | None = None) -> list[int]:
        """Queue again the maps that were being computed by a worker that is gone (a dead pid on this
        host); called when a worker starts."""
        host = host or socket.gethostname()
        with self.session() as s:
            dead = [job.id for job in s.scalars(select(MapRequest).where(MapRequest.status == "running"))
                    if _dead_worker(job.worker, host)]
            if dead:
                s.execute(update(MapRequest).where(MapRequest.id.in_(dead), MapRequest.status == "running")
                          .values(status="queued", worker=None, started_at=None))
                s.commit()
        return dead

    @staticmethod
    def _map_info(m: MapRequest) -> MapInfo:
        return MapInfo(m.id, m.run_id, json.loads(m.params), m.status, m.error, m.worker, m.created_at,
                       m.started_at, m.finished_at)

    # ----- scores ----------------------------------------------------------------------------
    def save_scores(self, run_id: int, scores: np.ndarray, embedding: np.ndarray | None = None) -> None:
        """A run's score of every sample (and its latent vectors), in sample (idx) order: written to the
        run's files (`run_files`; the review batch reads them, `state.ranking`) and to the scores table
        with each score's rank (the Progress and Latent map pages join them with the labels)."""
        run = self.run(run_id)
        ids = self.samples(run.project_id)["sample_id"].to_numpy()
        scores = np.asarray(scores, dtype=np.float64)
        if len(scores) != len(ids):
            raise StoreError(f"{len(scores)} scores for {len(ids)} samples")
        if embedding is not None and len(embedding) != len(ids):
            raise StoreError(f"{len(embedding)} embeddings for {len(ids)} samples")
        files = self.run_files(run)
        files.folder.mkdir(parents=True, exist_ok=True)
        np.save(files.scores, scores)
        if embedding is not None:
            np.save(files.embedding, np.asarray(embedding, dtype=np.float32))
        rank = np.empty(len(scores), dtype=np.int64)
        rank[np.argsort(-scores, kind="stable")] = np.arange(1, len(scores) + 1)
        rows = [{"run_id": run_id, "sample_id": int(i), "score": float(v), "rank": int(r)}
                for i, v, r in zip(ids, scores, rank)]
        with self.session() as s:
            for start in range(0, len(rows), 20_000):
                s.execute(insert(Score), rows[start:start + 20_000])
            s.commit()

    def scores(self, run_id: int) -> pd.DataFrame:
        """sample_id, idx, key, label, truth, score for every sample of the run's project."""
        with self.session() as s:
            rows = s.execute(select(Sample.id, Sample.idx, Sample.key, Sample.label, Sample.truth, Score.score)
                             .join(Score, Score.sample_id == Sample.id).where(Score.run_id == run_id)
                             .order_by(Sample.idx)).all()
        return pd.DataFrame(rows, columns=["sample_id", "idx", "key", "label", "truth", "score"])


def _get(s: Session, table: type, key: int, what: str) -> Any:
    """The row of `table` with this primary key; StoreError("no <what> <key>") if there is none."""
    row = s.get(table, key)
    if row is None:
        raise StoreError(f"no {what} {key}")
    return row


def _upsert_votes(s: Session, rows: list[dict]) -> None:
    """Insert or replace (sample, annotator) → label rows, in the dialect's own upsert."""
    dialect = s.get_bind().dialect.name
    if dialect in ("sqlite", "postgresql"):
        from importlib import import_module

        stmt = import_module(f"sqlalchemy.dialects.{dialect}").insert(LabelVote)
        s.execute(stmt.on_conflict_do_update(index_elements=["sample_id", "annotator"],
                                             set_={"label": stmt.excluded.label}), rows)
        return
    for row in rows:  # other databases: delete then insert
        s.execute(delete(LabelVote).where(LabelVote.sample_id == row["sample_id"],
                                          LabelVote.annotator == row["annotator"]))
    s.execute(insert(LabelVote), rows)


def _dead_worker(worker: str | None, host: str) -> bool:
    """Whether a job's worker ("host:pid") was a process on this host that is gone."""
    owner_host, _, pid = (worker or "").rpartition(":")
    return owner_host == host and pid.isdigit() and not _pid_alive(int(pid))


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
