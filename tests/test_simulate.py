"""The oracle loop and the CLI on the bundled digits, with tiny epochs (seconds)."""
import json

import numpy as np
import pandas as pd
import pytest

from semiad.cli import build_parser, main
from semiad.data import load_digits
from semiad.simulate import detector_for, simulate

TINY = {"pretrain_epochs": 1, "epochs": 1, "finetune_epochs": 1, "batch_size": 64, "device": "cpu"}


@pytest.fixture(scope="module")
def digits():
    return load_digits()


def test_two_rounds_on_digits(digits):
    sim = simulate(digits.X, digits.truth, strategy="mixed", rounds=2, batch=10, params=TINY, ids=digits.ids,
                   test=(digits.X[:50], digits.truth[:50]))
    assert [r["round"] for r in sim.rounds] == [0, 1, 2]
    assert [r["n_labeled"] for r in sim.rounds] == [0, 10, 20]
    # 20 distinct samples were queried, and the oracle's answers are the ground truth.
    idx = [q["index"] for q in sim.queries]
    assert len(set(idx)) == 20
    assert all(q["anomaly"] == digits.truth[q["index"]] for q in sim.queries)
    assert all(q["id"] == digits.ids[q["index"]] for q in sim.queries)
    found = int(digits.truth[idx].sum())
    assert sim.rounds[-1]["anomalies_found"] == found == sim.summary["anomalies_found"]
    assert sum(r["batch_anomalies"] for r in sim.rounds) == found
    assert 0 <= sim.rounds[-1]["auc_unlabeled"] <= 1 and "auc_test" in sim.rounds[-1]
    assert sim.config["detector"]["oversample_labeled"] is True  # a few labels in every batch
    assert sum(q["reason"] == "random audit" for q in sim.queries) == 2  # 10% of each batch of 10


def test_warm_start_from_a_fitted_detector_keeps_the_original(digits):
    det = detector_for("deepsad", TINY).fit(digits.X)
    before = det.decision_function(digits.X[:5])
    sim = simulate(digits.X, digits.truth, strategy="top", rounds=1, batch=5, detector=det)
    assert sim.rounds[0]["fit_s"] == 0.0
    assert np.array_equal(det.decision_function(digits.X[:5]), before)  # the loop trained a copy
    # top picks from the first model: the five highest first-fit scores.
    first = det.decision_function(digits.X)
    assert sorted(q["index"] for q in sim.queries) == sorted(np.argsort(-first)[:5].tolist())


def test_cli_writes_its_files(tmp_path, capsys):
    out = tmp_path / "sim"
    status = main(["simulate", "--epochs", "1", "1", "1", "--rounds", "2", "--batch", "8", "--strategy", "top",
                   "--device", "cpu", "--set", "batch_size=64", "--out", str(out), "--quiet"])
    assert status == 0
    rounds = pd.read_csv(out / "rounds.csv")
    assert rounds["n_labeled"].tolist() == [0, 8, 16]
    record = json.loads((out / "rounds.json").read_text())
    assert record["config"]["strategy"] == "top" and record["config"]["detector"]["finetune_epochs"] == 1
    assert len(record["queries"]) == 16 == len(pd.read_csv(out / "queries.csv"))
    assert (out / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "anomalies found with 16 labels" in capsys.readouterr().out


def test_cli_reads_a_tabular_npz(tmp_path):
    rng = np.random.default_rng(0)
    X = np.r_[rng.normal(size=(90, 5)), rng.normal(4, 1, size=(10, 5))]
    y = np.r_[np.zeros(90), np.ones(10)].astype(np.int64)
    np.savez(tmp_path / "t.npz", X=X, y=y)
    status = main(["simulate", "--data", str(tmp_path / "t.npz"), "--epochs", "1", "1", "1", "--rounds", "1",
                   "--batch", "5", "--device", "cpu", "--out", str(tmp_path / "o"), "--quiet"])
    assert status == 0 and len(pd.read_csv(tmp_path / "o" / "rounds.csv")) == 2


def test_parser_is_extensible_and_reports_bad_input(tmp_path, capsys):
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    assert "simulate" in sub.choices
    assert main(["simulate", "--data", str(tmp_path / "missing.npz"), "--out", str(tmp_path)]) == 2
    assert "no such file" in capsys.readouterr().err
    assert main(["simulate", "--set", "no_such_option=1", "--out", str(tmp_path)]) == 2
    assert "no_such_option" in capsys.readouterr().err
