"""Seconds from a Retrain click to the new ranking, on the bundled digits, through the real store and
worker (queue → warm-start fine-tune → score → the Review page's first batch, `next_batch`). The page
polls once a second, so the ranking is on screen at most one poll later; that second is added to the
reported figure.

    python -m bench.retrain_click --method fusion deepsad ganomaly --repeat 3

With `--maps` the worker computes the UMAP maps too, as the app's does: every run queues its map as it
finishes, so each click lands while that map is being computed (`--data` takes another source, e.g. a
table of 6,435 rows, where a map takes long enough to matter).

Each method starts as a new project would (the Projects page's first run for the default method, the
Train page's defaults otherwise: `semiad.settings.app_first_fit` with the method's default
representation), so the first fit of Fusion includes computing the digits' image features.
"""
from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np

from semiad import defaults
from semiad.data import load, load_digits
from semiad.settings import app_first_fit
from state.ranking import next_batch
from state.store import Store
from state.worker import Worker

POLL_S = 1.0  # the page's job-status fragment interval


def measure(method: str, repeat: int, maps: bool = False, source: Path | None = None) -> dict:
    store = Store(home=tempfile.mkdtemp(prefix="semiad-bench-"))
    digits = load(source) if source else load_digits()
    pid = store.create_project(method, digits, source=str(source or "digits"))
    rep = defaults.representation_for(digits.kind, method, digits.X.shape[1:])
    # GANomaly with its fast setting, so the first fit stays short (and the run records fast=True)
    params = app_first_fit(method, digits.kind, len(digits), digits.X.shape[1:],
                           fast=True if method == "ganomaly" else None, representation=rep)
    hyper = params["hyper"]
    worker = Worker(store, maps=maps, poll_s=0.1).start()
    t0 = time.perf_counter()
    store.request_run(pid, method, params, "bench")
    while store.latest_done_run(pid) is None:
        time.sleep(0.05)
    first = time.perf_counter() - t0
    ids = store.samples(pid)["sample_id"].to_numpy()
    clicks = []
    for _ in range(repeat):
        run = store.latest_done_run(pid)
        top = next_batch(store, run, "top", 5)
        store.record_labels(pid, top["sample_id"][:3], "anomalous", "bench")
        store.record_labels(pid, top["sample_id"][3:], "normal", "bench")
        t0 = time.perf_counter()
        store.request_run(pid, method, {"hyper": {}, "warm_start": True, "representation": rep}, "bench",
                          parent_id=run.id)
        while store.latest_done_run(pid).id == run.id:
            time.sleep(0.05)
        next_batch(store, store.latest_done_run(pid), "top", 12)
        clicks.append(time.perf_counter() - t0)
    worker.stop()
    last = store.latest_done_run(pid)
    return {"method": method, "source": str(source or "digits"), "maps": maps, "hyper": hyper,
            "n_samples": int(len(ids)), "first_fit_s": round(first, 2),
            "retrain_s": [round(c, 2) for c in clicks], "retrain_median_s": round(float(np.median(clicks)), 2),
            "to_screen_s": round(float(np.median(clicks)) + POLL_S, 2), "auc_after": last.metrics.get("auc"),
            "device": last.metrics.get("device")}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--method", nargs="+", default=[defaults.DEFAULT_METHOD, "deepsad", "ganomaly"])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--maps", action="store_true", help="the worker computes each run's UMAP map, as the app's does")
    ap.add_argument("--data", type=Path, help="another source than the bundled digits (any file semiad loads)")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    rows = [measure(m, args.repeat, args.maps, args.data) for m in args.method]
    for r in rows:
        print(f"{r['method']:9s} first fit {r['first_fit_s']:6.1f} s  retrain click → ranking "
              f"{r['retrain_median_s']:5.2f} s (+{POLL_S:.0f} s poll = {r['to_screen_s']:.2f} s)  "
              f"runs {r['retrain_s']}  "
              f"AUC after {'–' if r['auc_after'] is None else format(r['auc_after'], '.3f')}  {r['device']}")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
