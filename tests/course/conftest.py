"""Fixtures for the course tests: every assignment under assignments/source gets every test.

Expensive work happens once per assignment per session and is shared by the tests that read it:
one regeneration (freshness), one papermill run of the solution (execution and stderr lint), and one
nbgrader round trip with both fake students graded in a single ``nbgrader autograde`` call. One
module (``CLI_VALIDATE_MODULE``) also gets a pair of ``mlsys-lab validate`` runs.

Each notebook execution costs seconds to a minute, so each proves as much as it can: alice's one
graded run proves both that the reference scores full marks and that deleted test cells are
restored; bob's proves the blank scores zero and, read again, that every cell failing in the blank
is tagged for Run All to go past (``run_all_stops``); and the browser test (``test_browser.py``)
presses nbgrader's Validate for every module.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import traceback
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import nbformat
import pandas as pd
import pytest

from mlsys_lab import course

REPO_ROOT = Path(__file__).resolve().parents[2]
ASSIGNMENTS = course.discover_assignments(REPO_ROOT)
NOTEBOOK_TIMEOUT = 600  # seconds per cell, the same budget as the course's nbgrader config
TIMINGS = pytest.StashKey[dict[str, float]]()
#: What a notebook run leaves beside the notebook (git-ignored, and ignored by nbgrader's release too).
RUN_OUTPUTS = ("runs", "mlruns", ".ipynb_checkpoints", "__pycache__")


def notebook_path(folder: str, name: str) -> Path:
    """Path of the main notebook of assignment ``name`` in ``folder`` (a repository folder)."""
    if folder == "source":
        return REPO_ROOT / "assignments" / "source" / name / f"{name}.ipynb"
    return REPO_ROOT / folder / name / f"{name}.ipynb"


def console_script(name: str) -> Path:
    """A console script installed beside this interpreter (what an activated environment runs)."""
    return Path(sys.executable).with_name(name)


@pytest.fixture(scope="session", params=ASSIGNMENTS)
def assignment(request: pytest.FixtureRequest) -> str:
    """Each ``NN_slug`` assignment of the course in turn."""
    return str(request.param)


# --------------------------------------------------------------------------------------------------
# Regeneration
# --------------------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def regenerated(assignment: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A temporary repository root holding a fresh build of ``assignment``."""
    root = tmp_path_factory.mktemp(f"build-{assignment}")
    (root / "assignments" / "source").mkdir(parents=True)
    shutil.copyfile(REPO_ROOT / course.CONFIG_FILE, root / course.CONFIG_FILE)
    shutil.copytree(REPO_ROOT / course.SOURCE_DIR / assignment, root / course.SOURCE_DIR / assignment)
    built = course.build_course(root, [assignment])
    assert built == [assignment], f"build_course built {built}, expected [{assignment!r}]"
    return root


# --------------------------------------------------------------------------------------------------
# Execution of the solution with papermill
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Execution:
    """One papermill run of a solution notebook."""

    output: Path
    seconds: float
    parameters: dict[str, object]
    error: str | None


@pytest.fixture(scope="session")
def executed_solution(
    assignment: str, tmp_path_factory: pytest.TempPathFactory, pytestconfig: pytest.Config
) -> Execution:
    """Run ``solutions/NN_slug/NN_slug.ipynb`` top to bottom in fast mode, once per session."""
    import papermill

    # Run a copy: notebooks write run outputs (MLflow stores, decision logs) beside themselves, and a
    # test must never write into the repository.
    workdir = tmp_path_factory.mktemp(f"solution-{assignment}") / assignment
    shutil.copytree(notebook_path("solutions", assignment).parent, workdir, ignore=shutil.ignore_patterns(*RUN_OUTPUTS))
    source = workdir / f"{assignment}.ipynb"
    output = tmp_path_factory.mktemp(f"executed-{assignment}") / source.name
    # Pass only the parameters the notebook declares: papermill would inject unknown ones silently.
    declared = papermill.inspect_notebook(str(source))
    parameters: dict[str, object] = {"FAST": True} if "FAST" in declared else {}
    error = None
    start = time.perf_counter()
    try:
        papermill.execute_notebook(
            str(source),
            str(output),
            parameters=parameters,
            kernel_name="python3",
            cwd=str(source.parent),
            execution_timeout=NOTEBOOK_TIMEOUT,
            progress_bar=False,
            request_save_on_cell_execute=False,
        )
    except Exception as exc:  # reported by the execution test, with the failing cell
        error = f"{type(exc).__name__}: {exc}\n{traceback.format_exc(limit=3)}"
    seconds = time.perf_counter() - start
    _record_timing(pytestconfig, f"{assignment} solution (papermill, FAST=True)", seconds, tmp_path_factory)
    return Execution(output=output, seconds=seconds, parameters=parameters, error=error)


def _record_timing(config: pytest.Config, label: str, seconds: float, factory: pytest.TempPathFactory) -> None:
    timings = config.stash.setdefault(TIMINGS, {})
    timings[label] = round(seconds, 2)
    (factory.getbasetemp() / "course_timings.json").write_text(json.dumps(timings, indent=1) + "\n")


# --------------------------------------------------------------------------------------------------
# The instructor's round trip: generate, collect, autograde, feedback, export
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RoundTrip:
    """A graded course directory and what came out of it."""

    course_dir: Path
    scores: pd.DataFrame
    grades_csv: pd.DataFrame
    autograde_seconds: float


STUDENTS = {
    # alice hands in the reference solution with the test cells of every other exercise deleted
    # (deleted_test_ids): the tests she kept must give full marks, and the deleted ones must be
    # restored and give full marks too. One graded run for both claims, each checked on its own cells.
    "alice": "solution-with-some-tests-deleted",
    # bob hands in the notebook exactly as released: zero on every autograded cell.
    "bob": "release",
}


def deleted_test_ids(nb: nbformat.NotebookNode) -> list[str]:
    """The grade_ids of the test cells alice deletes: those of the 1st, 3rd, 5th... exercise of ``nb``.

    An exercise is an answer cell and the test cells after it, up to the next answer cell. Whole
    exercises go, visible and hidden tests together, as a student who deletes "the tests of this
    exercise" would; every other exercise keeps its tests, so both claims are checked in every module.
    """
    deleted, exercise = [], 0
    for cell in nb.cells:
        meta = nbgrader_meta(cell)
        if meta.get("solution"):
            exercise += 1
        elif is_test_cell(cell) and exercise % 2 == 1:
            deleted.append(str(meta["grade_id"]))
    return deleted


def run_instructor_command(course_dir: Path, *args: str) -> str:
    """Run ``nbgrader ARGS`` in the course directory exactly as the README tells instructors to."""
    command = [str(console_script("nbgrader")), *args]
    # An empty JUPYTER_CONFIG_DIR keeps the tester's own ~/.jupyter config out of the result.
    config_dir = course_dir.parent / "jupyter-config"
    config_dir.mkdir(exist_ok=True)
    result = subprocess.run(
        command,
        cwd=course_dir,
        env=course.nbgrader_environment(config_dir),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        check=False,
    )
    assert result.returncode == 0, (
        f"`nbgrader {' '.join(args)}` exited {result.returncode} in {course_dir}; expected 0. "
        f"nbgrader's log:\n{result.stdout}"
    )
    return result.stdout


def _submit(course_dir: Path, assignment: str, student: str, kind: str) -> None:
    target = course_dir / "submitted" / student / assignment
    if kind == "release":
        shutil.copytree(course_dir / "release" / assignment, target)
        return
    shutil.copytree(course_dir / "solution" / assignment, target)
    if kind == "solution-with-some-tests-deleted":
        path = target / f"{assignment}.ipynb"
        nb = nbformat.read(path, as_version=4)
        deleted = set(deleted_test_ids(nb))
        nb.cells = [cell for cell in nb.cells if nbgrader_meta(cell).get("grade_id") not in deleted]
        nbformat.write(nb, path)


@pytest.fixture(scope="session")
def round_trip(assignment: str, tmp_path_factory: pytest.TempPathFactory, pytestconfig: pytest.Config) -> RoundTrip:
    """Grade the fake students (``STUDENTS``) in a fresh course directory (a gradebook holding
    submissions cannot regenerate the assignment, so each session starts from nothing)."""
    course_dir = course.prepare_course_dir(REPO_ROOT, tmp_path_factory.mktemp(f"course-{assignment}"), [assignment])
    run_instructor_command(course_dir, "generate_assignment", assignment, "--force")
    run_instructor_command(course_dir, "generate_solution", assignment, "--force")
    for student, kind in STUDENTS.items():
        _submit(course_dir, assignment, student, kind)
    start = time.perf_counter()
    run_instructor_command(course_dir, "autograde", assignment)
    seconds = time.perf_counter() - start
    _record_timing(pytestconfig, f"{assignment} autograde of {len(STUDENTS)} students", seconds, tmp_path_factory)
    run_instructor_command(course_dir, "generate_feedback", assignment)
    run_instructor_command(course_dir, "export", "--to", "grades.csv")
    return RoundTrip(
        course_dir=course_dir,
        scores=course.gradebook_scores(course_dir / "gradebook.db", assignment),
        grades_csv=pd.read_csv(course_dir / "grades.csv", dtype={"student_id": str}),
        autograde_seconds=seconds,
    )


# --------------------------------------------------------------------------------------------------
# The student's self-check through the CLI
# --------------------------------------------------------------------------------------------------


#: The module whose solution and blank notebook ``mlsys-lab validate`` checks (test_grading.py). The
#: command's behaviour (exit codes, naming the failing cells) is the same for every module, and what
#: differs per module is proven elsewhere for all eight: the blank scores zero and the reference full
#: marks under ``nbgrader autograde`` (the round trip), and nbgrader's Validate passes on the answered
#: notebook in JupyterLab (test_browser.py). Module 00's blank is validated by the README's command
#: (tests/test_readme.py) and in JupyterLab's terminal (test_student_lab.py), so this is another one.
CLI_VALIDATE_MODULE = "01_data_layer"


@pytest.fixture(scope="session")
def validate_runs(
    assignment: str, pytestconfig: pytest.Config, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, subprocess.CompletedProcess[str]]:
    """``mlsys-lab validate`` on the solution and on the blank notebook, one after the other
    (requested for ``CLI_VALIDATE_MODULE`` only)."""
    targets = {}
    for kind, folder in (("solution", "solutions"), ("blank", "notebooks")):
        # Validate copies, as for the execution test: a run must not write into the repository.
        workdir = tmp_path_factory.mktemp(f"validate-{kind}-{assignment}") / assignment
        original = notebook_path(folder, assignment)
        shutil.copytree(original.parent, workdir, ignore=shutil.ignore_patterns(*RUN_OUTPUTS))
        targets[kind] = workdir / original.name

    def run(path: Path) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(console_script("mlsys-lab")), "validate", str(path)],
            capture_output=True,
            text=True,
            timeout=30 * 60,
            check=False,
        )

    start = time.perf_counter()
    # One after the other: two kernels launched at the same moment can race for the same TCP ports,
    # and one dies before replying to kernel_info (seen once in a clean-clone CI run).
    results = {kind: run(path) for kind, path in targets.items()}
    _record_timing(
        pytestconfig,
        f"{assignment} mlsys-lab validate, solution then blank",
        time.perf_counter() - start,
        tmp_path_factory,
    )
    return results


# --------------------------------------------------------------------------------------------------
# Cell helpers shared by the tests
# --------------------------------------------------------------------------------------------------


def nbgrader_meta(cell: nbformat.NotebookNode) -> dict[str, object]:
    return dict(cell.get("metadata", {}).get("nbgrader", {}))


def is_graded(cell: nbformat.NotebookNode) -> bool:
    return bool(nbgrader_meta(cell).get("grade"))


def is_test_cell(cell: nbformat.NotebookNode) -> bool:
    """An autograded test: a graded code cell that is not an answer cell."""
    meta = nbgrader_meta(cell)
    return cell.cell_type == "code" and bool(meta.get("grade")) and not meta.get("solution")


def is_manual_cell(cell: nbformat.NotebookNode) -> bool:
    """A graded answer cell, scored by a person."""
    meta = nbgrader_meta(cell)
    return bool(meta.get("grade")) and bool(meta.get("solution"))


def graded_ids(nb: nbformat.NotebookNode, predicate: object) -> list[str]:
    return [str(nbgrader_meta(cell)["grade_id"]) for cell in nb.cells if predicate(cell)]  # type: ignore[operator]


#: JupyterLab's Run All (and papermill, and nbclient) go on past a failing cell that carries this tag.
RUN_ON = "raises-exception"


def run_all_stops(executed: nbformat.NotebookNode, released: nbformat.NotebookNode) -> list[str]:
    """Why JupyterLab's Run All of ``released`` would not reach its last cell, judged from ``executed``.

    ``executed`` is ``released`` run top to bottom with errors allowed, as ``nbgrader autograde`` runs
    bob's blank notebook (every cell runs whatever fails). Run All stops at the first cell that raises
    unless that cell is tagged ``raises-exception`` (test_browser.py proves JupyterLab honours the tag),
    so it goes past every failure exactly when each code cell whose output holds an error carries the
    tag in ``released``, the notebook the student opens. Cells are matched by cell id. Returns one line
    per problem: an untagged failing cell, a code cell that never ran, a cell only one notebook holds.
    """
    tags = {cell.get("id"): cell.metadata.get("tags", []) for cell in released.cells}
    problems = [
        f"released cell {index + 1} ({cell.get('id')}) is missing from the executed notebook"
        for index, cell in enumerate(released.cells)
        if cell.cell_type == "code" and cell.get("id") not in {c.get("id") for c in executed.cells}
    ]
    for index, cell in enumerate(executed.cells):
        if cell.cell_type != "code":
            continue
        name = f"cell {index + 1} ({nbgrader_meta(cell).get('grade_id') or cell.get('id')})"
        if cell.get("id") not in tags:
            problems.append(f"{name} is not in the released notebook")
            continue
        # nbclient skips a blank code cell (no execution count), and a blank cell cannot raise.
        if cell.source.strip() and not cell.get("execution_count"):
            problems.append(f"{name} never ran")
        errors = [output for output in cell.get("outputs", []) if output.output_type == "error"]
        if errors and RUN_ON not in tags[cell.get("id")]:
            problems.append(
                f"{name} raises {errors[0].ename}: {str(errors[0].evalue)[:200]} and is not tagged {RUN_ON!r}, "
                "so Run All stops there"
            )
    return problems


# --------------------------------------------------------------------------------------------------
# The student's JupyterLab, started the way `make lab` starts it
# --------------------------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def http_get(url: str) -> tuple[int, str]:
    """GET ``url``: (status, body), status 0 when nothing listens yet."""
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, ""
    except (urllib.error.URLError, ConnectionError):  # not listening yet
        return 0, ""


@dataclass(frozen=True)
class StudentLab:
    """A running ``mlsys-lab lab`` server."""

    url: str
    work_dir: Path
    log: Path
    launch_output: str


@contextmanager
def student_lab(tmp: Path, *, fast: bool = False) -> Iterator[StudentLab]:
    """Run ``mlsys-lab lab`` (what ``make lab`` runs) on loopback, as a student's machine would.

    Nothing makes it easy for the server: no flag for root, no DISPLAY or BROWSER, and a PATH
    without the project's environment, as in a fresh container shell. Only the port and an empty
    token (no login page; loopback only) are added. ``work/`` is a temporary folder, never the
    repository's, so a student's real answers are never touched by a test. ``fast`` starts it as
    ``mlsys-lab lab --fast`` (every notebook runs its short version).
    """
    port = _free_port()
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in ("DISPLAY", "WAYLAND_DISPLAY", "BROWSER", "VIRTUAL_ENV", "JUPYTER_CONFIG_PATH")
    }
    env |= {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "JUPYTER_CONFIG_DIR": str(tmp / "empty-user-config"),
        "JUPYTER_RUNTIME_DIR": str(tmp / "runtime"),
        "JUPYTER_DATA_DIR": str(tmp / "data"),
    }
    work = tmp / "work"
    log = tmp / "lab.log"
    with log.open("w") as log_file:
        server = subprocess.Popen(
            [str(console_script("mlsys-lab")), "lab", "--root", str(REPO_ROOT), "--work-dir", str(work),
             *(["--fast"] if fast else []), f"--ServerApp.port={port}", "--IdentityProvider.token="],
            env=env, stdout=log_file, stderr=subprocess.STDOUT, cwd=tmp,
        )  # fmt: skip
        base = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 120
            while http_get(f"{base}/api/status")[0] != 200:
                assert server.poll() is None, f"`mlsys-lab lab` exited early:\n{log.read_text()}"
                assert time.monotonic() < deadline, f"JupyterLab did not answer within 120 s:\n{log.read_text()}"
                time.sleep(0.5)
            yield StudentLab(url=base, work_dir=work, log=log, launch_output=log.read_text())
        finally:
            server.terminate()
            try:
                server.wait(timeout=30)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait(timeout=30)
