"""The app through Streamlit's AppTest, with the real store, worker and Deep SAD model."""
from __future__ import annotations

import json

from streamlit.testing.v1 import AppTest

from semiad import metrics, query
from state.store import Store
from tests.conftest import APP, open_app, press, review_cards, trained_project, wait_for


def test_home_offers_the_bundled_digits_in_one_click(home):
    at = AppTest.from_file(APP, default_timeout=60).run()
    assert not at.exception
    assert at.radio(key="new_kind").value.startswith("Bundled digits")
    at.sidebar.text_input[0].input("alice").run()
    at.button(key="create").click().run()
    assert not at.exception and not at.error
    store = Store(home=home)
    (project,) = store.projects()
    assert project.n_samples == 198 and store.active_run(project.id) is not None
    assert at.query_params["project"] == [str(project.id)] or at.query_params["project"] == str(project.id)


def test_label_two_samples_then_retrain_and_see_the_new_round(home):
    store, pid = trained_project(home)
    at = open_app(pid)
    assert [m.value for m in at.metric][:4] == ["1", "0", "0", "198"]
    cards = review_cards(at)
    assert cards[0]["round"] == 1  # the browser sends it back with the press: the round the card was shown in
    press(at, pid, {"op": "label", "sid": cards[0]["sid"], "label": "anomalous", "src": "review:top",
                    "round": cards[0]["round"]})
    press(at, pid, {"op": "label", "sid": cards[1]["sid"], "label": "normal", "src": "review:top"})
    assert [m.value for m in at.metric][:4] == ["1", "1", "1", "196"]
    assert cards[0]["sid"] not in [c["sid"] for c in review_cards(at)]
    events = store.events(pid)
    assert events["label"].tolist() == ["anomalous", "normal"] and set(events["annotator"]) == {"alice"}

    at.switch_page("pages/train.py").run()
    at.number_input(key="hp-deepsad-pixels-finetune_epochs").set_value(1).run()
    at.button(key="retrain").click().run()
    assert not at.exception
    wait_for(lambda: store.latest_done_run(pid).round == 2, at)
    run = store.latest_done_run(pid)
    assert run.parent_id is not None and run.n_labels == 2 and run.params["hyper"]["finetune_epochs"] == 1
    at.switch_page("pages/review.py").run()
    assert not at.exception
    assert at.metric[0].value == "2"
    assert any("round 2" in c.value for c in at.caption)


def test_a_second_retrain_is_refused_while_one_runs(home):
    store, pid = trained_project(home)
    store.request_run(pid, "deepsad", {"hyper": {}}, "bob", parent_id=store.latest_done_run(pid).id)
    store.claim_next_run("elsewhere:1")  # running on another worker
    at = open_app(pid, "pages/train.py")
    assert at.button(key="retrain").disabled
    assert any("running" in i.value for i in at.info)


def test_undo_and_every_page_renders(home):
    store, pid = trained_project(home)
    at = open_app(pid)
    sid = review_cards(at)[0]["sid"]
    press(at, pid, {"op": "label", "sid": sid, "label": "anomalous", "src": "review:top"})
    assert store.label_counts(pid)["anomalous"] == 1
    press(at, pid, {"op": "undo", "target": None})
    assert store.label_counts(pid)["anomalous"] == 0 and store.label_counts(pid)["events"] == 2
    assert sid in [c["sid"] for c in review_cards(at)]
    for page in ("pages/home.py", "pages/train.py", "pages/latent.py", "pages/progress.py", "pages/export.py"):
        at.switch_page(page).run()
        assert not at.exception, (page, at.exception)


def test_strategy_choice_shows_reasons_and_disputes_are_marked(home):
    store, pid = trained_project(home)
    sid = store.samples(pid)["sample_id"].tolist()
    store.record_label(pid, sid[0], "anomalous", "alice")
    store.record_label(pid, sid[0], "normal", "bob")
    at = open_app(pid)
    at.selectbox(key="strategy").set_value("random").run()
    assert not at.exception
    cards = review_cards(at)
    assert len(cards) >= 12 and all("random audit" in c["reason"] for c in cards)
    assert store.samples(pid)["key"][0] not in [c["key"] for c in cards]  # labeled: not shown
    assert any("disputed" in m.value and "alice" in m.value and "bob" in m.value for m in at.markdown)
    press(at, pid, {"op": "label", "sid": cards[0]["sid"], "label": "anomalous", "src": cards[0]["src"]})
    assert store.events(pid)["source"].iloc[-1] == "review:random"
    at.selectbox(key="strategy").set_value("mixed").run()
    cards = review_cards(at)
    audit = [c for c in cards if c["reason"] == "random audit"]
    assert audit and all(c["src"] == "review:random" for c in audit)  # Progress counts the mix's audit slice
    assert {c["src"] for c in cards if c not in audit} == {"review:mixed"}


def test_switch_to_ganomaly_trains_a_fresh_model_and_shows_difference_maps(home):
    store, pid = trained_project(home)
    at = open_app(pid, "pages/train.py")
    at.selectbox(key="train_method").set_value("ganomaly").run()
    assert at.radio(key="train_mode-ganomaly").options == ["a fresh model"]  # another method: no warm start
    at.toggle(key="fast-ganomaly").set_value(True).run()
    at.selectbox(key="hp-ganomaly-pixels-precision").set_value("bf16").run()
    at.button(key="retrain").click().run()
    assert not at.exception
    wait_for(lambda: store.latest_done_run(pid).method == "ganomaly", at)
    run = store.latest_done_run(pid)
    assert run.parent_id is None and run.params["fast"] and run.params["hyper"]["ngf"] == 16
    assert run.params["hyper"]["precision"] == "bf16"
    at.switch_page("pages/review.py").run()
    assert not at.exception
    cards = review_cards(at)
    assert len(cards) >= 12 and all(c["diff"].startswith("data:image/png") and c["recon"] for c in cards)
    at.switch_page("pages/train.py").run()
    assert at.radio(key="train_mode-ganomaly").options[0].startswith("the current model")  # same method: warm


def test_progress_page_counts_rounds_and_offers_csv(home):
    store, pid = trained_project(home)
    sid = store.samples(pid)["sample_id"].tolist()
    store.record_labels(pid, sid[:3], "anomalous", "alice", source="review:top")
    store.record_label(pid, sid[3], "normal", "alice", source="review:random")
    at = open_app(pid, "pages/progress.py")
    assert not at.exception
    assert [m.value for m in at.metric][:3] == ["4", "3", "1"]
    low, high = metrics.wilson_interval(0, 1)  # the one random-audit label was normal
    assert any(f"about **0** anomalies remain among the 194 unlabeled samples (95% interval 0–{high * 194:.0f})"
               in c.value for c in at.caption)
    table = at.dataframe[-1].value
    first = table.loc[table["round"] == 1]
    assert first["labels"].item() == 4 and first["anomalies"].item() == 3
    assert at.get("download_button")
    charts = [json.loads(c.proto.spec) for c in at.get("plotly_chart")]
    by_round = [c for c in charts if "round" in c["layout"]["xaxis"]["title"]["text"]]
    assert charts and all(c["layout"]["xaxis"]["dtick"] == 1 for c in by_round)
    # a new model, no label on it yet: its round gave 0 labels, and the cells with nothing to say are blank
    from state.worker import Worker

    store.request_run(pid, "deepsad", {"hyper": {"finetune_epochs": 1}}, "alice",
                      parent_id=store.latest_done_run(pid).id)
    assert Worker(store, maps=False).run_once()
    table = open_app(pid, "pages/progress.py").dataframe[-1].value
    second = table.loc[table["round"] == 2]
    assert second[["labels", "anomalies", "cum_labels", "cum_anomalies"]].values.tolist() == [[0, 0, 4, 3]]
    assert second["precision"].item() == "" and first["precision"].item() == "0.75"


def test_a_dry_stretch_is_named_and_top_audit_turns_to_a_random_audit(home):
    store, pid = trained_project(home)
    sid = store.samples(pid)["sample_id"].tolist()
    store.record_label(pid, sid[0], "anomalous", "alice", source="review:top")
    store.record_labels(pid, sid[1:1 + query.AUDIT_AFTER], "normal", "alice", source="review:top")
    at = open_app(pid)
    assert at.selectbox(key="strategy").value == "top"  # the default
    (note,) = [i.value for i in at.info if "No anomaly" in i.value]
    assert f"the last {query.AUDIT_AFTER} labels" in note and "Top, audit when dry" in note
    assert all(c["reason"].startswith("top score") for c in review_cards(at))

    at.selectbox(key="strategy").set_value("top-audit").run()
    assert not at.exception
    (note,) = [i.value for i in at.info if "No anomaly" in i.value]
    assert "random audit" in note
    cards = review_cards(at)
    assert cards and all(c["reason"].startswith("random audit: no anomaly") for c in cards)
    press(at, pid, {"op": "label", "sid": cards[0]["sid"], "label": "anomalous", "src": cards[0]["src"]})
    assert store.events(pid)["source"].iloc[-1] == "review:random"  # counted as the audit on Progress
    assert not [i for i in at.info if "No anomaly" in i.value]  # an anomaly turned up: top scores again
    assert all(c["reason"].startswith("top score") for c in review_cards(at))


def test_the_outbox_on_another_page_stores_what_review_left_unacknowledged_once(home):
    """What the outbox sends (as its frame would): the requests of this store's scopes are applied
    under the scope's annotator before the page reads the store, and acknowledged; another store's
    scope is not touched; a second delivery writes nothing more."""
    from pages.review_card import scope_of

    store, pid = trained_project(home)
    at = open_app(pid, "pages/train.py")
    sid = int(store.samples(pid)["sample_id"][3])
    mine = [{"t": "token-01", "op": "label", "sid": sid, "label": "anomalous", "src": "review:top"},
            {"t": "token-02", "op": "undo", "target": "token-01"},
            {"t": "token-03", "op": "label", "sid": sid, "label": "normal", "src": "review:top"}]
    other = [{"t": "token-09", "op": "label", "sid": sid, "label": "anomalous", "src": "review:top"}]
    outbox = {scope_of(store.url, pid, "bob"): mine, scope_of("sqlite:///elsewhere.db", pid, "bob"): other}
    for seq in (1, 2):  # the same requests delivered twice
        at.session_state["review_outbox"] = {"outbox": outbox, "seq": seq}
        at.run()
        assert not at.exception, at.exception
        assert any("1 normal and 0 anomalous labels so far" in c.value for c in at.caption)  # read after
        (box,) = [c for c in at.get("component_instance") if "review_outbox" in str(c.proto.component_name)]
        assert sorted(json.loads(box.proto.json_args)["acked"]) == ["token-01", "token-02", "token-03"]
    ev = Store(home=home).events(pid)
    assert list(ev["label"]) == ["anomalous", "unlabeled", "normal"] and set(ev["annotator"]) == {"bob"}


def test_a_link_to_a_project_that_is_not_there_says_so(home):
    store, pid = trained_project(home)
    for bad in ("999", "abc"):
        at = AppTest.from_file(APP, default_timeout=120)
        at.query_params["project"] = bad
        at.switch_page("pages/train.py").run()  # the link opens Train directly
        assert not at.exception, at.exception
        assert any(f"There is no project '{bad}' in this workspace" in w.value for w in at.warning)
        assert any("Open or create a project first" in i.value for i in at.info)
        assert "project" not in at.query_params


def test_when_every_card_is_done_an_undo_or_the_skipped_bring_cards_back(home):
    """An empty window of cards must not break the page: the undo of the last label, and the skipped
    samples shown again, come back as cards (an empty window was indexed as no columns: KeyError)."""
    store, pid = trained_project(home)
    at = open_app(pid)
    first = review_cards(at)[0]["sid"]
    press(at, pid, {"op": "label", "sid": first, "label": "normal", "src": "review:top"})
    rest = [int(i) for i in store.samples(pid)["sample_id"] if int(i) != first]
    store.record_labels(pid, rest[:-3], "normal", "bob")  # everything else labeled (by bob), but three ...
    press(at, pid, *[{"op": "skip", "sid": sid} for sid in rest[-3:]])  # ... skipped
    assert not at.exception, at.exception
    assert any("Every sample of this project is labeled or skipped" in s.value for s in at.success)
    at.run()  # the window is empty now
    press(at, pid, {"op": "undo", "target": None})  # reverts the page's own label (the press)
    assert not at.exception, at.exception
    assert [c["sid"] for c in review_cards(at)] == [first]
    press(at, pid, {"op": "label", "sid": first, "label": "normal", "src": "review:top"})
    at.run()
    at.button(key="show_skipped").click().run()
    assert not at.exception, at.exception
    assert sorted(c["sid"] for c in review_cards(at)) == sorted(rest[-3:])


def test_an_unskip_request_puts_the_skipped_card_first_again(home):
    """"u" right after "s" sends an unskip: the server forgets the skip and shows that card first."""
    store, pid = trained_project(home)
    at = open_app(pid)
    first, second = [c["sid"] for c in review_cards(at)[:2]]
    press(at, pid, {"op": "skip", "sid": first})
    assert first not in [c["sid"] for c in review_cards(at)]
    press(at, pid, {"op": "unskip", "sid": first})
    assert not at.exception, at.exception
    assert [c["sid"] for c in review_cards(at)][:2] == [first, second]
    assert store.events(pid).empty


def test_cards_give_their_place_among_all_samples_and_what_the_score_is(home):
    from pages.common import score_meaning

    store, pid = trained_project(home)
    cards = review_cards(open_app(pid))
    assert [c["rank"] for c in cards[:3]] == [1, 2, 3] and {c["of"] for c in cards} == {198}
    assert {c["score_help"] for c in cards} == {"distance to the centre c (Deep SAD score)"}
    assert "not a probability" in score_meaning("fusion")  # a fused score of 1 is a place, said so beside it
    assert score_meaning("toll") == "the detector's own scale: only the order counts"
