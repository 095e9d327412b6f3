"""The `semiad` command (the same as `python -m semiad <command> ...`): the app, its worker, and headless
fit / score / simulate.

Each command is one `add_<name>(subparsers)` function that adds its subparser and sets
`func` (the code to run, given the parsed arguments; returns the exit status). A new command is a
new function plus one line in `COMMANDS`.
"""
from __future__ import annotations

import argparse
import ast
import os
import sys
import time
from pathlib import Path
from typing import Any, Callable, Collection, Mapping, Sequence

from semiad import defaults, query


def _value(text: str) -> Any:
    """A --set value: a Python/JSON literal if it parses (1e-4, true, [50]), else the string."""
    lowered = {"true": "True", "false": "False", "null": "None"}.get(text.lower(), text)
    try:
        return ast.literal_eval(lowered)
    except (ValueError, SyntaxError):
        return text


def whole(least: int) -> Callable[[str], int]:
    """An argparse type: a whole number of at least `least` (checked when the command line is read,
    before any data is loaded)."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
        if value < least:
            raise argparse.ArgumentTypeError(f"must be at least {least}, got {value}")
        return value
    return parse


def key_values(items: Sequence[str]) -> dict[str, Any]:
    """KEY=VALUE items (--set) as a dict of literals (`_value`)."""
    out = {}
    for item in items:
        if "=" not in item:
            raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {item!r}")
        key, text = item.split("=", 1)
        out[key.strip()] = _value(text.strip())
    return out


def load_dataset(args: argparse.Namespace) -> Any:
    """The SampleSet a command asked for: "digits" (bundled), or a path (MNIST idx folder, .npz, .csv, image
    folder); what the loader skipped is said on stderr."""
    samples = _load_dataset(args)
    if samples.skipped:
        shown = "; ".join(f"{what}: {why}" for what, why in samples.skipped[:5])
        more = f" (and {len(samples.skipped) - 5} more)" if len(samples.skipped) > 5 else ""
        print(f"{samples.name}: left out or flagged: {shown}{more}", file=sys.stderr)
    return samples


def _load_dataset(args: argparse.Namespace) -> Any:
    from semiad import data

    if getattr(args, "label_column", None) and Path(args.data).suffix.lower() != ".csv":
        raise ValueError("--label-column applies to a .csv file")
    if args.data in ("digits", ""):
        return data.load_digits(normal=args.normal, anomaly_fraction=args.anomaly_fraction,
                                seed=getattr(args, "seed", 0))
    path = Path(args.data)
    if data.is_mnist_folder(path):
        return data.load_mnist(path, normal=args.normal, split=args.split, anomaly_fraction=args.anomaly_fraction,
                               seed=getattr(args, "seed", 0))
    if path.is_dir():
        return data.load_image_folder(path, anomaly_folders=getattr(args, "anomaly_folders", None) or ())
    if getattr(args, "anomaly_folders", None):
        raise ValueError("--anomaly-folders applies to a folder of images")
    if getattr(args, "label_column", None):
        return data.load(path, label_column=args.label_column)
    return data.load(path)


def add_data_options(p: argparse.ArgumentParser) -> None:
    """Dataset options shared by the commands that load data."""
    g = p.add_argument_group("data")
    g.add_argument("--data", default="digits",
                   help="'digits' (scikit-learn's bundled digits, default), a folder with MNIST/Fashion-MNIST "
                        "idx files, a .npz or .mat (X, y), a .csv, or a folder of images")
    g.add_argument("--normal", type=int, nargs="+", default=[0], help="normal class(es) for digits / MNIST (default 0)")
    g.add_argument("--split", default="train", choices=["train", "test", "all"], help="MNIST split (default train)")
    g.add_argument("--anomaly-fraction", type=float, default=0.1,
                   help="share of anomalies drawn from the other classes, digits / MNIST (default 0.1)")
    g.add_argument("--anomaly-folders", nargs="+", default=[], metavar="FOLDER",
                   help="folder of images: the sub-folders that hold anomalies (ground truth)")
    g.add_argument("--label-column", metavar="NAME",
                   help=".csv: the column that holds ground truth (a number, non-zero = anomaly, or a word: "
                        "anomalous / normal, yes / no, …); it is not a feature")


def add_detector_options(p: argparse.ArgumentParser) -> None:
    from semiad import defaults
    from semiad.detectors import registry

    g = p.add_argument_group("detector")
    g.add_argument("--method", default=defaults.DEFAULT_METHOD, choices=list(registry()),
                   help=f"detector (default {defaults.DEFAULT_METHOD}, the app's default loop)")
    g.add_argument("--representation", default="auto", choices=["auto", "pixels", "features", "features+pixels"],
                   help="what the detector sees: auto = the app's default for the data and method (for images "
                        "with fusion features+pixels when gray, the features alone when colour; pretrained features "
                        "with iforest/knn; the pixels for the "
                        "deep methods; the columns for tables), pixels = the inputs as loaded, features = "
                        "pretrained image features, features+pixels = both side by side")
    g.add_argument("--size", type=int, default=None, help="input size of the feature backbone in px (default 224)")
    g.add_argument("--epochs", type=float, nargs=3, metavar=("PRETRAIN", "TRAIN", "FINETUNE"),
                   help="epochs of the first fit's pretraining and training, and of each warm-start fine-tune "
                        "(numbers a method has no parameter for are ignored; each within the Train page's range)")
    g.add_argument("--device", default="auto", help="auto, cpu or cuda (default auto)")
    g.add_argument("--set", dest="params", nargs="+", default=[], metavar="KEY=VALUE",
                   help="more detector parameters, e.g. --set eta=2 finetune_lr=1e-4")


def representation(args: argparse.Namespace, samples: Any) -> dict[str, Any]:
    """--representation / --size resolved for the data (auto = the app's default for its kind)."""
    from semiad import defaults, represent

    rep = (defaults.representation_for(samples.kind, args.method, samples.X.shape[1:]) if args.representation == "auto"
           else {"kind": args.representation})
    if args.size is not None:
        rep["size"] = args.size
    return represent.check(rep, images=samples.kind == "image")


def detector_params(args: argparse.Namespace, samples: Any, rep: dict[str, Any]) -> dict[str, Any]:
    """Constructor arguments: the app's defaults for this data and method (semiad.defaults), then
    --device/--seed/--epochs/--set. --epochs fills only the names the method has (a method without
    AE pretraining ignores PRETRAIN); --set names are passed as given. Every setting the Train page shows
    is held to its range there (`settings.check_params`): ValueError otherwise."""
    import inspect

    from semiad import defaults
    from semiad.detectors import registry
    from semiad.settings import check_params

    params = defaults.method_params(args.method, samples.kind, rep, n_samples=len(samples),
                                    input_shape=samples.X.shape[1:])
    params.update({"device": args.device, "seed": getattr(args, "seed", 0)})
    if args.epochs:
        accepted = inspect.signature(registry()[args.method].__init__).parameters
        given = dict(zip(("pretrain_epochs", "epochs", "finetune_epochs"), args.epochs))
        params.update({k: v for k, v in given.items() if k in accepted})
    params.update(key_values(args.params))
    return check_params(args.method, params)


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
    g.add_argument("--strategy", default=defaults.DEFAULT_STRATEGY, choices=list(query.STRATEGIES),
                   help=f"query strategy (default {defaults.DEFAULT_STRATEGY})")
    g.add_argument("--rounds", type=whole(0), default=10, help="labeling rounds (default 10)")
    g.add_argument("--batch", type=whole(1), default=20, help="labels per round (default 20)")
    g.add_argument("--contamination", type=float, default=0.1,
                   help="expected anomaly share, for boundary (default 0.1)")
    g.add_argument("--mix", nargs="+", default=[], metavar="STRATEGY=WEIGHT",
                   help="weights of the mixed strategy (default top=0.7 diverse=0.2 random=0.1)")
    g.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=Path("simulation"), help="output folder (default ./simulation)")
    p.add_argument("--quiet", action="store_true", help="no per-round lines")
    p.set_defaults(func=run_simulate)


def model_inputs(args: argparse.Namespace, samples: Any, rep: dict[str, Any]) -> Any:
    """The detector's inputs for the loaded samples, with a progress line for feature extraction."""
    from semiad import represent

    if rep["kind"] == "pixels":
        return samples.X
    print(f"computing {represent.describe(rep)} for {len(samples)} images…", file=sys.stderr)
    started, shown = time.perf_counter(), [time.perf_counter()]

    def progress(done: int, total: int) -> None:  # a line every 10 s: 10k images take minutes on a CPU
        now = time.perf_counter()
        if now - shown[0] >= 10 and done < total:
            shown[0] = now
            print(f"  features {done}/{total} ({now - started:.0f} s)", file=sys.stderr)

    return represent.model_inputs(samples.X, rep, device=args.device, paths=samples.paths,
                                  originals=samples.originals, progress=progress)


def writable(out: Path, folder: bool) -> None:
    """Refuse an --out that cannot be written, before any work: a folder where a file is to be written,
    or a file where a folder is (it failed after the fit, with a traceback)."""
    if folder and out.exists() and not out.is_dir():
        raise ValueError(f"--out {out}: a file is there; simulate writes a folder")
    if not folder and out.is_dir():
        raise ValueError(f"--out {out}: a folder is there; give the file's path")


def run_simulate(args: argparse.Namespace) -> int:
    from semiad.simulate import detector_for, simulate

    writable(args.out, folder=True)
    samples = load_dataset(args)
    if samples.truth is None:
        print(f"{samples.name}: no ground truth, so there is nothing for the oracle to answer with", file=sys.stderr)
        return 2
    n, share = len(samples.truth), float(samples.truth.mean())
    if share == 0 or share > 0.5:  # nothing to find, or "anomalies" are the bulk: often class labels read as truth
        print(f"note: the ground truth marks {int(samples.truth.sum())} of {n} samples as anomalies"
              + ("" if share == 0 else " (more than half: is it class labels? non-zero counts as anomalous)"),
              file=sys.stderr)
    options: dict[str, Any] = {"contamination": args.contamination}
    if args.mix:
        options["weights"] = {k: float(v) for k, v in key_values(args.mix).items()}
    rep = representation(args, samples)
    params = detector_params(args, samples, rep)
    X = model_inputs(args, samples, rep)
    det = detector_for(args.method, {"seed": args.seed, **params})  # fitted in place: its choices are said below
    sim = simulate(X, samples.truth, method=args.method, strategy=args.strategy, rounds=args.rounds,
                   batch=args.batch, seed=args.seed, params=params, detector=det,
                   strategy_options=options, ids=samples.ids, data_name=samples.name,
                   log=None if args.quiet else print)
    say_how_it_ranks(det)
    paths = sim.save(args.out)
    s = sim.summary
    every = s["anomalies_found"] == s["n_anomalies"] and s["last_found_at"] and s["last_found_at"] < s["n_labeled"]
    print(f"{s['anomalies_found']} of {s['n_anomalies']} anomalies found with {s['n_labeled']} labels "
          + (f"(every one by label {s['last_found_at']}; " if every else "(")
          + f"precision {_num(s['query_precision'])}); AUC on the unlabeled rest {_num(s['auc_unlabeled_start'])} → "
          + (_num(s["auc_unlabeled"]) if s["auc_unlabeled"] is not None else
             "- (no anomaly left unlabeled)" if s["anomalies_found"] == s["n_anomalies"] else "- (one class left)")
          + f"; WSS@95 {_num(s['wss_95'])}")
    print("wrote " + ", ".join(str(p) for p in paths.values()))
    return 0


def say_how_it_ranks(det: Any) -> None:
    """What the default loop decided from the data itself, as the Train page says it: a table ranked as
    feature vectors, photos' pixels left out of the first ranking."""
    if getattr(det, "treated_as_feature_vectors", lambda: False)():
        print("note: the table's columns look like a network's feature vectors (embeddings), so its rows are ranked "
              "and learned as image features are (unit length, no raw-column view); --set vector_gate=False ranks "
              "its columns as a table", file=sys.stderr)
    if getattr(det, "pixels_kept_out", lambda: False)():
        print("note: the pixels stay out of the first ranking (under a quarter of them are plain background, as in "
              "photos)", file=sys.stderr)


def _num(v: Any) -> str:
    """A figure for a summary line; '-' where it is undefined (e.g. AUC once every anomaly is labeled)."""
    return "-" if v is None else f"{round(v, 3) + 0.0:.3f}"  # + 0.0: no "-0.000"


# ----- fit and score ----------------------------------------------------------------------------

SEMI_TARGET = {"normal": 1, "anomalous": -1, "unlabeled": 0}


def read_labels(path: Path, ids: Sequence[str], left_out: Collection[str] = ()) -> Any:
    """Semi-targets (+1 normal, −1 anomaly, 0 unlabeled) for `ids` from a labels file as the app reads
    one (`semiad.data.read_label_table`: CSV or the export's JSON, an id and a label column; labels
    normal / anomalous or +1 / −1; a later row wins). `left_out`: ids the loader skipped, named as
    such in the error."""
    import numpy as np

    from semiad.data import known_id, read_label_table

    table = read_label_table(path)
    position = {str(k): i for i, k in enumerate(ids)}
    y = np.zeros(len(ids), dtype=np.int64)
    unknown = [w for w in table["sample_id"] if known_id(w, position) is None]
    if unknown:
        left = [w for w in unknown if known_id(w, left_out) is not None]
        if left:
            raise ValueError(f"{path.name}: id {left[0]!r} was left out of the data (it cannot be used)"
                             + (f", and {len(left) - 1} more" if len(left) > 1 else ""))
        named = ", ".join(map(repr, unknown[:3])) + (", …" if len(unknown) > 3 else "")
        raise ValueError(f"{path.name}: {len(unknown)} of its {len(table)} ids are not samples of the data "
                         f"({named}); the data's ids are such as {', '.join(map(repr, list(ids)[:2]))}")
    for written, word in zip(table["sample_id"], table["label"]):
        key = known_id(written, position)
        if word not in SEMI_TARGET:
            raise ValueError(f"{path.name}: label {word!r} for {key!r} is not normal/anomalous or +1/-1")
        y[position[key]] = SEMI_TARGET[word]
    return y


def add_fit(subparsers: Any) -> None:
    p = subparsers.add_parser("fit", help="fit a detector on data (and labels) and save the model",
                              description="Fit with the app's defaults for the data (method, representation, "
                                          "settings) and save the model, which remembers its representation.")
    add_data_options(p)
    add_detector_options(p)
    p.add_argument("--labels", type=Path,
                   help="labels with id and label columns (normal/anomalous): a CSV, or the app's CSV or JSON export")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, required=True, help="model file to write (.pt)")
    p.set_defaults(func=run_fit)


def run_fit(args: argparse.Namespace) -> int:
    from semiad.detectors import make

    writable(args.out, folder=False)
    samples = load_dataset(args)
    y = None
    if args.labels:
        left_out = set(samples.input_ids or ()) - set(samples.ids)
        y = read_labels(args.labels, samples.ids, left_out)
    rep = representation(args, samples)
    det = make(args.method, **detector_params(args, samples, rep))  # a bad --set fails before the features
    # images: their channels too, so that `score` refuses gray images for a colour model (features alone
    # would fit: gray is repeated to three channels)
    det.representation_ = {**rep, "channels": int(samples.X.shape[1])} if samples.kind == "image" else rep
    det.columns_ = samples.columns
    X = model_inputs(args, samples, rep)
    det.fit(X, y)
    det.save(args.out)
    say_how_it_ranks(det)
    normal, anomalous = (0, 0) if y is None else (int((y == 1).sum()), int((y == -1).sum()))
    print(f"fitted {args.method} on {len(samples)} samples ({normal + anomalous} labeled: {normal} normal, "
          f"{anomalous} anomalous) of {samples.name}; wrote {args.out}")
    return 0


def add_score(subparsers: Any) -> None:
    p = subparsers.add_parser("score", help="score data with a saved model into a CSV (id, score)",
                              description="Turn the data into the model's representation and write one row per "
                                          "sample, in input order: id, score (higher = more anomalous).")
    add_data_options(p)
    p.add_argument("--model", type=Path, required=True, help="a model file written by fit (or the app's run folder)")
    p.add_argument("--device", default="auto", help="auto, cpu or cuda (default auto)")
    p.add_argument("--out", type=Path, required=True, help="CSV to write")
    p.set_defaults(func=run_score)


def run_score(args: argparse.Namespace) -> int:
    import pandas as pd

    from semiad import represent
    from semiad.detectors import BaseDetector

    writable(args.out, folder=False)
    det = BaseDetector.load(args.model, device=args.device)
    samples = match_columns(load_dataset(args), getattr(det, "columns_", None))
    fitted = getattr(det, "representation_", None) or {"kind": "pixels"}
    if represent.uses_features(fitted) and samples.kind != "image":
        raise ValueError(f"{samples.name}: the model was fitted on images (their {fitted['kind']}); this is a table")
    channels = {1: "gray (1 channel)", 3: "colour (3 channels)"}
    if samples.kind == "image" and fitted.get("channels", samples.X.shape[1]) != samples.X.shape[1]:
        raise ValueError(f"{samples.name}: the model was fitted on {channels[fitted['channels']]} images; these are "
                         f"{channels[samples.X.shape[1]]}: fit a model on images like these")
    rep = represent.check(fitted, images=samples.kind == "image")
    X = model_inputs(args, samples, rep)
    scores = pd.Series(det.decision_function(X), index=samples.ids)
    ids = samples.input_ids or samples.ids  # one row per input sample: an unusable one's score is empty
    args.out.parent.mkdir(parents=True, exist_ok=True)
    pd.DataFrame({"id": ids, "score": scores.reindex(ids).to_numpy()}).to_csv(args.out, index=False)
    if len(ids) > len(samples):
        print(f"{len(ids) - len(samples)} of {len(ids)} samples could not be scored: their score is empty",
              file=sys.stderr)
    print(f"scored {len(samples)} samples with {det.method}; wrote {args.out}")
    return 0


def match_columns(samples: Any, trained: list[str] | None) -> Any:
    """A table's columns in the order the model was fitted on, matched by name; refused, naming them,
    when some are missing or new. Positional where either side has no names (a .npz, images)."""
    if trained is None or samples.columns is None or samples.columns == trained:
        return samples
    missing = [c for c in trained if c not in samples.columns]
    extra = [c for c in samples.columns if c not in trained]
    if missing or extra:
        raise ValueError(f"{samples.name}: the model was fitted on other columns (missing: "
                         f"{', '.join(missing) or 'none'}; not in the model: {', '.join(extra) or 'none'}); "
                         "a label column needs --label-column")
    where = {c: i for i, c in enumerate(samples.columns)}
    samples.X = samples.X[:, [where[c] for c in trained]]
    samples.columns = list(trained)
    return samples


def add_app(subparsers: Any) -> None:
    p = subparsers.add_parser("app", help="start the web app (streamlit run app.py)",
                              description="Start the app with Streamlit from where semiad is installed; the "
                                          "workspace is ./workspace or SEMIAD_HOME. It binds to 127.0.0.1 unless "
                                          "server.address is configured (a config.toml, STREAMLIT_SERVER_ADDRESS, "
                                          "or --server.address): the app has no login. Other options go to "
                                          "`streamlit run`, e.g. `semiad app --server.port 8502`.")
    p.set_defaults(func=run_app, passthrough=True)


def app_path() -> Path:
    """app.py, installed beside the semiad package (with an editable install: this checkout's)."""
    return Path(__file__).resolve().parent.parent / "app.py"


def _address_configured(options: Sequence[str], app: Path, env: Mapping[str, str]) -> bool:
    """Whether server.address is set where Streamlit reads it: its options, the environment, or a
    config.toml (global, in the working folder, or beside app.py)."""
    import tomllib

    if any(o == "--server.address" or o.startswith("--server.address=") for o in options):
        return True
    if env.get("STREAMLIT_SERVER_ADDRESS"):
        return True
    for config in (Path.home() / ".streamlit", Path.cwd() / ".streamlit", app.parent / ".streamlit"):
        try:
            if "address" in tomllib.loads((config / "config.toml").read_text()).get("server", {}):
                return True
        except (OSError, tomllib.TOMLDecodeError):
            continue
    return False


def streamlit_command(options: Sequence[str] = (), env: Mapping[str, str] | None = None) -> list[str]:
    """The `streamlit run app.py` command line (an argument list, never a shell string)."""
    app = app_path()
    command = [sys.executable, "-m", "streamlit", "run", str(app)]
    if not _address_configured(options, app, os.environ if env is None else env):
        command += ["--server.address", "127.0.0.1"]
    return command + list(options)


def run_app(args: argparse.Namespace) -> int:
    import subprocess

    if not app_path().is_file():
        raise ValueError(f"app.py is not installed beside semiad ({app_path()})")
    proc = subprocess.Popen(streamlit_command(args.passed))
    while True:
        try:
            return proc.wait()
        except KeyboardInterrupt:  # the terminal sent Ctrl-C to Streamlit too: let it shut down
            continue


def add_worker(subparsers: Any) -> None:
    # its options (and --help) are the worker's own: state.worker.main reads them
    p = subparsers.add_parser("worker", help="run training jobs from the store's queue (e.g. on a GPU machine)",
                              add_help=False)
    p.set_defaults(func=run_worker, passthrough=True)


def run_worker(args: argparse.Namespace) -> int:
    # The one place where semiad reaches up to state/: the command line is the whole product's entry.
    from state import worker

    worker.main(args.passed)
    return 0


# ----- the parser -------------------------------------------------------------------------------

COMMANDS: list[Callable[[Any], None]] = [add_app, add_worker, add_simulate, add_fit, add_score]


def build_parser() -> argparse.ArgumentParser:
    """The `python -m semiad` parser with one subparser per entry of COMMANDS."""
    parser = argparse.ArgumentParser(prog="semiad", description="semiad: anomaly detection with a human in the "
                                     "loop. The same as `python -m semiad`.")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for add in COMMANDS:
        add(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args, passed = parser.parse_known_args(argv)
    if passed and not getattr(args, "passthrough", False):
        parser.error(f"unrecognized arguments: {' '.join(passed)}")
    args.passed = passed  # app: options for `streamlit run`; worker: the worker's options
    try:
        return args.func(args)
    except (ValueError, TypeError) as e:  # bad data or options (e.g. an unknown --set name): one line, not a traceback
        print(f"error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
