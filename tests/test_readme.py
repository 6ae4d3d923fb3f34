"""Every bash block of the README runs as written, or is skipped here by name with the reason.

The blocks are read from README.md itself. A block marked ``<!-- readme-test: NAME -->`` runs in a
temporary copy of what it needs, with the README's placeholders (``<student_id>``,
``path/to/their.ipynb``) filled in; an unmarked block must be listed in SKIPPED, so a new block
cannot slip in untested.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from mlsys_lab import course

REPO_ROOT = Path(__file__).resolve().parents[1]
BLOCK = re.compile(
    r"(?:<!-- readme-test: (?P<name>[\w-]+) -->\s*\n)?(?P<indent>[ ]*)```bash\n(?P<body>.*?)\n(?P=indent)```", re.S
)
#: Unmarked blocks, by their first line, and why they do not run here.
SKIPPED = {
    "make demo": "runs the whole demo (minutes); .ci/run runs `make demo` itself",
    "make lab": "starts JupyterLab and never returns; tests/course/test_student_lab.py starts it as `make lab` does",
    "make notebooks": "maintainers' targets; .ci/run runs install, lint, test; tests cover `mlsys-lab notebooks`",
    ".venv/bin/mlsys-lab serve": "starts the API server and never returns; the deployment tests start it",
    "sudo apt-get install postgresql": "installs a system package (.ci/run does); the tests and the benchmark "
    "it lists run in CI, and the servers it shows never return",
}


def readme_blocks() -> list[tuple[str | None, str]]:
    text = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    blocks = []
    for match in BLOCK.finditer(text):
        indent = match["indent"]
        body = "\n".join(line.removeprefix(indent) for line in match["body"].splitlines())
        blocks.append((match["name"], body))
    assert blocks, "found no bash blocks in README.md; did the fence syntax change?"
    return blocks


def block(name: str) -> str:
    found = [body for marker, body in readme_blocks() if marker == name]
    assert len(found) == 1, f"README.md should have exactly one block marked readme-test: {name}; found {len(found)}"
    return found[0]


def test_every_block_is_run_or_skipped_by_name() -> None:
    for name, body in readme_blocks():
        if name is None:
            first = body.strip().splitlines()[0].split("#")[0].strip()
            assert first in SKIPPED, (
                f"README block starting {first!r} is neither marked `<!-- readme-test: NAME -->` nor listed in "
                f"SKIPPED in {Path(__file__).name}: run it in a test or skip it with a reason."
            )


def _environment(tmp_path: Path) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if key not in ("VIRTUAL_ENV", "JUPYTER_CONFIG_PATH")}
    env["JUPYTER_CONFIG_DIR"] = str(tmp_path / "empty-jupyter-config")  # the tester's ~/.jupyter stays out
    return env


@pytest.mark.slow
def test_instructor_block_runs_as_written(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    (repo / "assignments").mkdir(parents=True)
    shutil.copyfile(REPO_ROOT / course.CONFIG_FILE, repo / course.CONFIG_FILE)
    shutil.copytree(REPO_ROOT / course.SOURCE_DIR, repo / course.SOURCE_DIR)
    # The block activates ../.venv: the copy gets this interpreter's environment under that name.
    (repo / ".venv").symlink_to(Path(sys.prefix))
    submission = tmp_path / "inbox" / "their.ipynb"
    submission.parent.mkdir()
    shutil.copyfile(REPO_ROOT / "solutions" / "00_notebook_thinking" / "00_notebook_thinking.ipynb", submission)
    script = block("instructor").replace("<student_id>", "alice").replace("path/to/their.ipynb", str(submission))

    result = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script], cwd=repo, env=_environment(tmp_path),
        capture_output=True, text=True, check=False, timeout=900,
    )  # fmt: skip

    output = result.stdout + result.stderr
    assert result.returncode == 0, f"the README's instructor block failed (exit {result.returncode}):\n{output[-4000:]}"
    course_dir = repo / "assignments"
    assert (course_dir / "submitted/alice/00_notebook_thinking/timestamp.txt").is_file()
    assert list((course_dir / "feedback/alice/00_notebook_thinking").glob("*.html")), "no feedback written"
    assert "alice" in (course_dir / "grades.csv").read_text(), "grades.csv lacks the student"
    assert re.search(r"^alice: \d+ / \d+ \(\d+ point\(s\) pending manual grading\)$", result.stdout, re.M), (
        f"`mlsys-lab grades` did not mark alice's written answer as pending:\n{result.stdout[-3000:]}"
    )


@pytest.mark.slow
def test_student_validate_block_runs_in_work(tmp_path: Path) -> None:
    """As typed in JupyterLab's terminal: in work/, with the environment's bin/ on PATH."""
    root = tmp_path / "repo"
    shutil.copytree(REPO_ROOT / "notebooks" / "00_notebook_thinking", root / "notebooks" / "00_notebook_thinking")
    course.sync_student_work(root)
    env = _environment(tmp_path)
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), "/usr/bin", "/bin"])

    result = subprocess.run(
        ["bash", "-eu", "-c", block("student-validate")], cwd=root / "work", env=env,
        capture_output=True, text=True, check=False, timeout=900,
    )  # fmt: skip

    assert result.returncode == 1 and "VALIDATION FAILED" in result.stdout, (
        f"expected the blank notebook to fail validation with a report (exit 1); got exit {result.returncode}:\n"
        f"{result.stdout[-2000:]}{result.stderr[-2000:]}"
    )
