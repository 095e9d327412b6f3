"""What every bench script reports the same way: the machine it ran on, the `--json` file and the
AUC summary over seeds."""
from __future__ import annotations

import json
import platform
from pathlib import Path
from typing import Any, Sequence

import numpy as np


def cpu_name() -> str:
    """The CPU's model name (from /proc/cpuinfo on Linux), else what the platform module says."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def write_json(path: Path | None, result: dict[str, Any]) -> None:
    """Write the figures as one JSON object to `path` (the script's --json), if one was given."""
    if path is None:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=1))


def auc_summary(runs: Sequence[dict[str, Any]], methods: Sequence[str], by: str, values: Sequence[Any],
                timing: str) -> list[dict[str, Any]]:
    """Per method and value of `by` (a data set, a γ_l): the mean and std over seeds of the runs' "auc",
    the mean of their `timing` field and the number of seeds, in the order of `methods` and `values`."""
    summary = []
    for name in methods:
        for value in values:
            sel = [r for r in runs if r["method"] == name and r[by] == value]
            aucs = np.array([r["auc"] for r in sel])
            summary.append({"method": name, by: value, "auc_mean": float(aucs.mean()), "auc_std": float(aucs.std()),
                            timing: float(np.mean([r[timing] for r in sel])), "seeds": len(sel)})
    return summary
