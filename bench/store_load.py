"""Store under load: 100,000 samples, 1,000,000 label events, a run with 100,000 scores.

Measures the latency of what a person waits for on the Review page, through the real `Store` API:
writing one label (`record_label`), the review batch the page asks for (`state.ranking.next_batch`:
the first window of 60 cards, a top-up of 25 past the 35 cards still on screen, the mixed strategy
with its diverse part over the embedding, and the first batch of a run, which reads the run's files),
the labels of the cards on screen checked at every rerun (`current_labels`), the dispute markers of
24 cards and of the whole project (`disputes`), the label counts and recent labels shown on every rerun
(`label_counts`, `events(last=15)`) and `undo_last`. Goals (issue 8): p99 label write < 20 ms, review
batch (top-N) < 100 ms.

The history is bulk-inserted through the ORM tables with SQLAlchemy Core (PostgreSQL: COPY), not
through the API. The labeled samples are the top-ranked half of the run, as when annotators work
down the ranking: the batch then has to get past 50,000 labeled samples (the worst case for it).
PostgreSQL runs in a throwaway cluster (tests/pg.py) with its durable defaults (fsync and
synchronous_commit on) and ANALYZE after the load; SQLite runs as the app configures it (WAL,
synchronous=NORMAL), without ANALYZE.

    nice -n 5 python -m bench.store_load --json bench/out/store_load.json
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
from sqlalchemy import delete, insert, text, update

from bench.report import cpu_name
from semiad.data import SampleSet
from state import ranking
from state.models import LabelCounts, LabelEvent, Sample
from state.store import Store, StoreError
from tests.pg import PgServer, find_bindir

ANNOTATORS = ["ann", "bob", "cy", "dee", "eve"]
LABELS = np.array(["normal", "anomalous"])
CHUNK = 50_000
WINDOW = 60  # the Review page's first window: a batch of 12 cards + 48 the browser holds ahead
TOP_UP = 25  # ... topped up when 35 are left (pages/review.py, LOOKAHEAD)


def build(store: Store, n_samples: int, n_events: int, labeled: float, second_opinions: float,
          seed: int) -> tuple[int, int, dict]:
    """Project, one finished run with scores, and the bulk-loaded history; returns (project, run, timings)."""
    rng = np.random.default_rng(seed)
    timings = {}
    t = time.perf_counter()
    samples = SampleSet(ids=[f"s{i}" for i in range(n_samples)], X=rng.random((n_samples, 4), dtype=np.float32),
                        kind="tabular", name="load")
    pid = store.create_project("load", samples)
    run = store.request_run(pid, "deepsad", {}, "bench")
    store.claim_next_run("bench:0")
    scores = rng.random(n_samples)
    embedding = rng.standard_normal((n_samples, 16), dtype=np.float32)  # the size of a Deep SAD latent
    timings["load_samples_s"] = time.perf_counter() - t

    t = time.perf_counter()
    sample_ids = store.samples(pid)["sample_id"].to_numpy()
    top = sample_ids[np.argsort(-scores)[: int(labeled * n_samples)]]  # annotators work down the ranking
    sid = np.concatenate([rng.permutation(top), rng.choice(top, n_events - len(top))])
    # each labeled sample has one annotator who labels (and relabels) it; a share of the samples also
    # gets a second opinion from the next annotator (second_opinions=1: everyone labels everything)
    pos = np.searchsorted(np.sort(top), sid)
    owner = rng.integers(0, len(ANNOTATORS), len(top))[pos]
    second = (rng.random(len(top)) < second_opinions)[pos] & (rng.random(n_events) < 0.5)
    who = np.where(second, (owner + 1) % len(ANNOTATORS), owner)
    if second_opinions >= 1:
        who = rng.integers(0, len(ANNOTATORS), n_events)
    lab = rng.integers(0, 2, n_events)
    start = datetime(2026, 1, 1, tzinfo=timezone.utc)
    rows = ({"project_id": pid, "sample_id": int(sid[k]), "label": str(LABELS[lab[k]]),
             "annotator": ANNOTATORS[who[k]], "created_at": start + timedelta(seconds=int(k)), "round": 1,
             # every 100th click is an undo of the one before, so undo_last has history to search
             "source": "undo" if k % 100 == 99 else "review", "batch": f"b{k}",
             "undoes": f"b{k - 1}" if k % 100 == 99 else None} for k in range(n_events))
    _bulk_insert_events(store, rows, n_events)
    # the denormalised current label = latest event per sample, written the way the store writes it
    last = np.unique(sid[::-1], return_index=True)
    latest_label = LABELS[lab[::-1][last[1]]]
    with store.engine.begin() as conn:
        for value in LABELS:
            group = last[0][latest_label == value].tolist()
            for i in range(0, len(group), 10_000):
                conn.execute(update(Sample).where(Sample.id.in_(group[i:i + 10_000])).values(label=str(value)))
    # counters and votes as an older database would get them at its first open (from the history)
    with store.engine.begin() as conn:
        conn.execute(delete(LabelCounts).where(LabelCounts.project_id == pid))
    store._derive_missing()
    timings["load_events_s"] = time.perf_counter() - t
    t = time.perf_counter()
    store.save_scores(run, scores, embedding=embedding)  # after the labels, as a retrain would
    timings["save_scores_s"] = time.perf_counter() - t
    store.finish_run(run, "done")
    if store.engine.dialect.name == "postgresql":
        with store.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("VACUUM ANALYZE"))
    return pid, run, timings


def _bulk_insert_events(store: Store, rows, n: int) -> None:
    columns = ["project_id", "sample_id", "label", "annotator", "created_at", "round", "source", "batch", "undoes"]
    if store.engine.dialect.name == "postgresql":
        raw = store.engine.raw_connection()
        try:
            with raw.cursor() as cur, cur.copy(f"COPY label_events ({', '.join(columns)}) FROM STDIN") as copy:
                for r in rows:
                    copy.write_row([r[c] for c in columns])
            raw.commit()
        finally:
            raw.close()
        return
    with store.engine.begin() as conn:
        batch = []
        for r in rows:
            batch.append(r)
            if len(batch) == CHUNK:
                conn.execute(insert(LabelEvent), batch)
                batch = []
        if batch:
            conn.execute(insert(LabelEvent), batch)


def timed(fn, n: int) -> dict:
    ms = []
    for k in range(n):
        t = time.perf_counter()
        fn(k)
        ms.append((time.perf_counter() - t) * 1000)
    a = np.array(ms)
    return {"n": n, "p50_ms": float(np.percentile(a, 50)), "p99_ms": float(np.percentile(a, 99)),
            "mean_ms": float(a.mean()), "max_ms": float(a.max())}


def measure(store: Store, pid: int, run: int, writes: int, reads: int, undos: int, seed: int) -> dict:
    rng = np.random.default_rng(seed + 1)
    df = store.samples(pid)
    all_ids = df["sample_id"].to_numpy()
    labeled_ids = df.loc[df["label"].notna(), "sample_id"].to_numpy()
    batch = ranking.next_batch(store, run, "top", WINDOW)
    assert len(batch) == WINDOW and batch["rank"].min() == len(labeled_ids) + 1, "the review batch is wrong"
    out = {}
    for _ in range(20):  # warm the caches and the connection pool the way a running server has them
        ranking.next_batch(store, run, "top", WINDOW)
        store.record_label(pid, int(rng.choice(all_ids)), "normal", "warmup")
    out["record_label"] = timed(lambda k: store.record_label(
        pid, int(rng.choice(all_ids)), str(LABELS[k % 2]), ANNOTATORS[k % len(ANNOTATORS)]), writes)

    def cold(k: int) -> None:  # a run's first batch in this server: reads its scores file and samples
        ranking._rankings.pop(store, None)
        ranking.next_batch(store, run, "top", WINDOW)

    out["next_batch_first_of_run"] = timed(cold, max(5, reads // 20))
    out["next_batch_top_60"] = timed(lambda k: ranking.next_batch(store, run, "top", WINDOW), reads)
    on_screen = ranking.next_batch(store, run, "top", WINDOW - TOP_UP)["sample_id"].tolist()
    out["next_batch_top_up_25"] = timed(lambda k: ranking.next_batch(store, run, "top", TOP_UP, exclude=on_screen),
                                        reads)
    out["next_batch_mixed_60"] = timed(lambda k: ranking.next_batch(store, run, "mixed", WINDOW),
                                       max(5, reads // 20))
    out["current_labels_60"] = timed(lambda k: store.current_labels(pid, batch["sample_id"]), reads)
    out["disputes_24"] = timed(lambda k: store.disputes(pid, rng.choice(labeled_ids, 24).tolist()), reads)
    out["disputes_whole_project"] = timed(lambda k: store.disputes(pid), max(5, reads // 20))
    out["label_counts"] = timed(lambda k: store.label_counts(pid), reads)
    out["events_last_15"] = timed(lambda k: store.events(pid, last=15), reads)
    out["undo_last"] = timed(lambda k: undo_or_refusal(store, pid, ANNOTATORS[k % len(ANNOTATORS)]), undos)
    return out


def undo_or_refusal(store: Store, pid: int, who: str) -> None:
    """An undo, timed whether it reverts labels or is refused (someone labeled them all again since)."""
    try:
        store.undo_last(pid, who)
    except StoreError:
        pass


def bench_backend(backend: str, args: argparse.Namespace) -> dict:
    with tempfile.TemporaryDirectory(prefix="semiad-load-") as home:
        server = None
        if backend == "postgresql":
            bindir = find_bindir()
            if bindir is None:
                return {"skipped": "PostgreSQL server binaries not found"}
            server = PgServer(bindir, settings={}).start()  # {}: PostgreSQL's durable defaults
            url = server.create_database("load")
        else:
            url = f"sqlite:///{home}/semiad.db"
        try:
            store = Store(url, home=home)
            pid, run, timings = build(store, args.samples, args.events, args.labeled, args.second_opinions,
                                   args.seed)
            counts = {**store.label_counts(pid), "disputed": len(store.disputes(pid))}
            result = {"setup": {**timings, **counts}, **measure(store, pid, run, args.writes, args.reads, args.undos,
                                                                   args.seed)}
            store.close()
            if server is not None:
                # The same writes with commits that do not wait for the WAL flush (fdatasync): a setting a
                # team can put in SEMIAD_DB_URL; it matches the SQLite store's WAL + synchronous=NORMAL.
                fast = Store(url + "&options=-csynchronous_commit%3Doff", home=home)
                rng = np.random.default_rng(args.seed + 2)
                ids = fast.samples(pid)["sample_id"].to_numpy()
                result["record_label_async_commit"] = timed(lambda k: fast.record_label(
                    pid, int(rng.choice(ids)), str(LABELS[k % 2]), ANNOTATORS[k % len(ANNOTATORS)]), args.writes)
                fast.close()
            return result
        finally:
            if server is not None:
                server.stop()


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--samples", type=int, default=100_000)
    p.add_argument("--events", type=int, default=1_000_000)
    p.add_argument("--labeled", type=float, default=0.5, help="share of samples with a label (the top-ranked)")
    p.add_argument("--second-opinions", type=float, default=0.02,
                   help="share of labeled samples also labeled by a second annotator (1: all by all)")
    p.add_argument("--writes", type=int, default=1000)
    p.add_argument("--reads", type=int, default=300)
    p.add_argument("--undos", type=int, default=50)
    p.add_argument("--backends", default="sqlite,postgresql")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", type=Path)
    args = p.parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # a killed run still removes its server and files
    result = {"device": cpu_name(), "load_average_at_start": os.getloadavg()[0],
              "second_opinions": args.second_opinions, "samples": args.samples, "events": args.events,
              "labeled": args.labeled,
              "date": datetime.now(timezone.utc).isoformat(timespec="seconds"), "backends": {}}
    for backend in args.backends.split(","):
        print(f"{backend}: loading {args.samples:,} samples and {args.events:,} events ...", flush=True)
        result["backends"][backend] = r = bench_backend(backend, args)
        if "skipped" in r:
            print(f"  skipped: {r['skipped']}")
            continue
        s = r["setup"]
        print(f"  loaded in {s['load_samples_s'] + s['load_events_s']:.1f} s, "
              f"scores saved in {s['save_scores_s']:.1f} s "
              f"({s['events']:,} events, {s['normal'] + s['anomalous']:,} labeled, {s['disputed']:,} disputed)")
        print(f"  {'operation':<30}{'n':>6}{'p50 ms':>10}{'p99 ms':>10}{'mean ms':>10}{'max ms':>10}")
        for op, m in r.items():
            if op != "setup":
                print(f"  {op:<30}{m['n']:>6}{m['p50_ms']:>10.2f}{m['p99_ms']:>10.2f}{m['mean_ms']:>10.2f}"
                      f"{m['max_ms']:>10.2f}")
    goals = {}
    for backend, r in result["backends"].items():
        if "skipped" not in r:
            goals[backend] = {"label_write_p99_under_20ms": r["record_label"]["p99_ms"] < 20,
                              "top_n_p99_under_100ms": r["next_batch_top_60"]["p99_ms"] < 100}
    result["goals_met"] = goals
    print(f"device: {result['device']}\ngoals met: {json.dumps(goals)}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=1))
    return result


if __name__ == "__main__":
    main()
