"""Fixtures for the browser suite: a real `streamlit run app.py` server on a free localhost port with
its own temporary SEMIAD_HOME, and Debian's chromium driven by Playwright's Python package.

Every test starts (and stops) its own server. Screenshots go to tests/screenshots/ (git-ignored):
one per page the test visits, plus one of every open tab when the test fails.
"""
from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import wait_healthy

ROOT = Path(__file__).resolve().parents[2]
SHOTS = ROOT / "tests" / "screenshots"
# The machine running CI is small and shared: waits are generous, never sleeps of fixed length.
START_TIMEOUT_S = float(os.environ.get("SEMIAD_BROWSER_START_S", "180"))
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run", "--disable-sync",
                 "--disable-dev-shm-usage"]


def chromium_path() -> str | None:
    """Debian's chromium (CI apt-installs it); Playwright's own browser download is never used."""
    for candidate in (os.environ.get("SEMIAD_CHROMIUM"), "/usr/bin/chromium", shutil.which("chromium")):
        if candidate and os.path.exists(candidate):
            return candidate
    return None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """One `streamlit run app.py` process group. start() may be called again after kill() or stop():
    the new server uses the same SEMIAD_HOME (that is how a crash and restart are simulated)."""

    def __init__(self, home: Path, log_dir: Path, maps: bool = False) -> None:
        self.home = home
        self.log_dir = log_dir
        self.maps = maps
        self.proc: subprocess.Popen | None = None
        self.port = 0
        self.starts = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.log_dir / f"streamlit-{self.starts}.log"

    def start(self, same_port: bool = False) -> "Server":
        """Start; with same_port, on the port of the last start (so an open tab can just reload)."""
        self.starts += 1
        if not (same_port and self.port):
            self.port = free_port()
        env = {k: v for k, v in os.environ.items() if k != "SEMIAD_DB_URL"}
        env.update(SEMIAD_HOME=str(self.home), SEMIAD_MAPS="1" if self.maps else "0", PYTHONUNBUFFERED="1")
        cmd = [sys.executable, "-m", "streamlit", "run", "app.py", "--server.port", str(self.port),
               "--server.headless", "true", "--server.address", "127.0.0.1",
               # other people editing the tree must not rerun the app under test
               "--server.fileWatcherType", "none", "--browser.gatherUsageStats", "false"]
        with open(self.log_path, "wb") as log:
            # own session = own process group, so kill() takes every child with it
            self.proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
                                         start_new_session=True)
        self._wait_healthy()
        return self

    def _wait_healthy(self) -> None:
        wait_healthy(self.url, self.proc, START_TIMEOUT_S, self.log_tail)

    def kill(self) -> None:
        """SIGKILL the whole process group, as a crash or an OOM kill would, and reap it (a zombie's
        pid still looks alive to the store's dead-worker check)."""
        if self.proc is None or self.proc.poll() is not None:
            return
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(30)

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        try:
            os.killpg(self.proc.pid, signal.SIGTERM)
            # a server that opened the Latent map can hang at exit in its map thread: do not wait long
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.kill()
        except ProcessLookupError:
            pass

    def log_tail(self, n: int = 60) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return "(no log)"


@pytest.fixture
def server_factory(tmp_path, request):
    """Make (not start) servers on temporary workspaces; all are stopped after the test, and a
    failing test prints the end of each server's log."""
    made: list[Server] = []

    def make(home: Path | None = None, maps: bool = False) -> Server:
        home = home or tmp_path / "home"
        home.mkdir(parents=True, exist_ok=True)
        server = Server(home, tmp_path, maps=maps)
        made.append(server)
        return server

    yield make
    for server in made:
        server.stop()
    rep = getattr(request.node, "rep_call", None)
    if rep is not None and rep.failed:
        for server in made:
            for n in range(1, server.starts + 1):
                log = server.log_dir / f"streamlit-{n}.log"
                text = log.read_text(errors="replace") if log.exists() else "(no log)"
                print(f"----- {log} -----\n" + "\n".join(text.splitlines()[-80:]))


@pytest.fixture
def server(server_factory) -> Server:
    """A started server on an empty workspace (SEMIAD_MAPS=0: no UMAP in the worker)."""
    return server_factory().start()


@pytest.fixture(scope="session")
def browser():
    exe = chromium_path()
    if exe is None:
        pytest.skip("chromium not found (apt-get install chromium; .ci/run does it): browser tests skipped")
    try:
        from playwright.sync_api import expect, sync_playwright
    except ImportError:
        pytest.skip("the playwright Python package is not installed: browser tests skipped")
    expect.set_options(timeout=120_000)  # assertions wait for reruns on a slow, shared machine
    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=exe, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    setattr(item, f"rep_{rep.when}", rep)


@pytest.fixture
def new_page(browser, request):
    """Open a tab in a fresh browser context (its own cookies and Streamlit session, like another
    person's browser). A failing test leaves a screenshot of each of its tabs."""
    contexts = []
    for old in SHOTS.glob(f"{request.node.name}-FAILED-*.png"):  # from an earlier run of this test
        old.unlink()

    def make():
        ctx = browser.new_context(viewport={"width": 1400, "height": 1000})
        ctx.set_default_timeout(120_000)
        contexts.append(ctx)
        return ctx.new_page()

    yield make
    rep = getattr(request.node, "rep_call", None)
    if rep is not None and rep.failed:
        SHOTS.mkdir(parents=True, exist_ok=True)
        for i, ctx in enumerate(contexts):
            for j, page in enumerate(ctx.pages):
                try:
                    page.screenshot(path=str(SHOTS / f"{request.node.name}-FAILED-{i}{j}.png"), full_page=True)
                except Exception:  # the page may be gone; the per-page screenshots stay anyway
                    pass
    for ctx in contexts:
        ctx.close()
