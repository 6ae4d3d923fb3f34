"""`make lab` gives students nbgrader's Validate and none of the instructor tools.

Starts a real JupyterLab server on loopback with the project-local config (.jupyter-course/), the
way the Makefile does, and asks it over HTTP.
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from .conftest import REPO_ROOT

pytestmark = pytest.mark.slow

INSTRUCTOR_PLUGINS = ["formgrader", "create-assignment", "course-list", "assignment-list"]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, ""
    except (urllib.error.URLError, ConnectionError):  # not listening yet
        return 0, ""


@pytest.fixture(scope="module")
def student_lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    port = _free_port()
    env = {
        **os.environ,
        "JUPYTER_CONFIG_PATH": str(REPO_ROOT / ".jupyter-course"),
        "JUPYTER_CONFIG_DIR": str(tmp_path_factory.mktemp("empty-user-config")),
        "JUPYTER_RUNTIME_DIR": str(tmp_path_factory.mktemp("runtime")),
    }
    log = tmp_path_factory.mktemp("lab") / "lab.log"
    with log.open("w") as log_file:
        server = subprocess.Popen(
            [str(Path(sys.executable).with_name("jupyter")), "lab", "--no-browser", "--allow-root",
             f"--ServerApp.port={port}", "--ServerApp.ip=127.0.0.1", "--IdentityProvider.token=",
             f"--ServerApp.root_dir={REPO_ROOT / 'notebooks'}"],
            env=env, stdout=log_file, stderr=subprocess.STDOUT,
        )  # fmt: skip
        base = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 60
            while _get(f"{base}/api/status")[0] != 200:
                assert server.poll() is None, f"JupyterLab exited early:\n{log.read_text()}"
                assert time.monotonic() < deadline, f"JupyterLab did not answer within 60 s:\n{log.read_text()}"
                time.sleep(0.5)
            yield base
        finally:
            server.terminate()
            server.wait(timeout=30)


def test_instructor_pages_are_not_served(student_lab: str) -> None:
    for path in ("/formgrader", "/courses"):
        status, _ = _get(student_lab + path)
        assert status == 404, f"{path} answered {status} in the student lab; expected 404 (instructor tool off)"


def test_instructor_plugins_are_disabled_and_validate_is_not(student_lab: str) -> None:
    status, page = _get(student_lab + "/lab")
    assert status == 200
    config = json.loads(
        re.search(r'<script id="jupyter-config-data" type="application/json">(.*?)</script>', page, re.S)[1]
    )
    disabled = config.get("disabledExtensions", [])
    for plugin in INSTRUCTOR_PLUGINS:
        assert f"@jupyter/nbgrader:{plugin}" in disabled, f"{plugin} is enabled for students; disabled: {disabled}"
    assert "@jupyter/nbgrader:validate-assignment" not in disabled, "students need the Validate button"
