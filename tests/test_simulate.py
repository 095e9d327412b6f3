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


def test_top_audit_audits_exactly_while_the_last_labels_hold_no_anomaly(digits):
    """The loop hands "top-audit" the order of its answers: a round is a random audit exactly when the
    answers before it end in `audit_after` normals or more, and top scores otherwise."""
    sim = simulate(digits.X, digits.truth, method="iforest", strategy="top-audit", rounds=8, batch=10,
                   strategy_options={"audit_after": 10})
    answers: list[int] = []
    kinds = []
    for r in range(1, 9):
        batch = [q for q in sim.queries if q["round"] == r]
        streak = len(answers) - 1 - max((i for i, a in enumerate(answers) if a), default=-1)
        audit = all(q["reason"] == f"random audit: no anomaly in the last {streak} labels" for q in batch)
        assert audit == (streak >= 10), (r, streak, batch[0]["reason"])
        assert audit or all(q["reason"].startswith("top score") for q in batch)
        kinds.append(audit)
        answers += [q["anomaly"] for q in batch]
    assert any(kinds) and not all(kinds)  # both kinds of batch happened
    assert sim.rounds[-1]["audit_anomaly_rate"] == pytest.approx(
        np.mean([q["anomaly"] for q in sim.queries if q["reason"].startswith("random audit")]))


def test_a_slipping_oracle_labels_from_its_answers_and_is_scored_on_the_truth(digits):
    """`answers`: the labels the loop learns from are the oracle's answers (here every sample is said to
    be an anomaly), while the finds and AUCs count the ground truth."""
    sim = simulate(digits.X, digits.truth, method="iforest", strategy="mixed", rounds=2, batch=10,
                   answers=np.ones_like(digits.truth))
    idx = [q["index"] for q in sim.queries]
    assert all(q["anomaly"] == digits.truth[q["index"]] for q in sim.queries)
    assert sim.summary["anomalies_found"] == int(digits.truth[idx].sum()) < len(idx)
    audited = [q["index"] for q in sim.queries if q["reason"] == "random audit"]
    assert len(audited) == 2 and digits.truth[audited].sum() < 2
    assert sim.rounds[-1]["audit_anomaly_rate"] == 1.0  # from what the expert said, not the truth
    with pytest.raises(ValueError, match="answers has 3 entries"):
        simulate(digits.X, digits.truth, method="iforest", rounds=1, answers=np.zeros(3))


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
    status = main(["simulate", "--method", "deepsad", "--epochs", "1", "1", "1", "--rounds", "2", "--batch", "8",
                   "--strategy", "top",
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
    assert main(["simulate", "--method", "deepsad", "--set", "no_such_option=1", "--out", str(tmp_path)]) == 2
    assert "no_such_option" in capsys.readouterr().err


def test_settings_out_of_the_train_pages_range_are_refused_before_any_work(tmp_path, capsys):
    """--epochs and --set are held to the ranges the Train page allows (one place: each method's Params);
    --rounds / --batch when the command line is read. GANomaly's epochs may be fractions."""
    from semiad.settings import check_params

    for argv, said in ((["--method", "deepsad", "--epochs", "1", "0", "1"], "epochs: Deep SAD epochs must be between"),
                       (["--set", "k=0"], "k: k nearest neighbours must be between 1 and 1000, got 0"),
                       (["--set", "k=2.5"], "must be a whole number"),
                       (["--set", "eta=fast"], "must be a number")):
        assert main(["simulate", *argv, "--out", str(tmp_path)]) == 2
        assert said in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["simulate", "--batch", "0", "--out", str(tmp_path)])
    assert "--batch: must be at least 1, got 0" in capsys.readouterr().err
    for device, said in (("foo", "say auto, cpu or cuda"), ("cuda:0", "no CUDA GPU is available here")):
        if device.startswith("cuda") and __import__("torch").cuda.is_available():
            continue
        assert main(["simulate", "--method", "deepsad", "--device", device, "--out", str(tmp_path)]) == 2
        assert f"device {device!r}: {said}" in capsys.readouterr().err
    (tmp_path / "a_file").write_text("x")
    for argv in (["simulate", "--out", str(tmp_path / "a_file")], ["fit", "--out", str(tmp_path)],
                 ["score", "--model", str(tmp_path / "m.pt"), "--out", str(tmp_path)]):
        assert main(argv) == 2
        assert "--out " in capsys.readouterr().err
    assert check_params("ganomaly", {"epochs": 0.5, "batch_size": 64.0}) == {"epochs": 0.5, "batch_size": 64}
    assert check_params("deepsad", {"pretrain_epochs": 0, "unknown": -1}) == {"pretrain_epochs": 0, "unknown": -1}
    assert not (tmp_path / "rounds.csv").exists()


def test_cli_default_loop_ends_cleanly_when_everything_is_labeled(tmp_path, capsys):
    """The app's default loop on tables; 3 rounds × 40 labels a 100-row table to the end."""
    rng = np.random.default_rng(0)
    X = np.r_[rng.normal(size=(90, 4)), rng.normal(5, 1, size=(10, 4))]
    np.savez(tmp_path / "t.npz", X=X, y=np.r_[np.zeros(90), np.ones(10)])
    status = main(["simulate", "--data", str(tmp_path / "t.npz"), "--rounds", "3", "--batch", "40",
                   "--out", str(tmp_path / "o"), "--quiet"])
    out = capsys.readouterr().out
    assert status == 0, out
    assert "10 of 10 anomalies found with 100 labels (every one by label 10; precision 0.100)" in out
    assert "→ - (no anomaly left unlabeled)" in out and "-0.000" not in out
    summary = json.loads((tmp_path / "o" / "rounds.json").read_text())["summary"]
    assert summary["last_found_at"] == 10
    assert json.loads((tmp_path / "o" / "rounds.json").read_text())["config"]["method"] == "fusion"


def test_fit_then_score_tomorrows_batch(tmp_path, capsys):
    rng = np.random.default_rng(1)
    X = np.r_[rng.normal(size=(190, 3)), rng.normal(6, 1, size=(10, 3))]
    np.savez(tmp_path / "today.npz", X=X)
    pd.DataFrame({"id": ["row-195", "row-3"], "label": ["anomalous", "normal"]}).to_csv(tmp_path / "l.csv", index=False)
    assert main(["fit", "--data", str(tmp_path / "today.npz"), "--labels", str(tmp_path / "l.csv"),
                 "--device", "cpu", "--out", str(tmp_path / "m.pt")]) == 0
    assert "(2 labeled:" in capsys.readouterr().out
    new = np.r_[rng.normal(size=(5, 3)), [[6.0, 6.0, 6.0]]]
    np.savez(tmp_path / "tomorrow.npz", X=new)
    assert main(["score", "--model", str(tmp_path / "m.pt"), "--data", str(tmp_path / "tomorrow.npz"),
                 "--device", "cpu", "--out", str(tmp_path / "s.csv")]) == 0
    scores = pd.read_csv(tmp_path / "s.csv")
    assert scores.columns.tolist() == ["id", "score"] and scores["id"].tolist() == [f"row-{i}" for i in range(6)]
    assert scores["score"].idxmax() == 5
    pd.DataFrame({"id": ["row-999", "row-3", "5", "6", "7"], "label": ["anomalous"] * 5}).to_csv(tmp_path / "bad.csv",
                                                                                           index=False)
    assert main(["fit", "--data", str(tmp_path / "today.npz"), "--labels", str(tmp_path / "bad.csv"),
                 "--out", str(tmp_path / "m2.pt")]) == 2
    # every unknown id counted, and the form the data's ids take (a plain 5 is no id of a .npz's rows)
    assert ("bad.csv: 4 of its 5 ids are not samples of the data ('row-999', '5', '6', …); the data's ids are "
            "such as 'row-0', 'row-1'") in capsys.readouterr().err
    # the app's JSON export reads the same way as its CSV (one reader for the app's import and the CLI)
    (tmp_path / "l.json").write_text(json.dumps([{"sample_id": "row-195", "label": "anomalous", "annotator": "ann"},
                                                 {"sample_id": "row-3", "label": "normal", "annotator": "ann"}]))
    assert main(["fit", "--data", str(tmp_path / "today.npz"), "--labels", str(tmp_path / "l.json"),
                 "--device", "cpu", "--out", str(tmp_path / "m3.pt")]) == 0
    assert "(2 labeled:" in capsys.readouterr().out


def test_score_writes_every_input_sample_even_those_it_cannot_score(tmp_path, capsys):
    rng = np.random.default_rng(2)
    np.savez(tmp_path / "today.npz", X=rng.normal(size=(60, 3)))
    assert main(["fit", "--data", str(tmp_path / "today.npz"), "--device", "cpu", "--out", str(tmp_path / "m.pt")]) == 0
    new = rng.normal(size=(6, 3))
    new[2, 1] = np.nan
    np.savez(tmp_path / "tomorrow.npz", X=new)
    assert main(["score", "--model", str(tmp_path / "m.pt"), "--data", str(tmp_path / "tomorrow.npz"),
                 "--out", str(tmp_path / "s.csv")]) == 0
    err = capsys.readouterr().err
    assert "tomorrow.npz row 2: missing or non-finite value" in err and "1 of 6 samples could not be scored" in err
    scores = pd.read_csv(tmp_path / "s.csv")
    assert scores["id"].tolist() == [f"row-{i}" for i in range(6)]
    assert scores["score"].isna().tolist() == [False, False, True, False, False, False]
    pd.DataFrame({"id": ["row-2"], "label": ["anomalous"]}).to_csv(tmp_path / "l.csv", index=False)
    assert main(["fit", "--data", str(tmp_path / "tomorrow.npz"), "--labels", str(tmp_path / "l.csv"),
                 "--out", str(tmp_path / "m2.pt")]) == 2
    assert "id 'row-2' was left out of the data" in capsys.readouterr().err
    # a CSV's own ids keep their places too
    pd.DataFrame({"ID": ["a", "b", "c"], "x": [0.1, None, 0.3], "y": [1.0, 2.0, 3.0], "z": [0.0, 0.0, 1.0]}
                 ).to_csv(tmp_path / "t.csv", index=False)
    assert main(["score", "--model", str(tmp_path / "m.pt"), "--data", str(tmp_path / "t.csv"),
                 "--out", str(tmp_path / "c.csv")]) == 0
    scores = pd.read_csv(tmp_path / "c.csv")
    assert scores["id"].tolist() == ["a", "b", "c"] and scores["score"].isna().tolist() == [False, True, False]
    # so does a line with more fields than the header (semicolons, decimal commas, an id column)
    (tmp_path / "r.csv").write_text("ID;x;y;z\na;0,1;1;0\nb;0,2;2;0;9\nc;0,3;3;1\n")
    assert main(["score", "--model", str(tmp_path / "m.pt"), "--data", str(tmp_path / "r.csv"),
                 "--out", str(tmp_path / "r_scores.csv")]) == 0
    assert "r.csv row 1 (id b), line 3: expected 4 fields, saw 5" in capsys.readouterr().err
    scores = pd.read_csv(tmp_path / "r_scores.csv")
    assert scores["id"].tolist() == ["a", "b", "c"] and scores["score"].isna().tolist() == [False, True, False]


def test_an_unreadable_image_keeps_its_place_and_is_reported(tmp_path):
    from PIL import Image

    from semiad.data import load_image_folder

    (tmp_path / "imgs").mkdir()
    for name in ("a.png", "c.png"):
        Image.fromarray(np.zeros((8, 8), np.uint8)).save(tmp_path / "imgs" / name)
    (tmp_path / "imgs" / "b.png").write_bytes(b"not a png")
    s = load_image_folder(tmp_path / "imgs")
    assert s.ids == ["a.png", "c.png"] and s.input_ids == ["a.png", "b.png", "c.png"]
    assert [what for what, _ in s.skipped] == ["b.png"]
    (tmp_path / "imgs" / "b.png").unlink()
    assert load_image_folder(tmp_path / "imgs").input_ids is None


@pytest.mark.parametrize("layout", ["nhw", "nhwc", "nchw", "float"])
def test_an_image_npz_is_an_image_set(tmp_path, layout):
    from semiad.data import load

    rng = np.random.default_rng(0)
    gray = rng.integers(0, 256, size=(6, 20, 20), dtype=np.uint8)
    X = {"nhw": gray, "nhwc": np.stack([gray] * 3, -1), "nchw": np.stack([gray] * 3, 1),
         "float": gray / 255.0}[layout]
    np.savez(tmp_path / "img.npz", X=X, y=[0, 0, 0, 0, 0, 1])
    s = load(tmp_path / "img.npz")
    channels = 3 if layout in ("nhwc", "nchw") else 1
    assert s.kind == "image" and s.X.shape == (6, channels, 28 if channels == 1 else 32, 28 if channels == 1 else 32)
    assert s.truth.tolist() == [0, 0, 0, 0, 0, 1] and 0 <= s.X.min() and s.X.max() <= 1
    np.savez(tmp_path / "bad.npz", X=gray * 2.0)
    with pytest.raises(ValueError, match="float images must lie in"):
        load(tmp_path / "bad.npz")


def test_simulate_on_a_folder_with_anomaly_folders(tmp_path, capsys):
    from PIL import Image

    rng = np.random.default_rng(0)
    for folder, n, level in (("ok", 30, 40), ("bad", 4, 220)):
        (tmp_path / "imgs" / folder).mkdir(parents=True)
        for i in range(n):
            pixels = np.clip(rng.normal(level, 10, size=(12, 12)), 0, 255).astype(np.uint8)
            Image.fromarray(pixels).save(tmp_path / "imgs" / folder / f"{i}.png")
    status = main(["simulate", "--data", str(tmp_path / "imgs"), "--anomaly-folders", "bad", "--representation",
                   "pixels", "--rounds", "1", "--batch", "4", "--out", str(tmp_path / "o"), "--quiet"])
    assert status == 0
    assert "4 of 4 anomalies found with 4 labels" in capsys.readouterr().out


def test_simulate_on_a_csv_takes_ground_truth_from_the_label_column_and_not_as_a_feature(tmp_path, capsys):
    rng = np.random.default_rng(0)
    truth = np.zeros(300, dtype=int)
    truth[:15] = 1
    lines = ["id,a,b,colour,is_bad"] + [f"s{i},{rng.normal() + 10 * t},{rng.normal()},red,{t}"
                                           for i, t in enumerate(truth)]
    (tmp_path / "t.csv").write_text("\n".join(lines) + "\n")
    args = ["simulate", "--data", str(tmp_path / "t.csv"), "--rounds", "2", "--batch", "15", "--quiet"]
    assert main(args + ["--label-column", "is_bad", "--out", str(tmp_path / "o")]) == 0
    assert "15 of 15 anomalies found with 30 labels" in capsys.readouterr().out
    from argparse import Namespace

    from semiad.cli import load_dataset

    samples = load_dataset(Namespace(data=str(tmp_path / "t.csv"), label_column="is_bad", anomaly_folders=[]))
    assert samples.X.shape == (300, 2) and samples.truth.sum() == 15  # a and b; the id, text and truth are not features
    assert main(args + ["--out", str(tmp_path / "o2")]) != 0  # no ground truth without the column
    assert "no ground truth" in capsys.readouterr().err
    np.savez(tmp_path / "t.npz", X=rng.normal(size=(20, 3)))
    npz = ["simulate", "--data", str(tmp_path / "t.npz"), "--label-column", "y", "--out", str(tmp_path / "o3")]
    assert main(npz) != 0
    assert "applies to a .csv" in capsys.readouterr().err


def test_score_matches_a_tables_columns_by_name_and_keeps_ids_as_written(tmp_path, capsys):
    rng = np.random.default_rng(3)
    table = pd.DataFrame(rng.normal(size=(40, 3)), columns=["f0", "f1", "f2"])
    table.insert(0, "id", [f"{i:03d}" for i in range(40)])  # 000, 001, …: text, never numbers
    table.to_csv(tmp_path / "today.csv", index=False)
    pd.DataFrame({"id": ["007"], "label": ["anomalous"]}).to_csv(tmp_path / "l.csv", index=False)
    assert main(["fit", "--data", str(tmp_path / "today.csv"), "--labels", str(tmp_path / "l.csv"), "--method",
                 "iforest", "--out", str(tmp_path / "m.pt")]) == 0
    assert "(1 labeled: 0 normal, 1 anomalous)" in capsys.readouterr().out
    assert main(["score", "--model", str(tmp_path / "m.pt"), "--data", str(tmp_path / "today.csv"),
                 "--out", str(tmp_path / "s.csv")]) == 0
    same = pd.read_csv(tmp_path / "s.csv", dtype={"id": str})
    assert same["id"].tolist() == table["id"].tolist()
    table[["id", "f2", "f0", "f1"]].to_csv(tmp_path / "shuffled.csv", index=False)  # the columns in another order
    assert main(["score", "--model", str(tmp_path / "m.pt"), "--data", str(tmp_path / "shuffled.csv"),
                 "--out", str(tmp_path / "s2.csv")]) == 0
    assert np.array_equal(pd.read_csv(tmp_path / "s2.csv")["score"], same["score"])
    table.rename(columns={"f2": "g2"}).to_csv(tmp_path / "renamed.csv", index=False)
    assert main(["score", "--model", str(tmp_path / "m.pt"), "--data", str(tmp_path / "renamed.csv"),
                 "--out", str(tmp_path / "s3.csv")]) == 2
    assert "missing: f2; not in the model: g2" in capsys.readouterr().err


def test_labels_0_and_1_are_refused_as_ambiguous_and_semi_targets_are_read(tmp_path, capsys):
    rng = np.random.default_rng(4)
    np.savez(tmp_path / "d.npz", X=rng.normal(size=(30, 3)))
    pd.DataFrame({"id": ["row-1", "row-2"], "label": [1, 0]}).to_csv(tmp_path / "01.csv", index=False)
    assert main(["fit", "--data", str(tmp_path / "d.npz"), "--labels", str(tmp_path / "01.csv"),
                 "--method", "iforest", "--out", str(tmp_path / "m.pt")]) == 2
    assert "labels 0 and 1 are ambiguous" in capsys.readouterr().err
    pd.DataFrame({"id": ["row-1", "row-2", "row-3"], "label": [1, -1, 0]}).to_csv(tmp_path / "pm.csv", index=False)
    assert main(["fit", "--data", str(tmp_path / "d.npz"), "--labels", str(tmp_path / "pm.csv"),
                 "--method", "iforest", "--out", str(tmp_path / "m.pt")]) == 0
    assert "(2 labeled: 1 normal, 1 anomalous)" in capsys.readouterr().out
    # words with 0 for "no label", and ids with spaces around them (a hand-written file), are read
    (tmp_path / "words.csv").write_text("id,label\nrow-1,normal\n row-2 ,anomalous\nrow-3,0\nrow-4,+1\n")
    assert main(["fit", "--data", str(tmp_path / "d.npz"), "--labels", str(tmp_path / "words.csv"),
                 "--method", "iforest", "--out", str(tmp_path / "m.pt")]) == 0
    assert "(3 labeled: 2 normal, 1 anomalous)" in capsys.readouterr().out


def test_score_reads_an_app_run_folder_and_refuses_what_is_not_a_model_in_one_line(tmp_path, capsys):
    rng = np.random.default_rng(5)
    np.savez(tmp_path / "d.npz", X=rng.normal(size=(30, 3)))
    run = tmp_path / "runs" / "1"
    assert main(["fit", "--data", str(tmp_path / "d.npz"), "--method", "iforest", "--out", str(run / "model.pt")]) == 0
    assert main(["score", "--model", str(run), "--data", str(tmp_path / "d.npz"),
                 "--out", str(tmp_path / "s.csv")]) == 0
    (tmp_path / "text.pt").write_text("not a model")
    (tmp_path / "cut.pt").write_bytes((run / "model.pt").read_bytes()[:500])
    for bad, why in (("text.pt", "not a plain weights file"), ("cut.pt", "is not a semiad model file"),
                     ("nowhere.pt", "cannot read the model")):
        capsys.readouterr()
        assert main(["score", "--model", str(tmp_path / bad), "--data", str(tmp_path / "d.npz"),
                     "--out", str(tmp_path / "x.csv")]) == 2
        err = capsys.readouterr().err
        assert why in err and "Traceback" not in err, err


def test_score_refuses_images_of_another_colour_and_a_table_for_an_image_model(tmp_path, capsys):
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "rgb.npz", X=rng.integers(0, 256, size=(30, 32, 32, 3), dtype=np.uint8))
    np.savez(tmp_path / "gray.npz", X=rng.integers(0, 256, size=(30, 32, 32), dtype=np.uint8))
    np.savez(tmp_path / "table.npz", X=rng.normal(size=(30, 4)))
    assert main(["fit", "--data", str(tmp_path / "rgb.npz"), "--method", "iforest", "--representation", "features",
                 "--size", "32", "--out", str(tmp_path / "m.pt")]) == 0
    assert main(["score", "--model", str(tmp_path / "m.pt"), "--data", str(tmp_path / "gray.npz"),
                 "--out", str(tmp_path / "s.csv")]) == 2  # gray repeated to three channels would have passed
    assert ("gray.npz: the model was fitted on colour (3 channels) images; these are gray (1 channel)"
            in capsys.readouterr().err)
    assert main(["score", "--model", str(tmp_path / "m.pt"), "--data", str(tmp_path / "table.npz"),
                 "--out", str(tmp_path / "s.csv")]) == 2
    assert "table.npz: the model was fitted on images (their features); this is a table" in capsys.readouterr().err
    assert main(["score", "--model", str(tmp_path / "m.pt"), "--data", str(tmp_path / "rgb.npz"),
                 "--out", str(tmp_path / "s.csv")]) == 0


def test_simulate_and_fit_say_when_a_table_is_ranked_as_feature_vectors(tmp_path, capsys):
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "emb.npz", X=rng.normal(size=(120, 300)), y=(np.arange(120) < 6).astype(int))
    assert main(["simulate", "--data", str(tmp_path / "emb.npz"), "--rounds", "1", "--batch", "10",
                 "--out", str(tmp_path / "o"), "--quiet"]) == 0
    assert "look like a network's feature vectors" in capsys.readouterr().err
    assert main(["fit", "--data", str(tmp_path / "emb.npz"), "--set", "vector_gate=False",
                 "--out", str(tmp_path / "m.pt")]) == 0
    assert "feature vectors" not in capsys.readouterr().err  # said only where it happened


def test_simulate_notes_ground_truth_that_looks_wrong(tmp_path, capsys):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(50, 3))
    np.savez(tmp_path / "classes.npz", X=X, y=np.arange(50) % 10)  # class labels given as ground truth
    np.savez(tmp_path / "none.npz", X=X, y=np.zeros(50))
    np.savez(tmp_path / "fine.npz", X=X, y=(np.arange(50) < 5).astype(int))
    notes = {}
    for name in ("classes", "none", "fine"):
        assert main(["simulate", "--data", str(tmp_path / f"{name}.npz"), "--method", "iforest", "--rounds", "1",
                     "--out", str(tmp_path / name), "--quiet"]) == 0
        notes[name] = capsys.readouterr().err
    assert "marks 45 of 50 samples as anomalies (more than half: is it class labels?" in notes["classes"]
    assert "marks 0 of 50 samples as anomalies" in notes["none"] and notes["fine"] == ""
