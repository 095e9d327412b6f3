"""The labeling loop with an oracle that answers from ground truth, for benchmarks.

    sim = simulate(samples.X, samples.truth, strategy="mixed", rounds=10, batch=20)
    sim.save("runs/sim")          # rounds.csv, rounds.json, queries.csv, curves.png

The loop is what a session does, minus the person: start with nothing labeled, fit the detector
(first fit), then each round query `batch` samples with a strategy from `semiad.query`, label them
from the ground truth (anomaly → −1, normal → +1), warm-start retrain (`fit(..., warm_start=True)`)
and record the round's metrics (`semiad.metrics`).

Deep SAD runs with `oversample_labeled=True` here (unless the caller says otherwise): with 20–200
labels among thousands of samples, plain shuffling would show the loss a labeled sample in only one
batch out of several, and the fine-tune would barely move (methods.md §2.8).
"""
from __future__ import annotations

import copy
import inspect
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from semiad import metrics, query
from semiad.defaults import DEFAULT_STRATEGY
from semiad.detectors import BaseDetector, make, registry


@dataclass
class Simulation:
    """The record of one simulated session."""

    config: dict[str, Any]
    rounds: list[dict[str, Any]]  # round 0 = the first fit, before any label
    queries: list[dict[str, Any]]  # one row per queried sample, in query order
    summary: dict[str, Any] = field(default_factory=dict)  # final figures and screening metrics

    def frame(self) -> "Any":
        """The rounds as a pandas DataFrame (one row per round)."""
        import pandas as pd

        return pd.DataFrame(self.rounds)

    def to_dict(self) -> dict[str, Any]:
        return {"config": self.config, "summary": self.summary, "rounds": self.rounds, "queries": self.queries}

    def save(self, folder: str | Path, title: str | None = None) -> dict[str, Path]:
        """Write rounds.csv, queries.csv, rounds.json (everything) and curves.png into `folder`."""
        import pandas as pd

        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        paths = {"csv": folder / "rounds.csv", "queries": folder / "queries.csv",
                 "json": folder / "rounds.json", "png": folder / "curves.png"}
        self.frame().to_csv(paths["csv"], index=False)
        pd.DataFrame(self.queries).to_csv(paths["queries"], index=False)
        paths["json"].write_text(json.dumps(json_safe(self.to_dict()), indent=1))
        plot_curves({self.config["strategy"]: self.rounds}, paths["png"],
                    title=title or " · ".join(str(v) for v in (self.config["method"], self.config["strategy"],
                                                                 self.config.get("data")) if v),
                    n_anomalies=self.summary.get("n_anomalies"), n_samples=self.summary.get("n_samples"))
        return paths


def json_safe(value: Any) -> Any:
    """JSON-safe copy: numpy scalars to Python, NaN to None."""
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not np.isfinite(value):
        return None
    return value


def detector_for(method: str, params: dict[str, Any] | None = None) -> BaseDetector:
    """A detector for the loop: `make(method, **params)`, with labeled oversampling switched on
    where the method has it and the caller did not decide."""
    params = dict(params or {})
    cls = registry().get(method)
    if cls is not None and "oversample_labeled" in inspect.signature(cls.__init__).parameters:
        params.setdefault("oversample_labeled", True)
    return make(method, **params)


def simulate(X: np.ndarray, truth: np.ndarray, method: str = "deepsad", strategy: str = DEFAULT_STRATEGY,
             rounds: int = 10, batch: int = 20, seed: int = 0, params: dict[str, Any] | None = None,
             strategy_options: dict[str, Any] | None = None, detector: BaseDetector | None = None,
             test: tuple[np.ndarray, np.ndarray] | None = None, ids: Sequence[str] | None = None,
             data_name: str = "", log: Callable[[str], None] | None = None,
             test_every_round: bool = True, answers: np.ndarray | None = None) -> Simulation:
    """Run the oracle loop and return its record.

    X, truth: the pool (inputs and ground truth 1 = anomaly). `params` go to the detector (e.g.
    pretrain_epochs, epochs, finetune_epochs). `detector`: an already fitted detector to start from
    (it is copied, so one first fit can serve several strategies); otherwise a fresh one is fitted.
    `test`: optional held-out (X, truth), scored every round (or only after the first fit and the
    last round with test_every_round=False, to save time). `log`: called with one line per round.
    `answers`: what the oracle says for each sample (1 = anomaly) when it is not the ground truth, as
    an expert who slips now and then; the metrics stay on the ground truth.
    """
    truth = np.asarray(truth).astype(np.int8).ravel()
    if len(truth) != len(X):
        raise ValueError(f"truth has {len(truth)} entries but X has {len(X)} samples")
    said = truth if answers is None else np.asarray(answers).astype(np.int8).ravel()
    if len(said) != len(X):
        raise ValueError(f"answers has {len(said)} entries but X has {len(X)} samples")
    if strategy not in query.STRATEGIES:
        raise ValueError(f"unknown strategy {strategy!r}; choose from {sorted(query.STRATEGIES)}")
    if rounds < 0 or batch < 1:
        raise ValueError("rounds must be ≥ 0 and batch ≥ 1")
    strategy_options = dict(strategy_options or {})
    rng = np.random.default_rng(seed)
    labeled = np.zeros(len(X), dtype=bool)
    y = np.zeros(len(X), dtype=np.int64)
    say = log or (lambda line: None)

    start = time.perf_counter()
    given_fitted = detector is not None and detector.fitted
    if given_fitted:
        det = copy.deepcopy(detector)
        fit_s = 0.0
    else:
        det = detector if detector is not None else detector_for(method, {"seed": seed, **(params or {})})
        det.fit(X, y)
        fit_s = time.perf_counter() - start
    config = {"method": det.method, "strategy": strategy, "rounds": rounds, "batch": batch, "seed": seed,
              "data": data_name, "detector": json_safe(det.get_params()), "strategy_options": strategy_options}

    rows: list[dict[str, Any]] = []
    queries: list[dict[str, Any]] = []
    sources: list[str] = []
    label_rounds: list[int] = []

    def record(r: int, picked: list[int], fit_seconds: float, fitted_here: bool = True) -> np.ndarray:
        # a fit on X leaves X's scores in decision_scores_ (a scoring pass, or the fit's own pool scores)
        scores = det.decision_scores_ if fitted_here else det.decision_function(X)
        row = {"round": r, **metrics.round_metrics(truth, scores, labeled, picked, k=batch)}
        if test is not None and (test_every_round or r in (0, rounds) or labeled.all()):
            test_scores = det.decision_function(test[0])
            row["auc_test"] = metrics.roc_auc(test[1], test_scores)
            row["ap_test"] = metrics.average_precision(test[1], test_scores)
        if label_rounds:  # the no-ground-truth estimate a real project would see
            table = metrics.progress_table(label_rounds, y[[q["index"] for q in queries]], sources)
            row["audit_anomaly_rate"] = float(table["audit_anomaly_rate"].iloc[-1])
        row["fit_s"] = round(fit_seconds, 2)
        row["elapsed_s"] = round(time.perf_counter() - start, 2)
        rows.append(row)
        say(_line(row))
        return scores

    scores = record(0, [], fit_s, fitted_here=not given_fitted)
    for r in range(1, rounds + 1):
        if labeled.all():
            break
        emb = det.embed(X) if query.needs_embeddings(strategy, **strategy_options) else None
        options = dict(strategy_options)
        if query.needs_history(strategy, **strategy_options):
            options.setdefault("since_anomaly", query.labels_since_anomaly([q["anomaly"] for q in queries]))
        picks = query.select(strategy, scores, labeled, batch, rng, embeddings=emb, **options)
        picked = [i for i, _ in picks]
        for i, reason in picks:  # the oracle answers from ground truth (or the given answers)
            labeled[i] = True
            y[i] = -1 if said[i] else 1
            queries.append({"round": r, "index": i, "id": ids[i] if ids is not None else str(i), "reason": reason,
                            "score": float(scores[i]), "anomaly": int(truth[i])})
            sources.append(reason)
            label_rounds.append(r)
        t = time.perf_counter()
        det.fit(X, y, warm_start=True)
        scores = record(r, picked, time.perf_counter() - t)

    order = metrics.screening_order([q["index"] for q in queries], scores)
    last = rows[-1]
    summary = {
        "n_samples": int(len(X)), "n_anomalies": int(truth.sum()), "n_labeled": last["n_labeled"],
        "anomalies_found": last["anomalies_found"], "query_precision": last["query_precision"],
        # how many labels the last anomaly found took (1-based); None before the first is found
        "last_found_at": max((k + 1 for k, q in enumerate(queries) if q["anomaly"]), default=None),
        "auc_unlabeled": last["auc_unlabeled"], "ap_unlabeled": last["ap_unlabeled"],
        "auc_unlabeled_start": rows[0]["auc_unlabeled"],
        **({"auc_test": last["auc_test"], "auc_test_start": rows[0]["auc_test"]} if test is not None else {}),
        **metrics.screening_summary(truth[order]),
        "total_s": round(time.perf_counter() - start, 1),
    }
    return Simulation(config=config, rounds=rows, queries=queries, summary=json_safe(summary))


def _line(row: dict[str, Any]) -> str:
    parts = [f"round {row['round']:>2}", f"labeled {row['n_labeled']:>4}",
             f"found {row['anomalies_found']:>4}", f"batch prec {_fmt(row['batch_precision'])}",
             f"AUC rest {_fmt(row['auc_unlabeled'])}"]
    if "auc_test" in row:
        parts.append(f"AUC test {_fmt(row['auc_test'])}")
    parts.append(f"{row['elapsed_s']:.0f} s")
    return "  ".join(parts)


def _fmt(v: float) -> str:
    return "  -  " if v is None or not np.isfinite(v) else f"{v:.3f}"


# ----- the PNG: a few line charts drawn with PIL (no matplotlib in the image) ----------------

_COLORS = [(31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189), (140, 86, 75),
           (227, 119, 194), (127, 127, 127)]


def plot_curves(runs: dict[str, list[dict[str, Any]]], path: str | Path, title: str = "",
                n_anomalies: int | None = None, n_samples: int | None = None) -> Path:
    """Three panels, one line per run: anomalies found vs labels, AUC on the unlabeled remainder
    (and on the test set if recorded, dashed) per round, and the precision of each queried batch.

    `runs`: name → rows as in `Simulation.rounds`. With n_anomalies/n_samples the first panel also
    shows the best possible curve and what random labeling finds on average (gray).
    """
    from PIL import Image, ImageDraw

    panel_w, panel_h, pad = 360, 280, 48
    img = Image.new("RGB", (3 * panel_w + 20, panel_h + 40), "white")
    draw = ImageDraw.Draw(img)
    draw.text((10, 8), title, fill="black")
    max_labels = max((r["n_labeled"] for rows in runs.values() for r in rows), default=1) or 1
    max_round = max((r["round"] for rows in runs.values() for r in rows), default=1) or 1
    max_found = max((r["anomalies_found"] for rows in runs.values() for r in rows), default=1) or 1

    panels = [("labels", "anomalies found", (0, max_labels), (0, max_found if not n_anomalies else
                                                                min(n_anomalies, max_labels))),
              ("round", "AUC (unlabeled; test dashed)", (0, max_round), None),
              ("round", "precision of the queried batch", (0, max_round), (0.0, 1.0))]
    auc_values = [r[k] for rows in runs.values() for r in rows for k in ("auc_unlabeled", "auc_test")
                  if r.get(k) is not None and np.isfinite(r[k])]
    lo = min(auc_values, default=0.5)
    panels[1] = (*panels[1][:3], (min(lo, 0.9) - 0.02, 1.0))

    for p, (xlabel, ylabel, (x0, x1), (y0, y1)) in enumerate(panels):
        left, top = 10 + p * panel_w + pad, 40
        box = (left, top, left + panel_w - pad - 14, top + panel_h - pad)

        def to_px(x: float, yv: float, box=box, x0=x0, x1=x1, y0=y0, y1=y1) -> tuple[float, float]:
            fx = (x - x0) / ((x1 - x0) or 1)
            fy = (yv - y0) / ((y1 - y0) or 1)
            return box[0] + fx * (box[2] - box[0]), box[3] - fy * (box[3] - box[1])

        draw.rectangle(box, outline=(80, 80, 80))
        for xv in sorted({int(round(v)) for v in np.linspace(x0, x1, 6)}):
            px, _ = to_px(xv, y0)
            draw.line([(px, box[3]), (px, box[3] + 4)], fill=(80, 80, 80))
            draw.text((px - 6, box[3] + 6), str(xv), fill="black")
        for i in range(5):
            yv = y0 + (y1 - y0) * i / 4
            _, py = to_px(x0, yv)
            draw.line([(box[0] - 4, py), (box[0], py)], fill=(80, 80, 80))
            draw.text((box[0] - pad + 4, py - 6), f"{yv:.2f}" if y1 <= 1.5 else f"{yv:.0f}", fill="black")
        draw.text((box[0], box[3] + 22), xlabel, fill="black")
        draw.text((box[0], top - 14), ylabel, fill="black")

        if p == 0 and n_anomalies:
            ideal = [to_px(0, 0), to_px(min(n_anomalies, x1), min(n_anomalies, x1)), to_px(x1, min(n_anomalies, x1))]
            draw.line(ideal, fill=(190, 190, 190), width=1)
            if n_samples:
                draw.line([to_px(0, 0), to_px(x1, x1 * n_anomalies / n_samples)], fill=(150, 150, 150), width=1)
        for c, (name, rows) in enumerate(runs.items()):
            color = _COLORS[c % len(_COLORS)]
            if p == 0:
                series = [[(r["n_labeled"], r["anomalies_found"]) for r in rows]]
            elif p == 1:
                series = [[(r["round"], r["auc_unlabeled"]) for r in rows]]
                if any("auc_test" in r for r in rows):
                    series.append([(r["round"], r.get("auc_test")) for r in rows])
            else:
                series = [[(r["round"], r["batch_precision"]) for r in rows if r["batch_size"]]]
            for s, points in enumerate(series):
                pts = [to_px(x, v) for x, v in points if v is not None and np.isfinite(v)]
                if len(pts) > 1:
                    if s == 0:
                        draw.line(pts, fill=color, width=2)
                    else:  # dashed: short pieces along each segment
                        for (ax, ay), (bx, by) in zip(pts[:-1], pts[1:]):
                            steps = max(int(np.hypot(bx - ax, by - ay) / 6), 1)
                            for k in range(0, steps, 2):
                                f0, f1 = k / steps, min(k + 1, steps) / steps
                                draw.line([(ax + f0 * (bx - ax), ay + f0 * (by - ay)),
                                           (ax + f1 * (bx - ax), ay + f1 * (by - ay))], fill=color, width=2)
                for x, yv in pts:
                    draw.ellipse([x - 2, yv - 2, x + 2, yv + 2], fill=color)
            if p == 0:
                draw.text((box[0] + 6, box[1] + 6 + 12 * c), name, fill=color)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    img.save(path)
    return path
