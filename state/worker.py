"""The job worker: takes queued runs from the store, trains, scores, projects, writes results.

One worker thread per app server (started by app.py), or its own process against the same
database (`python -m state.worker`), e.g. on a GPU machine. Pages never train; they queue a run
and poll its progress from the store, so a refresh, a second tab or a second annotator see the
same job. A run that was running when its server died is marked interrupted at the next start.
"""
from __future__ import annotations

import argparse
import logging
import os
import socket
import threading
import time
import traceback
import weakref
from typing import Any

import numpy as np

from semiad import detectors
from semiad.detectors.base import BaseDetector, Progress, TrainingStopped
from state.store import RunInfo, Store

log = logging.getLogger("semiad.worker")
PROGRESS_EVERY_S = 0.5
HEARTBEAT_S = 10.0


def load_model(store: Store, run: RunInfo, device: str = "auto") -> BaseDetector:
    return BaseDetector.load(store.run_dir(run) / "model.pt", device=device)


def _metrics(scores: np.ndarray, truth: np.ndarray | None, y: np.ndarray) -> dict[str, Any]:
    from sklearn.metrics import average_precision_score, roc_auc_score

    out: dict[str, Any] = {"labeled_normal": int((y == 1).sum()), "labeled_anomalous": int((y == -1).sum())}
    if truth is None or len(np.unique(truth)) < 2:
        return out
    out["auc"] = float(roc_auc_score(truth, scores))
    out["ap"] = float(average_precision_score(truth, scores))
    rest = y == 0
    if rest.any() and len(np.unique(truth[rest])) == 2:
        out["auc_unlabeled"] = float(roc_auc_score(truth[rest], scores[rest]))
        out["ap_unlabeled"] = float(average_precision_score(truth[rest], scores[rest]))
    return out


def execute(store: Store, run: RunInfo, device: str = "auto") -> None:
    """Train (fresh or warm start from the parent run), score every sample, save everything."""
    started = time.perf_counter()
    samples = store.load_samples(run.project_id)
    y = store.semi_targets(run.project_id)
    hyper = dict(run.params.get("hyper", {}))
    if run.parent_id is not None:
        det = load_model(store, store.run(run.parent_id), device)
        for name, value in hyper.items():  # fine-tune settings of this click (e.g. finetune_epochs)
            setattr(det, name, value)
    else:
        det = detectors.make(run.method, device=device, **hyper)
    last = [0.0]
    losses: list[float] = []

    def progress(p: Progress) -> None:
        losses.append(p.loss)
        now = time.perf_counter()
        if now - last[0] < PROGRESS_EVERY_S and p.fraction < 1.0:
            return
        last[0] = now
        cancel = store.report_progress(run.id, 0.9 * p.fraction,
                                       f"{p.phase} epoch {p.epoch}/{p.epochs} · loss {p.loss:.4g}")
        if cancel:
            raise TrainingStopped()

    det.fit(samples.X, y, warm_start=run.parent_id is not None, progress=progress)
    store.report_progress(run.id, 0.92, "scoring every sample")
    scores = det.decision_function(samples.X)
    Z = det.embed(samples.X)
    folder = store.run_dir(run)
    folder.mkdir(parents=True, exist_ok=True)
    det.save(folder / "model.pt")
    np.save(folder / "scores.npy", scores)
    np.save(folder / "embedding.npy", Z.astype(np.float32))
    store.save_scores(run.id, scores)
    metrics = _metrics(scores, samples.truth, y)
    metrics.update(final_loss=losses[-1] if losses else None, train_seconds=round(time.perf_counter() - started, 2),
                   device=str(det.device_))
    store.finish_run(run.id, "done", metrics, message=f"done in {metrics['train_seconds']:.1f} s")


def map_version(run: RunInfo) -> str:
    return f"run{run.id}"


def default_map_params() -> dict[str, Any]:
    from semiad.embed import UMAP_PARAMS

    return {k: v["default"] for k, v in UMAP_PARAMS.items()}


def project_map(store: Store, run: RunInfo, params: dict[str, Any] | None = None) -> np.ndarray:
    """UMAP of the run's embedding, seeded with the last round's layout (same parameters), cached
    in the run's folder. PCA is cached first so the page has a map at once."""
    from semiad import embed

    params = params or default_map_params()
    folder = store.run_dir(run)
    cache = embed.ProjectionCache(folder)
    keys = store.samples(run.project_id)["key"].tolist()
    Z = np.load(folder / "embedding.npy")
    if cache.get(map_version(run), "pca", None) is None:
        cache.put(map_version(run), "pca", None, embed.pca_2d(Z), ids=keys)
    done = cache.get(map_version(run), "umap", params, ids=keys)
    if done is not None:
        return done
    init = None
    for r in reversed([r for r in store.runs(run.project_id) if r.status == "done" and r.id < run.id]):
        init = embed.ProjectionCache(store.run_dir(r)).get(map_version(r), "umap", params, ids=keys)
        if init is not None:
            break
    coords = embed.umap_2d(Z, init=init, **params)
    cache.put(map_version(run), "umap", params, coords, ids=keys)
    return coords


class Worker:
    running: "weakref.WeakSet[Worker]" = weakref.WeakSet()  # so tests and shutdown can stop them all

    def __init__(self, store: Store, device: str = "auto", poll_s: float = 0.5, maps: bool = True) -> None:
        self.store = store
        self.device = device
        self.poll_s = poll_s
        self.maps = maps
        self.name = f"{socket.gethostname()}:{os.getpid()}"
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> "Worker":
        interrupted = self.store.interrupt_dead_runs()
        if interrupted:
            log.warning("marked runs %s as interrupted", interrupted)
        self._thread = threading.Thread(target=self._loop, name="semiad-worker", daemon=True)
        self._thread.start()
        Worker.running.add(self)
        if self.maps:
            threading.Thread(target=_warm_up_umap, name="semiad-umap-warmup", daemon=True).start()
        return self

    def stop(self, timeout: float | None = None) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    @classmethod
    def stop_all(cls, timeout: float | None = 30) -> None:
        for worker in list(cls.running):
            worker.stop(timeout)

    @property
    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                if not self.run_once():
                    self._stop.wait(self.poll_s)
            except Exception:  # the loop must outlive any single bad job or database hiccup
                log.exception("worker loop error")
                self._stop.wait(2.0)

    def _beat(self, run_id: int, done: threading.Event) -> None:
        """Heartbeat on a timer, so a long epoch or a long scoring pass never looks like a dead worker."""
        while not done.wait(HEARTBEAT_S):
            try:
                self.store.heartbeat(run_id)
            except Exception:
                log.exception("heartbeat for run %s failed", run_id)

    def run_once(self) -> bool:
        """Run the next queued job, if any; returns whether there was one."""
        run = self.store.claim_next_run(self.name)
        if run is None:
            return False
        log.info("run %s: %s on project %s", run.id, run.method, run.project_id)
        beating = threading.Event()
        threading.Thread(target=self._beat, args=(run.id, beating), name="semiad-heartbeat", daemon=True).start()
        try:
            execute(self.store, run, self.device)
        except TrainingStopped:
            self.store.finish_run(run.id, "cancelled", message="cancelled by the user")
            return True
        except Exception as e:
            log.exception("run %s failed", run.id)
            self.store.finish_run(run.id, "failed", error="".join(traceback.format_exception_only(e)).strip(),
                                  message=f"failed: {e}")
            return True
        finally:
            beating.set()
        if self.maps:
            try:
                project_map(self.store, self.store.run(run.id))
            except Exception:
                log.exception("map for run %s failed", run.id)
        return True


def _warm_up_umap() -> None:
    """Pay umap-learn's numba compilation once at start, not on the user's first map."""
    try:
        from semiad import embed

        embed.warm_up()
    except Exception:
        log.exception("UMAP warm-up failed")


def main() -> None:
    ap = argparse.ArgumentParser(description="Run semiad training jobs from the store's queue.")
    ap.add_argument("--db", help="database URL (default: SEMIAD_DB_URL or the SQLite file in SEMIAD_HOME)")
    ap.add_argument("--home", help="workspace folder (default: SEMIAD_HOME or ./workspace)")
    ap.add_argument("--device", default="auto")
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    worker = Worker(Store(args.db, args.home), device=args.device).start()
    try:
        while worker.alive:
            time.sleep(1)
    except KeyboardInterrupt:
        worker.stop()


if __name__ == "__main__":
    main()
