"""A tiny real server (uvicorn on 127.0.0.1, in a subprocess) for the generators to load, and a request pool."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from mlsys_lab.deployment.server import free_port
from mlsys_lab.load import scenarios

STALL_SERVER = Path(__file__).with_name("stall_server.py")


def _start(stall_every: int, stall_s: float, output: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    with output.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, str(STALL_SERVER), str(port), str(stall_every), str(stall_s)],
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"stall server exited: {output.read_text()}")
        try:
            if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                return process, url
        except httpx.TransportError:
            time.sleep(0.1)
    process.kill()
    raise TimeoutError(f"stall server not answering: {output.read_text()}")


@pytest.fixture
def stall_server(tmp_path: Path) -> Iterator[Callable[[int, float], str]]:
    """``stall_server(every, seconds)`` starts a server that freezes ``seconds`` every ``every`` requests; its URL."""
    started: list[subprocess.Popen[bytes]] = []

    def start(stall_every: int = 0, stall_s: float = 0.0) -> str:
        process, url = _start(stall_every, stall_s, tmp_path / f"server-{len(started)}.log")
        started.append(process)
        return url

    yield start
    for process in started:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture(scope="session")
def pool_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """3,000 v1 requests from the tiny preset's last days."""
    path = tmp_path_factory.mktemp("pool") / "requests.jsonl"
    return scenarios.write_request_pool(path, scenarios.simulated_transactions(), 3000)
