"""Seconds for each method's first fit with the app defaults (what the Train page queues for a fresh
model when nothing is changed), on the bundled digits, through the real store and worker (queue →
fit → score every sample → save). Target (issue 12): every method within 2 minutes on a CPU.

    python -m bench.first_fit                       # all five methods, the app defaults
    python -m bench.first_fit --method toll --full  # the full-size setting (the fast toggle off)
    python -m bench.first_fit --normal 0 1 2 3 4 5 6 7 8 --json bench/out/first_fit.json

The worker trains with its default thread count (all cores but one; --threads to override).
"""
from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

from semiad.data import load_digits
from semiad.settings import app_first_fit
from state.store import Store
from state.worker import Worker

METHODS = ["deepsad", "ganomaly", "toll", "esad", "ama"]


def measure(method: str, normal: list[int], full: bool, threads: int | None, timeout_s: float) -> dict:
    store = Store(home=tempfile.mkdtemp(prefix="semiad-bench-"))
    data = load_digits(normal=normal)
    pid = store.create_project(method, data, source="digits")
    params = app_first_fit(method, data.kind, len(data), data.X.shape[1:], fast=False if full else None)
    worker = Worker(store, maps=False, poll_s=0.05, threads=threads, auto_retrain=False).start()
    t0 = time.perf_counter()
    run_id = store.request_run(pid, method, params, "bench")
    while store.run(run_id).status in ("queued", "running") and time.perf_counter() - t0 < timeout_s:
        time.sleep(0.05)
    wall = time.perf_counter() - t0
    if store.run(run_id).status in ("queued", "running"):
        store.cancel_run(run_id)
        while store.run(run_id).status == "running":
            time.sleep(0.05)
    worker.stop()
    run = store.run(run_id)
    return {"method": method, "fast": params["fast"], "hyper": params["hyper"], "n_samples": len(data),
            "status": run.status if run.status != "cancelled" else f"stopped after {timeout_s:.0f} s",
            "first_fit_s": round(wall, 1), "train_seconds": run.metrics.get("train_seconds"),
            "auc": None if run.metrics.get("auc") is None else round(run.metrics["auc"], 3),
            "device": run.metrics.get("device", "cpu"), "threads": worker.threads}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--method", nargs="+", default=METHODS, choices=METHODS)
    ap.add_argument("--normal", nargs="+", type=int, default=[0], help="normal digit(s), as on the Projects page")
    ap.add_argument("--full", action="store_true", help="the full-size setting (fast toggle off)")
    ap.add_argument("--threads", type=int, help="worker training threads (default: the worker's)")
    ap.add_argument("--timeout", type=float, default=1800, help="stop a fit after this many seconds")
    ap.add_argument("--json", help="write the figures to this file")
    args = ap.parse_args()
    rows = []
    print(f"{'method':10} {'fast':>5} {'n':>5} {'first fit s':>11} {'AUC':>6}  status · settings", flush=True)
    for method in args.method:
        r = measure(method, args.normal, args.full, args.threads, args.timeout)
        rows.append(r)
        print(f"{method:10} {str(r['fast']):>5} {r['n_samples']:>5} {r['first_fit_s']:>11.1f} "
              f"{r['auc'] if r['auc'] is not None else '-':>6}  {r['status']} · {r['hyper']}", flush=True)
    out = {"bench": "first_fit", "normal": args.normal, "full": args.full, "load_avg_1min_end": os.getloadavg()[0],
           "cpu_count": os.cpu_count(), "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "runs": rows}
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
