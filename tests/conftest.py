import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import pytest  # noqa: E402


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


@pytest.fixture(autouse=True, scope="session")
def _stop_workers():
    """Workers started by AppTest runs are stopped before the interpreter exits (a thread still
    inside torch at exit aborts the process)."""
    yield
    from state.worker import Worker

    Worker.stop_all()
