"""A throwaway PostgreSQL server on loopback, for the tests, the scale-out benchmark and a rehearsal.

:class:`ThrowawayCluster` runs Debian's own binaries (``initdb``, ``pg_ctl``): a new cluster in a
temporary folder, listening on 127.0.0.1 at a free port and on a unix socket in that folder, trust
authentication for loopback only, removed with its data on :meth:`ThrowawayCluster.stop`. Nothing
is downloaded and nothing of the machine's own PostgreSQL (``/etc/postgresql``, port 5432) is touched.

PostgreSQL refuses to run as root. When this process is root, the server runs as the ``postgres``
system user (which Debian's package creates) through ``runuser``, and the folder is given to it.

Examples
--------
>>> with ThrowawayCluster() as cluster:  # doctest: +SKIP
...     url = cluster.create_database("decisions")
...     DecisionLog(url).create()
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType

__all__ = ["INSTALL_HINT", "PostgresUnavailable", "ThrowawayCluster", "find_binaries"]

#: What to tell a user whose machine has no PostgreSQL server binaries.
INSTALL_HINT = "install PostgreSQL's server: `sudo apt-get install postgresql` (Debian/Ubuntu)"


class PostgresUnavailable(RuntimeError):
    """No PostgreSQL server binaries here, or no user to run them as; the message says how to fix it."""


def find_binaries() -> Path:
    """The folder holding ``initdb`` and ``pg_ctl``: on ``PATH``, else Debian's ``/usr/lib/postgresql/N/bin``.

    Raises
    ------
    PostgresUnavailable
        Neither place has them (the message says how to install them).
    """
    on_path = shutil.which("initdb")
    if on_path and shutil.which("pg_ctl"):
        return Path(on_path).parent
    # Debian keeps the server binaries off PATH, one folder per major version: take the newest.
    candidates = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(Path(p).parts[-3].split(".")[0])
    )
    for initdb in reversed(candidates):
        folder = Path(initdb).parent
        if (folder / "pg_ctl").is_file():
            return folder
    raise PostgresUnavailable(f"no initdb/pg_ctl on PATH or in /usr/lib/postgresql/*/bin: {INSTALL_HINT}")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class ThrowawayCluster:
    """A PostgreSQL cluster of its own in a temporary folder, on 127.0.0.1, gone after :meth:`stop`.

    Parameters
    ----------
    settings
        Extra server settings (``-c name=value``), e.g. ``{"max_connections": "200"}``.
    """

    def __init__(self, settings: dict[str, str] | None = None) -> None:
        self.settings = {"max_connections": "200", **(settings or {})}
        self.bin = find_binaries()
        self.user: str | None = None
        if os.geteuid() == 0:  # PostgreSQL will not run as root
            try:
                pwd.getpwnam("postgres")
            except KeyError:
                raise PostgresUnavailable(f"running as root and there is no 'postgres' user: {INSTALL_HINT}") from None
            self.user = "postgres"
        self.folder: Path | None = None
        self.port = 0

    @property
    def data(self) -> Path:
        assert self.folder is not None, "start() the cluster first"
        return self.folder / "data"

    def _run(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        prefix = ["runuser", "-u", self.user, "--"] if self.user else []
        done = subprocess.run(
            [*prefix, *args], capture_output=True, text=True, timeout=timeout, env={**os.environ, "LC_ALL": "C"}
        )
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(args[:2])} failed ({done.returncode}): {done.stderr.strip() or done.stdout}")
        return done

    def start(self) -> ThrowawayCluster:
        """Create the cluster and start the server; returns ``self``. Retries once on a port taken meanwhile."""
        # Not under pytest's tmp_path: its parent folder is private to this user, and the server's user
        # must be able to reach its data and socket folder.
        self.folder = Path(tempfile.mkdtemp(prefix="mlsys-lab-pg-"))
        self.data.mkdir()
        if self.user:
            entry = pwd.getpwnam(self.user)
            os.chown(self.folder, entry.pw_uid, entry.pw_gid)
            os.chown(self.data, entry.pw_uid, entry.pw_gid)
        self._run(
            str(self.bin / "initdb"),
            "-D",
            str(self.data),
            "-U",
            "postgres",
            "--auth=trust",  # the server listens on loopback and a private socket folder only
            "--no-sync",  # a throwaway cluster: its creation need not survive a power cut
            "-E",
            "UTF8",
        )
        for attempt in (1, 2, 3):
            self.port = _free_port()
            options = " ".join(
                [
                    "-c listen_addresses=127.0.0.1",
                    f"-c port={self.port}",
                    f"-c unix_socket_directories={self.folder}",
                    *(f"-c {name}={value}" for name, value in self.settings.items()),
                ]
            )
            try:
                self._run(
                    str(self.bin / "pg_ctl"),
                    "-D",
                    str(self.data),
                    "-l",
                    str(self.folder / "server.log"),
                    "-o",
                    options,
                    "-w",
                    "-t",
                    "60",
                    "start",
                )
                return self
            except RuntimeError:
                if attempt == 3:
                    log = (self.folder / "server.log").read_text(errors="replace")[-2000:]
                    self.stop()
                    raise RuntimeError(f"PostgreSQL did not start; its log ends with:\n{log}") from None
                time.sleep(0.2)
        return self

    def url(self, database: str = "postgres") -> str:
        """The SQLAlchemy URL of ``database`` on this server (psycopg 3 over loopback TCP)."""
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str) -> str:
        """Create an empty database and return its SQLAlchemy URL."""
        self._sql(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def drop_database(self, name: str) -> None:
        """Drop a database, disconnecting whoever still uses it."""
        self._sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def _sql(self, statement: str) -> None:
        import psycopg  # only a user of PostgreSQL needs the driver

        with psycopg.connect(host="127.0.0.1", port=self.port, user="postgres", dbname="postgres") as conn:
            conn.autocommit = True
            conn.execute(statement.encode())  # a statement built here from a generated name, not user input

    def stop(self) -> None:
        """Stop the server (fast shutdown) and delete the cluster's folder."""
        if self.folder is None:
            return
        if (self.data / "postmaster.pid").exists():
            try:
                self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop", timeout=60)
            except (RuntimeError, subprocess.TimeoutExpired):
                self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "-w", "stop", timeout=60)
        shutil.rmtree(self.folder, ignore_errors=True)
        self.folder = None

    def __enter__(self) -> ThrowawayCluster:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.stop()
