import pytest


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
