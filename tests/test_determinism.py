"""Same seed, same scores, even while another fit runs in another thread of the process (the app's
in-process worker beside a test, a notebook or a second detector): every random draw in a training
step comes from the fit's own generator, and seeding plus building the networks (the draws from
torch's global generator) happen under one lock."""
from __future__ import annotations

import threading

import numpy as np
import pytest

from semiad.detectors import make
from tests.test_cancel import METHODS, SHORT, detector
from tests.toydata import images


@pytest.mark.parametrize("method", METHODS)
def test_a_fit_is_reproducible_while_another_thread_draws_random_numbers(method):
    X = images(32)
    alone = detector(method, **SHORT[method]).fit(X).decision_function(X)
    stop = threading.Event()

    fits, errors = [], []

    def other_fits() -> None:
        try:
            while not stop.is_set():
                make("deepsad", batch_size=8, device="cpu", seed=7, pretrain_epochs=1, epochs=1).fit(images(16))
                fits.append(1)
        except Exception as e:  # handed to the test
            errors.append(e)

    other = threading.Thread(target=other_fits, daemon=True)
    other.start()
    try:
        busy = detector(method, **SHORT[method]).fit(X).decision_function(X)
    finally:
        stop.set()
        other.join()
    assert not errors and fits  # the other thread really fitted meanwhile
    np.testing.assert_array_equal(alone, busy)
