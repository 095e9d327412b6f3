import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import pytest  # noqa: E402


@pytest.fixture(params=["sqlite"])
def db_url(request):
    """A database URL factory per backend; the SQLite file lives in the test's folder."""
    return lambda folder: f"sqlite:///{folder / 'test.db'}"


@pytest.fixture(autouse=True, scope="session")
def _stop_workers():
    """Workers started by AppTest runs are stopped before the interpreter exits (a thread still
    inside torch at exit aborts the process)."""
    yield
    from state.worker import Worker

    Worker.stop_all()
