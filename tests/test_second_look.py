"""The second look ranks labels by how much the other labels disagree with them (semiad.second_look)."""
from __future__ import annotations

import numpy as np
import pytest

from semiad.second_look import K_NEIGHBOURS, disagreement


def two_kinds(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    Z = np.vstack([rng.normal(size=(150, 8)), rng.normal(size=(50, 8)) + 6.0 * np.eye(8)[0]])
    return Z, np.arange(200) >= 150


def test_slips_of_the_key_come_first():
    Z, truth = two_kinds()
    said = truth.copy()
    slips = np.array([3, 70, 140, 160, 175, 199])  # three normals labeled anomalous, three anomalies labeled normal
    said[slips] = ~said[slips]
    found = disagreement(Z, said)
    assert set(np.argsort(-found["disagreement"])[:6]) == set(slips)
    # a slip's neighbours all carry its true label; a right label's neighbours agree with it
    assert (found["neighbours"][slips] == 1.0).all()
    assert np.median(found["neighbours"][np.setdiff1d(np.arange(200), slips)]) == 0.0
    assert (found["classifier"][slips] > 0.5).all()
    assert np.allclose(found["disagreement"], 0.5 * (found["neighbours"] + found["classifier"]))


def test_nothing_to_disagree_with_while_one_kind_is_labeled():
    Z, _ = two_kinds()
    for said in (np.zeros(200, bool), np.ones(200, bool)):
        assert all((v == 0).all() for v in disagreement(Z, said).values())


def test_a_single_label_of_one_kind_is_judged_by_its_neighbours_alone():
    Z, truth = two_kinds()
    said = np.zeros(200, bool)
    said[0] = True  # one anomalous label, on a normal sample: too few to leave out of a fold
    found = disagreement(Z, said)
    assert np.array_equal(found["classifier"], found["neighbours"])
    assert found["disagreement"][0] == 1.0 and np.argmax(found["disagreement"]) == 0


def test_an_exact_duplicate_is_a_neighbour_not_the_sample_itself():
    Z, truth = two_kinds()
    Z = np.vstack([Z, Z[:1]])  # sample 200 repeats sample 0, labeled the other way
    said = np.append(truth, True)
    found = disagreement(Z, said)
    assert found["neighbours"][200] >= 1.0 / K_NEIGHBOURS and found["neighbours"][0] >= 1.0 / K_NEIGHBOURS
    assert len(found["disagreement"]) == 201


def test_bad_shapes_are_refused():
    with pytest.raises(ValueError, match="one label per row"):
        disagreement(np.zeros((5, 2)), np.zeros(4, bool))


def test_review_page_second_look_changes_or_keeps_a_label(home):
    """On the Review page: a slip (an anomaly labeled normal) heads the list; "Make it anomalous" stores
    the change with who and where; "Keep" takes a label off the list for good."""
    from semiad.data import load_digits
    from state.store import Store
    from state.worker import Worker
    from tests.conftest import open_app

    store = Store(home=home)
    digits = load_digits()
    pid = store.create_project("digits", digits, source="digits")
    store.request_run(pid, "fusion", {"hyper": {}, "representation": {"kind": "pixels"}}, "setup")
    assert Worker(store, maps=False).run_once() and store.latest_done_run(pid) is not None
    table = store.samples(pid)
    anomalies, normals = np.flatnonzero(digits.truth == 1), np.flatnonzero(digits.truth == 0)[:40]
    slip = int(table["sample_id"].iloc[anomalies[0]])
    ids = table["sample_id"].to_numpy()
    store.record_labels(pid, ids[anomalies[1:]], "anomalous", "alice")
    store.record_labels(pid, ids[normals], "normal", "alice")
    store.record_label(pid, slip, "normal", "alice")

    at = open_app(pid)
    hint = [c.value for c in at.caption if "your other labels lean anomalous on" in c.value]
    assert len(hint) == 1 and "turn on **Second look**" in hint[0]  # at the top, while the list is off
    at.toggle(key=f"second_look-{pid}").set_value(True).run()
    assert not at.exception, at.exception
    assert not any("your other labels lean anomalous on" in c.value for c in at.caption)
    first = next(m.value for m in at.markdown if "labeled **" in m.value)
    assert first.startswith(f"`{table['key'].iloc[anomalies[0]]}` — labeled **normal**")
    at.button(key=f"second_look_change-{pid}-{slip}-normal").click().run()
    assert not at.exception, at.exception
    assert store.current_labels(pid, [slip]) == {slip: "anomalous"}
    last = store.events(pid, last=1).iloc[0]
    assert (last["sample_id"], last["label"], last["annotator"], last["source"]) == (slip, "anomalous", "alice",
                                                                                     "second-look")
    assert store.label_counts(pid)["anomalous"] == len(anomalies)

    listed = [m.value for m in at.markdown if "labeled **" in m.value]
    assert not any(v.startswith(f"`{table['key'].iloc[anomalies[0]]}` — labeled **normal**") for v in listed)
    head = next(b for b in at.button if b.key.startswith(f"second_look_keep-{pid}-"))
    kept = int(head.key.split("-")[2])
    head.click().run()
    assert kept not in [int(b.key.split("-")[2]) for b in at.button if b.key.startswith(f"second_look_keep-{pid}-")]
    assert str(kept) in store.project_setting(pid, "second_look_kept")
    assert store.label_counts(pid)["events"] == 1 + len(anomalies) - 1 + len(normals) + 1  # keeping writes no label

    # a list drawn before someone else changed a label: its buttons change nothing, and say why
    button = next(b for b in at.button if b.key.startswith(f"second_look_change-{pid}-"))
    sid, shown = int(button.key.split("-")[2]), button.key.split("-")[3]
    other = "normal" if shown == "anomalous" else "anomalous"
    store.record_label(pid, sid, other, "bob")  # in another browser, meanwhile
    events = store.label_counts(pid)["events"]
    button.click().run()
    assert not at.exception, at.exception
    assert store.label_counts(pid)["events"] == events and store.current_labels(pid, [sid]) == {sid: other}
    assert any(f"that sample's label is {other} now" in w.value for w in at.warning)


def test_review_page_second_look_on_a_table_and_before_both_kinds_are_labeled(home, tmp_path):
    """A table project: no pictures, the rows' ids as keys; with one kind of label only, it says why
    there is nothing to show."""
    from semiad.data import load_csv
    from state.store import Store
    from state.worker import Worker
    from tests.conftest import open_app

    rng = np.random.default_rng(0)
    X = np.vstack([rng.normal(size=(90, 4)), rng.normal(size=(10, 4)) + 5.0])
    lines = ["id,a,b,c,d"] + [f"s{i}," + ",".join(f"{v:.3f}" for v in row) for i, row in enumerate(X)]
    (tmp_path / "t.csv").write_text("\n".join(lines) + "\n")
    store = Store(home=home)
    pid = store.create_project("table", load_csv(tmp_path / "t.csv"), source=str(tmp_path / "t.csv"))
    store.request_run(pid, "fusion", {"hyper": {}}, "setup")
    assert Worker(store, maps=False).run_once() and store.latest_done_run(pid) is not None
    ids = store.sample_ids(pid, [f"s{i}" for i in range(100)])
    store.record_labels(pid, [ids[f"s{i}"] for i in range(90, 100)], "anomalous", "alice")

    at = open_app(pid)
    at.toggle(key=f"second_look-{pid}").set_value(True).run()
    assert not at.exception, at.exception
    assert any("needs at least two labels of each kind" in c.value for c in at.caption)

    store.record_labels(pid, [ids[f"s{i}"] for i in range(20)], "normal", "alice")
    store.record_label(pid, ids["s95"], "normal", "alice")  # the slip, on a row far from the normal ones
    at.run()
    assert not at.exception, at.exception
    first = next(m.value for m in at.markdown if "labeled **" in m.value)
    assert first.startswith("`s95` — labeled **normal**")


def test_the_classifier_does_not_depend_on_the_latent_spaces_scale():
    rng = np.random.default_rng(3)
    Z = np.r_[rng.normal(0, 1, (40, 4)), rng.normal(3, 1, (10, 4))]
    anomalous = np.r_[np.zeros(40, bool), np.ones(10, bool)]
    anomalous[0] = True  # a slip among the normals
    from semiad.second_look import disagreement

    big, tiny = disagreement(Z, anomalous), disagreement(Z * 0.008, anomalous)  # a GANomaly-like scale
    assert np.allclose(big["classifier"], tiny["classifier"], atol=1e-6)
    assert tiny["classifier"].std() > 0.1 and tiny["classifier"][0] > 0.5
