"""Shared fixtures: the database backends, and the app under Streamlit's AppTest (a temporary workspace
with the `home` fixture; `open_app`, `trained_project` and the Review page's helpers)."""
from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path
from typing import TYPE_CHECKING, Callable

import pytest

if TYPE_CHECKING:
    from streamlit.testing.v1 import AppTest

    from state.store import Store


@pytest.fixture(scope="session")
def pg_server():
    """One throwaway PostgreSQL cluster for the whole session (tests/pg.py); skipped only when the
    server binaries are not installed."""
    from tests.pg import PgServer, find_bindir

    bindir = find_bindir()
    if bindir is None:
        pytest.skip("PostgreSQL server binaries (initdb, pg_ctl) not found: apt-get install postgresql")
    server = PgServer(bindir).start()
    yield server
    server.stop()


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request):
    """A database URL factory per backend: the SQLite file lives in the test's folder; PostgreSQL
    gets a fresh database per test on the session's server. Calling it twice gives the same database."""
    if request.param == "sqlite":
        yield lambda folder: f"sqlite:///{folder / 'test.db'}"
        return
    server = request.getfixturevalue("pg_server")
    url = server.create_database()
    yield lambda folder: url
    server.drop_database(url)


APP = str(Path(__file__).resolve().parents[1] / "app.py")


def wait_healthy(url: str, proc: subprocess.Popen, timeout_s: float, context: Callable[[], str] = str) -> None:
    """Poll a Streamlit server's health endpoint until it answers 200. Raises RuntimeError when the
    process exits first and TimeoutError when `timeout_s` passes; `context()` is added to the message
    (e.g. the end of the server's log)."""
    import urllib.request

    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        if proc.poll() is not None:
            raise RuntimeError(f"streamlit exited with {proc.returncode}:\n{context()}")
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=5) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.25)  # polling interval, not a wait for an outcome
    raise TimeoutError(f"streamlit not healthy after {timeout_s:.0f} s:\n{context()}")


@pytest.fixture
def home(tmp_path, monkeypatch) -> Path:
    """A temporary workspace for the app: SQLite in tmp_path, no UMAP maps."""
    monkeypatch.setenv("SEMIAD_HOME", str(tmp_path))
    monkeypatch.delenv("SEMIAD_DB_URL", raising=False)
    monkeypatch.setenv("SEMIAD_MAPS", "0")  # no UMAP in these tests
    return tmp_path


def trained_project(home: Path, **hyper) -> tuple[Store, int]:
    """A project on the bundled digits with a first model, trained here by a real worker."""
    from semiad.data import load_digits
    from state.store import Store
    from state.worker import Worker

    store = Store(home=home)
    pid = store.create_project("digits", load_digits(), source="digits")
    store.request_run(pid, "deepsad", {"hyper": {"pretrain_epochs": 1, "epochs": 1, **hyper}}, "setup")
    assert Worker(store, maps=False).run_once()
    assert store.latest_done_run(pid) is not None, store.runs(pid)[-1].error
    return store, pid


def open_app(pid: int, page: str = "pages/review.py") -> AppTest:
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(APP, default_timeout=120)
    at.query_params["project"] = str(pid)
    at.query_params["who"] = "alice"
    at.run()
    at.switch_page(page).run()
    assert not at.exception, at.exception
    return at


def review_cards(at: AppTest) -> list[dict]:
    """The cards the Review page gave its labeling component (focused card first, then the grid and
    the cards held in the browser to move on without the server)."""
    (card,) = at.get("component_instance")
    return json.loads(card.proto.json_args)["cards"]


_presses = iter(range(1, 1_000_000))


def press(at: AppTest, pid: int, *requests: dict) -> AppTest:
    """What the component sends after key presses / clicks: its pending requests, each with a token."""
    pending = [{"t": f"test-token-{next(_presses):06d}", **r} for r in requests]
    at.session_state[f"review_card-{pid}"] = {"pending": pending, "seq": next(_presses)}
    return at.run()


def wait_for(predicate, at: AppTest, timeout: float = 120) -> None:
    end = time.time() + timeout
    while time.time() < end:
        at.run()
        if predicate():
            return
        time.sleep(0.5)
    raise AssertionError("timed out")


_exit_status = 0


def pytest_sessionfinish(session, exitstatus):
    global _exit_status
    _exit_status = int(exitstatus)


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config):
    """End the process without interpreter teardown: background threads of the app under test
    (training worker, UMAP map threads in numba/torch thread pools) can still be inside native code,
    and destroying their thread pools at exit aborts the process ("terminate called without an
    active exception"), turning a green run red. The summary has been printed by now."""
    import os
    import sys

    from state.worker import Worker

    Worker.stop_all(timeout=30)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(_exit_status)
