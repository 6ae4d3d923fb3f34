"""`make lab` gives students nbgrader's Validate, none of the instructor tools, and a working terminal.

Starts the real JupyterLab with ``mlsys-lab lab`` (what ``make lab`` runs) on loopback, as root, with
no display and a PATH without the project's environment, and asks it over HTTP and its terminal's
websocket.
"""

from __future__ import annotations

import asyncio
import http.cookiejar
import json
import re
import shutil
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from mlsys_lab import course

from .conftest import REPO_ROOT, StudentLab, http_get, student_lab

pytestmark = pytest.mark.slow

INSTRUCTOR_PLUGINS = ["formgrader", "create-assignment", "course-list", "assignment-list"]
FIRST = "00_notebook_thinking"


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StudentLab]:
    with student_lab(tmp_path_factory.mktemp("lab")) as running:
        yield running


def test_instructor_pages_are_not_served(lab: StudentLab) -> None:
    for path in ("/formgrader", "/courses"):
        status, _ = http_get(lab.url + path)
        assert status == 404, f"{path} answered {status} in the student lab; expected 404 (instructor tool off)"


def test_instructor_plugins_are_disabled_and_validate_is_not(lab: StudentLab) -> None:
    status, page = http_get(lab.url + "/lab")
    assert status == 200
    match = re.search(r'<script id="jupyter-config-data" type="application/json">(.*?)</script>', page, re.S)
    assert match, "the /lab page carries no jupyter-config-data"
    disabled = json.loads(match[1]).get("disabledExtensions", [])
    for plugin in INSTRUCTOR_PLUGINS:
        assert f"@jupyter/nbgrader:{plugin}" in disabled, f"{plugin} is enabled for students; disabled: {disabled}"
    assert "@jupyter/nbgrader:validate-assignment" not in disabled, "students need the Validate button"


def test_lab_opens_on_work_filled_from_notebooks(lab: StudentLab) -> None:
    expected = sorted(p.name for p in (REPO_ROOT / "notebooks").iterdir() if course.ASSIGNMENT_NAME.match(p.name))
    copied = sorted(p.name for p in lab.work_dir.iterdir())
    assert copied == expected, f"work/ holds {copied}; expected every module of notebooks/: {expected}"
    with urllib.request.urlopen(f"{lab.url}/api/contents", timeout=10) as response:
        listing = sorted(item["name"] for item in json.load(response)["content"])
    assert listing == expected, f"JupyterLab's root lists {listing}; expected work/'s modules {expected}"


def _run_in_terminal(base: str, command: str, until: str, timeout: float = 120) -> str:
    """Open a JupyterLab terminal over the server's REST and websocket API, type COMMAND, read the output."""
    from tornado.websocket import websocket_connect

    # Jupyter checks a POST's _xsrf cookie against its header, as the browser sends them.
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    opener.open(f"{base}/lab", timeout=10).read()
    xsrf = next(cookie.value for cookie in jar if cookie.name == "_xsrf")
    headers = {"Content-Type": "application/json", "X-XSRFToken": xsrf}
    request = urllib.request.Request(f"{base}/api/terminals", data=b"{}", method="POST", headers=headers)
    with opener.open(request, timeout=10) as response:
        name = json.load(response)["name"]

    async def talk() -> str:
        socket = await websocket_connect(f"ws{base.removeprefix('http')}/terminals/websocket/{name}")
        await socket.write_message(json.dumps(["stdin", command + "\r"]))
        output = ""
        deadline = time.monotonic() + timeout
        while not re.search(until, output) and time.monotonic() < deadline:
            try:
                message = await asyncio.wait_for(socket.read_message(), timeout=max(0.1, deadline - time.monotonic()))
            except TimeoutError:
                break
            if message is None:
                break
            kind, *payload = json.loads(message)
            if kind == "stdout":
                output += "".join(payload)
        socket.close()
        return output

    try:
        return asyncio.run(talk())
    finally:
        opener.open(
            urllib.request.Request(f"{base}/api/terminals/{name}", method="DELETE", headers=headers), timeout=10
        )


def test_terminal_has_the_project_environment_on_path(lab: StudentLab) -> None:
    """What the README tells students to type in JupyterLab's terminal, typed there."""
    # The typed line is echoed back: wait for what only running it prints (EXIT=<digit>).
    output = _run_in_terminal(lab.url, "command -v mlsys-lab; mlsys-lab --help; printf 'EXIT=%s\\n' $?", r"EXIT=\d")
    assert "EXIT=0" in output, f"`mlsys-lab --help` failed in JupyterLab's terminal:\n{output[-3000:]}"
    assert str(Path(shutil.which("mlsys-lab") or "").parent) in output or ".venv/bin/mlsys-lab" in output, output
    assert "validate" in output and "Usage" in output, f"expected mlsys-lab's help; got:\n{output[-3000:]}"


def test_readme_validate_command_runs_in_jupyterlab_terminal(lab: StudentLab) -> None:
    """The student section's terminal command, typed in a terminal opened in a module's folder."""
    command = f"cd {FIRST} && mlsys-lab validate {FIRST}; printf 'EXIT=%s\\n' $?"
    output = _run_in_terminal(lab.url, command, r"EXIT=\d", timeout=600)
    assert "EXIT=1" in output and "VALIDATION FAILED" in output, (
        f"expected the blank notebook to fail validation (exit 1) with its report; got:\n{output[-3000:]}"
    )
