"""A shared MLflow tracking server, as a class or a team would run one: training, registry and service by URL.

One real ``mlflow server`` on 127.0.0.1 (its own SQLite backend, ``--no-serve-artifacts``: model files
go to the shared artifacts folder, where the registry's sha256 check reads them). The same package
code as on the embedded store, given only the server's URL. Checks that the runs really went to the
server (its database holds them, no local store was created), that a corrupt file is still refused,
and that ``mlsys-lab serve`` with ``MLSYS_LAB_TRACKING_SERVER`` serves the promoted version.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pandas as pd
import pytest

from mlsys_lab.deployment.registry import Registry
from mlsys_lab.deployment.server import free_port, run_server
from mlsys_lab.training import Tracker, TrackingSettings, train
from mlsys_lab.training.artifact import IntegrityError

from .conftest import registrable_configs

pytestmark = pytest.mark.slow  # starts an MLflow server (seconds) and a service


@pytest.fixture
def mlflow_server(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A real MLflow tracking server on loopback; its URL and its backend database file."""
    port = free_port()
    database = tmp_path / "server" / "mlflow.db"
    database.parent.mkdir()
    mlflow = Path(sys.executable).with_name("mlflow")
    command = [
        str(mlflow), "server", "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
        "--backend-store-uri", f"sqlite:///{database}",
        "--default-artifact-root", str(tmp_path / "shared" / "artifacts"), "--no-serve-artifacts",
    ]  # fmt: skip
    env = {**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "1"}
    with (tmp_path / "mlflow-server.log").open("wb") as out:
        process = subprocess.Popen(
            command, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env, start_new_session=True
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 300  # tens of seconds on a busy machine (its imports, its tables)
        while True:
            assert process.poll() is None, (tmp_path / "mlflow-server.log").read_text()[-2000:]
            assert time.monotonic() < deadline, "mlflow server not answering /health within 300 s"
            try:
                if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.2)
        yield url, database
    finally:
        os.killpg(process.pid, 15)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, 9)
            process.wait()


def test_training_registry_and_service_work_against_a_shared_tracking_server(
    mlflow_server: tuple[str, Path], registrable_frame: pd.DataFrame, tmp_path: Path
) -> None:
    url, database = mlflow_server
    shared = tmp_path / "shared"
    settings = TrackingSettings(root=shared, experiment="class-of-200", server=url)
    assert settings.tracking_uri == url
    run = train(registrable_configs(1)[0], registrable_frame, tracker=Tracker(settings))
    registry = Registry(settings)
    version = registry.register(run)
    registry.promote(version.version, who="tests", why="shared server")
    assert registry.load("champion").info.sha256 == version.sha256

    with sqlite3.connect(database) as server_db:  # the server, not a local file, holds the run and the alias
        assert server_db.execute("SELECT count(*) FROM runs WHERE run_uuid = ?", (run.run_id,)).fetchone() == (1,)
        assert server_db.execute("SELECT version FROM registered_model_aliases").fetchall() == [(version.version,)]
    assert not (shared / "mlflow.db").exists(), "nothing may fall back to the embedded store"

    env = {
        "MLSYS_LAB_TRACKING_DIR": str(shared),
        "MLSYS_LAB_TRACKING_SERVER": url,
        "MLSYS_LAB_DECISION_LOG_URL": f"sqlite:///{tmp_path / 'decisions.db'}",
    }
    with run_server(env, wait_path="/ready") as service:
        assert httpx.get(f"{service.url}/ready", timeout=10).json()["model_version"] == version.version

    path = version.artifact_path
    path.write_bytes(path.read_bytes()[:100])  # the shared file corrupted: the checksum still guards it
    with pytest.raises(IntegrityError):
        registry.load("champion")
    registry.close()
