"""Seconds from a Cancel click to a stopped run, per detector, through the real store and worker.

Each run uses the networks of the app defaults (the Train page's first fit; `--full`: the full-size
networks, fast toggle off) with a schedule far too long to finish, so the cancel always lands
during training. After `--after` seconds of training the bench calls `Store.cancel_run` (what the
Cancel button does) and polls the store every 10 ms:
  - shown_s: until the store shows the run as cancelling (what the Train page reads at once);
  - stopped_s: until the worker has stopped the fit and marked the run cancelled (target: ≤ 1 s).

    python -m bench.cancel_latency                  # app-default networks, all five methods
    python -m bench.cancel_latency --full --json bench/out/cancel_full.json
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

from semiad.data import load_digits
from semiad.settings import app_first_fit
from state.store import Store
from state.worker import Worker

METHODS = ["deepsad", "ganomaly", "toll", "esad", "ama"]
ENDLESS = {"deepsad": {"pretrain_epochs": 10**5, "epochs": 10**5}, "ganomaly": {"epochs": 10.0**5},
           "toll": {"iters": 10**7}, "esad": {"epochs": 10**5}, "ama": {"epochs": 10**5}}


def wait(predicate, every: float = 0.01) -> float:
    t0 = time.perf_counter()
    while not predicate():
        time.sleep(every)
    return time.perf_counter() - t0


def measure(store: Store, pid: int, method: str, full: bool, after: float) -> dict:
    data_n = store.project(pid).n_samples
    params = app_first_fit(method, "image", data_n, (1, 28, 28), fast=False if full else None)
    params["hyper"].update(ENDLESS[method])
    run_id = store.request_run(pid, method, params, "bench")
    wait(lambda: store.run(run_id).status == "running")
    time.sleep(after)
    assert store.run(run_id).status == "running", store.run(run_id)
    t0 = time.perf_counter()
    store.cancel_run(run_id)
    shown = time.perf_counter() - t0 if store.run(run_id).cancelling else float("nan")
    wait(lambda: store.run(run_id).status != "running")
    stopped = time.perf_counter() - t0
    run = store.run(run_id)
    return {"method": method, "fast": params["fast"], "status": run.status, "shown_s": round(shown, 3),
            "stopped_s": round(stopped, 3)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--method", nargs="+", default=METHODS, choices=METHODS)
    ap.add_argument("--full", action="store_true", help="full-size networks (fast toggle off)")
    ap.add_argument("--after", type=float, default=3.0, help="seconds of training before the click")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--threads", type=int, help="worker training threads (default: the worker's)")
    ap.add_argument("--json", help="write the figures to this file")
    args = ap.parse_args()
    store = Store(home=tempfile.mkdtemp(prefix="semiad-bench-"))
    pid = store.create_project("digits", load_digits(), source="digits")
    worker = Worker(store, maps=False, poll_s=0.05, threads=args.threads, auto_retrain=False).start()
    rows = []
    print(f"{'method':10} {'fast':>5} {'shown s':>8} {'stopped s (each)':>24} {'max':>6}", flush=True)
    for method in args.method:
        tries = [measure(store, pid, method, args.full, args.after) for _ in range(args.repeat)]
        stops = [t["stopped_s"] for t in tries]
        row = {"method": method, "fast": tries[0]["fast"], "shown_s": max(t["shown_s"] for t in tries),
               "stopped_s": stops, "stopped_median_s": statistics.median(stops), "stopped_max_s": max(stops),
               "statuses": sorted({t["status"] for t in tries})}
        rows.append(row)
        print(f"{method:10} {str(row['fast']):>5} {row['shown_s']:>8.3f} {str(stops):>24} {max(stops):>6.2f}",
              flush=True)
    worker.stop()
    out = {"bench": "cancel_latency", "full": args.full, "after_s": args.after, "threads": worker.threads,
           "load_avg_1min_end": os.getloadavg()[0], "cpu_count": os.cpu_count(),
           "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "runs": rows}
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
    sys.stdout.flush()
    os._exit(0)  # skip interpreter teardown while torch's thread pools may still be winding down
