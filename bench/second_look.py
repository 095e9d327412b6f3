"""How many of an expert's slips the Review page's "Second look" list puts in front of them.

On each set of bench/label_efficiency.py the app's default loop runs 10 rounds × 20 with an oracle that
gives the wrong label on a random share (`--rates`) of the samples (drawn once per seed, so a sample
shown twice would get the same wrong answer). Then `semiad.second_look.disagreement` ranks the 200
labels, in the final model's latent space, and we count the wrong labels among its top 10 and top 20,
against what a random 20 would hold (20/200 of them). Wrong "normal" labels on anomalies are the costly
slips (anomalies that are never shown again): they are counted apart.

    python -m bench.second_look --json bench/out/second_look.json
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from bench.label_efficiency import BATCH, DEFAULT_CACHE, ROUNDS, SETS, inputs, semiad_params, slips
from bench.report import cpu_name
from semiad import defaults
from semiad.detectors import make
from semiad.second_look import LEAN, LISTED, disagreement
from semiad.simulate import simulate

TOPS = (10, 20)  # of all labels in one list
SHOWN = (5, 10)  # of each kind's list


def run(name: str, rate: float, seed: int, cache: Path | None) -> dict:
    samples = SETS[name](0)
    truth = samples.truth.astype(np.int8)
    X, rep, _ = inputs(samples, name, 0, cache)
    said = slips(truth, rate, seed)
    det = make(defaults.DEFAULT_METHOD, **semiad_params(samples, rep, len(X), seed))
    start = time.perf_counter()
    sim = simulate(X, truth, detector=det, rounds=ROUNDS, batch=BATCH, seed=seed, answers=said)
    labeled = np.array([q["index"] for q in sim.queries])
    t = time.perf_counter()
    d = disagreement(np.asarray(det.embed(X))[labeled], said[labeled] == 1)["disagreement"]
    look_s = time.perf_counter() - t
    wrong = said[labeled] != truth[labeled]
    lost = wrong & (truth[labeled] == 1)  # anomalies labeled normal
    order = np.argsort(-d, kind="stable")
    out = {"set": name, "rate": rate, "seed": seed, "labels": int(len(labeled)), "wrong": int(wrong.sum()),
           "wrong_in_random20": float(wrong.sum()) * 20 / len(labeled),
           "anomalies_labeled_normal": int(lost.sum()), "loop_s": round(t - start, 1), "look_s": round(look_s, 3)}
    for top in TOPS:
        out[f"wrong_in_top{top}"] = int(wrong[order[:top]].sum())
        out[f"lost_in_top{top}"] = int(lost[order[:top]].sum())
    # each kind ranked apart (the page's two lists): normal labels first, the slips that hide anomalies
    normal_order = order[said[labeled][order] == 0]
    anomalous_order = order[said[labeled][order] == 1]
    out["false_anomalous"] = int((wrong & (truth[labeled] == 0)).sum())
    for top in SHOWN:
        out[f"lost_in_normal_top{top}"] = int(lost[normal_order[:top]].sum())
        out[f"false_in_anomalous_top{top}"] = int(wrong[anomalous_order[:top]].sum())
    # what the page lists: each kind's top LISTED, only where the other labels lean the other way
    for kind, kind_order in (("normal", normal_order), ("anomalous", anomalous_order)):
        listed = kind_order[:LISTED][d[kind_order[:LISTED]] >= LEAN]
        out[f"{kind}_listed"] = int(len(listed))
        out[f"{kind}_listed_wrong"] = int(wrong[listed].sum())
    return out


def table(runs: list[dict], rates: list[float], title: str, columns: dict[str, str]) -> None:
    """A markdown table: per noise rate, each column's figure summed over the runs (column → key)."""
    print(f"\n{title}\n\n| noise | " + " | ".join(columns) + " |\n" + "|---" * (len(columns) + 1) + "|")
    for rate in rates:
        sel = [r for r in runs if r["rate"] == rate]
        sums = [sum(r[k] for r in sel) for k in columns.values()]
        print(f"| {rate:.0%} | " + " | ".join(f"{v:.1f}" if isinstance(v, float) else str(v) for v in sums) + " |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sets", nargs="+", default=list(SETS), choices=list(SETS))
    ap.add_argument("--rates", nargs="+", type=float, default=[0.0, 0.02, 0.05])
    ap.add_argument("--seeds", type=int, default=2)
    ap.add_argument("--cache", type=Path, default=DEFAULT_CACHE)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    runs = []
    for rate in args.rates:
        for name in args.sets:
            for seed in range(args.seeds):
                r = run(name, rate, seed, args.cache)
                runs.append(r)
                print(f"{name:<16} rate {rate:.2f} seed {seed}: {r['wrong']:>2} wrong "
                      f"({r['anomalies_labeled_normal']} anomalies labeled normal); in the top 10: "
                      f"{r['wrong_in_top10']}, top 20: {r['wrong_in_top20']} ({r['lost_in_top20']} of the "
                      f"anomalies); normal list top 5: {r['lost_in_normal_top5']}; look {r['look_s']} s", flush=True)
    table(runs, args.rates, "Each kind's list apart:", {
        "anomalies labeled normal": "anomalies_labeled_normal", "in the normal list's top 5": "lost_in_normal_top5",
        "top 10": "lost_in_normal_top10", "normals labeled anomalous": "false_anomalous",
        "in the anomalous list's top 5": "false_in_anomalous_top5", "top 10 ": "false_in_anomalous_top10"})
    table(runs, args.rates, f"What the Review page lists (each kind's top {LISTED} with a disagreement of at least "
          f"{LEAN}):", {"normal labels listed": "normal_listed", "of them anomalies": "normal_listed_wrong",
                        "anomalous labels listed": "anomalous_listed", "of them normals": "anomalous_listed_wrong"})
    table(runs, args.rates, "One list of all labels:", {
        "labels": "labels", "wrong": "wrong", "in the top 10": "wrong_in_top10", "in the top 20": "wrong_in_top20",
        "a random 20": "wrong_in_random20", "anomalies labeled normal": "anomalies_labeled_normal",
        "of them in the top 20": "lost_in_top20"})
    if args.json:
        args.json.write_text(json.dumps({"device": cpu_name(), "date": time.strftime("%Y-%m-%d"),
                                         "runs": runs}, indent=1))


if __name__ == "__main__":
    main()
