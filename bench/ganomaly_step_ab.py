"""GANomaly training step side by side with the reference (samet-akcay/ganomaly, a checkout you fetch
yourself; nothing of it is in this repository): the reference's `optimize_params` against semiad's
`_train_step` in fp32 and with `precision="bf16"`, on the same batches, alternating rounds, one process.

    python -m bench.ganomaly_step_ab --ref /path/to/ganomaly --threads 1 --rounds 3 --steps 10

Settings are the issue's: MNIST-sized 1×28×28 inputs resized to 32, batch 64, nz 100, ngf = ndf = 64.
The reference imports matplotlib only for plots; a stub stands in for it when it is not installed.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
import types
from pathlib import Path

import numpy as np
import torch

from semiad.detectors import GANomaly


def reference_model(ref: Path):
    if "matplotlib" not in sys.modules:
        try:
            import matplotlib  # noqa: F401
        except ImportError:
            stub = types.ModuleType("matplotlib")
            stub.pyplot = types.ModuleType("matplotlib.pyplot")
            stub.rc = lambda *a, **k: None
            sys.modules["matplotlib"], sys.modules["matplotlib.pyplot"] = stub, stub.pyplot
    sys.path.insert(0, str(ref))
    argv, sys.argv = sys.argv, ["ref", "--dataset", "mnist", "--isize", "32", "--nc", "1", "--device", "cpu",
                                "--manualseed", "0", "--name", "ab"]
    cwd = os.getcwd()
    os.chdir(os.environ.get("TMPDIR", "/tmp"))  # it writes an output folder where it runs
    try:
        from lib.model import Ganomaly
        from options import Options
        model = Ganomaly(Options().parse(), None)
    finally:
        sys.argv = argv
        os.chdir(cwd)
    model.total_steps = 0
    return model


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ref", type=Path, required=True, help="a checkout of samet-akcay/ganomaly")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--steps", type=int, default=10, help="steps per round and side")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    n = args.steps
    X = np.random.default_rng(0).random((64 * n, 1, 28, 28), dtype=np.float32)
    ref = reference_model(args.ref)
    ours = {p: GANomaly(device="cpu", epochs=1e-4, precision=p).fit(X[:128]) for p in ("fp32", "bf16")}
    for det in ours.values():
        det.gen_.train()
        det.disc_.train()
    pool = ours["fp32"]._prepare(ours["fp32"]._to_tensor(X))  # [-1, 1], 32×32, channels_last
    ref_pool = pool.contiguous()

    def step_ref(i: int) -> None:
        ref.set_input((ref_pool[64 * i:64 * (i + 1)], torch.zeros(64, dtype=torch.long)))
        ref.optimize_params()

    sides = {"reference": step_ref, "semiad fp32": lambda i: ours["fp32"]._train_step(pool[64 * i:64 * (i + 1)]),
             "semiad bf16": lambda i: ours["bf16"]._train_step(pool[64 * i:64 * (i + 1)])}
    for f in sides.values():  # warm-up
        f(0)
        f(1)
    wall: dict[str, list[float]] = {k: [] for k in sides}
    cpu: dict[str, list[float]] = {k: [] for k in sides}
    for _ in range(args.rounds):
        for name, f in sides.items():
            a, c = time.perf_counter(), time.process_time()
            for i in range(n):
                f(i)
            wall[name].append((time.perf_counter() - a) / n)
            cpu[name].append((time.process_time() - c) / n)
    print(f"threads {torch.get_num_threads()}, {n} steps per round, {args.rounds} rounds")
    for name in sides:
        w = np.array(wall[name]) / np.array(wall["reference"])
        c = np.array(cpu[name]) / np.array(cpu["reference"])
        print(f"{name:12s} wall s/step {np.round(wall[name], 3)}  ratio to reference: wall {np.median(w):.3f}, "
              f"CPU {np.median(c):.3f} (medians)")


if __name__ == "__main__":
    main()
