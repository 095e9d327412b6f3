"""Key to next card on screen on the Review page, in a real browser, on a 70k-sample project.

Builds (once, kept in --home) a project on MNIST with all splits, normal classes 0–8 (the other digit
is the anomaly class at 10%): 70,000 samples, and a first model (Isolation Forest by default: the
model does not matter for this figure, only that there is a ranking of all 70k). Then starts
`streamlit run app.py` on that workspace, opens the Review page in Debian's chromium (Playwright)
and presses n / a / s / u keys at the given pace, measuring for every key:

- `wall_ms`: from just before Playwright sends the key to the moment a check running in the page
  (every animation frame) sees another sample on the focused card: the whole path, driver included;
- `paint_ms`: inside the page, from the key event's timestamp to the first frame after the new card
  was put in the DOM (requestAnimationFrame, then a task): the key-to-pixels time a person sees;
- `saved_ms`: from the key to the server's acknowledgement that the label is in the store (the
  counts and grid follow with it; they may lag the card).

At the end the store's event log is compared with the keys (one event per n / a / u, none for s).

    python -m bench.review_latency --keys 100 --gap 0.3 --json bench/out/review_latency.json
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from bench.report import cpu_name
from semiad.data import load_mnist
from state.store import Store
from state.worker import Worker

ROOT = Path(__file__).resolve().parents[1]

FRAME = "iframe[data-testid='stCustomComponentV1']"


def build(home: Path, data: Path, method: str) -> tuple[int, dict]:
    """The 70k project and its first model in `home` (reused when there already)."""
    store = Store(home=home)
    found = [p for p in store.projects() if p.name == "mnist-all-0to8"]
    info: dict = {}
    if found:
        pid = found[0].id
    else:
        t = time.perf_counter()
        samples = load_mnist(data, normal=range(9), split="all", anomaly_fraction=0.1)
        pid = store.create_project("mnist-all-0to8", samples, source=str(data),
                                   options={"normal": list(range(9)), "split": "all"})
        info["create_s"] = round(time.perf_counter() - t, 1)
    if store.latest_done_run(pid) is None:
        t = time.perf_counter()
        store.request_run(pid, method, {"hyper": {}}, "bench")
        assert Worker(store, maps=False).run_once()
        run = store.runs(pid)[-1]
        assert run.status == "done", run.error
        info["first_model_s"] = round(time.perf_counter() - t, 1)
    info["n_samples"] = store.project(pid).n_samples
    info["method"] = store.latest_done_run(pid).method
    store.close()
    return pid, info


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(home: Path, log: Path) -> tuple[subprocess.Popen, str]:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k != "SEMIAD_DB_URL"}
    env.update(SEMIAD_HOME=str(home), SEMIAD_MAPS="0", PYTHONUNBUFFERED="1")
    proc = subprocess.Popen([sys.executable, "-m", "streamlit", "run", "app.py", "--server.port", str(port),
                             "--server.headless", "true", "--server.address", "127.0.0.1",
                             "--server.fileWatcherType", "none", "--browser.gatherUsageStats", "false"],
                            cwd=ROOT, env=env, stdout=open(log, "wb"), stderr=subprocess.STDOUT,
                            start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    end = time.monotonic() + 180
    while time.monotonic() < end:
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=5) as r:
                if r.status == 200:
                    return proc, url
        except OSError:
            time.sleep(0.25)
    raise TimeoutError("streamlit did not start")


def key_plan(n: int, seed: int, p: tuple[float, float, float, float] = (0.5, 0.3, 0.1, 0.1)) -> list[str]:
    """n keys drawn with probabilities `p` for n, a, s, u (default: mostly n / a, some s, an occasional
    u); u only when there is a label of this run to undo."""
    rng = np.random.default_rng(seed)
    keys, labels = [], 0
    while len(keys) < n:
        k = str(rng.choice(["n", "a", "s", "u"], p=list(p)))
        if k == "u" and labels == 0:
            continue
        labels += 1 if k in "na" else -1 if k == "u" else 0
        keys.append(k)
    return keys


def stats(values: list[float]) -> dict:
    a = np.asarray([v for v in values if v is not None], dtype=float)
    return {"n": int(a.size), "median": round(float(np.median(a)), 1), "p95": round(float(np.percentile(a, 95)), 1),
            "max": round(float(a.max()), 1), "mean": round(float(a.mean()), 1)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=os.environ.get("SEMIAD_MNIST", "/work/shared/data/mnist"))
    ap.add_argument("--home", default=str(ROOT / "bench" / "out" / "review_latency_home"))
    ap.add_argument("--method", default="iforest", help="first model (any method; iforest is quick on 70k)")
    ap.add_argument("--keys", type=int, default=100)
    ap.add_argument("--gap", type=float, default=0.3, help="seconds between key presses")
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", dest="json_path")
    args = ap.parse_args()

    from playwright.sync_api import sync_playwright

    home = Path(args.home)
    home.mkdir(parents=True, exist_ok=True)
    pid, info = build(home, Path(args.data), args.method)
    store = Store(home=home)
    events_before = store.label_counts(pid)["events"]
    proc, url = start_server(home, home / "streamlit.log")
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path="/usr/bin/chromium",
                                         args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"])
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.set_default_timeout(180_000)
            t = time.perf_counter()
            page.goto(f"{url}/review?project={pid}&who=bench")
            page.frame_locator(FRAME).first.locator("[data-testid='focusedCard']").wait_for()
            first_card_s = time.perf_counter() - t
            frame = next(f for f in page.frames if "review_card" in f.url)
            page.get_by_role("heading", name="Review", level=1).click()
            focused = lambda: frame.evaluate("() => document.getElementById('root').dataset.focused")  # noqa: E731

            keys = key_plan(args.warmup + args.keys, args.seed)
            wall = []
            for i, k in enumerate(keys):
                before = focused()
                t0 = time.perf_counter()
                page.keyboard.press(k)
                frame.wait_for_function("old => document.getElementById('root').dataset.focused !== old", arg=before,
                                        polling="raf")
                dt = (time.perf_counter() - t0) * 1000
                if i >= args.warmup:
                    wall.append(dt)
                time.sleep(max(0.0, args.gap - dt / 1000))  # the typing pace
            frame.wait_for_function("() => document.getElementById('root').dataset.pending === '0'", timeout=600_000)
            full_trace = frame.evaluate("() => window.reviewTrace")
            trace = full_trace[args.warmup:]
            client_errors = frame.evaluate("() => window.reviewState.errors")
            ignored = frame.evaluate("() => window.reviewIgnored")
            page.screenshot(path=str(home / "review_latency.png"), full_page=True)
            browser.close()
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(30)

    expected = sum(1 for k in keys if k != "s")
    events = store.label_counts(pid)["events"] - events_before
    paint = [e["tPaint"] - e["tKey"] for e in trace if e["tPaint"] is not None]
    saved = [e["tAck"] - e["tKey"] for e in trace if e["tAck"] is not None]
    load = os.getloadavg()
    result = {
        "bench": "review_latency", "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "device": f"{cpu_name()}, {os.cpu_count()} CPUs, no GPU used; Debian chromium (headless)",
        "load_avg_1m": round(load[0], 1), **info, "keys": args.keys, "gap_s": args.gap,
        "first_card_s": round(first_card_s, 2),
        "key_to_next_card_wall_ms": stats(wall), "key_to_next_card_paint_ms": stats(paint),
        "key_to_saved_ms": stats(saved), "events_expected": expected, "events_written": events,
        "keys_without_a_card": ignored,
    }
    print(f"Review latency on {info['n_samples']:,} samples ({info['method']} ranking), {args.keys} keys "
          f"every {args.gap:.2f} s; load average {load[0]:.1f}")
    print(f"{'measure':<34}{'median ms':>10}{'p95 ms':>10}{'max ms':>10}")
    for name, key in (("key → next card (wall, driver)", "key_to_next_card_wall_ms"),
                      ("key → next card painted (in page)", "key_to_next_card_paint_ms"),
                      ("key → label saved (ack)", "key_to_saved_ms")):
        s = result[key]
        print(f"{name:<34}{s['median']:>10.1f}{s['p95']:>10.1f}{s['max']:>10.1f}")
    print(f"first card on screen after opening Review: {first_card_s:.2f} s; "
          f"label events written {events} for {expected} expected; keys that found no card: {ignored}")
    if args.json_path:
        Path(args.json_path).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json_path).write_text(json.dumps(result, indent=2))
    if events != expected:
        tokens = [e["t"] for e in full_trace]
        with store.session() as s:
            from sqlalchemy import select

            from state.models import LabelRequest
            rows = dict(s.execute(select(LabelRequest.token, LabelRequest.batch)
                                  .where(LabelRequest.token.in_(tokens))).all())
        debug = {"keys": keys, "trace": full_trace, "client_errors": client_errors,
                 "requests": {t: rows.get(t, "MISSING") for t in tokens}}
        (home / "review_latency_debug.json").write_text(json.dumps(debug, indent=1))
        sys.exit(f"event log mismatch: {events} events for {expected} label/undo keys")


if __name__ == "__main__":
    main()
