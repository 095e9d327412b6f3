"""What every bench script reports the same way: the machine it ran on and the `--json` file."""
from __future__ import annotations

import json
import platform
from pathlib import Path
from typing import Any


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
