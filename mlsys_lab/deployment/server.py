"""The scoring service as a child process: ``mlsys-lab serve`` on a free loopback port, started and stopped.

What the demo and the live tests share. :class:`ServerProcess` starts the real command (uvicorn and
all) with its settings in the environment, writes the server's stdout and stderr to a file (never a
pipe: a chatty server would block once the pipe is full), waits a bounded time for it to answer, and
stops it: SIGTERM to its process group (uvicorn's workers too), a bounded wait, then SIGKILL.
:func:`run_server` wraps that in a ``with`` block that always stops the server.

Binding is to 127.0.0.1 only: nothing outside the machine can reach a server started here.

Examples
--------
>>> with run_server({"MLSYS_LAB_TRACKING_DIR": "runs/mlflow"}, wait_path="/ready") as server:  # doctest: +SKIP
...     httpx.get(f"{server.url}/ready").json()["model_version"]
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import IO

import httpx

__all__ = ["LOOPBACK", "ServerProcess", "free_port", "run_server"]

LOOPBACK = "127.0.0.1"
#: Starting imports MLflow and scikit-learn, loads the model and rebuilds the feature state from the log:
#: seconds on a quiet laptop, but over 60 s for the demo's loop server at load average 15-20 (measured).
#: A server that dies while starting is reported at once, so a long bound costs nothing when it works.
START_TIMEOUT = 180.0
#: The setting naming where several workers keep their metric files (see ServiceSettings.metrics_dir).
METRICS_DIR_ENV = "MLSYS_LAB_METRICS_DIR"
STOP_TIMEOUT = 15.0


def free_port() -> int:
    """A TCP port free on loopback now (the OS picks it; another process could take it before we bind)."""
    with socket.socket() as s:
        s.bind((LOOPBACK, 0))
        return int(s.getsockname()[1])


def _serve_command(port: int, workers: int) -> list[str]:
    # The console script beside this interpreter is the command users run; `python -c` is the
    # fallback when the package is importable but its script is not installed there.
    script = Path(sys.executable).with_name("mlsys-lab")
    args = ["serve", "--host", LOOPBACK, "--port", str(port), "--workers", str(workers)]
    if script.exists():
        return [str(script), *args]
    return [sys.executable, "-c", "from mlsys_lab.cli import app; app()", *args]


class ServerProcess:
    """``mlsys-lab serve`` in a child process on 127.0.0.1, up when the constructor returns.

    Parameters
    ----------
    env
        ``MLSYS_LAB_*`` settings (tracking store, decision log URL, ...), added to this process's environment.
    output
        File that receives the server's stdout and stderr (truncated first); a temporary file when None.
    workers
        uvicorn worker processes. With several, and no ``MLSYS_LAB_METRICS_DIR`` in ``env`` or this
        process's environment, their metric files go to a temporary folder removed by :meth:`stop`
        (not ``./runs/metrics`` under whatever folder the caller runs in).
    wait_path
        Polled until the server answers it (bounded by ``start_timeout``). ``/health`` answers as
        soon as the process serves; ``/ready`` also needs the model and the decision log, and a 503
        from it raises at once with the reason (uvicorn runs the start-up, model load included,
        before it accepts connections, so a first answer is final).
    start_timeout
        Seconds to wait for the first answer before giving up (the server is then stopped).

    Raises
    ------
    RuntimeError
        The process exited during start-up, or ``wait_path`` answered with an error status.
    TimeoutError
        No answer within ``start_timeout``.
    """

    def __init__(
        self,
        env: Mapping[str, str],
        *,
        output: Path | None = None,
        workers: int = 1,
        wait_path: str = "/health",
        start_timeout: float = START_TIMEOUT,
    ) -> None:
        self.port = free_port()
        self.url = f"http://{LOOPBACK}:{self.port}"
        self.output_path = output
        self.killed = False  # set when stop() or kill() had to SIGKILL it
        self._metrics_dir: tempfile.TemporaryDirectory[str] | None = None
        if workers > 1 and METRICS_DIR_ENV not in env and METRICS_DIR_ENV not in os.environ:
            self._metrics_dir = tempfile.TemporaryDirectory(prefix="mlsys-lab-metrics-")
            env = {**env, METRICS_DIR_ENV: self._metrics_dir.name}
        self._output: IO[bytes] = output.open("w+b") if output is not None else tempfile.TemporaryFile()  # noqa: SIM115
        self.process = subprocess.Popen(
            _serve_command(self.port, workers),
            env={**os.environ, **env},
            stdin=subprocess.DEVNULL,
            stdout=self._output,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: stop() reaches uvicorn's workers too
        )
        try:
            self._wait_until_answering(wait_path, start_timeout)
        except BaseException:
            self.stop()
            raise

    def _wait_until_answering(self, path: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        # One client for every poll: httpx.get() builds a client, and with it an SSL context (the CA
        # bundle), each time: 38 ms of CPU per refused poll against 0.2 ms, taken from the two cores
        # the starting server needs (about 6.5 s per start in the demo's profile).
        with httpx.Client(timeout=2) as client:
            while time.monotonic() < deadline:
                if self.process.poll() is not None:
                    raise RuntimeError(f"server exited with {self.process.returncode} while starting: {self.output()}")
                try:
                    answer = client.get(f"{self.url}{path}")
                except httpx.TransportError:
                    time.sleep(0.1)
                    continue
                if answer.status_code == 200:
                    return
                raise RuntimeError(f"server started but {path} answered {answer.status_code}: {answer.text[:1000]}")
        raise TimeoutError(f"server not answering {path} within {timeout:g} s: {self.output()}")

    @property
    def running(self) -> bool:
        """Whether the server process has not exited yet."""
        return self.process.poll() is None

    def output(self, last: int = 3000) -> str:
        """The last ``last`` characters the server wrote to stdout and stderr."""
        if self._output.closed:
            if self.output_path is None:
                return ""
            return self.output_path.read_text(errors="replace")[-last:]
        # pread, not seek and read: the server writes through the same file offset.
        fd = self._output.fileno()
        size = os.fstat(fd).st_size
        start = max(0, size - 4 * last)  # up to 4 bytes a character
        return os.pread(fd, size - start, start).decode(errors="replace")[-last:]

    def kill(self) -> None:
        """SIGKILL the whole process group: no shutdown handler, no flush, as when the machine kills it."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
            self.killed = True
        self.process.wait(timeout=STOP_TIMEOUT)

    def stop(self, timeout: float = STOP_TIMEOUT) -> None:
        """SIGTERM (uvicorn shuts down cleanly and closes the log), wait up to ``timeout`` s, then SIGKILL.

        Idempotent; also reaps a process that already exited.
        """
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.kill()
        self._output.close()
        if self._metrics_dir is not None:
            self._metrics_dir.cleanup()


@contextlib.contextmanager
def run_server(
    env: Mapping[str, str],
    *,
    output: Path | None = None,
    workers: int = 1,
    wait_path: str = "/health",
    start_timeout: float = START_TIMEOUT,
) -> Iterator[ServerProcess]:
    """A :class:`ServerProcess` for the ``with`` block, stopped when it ends (also on an exception)."""
    server = ServerProcess(env, output=output, workers=workers, wait_path=wait_path, start_timeout=start_timeout)
    try:
        yield server
    finally:
        server.stop()
