"""The job worker: takes queued runs from the store, trains, scores, projects, writes results; and,
on a thread of its own, the UMAP maps the Latent map page asks for (`Store.request_map`), so that a
retrain never waits behind a map (a map of 70k points takes minutes).

One worker thread per app server (started by app.py), or its own process against the same
database (`python -m state.worker`), e.g. on a GPU machine. Pages never train; they queue a run
and poll its progress from the store, so a refresh, a second tab or a second annotator see the
same job. A run that was running when its server died is marked interrupted at the next start.
Cancel: a poller copies the run's cancel flag from the store into an Event that the fit asks at
every training step. When idle, the loop queues the warm-start runs of projects with auto-retrain
on (every k new labels; `queue_auto_retrains`).
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
from pathlib import Path
from typing import Any, Callable

import numpy as np

from semiad import detectors, represent
from semiad.data import SampleSet
from semiad.detectors.base import BaseDetector, Progress, StopFn, TrainingStopped, torch_threads
from state.store import JobBusy, RunInfo, Store

log = logging.getLogger("semiad.worker")
PROGRESS_EVERY_S = 0.5
HEARTBEAT_S = 10.0
# UMAP's numba compilation (about a minute of one core, holding the GIL most of it) waits until no run has
# trained for this long: beside a run it slowed the first model of a new project 3× (436 images: 28–35 s
# in the app against 9 s alone, bench/RESULTS.md), and the first map pays it anyway if no quiet minute came
WARM_UP_AFTER_IDLE_S = 60.0
CANCEL_POLL_S = 0.1  # how often the running job's cancel flag is read from the store


def default_threads() -> int:
    """CPU threads for training: SEMIAD_TORCH_THREADS if set, else every core but one. The worker
    shares its process and machine with the app server, whose pages need a core to stay responsive;
    and on a CPU that other jobs also use, fewer OpenMP threads spin against them less (Deep SAD's
    first fit on the bundled digits was 10× faster with one thread than with two on a loaded
    2-core machine, bench/RESULTS.md)."""
    env = os.environ.get("SEMIAD_TORCH_THREADS", "").strip()
    if env:
        return max(1, int(env))
    return max(1, (os.cpu_count() or 1) - 1)




def load_model(store: Store, run: RunInfo, device: str = "auto") -> BaseDetector:
    return BaseDetector.load(store.run_files(run).model, device=device)


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


# share of the progress bar for computing image features when a run needs them: before a deep detector's
# training, and before a classical method's fit of seconds (most of the wait)
FEATURES_SHARE = {True: 0.3, False: 0.85}  # by BaseDetector.trains_network


def features_path(store: Store, project_id: int, representation: dict[str, Any]) -> Path:
    """Where a project's pretrained features are cached (one file per backbone and input size)."""
    return store.project_dir(project_id) / "features" / f"{representation['backbone']}-{representation['size']}.npy"


def run_inputs(store: Store, run: RunInfo, samples: SampleSet, representation: dict[str, Any] | None,
               device: str = "auto", should_stop: StopFn | None = None,
               share: float = FEATURES_SHARE[True]) -> np.ndarray:
    """The detector's inputs for a run: the samples as loaded, or (with) their pretrained features,
    computed once per project (progress on the run up to `share`, cancel between batches) and cached in the
    workspace."""
    if not represent.uses_features(representation):
        return samples.X
    rep = representation
    path = features_path(store, run.project_id, rep)
    last = [0.0]

    def progress(done: int, total: int) -> None:
        now = time.perf_counter()
        if now - last[0] >= PROGRESS_EVERY_S or done == total:
            last[0] = now
            store.report_progress(run.id, share * done / max(total, 1),
                                  f"image features {done}/{total} ({represent.describe(rep)})")

    return represent.model_inputs(samples.X, rep, cache_path=path, device=device, progress=progress,
                                  should_stop=should_stop, paths=samples.paths, originals=samples.originals)


def execute(store: Store, run: RunInfo, device: str = "auto", should_stop: StopFn | None = None) -> None:
    """Train (fresh or warm start from the parent run), score every sample, save everything.

    `should_stop` (cheap: the worker passes a threading.Event's is_set, kept up to date from the store
    by a poller) is asked at every training step; when set, TrainingStopped ends the run."""
    started = time.perf_counter()
    samples = store.load_samples(run.project_id)
    y = store.semi_targets(run.project_id)
    hyper = dict(run.params.get("hyper", {}))
    if run.parent_id is not None:
        det = load_model(store, store.run(run.parent_id), device)
        det.set_params(**hyper)  # fine-tune settings of this click (e.g. finetune_epochs)
    else:
        det = detectors.make(run.method, device=device, **hyper)
        det.representation_ = represent.check(run.params.get("representation"), images=samples.kind == "image")
        det.columns_ = samples.columns  # `semiad score --model <run folder>` matches new tables by name
    representation = getattr(det, "representation_", None) or {"kind": "pixels"}
    share = FEATURES_SHARE[det.trains_network]
    X = run_inputs(store, run, samples, representation, device, should_stop, share)
    fit_from = share if represent.uses_features(representation) else 0.0
    last = [0.0]
    losses: list[float] = []

    def progress(p: Progress) -> None:
        if p.loss is not None:
            losses.append(p.loss)
        now = time.perf_counter()
        if now - last[0] < PROGRESS_EVERY_S and p.fraction < 1.0:
            return
        last[0] = now
        steps = f" epoch {p.epoch}/{p.epochs} · loss {p.loss:.4g}" if p.loss is not None else ""
        cancel = store.report_progress(run.id, fit_from + (0.9 - fit_from) * p.fraction, p.phase + steps)
        if cancel:
            raise TrainingStopped()

    det.fit(X, y, warm_start=run.parent_id is not None, progress=progress, should_stop=should_stop)
    if should_stop is not None and should_stop():  # cancelled after the last step: save nothing
        raise TrainingStopped()
    store.report_progress(run.id, 0.92, "scoring every sample")
    scores = det.decision_scores_  # scored in eval mode at the end of fit
    Z = det.embed(X)
    files = store.run_files(run)
    files.folder.mkdir(parents=True, exist_ok=True)
    det.save(files.model)
    store.save_scores(run.id, scores, embedding=Z)
    metrics = _metrics(scores, samples.truth, y)
    metrics.update(final_loss=losses[-1] if losses else None, train_seconds=round(time.perf_counter() - started, 2),
                   device=str(det.device_))
    if hasattr(det, "first_ranking_parts"):  # what the default loop ranked by, whatever its settings asked
        metrics["first_ranking"] = " and ".join(det.first_ranking_parts())
    store.finish_run(run.id, "done", metrics, message=f"done in {metrics['train_seconds']:.1f} s")


AUTO_RETRAIN = "auto_retrain_every"  # project setting: k (queue a warm start every k new labels) or absent
AUTO_RETRAIN_BY = "auto-retrain"  # requested_by of the runs it queues


def labels_since(store: Store, run: RunInfo) -> int:
    """Label events since `run` was requested (from the snapshot request_run records; for a run from
    before snapshots, the change in labeled samples)."""
    counts = store.label_counts(run.project_id)
    if "label_events" in run.params:
        return counts["events"] - int(run.params["label_events"])
    return counts["normal"] + counts["anomalous"] - run.n_labels


def queue_auto_retrain(store: Store, project_id: int, every: int) -> int | None:
    """Queue the warm-start run a Retrain click would queue (the current model's method, settings
    and weights) once `every` label events have come in since the latest run was requested. Nothing
    while a run is queued or running, or before there is a model. Returns the new run's id."""
    if every < 1 or store.active_run(project_id) is not None:
        return None
    current = store.latest_done_run(project_id)
    if current is None:
        return None
    latest = store.runs(project_id)[-1]  # maybe newer than the model: a cancelled or failed run
    if labels_since(store, latest) < every:
        return None
    params = {"hyper": dict(current.params.get("hyper", {})), "warm_start": True, "fast": False,
              "auto_retrain_every": every, "representation": current.params.get("representation")}
    return store.request_run(project_id, current.method, params, requested_by=AUTO_RETRAIN_BY, parent_id=current.id)


def queue_auto_retrains(store: Store) -> list[int]:
    """One pass over the projects with auto-retrain on; returns the runs queued. A project another
    worker just queued a run for is skipped (the store refuses a second active run: JobBusy)."""
    queued = []
    for pid, every in store.projects_with_setting(AUTO_RETRAIN).items():
        try:
            run_id = queue_auto_retrain(store, pid, int(every))
        except JobBusy:
            continue
        if run_id is not None:
            log.info("auto-retrain: queued run %s on project %s", run_id, pid)
            queued.append(run_id)
    return queued


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
    cache = embed.ProjectionCache(store.run_files(run).maps)
    keys = store.samples(run.project_id)["key"].tolist()
    Z = store.run_embedding(run)
    if cache.get(map_version(run), "pca", None) is None:
        cache.put(map_version(run), "pca", None, embed.pca_2d(Z), ids=keys)
    done = cache.get(map_version(run), "umap", params, ids=keys)
    if done is not None:
        return done
    init = None
    for r in reversed([r for r in store.runs(run.project_id) if r.status == "done" and r.id < run.id]):
        init = embed.ProjectionCache(store.run_files(r).maps).get(map_version(r), "umap", params, ids=keys)
        if init is not None:
            break
    coords = embed.umap_2d(Z, init=init, **params)
    cache.put(map_version(run), "umap", params, coords, ids=keys)
    return coords


class Worker:
    running: "weakref.WeakSet[Worker]" = weakref.WeakSet()  # so tests and shutdown can stop them all

    def __init__(self, store: Store, device: str = "auto", poll_s: float = 0.5, maps: bool = True,
                 auto_retrain: bool = True, threads: int | None = None) -> None:
        self.store = store
        self.threads = default_threads() if threads is None else threads  # CPU threads while training
        self.device = device
        self.poll_s = poll_s
        self.maps = maps
        self.auto_retrain = auto_retrain  # queue projects' auto-retrain runs when idle (the loop, not run_once)
        self.name = f"{socket.gethostname()}:{os.getpid()}"
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []  # the runs' thread, and the maps' thread when maps are on
        self._idle_since: float | None = time.monotonic()  # None while a run trains
        self.warm_up_after_s = WARM_UP_AFTER_IDLE_S

    def start(self) -> "Worker":
        interrupted = self.store.interrupt_dead_runs()
        if interrupted:
            log.warning("marked runs %s as interrupted", interrupted)
        requeued = self.store.requeue_dead_maps()
        if requeued:
            log.warning("queued the maps %s again", requeued)
        self._threads = [threading.Thread(target=self._loop, args=(self._runs_once,), name="semiad-worker",
                                          daemon=True)]
        if self.maps:
            self._threads.append(threading.Thread(target=self._loop, args=(self.map_once,), name="semiad-maps",
                                                  daemon=True))
        for thread in self._threads:
            thread.start()
        Worker.running.add(self)
        if self.maps:
            threading.Thread(target=self._warm_up_when_idle, name="semiad-umap-warmup", daemon=True).start()
        return self

    def _warm_up_when_idle(self) -> None:
        """Compile UMAP once no run has trained for `warm_up_after_s` (`WARM_UP_AFTER_IDLE_S`)."""
        while not self._stop.wait(0.25):
            idle = self._idle_since
            if idle is not None and time.monotonic() - idle >= self.warm_up_after_s:
                _warm_up_umap()
                return

    def stop(self, timeout: float | None = None) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout)

    @classmethod
    def stop_all(cls, timeout: float | None = 30) -> None:
        for worker in list(cls.running):
            worker.stop(timeout)

    @property
    def alive(self) -> bool:
        return bool(self._threads) and self._threads[0].is_alive()

    def _runs_once(self) -> bool:
        """A queued run, else (auto-retrain on) queue the runs projects are due: whether there was work."""
        return self.run_once() or (self.auto_retrain and bool(queue_auto_retrains(self.store)))

    def _loop(self, job: Callable[[], bool]) -> None:
        """Do `job` until stopped, waiting `poll_s` whenever it found nothing to do."""
        while not self._stop.is_set():
            try:
                if not job():
                    self._stop.wait(self.poll_s)
            except Exception:  # the loop must outlive any single bad job or database hiccup
                log.exception("worker loop error")
                self._stop.wait(2.0)

    def _watch(self, run_id: int, done: threading.Event, cancel: threading.Event) -> None:
        """While a run trains: read its cancel flag every CANCEL_POLL_S into `cancel` (the fit asks
        that Event at every step, so the store is not queried per step), and send a heartbeat every
        HEARTBEAT_S, so a long epoch or a long scoring pass never looks like a dead worker."""
        next_beat = time.monotonic() + HEARTBEAT_S
        while not done.wait(CANCEL_POLL_S):
            try:
                if not cancel.is_set() and self.store.cancel_requested(run_id):
                    cancel.set()
                if time.monotonic() >= next_beat:
                    next_beat = time.monotonic() + HEARTBEAT_S
                    self.store.heartbeat(run_id)
            except Exception:
                log.exception("cancel poll or heartbeat for run %s failed", run_id)

    def run_once(self) -> bool:
        """Run the next queued training run, if any; returns whether there was one."""
        run = self.store.claim_next_run(self.name)
        if run is None:
            return False
        log.info("run %s: %s on project %s", run.id, run.method, run.project_id)
        beating, cancel = threading.Event(), threading.Event()
        threading.Thread(target=self._watch, args=(run.id, beating, cancel), name="semiad-heartbeat",
                         daemon=True).start()
        self._idle_since = None
        try:
            with torch_threads(self.threads):
                execute(self.store, run, self.device, should_stop=cancel.is_set)
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
            self._idle_since = time.monotonic()
        if self.maps:  # the new model's map with the default settings, for the maps' thread
            self.store.request_map(run.id, default_map_params())
        return True

    def map_once(self) -> bool:
        """Compute the next requested map, if any (`project_map`); returns whether there was one. A
        map of a run that is no longer its project's latest model is skipped: the Latent map page
        shows the latest model only (and its map is seeded from the newest earlier map there is)."""
        job = self.store.claim_next_map(self.name)
        if job is None:
            return False
        run = self.store.run(job.run_id)
        latest = self.store.latest_done_run(run.project_id)
        if latest is not None and latest.id != run.id:
            self.store.finish_map(job.id, error=f"run {latest.id} is newer", skipped=True)
            return True
        log.info("map %s of run %s: %s", job.id, job.run_id, job.params)
        try:
            project_map(self.store, run, job.params)
        except Exception as e:
            log.exception("map %s of run %s failed", job.id, job.run_id)
            self.store.finish_map(job.id, error="".join(traceback.format_exception_only(e)).strip())
        else:
            self.store.finish_map(job.id)
        return True


def _warm_up_umap() -> None:
    """Pay umap-learn's numba compilation once at start, not on the user's first map."""
    try:
        from semiad import embed

        embed.warm_up()
    except Exception:
        log.exception("UMAP warm-up failed")


def main(argv: list[str] | None = None) -> None:
    """`semiad worker` (and `python -m state.worker`): `argv` are the worker's options."""
    ap = argparse.ArgumentParser(prog="semiad worker", description="Run semiad training jobs from the store's queue.")
    ap.add_argument("--db", help="database URL (default: SEMIAD_DB_URL or the SQLite file in SEMIAD_HOME)")
    ap.add_argument("--home", help="workspace folder (default: SEMIAD_HOME or ./workspace)")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--threads", type=int, help="CPU threads for training (default: SEMIAD_TORCH_THREADS or "
                                                 "all cores but one)")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    worker = Worker(Store(args.db, args.home), device=args.device, threads=args.threads).start()
    try:
        while worker.alive:
            time.sleep(1)
    except KeyboardInterrupt:
        worker.stop()


if __name__ == "__main__":
    main()
