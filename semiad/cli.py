"""Headless semiad: `python -m semiad <command> ...`.

Each command is one `add_<name>(subparsers)` function that adds its subparser and sets
`func` (the code to run, given the parsed arguments; returns the exit status). A new command is a
new function plus one line in `COMMANDS`.
"""
from __future__ import annotations

import argparse
import ast
import json
import sys
from pathlib import Path
from typing import Any, Callable, Sequence

from semiad import query


def _value(text: str) -> Any:
    """A --set value: a Python/JSON literal if it parses (1e-4, true, [50]), else the string."""
    lowered = {"true": "True", "false": "False", "null": "None"}.get(text.lower(), text)
    try:
        return ast.literal_eval(lowered)
    except (ValueError, SyntaxError):
        return text


def _key_values(items: Sequence[str]) -> dict[str, Any]:
    out = {}
    for item in items:
        if "=" not in item:
            raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {item!r}")
        key, text = item.split("=", 1)
        out[key.strip()] = _value(text.strip())
    return out


def load_dataset(args: argparse.Namespace) -> Any:
    """The SampleSet a command asked for: "digits" (bundled), or a path (MNIST idx folder, .npz, .csv, image folder)."""
    from semiad import data

    if args.data in ("digits", ""):
        return data.load_digits(normal=args.normal, anomaly_fraction=args.anomaly_fraction, seed=getattr(args, "seed", 0))
    path = Path(args.data)
    if path.is_dir() and any(path.glob("*-images-idx3-ubyte*")):
        return data.load_mnist(path, normal=args.normal, split=args.split, anomaly_fraction=args.anomaly_fraction,
                               seed=getattr(args, "seed", 0))
    return data.load(path)


def add_data_options(p: argparse.ArgumentParser) -> None:
    """Dataset options shared by the commands that load data."""
    g = p.add_argument_group("data")
    g.add_argument("--data", default="digits",
                   help="'digits' (scikit-learn's bundled digits, default), a folder with MNIST/Fashion-MNIST "
                        "idx files, a .npz (X, y), a .csv, or a folder of images")
    g.add_argument("--normal", type=int, nargs="+", default=[0], help="normal class(es) for digits / MNIST (default 0)")
    g.add_argument("--split", default="train", choices=["train", "test", "all"], help="MNIST split (default train)")
    g.add_argument("--anomaly-fraction", type=float, default=0.1,
                   help="share of anomalies drawn from the other classes, digits / MNIST (default 0.1)")


def add_detector_options(p: argparse.ArgumentParser) -> None:
    from semiad.detectors import ALL

    g = p.add_argument_group("detector")
    g.add_argument("--method", default="deepsad", choices=[c.method for c in ALL], help="detector (default deepsad)")
    g.add_argument("--epochs", type=int, nargs=3, metavar=("PRETRAIN", "TRAIN", "FINETUNE"),
                   help="epochs of the first fit's pretraining and training, and of each warm-start fine-tune "
                        "(numbers a method has no parameter for are ignored)")
    g.add_argument("--device", default="auto", help="auto, cpu or cuda (default auto)")
    g.add_argument("--set", dest="params", nargs="+", default=[], metavar="KEY=VALUE",
                   help="more detector parameters, e.g. --set eta=2 finetune_lr=1e-4")


def detector_params(args: argparse.Namespace) -> dict[str, Any]:
    """Constructor arguments from --device/--seed/--epochs/--set. --epochs fills only the names the
    method has (a method without AE pretraining ignores PRETRAIN); --set names are passed as given."""
    import inspect

    from semiad.detectors.base import registry

    params: dict[str, Any] = {"device": args.device, "seed": getattr(args, "seed", 0)}
    if args.epochs:
        accepted = inspect.signature(registry()[args.method].__init__).parameters
        given = dict(zip(("pretrain_epochs", "epochs", "finetune_epochs"), args.epochs))
        params.update({k: v for k, v in given.items() if k in accepted})
    params.update(_key_values(args.params))
    return params


# ----- simulate ---------------------------------------------------------------------------------

def add_simulate(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "simulate", help="run the labeling loop with an oracle that answers from ground truth",
        description="Start unlabeled, fit the detector, then each round query a batch with a strategy, label it "
                    "from the ground truth, warm-start retrain and record metrics. Writes rounds.csv, "
                    "queries.csv, rounds.json and curves.png into --out. Deep SAD runs with "
                    "oversample_labeled=True (a few labels in every batch).")
    add_data_options(p)
    add_detector_options(p)
    g = p.add_argument_group("loop")
    g.add_argument("--strategy", default="top", choices=list(query.STRATEGIES), help="query strategy (default top)")
    g.add_argument("--rounds", type=int, default=10, help="labeling rounds (default 10)")
    g.add_argument("--batch", type=int, default=20, help="labels per round (default 20)")
    g.add_argument("--contamination", type=float, default=0.1, help="expected anomaly share, for boundary (default 0.1)")
    g.add_argument("--mix", nargs="+", default=[], metavar="STRATEGY=WEIGHT",
                   help="weights of the mixed strategy (default top=0.7 diverse=0.2 random=0.1)")
    g.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=Path("simulation"), help="output folder (default ./simulation)")
    p.add_argument("--quiet", action="store_true", help="no per-round lines")
    p.set_defaults(func=run_simulate)


def run_simulate(args: argparse.Namespace) -> int:
    from semiad.simulate import simulate

    samples = load_dataset(args)
    if samples.truth is None:
        print(f"{samples.name}: no ground truth, so there is nothing for the oracle to answer with", file=sys.stderr)
        return 2
    options: dict[str, Any] = {"contamination": args.contamination}
    if args.mix:
        options["weights"] = {k: float(v) for k, v in _key_values(args.mix).items()}
    sim = simulate(samples.X, samples.truth, method=args.method, strategy=args.strategy, rounds=args.rounds,
                   batch=args.batch, seed=args.seed, params=detector_params(args), strategy_options=options,
                   ids=samples.ids, data_name=samples.name, log=None if args.quiet else print)
    paths = sim.save(args.out)
    s = sim.summary
    print(f"{s['anomalies_found']} of {s['n_anomalies']} anomalies found with {s['n_labeled']} labels "
          f"(precision {s['query_precision']:.3f}); AUC on the unlabeled rest "
          f"{s['auc_unlabeled_start']:.3f} → {s['auc_unlabeled']:.3f}; WSS@95 {s['wss_95']:.3f}")
    print("wrote " + ", ".join(str(p) for p in paths.values()))
    return 0


# ----- the parser -------------------------------------------------------------------------------

COMMANDS: list[Callable[[Any], None]] = [add_simulate]


def build_parser() -> argparse.ArgumentParser:
    """The `python -m semiad` parser with one subparser per entry of COMMANDS."""
    parser = argparse.ArgumentParser(prog="python -m semiad", description="semiad: deep anomaly detection with a "
                                     "human in the loop, headless.")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for add in COMMANDS:
        add(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (ValueError, TypeError) as e:  # bad data or options (e.g. an unknown --set name): one line, not a traceback
        print(f"error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
