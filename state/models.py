"""Tables. The only module that knows the schema; everything else asks `state.store.Store`."""
from __future__ import annotations

from datetime import datetime, timezone

from sqlalchemy import Boolean, DateTime, Float, ForeignKey, Index, Integer, String, Text, UniqueConstraint, text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

LABELS = ("normal", "anomalous")  # what an expert can say; "unlabeled" only appears as an undo target
RUN_STATUSES = ("queued", "running", "done", "failed", "interrupted", "cancelled")


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


class Base(DeclarativeBase):
    pass


class Project(Base):
    __tablename__ = "projects"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    source: Mapped[str] = mapped_column(Text)  # what was loaded ("digits", a path)
    options: Mapped[str] = mapped_column(Text, default="{}")  # loader options, JSON
    kind: Mapped[str] = mapped_column(String(16))  # image | tabular
    n_samples: Mapped[int] = mapped_column(Integer)
    skipped: Mapped[str] = mapped_column(Text, default="[]")  # JSON list of [file, reason]
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Sample(Base):
    __tablename__ = "samples"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    idx: Mapped[int] = mapped_column(Integer)  # row in the project's data file
    key: Mapped[str] = mapped_column(String(1000))  # the id users see (file path, "digit-12")
    path: Mapped[str | None] = mapped_column(Text, nullable=True)  # original file, if any
    truth: Mapped[int | None] = mapped_column(Integer, nullable=True)  # ground truth 1/0, if known
    # Denormalised current label (= the latest event), written in the same transaction as the event,
    # so the review query needs no scan of the event log.
    label: Mapped[str | None] = mapped_column(String(16), nullable=True)
    __table_args__ = (
        UniqueConstraint("project_id", "idx"),
        UniqueConstraint("project_id", "key"),
        Index("ix_samples_project_label", "project_id", "label"),
    )


class LabelEvent(Base):
    """Append-only: nothing here is ever updated or deleted."""

    __tablename__ = "label_events"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    sample_id: Mapped[int] = mapped_column(ForeignKey("samples.id", ondelete="CASCADE"))
    label: Mapped[str] = mapped_column(String(16))  # normal | anomalous | unlabeled
    annotator: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    round: Mapped[int] = mapped_column(Integer)  # model version the annotator was looking at
    source: Mapped[str] = mapped_column(String(32))  # review | map | import | undo | simulate
    batch: Mapped[str] = mapped_column(String(32))  # events made by one click share a batch
    undoes: Mapped[str | None] = mapped_column(String(32), nullable=True)  # batch reverted by this one
    __table_args__ = (
        Index("ix_events_project_sample", "project_id", "sample_id"),
        Index("ix_events_project_annotator", "project_id", "annotator", "id"),
        Index("ix_events_batch", "batch"),  # undo finds a batch's events without reading the history
        Index("ix_events_project_id", "project_id", "id"),  # the latest events of a project, newest first
        # Only undo events: undo's "was this batch undone?" probe stays small on a long history.
        Index("ix_events_undoes", "undoes", sqlite_where=text("undoes IS NOT NULL"),
              postgresql_where=text("undoes IS NOT NULL")),
    )


class LabelRequest(Base):
    """One row per label or undo request that came with a token (a key press or click on the Review
    page: the browser makes one token per press), written in the same transaction as its events.
    The token is the primary key, so a request delivered twice (a resend, a rerun that repeated
    it, two servers) is applied once. Append-only, like the events."""

    __tablename__ = "label_requests"
    token: Mapped[str] = mapped_column(String(64), primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    annotator: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(16))  # label | undo
    batch: Mapped[str | None] = mapped_column(String(32), nullable=True)  # events it wrote (None: nothing)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Run(Base):
    __tablename__ = "runs"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    method: Mapped[str] = mapped_column(String(32))
    params: Mapped[str] = mapped_column(Text, default="{}")  # JSON hyperparameters
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("runs.id"), nullable=True)  # warm start from
    status: Mapped[str] = mapped_column(String(16), default="queued")
    progress: Mapped[float] = mapped_column(Float, default=0.0)
    message: Mapped[str] = mapped_column(Text, default="")
    metrics: Mapped[str] = mapped_column(Text, default="{}")  # JSON
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    round: Mapped[int | None] = mapped_column(Integer, nullable=True)  # set when it finishes
    n_labels: Mapped[int] = mapped_column(Integer, default=0)
    requested_by: Mapped[str] = mapped_column(String(200), default="")
    worker: Mapped[str | None] = mapped_column(String(200), nullable=True)  # host:pid
    cancel_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    heartbeat_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    __table_args__ = (Index("ix_runs_project_status", "project_id", "status"),)


class MapRequest(Base):
    """A 2-D map of a run's latent space with chosen UMAP settings: asked for by a page, computed
    by the worker; the coordinates are written to the run's files (semiad.embed.ProjectionCache)."""

    __tablename__ = "map_requests"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"))
    params: Mapped[str] = mapped_column(Text)  # JSON UMAP settings, keys sorted
    status: Mapped[str] = mapped_column(String(16), default="queued")  # queued | running | done | failed | skipped
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    worker: Mapped[str | None] = mapped_column(String(200), nullable=True)  # host:pid
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    __table_args__ = (Index("ix_map_requests_status", "status", "id"),
                      Index("ix_map_requests_run_params", "run_id", "params"))


class Score(Base):
    __tablename__ = "scores"
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True)
    sample_id: Mapped[int] = mapped_column(ForeignKey("samples.id", ondelete="CASCADE"), primary_key=True)
    score: Mapped[float] = mapped_column(Float)
    rank: Mapped[int] = mapped_column(Integer)  # 1 = most anomalous in this run
    __table_args__ = (Index("ix_scores_run_rank", "run_id", "rank"),)


class LabelVote(Base):
    """Each annotator's latest label per sample (the label of their latest event, undo included),
    upserted with every event: `Store.disputes` compares votes instead of reading the history."""

    __tablename__ = "label_votes"
    sample_id: Mapped[int] = mapped_column(ForeignKey("samples.id", ondelete="CASCADE"), primary_key=True)
    annotator: Mapped[str] = mapped_column(String(200), primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    label: Mapped[str] = mapped_column(String(16))
    __table_args__ = (Index("ix_votes_project_sample_label", "project_id", "sample_id", "label"),)


class LabelCounts(Base):
    """Per project: events so far and samples currently normal / anomalous, adjusted by every label
    write in its transaction, so the counts on every page need no count over the history."""

    __tablename__ = "label_counts"
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), primary_key=True)
    events: Mapped[int] = mapped_column(Integer, default=0)
    normal: Mapped[int] = mapped_column(Integer, default=0)
    anomalous: Mapped[int] = mapped_column(Integer, default=0)


class ProjectSetting(Base):
    """Per-project settings shared by every annotator and the worker (e.g. auto-retrain every k
    labels): one JSON value per (project, key)."""

    __tablename__ = "project_settings"
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), primary_key=True)
    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(Text)  # JSON
