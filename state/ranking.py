"""The review batch: which samples of a finished run the expert sees next.

One path for every caller (the Review page, bench/, tests):

    batch = next_batch(store, run, "mixed", 24, exclude=skipped)   # DataFrame, one row per card
    rows = ranked_rows(store, run, [sample_id, ...], "your undo")   # the same columns for given samples

Columns: sample_id, idx, key, score, rank (among all samples of the run, 1 = most anomalous), reason.
The run's scores and embedding are read through the store (`Store.run_scores`, `Store.run_embedding`)
once per run and kept for the store's lifetime (a finished run's files never change); the labels are
read from the store at every call, so a labeled sample is never returned. The strategies are
`semiad.query`'s.
"""
from __future__ import annotations

import threading
import weakref
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, Iterable

import numpy as np
import pandas as pd

from semiad import query
from state.store import RunInfo, Store, StoreError

KEEP_RUNS = 4  # rankings kept per store (the latest runs of the projects in use)
COLUMNS = ["sample_id", "idx", "key", "score", "rank", "reason"]


@dataclass
class Ranking:
    """A finished run's scores over its project's samples, in sample (idx) order."""

    run_id: int
    sample_id: np.ndarray  # int64, the store's id of each sample
    key: np.ndarray  # the sample's name (file or row id)
    score: np.ndarray  # float64, higher = more anomalous
    rank: np.ndarray  # int64, 1 = highest score (ties keep sample order)
    _embedding: np.ndarray | None = field(default=None, repr=False)
    _position: pd.Index | None = field(default=None, repr=False)

    def positions(self, sample_ids: Iterable[int]) -> np.ndarray:
        """Rows of these samples (samples not in the project are left out)."""
        if self._position is None:
            self._position = pd.Index(self.sample_id)
        pos = self._position.get_indexer(np.asarray(list(sample_ids), dtype=np.int64))
        return pos[pos >= 0]

    def rows(self, idx: Iterable[int], reasons: Iterable[str] | str) -> pd.DataFrame:
        idx = np.asarray(list(idx), dtype=np.int64)
        reasons = [reasons] * len(idx) if isinstance(reasons, str) else list(reasons)
        return pd.DataFrame({"sample_id": self.sample_id[idx], "idx": idx, "key": self.key[idx],
                             "score": self.score[idx], "rank": self.rank[idx], "reason": reasons}, columns=COLUMNS)


_rankings: weakref.WeakKeyDictionary[Store, OrderedDict[int, Ranking]] = weakref.WeakKeyDictionary()
_lock = threading.Lock()


def ranking(store: Store, run: RunInfo | int) -> Ranking:
    """The run's ranking, read once per store (the files of a finished run never change)."""
    run = store.run(run) if isinstance(run, int) else run
    if run.status != "done":
        raise StoreError(f"run {run.id} is {run.status}: only a finished run has a ranking")
    with _lock:
        kept = _rankings.setdefault(store, OrderedDict())
        if run.id in kept:
            kept.move_to_end(run.id)
            return kept[run.id]
    samples = store.samples(run.project_id)
    score = np.asarray(store.run_scores(run), dtype=np.float64)
    if len(score) != len(samples):
        raise StoreError(f"run {run.id} has {len(score)} scores for {len(samples)} samples")
    rank = np.empty(len(score), dtype=np.int64)
    rank[np.argsort(-score, kind="stable")] = np.arange(1, len(score) + 1)
    found = Ranking(run.id, samples["sample_id"].to_numpy(np.int64), samples["key"].to_numpy(), score, rank)
    with _lock:
        kept = _rankings.setdefault(store, OrderedDict())
        kept[run.id] = found
        while len(kept) > KEEP_RUNS:
            kept.popitem(last=False)
    return found


def _embedding(store: Store, run: RunInfo, found: Ranking) -> np.ndarray:
    """The run's embedding, read at the first strategy that needs it and kept with the ranking."""
    if found._embedding is None:
        Z = store.run_embedding(run)
        if len(Z) != len(found.score):
            raise StoreError(f"run {run.id} has {len(Z)} embeddings for {len(found.score)} samples")
        found._embedding = Z
    return found._embedding


def next_batch(store: Store, run: RunInfo | int, strategy: str, n: int, exclude: Iterable[int] = (),
               rng: np.random.Generator | None = None, **options: Any) -> pd.DataFrame:
    """The next n samples to review by `strategy` (a name in semiad.query.STRATEGIES), never a labeled
    sample nor one in `exclude` (sample ids: the session's skips, the cards already on screen). Fewer
    than n rows when fewer samples are left. `rng` defaults to one seeded by the run and the number of
    samples left out, so the same state gives the same batch. `options` go to the strategy
    (e.g. contamination=, weights=); "top-audit" gets `since_anomaly` from the store unless given."""
    run = store.run(run) if isinstance(run, int) else run
    found = ranking(store, run)
    taken = np.zeros(len(found.score), dtype=bool)
    taken[found.positions(store.labeled_sample_ids(run.project_id))] = True
    taken[found.positions(int(i) for i in exclude)] = True
    if rng is None:
        rng = np.random.default_rng([run.id, int(taken.sum())])
    Z = _embedding(store, run, found) if query.needs_embeddings(strategy, **options) else None
    if query.needs_history(strategy, **options) and "since_anomaly" not in options:
        options["since_anomaly"] = since_anomaly(store, run.project_id)
    picks = query.select(strategy, found.score, taken, int(n), rng, embeddings=Z, **options)
    return found.rows([i for i, _ in picks], [reason for _, reason in picks])


def since_anomaly(store: Store, project_id: int) -> int:
    """Labels given on Review since the project's last anomalous one (the current labels, in the order
    given). Labels from elsewhere (the Latent map's bulk labels, imports) do not count: a cluster
    labeled normal at once says nothing about whether the top of the ranking still holds anomalies."""
    reviewed = store.labels_in_order(project_id, source_prefix="review")
    return query.labels_since_anomaly(reviewed["label"] == "anomalous")


def ranked_rows(store: Store, run: RunInfo | int, sample_ids: Iterable[int], reason: str) -> pd.DataFrame:
    """The batch columns for given samples (in the order given, unknown ids left out), e.g. the
    samples an undo brought back."""
    found = ranking(store, run)
    return found.rows(found.positions(int(i) for i in sample_ids), reason)
