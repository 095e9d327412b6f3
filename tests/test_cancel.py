"""Cancel: every detector asks its stop flag at every training step and between a step's operations,
and the worker turns a cancel click into that flag within a poll. Real detectors, store and worker."""
from __future__ import annotations

import threading
import time

import numpy as np
import pytest
import torch
from torch.optim.optimizer import register_optimizer_step_post_hook

from semiad.detectors import base, make
from semiad.detectors.base import TrainingStopped
from tests.toydata import images

N = 200  # with batch 8: 25 steps per epoch, so an epoch's progress report comes long after step 3

# Narrow nets, batch 8; the first progress report of each comes after 25 steps or more.
SMALL = {
    "deepsad": {"pretrain_epochs": 2, "epochs": 2},
    "ganomaly": {"nz": 8, "ngf": 8, "ndf": 8, "epochs": 2, "report_every": 50},
    "toll": {"width": 4, "z_dim": 6, "iters": 60, "report_every": 50},
    "esad": {"epochs": 2, "rep_dim": 16},
    "ama": {"nz": 6, "ndf": 4, "gen_ch": 8, "critic_ch": 8, "epochs": 2},
}
METHODS = sorted(SMALL)
# optimizer updates per training step, before the step's own stop check comes round again
UPDATES_PER_STEP = {"deepsad": 1, "ganomaly": 2, "toll": 1, "esad": 1, "ama": 1}  # AMA: each critic update


SHORT = {"deepsad": {"pretrain_epochs": 1, "epochs": 1}, "ganomaly": {"epochs": 1}, "toll": {"iters": 4},
         "esad": {"epochs": 1}, "ama": {"epochs": 1}}  # 4 steps per phase on 32 samples


def detector(method: str, **over):
    return make(method, batch_size=8, device="cpu", seed=0, **{**SMALL[method], **over})


class Updates:
    """Counts optimizer updates process-wide (torch's global step hook), while in the `with` block."""

    def __enter__(self) -> "Updates":
        self.n = 0
        self._handle = register_optimizer_step_post_hook(self._count)
        return self

    def _count(self, *_args) -> None:
        self.n += 1

    def __exit__(self, *exc) -> None:
        self._handle.remove()


@pytest.mark.parametrize("method", METHODS)
def test_the_stop_flag_is_asked_at_every_step_not_only_at_progress_reports(method):
    X = images(N)
    reports = []
    with Updates() as updates:
        stop_after = 3 * UPDATES_PER_STEP[method]
        with pytest.raises(TrainingStopped):
            detector(method).fit(X, progress=reports.append, should_stop=lambda: updates.n >= stop_after)
    assert updates.n == stop_after  # stopped at the very next step check
    assert reports == []  # long before the first progress report


@pytest.mark.parametrize("method", METHODS)
def test_a_stop_lands_inside_a_step_between_its_operations(method, monkeypatch):
    """One step of a full-width net can take seconds on a CPU: the flag is also asked between the
    autograd operations of the step (here at every one), so the stop does not wait for the step's end."""
    monkeypatch.setattr(base, "STOP_CHECK_S", 0.0)
    X = images(N)
    forward_started = threading.Event()
    handle = torch.nn.modules.module.register_module_forward_pre_hook(lambda *_: forward_started.set())
    try:
        with Updates() as updates, pytest.raises(TrainingStopped):
            # False at the fit's and the first step's checks; True once the first forward pass has begun
            detector(method).fit(X, should_stop=forward_started.is_set)
    finally:
        handle.remove()
    assert forward_started.is_set() and updates.n == 0  # stopped inside step 1, before its first update


def test_a_flag_set_before_the_fit_stops_it_before_any_update():
    with Updates() as updates, pytest.raises(TrainingStopped):
        detector("toll").fit(images(N), should_stop=lambda: True)
    assert updates.n == 0


@pytest.mark.parametrize("method", METHODS)
def test_asking_the_flag_changes_nothing_that_is_computed(method, monkeypatch):
    """Same seed, same data: a fit that is asked to stop at every operation (and never told to) gives
    exactly the scores of a fit without a flag; the saved-tensor hooks only look."""
    monkeypatch.setattr(base, "STOP_CHECK_S", 0.0)
    X = images(32)
    asked = []
    plain = detector(method, **SHORT[method]).fit(X).decision_function(X)
    watched = detector(method, **SHORT[method]).fit(X, should_stop=lambda: asked.append(1) and False)
    watched = watched.decision_function(X)
    np.testing.assert_array_equal(plain, watched)
    assert len(asked) > 10


def test_a_stopped_fit_can_be_fitted_again():
    det = detector("toll")
    with pytest.raises(TrainingStopped):
        det.fit(images(N), should_stop=lambda: True)
    det.fit(images(N))  # no stale flag or hooks left behind
    assert det.decision_function(images(N)).shape == (N,)


# ----- the worker: a cancel click reaches the running fit ----------------------------------------

@pytest.fixture
def store(tmp_path, db_url):
    from state.store import Store

    s = Store(db_url(tmp_path), home=tmp_path)
    yield s
    s.close()


def wait_until(predicate, timeout: float = 120.0, every: float = 0.05) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return
        time.sleep(every)
    raise AssertionError("timed out")


def test_cancel_marks_the_run_cancelling_at_once_and_the_worker_stops_it(store):
    """A Toll run far too long to finish; the worker's progress reports are minutes apart
    (report_every), so only the per-step flag can stop it."""
    from semiad.data import SampleSet
    from state.worker import Worker

    X = images(N)
    pid = store.create_project("p", SampleSet(ids=[f"s{i}" for i in range(N)], X=X, kind="image", name="t"))
    run_id = store.request_run(pid, "toll", {"hyper": {"width": 4, "iters": 10**7, "report_every": 10**6}}, "ann")
    worker = Worker(store, device="cpu", maps=False, poll_s=0.05).start()
    try:
        wait_until(lambda: store.run(run_id).status == "running")
        store.cancel_run(run_id)
        run = store.run(run_id)
        assert run.cancel_requested and run.message == "cancelling…"  # what the pages show at once
        wait_until(lambda: store.run(run_id).status == "cancelled")
        assert store.run(run_id).message == "cancelled by the user"
        assert not store.run_files(run_id).model.exists()
        # the worker is free again: the next run is taken and finishes
        second = store.request_run(pid, "toll", {"hyper": {"width": 4, "iters": 2}}, "ann")
        wait_until(lambda: store.run(second).status == "done")
    finally:
        worker.stop(timeout=60)
