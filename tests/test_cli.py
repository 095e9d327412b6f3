"""The `semiad` console command (installed by `pip install -r requirements.txt`): the same parser as
`python -m semiad`, with the subcommands app, worker, simulate, fit and score."""
from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
from importlib.metadata import entry_points
from pathlib import Path

import pytest

from semiad import cli
from tests.conftest import wait_healthy

ROOT = Path(__file__).resolve().parents[1]
SUBCOMMANDS = ["app", "worker", "simulate", "fit", "score"]


def semiad_script() -> str:
    """The installed `semiad` script of this interpreter's environment."""
    found = shutil.which("semiad", path=os.pathsep.join([str(Path(sys.executable).parent), os.environ["PATH"]]))
    assert found, "no `semiad` command: install the project (pip install -r requirements.txt)"
    return found


def run(*args: str, cwd: Path = ROOT, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(list(args), cwd=cwd, capture_output=True, text=True, timeout=timeout)


def test_the_console_script_is_semiad_cli_main():
    (script,) = entry_points(group="console_scripts", name="semiad")
    assert script.value == "semiad.cli:main"


def test_semiad_help_lists_the_subcommands_as_python_m_semiad_does(tmp_path):
    out = run(semiad_script(), "--help", cwd=tmp_path)  # from any folder, not only the checkout
    assert out.returncode == 0, out.stderr
    listed = [m.group(1) for m in re.finditer(r"^ {4}(\S+)", out.stdout, re.MULTILINE)]
    assert listed[:len(SUBCOMMANDS)] == SUBCOMMANDS
    same = run(sys.executable, "-m", "semiad", "--help", cwd=tmp_path)
    assert same.returncode == 0 and same.stdout == out.stdout


def test_semiad_worker_help_is_the_workers_own():
    out = run(semiad_script(), "worker", "--help")
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("usage: semiad worker")
    for option in ("--db", "--home", "--device", "--threads"):
        assert option in out.stdout


def test_unknown_options_are_refused_except_where_they_are_passed_on(capsys):
    with pytest.raises(SystemExit) as e:
        cli.main(["score", "--model", "m.pt", "--out", "s.csv", "--bogus", "1"])
    assert e.value.code == 2 and "unrecognized arguments: --bogus 1" in capsys.readouterr().err
    args, passed = cli.build_parser().parse_known_args(["app", "--server.port", "8502", "--theme.base=dark"])
    assert args.command == "app" and passed == ["--server.port", "8502", "--theme.base=dark"]


@pytest.fixture
def bare_app(tmp_path, monkeypatch):
    """An app.py with no Streamlit configuration anywhere (home, working folder, beside app.py)."""
    app = tmp_path / "installed" / "app.py"
    app.parent.mkdir()
    app.write_text("")
    (tmp_path / "home").mkdir()
    monkeypatch.setattr(cli, "app_path", lambda: app)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("STREAMLIT_SERVER_ADDRESS", raising=False)
    monkeypatch.chdir(tmp_path)
    return app


def test_app_binds_to_localhost_unless_the_address_is_configured(bare_app, tmp_path):
    base = [sys.executable, "-m", "streamlit", "run", str(bare_app)]
    assert cli.streamlit_command() == base + ["--server.address", "127.0.0.1"]
    assert cli.streamlit_command(["--server.port", "9000"]) == base + ["--server.address", "127.0.0.1",
                                                                       "--server.port", "9000"]
    assert cli.streamlit_command(["--server.address", "0.0.0.0"]) == base + ["--server.address", "0.0.0.0"]
    assert cli.streamlit_command(["--server.address=0.0.0.0"]) == base + ["--server.address=0.0.0.0"]
    assert cli.streamlit_command(env={"STREAMLIT_SERVER_ADDRESS": "0.0.0.0"}) == base
    for folder in (tmp_path / ".streamlit", bare_app.parent / ".streamlit", tmp_path / "home" / ".streamlit"):
        folder.mkdir()
        (folder / "config.toml").write_text('[server]\nport = 9000\n')  # another setting: still localhost
        assert cli.streamlit_command()[-2:] == ["--server.address", "127.0.0.1"]
        (folder / "config.toml").write_text('[server]\naddress = "0.0.0.0"\n')
        assert cli.streamlit_command() == base, folder
        shutil.rmtree(folder)


def test_app_is_the_checkouts_app_py():
    assert cli.app_path() == ROOT / "app.py"  # an editable install: this checkout's


def _listening_addresses(port: int) -> set[str]:
    """Local IPv4/IPv6 addresses with a socket listening on `port` (from /proc/net/tcp*)."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            address, hex_port = local.split(":")
            if state == "0A" and int(hex_port, 16) == port:
                found.add(address)
    return found


def test_semiad_app_serves_the_app_on_localhost_only(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if k not in ("SEMIAD_DB_URL", "STREAMLIT_SERVER_ADDRESS")}
    env.update(SEMIAD_HOME=str(tmp_path / "workspace"), SEMIAD_MAPS="0")
    proc = subprocess.Popen([semiad_script(), "app", "--server.port", str(port), "--server.headless", "true",
                             "--server.fileWatcherType", "none", "--browser.gatherUsageStats", "false"],
                            cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    try:
        wait_healthy(f"http://127.0.0.1:{port}", proc, 120)
        assert _listening_addresses(port) == {"0100007F"}  # 127.0.0.1 only
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(20)
