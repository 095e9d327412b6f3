"""A throwaway PostgreSQL server for tests and benchmarks (Debian's postgresql binaries).

`PgServer.start()` initialises a cluster in a new temporary folder and starts it listening on a
unix socket in that folder only (no TCP port, so parallel runs cannot collide); `create_database()`
gives a fresh database URL; `stop()` kills the server and deletes the folder. initdb refuses to run
as root, so as root the server runs as the `postgres` user that the Debian package creates.
"""
from __future__ import annotations

import atexit
import glob
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

# Settings for a test cluster: durability off (the cluster is thrown away), small and quiet.
FAST = {"fsync": "off", "synchronous_commit": "off", "full_page_writes": "off"}


def find_bindir() -> Path | None:
    """The folder with initdb/pg_ctl/postgres: $PG_BINDIR, then Debian's newest, then PATH."""
    candidates = [os.environ.get("PG_BINDIR", "")]
    candidates += sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=_version, reverse=True)
    initdb = shutil.which("initdb")
    if initdb:
        candidates.append(str(Path(initdb).resolve().parent))
    for folder in candidates:
        if folder and all((Path(folder) / b).is_file() for b in ("initdb", "pg_ctl", "postgres")):
            return Path(folder)
    return None


def _version(path: str) -> float:
    try:
        return float(Path(path).parent.name)
    except ValueError:
        return 0.0


class PgServer:
    """One cluster; `url` is the SQLAlchemy URL of its `postgres` database."""

    def __init__(self, bindir: Path, settings: dict[str, str] | None = None) -> None:
        self.bindir = bindir
        self.settings = dict(FAST if settings is None else settings)  # {} = PostgreSQL's durable defaults
        self.folder: Path | None = None
        self._user: pwd.struct_passwd | None = None

    # ----- lifecycle -----------------------------------------------------------------------
    def start(self, timeout: float = 60) -> "PgServer":
        root = os.geteuid() == 0
        # as root the server user must reach the folder: /tmp, whatever TMPDIR says
        self.folder = Path(tempfile.mkdtemp(prefix="semiad-pg-", dir="/tmp" if root else None))
        if root:
            try:
                self._user = pwd.getpwnam("postgres")
            except KeyError as e:
                raise RuntimeError("running as root, and there is no 'postgres' user to run the server as") from e
            os.chown(self.folder, self._user.pw_uid, self._user.pw_gid)
        atexit.register(self.stop)
        data = self.folder / "data"
        self._run([self.bindir / "initdb", "-D", data, "-U", "postgres", "-A", "trust", "-E", "UTF8",
                   "--locale=C", "--no-sync"], timeout=timeout)
        options = " ".join(["-c listen_addresses=''", f"-k {self.folder}"] +
                           [f"-c {k}={v}" for k, v in self.settings.items()])
        self._run([self.bindir / "pg_ctl", "-D", data, "-l", self.folder / "server.log", "-w",
                   "-t", str(int(timeout)), "-o", options, "start"], timeout=timeout + 10)
        return self

    def stop(self) -> None:
        if self.folder is None:
            return
        folder, self.folder = self.folder, None
        pidfile = folder / "data" / "postmaster.pid"
        if pidfile.exists():
            # SIGQUIT = PostgreSQL's immediate shutdown: no checkpoint, the cluster is thrown away
            pid = int(pidfile.read_text().split()[0])
            try:
                os.kill(pid, signal.SIGQUIT)
                end = time.time() + 30
                while pidfile.exists() and time.time() < end:
                    time.sleep(0.05)
            except ProcessLookupError:
                pass
        shutil.rmtree(folder, ignore_errors=True)

    def __enter__(self) -> "PgServer":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _run(self, argv: list, timeout: float, folder: Path | None = None) -> str:
        argv = [str(a) for a in argv]
        if self._user is not None:
            argv = ["runuser", "-u", self._user.pw_name, "--"] + argv
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout,
                              cwd=str(folder or self.folder or "/"))
        if proc.returncode != 0:
            log = (folder or self.folder or Path("/nonexistent")) / "server.log"
            tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
            raise RuntimeError(f"{' '.join(argv)} failed ({proc.returncode}):\n{proc.stdout}{proc.stderr}{tail}")
        return proc.stdout

    # ----- databases -----------------------------------------------------------------------
    def url_for(self, database: str) -> str:
        assert self.folder is not None, "start the server first"
        return f"postgresql+psycopg://postgres@/{database}?host={self.folder}"

    @property
    def url(self) -> str:
        return self.url_for("postgres")

    def _admin(self, sql: str) -> None:
        import psycopg

        with psycopg.connect(host=str(self.folder), user="postgres", dbname="postgres", autocommit=True) as conn:
            conn.execute(sql)

    def create_database(self, name: str | None = None) -> str:
        """A new empty database; returns its URL."""
        name = name or f"t_{uuid.uuid4().hex[:12]}"
        self._admin(f'CREATE DATABASE "{name}"')
        return self.url_for(name)

    def drop_database(self, url: str) -> None:
        name = url.rsplit("/", 1)[1].split("?")[0]
        self._admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

